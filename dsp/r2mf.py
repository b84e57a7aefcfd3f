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
sub-blocks of 40 samples (5 ms) on one grid; one matrix product gives each sub-block's DFT at the 12
frequencies, phase-referenced to the stream start, so a window's DFT is the plain sum of its sub-blocks'.
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

No Python loop runs over channels or samples: per sub-block the tests are array operations on
(bins, channels), and Python only loops over events.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from dsp.blocks import SubBlocks, check_block
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
# pair (i, j) of the two strongest bins (i < j) -> signal number; 0 = no signal
_PAIR_CODE = np.zeros((6, 6), dtype=np.int8)
for _sig, (_i, _j) in PAIRS.items():
    _PAIR_CODE[_i, _j] = _PAIR_CODE[_j, _i] = _sig
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
    """(24, SUB) float32: cos rows then -sin rows of the 12 frequencies, phase from global sample 0."""
    start = (_OMEGA * (subblock * SUB)) % (2.0 * math.pi)
    arg = start[:, None] + _OMEGA[:, None] * _N[None, :]
    return np.concatenate([np.cos(arg), -np.sin(arg)]).astype(np.float32)


_MATS: dict[int, np.ndarray] = {}


def _matrix_cached(subblock: int) -> np.ndarray:
    # The phase pattern repeats every 400 samples (10 sub-blocks): every frequency is a multiple of 20 Hz.
    key = subblock % 10
    m = _MATS.get(key)
    if m is None:
        m = _MATS[key] = _matrix(key)
    return m


