"""The project image: built, checked and pushed through the Docker Engine API.

Everything goes through the Docker SDK for Python (``docker.from_env()`` by default, so
``DOCKER_HOST`` is honoured; inside a container action the runner mounts
``/var/run/docker.sock``). No docker CLI, no shell. The SDK (and ``requests`` under it) is
imported on the first use of an engine, not with this module: a DAG-only deploy never pays
for it, and the Dockerfile helpers stay cheap to import.

The Engine API build is Docker's classic builder, not BuildKit: it cannot take build secrets
and fails on every ``RUN --mount``/``--network``/``--security`` flag, so such Dockerfiles are
refused before anything is sent, with a pointer to building the image in an earlier step
(docker/build-push-action with ``load: true``) and passing its name in ``image-name``.

The registry password is the Astro API token: it goes to the engine only as the SDK's
``X-Registry-Auth`` header, never on a command line, never to disk, never into a log line
or an error message (engine messages are redacted, and push errors carry no exception chain
that could reach the request headers).
"""

from __future__ import annotations

import functools
import re
import shlex
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ci_deploy.errors import ImageError, ImageNotFoundError
from ci_deploy.text import human_size

__all__ = [
    "BUILD_PLATFORM",
    "RUNTIME_IMAGE_REPOSITORIES",
    "RUNTIME_LABEL",
    "BuiltImage",
    "ImageBuilder",
    "buildkit_only_flags",
    "runtime_base_images_only",
]

RUNTIME_LABEL = "io.astronomer.docker.runtime.version"
"""The label every Astro Runtime image carries; Astro refuses images without it."""

RUNTIME_IMAGE_REPOSITORIES = (
    "quay.io/astronomer/astro-runtime",
    "astrocrpublic.azurecr.io/runtime",
    "images.astronomer.cloud/baseimages/astro-runtime",
)
"""The repositories of Astronomer's runtime images (any tag or digest)."""

BUILD_PLATFORM = "linux/amd64"
"""Astro runs amd64 images; the CLI builds with ``--platform=linux/amd64`` too."""

LOG_TAIL_LINES = 25
"""How many of the last build log lines a build error shows."""

_PROGRESS_INTERVAL = 15.0
"""Seconds between two progress lines of one layer while it is being pushed or pulled."""

_IMAGE_NAME_HINT = (
    "To deploy an image built elsewhere, build it in an earlier step of the job "
    "(for example docker/build-push-action with load: true) and pass its name in the "
    "'image-name' input."
)

_AUTH_FAILURE = re.compile(
    r"unauthori[sz]ed|authentication required|denied|forbidden|"
    r"no basic auth credentials|invalid username|incorrect username|\b401\b|\b403\b",
    re.IGNORECASE,
)
_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_BUILT_ID = re.compile(r"^Successfully built ([0-9a-f]{12,64})\s*$")


# --- the Docker SDK, imported on first use -------------------------------------------------


@dataclass(frozen=True)
class _Sdk:
    """What this module uses of the Docker SDK and of ``requests``."""

    from_env: Callable[[], Any]
    DockerException: type[Exception]
    APIError: type[Exception]
    NotFound: type[Exception]
    StreamParseError: type[Exception]
    RequestException: type[Exception]


@functools.cache
def _sdk() -> _Sdk:
    """Import the Docker SDK (about 130 ms, ``requests`` included) the first time it is needed."""
    import docker  # type: ignore[import-untyped,unused-ignore]
    import docker.errors  # type: ignore[import-untyped,unused-ignore]
    import requests.exceptions  # type: ignore[import-untyped,unused-ignore]

    return _Sdk(
        from_env=docker.from_env,
        DockerException=docker.errors.DockerException,
        APIError=docker.errors.APIError,
        NotFound=docker.errors.NotFound,
        StreamParseError=docker.errors.StreamParseError,
        RequestException=requests.exceptions.RequestException,
    )


