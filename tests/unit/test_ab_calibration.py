"""A small run of `benchmarks/ab_calibration.py`: the always-valid verdict under peeking."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "ab_calibration.py"


@pytest.fixture(scope="module")
def calibration() -> ModuleType:
    """The benchmark script, imported as a module."""
    spec = importlib.util.spec_from_file_location("ab_calibration", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ab_calibration"] = module
    spec.loader.exec_module(module)
    return module


def test_peeking_at_the_new_verdict_rarely_names_a_false_winner(calibration: ModuleType) -> None:
    """80 A/A experiments looked at every 10 calls up to 200: the confidence sequence names a
    false winner in at most 5% of them, the old bootstrap under the same peeking in more."""
    new = calibration.run(80, 0.0, method="new", seed=5, max_calls=200)
    old = calibration.run(40, 0.0, method="old", seed=5, max_calls=200, resamples=200)
    assert new.named() <= 0.05 and new.per_look.max() <= 0.05
    assert old.named() > new.named()


def test_a_real_difference_is_found_and_its_calls_counted(calibration: ModuleType) -> None:
    """B 80 ms slower: the new verdict names A in most experiments by 200 calls, never B, and
    the calls needed are those of its first correct verdict."""
    tally = calibration.run(40, 80.0, method="new", seed=6, max_calls=200)
    assert tally.named(-1) >= 0.8 and tally.named(1) == 0.0
    median, p80 = tally.calls_needed(-1)
    assert 10 <= median <= p80 <= 200
