"""The project image: built, checked and pushed through the Docker Engine API.

Everything goes through the Docker SDK for Python (``docker.from_env()`` by default, so
``DOCKER_HOST`` is honoured; inside a container action the runner mounts
``/var/run/docker.sock``). No docker CLI, no shell. The SDK (and ``requests`` under it) is
imported on the first use of an engine, not with this module: a DAG-only deploy never pays
for it.

The Engine API build is Docker's classic builder, not BuildKit: the Dockerfile is read
first (:mod:`ci_deploy.dockerfile`), and one using what only BuildKit understands is
refused before anything is sent. The engine's answers, JSON streams and error texts, are
read by :mod:`ci_deploy.engine_stream`.

The registry password is the Astro API token: it goes to the engine only as the SDK's
``X-Registry-Auth`` header, never on a command line, never to disk, never into a log line
or an error message (engine messages are redacted, and push errors carry no exception chain
that could reach the request headers).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ci_deploy.dockerfile import refuse_buildkit_only, runtime_base_images_only
from ci_deploy.engine_stream import (
    StreamLog,
    api_error_text,
    read_build_stream,
    read_push_stream,
    redact,
)
from ci_deploy.errors import ImageError, ImageNotFoundError

__all__ = [
    "BUILD_PLATFORM",
    "RUNTIME_LABEL",
    "BuiltImage",
    "ImageBuilder",
]

RUNTIME_LABEL = "io.astronomer.docker.runtime.version"
"""The label every Astro Runtime image carries; Astro refuses images without it."""

BUILD_PLATFORM = "linux/amd64"
"""Astro runs amd64 images; the CLI builds with ``--platform=linux/amd64`` too."""

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
        text = _read_dockerfile(context_dir)
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
        out = StreamLog(self._log)
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
            image_id, failure = read_build_stream(stream, out)
        except sdk.APIError as exc:
            failure = api_error_text(exc)
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
                f"Could not inspect the image {reference}: {api_error_text(exc)}"
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
                out = StreamLog(self._log, secrets=(token,))
                digest, failure = _stream_push(api, out, repository, tag, token)
            if failure is not None:
                # Raised here, outside every except block: the engine client's exception
                # (whose request holds X-Registry-Auth) is not chained to the error.
                raise _push_failed(target, redact(failure, (token,)))
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
            return f"tagging {image.reference}: {api_error_text(exc)}"
        except sdk.RequestException as exc:
            return f"the connection to the Docker engine failed: {exc}"
        except sdk.DockerException as exc:
            return str(exc)


def _read_dockerfile(context_dir: Path) -> str:
    """The text of ``context_dir``'s Dockerfile; ImageError when there is none, it cannot be
    read, or it uses what only BuildKit understands."""
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
    refuse_buildkit_only(text, dockerfile)
    return text


def _stream_push(
    api: Any, out: StreamLog, repository: str, tag: str, token: str
) -> tuple[str, str | None]:
    """Push and log the progress; (digest, failure text or None)."""
    sdk = _sdk()
    try:
        stream = api.push(
            repository,
            tag=tag,
            stream=True,
            decode=True,
            auth_config={"username": "cli", "password": token},
        )
        return read_push_stream(stream, out)
    except sdk.APIError as exc:
        return "", api_error_text(exc)
    except sdk.RequestException as exc:
        return "", f"the connection to the Docker engine failed: {exc}"
    except (sdk.DockerException, sdk.StreamParseError) as exc:
        return "", str(exc)


def _push_failed(target: str, message: str) -> ImageError:
    """The error for a push of ``target`` that failed with ``message`` (already redacted)."""
    auth = bool(_AUTH_FAILURE.search(message))
    text = f"Pushing {target} failed: {message}"
    if auth:
        text += (
            " This looks like the registry refused the login (user 'cli' with the "
            "Astro API token as password): check that the token is valid and may "
            "deploy to this Deployment."
        )
    return ImageError(text, title="Registry login failed" if auth else "Image push failed")


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
