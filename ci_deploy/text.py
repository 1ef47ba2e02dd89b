"""Small text helpers shared by the messages, logs and reports: shortening, credentials that
must not be cut in half, terminal escapes, and sizes."""

from __future__ import annotations

import re

__all__ = ["ELLIPSIS", "human_size", "printable", "redact_credentials", "shorten"]

ELLIPSIS = "..."
"""What :func:`shorten` puts where it cut."""

REDACTED = "<redacted>"
"""What :func:`redact_credentials` puts where a credential was."""

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")

_CREDENTIALS = (
    # An Authorization header's value: "Bearer <JWT>", "Basic <base64>".
    re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<secret>[A-Za-z0-9\-._~+/]{16,}=*)"),
    # An Azure SAS URL's signature: "...&sig=<percent-encoded base64>".
    re.compile(r"(?i)(?<![A-Za-z0-9_])sig=(?P<secret>[^&\s\"'<>]+)"),
)
"""Credentials recognised by their shape, whoever's they are; ``secret`` is what goes."""

_TERMINAL_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves ("\x1b[31m")
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, links
    r"|\x1b[ -/]*[0-~]"  # the other escape sequences
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI in its one-character C1 form
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters but tab and newline."""


def shorten(text: str, limit: int) -> str:
    """``text`` on one line (runs of whitespace become one space), at most ``limit`` characters.

    Longer text is cut and ends with :data:`ELLIPSIS`, which counts towards ``limit``.
    Credentials of a known shape are redacted first (:func:`redact_credentials`), so a cut
    never leaves part of one, which the runner would not mask. Scrub other secrets (the API
    token as it is) from ``text`` *before* shortening it too: a scrubber no longer recognises
    half of one.
    """
    if limit < len(ELLIPSIS):
        raise ValueError(f"limit must be at least {len(ELLIPSIS)}, not {limit}")
    flat = " ".join(redact_credentials(text).split())
    return flat if len(flat) <= limit else flat[: limit - len(ELLIPSIS)] + ELLIPSIS


def redact_credentials(text: str) -> str:
    """``text`` with every credential of a known shape replaced by :data:`REDACTED`.

    The shapes: an Authorization value (``Bearer <token>``, ``Basic <credentials>``, 16
    characters or more) and a SAS signature (``sig=<signature>``). What names them stays, so
    the message still says what was there.
    """
    for shape in _CREDENTIALS:
        text = shape.sub(_redact_secret, text)
    return text


def _redact_secret(match: re.Match[str]) -> str:
    """The match with its ``secret`` (which ends it) replaced."""
    return match.group(0)[: match.start("secret") - match.start()] + REDACTED


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves, titles) and control
    characters. Tabs and newlines stay; with ``one_line`` each becomes a space.

    The Docker builder wraps a ``RUN`` step's output in colour codes: an annotation would show
    them raw.
    """
    text = _CONTROL.sub("", _TERMINAL_ESCAPE.sub("", text))
    return re.sub(r"[\t\n]", " ", text) if one_line else text


def human_size(n: float) -> str:
    """A byte count in binary units: ``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``1.1 GiB``.

    Bytes are whole numbers; larger units have one decimal. The unit is the largest one the
    count reaches (1024 bytes are ``1.0 KiB``), up to TiB.
    """
    value = float(n)
    index = 0
    # Compare what would be shown, so 1023.97 KiB is "1.0 MiB", never "1024.0 KiB".
    while index < len(_UNITS) - 1 and round(abs(value), 0 if index == 0 else 1) >= 1024:
        value /= 1024
        index += 1
    return f"{value:.0f} B" if index == 0 else f"{value:.1f} {_UNITS[index]}"


def capitalized(text: str) -> str:
    """``text`` with its first letter upper case, for the start of a sentence: "Deploy X"."""
    return text[:1].upper() + text[1:]
