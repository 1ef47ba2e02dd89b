"""Each input's own rule: its trimmed text (and the run) -> its value, or InvalidInput.

A rule sees only its own input's text and the :class:`Run`; the rules between inputs are in
:class:`ci_deploy.inputs.Inputs`. Every message completes the sentence "input 'NAME' ...": it
says what is wrong and what is accepted, and never shows the API token.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from ci_deploy.astro.limits import DESCRIPTION_MAX
from ci_deploy.changeset import glob_problem
from ci_deploy.compression import LEVELS
from ci_deploy.secret import Secret
from ci_deploy.verification import SmokeDag

TOKEN_ENV = "ASTRO_API_TOKEN"  # noqa: S105 - a variable name, not a secret
DIGITALOCEAN_TOKEN_ENV = "DIGITALOCEAN_TOKEN"  # noqa: S105 - a variable name, not a secret
DIGITALOCEAN_API_URL = "https://api.digitalocean.com"
"""api-url's default with platform: digitalocean."""

COMPARE_MODES: tuple[str, ...] = ("auto", "deployed", "event")

DEPLOYMENT_NAME_MAX = 256
"""The longest ``deployment-name``, in characters."""

URL_MAX = 2048
"""The longest ``api-url``, in characters."""

ID_MAX = 64
"""The longest ID input (organization, Deployment, Workspace, deploy), in characters.

Astro's IDs are 25-character cuids; the limit leaves room and keeps a request's URL short.
"""

FOLDER_MAX = 1024
"""The longest folder input (``root-folder``, ``dags-folder``, ``bundle-mount-path``), in
characters: with the workspace before them, paths stay well under Linux's 4096."""

FOLDER_NAME_MAX = 255
"""The longest name of one folder in a folder input: Linux's limit for one file name."""

MAX_WAIT_TIMEOUT = 6 * 3600
"""The longest ``wait-timeout``, in seconds."""

_DURATION = re.compile(r"([0-9]+)([smh]?)", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
_ID_FORBIDDEN = re.compile(r"[\s/\\?#%\x00-\x1f\x7f]")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_REV = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}")
_BUNDLE_TYPE = re.compile(r"[a-z0-9_-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""A control character: C0 (newline, tab, escape...), DEL or C1."""

# A docker image reference, after the grammar of github.com/distribution/reference:
# [registry[:port]/]name-component[/name-component...][:tag][@sha256:hex]
_REGISTRY_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_REGISTRY = rf"{_REGISTRY_PART}(?:\.{_REGISTRY_PART})*(?::[0-9]+)?"
_NAME_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<registry>{_REGISTRY})/)?(?P<name>{_NAME_PART}(?:/{_NAME_PART})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)
_IMAGE_NAME_MAX = 255  # the longest repository name (registry and path) docker accepts


class InvalidInput(Exception):
    """An input breaks its rule; the message completes the sentence "input 'NAME' ..."."""


class Run(NamedTuple):
    """What an input's own rule knows besides its text: never another input's value."""

    workspace: Path
    """The resolved folder root-folder is relative to."""
    token_from_env: bool
    """Whether the API token was read from ``ASTRO_API_TOKEN``."""


Rule = Callable[[str, Run], object]


def parse_duration(text: str) -> float:
    """Return the seconds of ``90``, ``90s``, ``5m`` or ``1h`` (more than 0, at most 6h).

    Raises ValueError whose message completes "wait-timeout ...".
    """
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"must be a duration such as 90, 90s, 5m or 1h; got {shown(value)}")
    digits = match.group(1).lstrip("0")
    too_long = f"must be at most 6h ({MAX_WAIT_TIMEOUT} seconds); got {shown(value)}"
    if len(digits) > 9:
        raise ValueError(too_long)
    seconds = int(digits or "0") * _UNIT_SECONDS[match.group(2).lower()]
    if seconds == 0:
        raise ValueError(f"must be more than 0 seconds; got {shown(value)}")
    if seconds > MAX_WAIT_TIMEOUT:
        raise ValueError(too_long)
    return float(seconds)


