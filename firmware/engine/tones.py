"""Loop buffers for the tones the box plays (China plan, GB 3380 / YD/T 1125 style cadences).

A tone the engine plays is a player looping one buffer that holds exactly one cadence period, so its
on/off timing is sample-exact. Dual tones and DTMF for outgoing signalling use `dtmf_buffer`. When
`dsp.tones` (issue 3) is present, the DTMF frequencies come from there; the cadences are ours because
they are what this box sends.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dsp.levels import SAMPLE_RATE, dbm0_to_amplitude

# name -> (frequencies Hz, level dBm0, cadence on/off seconds, empty = continuous)
CHINA_TONES: dict[str, tuple[tuple[float, ...], float, tuple[float, ...]]] = {
    "dial": ((450.0,), -10.0, ()),
    "busy": ((450.0,), -10.0, (0.35, 0.35)),
    "ringback": ((450.0,), -10.0, (1.0, 4.0)),
    "congestion": ((450.0,), -10.0, (0.7, 0.7)),
    "callwaiting": ((450.0,), -10.0, (0.4, 4.0)),
    "beep": ((1000.0,), -10.0, ()),
}

DTMF_FREQS = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip


def sine_mix(freqs: Sequence[float], dbm0: float, seconds: float, phase0: float = 0.0) -> np.ndarray:
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    amp = float(dbm0_to_amplitude(dbm0))
    x = sum(np.sin(2 * np.pi * f * t + phase0) for f in freqs) * amp
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def cadence_buffer(freqs: Sequence[float], dbm0: float, cadence: Sequence[float]) -> np.ndarray:
    """One period of an on/off cadence (continuous tone: 1 s, a whole number of cycles of 50 Hz)."""
    if not cadence:
        return sine_mix(freqs, dbm0, 1.0)
    parts = []
    for i, sec in enumerate(cadence):
        if i % 2 == 0:
            parts.append(sine_mix(freqs, dbm0, sec))
        else:
            parts.append(np.zeros(int(round(sec * SAMPLE_RATE)), dtype=np.int16))
    return np.concatenate(parts)


def tone(name: str) -> np.ndarray:
    freqs, level, cadence = CHINA_TONES[name]
    return cadence_buffer(freqs, level, cadence)


def beep(seconds: float = 0.25) -> np.ndarray:
    return sine_mix((1000.0,), -10.0, seconds)


def dtmf_buffer(digits: str, on: float = 0.08, off: float = 0.08, dbm0: float = -7.0) -> np.ndarray:
    """DTMF digits as audio (per tone level dBm0), e.g. what a caller's phone sends."""
    parts = []
    for d in digits:
        if d not in DTMF_FREQS:
            raise ValueError(f"not a DTMF digit: {d!r}")
        parts.append(sine_mix(DTMF_FREQS[d], dbm0, on))
        parts.append(np.zeros(int(round(off * SAMPLE_RATE)), dtype=np.int16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
