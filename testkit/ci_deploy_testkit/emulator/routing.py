"""Routing an emulated API's request to its handler by method and path, for both emulators."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from ci_deploy_testkit.emulator.wire import RecordedRequest, Response


@dataclass(frozen=True)
class Route:
    """``handler`` answers ``method`` on paths that fully match ``pattern``; the pattern's
    named groups become its keyword arguments (percent-decoded)."""

    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Response]


class NoRoute(Exception):
    """No route takes the request; ``allowed`` lists the methods the path takes (empty: the
    path is unknown, a 404; else a 405)."""

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = list(allowed)


def find_route(
    routes: Sequence[Route], request: RecordedRequest
) -> tuple[Callable[..., Response], dict[str, str]]:
    """The handler of ``request`` and its path parameters; :class:`NoRoute` when none."""
    allowed: list[str] = []
    for route in routes:
        match = route.pattern.fullmatch(request.path)
        if match is None:
            continue
        if route.method == request.method:
            return route.handler, {k: unquote(v) for k, v in match.groupdict().items()}
        allowed.append(route.method)
    raise NoRoute(allowed)