def organization_from_token(token: str) -> str | None:
    """Return the organization ID in a JWT's ``permissions`` claim, or None.

    The signature is not verified: the API does that. Any malformed token gives None.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims: object = json.loads(data)
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    permissions = claims.get("permissions")
    if not isinstance(permissions, list):
        return None
    for entry in permissions:
        if isinstance(entry, str) and entry.startswith("organizationId:"):
            organization = entry.removeprefix("organizationId:").strip()
            if 0 < len(organization) <= ID_MAX and not _ID_FORBIDDEN.search(organization):
                return organization
    return None


def shown(value: str, limit: int = 80) -> str:
    """The value quoted for a message, cut when long; control characters stay visible."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


# --- the rules, one per kind of input ---------------------------------------------------------


def token(text: str, run: Run) -> Secret:
    if not text:
        raise InvalidInput(
            f"is required: set the api-token input or the {TOKEN_ENV} environment variable"
        )
    if not _TOKEN_CHARS.fullmatch(text):
        where = f" (read from {TOKEN_ENV})" if run.token_from_env else ""
        raise InvalidInput(
            f"must be one line of printable ASCII without spaces{where}; the value is not shown"
        )
    return Secret(text)


GITHUB_TOKEN_DEFAULT = "${{ github.token }}"  # noqa: S105 - an expression, not a secret
"""action.yml's default of github-token: the runner expands it to the workflow's token."""

GITHUB_ENVIRONMENT_MAX = 255
"""The longest name of a GitHub environment."""


def github_token(text: str, _run: Run) -> Secret:
    """The GitHub token, or "" (no PR comment, no GitHub Deployment: said when needed)."""
    if text and not _TOKEN_CHARS.fullmatch(text):
        raise InvalidInput("must be one line of printable ASCII without spaces; not shown")
    return Secret(text)


