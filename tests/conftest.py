"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ci_deploy_testkit.emulator import Emulator
from tests.actionrun import assert_requests_match_spec


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The emulator; after each test, every API request the action sent must match the spec."""
    with Emulator(rollout_seconds=0.2) as emu:
        yield emu
    assert_requests_match_spec(emu)
