"""Tone generators: levels in dBm0, DTMF frequencies, cadences by plan."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import tones
from dsp.levels import SAMPLE_RATE, power_dbm0


def _peak_freqs(x, k=2):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)
    out = []
    for _ in range(k):
        i = int(np.argmax(spec))
        out.append(freqs[i])
        spec[max(0, i - 20) : i + 20] = 0
    return sorted(out)


@pytest.mark.parametrize("digit", list(tones.DTMF_KEYS))
def test_dtmf_digit_frequencies_and_level(digit):
    x = tones.dtmf_digit(digit, 1000.0, -10.0)
    assert x.size == 8000
    lo, hi = tones.dtmf_frequencies(digit)
    f = _peak_freqs(x)
    assert abs(f[0] - lo) < 1.5 and abs(f[1] - hi) < 1.5
    assert power_dbm0(x) == pytest.approx(-10.0 + 10 * np.log10(2), abs=0.05)  # two tones at -10 each


def test_twist_offsets_and_sequence_timing():
    x = tones.dtmf_digit("1", 1000.0, -20.0, twist_db=6.0, low_offset=0.02, high_offset=-0.01)
    f = _peak_freqs(x)
    assert abs(f[0] - 697 * 1.02) < 1.5 and abs(f[1] - 1209 * 0.99) < 1.5
    lo = tones.sine(697 * 1.02, -20.0, 8000)
    assert power_dbm0(x - lo) == pytest.approx(-14.0, abs=0.05)
    seq = tones.dtmf_sequence("12", on_ms=40, off_ms=60, lead_ms=5)
    assert seq.size == 40 + 2 * 800
    assert np.all(seq[:40] == 0) and np.any(seq[40:360] != 0) and np.all(seq[360:840] == 0)
    with pytest.raises(ValueError):
        tones.dtmf_frequencies("X")


def test_dual_tone_and_int16_saturation():
    x = tones.dual_tone(350.0, 440.0, -13.0, duration_ms=500)
    assert x.size == 4000 and power_dbm0(x) == pytest.approx(-10.0, abs=0.05)
    y = tones.to_int16(tones.dual_tone(1000.0, 1100.0, 3.0, duration_ms=10))
    assert y.dtype == np.int16 and y.max() == 32767 and y.min() == -32768


@pytest.mark.parametrize(
    ("tone", "on", "off"), [("busy", 0.35, 0.35), ("ringback", 1.0, 4.0), ("congestion", 0.7, 0.7)]
)
def test_cn_cadences(tone, on, off):
    x = tones.cadence("cn", tone, 2 * (on + off), level_dbm0=-20.0)
    active = np.convolve(np.abs(x), np.ones(9), "same") > 1  # bridge the sine's zero crossings
    # runs of tone and of silence
    edges = np.flatnonzero(np.diff(active.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], edges, [x.size]]))
    assert runs[0] == pytest.approx(on * SAMPLE_RATE, abs=10)
    assert runs[1] == pytest.approx(off * SAMPLE_RATE, abs=10)
    assert power_dbm0(x[: int(on * SAMPLE_RATE)]) == pytest.approx(-20.0, abs=0.05)
    assert _peak_freqs(x[: int(on * SAMPLE_RATE)], 1)[0] == pytest.approx(450.0, abs=3)


def test_dial_is_continuous_and_jitter_moves_periods():
    dial = tones.cadence("cn", "dial", 1.0)
    assert np.count_nonzero(np.abs(dial) > 1) > 7800
    rng = np.random.default_rng(5)
    a = tones.cadence("cn", "busy", 5.0, jitter=0.1, rng=rng)
    b = tones.cadence("cn", "busy", 5.0)
    assert not np.array_equal(np.abs(a) > 1, np.abs(b) > 1)
    with pytest.raises(ValueError):
        tones.cadence("xx", "dial", 1.0)
    with pytest.raises(ValueError):
        tones.cadence("cn", "howler", 1.0)
