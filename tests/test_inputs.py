"""ci_deploy.inputs: every input's default, rules and problem message."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from ci_deploy.errors import InputError, InputProblem
from ci_deploy.inputs import (
    INPUTS,
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
        "root-folder": ".",
        "dags-folder": "dags",
        "deploy-type": "infer",
        "compare-to": "auto",
        "dag-paths": "",
        "image-paths": "",
        "ignore-paths": "**/*.md, .github/**, tests/**, .astro/test_*",
        "force": "false",
        "description": "",
        "wait": "true",
        "wait-timeout": "10m",
        "rollback-on-failure": "true",
        "dry-run": "false",
    }


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
    with pytest.raises(ValidationError):
        inputs.wait = False  # type: ignore[misc]


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
        "is required: set it to the ID of the Astro Deployment to deploy to"
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
    assert load(workspace, deploy_type=given).deploy_type == deploy_type


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
            ("dry-run", "dry_run")]  # fmt: skip


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
    )
    assert [p.name for p in found] == [
        "api-url",
        "organization-id",
        "deployment-id",
        "root-folder",
        "dags-folder",
        "deploy-type",
        "wait",
        "wait-timeout",
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
    for text in (repr(inputs), str(inputs), inputs.model_dump_json(), str(inputs.model_dump())):
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
    inputs = Inputs(
        api_token=SecretStr("t"),
        api_url="http://127.0.0.1:1/v1",
        organization_id="o",
        deployment_id="d",
        workspace=tmp_path,
        root_folder=".",
        root_path=tmp_path,
        dags_folder="dags",
        dags_path=tmp_path / "dags",
        deploy_type="dags-only",
        compare_to="auto",
        dag_paths=("dags/**",),
        image_paths=("**",),
        ignore_paths=(),
        force=False,
        description="",
        wait=True,
        wait_timeout=1.0,
        rollback_on_failure=True,
        dry_run=False,
    )
    assert inputs.warnings == ()
    assert os.fspath(inputs.dags_path).endswith("dags")


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


def test_force_is_a_boolean(workspace: Path) -> None:
    assert load(workspace, force="TRUE").force is True
    assert "true or false" in only_problem(workspace, "force", force="always")
