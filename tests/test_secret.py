"""ci_deploy.secret: a secret's value shows only when asked for by name."""

from __future__ import annotations

import copy

from ci_deploy.secret import Secret


def test_a_secret_shows_its_value_only_when_asked_for() -> None:
    secret = Secret("hunter2-token")
    assert secret.get_secret_value() == "hunter2-token"
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", str([secret])):
        assert "hunter2" not in text
        assert "**********" in text
    assert repr(secret) == "Secret('**********')"


def test_an_empty_secret_is_false_and_shows_nothing() -> None:
    assert not Secret("")
    assert Secret("x")
    assert str(Secret("")) == ""
    assert repr(Secret("")) == "Secret('')"


def test_secrets_are_equal_when_their_values_are() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"  # never equal to the plain text
    assert len({Secret("a"), Secret("a"), Secret("b")}) == 2


def test_a_copied_secret_keeps_its_value() -> None:
    # dataclasses.asdict and replace copy the inputs' fields
    secret = Secret("tok3n")
    for copied in (copy.copy(secret), copy.deepcopy(secret)):
        assert copied == secret
        assert copied.get_secret_value() == "tok3n"