def url(text: str, _run: Run) -> str:
    example = "an absolute https URL such as https://api.astronomer.io/v1"
    if len(text) > URL_MAX:
        raise InvalidInput(
            f"must be {example} of at most {URL_MAX} characters; got {len(text)} characters"
            " (the URL is not shown)"
        )
    if "?" in text or "#" in text:
        raise InvalidInput(
            "must not have a query (?...) or a fragment (#...); the URL is not shown"
        )
    if "@" in text:
        raise InvalidInput("must not contain '@' nor a user name or password; the URL is not shown")
    if _SPACE_OR_CONTROL.search(text):
        raise InvalidInput(f"must be {example} without whitespace; got {shown(text)}")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidInput(f"must be {example}; got {shown(text)}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise InvalidInput(f"must be {example}; got {shown(text)}")
    if scheme == "http" and not _is_loopback(host):
        raise InvalidInput(
            f"{shown(text)} must use https"
            " (http is allowed only for a loopback host such as 127.0.0.1)"
        )
    return text.rstrip("/")


def _optional_id(kind: str) -> Rule:
    """The rule of an input that is empty or an ID, ``kind`` being e.g. "an Astro ID"."""

    def rule(text: str, _run: Run) -> str:
        if len(text) > ID_MAX:
            raise InvalidInput(
                f"must be {kind} of at most {ID_MAX} characters (Astro's IDs have 25); got"
                f" {len(text)} characters: {shown(text)}"
            )
        if _ID_FORBIDDEN.search(text):
            raise InvalidInput(
                f"must be {kind} without whitespace or the characters / \\ ? # %; got {shown(text)}"
            )
        return text

    return rule


astro_id = _optional_id("an Astro ID")
deploy_id = _optional_id("a deploy ID")
app_id = _optional_id("an App Platform app ID")


def _name(what: str, limit: int) -> Rule:
    """The rule of an input that is a name: printable text on one line, ``limit`` at most."""

    def rule(text: str, _run: Run) -> str:
        if len(text) > limit or not text.isprintable():
            raise InvalidInput(
                f"must be {what}: printable text of at most {limit} characters on one line;"
                f" got {shown(text)}"
            )
        return text

    return rule


deployment_name = _name("a Deployment's name", DEPLOYMENT_NAME_MAX)
app_name = _name("an app's name", 32)
_REGISTRY_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def docr_registry(text: str, _run: Run) -> str:
    """A DigitalOcean Container Registry's name (lower-case letters, digits, dashes)."""
    if text and not _REGISTRY_NAME.fullmatch(text):
        raise InvalidInput(
            "must be a container registry's name: lower-case letters, digits and dashes, at"
            f" most 63; got {shown(text)}"
        )
    return text


def digitalocean_token(text: str, run: Run) -> Secret:
    """Optional here (only platform: digitalocean needs it, a rule between inputs)."""
    if text and not _TOKEN_CHARS.fullmatch(text):
        raise InvalidInput(
            "must be one line of printable ASCII without spaces; the value is not shown"
        )
    return Secret(text)


def app_spec(text: str, _run: Run) -> str:
    """The app spec's path, relative to root-folder and inside it (POSIX)."""
    path = posixpath.normpath(text.replace("\\", "/"))
    if path.startswith("/") or path == ".." or path.startswith("../") or path == ".":
        raise InvalidInput(
            f"must be a file inside root-folder, relative to it, such as .do/app.yaml; got"
            f" {shown(text)}"
        )
    return path


github_environment = _name(
    "a GitHub environment's name (such as production)", GITHUB_ENVIRONMENT_MAX
)


def one_of(choices: tuple[str, ...]) -> Rule:
    """The rule of an input that is one of ``choices``, in any case; the value is lower-case."""

    def rule(text: str, _run: Run) -> str:
        if text.lower() not in choices:
            raise InvalidInput(f"must be one of {', '.join(choices)}; got {shown(text)}")
        return text.lower()

    return rule


def folder_problem(text: str) -> str | None:
    """Why ``text`` cannot be a folder input, whatever folder it names; None when it can.

    The message completes "input 'NAME' ...". A folder is one line of at most
    :data:`FOLDER_MAX` characters without control characters, each name in it at most
    :data:`FOLDER_NAME_MAX`.
    """
    if len(text) > FOLDER_MAX:
        return (
            f"must be a folder path of at most {FOLDER_MAX} characters; got {len(text)}"
            f" characters: {shown(text)}"
        )
    if _CONTROL.search(text):
        return (
            "must be a folder path without control characters (such as a newline, a tab or an"
            f" escape); got {shown(text)}"
        )
    longest = max(len(name) for name in text.replace("\\", "/").split("/"))
    if longest > FOLDER_NAME_MAX:
        return (
            f"must be a folder path whose folder names have at most {FOLDER_NAME_MAX}"
            f" characters; one of {shown(text)} has {longest}"
        )
    return None


def root_folder(text: str, run: Run) -> str:
    """The existing folder ``text`` inside the workspace, relative to it (``.`` for itself)."""
    problem = folder_problem(text)
    if problem:
        raise InvalidInput(problem)
    where = f"the workspace {str(run.workspace)!r}"
    if Path(text).is_absolute():
        raise InvalidInput(
            f"must be a folder relative to {where} such as . or airflow; got {shown(text)}"
        )
    try:
        path = (run.workspace / text).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise InvalidInput(f"must be a folder that can be resolved; {shown(text)} cannot") from None
    if not path.is_relative_to(run.workspace):
        raise InvalidInput(
            f"must stay inside {where} (after following .. and symlinks);"
            f" {shown(text)} leads to {str(path)!r}"
        )
    try:
        found, exists = path.is_dir(), path.exists()
    except OSError as exc:  # e.g. not readable
        raise InvalidInput(
            f"must be a directory that can be read; {shown(text)} cannot ({exc.strerror})"
        ) from None
    if not found:
        what = "is not a directory" if exists else "does not exist"
        raise InvalidInput(f"must be an existing directory inside {where}; {shown(text)} {what}")
    return path.relative_to(run.workspace).as_posix()


def dags_folder(text: str, _run: Run) -> str:
    """The folder normalised, lexically inside root-folder (symlinks are checked later)."""
    problem = folder_problem(text)
    if problem:
        raise InvalidInput(problem)
    folder = posixpath.normpath(text.replace("\\", "/"))
    if folder.startswith("/") or folder == ".." or folder.startswith("../"):
        raise InvalidInput(
            f"must be a folder inside root-folder, relative to it, such as dags; got {shown(text)}"
        )
    return folder


def config_file(text: str, run: Run) -> str:
    """A file path relative to the workspace that stays inside it (lexically), POSIX.

    Whether the file exists is the reader's to say: only some actions need it.
    """
    problem = folder_problem(text)
    if problem:
        raise InvalidInput(problem.replace("folder path", "file path"))
    path = posixpath.normpath(text.replace("\\", "/"))
    if Path(text).is_absolute() or path == ".." or path.startswith("../") or path == ".":
        raise InvalidInput(
            f"must be a file relative to the workspace {str(run.workspace)!r}, such as"
            f" .astro/ci-deploy.yaml; got {shown(text)}"
        )
    return path


def image_name(text: str, _run: Run) -> str:
    match = _IMAGE_REFERENCE.fullmatch(text)
    if text and (match is None or len(_repository(match)) > _IMAGE_NAME_MAX):
        raise InvalidInput(
            "must be a docker image reference such as my-airflow:1.0 or"
            " registry.example.com:5000/team/airflow:v2"
            " ([registry[:port]/]name[:tag][@sha256:digest], lower-case name, no"
            f" whitespace); got {shown(text)}"
        )
    return text


def bundle_type(text: str, _run: Run) -> str:
    if text and not _BUNDLE_TYPE.fullmatch(text):
        raise InvalidInput(
            "must be a bundle type such as dbt: lower-case letters, digits, _ and -;"
            f" got {shown(text)}"
        )
    return text


def bundle_mount_path(text: str, _run: Run) -> str:
    if not text:
        return ""
    problem = folder_problem(text)
    if problem:
        raise InvalidInput(problem)
    segments = text.split("/")
    if not text.startswith("/") or ".." in segments:
        raise InvalidInput(
            "must be an absolute POSIX path without .. such as"
            f" /usr/local/airflow/dbt/jaffle_shop; got {shown(text)}"
        )
    normal = "/" + "/".join(s for s in segments if s not in ("", "."))
    if normal == "/":
        raise InvalidInput(f"must name a folder below /, not / itself; got {shown(text)}")
    return normal


def compare_to(text: str, _run: Run) -> str:
    if text.lower() in COMPARE_MODES:
        return text.lower()
    if _REV.fullmatch(text) and ".." not in text and not text.endswith((".", "/", ".lock")):
        return text
    raise InvalidInput(
        f"must be {', '.join(COMPARE_MODES)}, or a commit SHA or git ref such as "
        f"main or v1.2.0; got {shown(text)}"
    )


DEFAULT_IGNORE_PATHS = "**/*.md, .github/**, tests/**, .astro/test_*"
"""Changes that never need a deploy, as gitignore-style globs relative to root-folder."""


def _glob_list(text: str) -> tuple[str, ...]:
    """The globs of a text, one per line or separated by commas."""
    return tuple(p.strip() for p in re.split(r"[\n,]", text) if p.strip())


_DEFAULT_GLOBS = frozenset(_glob_list(DEFAULT_IGNORE_PATHS))
"""Globs known to be good (the tests check them): not compiled, so a run with the default
globs loads no glob matcher until it matches changed files."""


def globs(text: str, _run: Run) -> tuple[str, ...]:
    patterns = _glob_list(text)
    for pattern in patterns:
        problem = None if pattern in _DEFAULT_GLOBS else glob_problem(pattern)
        if problem:
            raise InvalidInput(
                f"must be gitignore-style globs relative to root-folder, one per line or "
                f"separated by commas, such as dags/** or **/*.md; {shown(pattern)} {problem}"
            )
    return patterns


def boolean(text: str, _run: Run) -> bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise InvalidInput(f"must be true or false, got {shown(text)}")


def compression_level(text: str, _run: Run) -> int:
    """A gzip level of the tarballs: 0 (stored) to 9 (smallest); see ci_deploy.compression."""
    if text.isascii() and text.isdigit() and int(text) in LEVELS:
        return int(text)
    raise InvalidInput(
        f"must be a whole number from {LEVELS[0]} (no compression) to {LEVELS[-1]} (smallest, "
        f"slowest), as gzip's levels; got {shown(text)}"
    )


def description(text: str, _run: Run) -> str:
    return text[:DESCRIPTION_MAX]


def wait_timeout(text: str, _run: Run) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def verify_window(text: str, _run: Run) -> float:
    """``verify-window``: a duration like ``wait-timeout``, or ``0`` for no settle window."""
    match = _DURATION.fullmatch(text.strip())
    if match is not None and not match.group(1).strip("0"):
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(f"{exc}, or 0 for no settle window") from None


_DAG_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")
"""Airflow's DAG ids: letters, digits, dashes, dots and underscores (at most 250)."""
SMOKE_DAGS_MAX = 20
"""The most DAGs ``smoke-dags`` names: each is a run triggered and followed."""


def smoke_dags(text: str, _run: Run) -> tuple[SmokeDag, ...]:
    """``smoke-dags``: DAG ids, one per line or separated by commas, each optionally
    followed by its run's ``conf`` as a JSON object: ``etl_daily {"full": true}``."""
    decoder = json.JSONDecoder()
    found: list[SmokeDag] = []
    at, end = 0, len(text)
    while True:
        while at < end and (text[at].isspace() or text[at] == ","):
            at += 1
        if at >= end:
            break
        match = _DAG_ID.match(text, at)
        if match is None:
            raise InvalidInput(
                "must be DAG ids (letters, digits, -, . and _), one per line or separated by "
                'commas, each optionally followed by a JSON object conf: etl_daily {"full": '
                f"true}}; got {shown(text[at : at + 40])}"
            )
        dag_id, at = match.group(), match.end()
        while at < end and text[at] in " \t":
            at += 1
        conf: dict[str, object] = {}
        if at < end and text[at] == "{":
            try:
                value, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    f"has a conf for DAG {dag_id} that is not valid JSON ({exc.msg} at "
                    f'character {exc.pos - at + 1}); write it as a JSON object: {{"key": 1}}'
                ) from None
            conf = value
        if at < end and not (text[at].isspace() or text[at] == ","):
            raise InvalidInput(
                f"must separate DAG ids by commas or new lines; after {dag_id} came "
                f"{shown(text[at : at + 40])} (a conf is a JSON object, starting with {{)"
            )
        if any(dag.dag_id == dag_id for dag in found):
            raise InvalidInput(f"names DAG {dag_id} twice; name each DAG once")
        found.append(SmokeDag(dag_id, conf))
    if len(found) > SMOKE_DAGS_MAX:
        raise InvalidInput(f"names {len(found)} DAGs; at most {SMOKE_DAGS_MAX} are smoke-tested")
    return tuple(found)


