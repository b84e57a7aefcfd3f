"""G.168 line echo canceller, vectorised over channels.

Standard: ITU-T G.168 (digital network echo cancellers), with the G.165 tone disabler (2100 Hz with phase
reversals bypasses the canceller for fax/modem calls). Test procedure: tests/dsp/test_echo_g168.py, table
printed by ``python -m tools.g168_report``.

Signals, as G.168 names them::

    far  = Rin/Rout: what we sent to the line (the echo's source)
    near = Sin: what came back from the line (near-end talker + echo)
    out  = Sout: near without the echo

Algorithm (one object for all channels; every state array is shaped (channels, ...)):

- Linear echo path model: a partitioned-block frequency-domain adaptive filter (PBFDAF / MDF) with block B
  (default 160 samples = 20 ms), FFT size 2B, P = ceil(tail / B) partitions, per-bin NLMS normalisation by
  the far-end power over the whole tail. Partition 0 is gradient-constrained (made causal) at every block
  and one other partition in rotation (as speexdsp's AUMDF does), so the filter is causal where it matters.
- Zero added latency with any block length n >= 1: samples are cancelled as they arrive. When a call ends
  inside an internal block, the echo estimate of the known samples is computed with the future far-end
  samples set to zero; since partition 0 is causal and partitions >= 1 only see past blocks, this gives
  the same estimate as the whole-block computation (to float rounding). Adaptation, double-talk detection,
  NLP, gating and tone-disabler decisions happen only at block boundaries, on whole blocks, so the state
  after any split of the same signal is identical (to FFT rounding with ducc0).
- Double talk: a Geigel-style detector on the whole block (near power against the loudest far-end block
  power over the tail, threshold 3 dB above the 6 dB ERL G.168 assumes) with a 3-block hangover freezes
  adaptation. Block powers are steadier than the sample peaks a classic Geigel detector compares.
- NLP (G.168 non-linear processor): while the far end is active and there is no double talk, the residual
  is replaced by comfort noise at the level of the near-end background noise, tracked when the far end
  is silent. Decisions are taken per block and apply to the next block (B samples of decision lag).
- Tone disabler: a 2100 Hz tone holding for >= 150 ms with a phase reversal, on either direction,
  bypasses the canceller (output = near, adaptation frozen) until both directions stay below -36 dBm0
  for 250 ms.
- Activity gating: a channel whose far end stayed below -60 dBm0 over the whole tail and the block so
  far has no echo worth cancelling and nothing to learn from: its output is near (NLP and comfort noise
  decisions still run), its filter is kept, and the big passes skip it. The filter state lives in
  physical rows kept sorted so that the channels whose filter runs (the "region") are one contiguous
  slice; a channel that changes activity swaps rows with another (a few per block), so the cost follows
  the talk without gathering or scattering the filters. Far-end histories of idle rows are not kept
  (they were below the gate, so they are zeros).
- FFTs: ducc0 (pocketfft's successor, about 1.8x faster on many short transforms) when installed, else
  scipy.fft; the constructor's ``fft=`` picks one. ducc0 rounds a row slightly differently depending on
  its place in the batch, so with it channels agree with a canceller of their own to 1 LSB; with scipy
  they are bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft

from dsp.blocks import check_block, check_channel

__all__ = ["EchoCanceller"]

_FS = 8000
_DBM0_MS = 22785.0 * 22785.0 / 2.0  # mean square of a 0 dBm0 sine (dsp.levels.DBM0_MEAN_SQUARE)


def _ms_dbm0(dbm0: float) -> float:
    return _DBM0_MS * 10.0 ** (dbm0 / 10.0)


# Tone disabler parameters (G.165 section 4, G.168 section 7): 2100 Hz +-21 Hz, phase reversals.
_TD_FREQ = 2100.0
_TD_SUB = 40  # sub-block of the tone analysis, 5 ms
_TD_PURITY = 0.7  # share of the sub-block's energy at 2100 Hz
_TD_MIN_MS = _ms_dbm0(-33.0)  # detection level floor
_TD_HOLD_SUBS = 30  # tone must hold 150 ms (in sub-blocks) before a reversal counts
_TD_RELEASE_MS = _ms_dbm0(-36.0)
_TD_RELEASE_SAMPLES = 2000  # 250 ms below -36 dBm0 on both paths re-enables the canceller
_RELEARN_BLOCKS = 8  # in 20 ms blocks: 0.16 s of unexplained residual means the echo path changed


_GATE_DBM0 = -60.0  # far end quieter than this over the whole tail window: nothing to cancel or learn
_GATE_MS = _ms_dbm0(_GATE_DBM0)

try:  # ducc0 (pocketfft's successor) runs the many short real FFTs about 1.8x faster than scipy.fft
    import ducc0 as _ducc0
except ImportError:  # pragma: no cover - exercised by forcing fft="scipy"
    _ducc0 = None


def _rfft_ducc(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return _ducc0.fft.r2c(x, axes=(x.ndim - 1,), out=out)  # type: ignore[union-attr]


def _irfft_ducc(y: np.ndarray, n: int, out: np.ndarray | None = None) -> np.ndarray:
    return _ducc0.fft.c2r(  # type: ignore[union-attr]
        y, axes=(y.ndim - 1,), lastsize=n, forward=False, inorm=2, out=out
    )


def _rfft_scipy(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    r = sfft.rfft(x, axis=-1)
    if out is None:
        return r.astype(np.complex64, copy=False)
    out[...] = r
    return out


def _irfft_scipy(y: np.ndarray, n: int, out: np.ndarray | None = None) -> np.ndarray:
    r = sfft.irfft(y, n=n, axis=-1)
    if out is None:
        return r.astype(np.float32, copy=False)
    out[...] = r
    return out


_FFTS: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "scipy": (_rfft_scipy, _irfft_scipy)
}
if _ducc0 is not None:
    _FFTS["ducc0"] = (_rfft_ducc, _irfft_ducc)
FFT_BACKENDS = tuple(_FFTS)


class EchoCanceller:
    """Line echo canceller for `channels` voice channels (G.168, PBFDAF, NLP with comfort noise).

    ``process(near, far)`` takes int16 arrays shaped (channels, n), any n >= 1, and returns near with the
    echo of far removed, int16, same shape. No added latency.
    """

    def __init__(
        self,
        channels: int,
        tail_ms: int = 128,
        nlp: bool = True,
        *,
        block: int = 160,
        mu: float = 1.0,
        seed: int = 0x168,
        fft: str | None = None,
    ) -> None:
        if not isinstance(channels, int | np.integer) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if not isinstance(tail_ms, int | np.integer) or not 1 <= tail_ms <= 512:
            raise ValueError(f"tail_ms must be an int in 1..512, got {tail_ms!r}")
        if block < _TD_SUB or block % 80:
            raise ValueError(f"block must be a positive multiple of 80 samples, got {block!r}")
        if not 0.0 < mu < 2.0:
            raise ValueError(f"mu must be in (0, 2), got {mu!r}")
        if fft is None:
            fft = "ducc0" if "ducc0" in _FFTS else "scipy"
        if fft not in _FFTS:
            raise ValueError(f"fft must be one of {FFT_BACKENDS}, got {fft!r}")
        self.fft = fft
        self._rfft, self._irfft = _FFTS[fft]
        c = int(channels)
        b = int(block)
        self.channels = c
        self.tail_ms = int(tail_ms)
        self.block = b
        self.partitions = p = max(1, math.ceil(self.tail_ms * _FS / 1000 / b))
        self.mu = float(mu)
        f = b + 1
        self._f = f
        # far-end window [previous block | current block], zeros beyond the samples received so far
        self._xwin = np.zeros((c, 2 * b), np.float32)
        self._d = np.zeros((c, b), np.float32)  # near-end samples of the current block
        self._e = np.zeros((c, b), np.float32)  # residual of the current block (= near on idle rows)
        self._ez = np.zeros((c, 2 * b), np.float32)  # [zeros | error] for the gradient's FFT
        # spectra of the far-end windows and their conjugates, doubled rings so that [j:j+P] is in lag
        # order without copying (the conjugates make the gradient step one multiply and one add)
        # (partition-major layouts: one partition of every channel is one contiguous (channels, bins) plane)
        self._xring = np.zeros((2 * p, c, f), np.complex64)
        self._xcring = np.zeros((2 * p, c, f), np.complex64)
        self._head = 0  # ring index of the newest spectrum
        self._w = np.zeros((p, c, f), np.complex64)  # filter, frequency domain, partition-major
        self._yhist = np.zeros((c, f), np.complex64)  # contribution of partitions >= 1 to this block
        self._pxs = np.zeros((c, f), np.float64)  # far power per bin summed over the tail (running sum)
        self._px_ring = np.zeros((p, c, f), np.float32)  # |X|^2 per partition; _pxs is their sum
        self._pos = 0  # samples of the current block received (same for every channel)
        self._rot = 1  # next partition to constrain in rotation
        # scratch for the whole-array path
        self._xf = np.zeros((c, f), np.complex64)
        self._yf = np.zeros((c, f), np.complex64)
        self._yt = np.zeros((c, 2 * b), np.float32)
        # channels per chunk of the big (channels, partitions, bins) passes: about 512 KiB of W each
        self._chunk = max(1, (512 * 1024) // (p * f * 8))
        self._tmp = np.empty((p, min(c, self._chunk), f), np.complex64)
        self._nblk = 0
        self._xms = np.zeros((c, p + 1), np.float32)  # per-block far mean square over the tail
        self._xms_cur = np.zeros(c, np.float32)  # far mean square of the block just completed
        # far end above the gate somewhere in the blocks the next block's history term sees
        self._live = np.zeros(c, bool)
        self._dt_hang = np.zeros(c, np.int32)  # blocks of double-talk hangover left
        self._g_hang = np.zeros(c, np.int32)  # hangover of the power detector alone (NLP release)
        self._erle = np.ones(c, np.float32)  # achieved ERLE estimate (power ratio)
        self._relearn = np.zeros(c, np.int32)  # blocks where only the residual detector fired
        self._adapt = np.ones(c, bool)  # adaptation allowed (set_adaptation)
        self._enabled = np.ones(c, bool)  # canceller in circuit (enable)
        self._nlp_on = np.full(c, bool(nlp))  # NLP wanted (set_nlp)
        self._suppress = np.zeros(c, bool)  # NLP active for the current block
        self._bg = np.full(c, _ms_dbm0(-80.0), np.float32)  # near-end background noise mean square
        self._cn = np.zeros((c, b), np.float32)  # comfort noise for the current block
        self._rng = np.random.default_rng(seed)
        self._noise = self._rng.standard_normal(8192 + b, dtype=np.float32)
        self._ar_b = np.arange(b)
        self._noise_rows = np.lib.stride_tricks.sliding_window_view(self._noise, b)
        self._cn_seed = self._rng.integers(0, 2**32, size=c, dtype=np.uint32)
        # The filter state (the arrays in _heavy) is kept in physical rows: channel i lives in row
        # _phys[i], row j holds channel _log[j], and the channels whose filter runs this block (the
        # region) are rows [0, _nreg), so every big pass is one contiguous slice however few talk.
        self._heavy = (self._w, self._xring, self._xcring, self._px_ring, self._pxs, self._yhist)
        self._history = (self._xring, self._xcring, self._px_ring, self._pxs, self._yhist)
        self._ar_c = np.arange(c)
        self._phys = np.arange(c)
        self._log = np.arange(c)
        self._ident = True
        self._nreg = 0
        # activity counters (diagnostics: share of channel-blocks that needed the filter)
        self.blocks_run = 0
        self.blocks_idle = 0
        # tone disabler state
        n_sub = b // _TD_SUB
        t = np.arange(b)
        ph = 2.0 * np.pi * _TD_FREQ / _FS * t
        cos = np.cos(ph).astype(np.float32).reshape(n_sub, _TD_SUB)
        sin = np.sin(ph).astype(np.float32).reshape(n_sub, _TD_SUB)
        self._td_mat = np.zeros((b, 2 * n_sub), np.float32)
        for j in range(n_sub):
            self._td_mat[j * _TD_SUB : (j + 1) * _TD_SUB, j] = cos[j]
            self._td_mat[j * _TD_SUB : (j + 1) * _TD_SUB, n_sub + j] = sin[j]
        self._td_step = 2.0 * np.pi * _TD_FREQ / _FS * b  # phase advance of the table per block
        self._td_phase0 = 0.0  # table phase of the current block start (global, same for every channel)
        # per direction (0 = near, 1 = far): last tone phasor, run length, drift estimate, reversal seen
        self._td_last = np.zeros((2, c), np.complex64)
        self._td_run = np.zeros((2, c), np.int32)
        self._td_gap = np.zeros((2, c), np.int32)
        self._td_drift = np.zeros((2, c), np.float32)
        self._td_rev = np.zeros((2, c), bool)
        self._td_bypass = np.zeros(c, bool)
        self._td_quiet = np.zeros(c, np.int32)

    # ------------------------------------------------------------------ control
    def _check_channel(self, channel: int) -> int:
        return check_channel(channel, self.channels)

    def reset(self, channel: int) -> None:
        """Forget everything about one channel (call end): filter, histories, detector states."""
        i = self._check_channel(channel)
        for a in (self._xwin, self._d, self._e, self._xms, self._cn):
            a[i] = 0.0
        j = self._phys[i]
        for a in self._heavy:
            a[..., j, :] = 0.0
        self._xms_cur[i] = 0.0
        self._live[i] = False
        self._dt_hang[i] = 0
        self._erle[i] = 1.0
        self._g_hang[i] = 0
        self._relearn[i] = 0
        self._suppress[i] = False
        self._bg[i] = _ms_dbm0(-80.0)
        self._td_last[:, i] = 0.0
        self._td_run[:, i] = 0
        self._td_gap[:, i] = 0
        self._td_drift[:, i] = 0.0
        self._td_rev[:, i] = False
        self._td_bypass[i] = False
        self._td_quiet[i] = 0

    def enable(self, channel: int, on: bool) -> None:
        """Put the canceller of one channel in circuit (True) or bypass it (False: output = near).

        A bypassed channel costs next to nothing; its far-end history is not kept meanwhile, so for the
        first 128 ms after it is put back in circuit only the new far-end signal is cancelled."""
        self._enabled[self._check_channel(channel)] = bool(on)

    def set_adaptation(self, channel: int, on: bool) -> None:
        """Allow or freeze adaptation of one channel's echo path model (G.168 tests freeze it)."""
        self._adapt[self._check_channel(channel)] = bool(on)

    def set_nlp(self, channel: int, on: bool) -> None:
        """Switch one channel's non-linear processor (with comfort noise) on or off."""
        i = self._check_channel(channel)
        self._nlp_on[i] = bool(on)
        if not on:
            self._suppress[i] = False

    def tone_disabled(self) -> npt.NDArray[np.bool_]:
        """Per channel: True while the 2100 Hz tone disabler holds the canceller bypassed."""
        return self._td_bypass.copy()

    def active(self) -> npt.NDArray[np.bool_]:
        """Per channel: True where the filter runs for the current block (the far end was above -60 dBm0
        within the tail, and the channel is in circuit). The rest cost a few vector operations."""
        return self._live & self._enabled & ~self._td_bypass

    def impulse_response(self) -> npt.NDArray[np.float32]:
        """The modelled echo path per channel, shaped (channels, partitions * block) (diagnostics)."""
        w = self._w[:, self._phys].transpose(1, 0, 2)
        h = sfft.irfft(w, n=2 * self.block, axis=-1)[..., : self.block]
        return np.ascontiguousarray(h.reshape(self.channels, -1), dtype=np.float32)

    # ------------------------------------------------------------------ processing
    def process(self, near: npt.ArrayLike, far: npt.ArrayLike) -> npt.NDArray[np.int16]:
        """Cancel the echo of `far` in `near`; both int16 (channels, n); returns int16 (channels, n)."""
        near = check_block(near, self.channels, "near")
        far = check_block(far, self.channels, "far")
        if near.shape != far.shape:
            raise ValueError(f"near and far must have the same shape, got {near.shape} and {far.shape}")
        n = near.shape[1]
        out = np.empty(near.shape, np.int16)
        b = self.block
        i = 0
        while i < n:
            pos = self._pos
            m = min(n - i, b - pos)
            self._xwin[:, b + pos : b + pos + m] = far[:, i : i + m]
            self._d[:, pos : pos + m] = near[:, i : i + m]
            if pos + m == b:
                act = self._wanted(b, True)
                self._arrange(act)  # the region is exactly this block's active rows
                self._estimate(0, b)
                self._emit(out[:, i : i + m], pos, m)
                self._adapt_block(act)
                self._pos = 0
            else:
                want = self._wanted(pos + m, False)
                if (want & ~self._in_region()).any():  # a far end started talking: grow the region
                    self._arrange(want | self._in_region())
                self._estimate(pos, m)
                self._emit(out[:, i : i + m], pos, m)
                self._pos = pos + m
            i += m
        return out

    def _wanted(self, filled: int, end: bool) -> np.ndarray:
        """Rows whose echo estimate is needed now: in circuit, with far-end signal above the gate in the
        tail history or in the samples of this block received so far."""
        b = self.block
        seg = self._xwin[:, b : b + filled]
        energy = np.einsum("ij,ij->i", seg, seg)
        if end:
            self._xms_cur = (energy / b).astype(np.float32)
            loud = self._xms_cur >= _GATE_MS
        else:
            loud = energy >= _GATE_MS * b
        return (self._live | loud) & self._enabled & ~self._td_bypass

    def _in_region(self) -> np.ndarray:
        r = np.zeros(self.channels, bool)
        r[self._log[: self._nreg]] = True
        return r

    def _arrange(self, want: np.ndarray) -> None:
        """Move the filter state of the `want` channels to physical rows [0, n) (n = their count) by
        swapping rows, so that the filter passes work on one contiguous slice. Channels change activity
        a few times a second, so few rows move per block. Rows that join the region start with empty
        far-end histories (those were not kept outside it); their filters are kept."""
        n = int(np.count_nonzero(want))
        old = self._nreg
        pw = want[self._log]
        into = np.flatnonzero(pw[n:]) + n  # wanted rows outside the new region
        out = np.flatnonzero(~pw[:n])  # unwanted rows inside it, as many
        if into.size:
            for a in self._heavy:
                a[..., out, :], a[..., into, :] = a[..., into, :], a[..., out, :]
            lo, li = self._log[out], self._log[into]
            self._log[out], self._log[into] = li, lo
            self._phys[li], self._phys[lo] = out, into
            self._ident = bool(np.array_equal(self._log, self._ar_c))
        fresh = out[(out < old) & (into >= old)]  # rows from outside swapped into the old region
        for a in self._history:
            if n > old:
                a[..., old:n, :] = 0.0
            if fresh.size:
                a[..., fresh, :] = 0.0
        self._nreg = n

    def _estimate(self, pos: int, m: int) -> None:
        """Residual e = d - echo estimate of samples pos..pos+m of the current block on the region's
        channels (e = d on the others). Far-end samples not received yet are zeros in the window
        (partition 0 is causal)."""
        b, n = self.block, self._nreg
        e = self._e[:, pos : pos + m]
        d = self._d[:, pos : pos + m]
        if n == self.channels and self._ident:
            x = self._rfft(self._xwin, out=self._xf)
            y = np.multiply(self._w[0], x, out=self._yf)
            y += self._yhist
            yt = self._irfft(y, 2 * b, out=self._yt)
            np.subtract(d, yt[:, b + pos : b + pos + m], out=e)
            return
        e[...] = d
        if n:
            li = self._log[:n]
            x = self._rfft(self._xwin[li], out=self._xf[:n])
            y = np.multiply(self._w[0, :n], x, out=self._yf[:n])
            y += self._yhist[:n]
            yt = self._irfft(y, 2 * b, out=self._yt[:n])
            e[li] = d[li] - yt[:, b + pos : b + pos + m]

    def _emit(self, out: np.ndarray, pos: int, m: int) -> None:
        e = self._e[:, pos : pos + m]
        sup = self._suppress & self._enabled & ~self._td_bypass
        res = e.copy()
        if sup.any():
            np.copyto(res, self._cn[:, pos : pos + m], where=sup[:, None])
        np.rint(res, out=res)
        np.maximum(res, -32768.0, out=res)
        np.minimum(res, 32767.0, out=res)
        out[...] = res

    def _adapt_block(self, act: np.ndarray) -> None:
        b, p = self.block, self.partitions
        c = self.channels
        d, e = self._d, self._e
        xcur = self._xwin[:, b:]
        n_act = self._nreg
        self.blocks_run += n_act
        self.blocks_idle += c - n_act
        # ---- newest far spectrum into the doubled rings: ring[head : head + P] is [X_k, X_k-1, ...]
        # (idle rows get zeros: their far end is below the gate)
        h = (self._head - 1) % p
        self._head = h
        # (rows outside the region are not written: their histories are cleared when they come back)
        n = n_act
        x = self._xf[:n]
        self._xring[h, :n] = x
        self._xring[h + p, :n] = x
        np.conjugate(x, out=self._xcring[h, :n])
        self._xcring[h + p, :n] = self._xcring[h, :n]
        # far power per bin over the tail (normalisation): running sum in float64 (exact enough)
        sq = np.square(x.view(np.float32).reshape(n, self._f, 2))
        px = sq[..., 0] + sq[..., 1]
        pxs = self._pxs[:n]
        pxs -= self._px_ring[h, :n]
        pxs += px
        np.maximum(pxs, 0.0, out=pxs)
        self._px_ring[h, :n] = px
        # ---- block statistics
        self._xms[:, 1:] = self._xms[:, :-1]
        self._xms[:, 0] = self._xms_cur
        dms = np.einsum("ij,ij->i", d, d) / b
        ems = np.einsum("ij,ij->i", e, e) / b
        far_ms = self._xms.max(axis=1)
        far_active = far_ms > _ms_dbm0(-45.0)
        # ---- double talk, with hangover
        # near-end power against the loudest far-end block that can still echo (ERL >= 6 dB => the
        # echo alone stays below a quarter; half leaves 3 dB for dispersion and block edges)
        geigel = (dms > 0.5 * far_ms) & (dms > _ms_dbm0(-50.0))
        # once converged, a residual well above what the achieved ERLE predicts (and above -13 dB of the
        # near input) is near-end speech too. If the residual is even comparable to the input, the model
        # no longer explains the echo: after ~1 s of that alone, the echo path changed and is relearnt.
        erle = self._erle
        ratio = ems / np.maximum(dms, 1e-3)
        loud = far_active & (dms > _ms_dbm0(-50.0))
        excess = (erle > 16.0) & (ratio > np.maximum(4.0 / np.maximum(erle, 1.0), 0.05)) & loud
        # (also: the residual is louder than the input, e.g. the echo path opened: test 5)
        inject = (erle > 16.0) & (ems > 2.0 * dms) & (ems > _ms_dbm0(-50.0)) & (dms < 1e-3 * self._xms[:, 0])
        worse = (excess & (ratio > 0.5)) | inject
        clean = ~excess & ~geigel & loud
        self._relearn = np.where(
            geigel,
            0,
            np.where(
                worse, self._relearn + 1, np.where(clean, np.maximum(self._relearn - 2, 0), self._relearn)
            ),
        ).astype(np.int32)
        lost = self._relearn >= _RELEARN_BLOCKS * 160 // b
        self._erle = np.where(lost, 1.0, self._erle).astype(np.float32)
        self._relearn[lost] = 0
        dt = geigel | (excess & ~lost)
        self._dt_hang = np.where(dt, 3, np.maximum(self._dt_hang - 1, 0)).astype(np.int32)
        dtalk = self._dt_hang > 0
        # ---- tone disabler (on both directions, whole block)
        self._tone_disabler(d, xcur, dms, self._xms[:, 0])
        # ---- adaptation
        upd = self._adapt & ~dtalk & act & (far_ms > 1.0)
        # achieved ERLE (single talk, far active): rises quickly, falls slowly
        single = upd & far_active & (dms > _ms_dbm0(-60.0))
        now = np.minimum(dms / np.maximum(ems, 1e-3), 1000.0)
        self._erle = np.where(
            single,
            np.where(now > self._erle, 0.7 * self._erle + 0.3 * now, 0.95 * self._erle + 0.05 * now),
            self._erle,
        ).astype(np.float32)
        # step size: mu while converging, down to mu/4 once the ERLE passes 20 dB (less misadjustment
        # from near-end noise and undetected double talk)
        mu = self.mu * np.clip(
            1.0 - 0.75 * (10.0 * np.log10(np.maximum(self._erle, 1.0)) - 10.0) / 10.0, 0.25, 1.0
        )
        n_upd = int(np.count_nonzero(upd))
        g = None
        if n_upd:
            li = self._log[:n]
            ez = self._ez[:n]
            ez[:, b:] = e[li]
            ef = self._rfft(ez, out=self._yf[:n])
            pxs = self._pxs[:n]
            inv = (pxs + (1e-2 * pxs.mean(axis=1, keepdims=True) + 2.0 * b * p * _ms_dbm0(-60.0))).astype(
                np.float32
            )
            step = np.where(upd, mu, 0.0).astype(np.float32)[li]
            np.divide(step[:, None], inv, out=inv)
            ef *= inv  # G = mu * E / (far power + regularisation); the step is conj(X) * G
            g = ef
        self._filter_pass(n, g)
        # (the rotation follows the block count, so channels do not depend on one another)
        self._nblk += 1
        rotate = p > 1 and self._nblk % 2 == 0
        if n_upd:
            ur: slice | np.ndarray = slice(0, n) if n_upd == n else np.flatnonzero(upd[self._log[:n]])
            self._constrain(0, ur)
            if rotate:
                self._constrain(self._rot, ur)
        if rotate:
            self._rot = self._rot + 1 if self._rot + 1 < p else 1
            bad = ~np.isfinite(self._w[0, :n, 0])
            if bad.any():
                for i in self._log[np.flatnonzero(bad)]:
                    self.reset(int(i))
        # ---- NLP decision and comfort noise for the next block
        quiet = ~far_active
        self._bg = np.where(quiet, 0.8 * self._bg + 0.2 * ems, np.minimum(self._bg, ems)).astype(np.float32)
        self._g_hang = np.where(geigel, 3, np.maximum(self._g_hang - 1, 0)).astype(np.int32)
        self._suppress = self._nlp_on & far_active & (self._g_hang == 0)
        # comfort noise: a random stretch of a stored Gaussian sequence per channel, at the background level
        # (offsets from a per-channel linear congruential generator: a few integer operations per block)
        self._cn_seed *= np.uint32(1664525)
        self._cn_seed += np.uint32(1013904223)
        start = (self._cn_seed >> np.uint32(8)) % np.uint32(self._noise.size - b)
        sup = np.flatnonzero(self._suppress)
        if sup.size:
            cn = self._noise_rows[start[sup]]
            cn *= np.sqrt(self._bg[sup])[:, None]
            self._cn[sup] = cn
        # ---- slide the far window; the next block's rows with far-end history above the gate
        self._xwin[:, :b] = xcur
        self._xwin[:, b:] = 0.0
        self._live = self._xms[:, :p].max(axis=1) >= _GATE_MS

    def _filter_pass(self, n: int, g: np.ndarray | None) -> None:
        """Gradient step W_p += conj(X_k-p) * G (G = 0 on rows that do not adapt), and the next block's
        history term sum_{p>=1} W_p X_k+1-p, on the region's rows [0, n) (0 elsewhere), in channel
        chunks that stay in the L2 cache."""
        p, h = self.partitions, self._head
        yh = self._yhist
        yh[n:] = 0.0
        for lo in range(0, n, self._chunk):
            hi = min(lo + self._chunk, n)
            t = self._tmp[:, : hi - lo]
            w = self._w[:, lo:hi]
            if g is not None:
                np.multiply(self._xcring[h : h + p, lo:hi], g[lo:hi], out=t)
                w += t
            if p > 1:
                tp = t[: p - 1]
                np.multiply(w[1:], self._xring[h : h + p - 1, lo:hi], out=tp)
                np.sum(tp, axis=0, out=yh[lo:hi])
            else:
                yh[lo:hi] = 0.0

    def _constrain(self, k: int, rows: slice | np.ndarray) -> None:
        b = self.block
        wt = self._irfft(self._w[k, rows], 2 * b)
        wt[:, b:] = 0.0
        self._w[k, rows] = self._rfft(wt)

    def _tone_disabler(self, d: np.ndarray, x: np.ndarray, dms: np.ndarray, xms: np.ndarray) -> None:
        n_sub = self.block // _TD_SUB
        c = self.channels
        rot = complex(math.cos(self._td_phase0), -math.sin(self._td_phase0))
        self._td_phase0 = (self._td_phase0 + self._td_step) % (2.0 * math.pi)
        found = np.zeros(c, bool)
        for k, (sig, ms) in enumerate(((d, dms), (x, xms))):
            # a tone sub-block needs a quarter of its block's energy above the floor: quieter blocks
            # (and the silent channels) skip the analysis unless a tone is in progress
            cand = np.flatnonzero((ms >= 0.125 * _TD_MIN_MS) | (self._td_run[k] > 0))
            if cand.size == 0:
                continue
            sc = sig if cand.size == c else sig[cand]
            s = sc.reshape(cand.size, n_sub, _TD_SUB)
            zz = sc @ self._td_mat  # one matrix product: [sum s*cos | sum s*sin] per sub-block
            np.square(zz, out=zz)
            en = np.einsum("csn,csn->cs", s, s)
            tone = 2.0 * (zz[:, :n_sub] + zz[:, n_sub:]) >= _TD_PURITY * _TD_SUB * en
            tone &= en >= _TD_SUB * _TD_MIN_MS
            # the sequential part runs only on channels with a tone now or in progress (rarely any)
            sub = np.flatnonzero(tone.any(axis=1) | (self._td_run[k, cand] > 0))
            if sub.size == 0:
                continue
            idx = cand[sub]
            tone = tone[sub]
            zz = sig[idx] @ self._td_mat
            z = (zz[:, :n_sub] - 1j * zz[:, n_sub:]) * rot
            last, run, gap = self._td_last[k, idx], self._td_run[k, idx], self._td_gap[k, idx]
            drift, rev = self._td_drift[k, idx], self._td_rev[k, idx]
            hit = np.zeros(idx.size, bool)
            for j in range(n_sub):
                t = tone[:, j]
                zj = z[:, j].astype(np.complex64)
                have = t & (run > 0)
                dph = np.angle(zj * np.conj(last)).astype(np.float32)
                corr = np.angle(np.exp(1j * (dph - drift * (gap + 1)))).astype(np.float32)
                reversal = have & (np.abs(corr) > 2.2) & (run >= _TD_HOLD_SUBS)
                steady = have & (np.abs(corr) <= 1.0)
                drift = np.where(steady, 0.8 * drift + 0.2 * dph / (gap + 1), drift).astype(np.float32)
                rev = rev | reversal
                hit |= reversal
                run = np.where(t, run + 1, np.where(gap < 2, run, 0)).astype(np.int32)
                gap = np.where(t, 0, gap + 1).astype(np.int32)
                last = np.where(t, zj, last)
                rev = rev & (run > 0)
            self._td_last[k, idx], self._td_run[k, idx], self._td_gap[k, idx] = last, run, gap
            self._td_drift[k, idx], self._td_rev[k, idx] = drift, rev
            found[idx] |= hit
        self._td_bypass |= found
        quiet = (dms < _TD_RELEASE_MS) & (xms < _TD_RELEASE_MS)
        self._td_quiet = np.where(self._td_bypass & quiet, self._td_quiet + self.block, 0).astype(np.int32)
        release = self._td_quiet >= _TD_RELEASE_SAMPLES
        self._td_bypass &= ~release
        self._td_quiet[release] = 0