# --- the Dockerfile -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Instruction:
    keyword: str
    """Upper-cased, like ``FROM``."""
    rest: str
    """The instruction's arguments, continuation lines joined."""


_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})


def _instructions(text: str) -> list[_Instruction]:
    """The instructions of a Dockerfile, as Docker reads them.

    Parser directives (``# escape=``) are honoured, comments and blank lines dropped, line
    continuations joined (comment lines inside them skipped), heredoc bodies skipped.
    """
    lines = text.splitlines()
    escape = "\\"
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index].strip())
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
        index += 1

    result: list[_Instruction] = []
    pending: list[str] = []
    while index < len(lines):
        line = lines[index]
        index += 1
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and (not stripped or stripped.startswith("#")):
            continue  # blank and comment lines inside a continuation
        body = line.rstrip()
        if body.endswith(escape):
            pending.append(body[: -len(escape)])
            continue
        pending.append(body)
        logical = " ".join(part.strip() for part in pending).strip()
        pending = []
        keyword, _, rest = logical.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        result.append(_Instruction(keyword, rest))
        if keyword in _HEREDOC_KEYWORDS:
            for heredoc in _HEREDOC.finditer(rest):
                dash, name = heredoc.group(1), heredoc.group(3)
                while index < len(lines):
                    body_line = lines[index]
                    index += 1
                    if (body_line.lstrip("\t") if dash else body_line) == name:
                        break
    if pending:
        logical = " ".join(part.strip() for part in pending).strip()
        keyword, _, rest = logical.partition(" ")
        result.append(_Instruction(keyword.upper(), rest.strip()))
    return result


def _global_args(rest: str) -> dict[str, str | None]:
    """``ARG A=1 B`` -> ``{"A": "1", "B": None}`` (None: no default)."""
    try:
        words = shlex.split(rest)
    except ValueError:
        words = rest.split()
    found: dict[str, str | None] = {}
    for word in words:
        name, equals, value = word.partition("=")
        found[name] = value if equals else None
    return found


_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-+])?(?P<word>[^}]*)\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def _substitute(word: str, args: Mapping[str, str | None]) -> str | None:
    """``word`` with the global ARG defaults substituted; None when that cannot be known."""
    unknown = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match.group("braced") or match.group("plain")
        value = args.get(name)
        op, alternative = match.group("op"), match.group("word") or ""
        if op is None:
            if alternative or value is None:
                unknown = True  # ${A%x} and friends, or an ARG without a default
                return ""
            return value
        if "$" in alternative:
            unknown = True
            return ""
        if op == ":-":
            return value if value else alternative
        if op == "-":
            return value if value is not None else alternative
        if op == ":+":
            return alternative if value else ""
        return alternative if value is not None else ""  # "+"

    result = _VARIABLE.sub(replace, word)
    if unknown or "$" in result:
        return None
    return result


def _is_runtime_image(reference: str) -> bool:
    reference = reference.lower()
    return any(
        reference == repository or reference.startswith((f"{repository}:", f"{repository}@"))
        for repository in RUNTIME_IMAGE_REPOSITORIES
    )


def runtime_base_images_only(dockerfile_text: str) -> bool:
    """Whether every ``FROM`` names an Astronomer runtime image (so ``pull`` is worth it).

    A ``FROM`` naming an earlier stage counts as fine. ``FROM --platform=... image AS name``
    is understood; ``$ARG`` names are resolved from the ARG defaults declared before the
    first ``FROM``, and anything that cannot be resolved counts as not a runtime image.
    A Dockerfile without ``FROM`` gives False.
    """
    args: dict[str, str | None] = {}
    stages: set[str] = set()
    seen_from = False
    for instruction in _instructions(dockerfile_text):
        if instruction.keyword == "ARG" and not seen_from:
            args.update(_global_args(instruction.rest))
            continue
        if instruction.keyword != "FROM":
            continue
        seen_from = True
        words = instruction.rest.split()
        while words and words[0].startswith("--"):
            words.pop(0)
        if not words:
            return False
        image = _substitute(words[0], args)
        if image is None:
            return False
        if image.lower() not in stages and not _is_runtime_image(image):
            return False
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
    return seen_from


