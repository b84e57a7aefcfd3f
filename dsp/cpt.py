"""Call-progress tone detector (dial, busy, ringback, congestion), vectorised across all channels.

Plan "cn" (the tones as issue 3 states them, YD/T 1278 style): all 450 Hz; dial continuous, busy
0.35 s on / 0.35 s off, ringback 1 s on / 4 s off, congestion 0.7 s on / 0.7 s off.

How it works
------------
Every 10 ms (80 samples, one grid for all channels) one matrix product gives the DFT of each channel at
the plan's frequency, phase-referenced to the start of the stream, and the energy of the 10 ms. Over the
last 20 ms the tone is *present* when
- its level is at least -45 dBm0,
- it holds at least 80 % of the energy (speech and music rarely do for long), and
- its frequency, from the phase advance between the two 10 ms halves, is within +-20 Hz of nominal.
Presence is debounced (a change must last two 10 ms steps) into on/off segments whose start times are
kept per channel. The cadence is recognised from segment lengths, each within +-15 % (the tones may
jitter +-10 %) plus 20 ms of measuring slack:
- busy / congestion: on, off, on of the right lengths (reported when the second on ends),
- ringback: an on of 1 s followed by more than 1.2 s of silence (reported then),
- dial: 1.5 s of continuous tone (longer than any ringback burst can be).
Each is reported once per episode: an episode lasts while the same cadence continues and ends after
silence longer than 1.5x the tone's longest off period, or when another tone is recognised.
The event's `sample` is the start of the first tone burst of the recognised pattern.

Input must be int16 (no NaNs possible); one channel's clipping or noise never touches another's row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.blocks import SubBlocks, check_block, check_channel
from dsp.events import Event
from dsp.levels import SAMPLE_RATE, dbm0_to_amplitude
from dsp.tones import PLANS

__all__ = ["CallProgressDetector", "TONE_NAMES"]

STEP = 80  # samples per decision step (10 ms)
WIN = 2 * STEP  # analysis window (20 ms)
MIN_LEVEL_DBM0 = -45.0
PURITY = 0.8
MAX_OFFSET_HZ = 20.0
TOLERANCE = 0.15  # on/off lengths, fraction
SLACK_S = 0.02  # plus this much for the 10 ms grid and the debounce
DIAL_CONFIRM_S = 1.5
RINGBACK_OFF_CONFIRM_S = 1.2
TONE_NAMES = ("dial", "busy", "ringback", "congestion")
_DIAL, _BUSY, _RINGBACK, _CONGESTION = range(4)


@dataclass(frozen=True)
class _Plan:
    freq: float
    busy: tuple[float, float]
    ringback: tuple[float, float]
    congestion: tuple[float, float]


def _plan(name: str) -> _Plan:
    if name not in PLANS:
        raise ValueError(f"unknown tone plan {name!r} (known: {', '.join(PLANS)})")
    p = PLANS[name]
    freqs = {c.freqs for c in p.values()}
    if len(freqs) != 1 or len(next(iter(freqs))) != 1:
        raise ValueError(f"plan {name!r}: this detector handles plans whose tones share one frequency")
    return _Plan(
        freq=next(iter(freqs))[0],
        busy=(p["busy"].pattern[0], p["busy"].pattern[1]),
        ringback=(p["ringback"].pattern[0], p["ringback"].pattern[1]),
        congestion=(p["congestion"].pattern[0], p["congestion"].pattern[1]),
    )


def _steps(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE / STEP))


def _range(seconds: float) -> tuple[int, int]:
    """Accepted segment length in steps for a nominal duration."""
    lo = seconds * (1.0 - TOLERANCE) - SLACK_S
    hi = seconds * (1.0 + TOLERANCE) + SLACK_S
    return int(math.floor(lo * SAMPLE_RATE / STEP)), int(math.ceil(hi * SAMPLE_RATE / STEP))


class CallProgressDetector:
    """Call-progress tones for `channels` channels under a national `plan`; see the module docstring."""

    def __init__(self, channels: int, plan: str = "cn") -> None:
        if not isinstance(channels, int | np.integer) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.channels = c = int(channels)
        self.plan = plan
        p = _plan(plan)
        omega = 2.0 * math.pi * p.freq / SAMPLE_RATE
        self._omega = omega
        self._n = np.arange(STEP, dtype=np.float64)
        self._busy_on = _range(p.busy[0])
        self._busy_off = _range(p.busy[1])
        self._cong_on = _range(p.congestion[0])
        self._cong_off = _range(p.congestion[1])
        self._ring_on = _range(p.ringback[0])
        self._dial_steps = _steps(DIAL_CONFIRM_S)
        self._ring_off_steps = _steps(RINGBACK_OFF_CONFIRM_S)
        longest_off = {_DIAL: 0.5, _BUSY: p.busy[1], _RINGBACK: p.ringback[1], _CONGESTION: p.congestion[1]}
        self._episode_gap = np.array([_steps(1.5 * longest_off[t]) for t in range(4)], dtype=np.int64)
        amp = dbm0_to_amplitude(MIN_LEVEL_DBM0)
        self._min_power = np.float32((amp * WIN / 2.0) ** 2)
        self._purity = np.float32(PURITY * WIN / 2.0)
        self._cos_max = np.float32(math.cos(2.0 * math.pi * MAX_OFFSET_HZ * STEP / SAMPLE_RATE))

        self._blocks = SubBlocks(c, STEP)  # partial sub-block carried between calls
        self._t = 0  # steps processed (global grid)
        self._origin = np.zeros(c, dtype=np.int64)
        self._prev_x = np.zeros((2, c), dtype=np.float32)  # previous step's DFT (re, im)
        self._prev_e = np.zeros(c, dtype=np.float32)
        self._on = np.zeros(c, dtype=bool)  # debounced state
        self._pend = np.zeros(c, dtype=bool)  # raw presence differed from state last step
        # start step of the current segment and of the previous three (newest first)
        self._seg = np.zeros((4, c), dtype=np.int64)
        self._episode = np.full(c, -1, dtype=np.int8)  # tone of the running episode, -1 none
        self._last_on = np.full(c, -(10**9), dtype=np.int64)  # step the tone was last on

    # ------------------------------------------------------------------ public
    def reset(self, channel: int) -> None:
        """Forget channel `channel` (call end); its sample count restarts at the next sample."""
        ch = check_channel(channel, self.channels)
        self._blocks.clear(ch)
        self._origin[ch] = self._t * STEP + self._blocks.fill
        self._prev_x[:, ch] = 0
        self._prev_e[ch] = 0
        self._on[ch] = False
        self._pend[ch] = False
        self._seg[:, ch] = self._t
        self._episode[ch] = -1
        self._last_on[ch] = -(10**9)

    def process(self, block: npt.ArrayLike) -> list[Event]:
        """Feed (channels, n) int16 samples, n >= 1; returns tones whose cadence was confirmed."""
        return self._blocks.feed(self._check(block), self._run)

    # ----------------------------------------------------------------- private
    def _check(self, block: npt.ArrayLike) -> np.ndarray:
        return check_block(block, self.channels)

    def _matrix(self, steps: int) -> np.ndarray:
        """(2*steps, steps*STEP) float32: cos/-sin rows for each step, absolute phase (block diagonal)."""
        n = steps * STEP
        start = (self._omega * (self._t * STEP)) % (2.0 * math.pi)
        arg = start + self._omega * np.arange(n, dtype=np.float64)
        m = np.zeros((2 * steps, n), dtype=np.float32)
        for k in range(steps):
            sl = slice(k * STEP, (k + 1) * STEP)
            m[2 * k, sl] = np.cos(arg[sl])
            m[2 * k + 1, sl] = -np.sin(arg[sl])
        return m

    def _run(self, x: np.ndarray) -> list[Event]:
        c, n = x.shape
        steps = n // STEP
        events: list[Event] = []
        # long inputs in slices of at most 8 steps (the block-diagonal matrix grows with the square)
        for s0 in range(0, steps, 8):
            k = min(8, steps - s0)
            xs = x[:, s0 * STEP : (s0 + k) * STEP]
            xf = xs.astype(np.float32)
            spec = self._matrix(k) @ xf.T  # (2k, c)
            flat = xf.reshape(-1, STEP)
            energy = np.einsum("ij,ij->i", flat, flat).reshape(c, k).T
            for j in range(k):
                events += self._step(spec[2 * j], spec[2 * j + 1], energy[j])
        return events

    def _step(self, re: np.ndarray, im: np.ndarray, e: np.ndarray) -> list[Event]:
        pre, pim = self._prev_x[0], self._prev_x[1]
        yr = re + pre
        yi = im + pim
        power = yr * yr + yi * yi
        ew = e + self._prev_e
        # frequency: phase advance between the two 10 ms halves (dot >= cos(max) * |a||b|)
        dot = re * pre + im * pim
        mag2 = (re * re + im * im) * (pre * pre + pim * pim)
        present = (power >= self._min_power) & (power >= self._purity * ew) & (dot >= 0)
        present &= dot * dot >= (self._cos_max * self._cos_max) * mag2
        self._prev_x[0] = re
        self._prev_x[1] = im
        self._prev_e = e
        t = self._t
        self._t += 1

        on = self._on
        differs = present != on
        flip = differs & self._pend
        self._pend = differs & ~flip
        events: list[Event] = []
        if flip.any():
            events += self._flip(np.flatnonzero(flip), t)
        on = self._on
        self._last_on[on] = t
        # time-driven confirmations: dial (long on), ringback (on of 1 s, then a long off)
        length = t - self._seg[0]
        due_dial = on & (length == self._dial_steps)
        due_ring = ~on & (length == self._ring_off_steps)
        if due_dial.any():
            idx = np.flatnonzero(due_dial)
            events += self._report(idx, _DIAL, self._seg[0, idx])
        if due_ring.any():
            idx = np.flatnonzero(due_ring)
            on_len = self._seg[0, idx] - self._seg[1, idx]
            ok = (on_len >= self._ring_on[0]) & (on_len <= self._ring_on[1])
            if ok.any():
                events += self._report(idx[ok], _RINGBACK, self._seg[1, idx[ok]])
        # episodes end after a long enough silence
        ep = self._episode
        active = ep >= 0
        if active.any():
            gap = t - self._last_on
            ended = active & (gap > self._episode_gap[np.maximum(ep, 0)])
            ep[ended] = -1
        return events

    def _flip(self, idx: np.ndarray, t: int) -> list[Event]:
        """State change on channels idx (the change began one step ago, at t - 1)."""
        seg = self._seg
        seg[3, idx] = seg[2, idx]
        seg[2, idx] = seg[1, idx]
        seg[1, idx] = seg[0, idx]
        seg[0, idx] = t - 1
        was_on = self._on[idx]
        self._on[idx] = ~was_on
        # an on segment just ended: check on / off / on for busy and congestion
        ended_on = idx[was_on]
        if ended_on.size == 0:
            return []
        s = seg[:, ended_on]
        on2 = s[0] - s[1]  # the on that just ended
        off1 = s[1] - s[2]
        on1 = s[2] - s[3]
        events: list[Event] = []
        for tone, on_r, off_r in (
            (_BUSY, self._busy_on, self._busy_off),
            (_CONGESTION, self._cong_on, self._cong_off),
        ):
            ok = (
                (on1 >= on_r[0])
                & (on1 <= on_r[1])
                & (off1 >= off_r[0])
                & (off1 <= off_r[1])
                & (on2 >= on_r[0])
                & (on2 <= on_r[1])
            )
            if ok.any():
                events += self._report(ended_on[ok], tone, s[3, ok])
        return events

    def _report(self, idx: np.ndarray, tone: int, start_step: np.ndarray) -> list[Event]:
        new = self._episode[idx] != tone
        idx = idx[new]
        if idx.size == 0:
            return []
        self._episode[idx] = tone
        sample = np.maximum(start_step[new] * STEP - self._origin[idx], 0)
        name = TONE_NAMES[tone]
        return [
            Event(channel=ch, kind="tone", value=name, sample=at)
            for ch, at in zip(idx.tolist(), sample.tolist(), strict=True)
        ]
