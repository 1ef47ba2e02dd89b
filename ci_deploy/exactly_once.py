"""A write sent exactly once, even when its answer is lost: the one rule every platform's
creates, updates, rollbacks and commits follow.

After a failure that leaves open whether the API did the write
(:class:`~ci_deploy.errors.ApiAmbiguousError`), the state is read back: what the write made
is taken as its answer; only when it was not made is the write sent again, at most
``attempts`` times in all. A retry the API refuses is read back too: the first attempt may
have been processed late.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ci_deploy.errors import ApiAmbiguousError, ApiError, NotFoundError

WRITE_ATTEMPTS = 3
"""How often a write whose outcome is unknown is sent, the state read back in between."""


_T = TypeVar("_T")


class OutcomeUnknownError(ApiAmbiguousError):
    """Reading the state back after a lost answer cannot tell whether the write was done
    (e.g. several new things appeared, any of which could be its): nothing is sent again."""


def exactly_once(
    what: str,
    send: Callable[[], _T],
    made: Callable[[], _T | None],
    *,
    log: Callable[[str], None],
    name: Callable[[_T], str],
    where: str,
    attempts: int = WRITE_ATTEMPTS,
    title: str | None = None,
) -> _T:
    """``send`` once, even when answers are lost: after an ambiguous failure ``made`` reads
    the state back (what the write made, or None), and only when it was not made is
    ``send`` tried again. ``what`` names the write ("creating the deploy"), ``where`` what
    is read back ("the Deployment's deploys"), ``name`` what was made ("deploy X");
    ``title`` that of the errors raised (their class's when None)."""
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except ApiAmbiguousError as exc:
            log(
                f"The answer to {what} was lost ({exc.message}); reading {where} to see "
                "whether it was done."
            )
            found = _read_back(made, exc, title)
            if found is not None:
                log(f"It was: {name(found)}. Continuing with it.")
                return found
            if attempt == attempts:
                raise ApiError(
                    f"{exc.message} After {attempts} attempts, none of them shows in "
                    f"{where}: it was not done.",
                    status_code=exc.status_code,
                    request_id=exc.request_id,
                    operation=exc.operation,
                    title=title,
                ) from exc
            log(f"It was not; {what} again (attempt {attempt + 1}).")
        except ApiError as exc:
            if attempt == 1:
                raise
            # A retry refused (e.g. "not INITIALIZED"): the earlier attempt may have been
            # processed late after all; what the state says decides.
            found = _read_back(made, exc, title)
            if found is None:
                raise
            log(
                f"The retry was refused ({exc.message}), but an earlier attempt went through "
                f"late: {name(found)}. Continuing with it."
            )
            return found
    raise AssertionError("unreachable")


def _read_back(made: Callable[[], _T | None], failure: ApiError, title: str | None) -> _T | None:
    """``made()``: what a write whose outcome is unknown left; when reading it fails too, an
    ApiAmbiguousError saying both."""
    try:
        return made()
    except OutcomeUnknownError:
        raise
    except ApiError as reread:
        raise ApiAmbiguousError(
            f"{failure.message} Reading it back failed too: {reread.message}",
            operation=failure.operation,
            title=title,
        ) from failure


def deleted(delete: Callable[[], object], read: Callable[[], object]) -> bool:
    """``delete`` something; False when it was gone already. A lost answer is resolved by
    ``read``: gone now (not found) means the delete was done; still there, the error stands."""
    try:
        delete()
    except NotFoundError:
        return False
    except ApiAmbiguousError:
        try:  # gone now: the lost answer was a success
            read()
        except NotFoundError:
            return True
        raise
    return True
