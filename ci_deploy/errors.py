"""The exceptions ci-deploy raises.

Every error a user can cause or meet is a :class:`CiDeployError`: it carries a short
``title`` for the annotation and a message that says what happened and what to do next.
No exception message ever contains the API token or an upload URL's signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CiDeployError(Exception):
    """Base class: a failure explained to the user, shown without a traceback."""

    title = "Deploy failed"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title


@dataclass(frozen=True)
class InputProblem:
    """One invalid input: its name as in action.yml, and what is wrong with it."""

    name: str
    message: str


class InputError(CiDeployError):
    """One or more inputs are invalid. Raised before any API call."""

    title = "Invalid input"

    def __init__(self, problems: Sequence[InputProblem]) -> None:
        self.problems = list(problems)
        text = "; ".join(f"'{p.name}': {p.message}" for p in self.problems)
        super().__init__(f"Invalid input {text}")


@dataclass(frozen=True)
class ConfigProblem:
    """One bad field of the config file: where it is (``deployments[1].deploy-type``), and
    what is wrong with it and what is accepted."""

    field: str
    message: str


class ConfigError(CiDeployError):
    """The config file (``config`` input) is missing, not YAML, or has bad fields.

    Raised before any API call; ``path`` is the file as the user named it.
    """

    title = "Invalid config file"

    def __init__(self, path: str, problems: Sequence[ConfigProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        text = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems)
        super().__init__(f"{path}: {text}")


class GitError(CiDeployError):
    """The repository could not be read, or a commit could not be found."""

    title = "Git error"


class BundleError(CiDeployError):
    """The DAG folder could not be packed into a tarball."""

    title = "Bundle error"


class ApiError(CiDeployError):
    """The Astro API answered with an error.

    ``status_code`` is the HTTP status (0 when no answer came), ``request_id`` the
    API's request id when it sent one.
    """

    title = "Astro API error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 0,
        request_id: str = "",
        operation: str = "",
        title: str | None = None,
    ) -> None:
        super().__init__(message, title=title)
        self.status_code = status_code
        self.request_id = request_id
        self.operation = operation


class AuthError(ApiError):
    """The API token was rejected (401) or lacks a permission (403)."""

    title = "Astro API token rejected"


class NotFoundError(ApiError):
    """The organization, Deployment or deploy does not exist (404)."""

    title = "Not found on Astro"


class ApiUnavailableError(ApiError):
    """The API could not be reached, or kept failing after retries."""

    title = "Astro API unavailable"


class AirflowApiError(ApiError):
    """Airflow's REST API on the Deployment could not be reached, or refused a request."""

    title = "Airflow API error"


class UploadError(CiDeployError):
    """The tarball upload to the blob store failed. Messages never hold the URL's query."""

    title = "Upload failed"


class DeployRejectedError(CiDeployError):
    """The Deployment cannot take this deploy (for example DAG deploys are disabled)."""

    title = "Deploy not possible"


class RolloutError(CiDeployError):
    """After finalize, the Deployment did not come to run the new version."""

    title = "Rollout failed"


class GateError(RolloutError):
    """A verification gate failed after the rollout was healthy: ``gate`` names it
    (``import-errors``, ``settle-window``, ``smoke:<dag_id>``). A failed rollout like any."""

    def __init__(self, message: str, *, gate: str, title: str | None = None) -> None:
        super().__init__(message, title=title)
        self.gate = gate


class ImageError(CiDeployError):
    """The image could not be built, checked, or pushed. Messages never hold the token."""

    title = "Image error"


class ImageNotFoundError(ImageError):
    """The Docker engine has no image of that name or id."""

    title = "Image not found"


class SyntaxCheckError(CiDeployError):
    """A Python file in the DAG bundle does not compile; nothing was deployed."""

    title = "Syntax error in the DAGs"


class CancelledError(CiDeployError):
    """The run was cancelled (SIGTERM or SIGINT)."""

    title = "Deploy cancelled"


class ApiAmbiguousError(ApiError):
    """A write to the API failed in a way that leaves open whether the API processed it.

    Raised for POST and DELETE calls that got no answer after the request went out (a read
    timeout, a connection dropped mid-request) or got a server error other than 503 (500,
    502, 504...). The client never retries these itself: the caller reads the state again
    (for a create, the deploy history) before it tries once more.
    """

    title = "Astro API outcome unknown"


def unexpected_error(exc: Exception) -> CiDeployError:
    """A bug, said plainly: what to report and how to get the traceback."""
    return CiDeployError(
        f"ci-deploy hit an unexpected error ({type(exc).__name__}: {exc}). This is a bug: please "
        "report it with the step's debug log (re-run with debug logging enabled).",
        title="Unexpected error",
    )
