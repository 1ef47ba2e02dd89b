"""Small text helpers shared by the messages, logs and reports: shortening and sizes."""

from __future__ import annotations

__all__ = ["ELLIPSIS", "human_size", "shorten"]

ELLIPSIS = "..."
"""What :func:`shorten` puts where it cut."""

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def shorten(text: str, limit: int) -> str:
    """``text`` on one line (runs of whitespace become one space), at most ``limit`` characters.

    Longer text is cut and ends with :data:`ELLIPSIS`, which counts towards ``limit``.
    Scrub secrets from ``text`` *before* shortening it: a cut can split a secret, and a
    scrubber no longer recognises half of one.
    """
    if limit < len(ELLIPSIS):
        raise ValueError(f"limit must be at least {len(ELLIPSIS)}, not {limit}")
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - len(ELLIPSIS)] + ELLIPSIS


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
