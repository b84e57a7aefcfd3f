"""DTMF receiver (ITU-T Q.23/Q.24), vectorised across all channels.

Test procedure: the Mitel CM7291-style suite as spandsp's `dtmf_rx_tests.c` builds it, plus the stricter
Q.24 points (tests/dsp/test_dtmf*.py; `python -m tests.dsp.dtmf_suite` prints the figures).

How it works
------------
The signal of every channel is cut into sub-blocks of S = 40 samples (5 ms) on one grid shared by all
channels. One matrix product turns each sub-block into its complex DFT at the eight DTMF frequencies
(16 real multiply-adds per sample, done by BLAS for all channels at once). Three consecutive sub-blocks,
phase-rotated and summed, give the DFT over a 120-sample (15 ms) window every 5 ms; 120 samples puts
the leakage of a row tone into the column bins (and back) near a null of the rectangular window.

A window is *valid* for key (row r, column c) when, for the strongest row and column bins:
- each tone is above the sensitivity floor (-42 dBm0),
- the twist is inside limits (either tone at most 9 dB above the other: the Mitel procedure as spandsp
  codes it and as Mitel describes it name opposite directions "normal", so both get the 8 dB),
- the two tones carry most of the window's energy (purity: rejects speech, music and noise),
- each tone's frequency, measured from the phase advance of its bin between consecutive windows (5 ms
  apart), is within +-2.5 % of nominal (Q.24: accept +-1.5 %, reject +-3.5 %). The measured offset also
  undoes the window's attenuation of off-centre tones before the level, twist and purity tests.

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
FREQ_TOLERANCE = 0.025  # fraction of nominal
PURITY = 0.75  # fraction of the window's energy in the two tones
RUN_SPREAD = 0.5  # tone powers across the run within 3 dB
HOLD_PURITY = 0.4  # lenient tests while the key is down
HOLD_LEVEL_FACTOR = 0.1

_FREQS = np.array(DTMF_ROWS + DTMF_COLS, dtype=np.float64)
_OMEGA = 2.0 * math.pi * _FREQS / SAMPLE_RATE


def _build_matrix() -> np.ndarray:
    n = np.arange(SUB, dtype=np.float64)[:, None]
    m = np.empty((SUB, 16), dtype=np.float32)
    m[:, 0::2] = np.cos(_OMEGA[None, :] * n)
    m[:, 1::2] = -np.sin(_OMEGA[None, :] * n)
    return m  # (x @ m).view(complex64) -> DFT at the 8 frequencies, phase referenced to sub-block start


_MATRIX = _build_matrix()
_ROT1 = np.exp(-1j * _OMEGA * SUB).astype(np.complex64)  # shift by one sub-block
_ROT2 = (_ROT1 * _ROT1).astype(np.complex64)
# Largest phase advance (radians per sub-block) a tone within tolerance can show.
_MAX_PHASE = (2.0 * math.pi * FREQ_TOLERANCE * _FREQS * SUB / SAMPLE_RATE).astype(np.float32)
_MIN_POWER = float((dbm0_to_amplitude(MIN_LEVEL_DBM0) * WIN_LEN / 2.0) ** 2)  # |Y|^2 of a floor tone
_NORMAL_TWIST = 10.0 ** (NORMAL_TWIST_DB / 10.0)
_REVERSE_TWIST = 10.0 ** (REVERSE_TWIST_DB / 10.0)
_KEYS = np.array(list(DTMF_KEYS))


class DtmfDetector:
    """DTMF receiver for `channels` channels; see the module docstring."""

    def __init__(self, channels: int) -> None:
        if not isinstance(channels, int | np.integer) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.channels = int(channels)
        c = self.channels
        self._pending = np.zeros((c, SUB), dtype=np.int16)  # partial sub-block carried between calls
        self._fill = 0  # samples in _pending (same for every channel)
        self._subblocks = 0  # sub-blocks processed so far (global grid)
        self._origin = np.zeros(c, dtype=np.int64)  # global sample index where each channel (re)started
        self._x_hist = np.zeros((WIN - 1, c, 8), dtype=np.complex64)  # previous sub-block DFTs
        self._e_hist = np.zeros((WIN - 1, c), dtype=np.float32)  # previous sub-block energies
        self._y_prev = np.zeros((c, 8), dtype=np.complex64)  # previous window DFT
        self._run_key = np.full((RUN, c), -1, dtype=np.int8)  # ring of the last RUN windows' keys
        self._run_low = np.zeros((RUN, c), dtype=np.float32)
        self._run_high = np.zeros((RUN, c), dtype=np.float32)
        self._down = np.full(c, -1, dtype=np.int8)  # key currently held, -1 none
        self._misses = np.zeros(c, dtype=np.int8)

    # ------------------------------------------------------------------ public
    def reset(self, channel: int) -> None:
        """Forget channel `channel` (call end); its sample count restarts at the next sample."""
        if not isinstance(channel, int | np.integer) or not 0 <= channel < self.channels:
            raise ValueError(f"channel must be in 0..{self.channels - 1}, got {channel!r}")
        ch = int(channel)
        self._pending[ch] = 0
        self._origin[ch] = self._subblocks * SUB + self._fill
        self._x_hist[:, ch] = 0
        self._e_hist[:, ch] = 0
        self._y_prev[ch] = 0
        self._run_key[:, ch] = -1
        self._run_low[:, ch] = 0
        self._run_high[:, ch] = 0
        self._down[ch] = -1
        self._misses[ch] = 0

    def process(self, block: npt.ArrayLike) -> list[Event]:
        """Feed (channels, n) int16 samples, n >= 1; returns the key presses that began and were confirmed."""
        x = self._check(block)
        n = x.shape[1]
        if self._fill:
            take = min(SUB - self._fill, n)
            self._pending[:, self._fill : self._fill + take] = x[:, :take]
            self._fill += take
            x = x[:, take:]
            events = self._run(self._pending) if self._fill == SUB else []
            if self._fill == SUB:
                self._fill = 0
        else:
            events = []
        whole = (x.shape[1] // SUB) * SUB
        if whole:
            events += self._run(x[:, :whole])
        rest = x.shape[1] - whole
        if rest:
            self._pending[:, :rest] = x[:, whole:]
            self._fill = rest
        return events

    # ----------------------------------------------------------------- private
    def _check(self, block: npt.ArrayLike) -> np.ndarray:
        if not isinstance(block, np.ndarray):
            raise ValueError("block must be a numpy int16 array shaped (channels, n)")
        if block.dtype != np.int16:
            raise ValueError(f"block must be int16, got {block.dtype}")
        if block.ndim != 2:
            raise ValueError(f"block must be shaped (channels, n), got shape {block.shape}")
        if block.shape[0] != self.channels:
            raise ValueError(f"block has {block.shape[0]} channels, detector has {self.channels}")
        if block.shape[1] < 1:
            raise ValueError("block must hold at least one sample per channel")
        return block

    def _run(self, x: np.ndarray) -> list[Event]:
        c, n = x.shape
        nsub = n // SUB
        xs = x.reshape(c * nsub, SUB).astype(np.float32)
        spec = (xs @ _MATRIX).view(np.complex64).reshape(c, nsub, 8)
        energy = np.einsum("ij,ij->i", xs, xs).reshape(c, nsub)
        events: list[Event] = []
        for s in range(nsub):
            events += self._step(spec[:, s], energy[:, s])
        return events

    def _step(self, xk: np.ndarray, e: np.ndarray) -> list[Event]:
        h0, h1 = self._x_hist[0], self._x_hist[1]
        y = h0 + h1 * _ROT1 + xk * _ROT2  # DFT over the last 120 samples
        ew = self._e_hist[0] + self._e_hist[1] + e
        self._x_hist[0] = h1
        self._x_hist[1] = xk
        self._e_hist[0] = self._e_hist[1]
        self._e_hist[1] = e
        y_prev = self._y_prev
        self._y_prev = y

        p = y.real * y.real + y.imag * y.imag
        r = np.argmax(p[:, :4], axis=1)
        col = np.argmax(p[:, 4:], axis=1) + 4
        rows = np.arange(p.shape[0])
        # frequency offset from the phase advance of the chosen bins over one sub-block
        zr = y[rows, r] * np.conj(y_prev[rows, r]) * _ROT1[r]
        zc = y[rows, col] * np.conj(y_prev[rows, col]) * _ROT1[col]
        phr = np.abs(np.angle(zr)).astype(np.float32)
        phc = np.abs(np.angle(zc)).astype(np.float32)
        # undo the window's attenuation of an off-centre tone: sinc(offset * pi * L / fs)
        ar = np.float32(WIN / 2.0) * phr
        ac = np.float32(WIN / 2.0) * phc
        gr = np.where(ar > 1e-4, np.sin(ar) / np.maximum(ar, 1e-4), 1.0)
        gc = np.where(ac > 1e-4, np.sin(ac) / np.maximum(ac, 1e-4), 1.0)
        pr = p[rows, r] / np.maximum(gr * gr, 0.05)
        pc = p[rows, col] / np.maximum(gc * gc, 0.05)
        purity = (2.0 / WIN_LEN) * (pr + pc) / np.maximum(ew, 1.0)
        key = (r * 4 + (col - 4)).astype(np.int8)

        valid = (
            (pr >= _MIN_POWER)
            & (pc >= _MIN_POWER)
            & (pc <= pr * _NORMAL_TWIST)
            & (pr <= pc * _REVERSE_TWIST)
            & (purity >= PURITY)
            & (phr <= _MAX_PHASE[r])
            & (phc <= _MAX_PHASE[col])
        )
        slot = self._subblocks % RUN
        self._run_key[slot] = np.where(valid, key, -1)
        self._run_low[slot] = pr
        self._run_high[slot] = pc
        sub_index = self._subblocks
        self._subblocks += 1

        # key held: keep it while windows show it (lenient), release after RELEASE misses
        down = self._down
        held = down >= 0
        holding = (
            (key == down)
            & (purity >= HOLD_PURITY)
            & (pr >= _MIN_POWER * HOLD_LEVEL_FACTOR)
            & (pc >= _MIN_POWER * HOLD_LEVEL_FACTOR)
        )
        self._misses = np.where(held & ~holding, self._misses + 1, 0).astype(np.int8)
        released = held & (self._misses >= RELEASE)
        if released.any():
            down[released] = -1
            self._misses[released] = 0

        # new key press: RUN valid windows, same key, steady power
        newest = self._run_key[slot]
        cand = (down < 0) & (newest >= 0)
        if not cand.any():
            return []
        idx = np.nonzero(cand)[0]
        keys = self._run_key[:, idx]
        same = np.all(keys == newest[idx], axis=0)
        lo = self._run_low[:, idx]
        hi = self._run_high[:, idx]
        steady = (lo.min(axis=0) >= RUN_SPREAD * lo.max(axis=0)) & (
            hi.min(axis=0) >= RUN_SPREAD * hi.max(axis=0)
        )
        ok = same & steady
        if not ok.any():
            return []
        idx = idx[ok]
        first = (slot + 1) % RUN  # oldest window of the run
        cover = np.sqrt(
            np.minimum(
                1.0,
                0.5 * (lo[first, ok] / lo[:, ok].max(axis=0) + hi[first, ok] / hi[:, ok].max(axis=0)),
            )
        )
        window_start = (sub_index - (RUN - 1) - (WIN - 1)) * SUB
        onset = window_start + np.round((1.0 - cover) * WIN_LEN).astype(np.int64)
        down[idx] = newest[idx]
        self._misses[idx] = 0
        onset = np.maximum(onset - self._origin[idx], 0)
        return [
            Event(channel=int(ch), kind="dtmf", value=str(_KEYS[k]), sample=int(at))
            for ch, k, at in zip(idx, newest[idx], onset, strict=True)
        ]