def buildkit_only_flags(dockerfile_text: str) -> list[str]:
    """The ``RUN`` flags of a Dockerfile that only BuildKit understands, like ``--mount=...``.

    The Engine API build (the classic builder) fails on every one of them.
    """
    flags: list[str] = []
    for instruction in _instructions(dockerfile_text):
        if instruction.keyword != "RUN":
            continue
        for word in instruction.rest.split():
            if not word.startswith("--"):
                break
            flags.append(word)
    return flags


def _mount_type(flag: str) -> str:
    """``--mount=type=secret,id=x`` -> ``secret``; bind is Docker's default type."""
    _, _, spec = flag.partition("=")
    for field in spec.split(","):
        key, _, value = field.partition("=")
        if key.strip().lower() == "type":
            return value.strip().strip("\"'").lower()
    return "bind"


def _refuse_buildkit_only(dockerfile_text: str, dockerfile: Path) -> None:
    flags = buildkit_only_flags(dockerfile_text)
    if not flags:
        return
    mounts = [_mount_type(flag) for flag in flags if flag.lower().startswith("--mount")]
    if "secret" in mounts:
        raise ImageError(
            f"{dockerfile} uses build secrets (RUN --mount=type=secret), which the Docker "
            "Engine API build this action runs cannot provide. Build the image in an earlier "
            "step with docker/build-push-action (its 'secrets' input, and load: true) and "
            "pass its name in the 'image-name' input.",
            title="Build secrets not supported",
        )
    names = list(dict.fromkeys(flag.partition("=")[0] for flag in flags))
    need = "needs" if len(names) == 1 else "need"
    raise ImageError(
        f"{dockerfile} uses RUN {', '.join(names)}, which {need} BuildKit; the Docker Engine "
        "API build this action runs is Docker's classic builder, which fails on them. Remove "
        "them, or "
        "build the image in an earlier step (for example docker/build-push-action with "
        "load: true) and pass its name in the 'image-name' input.",
        title="BuildKit feature not supported",
    )


# --- the image ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltImage:
    """An image in the Docker engine."""

    image_id: str
    """``sha256:...``."""
    reference: str
    """The name it was built or found as."""
    runtime_version: str
    """The value of :data:`RUNTIME_LABEL`; ``""`` when the image lacks it."""


def _built_image(attrs: Any, reference: str) -> BuiltImage:
    if not isinstance(attrs, dict) or not isinstance(attrs.get("Id"), str):
        raise ImageError(f"The Docker engine's description of {reference} has no image id.")
    config = attrs.get("Config")
    labels = config.get("Labels") if isinstance(config, dict) else None
    runtime = labels.get(RUNTIME_LABEL) if isinstance(labels, dict) else None
    return BuiltImage(
        image_id=attrs["Id"],
        reference=reference,
        runtime_version=runtime.strip() if isinstance(runtime, str) else "",
    )


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _stream_error(chunk: Mapping[str, Any]) -> str | None:
    """The error message of a stream line, or None when it reports none."""
    detail = chunk.get("errorDetail")
    error = chunk.get("error")
    if error is None and detail is None:
        return None
    if error:
        return str(error).strip()
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"]).strip()
    return "the Docker engine reported an error without a message"


