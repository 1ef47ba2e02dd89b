"""ci_deploy.text: shortening text for messages, and byte counts in binary units."""

from __future__ import annotations

import pytest

from ci_deploy.text import human_size, shorten

# --- shorten --------------------------------------------------------------------------------


def test_short_text_is_kept_on_one_line() -> None:
    assert shorten("  a\tb\n\nc  \r\n", 20) == "a b c"
    assert shorten("", 10) == ""


def test_text_at_the_limit_is_not_cut() -> None:
    assert shorten("x" * 10, 10) == "x" * 10


def test_long_text_is_cut_with_an_ellipsis_within_the_limit() -> None:
    cut = shorten("abcdefghijk", 10)
    assert cut == "abcdefg..."
    assert len(cut) == 10


def test_the_limit_applies_after_whitespace_is_collapsed() -> None:
    assert shorten("a" + " " * 50 + "b", 3) == "a b"
    assert shorten("one\n\n\ntwo three", 9) == "one tw..."


def test_a_limit_shorter_than_the_ellipsis_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        shorten("text", 2)


# --- human_size -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (2048, "2.0 KiB"),
        (1024 * 1024 - 1, "1.0 MiB"),  # never "1024.0 KiB"
        (int(3.2 * 1024 * 1024), "3.2 MiB"),
        (int(1.1 * 1024**3), "1.1 GiB"),
        (5 * 1024**4, "5.0 TiB"),
        (2048 * 1024**4, "2048.0 TiB"),  # TiB is the largest unit
        (300.0, "300 B"),
        (1023.7, "1.0 KiB"),
    ],
)
def test_human_size(count: float, shown: str) -> None:
    assert human_size(count) == shown