class R2MfDetector:
    """R2 MF receiver for `channels` channels, both directions; see the module docstring."""

    def __init__(self, channels: int) -> None:
        if not isinstance(channels, int | np.integer) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.channels = c = int(channels)
        self._blocks = SubBlocks(c, SUB, MAX_RUN)
        self._subblocks = 0
        self._origin = np.zeros(c, dtype=np.int64)
        self._hx = [np.zeros((24, c), dtype=np.float32) for _ in range(WIN - 1)]  # last two sub-block DFTs
        self._he = [np.zeros(c, dtype=np.float32) for _ in range(WIN - 1)]
        self._cand = np.zeros(c, dtype=np.int8)  # signed code of the current run: +n forward, -n backward
        self._run = np.zeros(c, dtype=np.int16)  # valid windows in the current run
        self._down = np.zeros(c, dtype=np.int8)  # signal being reported (signed code), 0 none
        self._misses = np.zeros(c, dtype=np.int8)
        self._last_seen = np.zeros(
            c, dtype=np.int64
        )  # global sample index where the held signal was last valid
        self._peak = np.zeros(c, dtype=np.float32)  # strongest pair power seen while the signal is held

    def reset(self, channel: int) -> None:
        """Forget one channel; its sample count restarts at the next sample."""
        if not isinstance(channel, int | np.integer) or not 0 <= channel < self.channels:
            raise ValueError(f"channel must be in 0..{self.channels - 1}, got {channel!r}")
        ch = int(channel)
        self._blocks.clear(ch)
        self._origin[ch] = self._subblocks * SUB + self._blocks.fill
        for h in self._hx:
            h[:, ch] = 0
        for e in self._he:
            e[ch] = 0
        self._cand[ch] = 0
        self._run[ch] = 0
        self._down[ch] = 0
        self._misses[ch] = 0

    def process(self, block: npt.ArrayLike) -> list[Event]:
        """Feed (channels, n) int16, n >= 1; returns signals recognised and ended in it, in time order."""
        return self._blocks.feed(check_block(block, self.channels), self._run_block)

    # ------------------------------------------------------------------ private
    def _run_block(self, x: np.ndarray) -> list[Event]:
        c, n = x.shape
        nsub = n // SUB
        xf = x.astype(np.float32)
        events: list[Event] = []
        for k in range(nsub):
            seg = xf[:, k * SUB : (k + 1) * SUB]
            spec = _matrix_cached(self._subblocks) @ seg.T  # (24, c)
            energy = np.einsum("ij,ij->i", seg, seg)
            y = spec + sum(self._hx)
            ew = energy + sum(self._he)
            self._hx = [*self._hx[1:], spec]
            self._he = [*self._he[1:], energy]
            events += self._decide(y, ew, self._subblocks)
            self._subblocks += 1
        return events

    def _decide(self, y: np.ndarray, ew: np.ndarray, sub_index: int) -> list[Event]:
        # Cheap gate on every channel: enough energy for two tones at the floor, or state to carry on. The
        # full tests and the state run on the few channels that pass (silent rows of a bank cost nothing).
        idx = np.flatnonzero((ew >= _GATE_ENERGY) | (self._down != 0) | (self._cand != 0))
        if idx.size == 0:
            return []
        y = y[:, idx]
        ew = ew[idx]
        p = y[:12] * y[:12] + y[12:] * y[12:]  # (12, m) bin powers
        codes = []
        strengths = []
        for base, sign in ((0, 1), (6, -1)):
            g = p[base : base + 6]
            order = np.argsort(g, axis=0)[-3:]  # ascending: third, second, strongest
            top = np.take_along_axis(g, order, axis=0)
            p3, p2, p1 = top[0], top[1], top[2]
            purity = (2.0 / WIN_LEN) * (p1 + p2) / np.maximum(ew, 1.0)
            valid = (p2 >= _MIN_POWER) & (p1 <= p2 * _TWIST) & (p3 <= p2 * _THIRD) & (purity >= PURITY)
            codes.append(np.where(valid, sign * _PAIR_CODE[order[2], order[1]], 0))
            strengths.append(np.where(valid, p1 + p2, 0.0))
        code = np.where(strengths[1] > strengths[0], codes[1], codes[0]).astype(np.int8)
        strength = np.maximum(strengths[0], strengths[1])

        cand, run, down = self._cand[idx], self._run[idx], self._down[idx]
        peak, last_seen = self._peak[idx], self._last_seen[idx]
        # run of identical valid windows
        run = np.where((code != 0) & (code == cand), run + 1, np.where(code != 0, 1, 0)).astype(np.int16)
        window_end = (sub_index + 1) * SUB  # global sample index just after this window
        held = down != 0
        holding = held & (code == down) & (strength >= HOLD_FRACTION * peak)
        peak = np.where(holding, np.maximum(peak, strength), peak)
        last_seen = np.where(holding, window_end, last_seen)
        misses = np.where(held & ~holding, self._misses[idx] + 1, 0).astype(np.int8)
        # a different valid signal replacing the held one ends it at once (compelled cycles never do this,
        # but a far end that switches tones without a gap must not be missed)
        switched = held & (code != 0) & (code != down) & (run >= RUN)
        released = held & ((misses >= RELEASE) | switched)
        new = (run >= RUN) & ((down == 0) | switched) & (code != 0) & (code != down)
        events: list[Event] = []
        if released.any() or new.any():
            for k in np.flatnonzero(released).tolist():
                ch = int(idx[k])
                end = int(last_seen[k]) - WIN_LEN // 2  # the last window it held was about half covered
                events.append(Event(ch, "r2mf", "off", max(end - int(self._origin[ch]), 0)))
            onset = window_end - (RUN - 1) * SUB - WIN_LEN
            for k in np.flatnonzero(new).tolist():
                ch, sig = int(idx[k]), int(code[k])
                value = f"F{sig}" if sig > 0 else f"B{-sig}"
                events.append(Event(ch, "r2mf", value, max(onset - int(self._origin[ch]), 0)))
            down = np.where(released, 0, down)
            misses[released] = 0
            down = np.where(new, code, down)
            last_seen = np.where(new, window_end, last_seen)
            peak = np.where(new, strength, peak)
        self._cand[idx] = code
        self._run[idx] = run
        self._down[idx] = down
        self._peak[idx] = peak
        self._last_seen[idx] = last_seen
        self._misses[idx] = misses
        return events
