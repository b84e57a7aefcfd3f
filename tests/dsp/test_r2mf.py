"""R2 MF receiver and generator (dsp.r2mf): every signal of both directions over the level range, twist,
frequency deviation, noise, A-law, split invariance, false signals, and spandsp's R2 MF as a yardstick."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.g711 import alaw_decode, alaw_encode
from dsp.r2mf import BACKWARD_FREQS, FORWARD_FREQS, PAIRS, R2MfDetector, mf_frequencies, mf_loop, mf_signal
from dsp.tones import cadence, dtmf_digit, to_int16

LEAD = 800  # 100 ms of silence before every signal


def run(det: R2MfDetector, x: np.ndarray, block: int = 80) -> list:
    out = []
    for i in range(0, x.shape[1], block):
        out += det.process(np.ascontiguousarray(x[:, i : i + block]))
    return out


def bank(direction: str, level: float, ms: float = 80.0, **kw) -> np.ndarray:
    """(15, n): signal k+1 on row k, after LEAD samples of silence, then 100 ms of silence."""
    tail = 800
    n = LEAD + int(ms * 8) + tail
    x = np.zeros((15, n))
    for s in range(1, 16):
        x[s - 1, LEAD : LEAD + int(ms * 8)] = mf_signal(direction, s, ms, level, **kw)
    return x


def by_channel(events: list) -> dict[int, list]:
    out: dict[int, list] = {}
    for e in events:
        out.setdefault(e.channel, []).append(e)
    return out


def check_each_once(events: list, direction: str, ms: float = 80.0) -> None:
    chans = by_channel(events)
    assert sorted(chans) == list(range(15)), events
    for ch, evs in chans.items():
        assert [e.value for e in evs] == [f"{direction}{ch + 1}", "off"], evs
        on, off = evs[0].sample, evs[1].sample
        assert abs(on - LEAD) <= 80, (ch, on)  # onset within 10 ms
        assert abs(off - (LEAD + ms * 8)) <= 120, (ch, off)  # end within 15 ms


def test_frequencies_follow_q441() -> None:
    assert mf_frequencies("F", 1) == (1380.0, 1500.0)
    assert mf_frequencies("F", 15) == (1860.0, 1980.0)
    assert mf_frequencies("B", 1) == (1140.0, 1020.0)
    assert mf_frequencies("B", 15) == (660.0, 540.0)
    assert len({PAIRS[s] for s in PAIRS}) == 15
    assert np.allclose(np.diff(FORWARD_FREQS), 120) and np.allclose(np.diff(BACKWARD_FREQS), -120)
    with pytest.raises(ValueError):
        mf_frequencies("X", 1)
    with pytest.raises(ValueError):
        mf_frequencies("F", 16)


@pytest.mark.parametrize("direction", ["F", "B"])
@pytest.mark.parametrize("level", [-5.0, -8.0, -12.0, -16.0, -20.0])
def test_every_signal_over_the_level_range(direction: str, level: float) -> None:
    x = to_int16(bank(direction, level))
    check_each_once(run(R2MfDetector(15), x), direction)


@pytest.mark.parametrize("direction", ["F", "B"])
def test_through_alaw(direction: str) -> None:
    x = alaw_decode(alaw_encode(to_int16(bank(direction, -20.0))))
    check_each_once(run(R2MfDetector(15), x), direction)


@pytest.mark.parametrize("twist", [-6.0, -3.0, 3.0, 6.0])
@pytest.mark.parametrize("direction", ["F", "B"])
def test_twist_accepted(direction: str, twist: float) -> None:
    x = to_int16(bank(direction, -15.0, twist_db=twist))
    check_each_once(run(R2MfDetector(15), x), direction)


def test_large_twist_rejected() -> None:
    x = to_int16(bank("F", -10.0, twist_db=-14.0))
    assert run(R2MfDetector(15), x) == []


@pytest.mark.parametrize("offset", [(10.0, 10.0), (-10.0, -10.0), (10.0, -10.0), (-10.0, 10.0)])
@pytest.mark.parametrize("direction", ["F", "B"])
def test_frequency_deviation_10hz_accepted(direction: str, offset: tuple[float, float]) -> None:
    x = to_int16(bank(direction, -12.0, offset_hz=offset))
    check_each_once(run(R2MfDetector(15), x), direction)


@pytest.mark.parametrize("direction", ["F", "B"])
def test_in_white_noise(direction: str) -> None:
    rng = np.random.default_rng(7)
    x = bank(direction, -20.0)
    # noise at -40 dBm0 (mean square of a -40 dBm0 sine): 20 dB below each tone
    sigma = 22785.0 * 10 ** (-40 / 20) / np.sqrt(2)
    check_each_once(run(R2MfDetector(15), to_int16(x + rng.normal(0, sigma, x.shape))), direction)


def test_noise_speechband_and_other_tones_give_nothing() -> None:
    rng = np.random.default_rng(3)
    rows = [rng.normal(0, 3000, 16000)]  # loud white noise
    rows += [np.concatenate([dtmf_digit(k, 100, -8.0), np.zeros(400)] * 10)[:16000] for k in "0123456789"]
    rows += [cadence("cn", t, 2.0, -8.0) for t in ("dial", "busy", "ringback", "congestion")]
    t = np.arange(16000) / 8000
    rows += [10000 * np.sin(2 * np.pi * f * t) for f in FORWARD_FREQS + BACKWARD_FREQS]  # single tones
    # a chirp through the whole band (speech-like sweep)
    rows.append(8000 * np.sin(2 * np.pi * (300 * t + 400 * t * t)))
    x = to_int16(np.stack([np.resize(r, 16000) for r in rows]))
    assert run(R2MfDetector(x.shape[0]), x) == []


def test_short_burst_ignored_and_back_to_back_cycle() -> None:
    x = np.zeros((2, 4000))
    x[0, 800:880] = mf_signal("F", 5, 10.0)  # 10 ms: too short
    # a compelled-style sequence: 60 ms tone, 40 ms gap, another signal
    x[1, 800:1280] = mf_signal("B", 1, 60.0)
    x[1, 1600:2080] = mf_signal("B", 3, 60.0)
    ev = run(R2MfDetector(2), to_int16(x))
    assert [(e.channel, e.value) for e in ev] == [(1, "B1"), (1, "off"), (1, "B3"), (1, "off")]


@pytest.mark.parametrize("seed", [1, 2])
def test_any_split_gives_the_same_events(seed: int) -> None:
    x = to_int16(bank("F", -10.0, ms=70.0))
    ref = run(R2MfDetector(15), x, block=x.shape[1])
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, x.shape[1]), 40, replace=False))
    det = R2MfDetector(15)
    got = []
    for a, b in zip([0, *cuts], [*cuts, x.shape[1]], strict=True):
        got += det.process(np.ascontiguousarray(x[:, a:b]))
    assert sorted(map(repr, got)) == sorted(map(repr, ref))


def test_loop_buffer_is_seamless() -> None:
    buf = mf_loop("F", 7).astype(float)
    x = np.tile(buf, 20)
    # no discontinuity at the joins: the wrap-around step is like any other step
    steps = np.abs(np.diff(np.concatenate([buf, buf[:1]])))
    assert steps[-1] <= steps.max() + 1
    ev = run(R2MfDetector(1), to_int16(np.concatenate([np.zeros(800), x, np.zeros(800)])[None, :]))
    assert [e.value for e in ev] == ["F7", "off"]
    level = 10 * np.log10(np.mean(buf**2) / (22785.0**2 / 2))
    assert abs(level - (-8.0 + 3.01)) < 0.1  # two tones at -8 dBm0 each


def test_reset_and_bad_input() -> None:
    det = R2MfDetector(2)
    x = to_int16(np.stack([mf_signal("F", 2, 100.0), mf_signal("F", 2, 100.0)]))
    first = det.process(x[:, :400])
    assert sorted((e.channel, e.value) for e in first) == [(0, "F2"), (1, "F2")]
    det.reset(0)
    # channel 0 starts afresh: the tone still there is a new signal, its onset at the reset
    ev = det.process(x[:, 400:])
    assert [(e.channel, e.value, e.sample) for e in ev if e.channel == 0] == [(0, "F2", 0)]
    assert [e.value for e in ev if e.channel == 1] == []
    with pytest.raises(ValueError):
        det.process(np.zeros((3, 80), dtype=np.int16))
    with pytest.raises(ValueError):
        det.process(np.zeros((2, 80), dtype=np.float32))
    with pytest.raises(ValueError):
        det.reset(5)
    with pytest.raises(ValueError):
        R2MfDetector(0)


# ---- spandsp's R2 MF (Debian libspandsp) as a yardstick, both ways ----------------------------------
SPANDSP_DIGITS = "1234567890BCDEF"  # spandsp's names of signals 1..15


def _spandsp():
    from tools.bench.ref_spandsp import SpandspMissing, load

    try:
        ffi, _ = load()
    except SpandspMissing:
        pytest.skip("libspandsp not installed")
    import cffi

    f = cffi.FFI()
    f.cdef(
        """
        void *r2_mf_tx_init(void *s, int fwd);
        int r2_mf_tx(void *s, int16_t amp[], int samples);
        int r2_mf_tx_put(void *s, char digit);
        int r2_mf_tx_free(void *s);
        void *r2_mf_rx_init(void *s, int fwd, void *callback, void *user_data);
        int r2_mf_rx(void *s, const int16_t amp[], int samples);
        int r2_mf_rx_get(void *s);
        int r2_mf_rx_free(void *s);
        """
    )
    return f, f.dlopen("libspandsp.so.2")


@pytest.mark.parametrize("fwd", [True, False])
def test_spandsp_generates_we_detect(fwd: bool) -> None:
    ffi, lib = _spandsp()
    rows = []
    for s in range(1, 16):
        tx = lib.r2_mf_tx_init(ffi.NULL, int(fwd))
        buf = np.zeros(2400, dtype=np.int16)
        lib.r2_mf_tx_put(tx, SPANDSP_DIGITS[s - 1].encode())
        lib.r2_mf_tx(tx, ffi.cast("int16_t *", ffi.from_buffer(buf[LEAD : LEAD + 640])), 640)
        lib.r2_mf_tx_free(tx)
        rows.append(buf)
    check_each_once(run(R2MfDetector(15), np.stack(rows)), "F" if fwd else "B")


@pytest.mark.parametrize("fwd", [True, False])
def test_we_generate_spandsp_detects(fwd: bool) -> None:
    ffi, lib = _spandsp()
    for s in range(1, 16):
        rx = lib.r2_mf_rx_init(ffi.NULL, int(fwd), ffi.NULL, ffi.NULL)
        x = to_int16(mf_signal("F" if fwd else "B", s, 80.0, -8.0))
        lib.r2_mf_rx(rx, ffi.cast("int16_t *", ffi.from_buffer(x)), len(x))
        got = lib.r2_mf_rx_get(rx)
        lib.r2_mf_rx_free(rx)
        assert chr(got) == SPANDSP_DIGITS[s - 1], (s, got)
