"""G.711 against the ITU-T G.191 STL reference vectors (all 65,536 inputs) and G.711 Tables 3/4."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import g711
from dsp.levels import DBM0_PEAK, power_dbm0


def _load(conformance_dir, name: str) -> np.ndarray:
    return np.fromfile(conformance_dir / "g711" / name, "<i2")


def test_alaw_encode_matches_stl_on_every_input(conformance_dir):
    src = _load(conformance_dir, "sweep.src")
    assert src.size == 65536 and np.array_equal(np.sort(src), np.arange(-32768, 32768))
    ref = _load(conformance_dir, "sweep-r.a")
    assert np.all((ref.view(np.uint16) >> 8) == 0)
    np.testing.assert_array_equal(g711.alaw_encode(src), (ref & 0xFF).astype(np.uint8))


def test_ulaw_encode_matches_stl_on_every_input(conformance_dir):
    src = _load(conformance_dir, "sweep.src")
    ref = _load(conformance_dir, "sweep-r.u")
    np.testing.assert_array_equal(g711.ulaw_encode(src), (ref & 0xFF).astype(np.uint8))


def test_alaw_decode_and_round_trip_match_stl(conformance_dir):
    src = _load(conformance_dir, "sweep.src")
    codes = (_load(conformance_dir, "sweep-r.a") & 0xFF).astype(np.uint8)
    np.testing.assert_array_equal(g711.alaw_decode(codes), _load(conformance_dir, "sweep-r.a-a"))
    np.testing.assert_array_equal(
        g711.alaw_decode(g711.alaw_encode(src)), _load(conformance_dir, "sweep-r.rea")
    )


def test_ulaw_decode_and_round_trip_match_stl(conformance_dir):
    src = _load(conformance_dir, "sweep.src")
    codes = (_load(conformance_dir, "sweep-r.u") & 0xFF).astype(np.uint8)
    np.testing.assert_array_equal(g711.ulaw_decode(codes), _load(conformance_dir, "sweep-r.u-u"))
    np.testing.assert_array_equal(
        g711.ulaw_decode(g711.ulaw_encode(src)), _load(conformance_dir, "sweep-r.reu")
    )


def test_decoders_cover_all_codes_and_are_symmetric():
    codes = np.arange(256, dtype=np.uint8)
    for decode in (g711.alaw_decode, g711.ulaw_decode):
        lin = decode(codes).astype(np.int32)
        # bit 7 is the sign; the other 7 bits give the same magnitude on both sides
        np.testing.assert_array_equal(lin[:128], -lin[128:])
    # every decoded value encodes back to its own code (except mu-law's negative zero)
    np.testing.assert_array_equal(g711.alaw_encode(g711.alaw_decode(codes)), codes)
    back = g711.ulaw_encode(g711.ulaw_decode(codes))
    assert np.array_equal(back[codes != 0x7F], codes[codes != 0x7F]) and back[0x7F] == 0xFF


def test_any_shape_is_kept():
    rng = np.random.default_rng(1)
    x = rng.integers(-32768, 32768, size=(3, 4, 5)).astype(np.int16)
    for enc, dec in ((g711.alaw_encode, g711.alaw_decode), (g711.ulaw_encode, g711.ulaw_decode)):
        c = enc(x)
        assert c.shape == x.shape and c.dtype == np.uint8
        y = dec(c)
        assert y.shape == x.shape and y.dtype == np.int16
        np.testing.assert_array_equal(c[1, 2], enc(x[1, 2]))
    assert g711.alaw_encode(np.int16(5)).shape == ()
    assert g711.alaw_decode(np.zeros((0, 80), np.uint8)).shape == (0, 80)
    # non-contiguous views work
    np.testing.assert_array_equal(g711.alaw_encode(x[:, ::2, 1:]), g711.alaw_encode(x)[:, ::2, 1:])


def test_transcoding_follows_g711_tables_3_and_4():
    a = np.arange(256, dtype=np.uint8)
    u = g711.alaw_to_ulaw(a)
    # A -> mu -> A gives back the A-law code for all but the few magnitudes the tables merge
    assert np.count_nonzero(g711.ulaw_to_alaw(u) != a) <= 16
    # sign is kept, and order of magnitudes is kept (monotone in decoded value)
    assert np.all((u & 0x80) == (a & 0x80))
    lin_a = g711.alaw_decode(a).astype(np.int64)
    lin_u = g711.ulaw_decode(u).astype(np.int64)
    order = np.argsort(lin_a, kind="stable")
    assert np.all(np.diff(lin_u[order]) >= 0)
    m = np.arange(256, dtype=np.uint8)
    lin_m = g711.ulaw_decode(m).astype(np.int64)
    lin_ma = g711.alaw_decode(g711.ulaw_to_alaw(m)).astype(np.int64)
    order = np.argsort(lin_m, kind="stable")
    assert np.all(np.diff(lin_ma[order]) >= 0)
    # a transcoded value stays close to the original: within one A-law step (plus the A-law dead zone)
    assert np.all(np.abs(lin_u - lin_a) <= np.maximum(np.abs(lin_a) // 16, 16))
    assert np.all(np.abs(lin_ma - lin_m) <= np.maximum(np.abs(lin_m) // 16, 16))


@pytest.mark.interop
def test_transcoding_tables_agree_with_spandsp():
    cffi = pytest.importorskip("cffi")
    ffi = cffi.FFI()
    ffi.cdef("uint8_t alaw_to_ulaw(uint8_t alaw); uint8_t ulaw_to_alaw(uint8_t ulaw);")
    try:
        lib = ffi.dlopen("libspandsp.so.2")
    except OSError:
        pytest.fail("libspandsp (Debian libspandsp-dev) is not installed")
    ref_a2u = np.array([lib.alaw_to_ulaw(i) for i in range(256)], dtype=np.uint8)
    ref_u2a = np.array([lib.ulaw_to_alaw(i) for i in range(256)], dtype=np.uint8)
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(g711.alaw_to_ulaw(codes), ref_a2u)
    np.testing.assert_array_equal(g711.ulaw_to_alaw(codes), ref_u2a)


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
@pytest.mark.parametrize("phase", [0.0, 0.3, 1.1])
def test_1khz_0dbm0_tone_decodes_to_0dbm0(law, phase):
    n = np.arange(8000)
    tone = np.round(DBM0_PEAK * np.sin(2 * np.pi * 1000 * n / 8000 + phase)).astype(np.int16)
    enc, dec = (g711.alaw_encode, g711.alaw_decode) if law == "alaw" else (g711.ulaw_encode, g711.ulaw_decode)
    level = power_dbm0(dec(enc(tone)))
    assert abs(level) <= 0.1, level


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="int16"):
        g711.alaw_encode(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="int16"):
        g711.ulaw_encode(np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="uint8"):
        g711.alaw_decode(np.zeros(4, np.int16))
    with pytest.raises(ValueError, match="uint8"):
        g711.ulaw_to_alaw([0, 300])
    with pytest.raises(ValueError, match="int16"):
        g711.alaw_encode([40000])
    # plain Python integers in range are accepted
    assert g711.alaw_encode([0, -1]).tolist() == [0xD5, 0x55]
    assert g711.ulaw_decode([0xFF]).tolist() == [0]
