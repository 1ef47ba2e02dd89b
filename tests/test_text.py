"""ci_deploy.text: shortening text for messages, and byte counts in binary units."""

from __future__ import annotations

import pytest

from ci_deploy.text import human_size, printable, redact_credentials, shorten

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


# --- credentials: redacted before any cut --------------------------------------------------

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcGktdG9rZW4ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
SIG = "A1b2%2BC3d4%2F" * 4 + "%3D"


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer <redacted>"),
        (f"authorization: bearer {JWT}", "authorization: bearer <redacted>"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZC1zZWNyZXQ=", "Authorization: Basic <redacted>"),
        (
            f"https://b.example/c?sv=1&sig={SIG}&se=2",
            "https://b.example/c?sv=1&sig=<redacted>&se=2",
        ),
        (f"?SIG={SIG}", "?SIG=<redacted>"),
    ],
)
@pytest.mark.parametrize("left", [1, 5, 17, 30])
def test_a_credential_across_the_cut_leaves_no_part(secret: str, shown: str, left: int) -> None:
    # The credential's secret starts ``left`` characters before the cut: the runner masks a
    # whole secret only, so no prefix of one may be shown.
    start = secret.index(JWT if JWT in secret else SIG if SIG in secret else "dXNl")
    text = "m" * (100 - left - start) + secret + " and more" * 20
    cut = shorten(text, 103)
    assert "eyJh" not in cut and "A1b2" not in cut and "dXNl" not in cut
    assert len(cut) == 103


@pytest.mark.parametrize(
    "text",
    [
        "Basic authentication is not enabled",
        "Bearer <token> was rejected",
        "the signature (sig) is missing",
        "design=dense",
        "sig=<redacted> stays",
    ],
)
def test_text_without_a_credential_is_kept(text: str) -> None:
    assert redact_credentials(text) == text


def test_shortened_text_shows_where_a_credential_was() -> None:
    text = f"PUT https://b.example/c?sig={SIG} with Bearer {JWT} failed"
    expected = "PUT https://b.example/c?sig=<redacted> with Bearer <redacted> failed"
    assert shorten(text, 200) == expected


# --- printable ------------------------------------------------------------------------------


def test_printable_drops_terminal_escapes_and_control_characters() -> None:
    docker = (
        "\x1b[91mERROR: \x1b[0mno such package\r\n\x1b]0;build\x07step 3\tfailed\x00\x7f\x9b1m!"
    )
    assert printable(docker) == "ERROR: no such package\nstep 3\tfailed!"
    assert printable(docker, one_line=True) == "ERROR: no such package step 3 failed!"


def test_printable_keeps_other_text() -> None:
    text = "Ünïcode ✓ 100% [ok] ::warning:: a,b:c"
    assert printable(text) == text


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
