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
sum of three sub-block DFTs. Every channel gets a cheap gate each sub-block (necessary conditions of a
valid window: both bins near the floor, enough of the energy in them); only the channels that pass it
or hold a key (a few percent in speech) get the full tests and the key state machine, gathered by index.

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

from dsp.blocks import SubBlocks, check_block
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
CHUNK = 2048  # channels per cache-sized slice of the front end
MAX_RUN = 32 * SUB  # samples per internal pass (a long input is cut, the grid is unchanged)

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
        self._blocks = SubBlocks(c, SUB, MAX_RUN)  # partial sub-block carried between calls
        self._subblocks = 0  # sub-blocks processed so far (global grid)
        self._origin = np.zeros(c, dtype=np.int64)  # global sample index where each channel (re)started
        # DFTs of the last three sub-blocks (oldest first; (16, channels): real parts of the 8 bins, then
        # imaginary parts) and energies of the last two ((channels,)): views into earlier spectra, no copies.
        self._hx = [np.zeros((16, c), dtype=np.float32) for _ in range(3)]
        self._y_last = np.zeros((16, c), dtype=np.float32)  # sum of _hx: the last window's DFT
        self._he = [np.zeros(c, dtype=np.float32) for _ in range(2)]
        self._run_key = np.full((RUN, c), -1, dtype=np.int8)  # ring of the last RUN windows' keys
        self._run_low = np.zeros((RUN, c), dtype=np.float32)
        self._run_high = np.zeros((RUN, c), dtype=np.float32)
        self._down = np.full(c, -1, dtype=np.int8)  # key currently held, -1 none
        self._misses = np.zeros(c, dtype=np.int8)
        # scratch buffers reused every sub-block (fresh large arrays cost page faults)
        self._sq = np.empty((16, c), dtype=np.float32)
        self._rm = np.empty(c, dtype=np.float32)
        self._cm = np.empty(c, dtype=np.float32)
        self._tmp = np.empty(c, dtype=np.float32)
        self._gate = np.empty(c, dtype=bool)
        self._gate2 = np.empty(c, dtype=bool)
        self._gate3 = np.empty(c, dtype=bool)
        # spectra buffers, reused round-robin for the usual block size (history views reach 3 sub-blocks back)
        self._pool: list[tuple[np.ndarray, np.ndarray]] = []
        self._pool_nsub = 0
        self._pool_next = 0

    # ------------------------------------------------------------------ public
    def reset(self, channel: int) -> None:
        """Forget channel `channel` (call end); its sample count restarts at the next sample."""
        if not isinstance(channel, int | np.integer) or not 0 <= channel < self.channels:
            raise ValueError(f"channel must be in 0..{self.channels - 1}, got {channel!r}")
        ch = int(channel)
        self._blocks.clear(ch)
        self._origin[ch] = self._subblocks * SUB + self._blocks.fill
        for h in self._hx:
            h[:, ch] = 0
        self._y_last[:, ch] = 0
        for h in self._he:
            h[ch] = 0
        self._run_key[:, ch] = -1
        self._down[ch] = -1
        self._misses[ch] = 0

    def process(self, block: npt.ArrayLike) -> list[Event]:
        """Feed (channels, n) int16 samples, n >= 1; returns the key presses that began and were confirmed."""
        return self._blocks.feed(self._check(block), self._run)

    # ----------------------------------------------------------------- private
    def _check(self, block: npt.ArrayLike) -> np.ndarray:
        return check_block(block, self.channels)

    def _run(self, x: np.ndarray) -> list[Event]:
        c, n = x.shape
        nsub = n // SUB
        mats = [_matrix(self._subblocks + k) for k in range(nsub)]
        spec, energy = self._buffers(nsub)
        # int16 -> float32, DFT by BLAS and energy, one cache-sized slice of channels at a time
        for i in range(0, c, CHUNK):
            xf = x[i : i + CHUNK].astype(np.float32)
            for k in range(nsub):
                seg = xf[:, k * SUB : (k + 1) * SUB]
                np.matmul(mats[k], seg.T, out=spec[k, :, i : i + CHUNK])
            flat = xf.reshape(-1, SUB)  # contiguous rows: einsum is 4x faster than on strided columns
            energy[:, i : i + CHUNK] = np.einsum("ij,ij->i", flat, flat).reshape(-1, nsub).T
        return self._block(spec, energy)

    def _buffers(self, nsub: int) -> tuple[np.ndarray, np.ndarray]:
        if nsub > 4:  # an unusually long block: plain fresh arrays
            return (
                np.empty((nsub, 16, self.channels), dtype=np.float32),
                np.empty((nsub, self.channels), dtype=np.float32),
            )
        if nsub != self._pool_nsub:
            self._pool = [
                (np.empty((nsub, 16, self.channels), np.float32), np.empty((nsub, self.channels), np.float32))
                for _ in range(4)
            ]
            self._pool_nsub = nsub
            self._pool_next = 0
        # History keeps views of the last 3 sub-blocks; 4 buffers in rotation never overwrite one in use.
        # If the previous call used another size, its buffers stay alive through the views themselves.
        buf = self._pool[self._pool_next]
        self._pool_next = (self._pool_next + 1) % 4
        return buf

    def _block(self, spec: np.ndarray, energy: np.ndarray) -> list[Event]:
        """All sub-blocks of one call: cheap gate on every channel, full tests on the few that pass."""
        nsub = spec.shape[0]
        h3, h2, h1 = self._hx
        e2, e1 = self._he
        hist = [h3, h2, h1] + [spec[k] for k in range(nsub)]
        ehist = [e2, e1] + [energy[k] for k in range(nsub)]
        sq, tmp, rm, cm, g2 = self._sq, self._tmp, self._rm, self._cm, self._gate2
        gate = np.greater_equal(self._down, 0, out=self._gate)  # held keys are always examined
        ys, ews = [], []
        for k in range(nsub):
            y = hist[k + 1] + hist[k + 2]
            y += hist[k + 3]  # DFT over the 120 samples ending with sub-block k (planar, absolute phase)
            ew = ehist[k] + ehist[k + 1]
            ew += ehist[k + 2]
            np.multiply(y, y, out=sq)
            p = sq[:8] + sq[8:]
            np.maximum(p[0], p[1], out=rm)
            np.maximum(p[2], p[3], out=tmp)
            np.maximum(rm, tmp, out=rm)
            np.maximum(p[4], p[5], out=cm)
            np.maximum(p[6], p[7], out=tmp)
            np.maximum(cm, tmp, out=cm)
            # necessary conditions of a valid window: both tones near the floor, enough of the energy
            np.add(rm, cm, out=tmp)
            np.minimum(rm, cm, out=rm)
            np.greater_equal(rm, _GATE_POWER, out=g2)
            np.multiply(ew, _GATE_PURITY, out=cm)
            np.greater_equal(tmp, cm, out=self._gate3)
            g2 &= self._gate3
            gate |= g2
            ys.append(y)
            ews.append(ew)
        sub0 = self._subblocks
        self._subblocks += nsub
        y_last = self._y_last  # window ending one sub-block before this call
        self._y_last = ys[-1]
        self._hx = hist[-3:]  # history moves on: references, not copies
        self._he = ehist[-2:]
        idx = np.flatnonzero(gate)
        if idx.size == 0:
            for k in range(nsub):
                self._run_key[(sub0 + k) % RUN] = -1
            return []
        m = idx.size
        y_sub = np.empty((nsub, 16, m), dtype=np.float32)
        prev = np.empty((nsub, 16, m), dtype=np.float32)
        np.take(y_last, idx, axis=1, out=prev[0])
        for k in range(nsub):
            np.take(ys[k], idx, axis=1, out=y_sub[k])
        prev[1:] = y_sub[:-1]
        sq_sub = y_sub * y_sub
        p_sub = sq_sub[:, :8] + sq_sub[:, 8:]
        ew_sub = np.stack([np.take(ew, idx) for ew in ews])
        return self._decide(idx, y_sub, prev, p_sub, ew_sub, sub0)

    def _decide(
        self,
        idx: np.ndarray,
        y: np.ndarray,
        prev: np.ndarray,
        p: np.ndarray,
        ew: np.ndarray,
        sub0: int,
    ) -> list[Event]:
        """Full tests and key state, sub-block after sub-block, for the channels `idx` that passed the gate
        in this call or hold a key. y, prev: (nsub, 16, m) window DFTs now and one sub-block earlier;
        p: (nsub, 8, m) bin powers; ew: (nsub, m) window energies."""
        r = np.argmax(p[:, :4], axis=1)  # (nsub, m)
        col = np.argmax(p[:, 4:], axis=1) + 4

        def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.take_along_axis(a, b[:, None, :], axis=1)[:, 0, :]

        def phase_advance(b: np.ndarray) -> np.ndarray:
            a_re, a_im = pick(y, b), pick(y, b + 8)
            b_re, b_im = pick(prev, b), pick(prev, b + 8)
            # angle of y * conj(prev): the tone's offset from nominal, in radians per sub-block
            return np.abs(np.arctan2(a_im * b_re - a_re * b_im, a_re * b_re + a_im * b_im))

        phr = phase_advance(r)
        phc = phase_advance(col)
        # undo the window's attenuation of an off-centre tone: sinc(offset * pi * L / fs), bounded
        ar = np.float32(WIN / 2.0) * phr
        ac = np.float32(WIN / 2.0) * phc
        gr = np.sin(ar) / np.maximum(ar, 1e-6)
        gc = np.sin(ac) / np.maximum(ac, 1e-6)
        floor = 1.0 / MAX_GAIN_CORRECTION
        pr_all = pick(p, r) / np.maximum(gr * gr, floor)
        pc_all = pick(p, col) / np.maximum(gc * gc, floor)
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
        events: list[Event] = []
        for k in range(y.shape[0]):
            events += self._advance(
                idx, key_all[k], valid_all[k], pr_all[k], pc_all[k], purity_all[k], (sub0 + k) % RUN, sub0 + k
            )
        return events

    def _advance(
        self,
        idx: np.ndarray,
        key: np.ndarray,
        valid: np.ndarray,
        pr: np.ndarray,
        pc: np.ndarray,
        purity: np.ndarray,
        slot: int,
        sub_index: int,
    ) -> list[Event]:
        """One sub-block of key state for channels idx, given their window's tests."""
        self._run_key[slot] = -1
        self._run_key[slot, idx] = np.where(valid, key, -1)
        self._run_low[slot, idx] = pr
        self._run_high[slot, idx] = pc

        # key held: keep it while windows show it (lenient), release after RELEASE misses
        down = self._down[idx]
        held = down >= 0
        holding = (
            (key == down)
            & (purity >= HOLD_PURITY)
            & (pr >= _MIN_POWER * HOLD_LEVEL_FACTOR)
            & (pc >= _MIN_POWER * HOLD_LEVEL_FACTOR)
        )
        misses = np.where(held & ~holding, self._misses[idx] + 1, 0).astype(np.int8)
        released = held & (misses >= RELEASE)
        down[released] = -1
        misses[released] = 0
        self._misses[idx] = misses
        self._down[idx] = down

        # new key press: RUN valid windows, same key, steady power
        newest = np.where(valid, key, -1)
        cand = np.flatnonzero((down < 0) & (newest >= 0))
        if cand.size == 0:
            return []
        ch = idx[cand]
        keys = self._run_key[:, ch]
        same = np.all(keys == newest[cand], axis=0)
        lo = self._run_low[:, ch]
        hi = self._run_high[:, ch]
        steady = (lo.min(axis=0) >= RUN_SPREAD * lo.max(axis=0)) & (
            hi.min(axis=0) >= RUN_SPREAD * hi.max(axis=0)
        )
        ok = same & steady
        if not ok.any():
            return []
        ch = ch[ok]
        lo = lo[:, ok]
        hi = hi[:, ok]
        k = newest[cand[ok]]
        first = (slot + 1) % RUN  # oldest window of the run
        cover = np.sqrt(np.minimum(1.0, 0.5 * (lo[first] / lo.max(axis=0) + hi[first] / hi.max(axis=0))))
        window_start = (sub_index - (RUN - 1) - (WIN - 1)) * SUB
        onset = window_start + np.round((1.0 - cover) * WIN_LEN).astype(np.int64)
        self._down[ch] = k
        self._misses[ch] = 0
        onset = np.maximum(onset - self._origin[ch], 0)
        return [
            Event(channel=c, kind="dtmf", value=DTMF_KEYS[kk], sample=at)
            for c, kk, at in zip(ch.tolist(), k.tolist(), onset.tolist(), strict=True)
        ]