class _StreamLog:
    """Turns the engine's JSON stream into log lines, keeping the last ones for errors.

    ``stream`` text is split into lines; ``status`` lines are logged when a layer's status
    changes (and every :data:`_PROGRESS_INTERVAL` seconds while it moves), not per tick.
    """

    def __init__(self, log: Callable[[str], None], secrets: Iterable[str] = ()) -> None:
        self._log = log
        self._secrets = tuple(secret for secret in secrets if secret)
        self.tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.built_id = ""
        self._buffer = ""
        self._status: dict[str, str] = {}
        self._last_progress: dict[str, float] = {}
        self._last_plain = ""

    def line(self, text: str) -> None:
        text = _redact(text.rstrip(), self._secrets)
        if not text.strip():
            return
        self.tail.append(text)
        self._log(text)

    def text(self, text: str) -> None:
        self._buffer += text
        *complete, self._buffer = self._buffer.split("\n")
        for line in complete:
            self._text_line(line)

    def _text_line(self, line: str) -> None:
        if "\r" in line:  # progress redrawn in place: keep the last state
            line = line.rstrip("\r").rsplit("\r", 1)[-1]
        match = _BUILT_ID.match(line.strip())
        if match:
            self.built_id = match.group(1)
        self.line(line)

    def flush(self) -> None:
        if self._buffer:
            line, self._buffer = self._buffer, ""
            self._text_line(line)

    def status(self, chunk: Mapping[str, Any]) -> None:
        status = str(chunk.get("status", "")).strip()
        if not status:
            return
        layer = chunk.get("id")
        if not layer:
            if status != self._last_plain:
                self._last_plain = status
                self.line(status)
            return
        layer = str(layer)
        now = time.monotonic()
        if self._status.get(layer) != status:
            self._status[layer] = status
            self._last_progress[layer] = now
            self.line(f"{layer}: {status}")
            return
        detail = chunk.get("progressDetail")
        if not isinstance(detail, dict):
            return
        current, total = detail.get("current"), detail.get("total")
        if not isinstance(current, int | float) or now - self._last_progress[layer] < (
            _PROGRESS_INTERVAL
        ):
            return
        self._last_progress[layer] = now
        if isinstance(total, int | float) and total > 0:
            self.line(f"{layer}: {status} {human_size(current)} of {human_size(total)}")
        else:
            self.line(f"{layer}: {status} {human_size(current)}")


