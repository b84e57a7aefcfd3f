"""MFC-R2 inter-register signals (ITU-T Q.441 frequencies, Q.455-style receiver), vectorised across channels.

An R2 MF signal is two of six frequencies, 120 Hz apart:
- forward (from the outgoing register, groups I/II):  f0..f5 = 1380, 1500, 1620, 1740, 1860, 1980 Hz;
- backward (from the incoming register, groups A/B):  f0..f5 = 1140, 1020, 900, 780, 660, 540 Hz.
Signal n (1..15) is the pair in the Q.441 order: 1 = f0+f1, 2 = f0+f2, 3 = f1+f2, 4 = f0+f3, 5 = f1+f3,
6 = f2+f3, 7 = f0+f4, 8 = f1+f4, 9 = f2+f4, 10 = f3+f4, 11 = f0+f5, 12 = f1+f5, 13 = f2+f5, 14 = f3+f5,
15 = f4+f5. The sending level is about -8 dBm0 per tone.

Generator: `mf_signal` (any duration, float or int16) and `mf_loop` (a 400-sample buffer holding a whole
number of cycles of every R2 frequency — all are multiples of 20 Hz — so a player looping it is seamless:
compelled signalling holds a tone for as long as the far end takes to answer it).

Receiver (`R2MfDetector`): the same framing as dsp.dtmf. The signal of every channel is cut into
sub-blocks of 40 samples (5 ms) on one grid; one batched matrix product per call gives every sub-block's
DFT at the 12 frequencies, phase-referenced to the stream start, so a window's DFT is the plain sum of its
sub-blocks'. Only the (window, channel) pairs with enough energy for two tones at the floor go through the
tone tests below.
Windows are 5 sub-blocks (200 samples, 25 ms): 120 Hz is then exactly 3 bins, so every other nominal R2
frequency falls on a null of the window (no leakage at all between the tones of a signal), and a tone
10 Hz off nominal loses 0.9 dB and leaks at -22 dB. Every 5 ms, for each direction, the two strongest of
its six bins make the candidate signal; a window is *valid* when:
- both tones are at or above the sensitivity floor (-35 dBm0 per tone: Q.455's range is -5..-35 dBm0),
- the twist (level difference of the two) is at most 7 dB (Q.455: 5 dB adjacent, 7 dB non-adjacent),
- the third strongest bin of that direction is 10 dB or more below the weaker tone (no three-tone signal),
- the two tones carry at least 70 % of the window's energy (purity: rejects speech and noise).
A signal is recognised after RUN = 2 consecutive valid windows of the same signal (about 30 ms of tone).
It is held while windows show the same pair at no less than a quarter (-6 dB) of the strongest power
seen during it (a window half past the tone's end falls below that), and released after RELEASE = 2
windows without it (about 20-25 ms after the tone stops; a gap of 5 ms is bridged).
Events: kind "r2mf", value "F<n>" / "B<n>" when a signal is recognised (sample = its estimated onset),
and "off" when it ends (sample = estimated end). Both directions are reported; which one a channel
listens for is the caller's business.

No Python loop runs over channels or samples: the tone tests of all windows of a call are one set of
array operations, the recognition state takes about a dozen array operations per window (two per 10 ms
block), and Python only loops over events.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from dsp.blocks import SubBlocks, check_block, check_channel
from dsp.events import Event
from dsp.levels import SAMPLE_RATE, dbm0_to_amplitude

__all__ = [
    "FORWARD_FREQS",
    "BACKWARD_FREQS",
    "PAIRS",
    "SEND_LEVEL_DBM0",
    "mf_frequencies",
    "mf_signal",
    "mf_loop",
    "R2MfDetector",
]

FORWARD_FREQS: tuple[float, ...] = (1380.0, 1500.0, 1620.0, 1740.0, 1860.0, 1980.0)
BACKWARD_FREQS: tuple[float, ...] = (1140.0, 1020.0, 900.0, 780.0, 660.0, 540.0)
# Q.441 Table 5: signal n -> indices (i, j) of its two frequencies
PAIRS: dict[int, tuple[int, int]] = {
    1: (0, 1), 2: (0, 2), 3: (1, 2), 4: (0, 3), 5: (1, 3), 6: (2, 3), 7: (0, 4), 8: (1, 4),
    9: (2, 4), 10: (3, 4), 11: (0, 5), 12: (1, 5), 13: (2, 5), 14: (3, 5), 15: (4, 5),
}  # fmt: skip
SEND_LEVEL_DBM0 = -8.0
LOOP_SAMPLES = 400  # 50 ms: a whole number of cycles of every multiple of 20 Hz

SUB = 40
WIN = 5
WIN_LEN = SUB * WIN
RUN = 2
RELEASE = 2
MIN_LEVEL_DBM0 = -35.0
TWIST_DB = 7.0
THIRD_DB = 10.0
PURITY = 0.7
MAX_RUN = 32 * SUB
HOLD_FRACTION = 0.25  # held while the pair keeps a quarter of its peak power

_FREQS = np.array(FORWARD_FREQS + BACKWARD_FREQS, dtype=np.float64)  # bins 0-5 forward, 6-11 backward
_OMEGA = 2.0 * math.pi * _FREQS / SAMPLE_RATE
_N = np.arange(SUB, dtype=np.float64)
_MIN_POWER = float((dbm0_to_amplitude(MIN_LEVEL_DBM0) * WIN_LEN / 2.0) ** 2)
_TWIST = 10.0 ** (TWIST_DB / 10.0)
_THIRD = 10.0 ** (-THIRD_DB / 10.0)
# window energy of two tones at the floor is 2 * A**2 * WIN_LEN / 2; gate at half of it
_GATE_ENERGY = float(0.5 * dbm0_to_amplitude(MIN_LEVEL_DBM0) ** 2 * WIN_LEN)


def mf_frequencies(direction: str, signal: int) -> tuple[float, float]:
    """The two frequencies (Hz) of forward ("F") or backward ("B") signal 1..15."""
    if direction not in ("F", "B"):
        raise ValueError(f"direction must be 'F' (forward) or 'B' (backward), not {direction!r}")
    if signal not in PAIRS:
        raise ValueError(f"R2 MF signal must be 1..15, not {signal!r}")
    freqs = FORWARD_FREQS if direction == "F" else BACKWARD_FREQS
    i, j = PAIRS[signal]
    return freqs[i], freqs[j]


def mf_signal(
    direction: str,
    signal: int,
    duration_ms: float,
    level_dbm0: float = SEND_LEVEL_DBM0,
    twist_db: float = 0.0,
    offset_hz: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """`duration_ms` of a signal, float64 on the 16-bit scale (the higher tone `twist_db` louder)."""
    f1, f2 = mf_frequencies(direction, signal)
    lo, hi = sorted((f1, f2))
    n = int(round(duration_ms * SAMPLE_RATE / 1000.0))
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    a1 = dbm0_to_amplitude(level_dbm0)
    a2 = dbm0_to_amplitude(level_dbm0 + twist_db)
    return a1 * np.sin(2 * math.pi * (lo + offset_hz[0]) * t) + a2 * np.sin(
        2 * math.pi * (hi + offset_hz[1]) * t
    )


def mf_loop(direction: str, signal: int, level_dbm0: float = SEND_LEVEL_DBM0) -> np.ndarray:
    """int16 buffer a player loops seamlessly for as long as the signal is held."""
    x = mf_signal(direction, signal, LOOP_SAMPLES * 1000.0 / SAMPLE_RATE, level_dbm0)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _matrix(subblock: int) -> np.ndarray:
    """(SUB, 24) float32: cos columns then -sin columns of the 12 frequencies, phase from global sample 0."""
    start = (_OMEGA * (subblock * SUB)) % (2.0 * math.pi)
    arg = start[:, None] + _OMEGA[:, None] * _N[None, :]
    return np.ascontiguousarray(np.concatenate([np.cos(arg), -np.sin(arg)]).T.astype(np.float32))


# The phase pattern repeats every 400 samples (10 sub-blocks): every frequency is a multiple of 20 Hz.
_MATS_T = np.ascontiguousarray(np.stack([_matrix(k) for k in range(10)]).transpose(0, 2, 1))  # (10, 24, SUB)
# pair bit mask (bins i, j of one direction) -> signal number; any mask without exactly two bits -> 0
_MASK_CODE = np.zeros(64, dtype=np.int8)
for _sig, (_i, _j) in PAIRS.items():
    _MASK_CODE[(1 << _i) | (1 << _j)] = _sig
_TIEBREAK = (1.0 + np.arange(6, dtype=np.float32) * np.float32(2.0**-20))[:, None]


class R2MfDetector:
    """R2 MF receiver for `channels` channels, both directions; see the module docstring.

    Cost per `process` call: one batched matrix product for all its sub-blocks and channels, one set of
    array operations for the tone tests of the (window, channel) pairs with in-band energy (silent rows
    cost nothing there), and about a dozen small array operations per 5 ms window for the recognition
    state. Nothing is allocated per call beyond a few temporaries of the tone tests."""

    def __init__(self, channels: int) -> None:
        if not isinstance(channels, int | np.integer) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.channels = c = int(channels)
        self._blocks = SubBlocks(c, SUB, MAX_RUN)
        self._subblocks = 0
        self._origin = np.zeros(c, dtype=np.int64)
        # per number of sub-blocks t in a call: a buffer of WIN-1+t sub-block rows (24 DFT values and the
        # energy) for all channels, and the window sums of the call
        self._bufs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._tail = np.zeros((WIN - 1, 25, c), dtype=np.float32)  # the last WIN-1 sub-blocks
        self._cand = np.zeros(c, dtype=np.int8)  # signed code of the last window: +n forward, -n backward
        self._run = np.zeros(c, dtype=np.int16)  # identical valid windows ending with the last one
        self._down = np.zeros(c, dtype=np.int8)  # signal being reported (signed code), 0 none
        self._last = np.zeros(c, dtype=np.int64)  # index of the last window that held the reported signal
        # a quarter of the strongest pair power seen while the signal is held (the hold threshold); +inf
        # while nothing is held, so no window "holds" an idle channel
        self._quarter = np.full(c, np.inf, dtype=np.float32)

    def reset(self, channel: int) -> None:
        """Forget one channel; its sample count restarts at the next sample."""
        ch = check_channel(channel, self.channels)
        self._blocks.clear(ch)
        self._origin[ch] = self._subblocks * SUB + self._blocks.fill
        self._tail[:, :, ch] = 0
        self._cand[ch] = 0
        self._run[ch] = 0
        self._down[ch] = 0
        self._quarter[ch] = np.inf

    def process(self, block: npt.ArrayLike) -> list[Event]:
        """Feed (channels, n) int16, n >= 1; returns signals recognised and ended in it, in time order."""
        return self._blocks.feed(check_block(block, self.channels), self._run_block)

    # ------------------------------------------------------------------ private
    def _buffers(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = self._bufs.get(t)
        if b is None:
            c = self.channels
            b = self._bufs[t] = (
                np.zeros((WIN - 1 + t, 25, c), dtype=np.float32),
                np.zeros((t, 25, c), dtype=np.float32),
                np.zeros((t, c), dtype=np.float32),
            )
        return b

    def _run_block(self, x: np.ndarray) -> list[Event]:
        c, n = x.shape
        t = n // SUB
        first = self._subblocks
        self._subblocks += t
        buf, y, strength = self._buffers(t)
        buf[: WIN - 1] = self._tail
        xs = x.astype(np.float32).reshape(c, t, SUB)
        # DFTs of every sub-block of every channel, phase-referenced to the stream start: one batched
        # product (t, 24, SUB) @ (t, SUB, c) -> (t, 24, c); row 24 is the sub-block's energy
        np.matmul(_mats(first % 10, t), xs.transpose(1, 2, 0), out=buf[WIN - 1 :, :24])
        np.einsum("cts,cts->tc", xs, xs, out=buf[WIN - 1 :, 24])
        self._tail = buf[t:]
        # window k (ending with sub-block k of this call) sums WIN sub-blocks
        np.add(buf[:t], buf[1 : t + 1], out=y)
        for k in range(2, WIN):
            y += buf[k : t + k]
        # the (window, channel) pairs with in-band energy go through the tone tests
        sel = np.flatnonzero(y[:, 24] >= _GATE_ENERGY)
        code = np.zeros((t, c), dtype=np.int8)  # signed codes, 0 = no valid signal
        strength.fill(0.0)
        if sel.size:
            cols = np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(25, t * c)
            code.ravel()[sel], strength.ravel()[sel] = _tones(cols[:, sel] if sel.size < t * c else cols)
        elif not self._down.any():
            if self._cand.any():
                self._cand[:] = 0
                self._run[:] = 0
            return []
        # runs of identical valid windows (recognition needs RUN of them): independent of what is reported
        run, cand = self._run, self._cand
        recognised = np.empty((t, c), dtype=bool)
        for k in range(t):
            ck = code[k]
            run = np.where(ck == cand, run + 1, 1).astype(np.int16)
            run *= ck != 0
            cand = ck
            np.greater_equal(run, RUN, out=recognised[k])
        self._run = run
        self._cand = cand.copy()
        if not np.count_nonzero(recognised) and not np.count_nonzero(self._down):
            return []
        return self._hold(code, strength, recognised, first)

    def _hold(
        self, code: np.ndarray, strength: np.ndarray, recognised: np.ndarray, first: int
    ) -> list[Event]:
        """The reported signal of each channel, window by window: events where one starts or ends."""
        events: list[Event] = []
        down, last, qtr = self._down, self._last, self._quarter
        quarter = strength * np.float32(HOLD_FRACTION)
        for k in range(code.shape[0]):
            w = first + k  # global index of the window (it ends with sub-block w)
            ck = code[k]
            eq = ck == down
            holding = strength[k] >= qtr
            holding &= eq
            np.maximum(qtr, quarter[k], out=qtr, where=holding)
            np.copyto(last, w, where=holding)
            new = recognised[k] & ~eq
            released = last <= w - RELEASE
            released |= new
            released &= down != 0
            if not np.count_nonzero(released) and not np.count_nonzero(new):
                continue
            gone = np.flatnonzero(released)
            if gone.size:
                # its last window was about half covered by the tone
                ends = np.maximum((last[gone] + 1) * SUB - WIN_LEN // 2 - self._origin[gone], 0)
                events += [
                    Event(ch, "r2mf", "off", end)
                    for ch, end in zip(gone.tolist(), ends.tolist(), strict=True)
                ]
                down[gone] = 0
                qtr[gone] = np.inf
            born = np.flatnonzero(new)
            if born.size:
                onset = (w + 1) * SUB - (RUN - 1) * SUB - WIN_LEN
                starts = np.maximum(onset - self._origin[born], 0).tolist()
                sigs = ck[born]
                down[born] = sigs
                qtr[born] = quarter[k, born]
                last[born] = w
                events += [
                    Event(ch, "r2mf", _NAMES[sig], start)
                    for ch, sig, start in zip(born.tolist(), sigs.tolist(), starts, strict=True)
                ]
        return events


_NAMES = {s: f"F{s}" for s in PAIRS} | {-s: f"B{s}" for s in PAIRS}
_MATS_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _mats(phase: int, t: int) -> np.ndarray:
    """(t, 24, SUB) DFT matrices of t sub-blocks starting at sub-block phase (mod 10)."""
    m = _MATS_CACHE.get((phase, t))
    if m is None:
        m = _MATS_CACHE[(phase, t)] = np.ascontiguousarray(_MATS_T[(phase + np.arange(t)) % 10])
    return m


_ZERO = np.float32(0.0)
_PURITY_K = np.float32(PURITY * WIN_LEN / 2.0)


def _tones(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed code (0 = none) and pair power of windows given as (25, m) columns: 24 DFT values + energy."""
    # bin powers per direction, each bin scaled by its own 1 + i * 2**-20 so that two equal tones (a tie)
    # still rank: the strongest and second strongest are then always one bin each
    sq = np.square(y[:24])
    p = (sq[:12] + sq[12:]).reshape(2, 6, -1)
    p *= _TIEBREAK
    p1 = p.max(axis=1)
    first = p == p1[:, None]
    q = np.where(first, _ZERO, p)
    p2 = q.max(axis=1)
    second = q == p2[:, None]
    p3 = np.where(second, _ZERO, q).max(axis=1)
    first |= second
    pair = _MASK_CODE[np.packbits(first, axis=1, bitorder="little")[:, 0]]
    # both tones at or above the floor, twist, no third tone, purity
    floor = np.maximum(p1 * np.float32(1.0 / _TWIST), p3 * np.float32(1.0 / _THIRD))
    np.maximum(floor, np.float32(_MIN_POWER), out=floor)
    p12 = p1 + p2
    valid = p2 >= floor
    valid &= p12 >= y[24] * _PURITY_K
    p12 *= valid
    back = p12[1] > p12[0]
    code = np.where(back, -pair[1], pair[0] * valid[0])
    return code, np.maximum(p12[0], p12[1])