_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PULL_REQUEST_MAX = 10_000
"""The most pull request numbers ``open-pull-requests`` takes."""


def _env_lines(text: str) -> list[tuple[int, str]]:
    """The lines of a KEY=value list that are not blank or ``#`` comments, numbered from 1."""
    lines = enumerate(text.splitlines(), start=1)
    return [(n, line) for n, line in lines if line.strip() and not line.lstrip().startswith("#")]


def preview_env_values(text: str) -> list[str]:
    """Every value in a ``preview-env`` text, leniently: what the runner must mask first."""
    values = [line.partition("=")[2] for _, line in _env_lines(text)]
    return [value for value in (v.strip() for v in values) if value]


def preview_env(text: str, _run: Run) -> tuple[tuple[str, Secret], ...]:
    """``KEY=value`` lines (blank lines and ``# comments`` skipped) -> (key, secret value).

    Messages name the line and the key, never a value.
    """
    found: dict[str, Secret] = {}
    for number, line in _env_lines(text):
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not _ENV_KEY.fullmatch(key):
            raise InvalidInput(
                f"must be KEY=value lines, a KEY being letters, digits and _ (not first a "
                f"digit); line {number} is not (its value is not shown)"
            )
        if key in found:
            raise InvalidInput(f"sets {key} twice (line {number}); set each variable once")
        found[key] = Secret(value.strip())
    return tuple(found.items())


def pull_request_numbers(text: str, _run: Run) -> tuple[int, ...] | None:
    """Open pull request numbers: a JSON array or numbers split by commas or spaces, ``[]``
    for none; None when the input is not set."""
    if not text:
        return None
    words = re.split(r"[\s,]+", text.strip().removeprefix("[").removesuffix("]").strip())
    words = [word for word in words if word]
    if len(words) > PULL_REQUEST_MAX or not all(w.isdigit() and w.isascii() for w in words):
        raise InvalidInput(
            "must list pull request numbers, as a JSON array such as [12, 15] or separated by"
            f" commas or spaces, [] for none, at most {PULL_REQUEST_MAX}; got {shown(text)}"
        )
    return tuple(sorted({int(word) for word in words}))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _repository(match: re.Match[str]) -> str:
    """The registry and name of a matched image reference, without tag and digest."""
    registry = match["registry"]
    return f"{registry}/{match['name']}" if registry else match["name"]
