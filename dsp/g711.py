"""ITU-T G.711 A-law and mu-law, bit-exact with the ITU-T G.191 Software Tool Library (STL) module G711.

Every function takes a numpy array of any shape and returns one of the same shape. The work is a table
lookup: a 65,536-entry encode table indexed by the 16-bit pattern of the sample, a 256-entry decode table
indexed by the code. The tables are built once at import from the G.191 algorithm:

- A-law (G.711 Table 1): the 16-bit sample is reduced to 12 bits (right shift by 4; one's complement for
  negative values), segment and mantissa are found, the sign bit is set for values >= 0, and the even bits
  are inverted (XOR 0x55) as the code goes on the line. The decoder returns the middle of the quantisation
  interval on the 16-bit scale.
- mu-law (G.711 Table 2): the sample is reduced to 14 bits (right shift by 2, one's complement for
  negative values), biased by 33, clipped to 0x1FFF, segment and mantissa are found and the whole code is
  inverted (all bits).

A<->mu transcoding follows G.711 Tables 3 and 4 (not decode-then-encode, which differs from the tables on
30-odd codes): the tables are given below in sign-magnitude order (index 0 = smallest magnitude).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "alaw_encode",
    "alaw_decode",
    "ulaw_encode",
    "ulaw_decode",
    "alaw_to_ulaw",
    "ulaw_to_alaw",
    "ALAW_ENCODE_TABLE",
    "ALAW_DECODE_TABLE",
    "ULAW_ENCODE_TABLE",
    "ULAW_DECODE_TABLE",
    "ALAW_TO_ULAW_TABLE",
    "ULAW_TO_ALAW_TABLE",
]


def _segment(value: np.ndarray, first_top: int) -> np.ndarray:
    """Number of right shifts that bring `value` (>= 0) down to at most `first_top`."""
    shifts = np.zeros_like(value)
    v = value.copy()
    while True:
        over = v > first_top
        if not over.any():
            return shifts
        shifts += over
        v = np.where(over, v >> 1, v)


def _build_alaw_encode() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32)
    ix = np.where(x < 0, ~x, x) >> 4  # 0..2047, one's complement for negative samples
    shifts = _segment(ix, 31)  # segment 1 covers 16..31, each later one doubles
    exponent = np.where(ix > 15, shifts + 1, 0)
    code = np.where(ix > 15, (ix >> shifts) - 16 + (exponent << 4), ix)
    code = np.where(x >= 0, code | 0x80, code) ^ 0x55
    table = np.empty(65536, dtype=np.uint8)
    table[x.astype(np.int16).view(np.uint16)] = code.astype(np.uint8)
    return table


def _build_alaw_decode() -> np.ndarray:
    c = np.arange(256, dtype=np.int32)
    ix = (c ^ 0x55) & 0x7F
    exponent = ix >> 4
    mantissa = ix & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    mantissa = (mantissa << 4) + 8
    mantissa = np.where(exponent > 1, mantissa << np.maximum(exponent - 1, 0), mantissa)
    return np.where(c > 127, mantissa, -mantissa).astype(np.int16)


def _build_ulaw_encode() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32)
    absno = np.minimum((np.where(x < 0, ~x, x) >> 2) + 33, 0x1FFF)
    segno = _segment(absno >> 6, 0) + 1
    high = 8 - segno
    low = 15 - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    table = np.empty(65536, dtype=np.uint8)
    table[x.astype(np.int16).view(np.uint16)] = code.astype(np.uint8)
    return table


def _build_ulaw_decode() -> np.ndarray:
    c = np.arange(256, dtype=np.int32)
    sign = np.where(c < 0x80, -1, 1)
    m = ~c
    exponent = (m >> 4) & 0x07
    step = 4 << (exponent + 1)
    mantissa = m & 0x0F
    return (sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)).astype(np.int16)


# G.711 Table 4 (A-law -> mu-law) and Table 3 (mu-law -> A-law), in sign-magnitude order:
# entry k is the magnitude index of the other law for magnitude index k of this law.
_A_TO_U_MAGNITUDE = (
    [1, 3, 5, 7, 9, 11, 13, 15]
    + list(range(16, 32))
    + [32, 32, 33, 33, 34, 34, 35, 35]
    + list(range(36, 48))
    + [48, 48, 49, 49]
    + list(range(50, 64))
    + [64, 64]
    + list(range(65, 80))
    + [80, 80]
    + list(range(81, 128))
)
_U_TO_A_MAGNITUDE = (
    [k // 2 for k in range(16)]
    + list(range(8, 25))
    + [26, 28, 30]
    + list(range(32, 44))
    + [45, 47]
    + list(range(48, 62))
    + [63]
    + list(range(64, 80))
    + list(range(81, 128))
)


def _build_transcode(magnitude_map: list[int], from_alaw: bool) -> np.ndarray:
    assert len(magnitude_map) == 128
    mapped = np.asarray(magnitude_map, dtype=np.int32)
    c = np.arange(256, dtype=np.int32)
    if from_alaw:
        mag = (c ^ 0x55) & 0x7F
        out = 127 - mapped[mag]  # mu-law carries the inverted magnitude
    else:
        mag = 127 - (c & 0x7F)
        out = mapped[mag] ^ 0x55  # A-law carries the even-bit-inverted magnitude
    return ((out & 0x7F) | (c & 0x80)).astype(np.uint8)


ALAW_ENCODE_TABLE: np.ndarray = _build_alaw_encode()
ALAW_DECODE_TABLE: np.ndarray = _build_alaw_decode()
ULAW_ENCODE_TABLE: np.ndarray = _build_ulaw_encode()
ULAW_DECODE_TABLE: np.ndarray = _build_ulaw_decode()
ALAW_TO_ULAW_TABLE: np.ndarray = _build_transcode(_A_TO_U_MAGNITUDE, from_alaw=True)
ULAW_TO_ALAW_TABLE: np.ndarray = _build_transcode(_U_TO_A_MAGNITUDE, from_alaw=False)
for _t in (
    ALAW_ENCODE_TABLE,
    ALAW_DECODE_TABLE,
    ULAW_ENCODE_TABLE,
    ULAW_DECODE_TABLE,
    ALAW_TO_ULAW_TABLE,
    ULAW_TO_ALAW_TABLE,
):
    _t.setflags(write=False)


def _as_pcm(pcm: npt.ArrayLike) -> np.ndarray:
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise ValueError(f"G.711 encode wants int16 samples, got dtype {pcm.dtype}")
        return pcm
    arr = np.asarray(pcm)
    if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < -32768 or arr.max() > 32767)):
        raise ValueError("G.711 encode wants int16 samples (integers in -32768..32767)")
    return arr.astype(np.int16)


def _as_code(code: npt.ArrayLike) -> np.ndarray:
    if isinstance(code, np.ndarray):
        if code.dtype != np.uint8:
            raise ValueError(f"G.711 decode wants uint8 codes, got dtype {code.dtype}")
        return code
    arr = np.asarray(code)
    if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 255)):
        raise ValueError("G.711 decode wants uint8 codes (integers in 0..255)")
    return arr.astype(np.uint8)


def alaw_encode(pcm: npt.ArrayLike) -> np.ndarray:
    """int16 samples (any shape) -> uint8 A-law codes as sent on the line (even bits inverted)."""
    return ALAW_ENCODE_TABLE[_as_pcm(pcm).view(np.uint16)]


def alaw_decode(code: npt.ArrayLike) -> np.ndarray:
    """uint8 A-law codes (any shape) -> int16 samples."""
    return ALAW_DECODE_TABLE[_as_code(code)]


def ulaw_encode(pcm: npt.ArrayLike) -> np.ndarray:
    """int16 samples (any shape) -> uint8 mu-law codes."""
    return ULAW_ENCODE_TABLE[_as_pcm(pcm).view(np.uint16)]


def ulaw_decode(code: npt.ArrayLike) -> np.ndarray:
    """uint8 mu-law codes (any shape) -> int16 samples."""
    return ULAW_DECODE_TABLE[_as_code(code)]


def alaw_to_ulaw(code: npt.ArrayLike) -> np.ndarray:
    """A-law codes -> mu-law codes per G.711 Table 4."""
    return ALAW_TO_ULAW_TABLE[_as_code(code)]


def ulaw_to_alaw(code: npt.ArrayLike) -> np.ndarray:
    """mu-law codes -> A-law codes per G.711 Table 3."""
    return ULAW_TO_ALAW_TABLE[_as_code(code)]
