"""The demo: a real DAG deploy of examples/astro-project to the built-in Astro emulator.

It starts the emulator, makes a throwaway git copy of the example project with one DAG
edited, runs the action's real entrypoint on it as the GitHub runner would (INPUT_*
variables, event file, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files), then prints the log,
the outputs and the summary, and what the emulator's Deployment now runs.

Run it with ``make demo``. ``python scripts/demo.py --smoke-fails`` adds a second act: a
commit marks the ``daily_report`` DAG's task to fail in the emulator
(``# ci-deploy-emulator: smoke-fails announce``), the action deploys it with
``smoke-dags: daily_report``, the smoke run fails, and the Deployment is rolled back to the
first act's deploy.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event, run_step, runner_environment

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astro-project"
SMOKE_DAG = "daily_report"  # found by the emulator: its file says dag_id="daily_report"
SMOKE_MARKER = "\n# ci-deploy-emulator: smoke-fails announce\n"


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Mona Lisa", "-c", "user.email=mona@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def make_workspace(root: Path) -> tuple[Path, str, str]:
    """A git repository holding the example project, with a second commit editing one DAG."""
    workspace = root / "workspace"
    shutil.copytree(EXAMPLE, workspace)
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "Add the example Astro project")
    before = git(workspace, "rev-parse", "HEAD")
    dag = workspace / "dags" / "example_etl.py"
    dag.write_text(dag.read_text().replace('schedule="@daily"', 'schedule="@hourly"'))
    git(workspace, "commit", "-q", "-am", "Run example_etl every hour")
    after = git(workspace, "rev-parse", "HEAD")
    return workspace, before, after


def heading(text: str) -> None:
    print(f"\n\033[1m== {text} ==\033[0m", flush=True)


def run_act(
    emulator: Emulator,
    root: Path,
    workspace: Path,
    push: tuple[str, str],
    inputs: dict[str, str],
) -> int:
    """Run the entrypoint for a push of ``push`` (before, after) and print what it did."""
    before, after = push
    environ = runner_environment(
        workspace,
        root / f"runner-{after[:7]}",
        {"api-url": emulator.api_url, "deployment-id": emulator.deployment_id, **inputs},
        event=push_event(before, after),
        sha=after,
        env={"ASTRO_API_TOKEN": emulator.token},
    )
    heading("Running entrypoint.py as the GitHub runner would")
    step = run_step(environ)
    print(step.stdout, end="")
    print(step.stderr, end="", file=sys.stderr)
    heading(f"Exit code {step.returncode}; step outputs")
    for name, value in step.outputs.items():
        print(f"{name}: {value}")
    heading("GITHUB_STEP_SUMMARY")
    print(step.summary)
    deployment = emulator.deployment(emulator.deployment_id)
    heading("The emulator's Deployment now")
    for key in ("status", "dagTarballVersion", "desiredDagTarballVersion"):
        print(f"{key}: {deployment.get(key)}")
    return step.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--smoke-fails",
        action="store_true",
        help="a second act: a deploy whose smoke DAG run fails, rolled back",
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="ci-deploy-demo-") as tmp,
        Emulator(rollout_seconds=3.0) as emulator,
    ):
        root = Path(tmp)
        workspace, before, after = make_workspace(root)
        heading(f"Emulator at {emulator.api_url}; workspace {workspace}")
        print(git(workspace, "log", "--oneline", "--stat", "-1"))
        # a short settle window: the default 60 s would make the demo wait a minute
        code = run_act(emulator, root, workspace, (before, after), {"verify-window": "5s"})
        if not args.smoke_fails or code != 0:
            return code
        dag = workspace / "dags" / f"{SMOKE_DAG}.py"
        dag.write_text(dag.read_text() + SMOKE_MARKER)
        git(workspace, "commit", "-q", "-am", "Announce the report (its task fails)")
        smoked = git(workspace, "rev-parse", "HEAD")
        heading(f"Act 2: a deploy whose smoke run of {SMOKE_DAG} fails")
        print(git(workspace, "log", "--oneline", "--stat", "-1"))
        code = run_act(
            emulator,
            root,
            workspace,
            (after, smoked),
            {"smoke-dags": SMOKE_DAG, "verify-window": "0"},
        )
        runs = emulator.airflow_dag_runs()
        heading("Act 2's end")
        print(f"smoke runs triggered: {runs}")
        print(f"exit code {code}: {'failed as it should' if code else 'UNEXPECTEDLY green'}")
        return 0 if code != 0 and runs else 1


if __name__ == "__main__":
    sys.exit(main())
