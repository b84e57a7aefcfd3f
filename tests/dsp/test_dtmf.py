"""DtmfDetector: interface, split invariance, channels, reset, onset, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import tones
from dsp.dtmf import DtmfDetector
from dsp.events import Event


def _signal(digits="159#", lead_ms=7.0, level=-10.0):
    return tones.to_int16(tones.dtmf_sequence(digits, 60.0, 60.0, level, lead_ms=lead_ms))


def _feed(det, x, sizes):
    events, pos = [], 0
    for n in sizes:
        if pos >= x.shape[1]:
            break
        events += det.process(x[:, pos : pos + n])
        pos += n
    if pos < x.shape[1]:
        events += det.process(x[:, pos:])
    return events


def test_one_event_per_key_at_its_onset():
    x = _signal()[None, :]
    events = DtmfDetector(1).process(x)
    assert [e.value for e in events] == list("159#")
    assert all(isinstance(e, Event) and e.kind == "dtmf" and e.channel == 0 for e in events)
    truth = [56 + k * 960 for k in range(4)]  # 7 ms lead, 120 ms per key
    for e, t in zip(events, truth, strict=True):
        assert abs(e.sample - t) <= 40, (e, t)


@pytest.mark.parametrize("seed", range(4))
def test_any_split_gives_the_same_events(seed):
    rng = np.random.default_rng(seed)
    base = _signal("0123456789*#ABCD")
    x = np.stack([base, np.roll(base, 333), tones.to_int16(rng.normal(0, 3000, base.size))])
    whole = DtmfDetector(3).process(x)
    sizes = rng.integers(1, 200, size=x.shape[1]).tolist()
    split = _feed(DtmfDetector(3), x, sizes)
    assert sorted(whole, key=lambda e: (e.channel, e.sample)) == sorted(
        split, key=lambda e: (e.channel, e.sample)
    )
    ones = _feed(DtmfDetector(3), x[:, :2000], [1] * 2000)
    assert ones == DtmfDetector(3).process(x[:, :2000])
    assert [e.value for e in whole if e.channel == 0] == list("0123456789*#ABCD")


def test_channels_are_independent_and_clipping_stays_in_its_row():
    base = _signal("2580")
    loud = np.full_like(base, 32767)
    loud[::2] = -32768  # full-scale square wave: garbage, clipped
    x = np.stack([base, loud, base, np.zeros_like(base)])
    events = DtmfDetector(4).process(x)
    per = {ch: "".join(e.value for e in events if e.channel == ch) for ch in range(4)}
    assert per == {0: "2580", 1: "", 2: "2580", 3: ""}


def test_reset_restarts_the_channel_count_and_forgets_a_half_key():
    det = DtmfDetector(2)
    key = tones.to_int16(tones.dtmf_digit("7", 60.0, -10.0))
    x = np.zeros((2, 700), np.int16)
    x[:, 500:] = key[:200]  # channels 0 and 1 both start a key (25 ms so far, not yet confirmed) ...
    assert det.process(x) == []
    det.reset(0)  # ... the call on channel 0 ends mid-key
    y = np.zeros((2, 1600), np.int16)
    y[1, :280] = key[200:480]  # the rest of the key on channel 1
    y[0, :150] = key[200:350]  # a 19 ms stub on channel 0 after its reset: too short to be a key
    y[0, 800:1280] = key
    events = det.process(y)
    ch0 = [e for e in events if e.channel == 0]
    ch1 = [e for e in events if e.channel == 1]
    assert [e.value for e in ch1] == ["7"] and abs(ch1[0].sample - 500) <= 40
    assert [e.value for e in ch0] == ["7"] and abs(ch0[0].sample - 800) <= 40


def test_held_key_reports_once_and_repeat_after_pause():
    x = tones.to_int16(
        np.concatenate(
            [
                tones.dtmf_digit("5", 1500.0, -10.0),
                np.zeros(400),
                tones.dtmf_digit("5", 45.0, -10.0),
                np.zeros(400),
            ]
        )
    )
    assert [e.value for e in DtmfDetector(1).process(x[None, :])] == ["5", "5"]


def test_many_channels_vectorised():
    rng = np.random.default_rng(7)
    digits = rng.choice(list(tones.DTMF_KEYS), size=64)
    x = np.zeros((64, 2000), np.int16)
    for ch, d in enumerate(digits):
        sig = tones.to_int16(tones.dtmf_sequence(d * 2, 50.0, 50.0, -20.0, lead_ms=rng.uniform(0, 20)))
        x[ch, : sig.size] = sig
    events = DtmfDetector(64).process(x)
    got = {ch: "".join(e.value for e in events if e.channel == ch) for ch in range(64)}
    assert got == {ch: d * 2 for ch, d in enumerate(digits)}


def test_speech_like_noise_and_single_tones_give_nothing():
    rng = np.random.default_rng(3)
    n = 16000
    single = tones.to_int16(tones.sine(697.0, -5.0, n))
    triple = tones.to_int16(
        tones.sine(697.0, -10, n) + tones.sine(770.0, -10, n) + tones.sine(1336.0, -10, n)
    )
    noise = tones.to_int16(rng.normal(0, 5000, n))
    assert DtmfDetector(3).process(np.stack([single, triple, noise])) == []


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 80), np.float32),
        np.zeros((3, 80), np.int16),
        np.zeros(80, np.int16),
        np.zeros((2, 0), np.int16),
        [[0] * 80, [0] * 80],
    ],
)
def test_bad_blocks_raise_value_error(bad):
    det = DtmfDetector(2)
    with pytest.raises(ValueError):
        det.process(bad)
    # the detector still works afterwards
    assert det.process(np.stack([_signal("3"), _signal("4")])) and True


def test_bad_construction_and_reset_raise_value_error():
    with pytest.raises(ValueError):
        DtmfDetector(0)
    det = DtmfDetector(2)
    with pytest.raises(ValueError):
        det.reset(2)
    with pytest.raises(ValueError):
        det.reset(-1)
