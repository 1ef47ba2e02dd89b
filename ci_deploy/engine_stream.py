"""What the Docker engine says back: its JSON progress streams and its error texts.

A build or a push answers with a stream of JSON objects (``stream`` text, per-layer
``status`` and ``progressDetail``, ``aux`` results, ``error``/``errorDetail``). Here they
become log lines (throttled, terminal escapes dropped, secrets redacted, the last ones kept
for an error message) and an outcome: the image id or digest reported, and the first error.

No Docker SDK here: the streams are plain iterables of dicts, and the SDK's exceptions are
caught by :class:`ci_deploy.image.ImageBuilder`, so importing this module imports neither
the Docker SDK nor ``requests``.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ci_deploy.text import human_size, printable

__all__ = [
    "LOG_TAIL_LINES",
    "StreamLog",
    "api_error_text",
    "read_build_stream",
    "read_push_stream",
    "redact",
]

LOG_TAIL_LINES = 25
"""How many of the last build log lines a build error shows."""

_PROGRESS_INTERVAL = 15.0
"""Seconds between two progress lines of one layer while it is being pushed or pulled."""

_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_BUILT_ID = re.compile(r"^Successfully built ([0-9a-f]{12,64})\s*$")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret in it replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def api_error_text(exc: Any) -> str:
    """The message of the SDK's ``APIError`` ``exc``: the engine's explanation and HTTP status."""
    explanation = getattr(exc, "explanation", None)
    status = getattr(exc, "status_code", None)
    if explanation:
        text = str(explanation)
        if isinstance(explanation, bytes):
            text = explanation.decode("utf-8", "replace")
        text = printable(text)
        return f"{text} (HTTP {status})" if status else text
    return printable(str(exc))


def _stream_error(chunk: Mapping[str, Any]) -> str | None:
    """The error message of a stream line, or None when it reports none."""
    detail = chunk.get("errorDetail")
    error = chunk.get("error")
    if error is None and detail is None:
        return None
    if error:
        return printable(str(error)).strip()
    if isinstance(detail, dict) and detail.get("message"):
        return printable(str(detail["message"])).strip()
    return "the Docker engine reported an error without a message"


class StreamLog:
    """Turns the engine's JSON stream into log lines, keeping the last ones for errors.

    ``stream`` text is split into lines; ``status`` lines are logged when a layer's status
    changes (and every :data:`_PROGRESS_INTERVAL` seconds while it moves), not per tick.
    Every line is logged with ``secrets`` redacted.
    """

    def __init__(self, log: Callable[[str], None], secrets: Iterable[str] = ()) -> None:
        self._log = log
        self._secrets = tuple(secret for secret in secrets if secret)
        self.tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        """The last :data:`LOG_TAIL_LINES` lines logged."""
        self.built_id = ""
        """The image id of a "Successfully built <id>" line, "" before one."""
        self._buffer = ""
        self._status: dict[str, str] = {}
        self._last_progress: dict[str, float] = {}
        self._last_plain = ""

    def line(self, text: str) -> None:
        """Log one line without terminal escapes (the classic builder colours a ``RUN``'s
        stderr); blank ones are dropped."""
        text = redact(printable(text).rstrip(), self._secrets)
        if not text.strip():
            return
        self.tail.append(text)
        self._log(text)

    def text(self, text: str) -> None:
        """Log the complete lines of ``stream`` text; a partial last line waits for the rest."""
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
        """Log the partial line still waiting, if any."""
        if self._buffer:
            line, self._buffer = self._buffer, ""
            self._text_line(line)

    def status(self, chunk: Mapping[str, Any]) -> None:
        """Log a ``status`` stream line when it says something new."""
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


def read_build_stream(stream: Iterable[Any], out: StreamLog) -> tuple[str, str | None]:
    """Log a build's stream to ``out``; (the image id it reported or "", the first error or None).

    The stream is read to its end even after an error, so the connection is released; a
    partial last line stays in ``out`` until :meth:`StreamLog.flush`. An image id the
    stream only gives as "Successfully built <id>" is ``out.built_id``.
    """
    image_id = ""
    failure: str | None = None
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
        if failure is None:
            failure = _stream_error(chunk)
    return image_id, failure


def read_push_stream(stream: Iterable[Any], out: StreamLog) -> tuple[str, str | None]:
    """Log a push's stream to ``out``; (the digest pushed, the first error or None).

    The digest is "" when the stream reported an error or no digest. The stream is read
    to its end even after an error, so the connection is released.
    """
    digest = ""
    failure: str | None = None
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
        if failure is None:
            failure = _stream_error(chunk)
    return ("" if failure else digest), failure
