"""Fixtures of the DSP tests: the talk-off corpus (tools/corpus.py), built once and cached."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tools import corpus

CI_MINUTES = 3  # the slice CI runs; the full 30 minutes run under `slow`
FULL_MINUTES = 30


def _load(minutes: float) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (Debian package espeak-ng): the talk-off corpus needs it")
    return corpus.load(minutes)


@pytest.fixture(scope="session")
def talkoff_short() -> np.ndarray:
    return _load(CI_MINUTES)


@pytest.fixture(scope="session")
def talkoff_full() -> np.ndarray:
    return _load(FULL_MINUTES)


def as_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Cut a long signal into `channels` rows (vectorised detectors run them at once)."""
    n = x.size // channels
    return np.ascontiguousarray(x[: n * channels].reshape(channels, n))
