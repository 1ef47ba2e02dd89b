"""What runs each compression level (the input's own rule is in test_inputs.py)."""

from __future__ import annotations

import pytest

from ci_deploy.compression import LEVELS, Compression, choose


def test_levels_1_to_3_run_on_isal_at_the_same_level() -> None:
    for level in (1, 2, 3):
        assert choose(level, isal=True) == Compression(level, "isal", level)


def test_stored_and_the_smaller_levels_run_on_zlib_as_does_everything_without_isal() -> None:
    for level in (0, 4, 5, 6, 7, 8, 9):
        assert choose(level, isal=True) == Compression(level, "zlib", level)
    for level in LEVELS:
        assert choose(level, isal=False) == Compression(level, "zlib", level)


def test_a_level_outside_0_to_9_is_refused() -> None:
    for level in (-1, 10):
        with pytest.raises(ValueError, match="0 to 9"):
            choose(level, isal=True)


def test_labels_name_the_level_and_what_ran_it() -> None:
    assert choose(3, isal=True).label == "level 3 (ISA-L level 3)"
    assert choose(9, isal=True).label == "level 9 (zlib level 9)"
