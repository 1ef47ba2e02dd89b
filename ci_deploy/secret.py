"""A secret text (a token, a preview's secret variable): its value only when asked for by name.

:class:`Secret` stands in for pydantic's ``SecretStr`` in the inputs, so that validating them
does not import pydantic (about 80 ms before anything else could happen): the same
``get_secret_value()``, the same masked ``repr`` and ``str``, equal when the values are, and
false when empty.
"""

from __future__ import annotations

MASK = "**********"
"""What a secret shows instead of its value; an empty secret shows nothing."""


class Secret:
    """A text that never shows in a ``repr``, a ``str`` or an f-string; read it with
    :meth:`get_secret_value` where it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The text itself: for the request that sends it, never for a message."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{self}')"

    def __str__(self) -> str:
        return MASK if self._value else ""

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash(self._value)
