"""Tone generators: DTMF digits, call-progress cadences by national plan, arbitrary dual tones.

Levels are in dBm0 per tone (0 dBm0 = sine of peak 22,785, see dsp.levels). Generators return float64
samples on the 16-bit scale so signals can be summed before `to_int16` saturates them once, the way a
real line adds dial tone, noise and digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.levels import SAMPLE_RATE, dbm0_to_amplitude

__all__ = [
    "DTMF_ROWS",
    "DTMF_COLS",
    "DTMF_KEYS",
    "dtmf_frequencies",
    "sine",
    "dual_tone",
    "dtmf_digit",
    "dtmf_sequence",
    "Cadence",
    "PLANS",
    "cadence",
    "to_int16",
]

DTMF_ROWS: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)
# Keypad order: row-major, so KEYS[4*row + col].
DTMF_KEYS = "123A456B789C*0#D"


def dtmf_frequencies(digit: str) -> tuple[float, float]:
    """(low, high) nominal frequencies of a DTMF key."""
    if len(digit) != 1 or digit.upper() not in DTMF_KEYS:
        raise ValueError(f"not a DTMF key: {digit!r}")
    index = DTMF_KEYS.index(digit.upper())
    return DTMF_ROWS[index // 4], DTMF_COLS[index % 4]


def _samples(duration_ms: float) -> int:
    if duration_ms < 0:
        raise ValueError(f"negative duration {duration_ms} ms")
    return int(round(duration_ms * SAMPLE_RATE / 1000.0))


def sine(freq: float, level_dbm0: float, n: int, phase: float = 0.0) -> np.ndarray:
    """`n` samples of a sine of frequency `freq` Hz at `level_dbm0` (float64, 16-bit scale)."""
    t = np.arange(n, dtype=np.float64)
    return dbm0_to_amplitude(level_dbm0) * np.sin(2.0 * math.pi * freq * t / SAMPLE_RATE + phase)


def dual_tone(
    f1: float,
    f2: float | None,
    level1_dbm0: float,
    level2_dbm0: float | None = None,
    duration_ms: float = 1000.0,
    phase1: float = 0.0,
    phase2: float = 0.0,
) -> np.ndarray:
    """f1 at level1 plus (optionally) f2 at level2 (default: level1), `duration_ms` long, float64."""
    n = _samples(duration_ms)
    out = sine(f1, level1_dbm0, n, phase1)
    if f2 is not None:
        out = out + sine(f2, level1_dbm0 if level2_dbm0 is None else level2_dbm0, n, phase2)
    return out


def dtmf_digit(
    digit: str,
    duration_ms: float = 50.0,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    low_offset: float = 0.0,
    high_offset: float = 0.0,
    high_level_dbm0: float | None = None,
) -> np.ndarray:
    """One DTMF key, float64.

    `level_dbm0` is the low (row) tone's level; the high (column) tone is at `high_level_dbm0` if given,
    else at level + `twist_db` (positive twist = high tone louder, the "normal" twist of a telephone line).
    `low_offset`/`high_offset` are fractional frequency deviations (0.015 = +1.5 %).
    """
    low, high = dtmf_frequencies(digit)
    hi_level = level_dbm0 + twist_db if high_level_dbm0 is None else high_level_dbm0
    return dual_tone(low * (1.0 + low_offset), high * (1.0 + high_offset), level_dbm0, hi_level, duration_ms)


def dtmf_sequence(
    digits: str,
    on_ms: float = 50.0,
    off_ms: float = 50.0,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    low_offset: float = 0.0,
    high_offset: float = 0.0,
    high_level_dbm0: float | None = None,
    lead_ms: float = 0.0,
) -> np.ndarray:
    """Digits each `on_ms` of tone followed by `off_ms` of silence, after `lead_ms` of silence (float64)."""
    parts = [np.zeros(_samples(lead_ms))]
    gap = np.zeros(_samples(off_ms))
    for d in digits:
        parts.append(dtmf_digit(d, on_ms, level_dbm0, twist_db, low_offset, high_offset, high_level_dbm0))
        parts.append(gap)
    return np.concatenate(parts)


@dataclass(frozen=True)
class Cadence:
    """A call-progress tone: frequencies and an on/off pattern in seconds (empty pattern = continuous)."""

    freqs: tuple[float, ...]
    pattern: tuple[float, ...]  # on, off, on, off ... ; () = continuous


# National plans. "cn" follows the Chinese YD/T 1278 tones as the issue states them: all on 450 Hz.
PLANS: dict[str, dict[str, Cadence]] = {
    "cn": {
        "dial": Cadence((450.0,), ()),
        "busy": Cadence((450.0,), (0.35, 0.35)),
        "ringback": Cadence((450.0,), (1.0, 4.0)),
        "congestion": Cadence((450.0,), (0.7, 0.7)),
    },
}


def cadence(
    plan: str,
    tone: str,
    seconds: float,
    level_dbm0: float = -10.0,
    jitter: float = 0.0,
    rng: np.random.Generator | None = None,
    start_off: bool = False,
) -> np.ndarray:
    """`seconds` of a call-progress tone of `plan` (float64).

    `jitter` (e.g. 0.1) scales every on/off period by a random factor in [1 - jitter, 1 + jitter].
    `start_off` begins with the silent part of the cadence (a detector joining mid-pattern).
    """
    if plan not in PLANS:
        raise ValueError(f"unknown tone plan {plan!r} (known: {', '.join(PLANS)})")
    if tone not in PLANS[plan]:
        raise ValueError(f"plan {plan!r} has no tone {tone!r} (known: {', '.join(PLANS[plan])})")
    spec = PLANS[plan][tone]
    total = int(round(seconds * SAMPLE_RATE))
    t = np.arange(total, dtype=np.float64)
    amp = dbm0_to_amplitude(level_dbm0)
    wave = np.zeros(total)
    for f in spec.freqs:
        wave += amp * np.sin(2.0 * math.pi * f * t / SAMPLE_RATE)
    if not spec.pattern:
        return wave
    rng = rng if rng is not None else np.random.default_rng(0)
    gate = np.zeros(total)
    pos = 0
    k = 1 if start_off else 0
    while pos < total:
        period = spec.pattern[k % len(spec.pattern)]
        if jitter:
            period *= 1.0 + rng.uniform(-jitter, jitter)
        n = max(1, int(round(period * SAMPLE_RATE)))
        if k % 2 == 0:
            gate[pos : pos + n] = 1.0
        pos += n
        k += 1
    return wave * gate


def to_int16(x: np.ndarray) -> np.ndarray:
    """Round and saturate float samples to int16 (the way a codec clips)."""
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
