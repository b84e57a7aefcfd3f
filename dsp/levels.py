"""Signal levels in dBm0 on the 16-bit linear scale of dsp.g711.

G.711 puts 0 dBm0 at a sine of peak 22,785 (A-law's overload point is +3.14 dBm0, peak 32,768 on this
scale), so a tone of level L dBm0 has peak 22,785 * 10**(L/20) and mean square (22,785**2 / 2) * 10**(L/10).
Power of an arbitrary signal is its mean square relative to that of the 0 dBm0 sine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "SAMPLE_RATE",
    "DBM0_PEAK",
    "DBM0_RMS",
    "DBM0_MEAN_SQUARE",
    "SILENCE_DBM0",
    "dbm0_to_amplitude",
    "amplitude_to_dbm0",
    "dbm0_to_rms",
    "rms_to_dbm0",
    "dbm0_to_mean_square",
    "mean_square_to_dbm0",
    "power_dbm0",
    "ms_to_samples",
]

SAMPLE_RATE = 8000  # samples per second on every voice channel
DBM0_PEAK = 22785.0  # peak of a 0 dBm0 sine
DBM0_RMS = DBM0_PEAK / math.sqrt(2.0)
DBM0_MEAN_SQUARE = DBM0_PEAK * DBM0_PEAK / 2.0
# What power_dbm0 reports for digital silence (all zeros) instead of -inf.
SILENCE_DBM0 = -120.0


def dbm0_to_amplitude(dbm0: npt.ArrayLike) -> Any:
    """Peak amplitude of a sine at `dbm0` (float or array)."""
    return DBM0_PEAK * np.power(10.0, np.asarray(dbm0, dtype=np.float64) / 20.0)[()]


def amplitude_to_dbm0(peak: npt.ArrayLike) -> Any:
    """Level in dBm0 of a sine of peak amplitude `peak`."""
    p = np.maximum(np.abs(np.asarray(peak, dtype=np.float64)), 1e-300)
    return np.maximum(20.0 * np.log10(p / DBM0_PEAK), SILENCE_DBM0)[()]


def dbm0_to_rms(dbm0: npt.ArrayLike) -> Any:
    """RMS value of a signal at `dbm0`."""
    return DBM0_RMS * np.power(10.0, np.asarray(dbm0, dtype=np.float64) / 20.0)[()]


def rms_to_dbm0(rms: npt.ArrayLike) -> Any:
    """Level in dBm0 of a signal of RMS value `rms`."""
    r = np.maximum(np.abs(np.asarray(rms, dtype=np.float64)), 1e-300)
    return np.maximum(20.0 * np.log10(r / DBM0_RMS), SILENCE_DBM0)[()]


def dbm0_to_mean_square(dbm0: npt.ArrayLike) -> Any:
    """Mean square (power on the linear scale) of a signal at `dbm0`."""
    return DBM0_MEAN_SQUARE * np.power(10.0, np.asarray(dbm0, dtype=np.float64) / 10.0)[()]


def mean_square_to_dbm0(mean_square: npt.ArrayLike) -> Any:
    """Level in dBm0 of a signal of the given mean square."""
    ms = np.maximum(np.asarray(mean_square, dtype=np.float64), 1e-300)
    return np.maximum(10.0 * np.log10(ms / DBM0_MEAN_SQUARE), SILENCE_DBM0)[()]


def power_dbm0(block: npt.ArrayLike, axis: int = -1) -> Any:
    """Power in dBm0 of a block along `axis` (default: per channel of a (channels, n) block).

    Digital silence reports SILENCE_DBM0 (-120) instead of -inf. Works on int16 or float samples.
    """
    x = np.asarray(block)
    if x.size == 0 or x.shape[axis] == 0:
        raise ValueError("power_dbm0 needs at least one sample along the axis")
    x = x.astype(np.float64, copy=False)
    return mean_square_to_dbm0(np.mean(x * x, axis=axis))


def ms_to_samples(ms: float) -> int:
    """Milliseconds -> whole samples at 8 kHz (rounded to nearest)."""
    return int(round(ms * SAMPLE_RATE / 1000.0))
