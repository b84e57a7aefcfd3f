"""Call-progress detector, China plan: each tone at -10/-25/-40 dBm0 with +-10 % cadence jitter, once per
episode, no confusion between tones, split invariance, reset, bad input; spandsp super_tone_rx beside it."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from dsp import g711, tones
from dsp.cpt import CallProgressDetector

TONES = ["dial", "busy", "ringback", "congestion"]


def _batch(name, level, n=16, seconds=12.0, seed=0, codec=None):
    rng = np.random.default_rng(seed)
    leads, rows = [], []
    for _ in range(n):
        lead = int(rng.integers(0, 4000))
        leads.append(lead)
        rows.append(np.concatenate([np.zeros(lead), tones.cadence("cn", name, seconds, level, 0.1, rng)]))
    x = np.zeros((n, max(r.size for r in rows)), np.int16)
    for i, r in enumerate(rows):
        x[i, : r.size] = tones.to_int16(r)
    if codec == "alaw":
        x = g711.alaw_decode(g711.alaw_encode(x))
    return x, leads


@pytest.mark.parametrize("name", TONES)
@pytest.mark.parametrize("level", [-10.0, -25.0, -40.0])
def test_each_china_tone_once_per_episode_with_jitter(name, level):
    x, leads = _batch(name, level, seed=hash((name, level)) % 1000)
    events = CallProgressDetector(x.shape[0]).process(x)
    assert sorted(e.channel for e in events) == list(range(x.shape[0])), events
    assert all(e.kind == "tone" and e.value == name for e in events)
    for e in events:
        # onset: the start of the first burst of the recognised pattern, here the start of the signal
        assert abs(e.sample - leads[e.channel]) <= 160, (e, leads[e.channel])


@pytest.mark.parametrize("name", TONES)
def test_through_alaw(name):
    x, _ = _batch(name, -25.0, n=8, codec="alaw", seed=3)
    events = CallProgressDetector(8).process(x)
    assert collections.Counter(e.value for e in events) == {name: 8}


def test_dial_not_confused_and_episodes_change():
    rng = np.random.default_rng(4)
    sig = np.concatenate(
        [
            tones.cadence("cn", "dial", 3.0, -15.0),
            np.zeros(8000),
            tones.cadence("cn", "ringback", 11.0, -15.0, 0.1, rng),
            np.zeros(8000 * 7),
            tones.cadence("cn", "congestion", 4.0, -15.0, 0.1, rng),
            np.zeros(8000 * 2),
            tones.cadence("cn", "busy", 3.0, -15.0, 0.1, rng),
        ]
    )
    events = CallProgressDetector(1).process(tones.to_int16(sig)[None, :])
    assert [e.value for e in events] == ["dial", "ringback", "congestion", "busy"]
    starts = [0, 4 * 8000, 22 * 8000, 28 * 8000]
    for e, s in zip(events, starts, strict=True):
        assert abs(e.sample - s) <= 160


def test_split_invariance_and_reset():
    x, _ = _batch("busy", -20.0, n=3, seconds=4.0, seed=9)
    whole = CallProgressDetector(3).process(x)
    det = CallProgressDetector(3)
    rng = np.random.default_rng(1)
    split, pos = [], 0
    while pos < x.shape[1]:
        n = int(rng.integers(1, 300))
        split += det.process(x[:, pos : pos + n])
        pos += n
    assert sorted(whole, key=lambda e: e.channel) == sorted(split, key=lambda e: e.channel)
    det = CallProgressDetector(2)
    y = np.zeros((2, 24000), np.int16)
    y[:, 4000:] = tones.to_int16(tones.cadence("cn", "dial", 2.5, -15.0))
    assert det.process(y[:, :12000]) == []  # 1 s of dial tone so far
    det.reset(1)
    ev = det.process(y[:, 12000:])
    assert [(e.channel, e.value) for e in ev] == [(0, "dial")]


def test_single_pure_tones_and_noise_elsewhere_are_not_tones():
    rng = np.random.default_rng(5)
    n = 8000 * 6
    x = np.stack(
        [
            tones.to_int16(tones.sine(425.0 * 1.2, -10.0, n)),  # 510 Hz: outside +-20 Hz
            tones.to_int16(rng.normal(0, 3000, n)),
            tones.to_int16(tones.sine(450.0, -55.0, n)),  # below the -45 dBm0 floor
            np.zeros(n, np.int16),
        ]
    )
    assert CallProgressDetector(4).process(x) == []


def test_bad_input():
    det = CallProgressDetector(2)
    for bad in (
        np.zeros((2, 80), np.float64),
        np.zeros((1, 80), np.int16),
        np.zeros(80, np.int16),
        np.zeros((2, 0), np.int16),
    ):
        with pytest.raises(ValueError):
            det.process(bad)
    with pytest.raises(ValueError):
        CallProgressDetector(2, plan="xx")
    with pytest.raises(ValueError):
        CallProgressDetector(0)
    with pytest.raises(ValueError):
        det.reset(5)


@pytest.mark.interop
def test_spandsp_super_tone_rx_sees_the_same_tones():
    from tools.bench.ref_spandsp import SpandspToneRx, spandsp_cadences

    for name in TONES:
        x, _ = _batch(name, -25.0, n=4, seed=7)
        rx = SpandspToneRx(spandsp_cadences("cn"), 4)
        try:
            for i in range(0, x.shape[1], 80):
                rx.process(x[:, i : i + 80])
            assert {r[1] for r in rx.reports} == {name}
        finally:
            rx.close()
