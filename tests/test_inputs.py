"""ci_deploy.inputs: every input's default, rules and problem message."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import get_type_hints

import pytest
import yaml

from ci_deploy import input_rules
from ci_deploy import inputs as inputs_module
from ci_deploy.changeset import PathRules, glob_problem
from ci_deploy.compression import DEFAULT_LEVEL
from ci_deploy.errors import InputError, InputProblem
from ci_deploy.input_rules import DEFAULT_IGNORE_PATHS, Run, globs
from ci_deploy.inputs import (
    INPUTS,
    ActionInput,
    Inputs,
    load_inputs,
    organization_from_token,
    parse_duration,
    raw_inputs,
    resolve_token,
)

ORG = "clorg0000000000000000001"
DEPLOYMENT = "cldep0000000000000000001"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: object) -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.c2lnbmF0dXJl"


TOKEN = make_jwt(
    {
        "sub": "api-token",
        "permissions": ["apiTokenId:cltok1", f"organizationId:{ORG}", "workspaceId:clws1"],
    }
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    (path / "airflow" / "dags").mkdir(parents=True)
    (path / "README.md").write_text("hello\n")
    return path


def env(workspace: Path, **extra: str) -> dict[str, str]:
    return {"GITHUB_WORKSPACE": str(workspace), **extra}


def load(workspace: Path, environ: dict[str, str] | None = None, /, **inputs: str) -> Inputs:
    """Load with a valid token and deployment unless overridden; keyword names use _ for -."""
    raw = {"api-token": TOKEN, "deployment-id": DEPLOYMENT}
    raw.update({name.replace("_", "-"): value for name, value in inputs.items()})
    return load_inputs(raw, env(workspace) if environ is None else environ)


def problems(
    workspace: Path, environ: dict[str, str] | None = None, /, **inputs: str
) -> list[InputProblem]:
    with pytest.raises(InputError) as caught:
        load(workspace, environ, **inputs)
    return caught.value.problems


def only_problem(workspace: Path, name: str, **inputs: str) -> str:
    """The message of the one problem, which must be on ``name``."""
    found = problems(workspace, **inputs)
    assert [p.name for p in found] == [name], found
    return found[0].message


# --- the input table -------------------------------------------------------------------------


def test_inputs_are_listed_in_action_yml_order_with_their_defaults() -> None:
    assert INPUTS == {
        "api-token": "",
        "api-url": "https://api.astronomer.io/v1",
        "organization-id": "",
        "deployment-id": "",
        "deployment-name": "",
        "workspace-id": "",
        "action": "deploy",
        "rollback-to": "",
        "config": ".astro/ci-deploy.yaml",
        "root-folder": ".",
        "dags-folder": "dags",
        "deploy-type": "infer",
        "image-name": "",
        "bundle-type": "",
        "bundle-mount-path": "",
        "compare-to": "auto",
        "dag-paths": "",
        "image-paths": "",
        "ignore-paths": "**/*.md, .github/**, tests/**, .astro/test_*",
        "force": "false",
        "description": "",
        "syntax-check": "true",
        "compression-level": "1",
        "wait": "true",
        "wait-timeout": "10m",
        "wake-on-deploy": "false",
        "check-import-errors": "true",
        "rollback-on-failure": "true",
        "verify-window": "60s",
        "smoke-dags": "",
        "smoke-timeout": "10m",
        "smoke-unpause": "false",
        "dry-run": "false",
        "github-token": "${{ github.token }}",
        "pr-comment": "true",
        "environment": "",
        "preview-env": "",
        "open-pull-requests": "",
        "platform": "astro",
        "digitalocean-token": "",
        "app-id": "",
        "app-name": "",
        "app-spec": ".do/app.yaml",
        "rollback-pin": "commit",
        "docr-registry": "",
    }


def test_inputs_is_derived_from_the_fields() -> None:
    """Inputs is the one place an input is declared: a field with an ActionInput."""
    hints = get_type_hints(Inputs, include_extras=True)
    declared = {
        field.name: spec
        for field in dataclasses.fields(Inputs)
        for spec in getattr(hints[field.name], "__metadata__", ())
        if isinstance(spec, ActionInput)
    }
    assert {spec.name: spec.default for spec in declared.values()} == INPUTS
    assert list(INPUTS) == [spec.name for spec in declared.values()]
    # Each field is named after its input, but dag-paths: its field holds the globs given, and
    # the property dag_paths adds the default (escaped when read: pathspec loads then).
    renamed = {
        field_name: spec.name
        for field_name, spec in declared.items()
        if field_name != spec.name.replace("-", "_")
    }
    assert renamed == {"dag_paths_input": "dag-paths"}
    computed = {field.name for field in dataclasses.fields(Inputs)} - set(declared)
    assert computed == {"workspace", "root_path", "dags_path", "warnings"}


def test_no_input_rule_can_read_another_input() -> None:
    """Each input's own rule sees only its text and the run; never another input's value.

    Why: a rule that read other fields (a hook run as the fields are set, a validator in a
    field's metadata) silently stops working when the fields are reordered. So Inputs has no
    ``__post_init__`` and no metadata but the ActionInputs; an input's own rule is its
    ActionInput.rule, called with its text and a Run, which holds nothing that is an input;
    the rules between inputs are in one place, run after every input's own rule.
    """
    assert not hasattr(Inputs, "__post_init__")
    for name, hint in get_type_hints(Inputs, include_extras=True).items():
        assert all(isinstance(m, ActionInput) for m in getattr(hint, "__metadata__", ())), name
    assert Run._fields == ("workspace", "token_from_env")
    assert not {field.replace("_", "-") for field in Run._fields} & set(INPUTS)


def test_the_order_inputs_are_checked_in_does_not_matter(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking the inputs' own rules in reverse order changes no result.

    Why: a rule between inputs must see every input's value, whatever the order of the
    fields; one that read the inputs checked before it would break here.
    """
    cases: list[dict[str, str]] = [
        {},
        {"deployment_id": "", "workspace_id": "clws1"},
        {"deployment_name": "prod"},
        {"deployment_id": "", "deployment_name": "prod", "workspace_id": "clws1"},
        {"rollback_to": "cldeploy1"},
        {"deploy_type": "dags-only", "image_name": "my-airflow:1", **BUNDLE},
        {"deploy_type": "bundle"},
        {"api_token": "opaque-token"},
        {"root_folder": "airflow", "dag_paths": "", "description": "x" * 501},
        {"root_folder": "missing", "dags_folder": "../x", "image_name": "Bad"},
    ]

    def outcomes() -> list[object]:
        found: list[object] = []
        for case in cases:
            try:
                found.append(load(workspace, **case))
            except InputError as error:
                found.append(error.problems)
        return found

    in_order = outcomes()
    reversed_fields = dict(reversed(list(inputs_module._INPUT_FIELDS.items())))
    monkeypatch.setattr(inputs_module, "_INPUT_FIELDS", reversed_fields)
    assert outcomes() == in_order


def readme_table(heading: str) -> list[str]:
    """The first cells (the names) of the table under ``### <heading>`` in README.md."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n### {heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [name for row in rows for name in re.findall(r"`([a-z-]+)`", row.split("|")[1])]


def test_every_input_has_a_row_in_the_readme_inputs_table() -> None:
    assert readme_table("Inputs") == list(INPUTS)


def test_raw_inputs_reads_input_variables_with_hyphens_kept() -> None:
    environ = {"INPUT_DEPLOY-TYPE": "dags-only", "INPUT_WAIT": "false", "INPUT_DEPLOY_TYPE": "x"}
    raw = raw_inputs(environ)
    assert list(raw) == list(INPUTS)
    assert raw["deploy-type"] == "dags-only"
    assert raw["wait"] == "false"
    assert raw["api-url"] == ""  # unset: empty, the default is applied by load_inputs


def test_raw_inputs_flags_override_but_none_does_not() -> None:
    environ = {"INPUT_DEPLOYMENT-ID": "from-env", "INPUT_WAIT": "false"}
    raw = raw_inputs(environ, {"deployment-id": "from-flag", "wait": None, "dry-run": ""})
    assert raw["deployment-id"] == "from-flag"
    assert raw["wait"] == "false"
    assert raw["dry-run"] == ""


def test_raw_inputs_refuses_an_unknown_flag() -> None:
    with pytest.raises(ValueError, match="deploy_type"):
        raw_inputs({}, {"deploy_type": "x"})


def test_defaults(workspace: Path) -> None:
    inputs = load(workspace)
    assert inputs.api_token.get_secret_value() == TOKEN
    assert inputs.api_url == "https://api.astronomer.io/v1"
    assert inputs.organization_id == ORG
    assert inputs.deployment_id == DEPLOYMENT
    assert inputs.workspace == workspace.resolve()
    assert inputs.root_folder == "."
    assert inputs.root_path == workspace.resolve()
    assert inputs.dags_folder == "dags"
    assert inputs.dags_path == workspace.resolve() / "dags"
    assert inputs.deploy_type == "infer"
    assert inputs.description == ""
    assert inputs.wait is True
    assert inputs.wait_timeout == 600
    assert inputs.rollback_on_failure is True
    assert inputs.dry_run is False
    assert inputs.warnings == ()
    assert inputs.action == "deploy"
    assert inputs.rollback_to == ""
    assert inputs.deployment_name == ""
    assert inputs.workspace_id == ""
    assert inputs.image_name == ""
    assert inputs.bundle_type == ""
    assert inputs.bundle_mount_path == ""
    assert inputs.syntax_check is True
    assert inputs.wake_on_deploy is False
    assert inputs.check_import_errors is True


def test_empty_and_blank_values_mean_the_default(workspace: Path) -> None:
    raw = raw_inputs(
        {"INPUT_API-TOKEN": TOKEN, "INPUT_DEPLOYMENT-ID": DEPLOYMENT, "INPUT_WAIT": " "}
    )
    inputs = load_inputs(raw, env(workspace))
    assert inputs.api_url == INPUTS["api-url"]
    assert inputs.wait is True
    assert inputs.wait_timeout == 600
    assert inputs.dags_folder == "dags"


def test_inputs_are_frozen(workspace: Path) -> None:
    inputs = load(workspace)
    with pytest.raises(dataclasses.FrozenInstanceError):
        inputs.wait = False  # type: ignore[misc]
    assert dataclasses.replace(inputs, wait=False).wait is False  # a changed copy
    assert inputs.wait is True


# --- the token and the organization ----------------------------------------------------------


def test_resolve_token_prefers_the_input_then_the_environment() -> None:
    assert resolve_token({"api-token": " a.b.c \n"}, {"ASTRO_API_TOKEN": "env"}) == "a.b.c"
    assert resolve_token({"api-token": ""}, {"ASTRO_API_TOKEN": " env\n"}) == "env"
    assert resolve_token({}, {"ASTRO_API_TOKEN": "env"}) == "env"
    assert resolve_token({"api-token": "  "}, {}) == ""


def test_token_is_required(workspace: Path) -> None:
    assert only_problem(workspace, "api-token", api_token="") == (
        "is required: set the api-token input or the ASTRO_API_TOKEN environment variable"
    )


def test_token_falls_back_to_astro_api_token(workspace: Path) -> None:
    inputs = load(workspace, env(workspace, ASTRO_API_TOKEN=f" {TOKEN}\n"), api_token="")
    assert inputs.api_token.get_secret_value() == TOKEN
    assert inputs.organization_id == ORG


def test_the_input_token_wins_over_astro_api_token(workspace: Path) -> None:
    other = make_jwt({"permissions": ["organizationId:clother"]})
    inputs = load(workspace, env(workspace, ASTRO_API_TOKEN=other))
    assert inputs.api_token.get_secret_value() == TOKEN
    assert inputs.organization_id == ORG


@pytest.mark.parametrize("token", ["qqq zzz.x.y", "qqq\nzzz", "qqqö.zzz", "qqq\tzzz"])
def test_token_with_spaces_or_non_ascii_is_refused_without_showing_it(
    workspace: Path, token: str
) -> None:
    message = only_problem(workspace, "api-token", api_token=token, organization_id=ORG)
    assert message.startswith("must be one line of printable ASCII without spaces")
    assert "not shown" in message
    assert "qqq" not in message and "zzz" not in message


def test_bad_token_from_the_environment_says_where_it_came_from(workspace: Path) -> None:
    found = problems(workspace, env(workspace, ASTRO_API_TOKEN="a b"), api_token="")
    assert [p.name for p in found] == ["api-token"]
    assert "(read from ASTRO_API_TOKEN)" in found[0].message


def test_organization_input_wins_over_the_token(workspace: Path) -> None:
    assert load(workspace, organization_id="clgiven").organization_id == "clgiven"


def test_organization_input_makes_a_non_jwt_token_usable(workspace: Path) -> None:
    inputs = load(workspace, api_token="opaque-token", organization_id="clgiven")
    assert inputs.organization_id == "clgiven"


def test_organization_cannot_be_read_from_a_non_jwt_token(workspace: Path) -> None:
    message = only_problem(workspace, "organization-id", api_token="opaque-token")
    assert message.startswith("could not be read from the API token")
    assert message.endswith("set the organization-id input")
    assert "opaque-token" not in message


def test_a_missing_token_is_not_reported_twice(workspace: Path) -> None:
    assert [p.name for p in problems(workspace, api_token="")] == ["api-token"]


@pytest.mark.parametrize("organization", ["a b", "a/b", "a?b", "a#b", "a%2F"])
def test_organization_input_must_be_an_id(workspace: Path, organization: str) -> None:
    message = only_problem(workspace, "organization-id", organization_id=organization)
    assert message.startswith("must be an Astro ID without whitespace")
    assert message.endswith(f"got {organization!r}")


def test_organization_from_token_reads_the_permissions_claim() -> None:
    assert organization_from_token(TOKEN) == ORG
    assert organization_from_token(f"  {TOKEN}\n") == ORG
    # payload lengths that need one and two "=" of padding
    for sub in ("x", "xx", "xxx"):
        token = make_jwt({"sub": sub, "permissions": ["organizationId:clpad"]})
        assert organization_from_token(token) == "clpad"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "e30.!!!.sig",  # payload is not base64url
        f"e30.{b64url(b'not json')}.sig",
        f"e30.{b64url(bytes([0xFF, 0xFE]))}.sig",
        f"e30.{b64url(b'[' * 100000)}.sig",
        make_jwt(["organizationId:clx"]),
        make_jwt({"sub": "x"}),
        make_jwt({"permissions": "organizationId:clx"}),
        make_jwt({"permissions": ["workspaceId:clws", 5, None]}),
        make_jwt({"permissions": ["organizationId:"]}),
        make_jwt({"permissions": ["organizationId:a/b"]}),
    ],
)
def test_organization_from_token_gives_none_for_anything_else(token: str) -> None:
    assert organization_from_token(token) is None


# --- api-url ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://api.astronomer.io/v1/", "https://api.astronomer.io/v1"),
        (
            "https://api.astronomer.io/platform/v1beta1",
            "https://api.astronomer.io/platform/v1beta1",
        ),
        ("https://example.com:8443//", "https://example.com:8443"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("http://127.9.8.7/v1", "http://127.9.8.7/v1"),
        ("http://localhost:5000/v1/", "http://localhost:5000/v1"),
        ("HTTP://LocalHost/v1", "HTTP://LocalHost/v1"),
        ("http://[::1]:9000/v1", "http://[::1]:9000/v1"),
    ],
)
def test_api_url_accepts_https_and_loopback_http(
    workspace: Path, url: str, normalised: str
) -> None:
    assert load(workspace, api_url=url).api_url == normalised


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com",
        "http://10.0.0.1/v1",
        "http://128.0.0.1/v1",
        "http://localhost.example.com/v1",
        "http://[::2]/v1",
        "http://0.0.0.0/v1",
    ],
)
def test_api_url_refuses_http_for_other_hosts(workspace: Path, url: str) -> None:
    assert only_problem(workspace, "api-url", api_url=url) == (
        f"'{url}' must use https (http is allowed only for a loopback host such as 127.0.0.1)"
    )


@pytest.mark.parametrize(
    "url",
    ["api.astronomer.io/v1", "/v1", "ftp://api.astronomer.io", "https://", "https:///v1",
     "https://x:99999/v1", "https://x:port/v1", "https://[::1/v1", "mailto:ab"],
)  # fmt: skip
def test_api_url_must_be_an_absolute_http_url(workspace: Path, url: str) -> None:
    message = only_problem(workspace, "api-url", api_url=url)
    assert message.startswith("must be an absolute https URL such as https://api.astronomer.io/v1")


def test_api_url_must_not_hold_spaces(workspace: Path) -> None:
    message = only_problem(workspace, "api-url", api_url="https://api.astronomer.io/v 1")
    assert message == (
        "must be an absolute https URL such as https://api.astronomer.io/v1 without whitespace;"
        " got 'https://api.astronomer.io/v 1'"
    )


@pytest.mark.parametrize(
    "url", ["https://x.io/v1?key=s3cret", "https://x.io/v1?", "https://x.io/v1#s3cret"]
)
def test_api_url_must_not_have_a_query_or_fragment(workspace: Path, url: str) -> None:
    message = only_problem(workspace, "api-url", api_url=url)
    assert message == "must not have a query (?...) or a fragment (#...); the URL is not shown"


@pytest.mark.parametrize(
    "url", ["https://me:s3cret@x.io/v1", "me:s3cret@x.io", "https://me:s3cret @x.io/v1"]
)
def test_api_url_must_not_hold_credentials(workspace: Path, url: str) -> None:
    message = only_problem(workspace, "api-url", api_url=url)
    assert message == "must not contain '@' nor a user name or password; the URL is not shown"


# --- deployment-id ----------------------------------------------------------------------------


def test_deployment_id_is_required(workspace: Path) -> None:
    assert only_problem(workspace, "deployment-id", deployment_id=" ") == (
        "is required: set deployment-id or deployment-name to choose the Astro Deployment to"
        " deploy to"
    )


@pytest.mark.parametrize("deployment", ["cl dep", "cl/dep", "cl\\dep", "cl\x00dep", "../x"])
def test_deployment_id_must_be_an_id(workspace: Path, deployment: str) -> None:
    message = only_problem(workspace, "deployment-id", deployment_id=deployment)
    assert message.startswith("must be an Astro ID without whitespace or the characters")
    assert message.endswith(f"got {deployment!r}")


def test_deployment_id_is_trimmed(workspace: Path) -> None:
    assert load(workspace, deployment_id=f"  {DEPLOYMENT}\n").deployment_id == DEPLOYMENT


# --- root-folder and dags-folder --------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "relative"),
    [(".", "."), ("./", "."), ("airflow", "airflow"), ("./airflow/", "airflow"),
     ("airflow/dags/..", "airflow"), ("airflow/dags", "airflow/dags")],
)  # fmt: skip
def test_root_folder_is_normalised(workspace: Path, given: str, relative: str) -> None:
    inputs = load(workspace, root_folder=given)
    assert inputs.root_folder == relative
    assert inputs.root_path == (workspace / relative).resolve()
    assert inputs.root_path.is_absolute()
    assert inputs.dags_path == inputs.root_path / "dags"


def test_root_folder_is_relative_to_the_current_directory_outside_github(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    inputs = load(workspace, {}, root_folder="airflow")
    assert inputs.workspace == workspace.resolve()
    assert inputs.root_path == (workspace / "airflow").resolve()


@pytest.mark.parametrize("given", ["..", "../workspace-other", "airflow/../..", "./../x"])
def test_root_folder_must_not_escape_with_dotdot(workspace: Path, given: str) -> None:
    (workspace.parent / "workspace-other").mkdir()
    message = only_problem(workspace, "root-folder", root_folder=given)
    assert message.startswith(
        f"must stay inside the workspace '{workspace.resolve()}' (after following .. and symlinks)"
    )


def test_root_folder_must_not_escape_through_a_symlink(workspace: Path) -> None:
    outside = workspace.parent / "outside"
    outside.mkdir()
    (workspace / "link").symlink_to(outside, target_is_directory=True)
    message = only_problem(workspace, "root-folder", root_folder="link")
    assert message == (
        f"must stay inside the workspace '{workspace.resolve()}' (after following .. and"
        f" symlinks); 'link' leads to '{outside.resolve()}'"
    )


def test_root_folder_symlink_inside_the_workspace_is_resolved(workspace: Path) -> None:
    (workspace / "project").symlink_to(workspace / "airflow", target_is_directory=True)
    inputs = load(workspace, root_folder="project")
    assert inputs.root_folder == "airflow"
    assert inputs.root_path == (workspace / "airflow").resolve()


def test_root_folder_symlink_loop_is_refused(workspace: Path) -> None:
    (workspace / "loop").symlink_to(workspace / "loop")
    assert only_problem(workspace, "root-folder", root_folder="loop/x")


def test_root_folder_must_be_relative(workspace: Path) -> None:
    message = only_problem(workspace, "root-folder", root_folder=str(workspace / "airflow"))
    assert message.startswith(f"must be a folder relative to the workspace '{workspace.resolve()}'")


def test_root_folder_must_exist(workspace: Path) -> None:
    message = only_problem(workspace, "root-folder", root_folder="missing")
    assert message == (
        f"must be an existing directory inside the workspace '{workspace.resolve()}';"
        " 'missing' does not exist"
    )


def test_root_folder_must_be_a_directory(workspace: Path) -> None:
    message = only_problem(workspace, "root-folder", root_folder="README.md")
    assert message.endswith("'README.md' is not a directory")


@pytest.mark.parametrize(
    ("given", "folder"),
    [("dags", "dags"), ("dags/", "dags"), ("./dags", "dags"), ("src/../dags", "dags"),
     ("a/b/c", "a/b/c"), (".", "."), ("a\\b", "a/b")],
)  # fmt: skip
def test_dags_folder_is_normalised_and_need_not_exist(
    workspace: Path, given: str, folder: str
) -> None:
    inputs = load(workspace, root_folder="airflow", dags_folder=given)
    assert inputs.dags_folder == folder
    assert inputs.dags_path == (workspace / "airflow" / folder).resolve()


@pytest.mark.parametrize("given", ["..", "../dags", "a/../../dags", "/abs/dags", "/"])
def test_dags_folder_must_stay_inside_the_root_folder(workspace: Path, given: str) -> None:
    message = only_problem(workspace, "dags-folder", root_folder="airflow", dags_folder=given)
    assert message == (
        f"must be a folder inside root-folder, relative to it, such as dags; got {given!r}"
    )


def test_dags_folder_must_not_leave_the_root_folder_through_a_symlink(workspace: Path) -> None:
    (workspace / "shared").mkdir()
    (workspace / "airflow" / "linked").symlink_to(workspace / "shared")
    message = only_problem(workspace, "dags-folder", root_folder="airflow", dags_folder="linked")
    assert message == "must stay inside root-folder; 'linked' is a symlink that leads out of it"


def test_dags_folder_is_checked_lexically_even_when_root_folder_is_bad(workspace: Path) -> None:
    found = problems(workspace, root_folder="missing", dags_folder="../x")
    assert [p.name for p in found] == ["root-folder", "dags-folder"]


# --- deploy-type, description, booleans, wait-timeout ------------------------------------------


@pytest.mark.parametrize(
    ("given", "deploy_type"),
    [("infer", "infer"), ("dags-only", "dags-only"), ("image-and-dags", "image-and-dags"),
     ("image-only", "image-only"), ("bundle", "bundle"), (" DAGS-Only ", "dags-only")],
)  # fmt: skip
def test_deploy_type(workspace: Path, given: str, deploy_type: str) -> None:
    extra = BUNDLE if deploy_type == "bundle" else {}
    assert load(workspace, deploy_type=given, **extra).deploy_type == deploy_type


def test_deploy_type_must_be_known(workspace: Path) -> None:
    assert only_problem(workspace, "deploy-type", deploy_type="dag") == (
        "must be one of infer, dags-only, image-and-dags, image-only, bundle; got 'dag'"
    )


def test_description_up_to_500_characters_is_kept(workspace: Path) -> None:
    inputs = load(workspace, description="é" * 500)
    assert inputs.description == "é" * 500
    assert inputs.warnings == ()


def test_description_over_500_characters_is_cut_with_a_warning(workspace: Path) -> None:
    inputs = load(workspace, description="x" * 499 + "yz")
    assert inputs.description == "x" * 499 + "y"
    assert len(inputs.warnings) == 1
    assert "501 characters" in inputs.warnings[0] and "500" in inputs.warnings[0]


BOOLEANS = [("wait", "wait"), ("rollback-on-failure", "rollback_on_failure"),
            ("dry-run", "dry_run"), ("force", "force"), ("syntax-check", "syntax_check"),
            ("wake-on-deploy", "wake_on_deploy"),
            ("check-import-errors", "check_import_errors")]  # fmt: skip


@pytest.mark.parametrize(("name", "field"), BOOLEANS)
@pytest.mark.parametrize(
    ("given", "expected"),
    [("true", True), ("TRUE", True), (" True\n", True), ("false", False), ("FaLsE", False)],
)
def test_booleans(workspace: Path, name: str, field: str, given: str, expected: bool) -> None:
    assert getattr(load(workspace, **{field: given}), field) is expected


@pytest.mark.parametrize(("name", "field"), BOOLEANS)
@pytest.mark.parametrize("given", ["yes", "no", "1", "0", "on", "t", "truee"])
def test_booleans_refuse_anything_else(workspace: Path, name: str, field: str, given: str) -> None:
    assert only_problem(workspace, name, **{field: given}) == (
        f"must be true or false, got {given!r}"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), (" 10m\n", 600), ("6h", 21600),
     ("360m", 21600), ("21600", 21600), ("1", 1), ("007s", 7), ("2H", 7200)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "5 minutes", "5 m", "1.5m", "-5m", "m", "5d", "5ms", "1h30m", "٣m", "+5"]
)
def test_parse_duration_refuses_other_forms(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    expected = f"must be a duration such as 90, 90s, 5m or 1h; got {text.strip()!r}"
    assert str(caught.value) == expected


@pytest.mark.parametrize("text", ["0", "0s", "000m", "0h"])
def test_parse_duration_must_be_positive(text: str) -> None:
    with pytest.raises(ValueError, match=r"^must be more than 0 seconds; got "):
        parse_duration(text)


@pytest.mark.parametrize("text", ["21601", "361m", "7h", "9" * 5000, "99999999999h"])
def test_parse_duration_is_at_most_six_hours(text: str) -> None:
    with pytest.raises(ValueError, match=r"^must be at most 6h \(21600 seconds\); got "):
        parse_duration(text)


def test_wait_timeout_problem(workspace: Path) -> None:
    assert only_problem(workspace, "wait-timeout", wait_timeout="5 minutes") == (
        "must be a duration such as 90, 90s, 5m or 1h; got '5 minutes'"
    )
    assert load(workspace, wait_timeout="90s").wait_timeout == 90


# --- all problems at once, and secrecy --------------------------------------------------------


def test_every_invalid_input_is_reported_together_in_input_order(workspace: Path) -> None:
    found = problems(
        workspace,
        dry_run="maybe",
        api_url="http://api.example.com",
        organization_id="a b",
        deployment_id="",
        root_folder="..",
        dags_folder="../dags",
        deploy_type="dag",
        wait="yes",
        wait_timeout="0",
        rollback_on_failure="nope",
        check_import_errors="2",
        wake_on_deploy="x",
        syntax_check="",  # empty: the default, no problem
        image_name="Bad Name",
        bundle_mount_path="relative",
        bundle_type="DBT",
        action="undo",
        rollback_to="a b",
        workspace_id="w/s",
        deployment_name="\x07",
    )
    assert [p.name for p in found] == [
        "api-url",
        "organization-id",
        "deployment-name",
        "workspace-id",
        "action",
        "rollback-to",
        "root-folder",
        "dags-folder",
        "deploy-type",
        "image-name",
        "bundle-type",
        "bundle-mount-path",
        "wait",
        "wait-timeout",
        "wake-on-deploy",
        "check-import-errors",
        "rollback-on-failure",
        "dry-run",
    ]


def test_problems_are_our_messages_not_pydantic_ones(workspace: Path) -> None:
    with pytest.raises(InputError) as caught:
        load(workspace, api_token="", deployment_id="", wait="x", wait_timeout="x", api_url="x")
    error = caught.value
    assert error.__cause__ is None and error.__suppress_context__
    text = str(error)
    for pydantic_word in ("validation error", "Value error", "type=", "pydantic", "input_value"):
        assert pydantic_word not in text
    assert text.startswith("Invalid input 'api-token': is required")


def test_the_token_never_shows(workspace: Path) -> None:
    secret = make_jwt({"permissions": [f"organizationId:{ORG}"], "secret": "hunter2-Xyz"})
    inputs = load(workspace, api_token=secret)
    assert inputs.api_token.get_secret_value() == secret
    for text in (repr(inputs), str(inputs), f"{inputs}", str(dataclasses.asdict(inputs))):
        assert secret not in text
        assert "**********" in text

    bad = "hunter2 Xyz"
    for environ, token in ((env(workspace), bad), (env(workspace, ASTRO_API_TOKEN=bad), "")):
        with pytest.raises(InputError) as caught:
            load(workspace, environ, api_token=token, deployment_id="", wait="x", api_url="x")
        assert caught.value.problems[0].name == "api-token"
        assert "hunter2" not in str(caught.value)
        assert all("hunter2" not in p.message for p in caught.value.problems)


def test_an_opaque_token_never_shows_in_the_organization_problem(workspace: Path) -> None:
    with pytest.raises(InputError) as caught:
        load(workspace, api_token="opaque-hunter2")
    assert "hunter2" not in str(caught.value)


def test_inputs_can_be_built_directly_for_other_tests(tmp_path: Path) -> None:
    inputs = load_inputs(
        {
            "api-token": "t",
            "api-url": "http://127.0.0.1:1/v1",
            "organization-id": "o",
            "deployment-id": "d",
            "deploy-type": "dags-only",
            "wait-timeout": "1",
        },
        {"GITHUB_WORKSPACE": str(tmp_path)},
    )
    assert inputs.warnings == ()
    assert os.fspath(inputs.dags_path).endswith("dags")
    # The inputs not given take their defaults, so such constructions keep working.
    assert (inputs.action, inputs.deployment_name, inputs.image_name) == ("deploy", "", "")
    assert (inputs.syntax_check, inputs.wake_on_deploy, inputs.check_import_errors) == (
        True,
        False,
        True,
    )


def test_inputs_are_made_from_texts_by_input_name(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="texts by input name"):
        load_inputs({"wait": True}, {"GITHUB_WORKSPACE": str(tmp_path)})  # type: ignore[dict-item]


# --- change detection inputs (compare-to, path globs, force) ------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("auto", "auto"),
        ("Deployed", "deployed"),
        (" event ", "event"),
        ("main", "main"),
        ("v1.2.0", "v1.2.0"),
        ("origin/release-1", "origin/release-1"),
        ("a" * 40, "a" * 40),
    ],
)
def test_compare_to(workspace: Path, given: str, expected: str) -> None:
    assert load(workspace, compare_to=given).compare_to == expected


@pytest.mark.parametrize("given", ["--upload-pack=x", "a..b", "main branch", "x.lock", "-x"])
def test_compare_to_refuses_what_is_no_rev(workspace: Path, given: str) -> None:
    message = only_problem(workspace, "compare-to", compare_to=given)
    assert "must be auto, deployed, event, or a commit SHA or git ref" in message


def test_path_globs_default_to_the_dags_folder_and_everything_else(workspace: Path) -> None:
    inputs = load(workspace, dags_folder="airflow/dags")
    assert inputs.dag_paths == ("airflow/dags/**",)
    assert inputs.image_paths == ("**",)
    assert inputs.ignore_paths == ("**/*.md", ".github/**", "tests/**", ".astro/test_*")
    assert inputs.force is False


def test_path_globs_split_on_newlines_and_commas(workspace: Path) -> None:
    inputs = load(workspace, dag_paths="dags/**\nplugins/*.py, \n", ignore_paths="docs/**")
    assert inputs.dag_paths == ("dags/**", "plugins/*.py")
    assert inputs.ignore_paths == ("docs/**",)


def test_path_globs_must_stay_inside_the_root_folder(workspace: Path) -> None:
    message = only_problem(workspace, "image-paths", image_paths="Dockerfile\n../shared/**")
    assert "gitignore-style globs relative to root-folder" in message
    assert "'../shared/**'" in message


def test_the_default_globs_taken_unchecked_are_valid_globs() -> None:
    # The globs rule takes ignore-paths' default globs without compiling them (pathspec is
    # not loaded at start-up for them): each must be a glob pathspec compiles.
    assert set(globs(DEFAULT_IGNORE_PATHS, Run(Path(), False))) == input_rules._DEFAULT_GLOBS
    assert INPUTS["ignore-paths"] == DEFAULT_IGNORE_PATHS
    for pattern in input_rules._DEFAULT_GLOBS:
        assert glob_problem(pattern) is None, pattern


def test_a_bad_glob_among_the_default_globs_is_still_refused(workspace: Path) -> None:
    message = only_problem(
        workspace, "ignore-paths", ignore_paths=f"{DEFAULT_IGNORE_PATHS}, a/../b"
    )
    assert "'a/../b' must not contain .." in message


def test_force_is_a_boolean(workspace: Path) -> None:
    assert load(workspace, force="TRUE").force is True
    assert "true or false" in only_problem(workspace, "force", force="always")


def test_every_output_has_a_row_in_the_readme_outputs_table() -> None:
    action_yml = Path(__file__).resolve().parent.parent / "action.yml"
    outputs = yaml.safe_load(action_yml.read_text(encoding="utf-8"))["outputs"]
    assert readme_table("Outputs") == list(outputs)


# --- deployment-name and workspace-id ----------------------------------------------------------


def test_deployment_name_instead_of_deployment_id(workspace: Path) -> None:
    inputs = load(workspace, deployment_id="", deployment_name="  Équipe données: prod (EU) \n")
    assert inputs.deployment_id == ""
    assert inputs.deployment_name == "Équipe données: prod (EU)"
    assert inputs.workspace_id == ""


def test_neither_deployment_id_nor_name_is_a_problem_on_deployment_id(workspace: Path) -> None:
    message = only_problem(workspace, "deployment-id", deployment_id="", deployment_name=" ")
    assert "set deployment-id or deployment-name" in message


def test_both_deployment_id_and_name_is_a_problem_on_deployment_name(workspace: Path) -> None:
    assert only_problem(workspace, "deployment-name", deployment_name="prod") == (
        "must not be set together with deployment-id: set only one of them"
        " (deployment-id is the more precise)"
    )


def test_a_bad_deployment_id_with_a_name_is_reported_once_on_the_id(workspace: Path) -> None:
    found = problems(workspace, deployment_id="a b", deployment_name="prod")
    assert [p.name for p in found] == ["deployment-id"]


@pytest.mark.parametrize("name", ["x", "é" * 256, "Ω-prod", "prod (v2) #1 / eu?"])
def test_deployment_name_accepts_printable_text_up_to_256_characters(
    workspace: Path, name: str
) -> None:
    assert load(workspace, deployment_id="", deployment_name=name).deployment_name == name


@pytest.mark.parametrize("name", ["x" * 257, "two\nlines", "tab\there", "bell\x07", "nul\x00"])
def test_deployment_name_refuses_long_or_unprintable_text(workspace: Path, name: str) -> None:
    message = only_problem(workspace, "deployment-name", deployment_id="", deployment_name=name)
    assert message.startswith(
        "must be a Deployment's name: printable text of at most 256 characters on one line; got "
    )


def test_a_bad_deployment_name_does_not_also_ask_for_deployment_id(workspace: Path) -> None:
    found = problems(workspace, deployment_id="", deployment_name="a\x00b")
    assert [p.name for p in found] == ["deployment-name"]


def test_workspace_id_narrows_a_deployment_name(workspace: Path) -> None:
    inputs = load(workspace, deployment_id="", deployment_name="prod", workspace_id=" clws1 ")
    assert (inputs.deployment_name, inputs.workspace_id) == ("prod", "clws1")


def test_workspace_id_without_deployment_name_is_a_problem(workspace: Path) -> None:
    assert only_problem(workspace, "workspace-id", workspace_id="clws1") == (
        "is only used with deployment-name, to narrow the search for the Deployment by name to"
        " one Workspace: set deployment-name or remove workspace-id"
    )


@pytest.mark.parametrize("workspace_id", ["a b", "a/b", "a?b", "a#b", "a%2F"])
def test_workspace_id_must_be_an_id(workspace: Path, workspace_id: str) -> None:
    message = only_problem(
        workspace,
        "workspace-id",
        deployment_id="",
        deployment_name="prod",
        workspace_id=workspace_id,
    )
    assert message.startswith("must be an Astro ID without whitespace")


def test_workspace_id_is_not_refused_twice_when_the_name_is_bad(workspace: Path) -> None:
    found = problems(workspace, deployment_name="prod", workspace_id="clws1")  # id and name
    assert [p.name for p in found] == ["deployment-name"]


# --- action and rollback-to ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "action"),
    [("deploy", "deploy"), ("rollback", "rollback"), (" RollBack\n", "rollback"),
     ("DEPLOY", "deploy"), ("Preview", "preview"), ("preview-delete", "preview-delete")],
)  # fmt: skip
def test_action(workspace: Path, given: str, action: str) -> None:
    assert load(workspace, action=given).action == action


def test_matrix_takes_no_deployment_it_reads_them_from_the_config_file(workspace: Path) -> None:
    raw = {"api-token": TOKEN, "action": "matrix"}
    inputs = load_inputs(raw, env(workspace))
    assert (inputs.action, inputs.deployment_id, inputs.config) == (
        "matrix",
        "",
        ".astro/ci-deploy.yaml",
    )
    assert only_problem(workspace, "deployment-id", action="matrix") == (
        "is not used with action: matrix, which reads the Deployments from the config file:"
        " remove it"
    )


@pytest.mark.parametrize("given", ["/etc/ci-deploy.yaml", "../other.yaml", ".", "a\nb.yaml"])
def test_config_must_be_a_file_inside_the_workspace(workspace: Path, given: str) -> None:
    message = only_problem(workspace, "config", config=given)
    assert message.startswith("must be a file"), message


@pytest.mark.parametrize("given", ["roll-back", "undo", "deploy rollback", "previews"])
def test_action_must_be_one_of_the_actions(workspace: Path, given: str) -> None:
    assert only_problem(workspace, "action", action=given) == (
        "must be one of deploy, rollback, matrix, preview, preview-delete, preview-cleanup,"
        f" rollback-commit, rollback-revert; got {given!r}"
    )


def test_preview_env_is_key_value_lines_kept_secret(workspace: Path) -> None:
    text = "# the preview's secrets\nDB_PASSWORD = s3cret=x\n\nAPI_KEY=k3y\n"
    inputs = load(workspace, action="preview", **{"preview-env": text})
    assert [(k, v.get_secret_value()) for k, v in inputs.preview_env] == [
        ("DB_PASSWORD", "s3cret=x"),
        ("API_KEY", "k3y"),
    ]
    assert "s3cret" not in repr(inputs)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("DB_PASSWORD hunter2", "line 1 is not (its value is not shown)"),
        ("1X=hunter2", "line 1 is not (its value is not shown)"),
        ("A=1\nA=hunter2", "sets A twice (line 2); set each variable once"),
    ],
)
def test_bad_preview_env_never_shows_a_value(workspace: Path, text: str, problem: str) -> None:
    message = only_problem(workspace, "preview-env", action="preview", **{"preview-env": text})
    assert message.endswith(problem)
    assert "hunter2" not in message


def test_preview_env_only_with_action_preview(workspace: Path) -> None:
    assert only_problem(workspace, "preview-env", **{"preview-env": "A=1"}).startswith(
        "is only used with action: preview"
    )


@pytest.mark.parametrize(
    ("given", "numbers"),
    [("[12, 15]", (12, 15)), ("15 12,12", (12, 15)), ("[]", ()), ("[\n  3\n]", (3,))],
)
def test_open_pull_requests(workspace: Path, given: str, numbers: tuple[int, ...]) -> None:
    inputs = load(workspace, action="preview-cleanup", **{"open-pull-requests": given})
    assert inputs.open_pull_requests == numbers


def test_open_pull_requests_is_only_for_a_cleanup_which_may_ask_github(workspace: Path) -> None:
    inputs = load(workspace, action="preview-cleanup")
    assert inputs.open_pull_requests is None, "not given: the cleanup asks GitHub"
    assert only_problem(workspace, "open-pull-requests", **{"open-pull-requests": "[1]"}) == (
        "is only used with action: preview-cleanup; remove it or set action to preview-cleanup"
    )
    assert only_problem(
        workspace, "open-pull-requests", action="preview-cleanup", **{"open-pull-requests": "#4"}
    ).startswith("must list pull request numbers")


def test_rollback_to_with_action_rollback(workspace: Path) -> None:
    inputs = load(workspace, action="rollback", rollback_to=" cldeploy0001 ")
    assert (inputs.action, inputs.rollback_to) == ("rollback", "cldeploy0001")
    assert load(workspace, action="rollback").rollback_to == ""


def test_rollback_to_with_action_deploy_is_a_problem(workspace: Path) -> None:
    message = only_problem(workspace, "rollback-to", rollback_to="cldeploy0001")
    assert message.startswith("is only used with action: rollback")
    message = only_problem(workspace, "rollback-to", action="Deploy", rollback_to="cldeploy0001")
    assert message.startswith("is only used with action: rollback")


@pytest.mark.parametrize("deploy_id", ["cl dep", "cl/dep", "cl\\dep", "cl\x00dep", "../x", "a%2F"])
def test_rollback_to_must_be_a_deploy_id(workspace: Path, deploy_id: str) -> None:
    message = only_problem(workspace, "rollback-to", action="rollback", rollback_to=deploy_id)
    assert message.startswith("must be a deploy ID without whitespace or the characters")
    assert message.endswith(f"got {deploy_id!r}")


def test_rollback_to_is_not_refused_twice_when_action_is_bad(workspace: Path) -> None:
    found = problems(workspace, action="undo", rollback_to="cldeploy0001")
    assert [p.name for p in found] == ["action"]


# --- image-name ---------------------------------------------------------------------------------

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "image",
    [
        "my-airflow",
        "my-airflow:0f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
        "my_airflow__x.y-z:Tag_1.2-rc",
        "team/airflow:v2",
        "localhost/airflow:1",
        "localhost:5000/airflow:1",
        "registry.example.com:5000/team/sub/airflow:v2",
        "Registry.Example.com/airflow",
        "images.astronomer.cloud/clorg/airflow:deploy-2024",
        f"my-airflow@{DIGEST}",
        f"my-airflow:1.0@{DIGEST}",
        "a" * 255,
        "a:" + "t" * 128,
    ],
)
def test_image_name_accepts_docker_references(workspace: Path, image: str) -> None:
    assert load(workspace, image_name=f" {image}\n").image_name == image


@pytest.mark.parametrize(
    "image",
    [
        "My-Airflow:1",  # upper-case name
        "team/Airflow",
        "my airflow:1",
        "my-airflow :1",
        "my\tairflow",
        "my-airflow:",
        "my-airflow:-tag",
        "my-airflow:" + "t" * 129,
        ":latest",
        "/airflow",
        "airflow/",
        "team//airflow",
        "-airflow",
        "airflow-",
        "air..flow",
        "registry.example.com:port/airflow",
        "my-airflow@sha256:abc",
        "my-airflow@md5:" + "0" * 32,
        f"my-airflow@{DIGEST.upper()}",
        "a" * 256,
        "https://registry.example.com/airflow",
        "my-airflow:${{ github.sha }}",
    ],
)
def test_image_name_refuses_anything_else(workspace: Path, image: str) -> None:
    message = only_problem(workspace, "image-name", image_name=image)
    assert message.startswith(
        "must be a docker image reference such as my-airflow:1.0 or"
        " registry.example.com:5000/team/airflow:v2"
        " ([registry[:port]/]name[:tag][@sha256:digest], lower-case name, no whitespace);"
        f" got {image[:20]!r}"[:-1]  # the value as shown, maybe cut: no closing quote
    )


@pytest.mark.parametrize("deploy_type", ["infer", "image-and-dags", "image-only"])
def test_image_name_with_image_deploy_types(workspace: Path, deploy_type: str) -> None:
    inputs = load(workspace, deploy_type=deploy_type, image_name="my-airflow:abc")
    assert inputs.image_name == "my-airflow:abc"


@pytest.mark.parametrize("deploy_type", ["dags-only", "bundle"])
def test_image_name_with_dags_only_or_bundle_is_a_problem(
    workspace: Path, deploy_type: str
) -> None:
    extra = BUNDLE if deploy_type == "bundle" else {}
    message = only_problem(
        workspace, "image-name", deploy_type=deploy_type, image_name="my-airflow:abc", **extra
    )
    assert message == (
        "is only used with deploy-type infer, image-and-dags or image-only;"
        f" deploy-type {deploy_type} deploys no image"
    )


# --- bundle-type and bundle-mount-path -----------------------------------------------------------

BUNDLE = {"bundle_type": "dbt", "bundle_mount_path": "/usr/local/airflow/dbt/jaffle_shop"}


def test_bundle_inputs_with_deploy_type_bundle(workspace: Path) -> None:
    inputs = load(workspace, deploy_type="bundle", **BUNDLE)
    assert inputs.bundle_type == "dbt"
    assert inputs.bundle_mount_path == "/usr/local/airflow/dbt/jaffle_shop"


def test_bundle_inputs_are_required_with_deploy_type_bundle(workspace: Path) -> None:
    found = problems(workspace, deploy_type="bundle")
    assert found == [
        InputProblem("bundle-type", "is required with deploy-type: bundle; set it, e.g. to dbt"),
        InputProblem(
            "bundle-mount-path",
            "is required with deploy-type: bundle; set it, e.g. to"
            " /usr/local/airflow/dbt/my_project",
        ),
    ]
    assert [p.name for p in problems(workspace, deploy_type="Bundle", bundle_type="dbt")] == [
        "bundle-mount-path"
    ]


@pytest.mark.parametrize("deploy_type", ["infer", "dags-only", "image-and-dags", "image-only"])
def test_bundle_inputs_are_refused_with_other_deploy_types(
    workspace: Path, deploy_type: str
) -> None:
    found = problems(workspace, deploy_type=deploy_type, **BUNDLE)
    assert [p.name for p in found] == ["bundle-type", "bundle-mount-path"]
    for problem in found:
        assert problem.message == (
            f"is only used with deploy-type: bundle; deploy-type is {deploy_type}:"
            f" remove {problem.name} or set deploy-type to bundle"
        )


def test_bundle_inputs_follow_their_own_rules_when_deploy_type_is_bad(workspace: Path) -> None:
    assert [p.name for p in problems(workspace, deploy_type="dag", **BUNDLE)] == ["deploy-type"]
    found = problems(workspace, deploy_type="dag", bundle_type="DBT", bundle_mount_path="x")
    assert [p.name for p in found] == ["deploy-type", "bundle-type", "bundle-mount-path"]


@pytest.mark.parametrize("bundle_type", ["dbt", "dbt-core", "my_bundle2", "0"])
def test_bundle_type_accepts(workspace: Path, bundle_type: str) -> None:
    inputs = load(workspace, deploy_type="bundle", **{**BUNDLE, "bundle_type": bundle_type})
    assert inputs.bundle_type == bundle_type


@pytest.mark.parametrize("bundle_type", ["DBT", "dbt core", "dbt.core", "dbt/x", "dbt\x00", "é"])
def test_bundle_type_refuses(workspace: Path, bundle_type: str) -> None:
    message = only_problem(
        workspace, "bundle-type", deploy_type="bundle", **{**BUNDLE, "bundle_type": bundle_type}
    )
    assert message == (
        "must be a bundle type such as dbt: lower-case letters, digits, _ and -;"
        f" got {bundle_type!r}"
    )


@pytest.mark.parametrize(
    ("given", "path"),
    [("/usr/local/airflow/dbt/jaffle_shop", "/usr/local/airflow/dbt/jaffle_shop"),
     ("/usr/local/airflow/dbt/jaffle_shop/", "/usr/local/airflow/dbt/jaffle_shop"),
     ("//usr//local/./dbt", "/usr/local/dbt"), ("/dbt", "/dbt"), ("/my dbt/x", "/my dbt/x"),
     ("/a/..b/c..", "/a/..b/c..")],
)  # fmt: skip
def test_bundle_mount_path_accepts_absolute_paths(workspace: Path, given: str, path: str) -> None:
    inputs = load(workspace, deploy_type="bundle", **{**BUNDLE, "bundle_mount_path": given})
    assert inputs.bundle_mount_path == path


@pytest.mark.parametrize(
    "given",
    ["usr/local/dbt", "./dbt", "~/dbt", "/usr/local/../etc", "/..", "/a/b/..", "C:\\dbt"],
)  # fmt: skip
def test_bundle_mount_path_refuses_relative_paths_and_dotdot(workspace: Path, given: str) -> None:
    message = only_problem(
        workspace,
        "bundle-mount-path",
        deploy_type="bundle",
        **{**BUNDLE, "bundle_mount_path": given},
    )
    assert message == (
        "must be an absolute POSIX path without .. such as /usr/local/airflow/dbt/jaffle_shop;"
        f" got {given!r}"
    )


@pytest.mark.parametrize("given", ["/", "//", "/./"])
def test_bundle_mount_path_is_not_the_root(workspace: Path, given: str) -> None:
    message = only_problem(
        workspace,
        "bundle-mount-path",
        deploy_type="bundle",
        **{**BUNDLE, "bundle_mount_path": given},
    )
    assert message == f"must name a folder below /, not / itself; got {given!r}"


# --- cross-input rules all at once ---------------------------------------------------------------


def test_every_cross_input_problem_is_reported_together(workspace: Path) -> None:
    found = problems(
        workspace,
        deployment_id="",
        workspace_id="clws1",
        rollback_to="cldeploy1",
        deploy_type="dags-only",
        image_name="my-airflow:1",
        bundle_type="dbt",
    )
    assert [p.name for p in found] == [
        "deployment-id",
        "workspace-id",
        "rollback-to",
        "image-name",
        "bundle-type",
    ]


def test_cross_input_problems_come_with_field_problems_in_input_order(workspace: Path) -> None:
    (workspace / "shared").mkdir()
    (workspace / "airflow" / "linked").symlink_to(workspace / "shared")
    found = problems(
        workspace,
        wait_timeout="soon",  # its own rule
        bundle_mount_path="relative",  # its own rule
        deploy_type="bundle",  # so bundle-type is required
        root_folder="airflow",
        dags_folder="linked",  # leads out of root-folder
        workspace_id="clws1",  # without deployment-name
        deployment_id="",  # nor deployment-name
        api_url="ftp://api.astronomer.io",  # its own rule
        api_token="opaque-token",  # no organization in it
    )
    assert found == [
        InputProblem(
            "api-url",
            "must be an absolute https URL such as https://api.astronomer.io/v1;"
            " got 'ftp://api.astronomer.io'",
        ),
        InputProblem(
            "organization-id",
            "could not be read from the API token (it is not an Astro API token with an"
            " organizationId permission): set the organization-id input",
        ),
        InputProblem(
            "deployment-id",
            "is required: set deployment-id or deployment-name to choose the Astro Deployment"
            " to deploy to",
        ),
        InputProblem(
            "workspace-id",
            "is only used with deployment-name, to narrow the search for the Deployment by"
            " name to one Workspace: set deployment-name or remove workspace-id",
        ),
        InputProblem(
            "dags-folder",
            "must stay inside root-folder; 'linked' is a symlink that leads out of it",
        ),
        InputProblem("bundle-type", "is required with deploy-type: bundle; set it, e.g. to dbt"),
        InputProblem(
            "bundle-mount-path",
            "must be an absolute POSIX path without .. such as"
            " /usr/local/airflow/dbt/jaffle_shop; got 'relative'",
        ),
        InputProblem("wait-timeout", "must be a duration such as 90, 90s, 5m or 1h; got 'soon'"),
    ]


# --- lengths and control characters ------------------------------------------------------------

ID_INPUTS = {
    "organization-id": {},
    "deployment-id": {},
    "workspace-id": {"deployment_id": "", "deployment_name": "analytics"},
    "rollback-to": {"action": "rollback"},
}


@pytest.mark.parametrize("name", ID_INPUTS)
def test_an_id_may_have_64_characters(workspace: Path, name: str) -> None:
    inputs = load(workspace, **setting(name, "c" * 64))
    assert getattr(inputs, name.replace("-", "_")) == "c" * 64


@pytest.mark.parametrize("name", ID_INPUTS)
@pytest.mark.parametrize("length", [65, 120_000])
def test_a_longer_id_is_refused_with_its_length(workspace: Path, name: str, length: int) -> None:
    message = only_problem(workspace, name, **setting(name, "c" * length))
    kind = "a deploy ID" if name == "rollback-to" else "an Astro ID"
    shown = repr("c" * length) if length <= 80 else repr("c" * 80 + "...")
    assert message == (
        f"must be {kind} of at most 64 characters (Astro's IDs have 25); got {length}"
        f" characters: {shown}"
    )


def test_an_organization_id_longer_than_64_characters_is_not_read_from_a_token() -> None:
    token = make_jwt({"permissions": [f"organizationId:{'o' * 65}"]})
    assert organization_from_token(token) is None
    assert organization_from_token(make_jwt({"permissions": [f"organizationId:{'o' * 64}"]}))


FOLDER_INPUTS = {
    "root-folder": {},
    "dags-folder": {},
    "bundle-mount-path": {"deploy_type": "bundle", "bundle_type": "dbt"},
}


def setting(name: str, text: str) -> dict[str, str]:
    """Keyword inputs for :func:`load` setting input ``name`` to ``text``, and what it needs."""
    needs = {**ID_INPUTS, **FOLDER_INPUTS}[name]
    return {**needs, name.replace("-", "_"): text}


def test_folders_may_have_1024_characters_in_names_of_255(workspace: Path) -> None:
    long = "/".join(["n" * 254, "n" * 255, "n" * 255, "n" * 255, "a"])
    assert len(long) == 1024
    (workspace / long).mkdir(parents=True)
    inputs = load(workspace, root_folder=long, dags_folder=long)
    assert (inputs.root_folder, inputs.dags_folder) == (long, long)
    mount = load(workspace, **FOLDER_INPUTS["bundle-mount-path"], bundle_mount_path="/" + long[1:])
    assert mount.bundle_mount_path == "/" + long[1:]


@pytest.mark.parametrize("name", FOLDER_INPUTS)
def test_a_longer_folder_is_refused_with_its_length(workspace: Path, name: str) -> None:
    text = "/" + "f" * 1024
    message = only_problem(workspace, name, **setting(name, text))
    assert message == (
        "must be a folder path of at most 1024 characters; got 1025 characters:"
        f" {text[:80] + '...'!r}"
    )


@pytest.mark.parametrize("name", FOLDER_INPUTS)
def test_a_folder_name_longer_than_255_characters_is_refused(workspace: Path, name: str) -> None:
    text = "/x/" + "f" * 256
    message = only_problem(workspace, name, **setting(name, text))
    assert message == (
        "must be a folder path whose folder names have at most 255 characters; one of"
        f" {text[:80] + '...'!r} has 256"
    )


@pytest.mark.parametrize("name", FOLDER_INPUTS)
@pytest.mark.parametrize("control", ["\n", "\t", "\r", "\x1b", "\x00", "\x7f", "\x85"])
def test_a_folder_with_a_control_character_is_refused(
    workspace: Path, name: str, control: str
) -> None:
    text = f"/usr/local/air{control}flow"
    message = only_problem(workspace, name, **setting(name, text))
    assert message == (
        "must be a folder path without control characters (such as a newline, a tab or an"
        f" escape); got {text!r}"
    )


def test_a_root_folder_that_cannot_be_read_is_refused(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a non-root user meets a folder below one it may not enter (root may enter any).
    def denied(path: Path) -> bool:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "is_dir", denied)
    message = only_problem(workspace, "root-folder", root_folder="airflow")
    assert message == "must be a directory that can be read; 'airflow' cannot (Permission denied)"


def test_api_url_may_have_at_most_2048_characters(workspace: Path) -> None:
    base = "https://api.astronomer.io/"
    assert load(workspace, api_url=base + "v" * (2048 - len(base))).api_url.endswith("v")
    message = only_problem(workspace, "api-url", api_url=base + "v" * 120_000)
    assert message == (
        "must be an absolute https URL such as https://api.astronomer.io/v1 of at most 2048"
        f" characters; got {len(base) + 120_000} characters (the URL is not shown)"
    )


@pytest.mark.parametrize("name", ["dag-paths", "image-paths", "ignore-paths"])
def test_path_globs_may_have_at_most_1024_characters(workspace: Path, name: str) -> None:
    field = name.replace("-", "_")
    assert load(workspace, **{field: "a/**/b/**/c/**/d/**, *a*a*a*a*a*a*a*a*ab"})
    message = only_problem(workspace, name, **{field: "dags/**, " + "d" * 1025})
    assert message.endswith("is 1025 characters long; a glob may have at most 1024")


@pytest.mark.parametrize(
    ("folder", "glob"),
    [
        ("dags[1]", "dags\\[1\\]/**"),
        ("a/**/b/**/c/**/d/**/e", "a/\\*\\*/b/\\*\\*/c/\\*\\*/d/\\*\\*/e/**"),
        ("*a*a*a*a*a*a*ab", "\\*a\\*a\\*a\\*a\\*a\\*a\\*ab/**"),
        ("#dags!?", "\\#dags\\!\\?/**"),
    ],
)
def test_the_default_dag_paths_match_the_dags_folder_literally(
    workspace: Path, folder: str, glob: str
) -> None:
    # Its name is a folder's, not a glob: wildcards in it match only themselves.
    inputs = load(workspace, dags_folder=folder)
    assert inputs.dag_paths == (glob,)
    rules = PathRules(".", inputs.dag_paths, inputs.image_paths)
    assert rules.kind(f"{folder}/x.py") == "dag"
    assert rules.kind("dags1/x.py") == rules.kind("a/x/b/y/c/z/d/w/e/x.py") == "image"


# --- the GitHub side ---------------------------------------------------------------------------


def test_github_token_unexpanded_default_falls_back_to_github_token_env(workspace: Path) -> None:
    with_env = env(workspace, GITHUB_TOKEN="ghs_env")
    unexpanded = load(workspace, with_env, github_token="${{ github.token }}")
    given = load(workspace, with_env, github_token="ghs_input")
    none = load(workspace)

    assert unexpanded.github_token.get_secret_value() == "ghs_env"
    assert given.github_token.get_secret_value() == "ghs_input"
    assert none.github_token.get_secret_value() == ""
    assert "ghs_input" not in repr(given)
    assert (none.pr_comment, none.environment) == (True, "")


def test_github_token_that_is_not_one_printable_line_is_refused_without_showing_it(
    workspace: Path,
) -> None:
    message = only_problem(workspace, "github-token", github_token="ghs a\nb")
    assert "printable" in message and "ghs" not in message


def test_environment_is_a_github_environment_name(workspace: Path) -> None:
    assert load(workspace, environment="preview/pr-7").environment == "preview/pr-7"
    assert "at most 255" in only_problem(workspace, "environment", environment="e" * 256)
    assert "printable" in only_problem(workspace, "environment", environment="a\x07b")
    assert "true or false" in only_problem(workspace, "pr-comment", pr_comment="yes")


def test_compression_level_takes_0_to_9_and_defaults_to_the_measured_level(
    workspace: Path,
) -> None:
    assert load(workspace).compression_level == DEFAULT_LEVEL
    assert load(workspace, compression_level=" 9 ").compression_level == 9
    assert load(workspace, compression_level="0").compression_level == 0


@pytest.mark.parametrize("text", ["10", "-1", "fast", "3.5", "\u0663"])
def test_compression_level_refuses_other_text_naming_the_range(workspace: Path, text: str) -> None:
    message = only_problem(workspace, "compression-level", compression_level=text)
    assert message.startswith(
        "must be a whole number from 0 (no compression) to 9 (smallest, slowest), as gzip's "
        "levels; got "
    )
    assert text in message