class ImageBuilder:
    """Builds, inspects, checks and pushes images through one Docker engine.

    The engine client is made by ``client_factory`` on first use (by default
    ``docker.from_env``: ``DOCKER_HOST``, else the Docker context, else
    ``/var/run/docker.sock``) and kept; :meth:`close` (or leaving a ``with`` block) closes it.
    """

    def __init__(
        self,
        *,
        log: Callable[[str], None],
        group: Callable[[str], AbstractContextManager[None]],
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self._log = log
        self._group = group
        self._client_factory = client_factory
        self._client: Any = None

    def __enter__(self) -> ImageBuilder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the engine client, if one was made."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _api(self) -> Any:
        """The low-level API client; ImageError when no engine answers."""
        if self._client is None:
            sdk = _sdk()
            factory = self._client_factory or sdk.from_env
            try:
                self._client = factory()
            except (sdk.DockerException, OSError) as exc:
                raise ImageError(_no_engine(exc), title="Docker engine not reachable") from exc
        return self._client.api

    # --- build -------------------------------------------------------------------------

    def build(self, context_dir: Path, *, tag: str) -> BuiltImage:
        """Build ``context_dir`` (its ``Dockerfile``) as ``tag`` for linux/amd64.

        The base images are pulled when every ``FROM`` is an Astro Runtime image. The build
        log goes to the log in the group "Building the image".
        """
        dockerfile = context_dir / "Dockerfile"
        try:
            text = dockerfile.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ImageError(
                f"There is no Dockerfile in {context_dir}: an image deploy builds the "
                "project's Dockerfile.",
                title="No Dockerfile",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ImageError(f"Could not read {dockerfile}: {exc}", title="No Dockerfile") from exc
        _refuse_buildkit_only(text, dockerfile)
        pull = runtime_base_images_only(text)

        api = self._api()
        with self._group("Building the image"):
            self._log(
                f"Building {tag} for {BUILD_PLATFORM} from {context_dir}"
                + (" (pulling the newest Astro Runtime base image)" if pull else "")
            )
            image_id = self._run_build(api, context_dir, tag, pull)
            image = self._inspect(api, image_id or tag, reference=tag)
            self._log(f"Built {tag} ({_short(image.image_id)})")
        return image

    def _run_build(self, api: Any, context_dir: Path, tag: str, pull: bool) -> str:
        """Run the build and stream its log; return the image id it reports (or "")."""
        sdk = _sdk()
        out = _StreamLog(self._log)
        image_id = ""
        failure: str | None = None
        try:
            stream = api.build(
                path=str(context_dir),
                tag=tag,
                platform=BUILD_PLATFORM,
                pull=pull,
                rm=True,
                decode=True,
            )
            for chunk in stream:
                if not isinstance(chunk, dict):
                    continue
                if "stream" in chunk:
                    out.text(str(chunk["stream"]))
                if "status" in chunk:
                    out.status(chunk)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                    image_id = aux["ID"]
                if failure is None:  # read on to the end, so the connection is released
                    failure = _stream_error(chunk)
        except sdk.APIError as exc:
            failure = _api_error_text(exc)
        except sdk.RequestException as exc:
            out.flush()
            raise ImageError(
                f"The connection to the Docker engine failed during the build: {exc}",
                title="Image build failed",
            ) from exc
        except (sdk.DockerException, sdk.StreamParseError, OSError) as exc:
            failure = str(exc)
        out.flush()
        if failure is not None:
            raise ImageError(_build_failed(tag, failure, out.tail), title="Image build failed")
        return image_id or out.built_id

    # --- inspect -------------------------------------------------------------------------

    def _inspect(self, api: Any, name: str, *, reference: str) -> BuiltImage:
        """The image ``name``; ImageNotFoundError when the engine has no such image."""
        sdk = _sdk()
        try:
            attrs = api.inspect_image(name)
        except sdk.NotFound:
            raise ImageNotFoundError(
                f"The image {reference} is not in the Docker engine."
            ) from None
        except sdk.APIError as exc:
            raise ImageError(
                f"Could not inspect the image {reference}: {_api_error_text(exc)}"
            ) from exc
        except sdk.RequestException as exc:
            raise ImageError(
                f"The connection to the Docker engine failed while inspecting {reference}: {exc}"
            ) from exc
        return _built_image(attrs, reference)

    def existing(self, image_name: str) -> BuiltImage:
        """An image the workflow built or pulled before, like one docker/build-push-action
        loaded (``load: true``)."""
        if not image_name.strip():
            raise ImageNotFoundError("No image name given.")
        api = self._api()
        try:
            image = self._inspect(api, image_name, reference=image_name)
        except ImageNotFoundError:
            raise ImageNotFoundError(
                f"The image {image_name} is not in the Docker engine this action uses. Build it "
                "in an earlier step of the same job and load it into the engine (for example "
                "docker/build-push-action with load: true), or pull it, before this step."
            ) from None
        self._log(f"Using the image {image_name} ({_short(image.image_id)})")
        return image

    def check_runtime(self, image: BuiltImage) -> str:
        """The image's Astro Runtime version (its :data:`RUNTIME_LABEL`); ImageError without."""
        if not image.runtime_version:
            raise ImageError(
                f"{image.reference} is not an Astro Runtime image: the label {RUNTIME_LABEL} "
                "is missing; build FROM an Astro Runtime image (for example "
                "astrocrpublic.azurecr.io/runtime:3.0-1).",
                title="Not an Astro Runtime image",
            )
        self._log(f"Astro Runtime {image.runtime_version}")
        return image.runtime_version

    # --- push ----------------------------------------------------------------------------

    def push(self, image: BuiltImage, repository: str, tag: str, *, token: str) -> str:
        """Tag ``image`` as ``repository:tag`` and push it, logging in as ``cli`` with
        ``token``; return the pushed digest (``sha256:...``), or "" when the engine did not
        report one."""
        if not token:
            raise ImageError("Pushing the image needs the Astro API token.", title="Push failed")
        target = f"{repository}:{tag}"
        api = self._api()
        with self._group(f"Pushing the image to {target}"):
            failure = self._tag(api, image, repository, tag)
            if failure is None:
                self._log(f"Tagged {image.reference} ({_short(image.image_id)}) as {target}")
                out = _StreamLog(self._log, secrets=(token,))
                digest, failure = _stream_push(api, out, repository, tag, token)
            if failure is not None:
                # Raised here, outside every except block: the engine client's exception
                # (whose request holds X-Registry-Auth) is not chained to the error.
                message = _redact(failure, (token,))
                auth = bool(_AUTH_FAILURE.search(message))
                text = f"Pushing {target} failed: {message}"
                if auth:
                    text += (
                        " This looks like the registry refused the login (user 'cli' with the "
                        "Astro API token as password): check that the token is valid and may "
                        "deploy to this Deployment."
                    )
                raise ImageError(
                    text, title="Registry login failed" if auth else "Image push failed"
                )
            self._log(f"Pushed {target}" + (f" ({digest})" if digest else ""))
        return digest

    def _tag(self, api: Any, image: BuiltImage, repository: str, tag: str) -> str | None:
        """Tag the image; the failure's text, or None."""
        sdk = _sdk()
        try:
            if api.tag(image.image_id, repository, tag=tag):
                return None
            return f"the Docker engine did not tag {image.reference} as {repository}:{tag}"
        except sdk.APIError as exc:
            return f"tagging {image.reference}: {_api_error_text(exc)}"
        except sdk.RequestException as exc:
            return f"the connection to the Docker engine failed: {exc}"
        except sdk.DockerException as exc:
            return str(exc)


def _stream_push(
    api: Any, out: _StreamLog, repository: str, tag: str, token: str
) -> tuple[str, str | None]:
    """Push and log the progress; (digest, failure text or None)."""
    sdk = _sdk()
    digest = ""
    failure: str | None = None
    try:
        stream = api.push(
            repository,
            tag=tag,
            stream=True,
            decode=True,
            auth_config={"username": "cli", "password": token},
        )
        for chunk in stream:
            if not isinstance(chunk, dict):
                continue
            if "status" in chunk:
                out.status(chunk)
                match = _PUSH_DIGEST.search(str(chunk["status"]))
                if match and not digest:
                    digest = match.group(1)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                digest = aux["Digest"]
            if failure is None:  # read on to the end, so the connection is released
                failure = _stream_error(chunk)
    except sdk.APIError as exc:
        return digest, _api_error_text(exc)
    except sdk.RequestException as exc:
        return digest, f"the connection to the Docker engine failed: {exc}"
    except (sdk.DockerException, sdk.StreamParseError) as exc:
        return digest, str(exc)
    return ("" if failure else digest), failure


def _api_error_text(exc: Any) -> str:
    explanation = getattr(exc, "explanation", None)
    status = getattr(exc, "status_code", None)
    if explanation:
        text = str(explanation)
        if isinstance(explanation, bytes):
            text = explanation.decode("utf-8", "replace")
        return f"{text} (HTTP {status})" if status else text
    return str(exc)


def _build_failed(tag: str, failure: str, tail: Iterable[str]) -> str:
    lines = list(tail)
    text = f"Building {tag} failed: {failure}"
    if lines:
        text += f"\nThe last {len(lines)} lines of the build log:\n" + "\n".join(lines)
    return text


def _no_engine(exc: BaseException) -> str:
    return (
        f"No Docker engine could be reached ({exc}). The action builds the image through the "
        "Docker Engine API: it needs the Docker socket /var/run/docker.sock (GitHub-hosted "
        "runners mount it into container actions) or DOCKER_HOST pointing at an engine. "
        + _IMAGE_NAME_HINT
    )
