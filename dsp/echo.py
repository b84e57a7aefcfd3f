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
  NLP and tone-disabler decisions happen only at block boundaries, on whole blocks, so the state after any
  split of the same signal is identical.
- Double talk: a Geigel-style detector on the whole block (near power against the loudest far-end block
  power over the tail, threshold 3 dB above the 6 dB ERL G.168 assumes) with a 3-block hangover freezes
  adaptation. Block powers are steadier than the sample peaks a classic Geigel detector compares.
- NLP (G.168 non-linear processor): while the far end is active and there is no double talk, the residual
  is replaced by comfort noise at the level of the near-end background noise, tracked when the far end
  is silent. Decisions are taken per block and apply to the next block (B samples of decision lag).
- Tone disabler: a 2100 Hz tone holding for >= 150 ms with a phase reversal, on either direction,
  bypasses the canceller (output = near, adaptation frozen) until both directions stay below -36 dBm0
  for 250 ms.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft

from dsp.blocks import check_block

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
    ) -> None:
        if not isinstance(channels, int | np.integer) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if not isinstance(tail_ms, int | np.integer) or not 1 <= tail_ms <= 512:
            raise ValueError(f"tail_ms must be an int in 1..512, got {tail_ms!r}")
        if block < _TD_SUB or block % 80:
            raise ValueError(f"block must be a positive multiple of 80 samples, got {block!r}")
        if not 0.0 < mu < 2.0:
            raise ValueError(f"mu must be in (0, 2), got {mu!r}")
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
        self._ez = np.zeros((c, 2 * b), np.float32)  # [zeros | error] for the gradient's FFT
        # spectra of the far-end windows, a doubled ring so that [j:j+P] is in lag order without copying
        self._xring = np.zeros((c, 2 * p, f), np.complex64)
        self._head = 0  # ring index of the newest spectrum
        self._w = np.zeros((c, p, f), np.complex64)  # filter, frequency domain
        self._yhist = np.zeros((c, f), np.complex64)  # contribution of partitions >= 1 to this block
        self._pxs = np.zeros((c, f), np.float32)  # far power per bin summed over the tail
        self._px_ring = np.zeros((c, p, f), np.float32)  # |X|^2 per partition; _pxs is their sum
        self._pos = 0  # samples of the current block received (same for every channel)
        self._rot = 1  # next partition to constrain in rotation
        # channels per chunk of the big (channels, partitions, bins) passes: about 512 KiB of W each
        self._chunk = max(1, (512 * 1024) // (p * f * 8))
        self._tmp = np.empty((min(c, self._chunk), p, f), np.complex64)
        self._nblk = 0
        self._xms = np.zeros((c, p + 1), np.float32)  # per-block far mean square over the tail
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
        # tone disabler state
        n_sub = b // _TD_SUB
        t = np.arange(b)
        ph = 2.0 * np.pi * _TD_FREQ / _FS * t
        self._td_cos = np.cos(ph).astype(np.float32).reshape(n_sub, _TD_SUB)
        self._td_sin = np.sin(ph).astype(np.float32).reshape(n_sub, _TD_SUB)
        self._td_mat = np.zeros((b, 2 * n_sub), np.float32)
        for j in range(n_sub):
            self._td_mat[j * _TD_SUB : (j + 1) * _TD_SUB, j] = self._td_cos[j]
            self._td_mat[j * _TD_SUB : (j + 1) * _TD_SUB, n_sub + j] = self._td_sin[j]
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
        if not isinstance(channel, int | np.integer) or not 0 <= channel < self.channels:
            raise ValueError(f"channel must be an int in 0..{self.channels - 1}, got {channel!r}")
        return int(channel)

    def reset(self, channel: int) -> None:
        """Forget everything about one channel (call end): filter, histories, detector states."""
        i = self._check_channel(channel)
        self._xwin[i] = 0.0
        self._d[i] = 0.0
        self._xring[i] = 0.0
        self._w[i] = 0.0
        self._yhist[i] = 0.0
        self._pxs[i] = 0.0
        self._px_ring[i] = 0.0
        self._xms[i] = 0.0
        self._dt_hang[i] = 0
        self._erle[i] = 1.0
        self._g_hang[i] = 0
        self._relearn[i] = 0
        self._suppress[i] = False
        self._bg[i] = _ms_dbm0(-80.0)
        self._cn[i] = 0.0
        self._td_last[:, i] = 0.0
        self._td_run[:, i] = 0
        self._td_gap[:, i] = 0
        self._td_drift[:, i] = 0.0
        self._td_rev[:, i] = False
        self._td_bypass[i] = False
        self._td_quiet[i] = 0

    def enable(self, channel: int, on: bool) -> None:
        """Put the canceller of one channel in circuit (True) or bypass it (False: output = near)."""
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

    def impulse_response(self) -> npt.NDArray[np.float32]:
        """The modelled echo path per channel, shaped (channels, partitions * block) (diagnostics)."""
        h = sfft.irfft(self._w, n=2 * self.block, axis=-1)[..., : self.block]
        return np.ascontiguousarray(h.reshape(self.channels, -1), dtype=np.float32)

    # ------------------------------------------------------------------ processing
    def process(self, near: npt.ArrayLike, far: npt.ArrayLike) -> npt.NDArray[np.int16]:
        """Cancel the echo of `far` in `near`; both int16 (channels, n); returns int16 (channels, n)."""
        near = self._check_block(near, "near")
        far = self._check_block(far, "far")
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
                e = self._block_error()
                self._emit(out[:, i : i + m], e[:, pos:], near[:, i : i + m], pos)
                self._adapt_block(e)
                self._pos = 0
            else:
                e = self._partial_error(pos, m)
                self._emit(out[:, i : i + m], e, near[:, i : i + m], pos)
                self._pos = pos + m
            i += m
        return out

    def _check_block(self, a: npt.ArrayLike, name: str) -> np.ndarray:
        return check_block(a, self.channels, name)

    def _emit(self, out: np.ndarray, e: np.ndarray, near: np.ndarray, pos: int) -> None:
        m = out.shape[1]
        res = np.where(self._suppress[:, None], self._cn[:, pos : pos + m], e)
        np.copyto(res, near, where=~(self._enabled & ~self._td_bypass)[:, None])
        np.rint(res, out=res)
        np.clip(res, -32768, 32767, out=res)
        out[...] = res

    def _partial_error(self, pos: int, m: int) -> np.ndarray:
        """Residual of samples pos..pos+m of the current block, future far-end samples taken as zero."""
        b = self.block
        x = sfft.rfft(self._xwin, axis=-1)
        y = self._yhist + self._w[:, 0] * x
        yt = sfft.irfft(y, n=2 * b, axis=-1)[:, b + pos : b + pos + m]
        return self._d[:, pos : pos + m] - yt

    def _block_error(self) -> np.ndarray:
        b, p = self.block, self.partitions
        x = sfft.rfft(self._xwin, axis=-1).astype(np.complex64, copy=False)
        # newest spectrum into the doubled ring: ring[head : head + P] is [X_k, X_k-1, ...]
        h = (self._head - 1) % p
        self._head = h
        self._xring[:, h] = x
        self._xring[:, h + p] = x
        y = self._yhist + self._w[:, 0] * x
        yt = sfft.irfft(y, n=2 * b, axis=-1)[:, b:]
        return self._d - yt

    def _adapt_block(self, e: np.ndarray) -> None:
        b, p, h = self.block, self.partitions, self._head
        c = self.channels
        d = self._d
        xcur = self._xwin[:, b:]
        view = self._xring[:, h : h + p]
        x = view[:, 0]
        # ---- block statistics
        self._xms[:, 1:] = self._xms[:, :-1]
        self._xms[:, 0] = np.einsum("ij,ij->i", xcur, xcur) / b
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
        # ---- far power per bin over the tail (normalisation)
        sq = np.square(x.view(np.float32).reshape(c, self._f, 2))
        px = sq[..., 0] + sq[..., 1]
        slot = h  # the oldest partition's slot is replaced
        self._px_ring[:, slot] = px
        np.sum(self._px_ring, axis=1, out=self._pxs)
        # ---- tone disabler (on both directions, whole block)
        self._tone_disabler(d, xcur, dms, self._xms[:, 0])
        # ---- adaptation
        upd = self._adapt & ~dtalk & ~self._td_bypass & (far_ms > 1.0)
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
        any_upd = bool(upd.any())
        if any_upd:
            ez = self._ez
            ez[:, b:] = e
            ef = sfft.rfft(ez, axis=-1)
            reg = 1e-2 * self._pxs.mean(axis=1, keepdims=True) + np.float32(2.0 * b * p * _ms_dbm0(-60.0))
            inv = self._pxs + reg
            np.divide((mu * upd).astype(np.float32)[:, None], inv, out=inv)
            # conj(X) * G == conj(X * conj(G)): multiply by conj(G), conjugate the product in place
            g = np.conjugate(ef, out=ef)
            g *= inv
        # gradient step and the next block's history term, W_p * X_{k+1-p} for p >= 1, in channel
        # chunks that stay in the L2 cache (both passes read the same W and X)
        yh = self._yhist
        for lo in range(0, c, self._chunk):
            hi = min(lo + self._chunk, c)
            v = view[lo:hi]
            w = self._w[lo:hi]
            t = self._tmp[: hi - lo]
            if any_upd and upd[lo:hi].any():  # (silent far ends and double talk skip the pass)
                np.multiply(v, g[lo:hi, None, :], out=t)
                np.conjugate(t, out=t)
                w += t
            if p > 1:
                np.multiply(w[:, 1:], v[:, : p - 1], out=t[:, : p - 1])
                np.sum(t[:, : p - 1], axis=1, out=yh[lo:hi])
            else:
                yh[lo:hi] = 0.0
        if any_upd:
            self._constrain(0)
            self._nblk += 1
            if p > 1 and self._nblk % 2 == 0:
                self._constrain(self._rot)
                self._rot = self._rot + 1 if self._rot + 1 < p else 1
            bad = ~np.isfinite(self._w[:, 0, 0])
            if bad.any():
                for i in np.flatnonzero(bad):
                    self.reset(int(i))
                    self._yhist[i] = 0.0
        # ---- NLP decision and comfort noise for the next block
        quiet = ~far_active
        self._bg = np.where(quiet, 0.8 * self._bg + 0.2 * ems, np.minimum(self._bg, ems)).astype(np.float32)
        self._g_hang = np.where(geigel, 3, np.maximum(self._g_hang - 1, 0)).astype(np.int32)
        self._suppress = self._nlp_on & far_active & (self._g_hang == 0)
        # comfort noise: a random stretch of a stored Gaussian sequence per channel, at the background level
        start = self._rng.integers(0, self._noise.size - b, size=c)
        self._cn = self._noise[start[:, None] + self._ar_b] * np.sqrt(self._bg)[:, None]
        # ---- slide the far window
        self._xwin[:, :b] = xcur
        self._xwin[:, b:] = 0.0

    def _constrain(self, k: int) -> None:
        b = self.block
        wt = sfft.irfft(self._w[:, k], n=2 * b, axis=-1)
        wt[:, b:] = 0.0
        self._w[:, k] = sfft.rfft(wt, axis=-1)

    def _tone_disabler(self, d: np.ndarray, x: np.ndarray, dms: np.ndarray, xms: np.ndarray) -> None:
        n_sub = self.block // _TD_SUB
        c = self.channels
        rot = complex(math.cos(self._td_phase0), -math.sin(self._td_phase0))
        self._td_phase0 = (self._td_phase0 + self._td_step) % (2.0 * math.pi)
        found = np.zeros(c, bool)
        for k, sig in enumerate((d, x)):
            s = sig.reshape(c, n_sub, _TD_SUB)
            zz = sig @ self._td_mat  # one matrix product: [sum s*cos | sum s*sin] per sub-block
            zr = zz[:, :n_sub]
            zi = -zz[:, n_sub:]
            z = (zr + 1j * zi) * rot
            en = np.einsum("csn,csn->cs", s, s)
            tone = (2.0 * (zr * zr + zi * zi) >= _TD_PURITY * _TD_SUB * en) & (en >= _TD_SUB * _TD_MIN_MS)
            # the sequential part runs only on channels with a tone now or in progress (rarely any)
            idx = np.flatnonzero(tone.any(axis=1) | (self._td_run[k] > 0))
            if idx.size == 0:
                continue
            last, run, gap = self._td_last[k, idx], self._td_run[k, idx], self._td_gap[k, idx]
            drift, rev = self._td_drift[k, idx], self._td_rev[k, idx]
            tone, z = tone[idx], z[idx]
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
