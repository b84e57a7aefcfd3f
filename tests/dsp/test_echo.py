"""dsp.echo: interface, bad input, split invariance, reset/enable, G.165 tone disabler."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsp import g168
from dsp.echo import EchoCanceller
from dsp.levels import SAMPLE_RATE, dbm0_to_amplitude


@pytest.fixture(scope="module")
def models(conformance_dir):
    return json.loads((conformance_dir / "g168" / "hybrid_models.json").read_text())["models"]


def _scene(models, channels=3, seconds=3.0, near_db=None):
    rng = np.random.default_rng(5)
    far = np.stack([g168.css(seconds, -10.0 - 5 * i, seed=i + 1) for i in range(channels)])
    names = ["d2", "d5", "d8", "d9"]
    paths = [
        g168.EchoPath(models[names[i % 4]]["coeffs"], models[names[i % 4]]["gain"], 6.0, 40 * i, True)
        for i in range(channels)
    ]
    sgen = np.zeros_like(far)
    if near_db is not None:
        sgen[:, far.shape[1] // 2 :] = np.stack(
            [g168.css(seconds / 2, near_db, seed=50 + i) for i in range(channels)]
        )[:, : far.shape[1] - far.shape[1] // 2]
    near = np.stack([p.run(far[i], sgen[i]) for i, p in enumerate(paths)])
    del rng
    return near, far


def _run(ec, near, far, sizes):
    out, i, k = [], 0, 0
    while i < near.shape[1]:
        n = sizes[k % len(sizes)]
        out.append(ec.process(near[:, i : i + n], far[:, i : i + n]))
        i += n
        k += 1
    return np.concatenate(out, axis=1)


def test_shape_dtype_and_cancellation(models):
    near, far = _scene(models)
    ec = EchoCanceller(3, nlp=False)
    out = _run(ec, near, far, [80])
    assert out.dtype == np.int16 and out.shape == near.shape
    erle = g168.erle_db(near, out, 2.0, 1.0)
    assert np.all(erle > 15.0), erle


def test_split_invariance(models):
    near, far = _scene(models, near_db=-12.0)
    ref = EchoCanceller(3)
    a = _run(ref, near, far, [80])
    for sizes in ([1, 7, 159, 333], [160], [3000], [81, 79, 240, 17]):
        ec = EchoCanceller(3)
        b = _run(ec, near, far, sizes)
        diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
        # the state is exactly the same; outputs only differ by float rounding of partial blocks
        assert diff.max() <= 1, (sizes, diff.max())
        assert np.mean(diff > 0) < 1e-3
        assert np.array_equal(ec.impulse_response(), ref.impulse_response())


def test_reset_makes_channel_fresh_and_leaves_others(models):
    near, far = _scene(models)
    ec = EchoCanceller(3)
    n = near.shape[1] // 2
    first = ec.process(near[:, :n], far[:, :n])
    ec.reset(1)
    rest = ec.process(near[:, n:], far[:, n:])
    fresh = EchoCanceller(3)
    fresh.process(near[:, :n], far[:, :n])
    other = fresh.process(near[:, n:], far[:, n:])
    assert np.array_equal(rest[[0, 2]], other[[0, 2]])
    # channel 1 restarted from nothing: it converges again like a new canceller fed from that point
    # (comfort noise and the constraint rotation are shared, so samples are not bit-identical)
    new = EchoCanceller(1)
    new.process(np.zeros((1, n), np.int16), np.zeros((1, n), np.int16))
    again = new.process(near[1:2, n:], far[1:2, n:])
    e_reset = g168.erle_db(near[1:2, n:], rest[1:2], 0.0, 1.5)
    e_new = g168.erle_db(near[1:2, n:], again, 0.0, 1.5)
    assert abs(e_reset[0] - e_new[0]) < 1.0
    assert first.shape == (3, n)


def test_enable_bypasses_one_channel(models):
    near, far = _scene(models)
    ec = EchoCanceller(3)
    ec.enable(2, False)
    out = _run(ec, near, far, [80])
    assert np.array_equal(out[2], near[2])
    assert not np.array_equal(out[0], near[0])


@pytest.mark.parametrize(
    "near,far,msg",
    [
        (np.zeros((2, 80), np.float32), np.zeros((2, 80), np.int16), "int16"),
        (np.zeros((3, 80), np.int16), np.zeros((3, 80), np.int16), "shaped"),
        (np.zeros((2, 0), np.int16), np.zeros((2, 0), np.int16), "shaped"),
        (np.zeros((2, 80), np.int16), np.zeros((2, 81), np.int16), "same shape"),
        (np.zeros(80, np.int16), np.zeros(80, np.int16), "shaped"),
        ([[0] * 80] * 2, np.zeros((2, 80), np.int16), "int16"),
    ],
)
def test_bad_input(near, far, msg):
    ec = EchoCanceller(2)
    with pytest.raises(ValueError, match=msg):
        ec.process(near, far)


def test_bad_arguments():
    with pytest.raises(ValueError):
        EchoCanceller(0)
    with pytest.raises(ValueError):
        EchoCanceller(2, tail_ms=0)
    with pytest.raises(ValueError, match="fft"):
        EchoCanceller(2, fft="fftw")
    ec = EchoCanceller(2)
    for bad in (-1, 2, 1.5, "0"):
        with pytest.raises(ValueError):
            ec.reset(bad)
        with pytest.raises(ValueError):
            ec.enable(bad, True)


def test_clipping_input_does_not_disturb_other_channels(models):
    near, far = _scene(models)
    ec1 = EchoCanceller(3)
    ref = _run(ec1, near, far, [80])
    near2, far2 = near.copy(), far.copy()
    rng = np.random.default_rng(9)
    near2[1] = rng.choice(np.array([-32768, 32767], np.int16), near.shape[1])
    far2[1] = rng.choice(np.array([-32768, 32767], np.int16), near.shape[1])
    ec2 = EchoCanceller(3)
    out = _run(ec2, near2, far2, [80])
    assert np.array_equal(out[[0, 2]], ref[[0, 2]])
    assert np.isfinite(ec2._w).all()


def _ans_tone(seconds, level_dbm0, reversals=True, freq=2100.0):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = np.where((np.floor(t / 0.45) % 2 == 1) & reversals, np.pi, 0.0)
    return np.rint(dbm0_to_amplitude(level_dbm0) * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)


def test_tone_disabler_2100_with_phase_reversals(models):
    """G.165: 2100 Hz with phase reversals every 450 ms on either path bypasses; plain 2100 Hz or speech
    does not; 250 ms of silence on both paths re-enables."""
    n = int(2.0 * SAMPLE_RATE)
    far = np.zeros((4, n), np.int16)
    near = np.zeros((4, n), np.int16)
    far[0] = _ans_tone(2.0, -12.0)  # answer tone with reversals, sent by us
    near[1] = _ans_tone(2.0, -25.0)  # answer tone with reversals, from the line
    far[2] = _ans_tone(2.0, -12.0, reversals=False)  # plain 2100 Hz: no bypass for a canceller
    far[3] = g168.css(2.0, -10.0)  # speech-like: no bypass
    near[3] = g168.css(2.0, -10.0, seed=9)
    ec = EchoCanceller(4)
    out = _run(ec, near, far, [80])
    assert ec.tone_disabled().tolist() == [True, True, False, False]
    # bypassed: the line signal passes untouched from the block after detection
    assert np.array_equal(out[1, -4000:], near[1, -4000:])
    quiet = np.zeros((4, int(0.5 * SAMPLE_RATE)), np.int16)
    _run(ec, quiet, quiet, [80])
    assert not ec.tone_disabled().any()


def test_tone_disabler_detects_off_frequency_within_tolerance():
    n = int(2.0 * SAMPLE_RATE)
    far = np.stack([_ans_tone(2.0, -15.0, freq=f) for f in (2079.0, 2121.0, 1800.0)])
    ec = EchoCanceller(3)
    _run(ec, np.zeros((3, n), np.int16), far, [160])
    assert ec.tone_disabled().tolist() == [True, True, False]


def test_idle_rows_skipped_and_channels_independent(models):
    """Far ends that start and stop talking at different times: the filter runs only where the far end
    was above the gate within the tail (active()), the rows are moved around inside, and every channel
    still gets exactly what a canceller of its own would give it."""
    n = int(3.0 * SAMPLE_RATE)
    near, far = _scene(models, channels=4, seconds=3.0, near_db=-20.0)
    far6 = np.zeros((6, n), np.int16)
    near6 = np.zeros((6, n), np.int16)
    spans = [(0, n), (4000, 12000), (0, 6000), (9000, n), (0, 0), (2000, 2400)]
    for i, (a, b) in enumerate(spans):
        far6[i, a:b] = far[i % 4, a:b]
        near6[i] = near[i % 4] if b > a else 0
        near6[i, :a] = 0
    many = EchoCanceller(6, nlp=False, fft="scipy")  # (ducc0 rounds differently by batch position)
    seen = []
    out = []
    for i in range(0, n, 80):
        out.append(many.process(near6[:, i : i + 80], far6[:, i : i + 80]))
        seen.append(many.active())
    out = np.concatenate(out, axis=1)
    act = np.array(seen)
    assert not act[:, 4].any() and act[2:, 0].all()
    assert 0 < many.blocks_idle and 0 < many.blocks_run
    for i in range(6):
        one = EchoCanceller(1, nlp=False, fft="scipy")
        alone = _run(one, near6[i : i + 1], far6[i : i + 1], [80])
        assert np.array_equal(out[i : i + 1], alone), i
        assert np.array_equal(many.impulse_response()[i], one.impulse_response()[0]), i
    # a channel whose far end never talked passes the near end through untouched
    assert np.array_equal(out[4], near6[4])
    # the default FFT (ducc0 when installed) agrees to the LSB
    fast = EchoCanceller(6, nlp=False)
    diff = np.abs(_run(fast, near6, far6, [80]).astype(np.int32) - out)
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-2
