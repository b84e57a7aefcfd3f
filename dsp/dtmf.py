"""DTMF receiver (ITU-T Q.23/Q.24), vectorised across all channels.

Test procedure: the Mitel CM7291-style suite as spandsp's `dtmf_rx_tests.c` builds it, plus the stricter
Q.24 points (tests/dsp/test_dtmf*.py; `python -m tools.bench.dsp_dtmf` prints the figures).

How it works
------------
The signal of every channel is cut into sub-blocks of S = 40 samples (5 ms) on one grid shared by all
channels. One matrix product turns each sub-block into its complex DFT at the eight DTMF frequencies
(16 real multiply-adds per sample, done by BLAS for all channels at once). Three consecutive sub-blocks,
summed (their phase is referenced to the stream start), give the DFT over a 120-sample (15 ms) window
every 5 ms; 120 samples puts
the leakage of a row tone into the column bins (and back) near a null of the rectangular window.

A window is *valid* for key (row r, column c) when, for the strongest row and column bins:
- each tone is above the sensitivity floor (-42 dBm0),
- the twist is inside limits (either tone at most 9 dB above the other: the Mitel procedure as spandsp
  codes it and as Mitel describes it name opposite directions "normal", so both get the 8 dB),
- the two tones carry at least 80 % of the window's energy (purity: rejects speech, music and noise),
- each tone's frequency, measured from the phase advance of its bin between consecutive windows (5 ms
  apart), is within +-2.2 % of nominal (Q.24: accept +-1.5 %, reject +-3.5 %; 2.2 % rather than the
  midpoint because equal-tempered notes sit 2.5 % from 852 Hz, see the talk-off corpus). The measured
  offset also undoes (by at most 3 dB) the window's attenuation of off-centre tones before the level,
  twist and purity tests.

Speed: the sub-block DFT is phase-referenced to the start of the stream, so a window's DFT is the plain
sum of three sub-block DFTs. Sub-block DFTs and energies live in a ring (8 sub-blocks, all channels), so
nothing is allocated per call but a few small arrays. The front end (int16 -> float32, one BLAS product per
sub-block, energies, window sums) runs on cache-sized slices of channels, and with it a cheap gate on every
channel (necessary conditions of a valid window: both strongest bins near the floor, enough of the energy
in them). Only the channels that pass it or hold a key (a few percent in speech) get the full tests and the
key state machine: their windows are rebuilt from the ring, gathered by index, and their state is gathered
once per call, stepped through the call's sub-blocks and written back once. When most channels need the
full tests (every channel in a key), they run on all rows without gathering.

A key is reported when K = 5 consecutive windows are valid for it with tone powers within 3 dB of each
other: windows only partly covered by the tone at its edges fall outside that, so the test counts the
tone's true duration on the 5 ms grid whatever its alignment (a 40 ms digit gives at least six such
windows, a 23 ms burst at most four). The key stays down while windows keep showing it (lenient tests)
and is released after G = 3 windows without it, which bridges interruptions of up to ~20 ms.
The event's `sample` is the onset, estimated from the first window of the run and its coverage.

Input must be int16, so a NaN cannot occur; clipping only affects its own channel's row.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from dsp.blocks import SubBlocks, check_block, check_channel
from dsp.events import Event
from dsp.levels import SAMPLE_RATE, dbm0_to_amplitude
from dsp.tones import DTMF_COLS, DTMF_KEYS, DTMF_ROWS

__all__ = ["DtmfDetector"]

SUB = 40  # samples per sub-block (5 ms): the time grid of decisions
WIN = 3  # sub-blocks per analysis window (120 samples, 15 ms)
WIN_LEN = SUB * WIN
RUN = 5  # consecutive valid windows that make a key press
RELEASE = 3  # consecutive windows without the key that end it
MIN_LEVEL_DBM0 = -42.0  # per tone
NORMAL_TWIST_DB = 9.0  # high tone louder than low
REVERSE_TWIST_DB = 9.0  # low tone louder than high
FREQ_TOLERANCE = 0.022  # fraction of nominal
PURITY = 0.8  # fraction of the window's energy in the two tones
RUN_SPREAD = 0.5  # tone powers across the run within 3 dB
HOLD_PURITY = 0.4  # lenient tests while the key is down
HOLD_LEVEL_FACTOR = 0.1
MAX_GAIN_CORRECTION = 2.0  # off-centre tones are boosted by at most this (covers +-1.5 % at 1633 Hz)
CHUNK = 8192  # channels per cache-sized slice of the front end
MAX_SUB = 4  # sub-blocks per internal pass (a long input is cut, the grid is unchanged)
RING = 8  # sub-block spectra kept per channel: the last pass (<= MAX_SUB) and the 3 before it
FULL = 0.5  # above this fraction of channels, the full tests run on all rows (no gather)

_FREQS = np.array(DTMF_ROWS + DTMF_COLS, dtype=np.float64)
_OMEGA = 2.0 * math.pi * _FREQS / SAMPLE_RATE


_N = np.arange(SUB, dtype=np.float64)


def _matrix(subblock: int) -> np.ndarray:
    """(16, SUB) float32: rows 0-7 cos, rows 8-15 -sin of the 8 frequencies over sub-block `subblock`.

    Phase is referenced to sample 0 of the global grid, so a window's DFT is the plain sum of its
    sub-blocks' DFTs and a steady tone at the nominal frequency has the same phase in every window.
    """
    start = (_OMEGA * (subblock * SUB)) % (2.0 * math.pi)  # float64: exact enough for any stream length
    arg = start[:, None] + _OMEGA[:, None] * _N[None, :]
    return np.concatenate([np.cos(arg), -np.sin(arg)]).astype(np.float32)


# Largest phase advance (radians per sub-block) a tone within tolerance can show.
_MAX_PHASE = (2.0 * math.pi * FREQ_TOLERANCE * _FREQS * SUB / SAMPLE_RATE).astype(np.float32)
_MIN_POWER = float((dbm0_to_amplitude(MIN_LEVEL_DBM0) * WIN_LEN / 2.0) ** 2)  # |Y|^2 of a floor tone
# Cheap necessary conditions, on all channels, before the full tests run on the few that pass them.
_GATE_POWER = np.float32(_MIN_POWER / MAX_GAIN_CORRECTION)
_GATE_PURITY = np.float32(PURITY * WIN_LEN / (2.0 * MAX_GAIN_CORRECTION))
_NORMAL_TWIST = 10.0 ** (NORMAL_TWIST_DB / 10.0)
_REVERSE_TWIST = 10.0 ** (REVERSE_TWIST_DB / 10.0)


class DtmfDetector:
    """DTMF receiver for `channels` channels; see the module docstring."""

    def __init__(self, channels: int) -> None:
        if not isinstance(channels, int | np.integer) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.channels = int(channels)
        c = self.channels
        self._blocks = SubBlocks(c, SUB, MAX_SUB * SUB)  # partial sub-block carried between calls
        self._subblocks = 0  # sub-blocks processed so far (global grid)
        self._origin = np.zeros(c, dtype=np.int64)  # global sample index where each channel (re)started
        # ring of sub-block DFTs (slot = sub-block index % RING; 16 rows: real parts of the 8 bins, then
        # imaginary parts) and of sub-block energies, for all channels
        self._spec = np.zeros((RING, 16, c), dtype=np.float32)
        self._energy = np.zeros((RING, c), dtype=np.float32)
        self._run_key = np.full((RUN, c), -1, dtype=np.int8)  # ring of the last RUN windows' keys
        self._run_low = np.zeros((RUN, c), dtype=np.float32)
        self._run_high = np.zeros((RUN, c), dtype=np.float32)
        self._down = np.full(c, -1, dtype=np.int8)  # key currently held, -1 none
        self._misses = np.zeros(c, dtype=np.int8)
        # scratch reused every pass (fresh arrays cost page faults and allocator time)
        w = min(c, CHUNK)
        self._y = np.empty((16, w), dtype=np.float32)
        self._sq = np.empty((16, w), dtype=np.float32)
        self._p = np.empty((8, w), dtype=np.float32)
        self._mx = np.empty((2, w), dtype=np.float32)
        self._ew = np.empty(w, dtype=np.float32)
        self._t1 = np.empty(w, dtype=np.float32)
        self._t2 = np.empty(w, dtype=np.float32)
        self._g1 = np.empty(w, dtype=bool)
        self._g2 = np.empty(w, dtype=bool)
        self._gate = np.empty(c, dtype=bool)
        self._all = np.arange(c)
        self._xf = np.empty(0, dtype=np.float32)  # one slice of the input as float32 (sized on use)

    # ------------------------------------------------------------------ public
    def reset(self, channel: int) -> None:
        """Forget channel `channel` (call end); its sample count restarts at the next sample."""
        ch = check_channel(channel, self.channels)
        self._blocks.clear(ch)
        self._origin[ch] = self._subblocks * SUB + self._blocks.fill
        self._spec[:, :, ch] = 0
        self._energy[:, ch] = 0
        self._run_key[:, ch] = -1
        self._down[ch] = -1
        self._misses[ch] = 0

    def process(self, block: npt.ArrayLike) -> list[Event]:
        """Feed (channels, n) int16 samples, n >= 1; returns the key presses that began and were confirmed."""
        return self._blocks.feed(check_block(block, self.channels), self._run)

    # ----------------------------------------------------------------- private
    def _run(self, x: np.ndarray) -> list[Event]:
        """Whole sub-blocks (at most MAX_SUB) of all channels: front end and gate on every channel, in
        cache-sized slices; then the full tests and key state on the channels that passed or hold a key."""
        c, n = x.shape
        nsub = n // SUB
        sub0 = self._subblocks
        slots = [(sub0 + k) % RING for k in range(-3, nsub)]  # slots[j]: sub-block sub0 - 3 + j
        mats = [_matrix(sub0 + k) for k in range(nsub)]
        spec, energy = self._spec, self._energy
        gate = np.greater_equal(self._down, 0, out=self._gate)  # held keys are always examined
        if self._xf.size < min(c, CHUNK) * n:
            self._xf = np.empty(min(c, CHUNK) * n, dtype=np.float32)
        for i in range(0, c, CHUNK):
            j = min(c, i + CHUNK)
            w = j - i
            xf = self._xf[: w * n].reshape(w, n)
            xf[...] = x[i:j]
            en = np.einsum("ij,ij->i", flat := xf.reshape(-1, SUB), flat).reshape(w, nsub)
            for k in range(nsub):
                np.matmul(mats[k], xf[:, k * SUB : (k + 1) * SUB].T, out=spec[slots[k + 3], :, i:j])
                energy[slots[k + 3], i:j] = en[:, k]
            y, sq, p, mx = self._y[:, :w], self._sq[:, :w], self._p[:, :w], self._mx[:, :w]
            ew, t1, t2, g1, g2 = self._ew[:w], self._t1[:w], self._t2[:w], self._g1[:w], self._g2[:w]
            for k in range(nsub):
                a, b, d = slots[k + 1], slots[k + 2], slots[k + 3]
                # DFT over the 120 samples ending with sub-block k (absolute phase): sum of three
                np.add(spec[a, :, i:j], spec[b, :, i:j], out=y)
                y += spec[d, :, i:j]
                np.add(energy[a, i:j], energy[b, i:j], out=ew)
                ew += energy[d, i:j]
                np.multiply(y, y, out=sq)
                np.add(sq[:8], sq[8:], out=p)
                np.max(p.reshape(2, 4, w), axis=1, out=mx)  # strongest row bin, strongest column bin
                # necessary conditions of a valid window: both tones near the floor, enough of the energy
                np.add(mx[0], mx[1], out=t1)
                np.minimum(mx[0], mx[1], out=t2)
                np.greater_equal(t2, _GATE_POWER, out=g1)
                np.multiply(ew, _GATE_PURITY, out=t2)
                np.greater_equal(t1, t2, out=g2)
                g1 &= g2
                gate[i:j] |= g1
        self._subblocks += nsub
        idx = np.flatnonzero(gate)
        if idx.size == 0:
            for k in range(min(nsub, RUN)):
                self._run_key[(sub0 + k) % RUN] = -1
            return []
        return self._decide(idx, slots, nsub, sub0)

    def _decide(self, idx: np.ndarray, slots: list[int], nsub: int, sub0: int) -> list[Event]:
        """Full tests and key state, sub-block after sub-block, for the channels `idx` that passed the gate
        in this pass or hold a key (all channels, without gathering, when most of them do)."""
        m = idx.size
        full = m > FULL * self.channels
        sel: slice | np.ndarray = slice(None) if full else idx
        if full:
            idx = self._all
            m = idx.size
        spec, energy = self._spec, self._energy
        h = [spec[s] if full else np.take(spec[s], idx, axis=1) for s in slots]
        e = [energy[s] if full else np.take(energy[s], idx) for s in slots]
        # windows ending one sub-block before this pass (prev of the first) through the last
        win = np.empty((nsub + 1, 16, m), dtype=np.float32)
        ew = np.empty((nsub, m), dtype=np.float32)
        for k in range(nsub + 1):
            np.add(h[k], h[k + 1], out=win[k])
            win[k] += h[k + 2]
        for k in range(nsub):
            np.add(e[k + 1], e[k + 2], out=ew[k])
            ew[k] += e[k + 3]
        y = win[1:]
        sq = y * y
        p = sq[:, :8] + sq[:, 8:]  # (nsub, 8, m) bin powers
        r = np.argmax(p[:, :4], axis=1)  # (nsub, m)
        col = np.argmax(p[:, 4:], axis=1) + 4
        flat = win.reshape(-1)
        base = (np.arange(nsub)[:, None] * (16 * m)) + np.arange(m)[None, :]  # win[k, 0, j] of prev

        def phase_and_power(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            at = base + b * m
            b_re, b_im = flat[at], flat[at + 8 * m]  # previous window
            a_re, a_im = flat[at + 16 * m], flat[at + 24 * m]  # this window
            # angle of y * conj(prev): the tone's offset from nominal, in radians per sub-block
            ph = np.abs(np.arctan2(a_im * b_re - a_re * b_im, a_re * b_re + a_im * b_im))
            return ph, a_re * a_re + a_im * a_im

        phr, pr_raw = phase_and_power(r)
        phc, pc_raw = phase_and_power(col)
        # undo the window's attenuation of an off-centre tone: sinc(offset * pi * L / fs), bounded
        ar = np.float32(WIN / 2.0) * phr
        ac = np.float32(WIN / 2.0) * phc
        gr = np.sin(ar) / np.maximum(ar, 1e-6)
        gc = np.sin(ac) / np.maximum(ac, 1e-6)
        floor = 1.0 / MAX_GAIN_CORRECTION
        pr_all = pr_raw / np.maximum(gr * gr, floor)
        pc_all = pc_raw / np.maximum(gc * gc, floor)
        purity_all = (2.0 / WIN_LEN) * (pr_all + pc_all) / np.maximum(ew, 1.0)
        key_all = (r * 4 + (col - 4)).astype(np.int8)
        valid_all = (
            (pr_all >= _MIN_POWER)
            & (pc_all >= _MIN_POWER)
            & (pc_all <= pr_all * _NORMAL_TWIST)
            & (pr_all <= pc_all * _REVERSE_TWIST)
            & (purity_all >= PURITY)
            & (phr <= _MAX_PHASE[r])
            & (phc <= _MAX_PHASE[col])
        )
        # key state of these channels, gathered once, stepped through the sub-blocks, written back once
        down = self._down[sel].copy()
        misses = self._misses[sel].copy()
        run_key = self._run_key[:, sel].copy()
        run_low = self._run_low[:, sel].copy()
        run_high = self._run_high[:, sel].copy()
        events: list[Event] = []
        for k in range(nsub):
            slot = (sub0 + k) % RUN
            key, valid, pr, pc = key_all[k], valid_all[k], pr_all[k], pc_all[k]
            newest = np.where(valid, key, -1).astype(np.int8)
            run_key[slot] = newest
            run_low[slot] = pr
            run_high[slot] = pc
            # key held: keep it while windows show it (lenient), release after RELEASE misses
            held = down >= 0
            holding = (
                (key == down)
                & (purity_all[k] >= HOLD_PURITY)
                & (pr >= _MIN_POWER * HOLD_LEVEL_FACTOR)
                & (pc >= _MIN_POWER * HOLD_LEVEL_FACTOR)
            )
            misses = np.where(held & ~holding, misses + 1, 0).astype(np.int8)
            released = held & (misses >= RELEASE)
            down[released] = -1
            misses[released] = 0
            # new key press: RUN valid windows, same key, steady power
            cand = np.flatnonzero((down < 0) & (newest >= 0))
            if cand.size:
                events += self._press(
                    cand, idx, newest, run_key, run_low, run_high, down, misses, slot, sub0 + k
                )
        for k in range(min(nsub, RUN)):
            self._run_key[(sub0 + k) % RUN] = -1  # channels not examined: no valid window
        self._run_key[:, sel] = run_key
        self._run_low[:, sel] = run_low
        self._run_high[:, sel] = run_high
        self._down[sel] = down
        self._misses[sel] = misses
        return events

    def _press(
        self,
        cand: np.ndarray,
        idx: np.ndarray,
        newest: np.ndarray,
        run_key: np.ndarray,
        run_low: np.ndarray,
        run_high: np.ndarray,
        down: np.ndarray,
        misses: np.ndarray,
        slot: int,
        sub_index: int,
    ) -> list[Event]:
        """Key presses confirmed at sub-block `sub_index` among candidates `cand` (positions in idx)."""
        same = np.all(run_key[:, cand] == newest[cand], axis=0)
        lo = run_low[:, cand]
        hi = run_high[:, cand]
        steady = (lo.min(axis=0) >= RUN_SPREAD * lo.max(axis=0)) & (
            hi.min(axis=0) >= RUN_SPREAD * hi.max(axis=0)
        )
        ok = same & steady
        if not ok.any():
            return []
        pos = cand[ok]
        lo = lo[:, ok]
        hi = hi[:, ok]
        k = newest[pos]
        first = (slot + 1) % RUN  # oldest window of the run
        cover = np.sqrt(np.minimum(1.0, 0.5 * (lo[first] / lo.max(axis=0) + hi[first] / hi.max(axis=0))))
        window_start = (sub_index - (RUN - 1) - (WIN - 1)) * SUB
        onset = window_start + np.round((1.0 - cover) * WIN_LEN).astype(np.int64)
        down[pos] = k
        misses[pos] = 0
        ch = idx[pos]
        onset = np.maximum(onset - self._origin[ch], 0)
        return [
            Event(channel=c, kind="dtmf", value=DTMF_KEYS[kk], sample=at)
            for c, kk, at in zip(ch.tolist(), k.tolist(), onset.tolist(), strict=True)
        ]
