"""Vectorised 1200-baud FSK receiver for caller ID (private to dsp.callerid).

Three stages, all struct-of-arrays over channels:

1. Gate. The input is cut on a fixed grid of CHUNK samples counted from the receiver's creation, so any split
   of a signal into blocks gives the same chunks. A chunk's mean square decides whether a channel is *active*;
   only active channels are demodulated. When a channel turns active, the previous chunk is demodulated too
   (its raw samples are kept), so the start of the carrier is found to the sample.
2. Demodulate. Two non-coherent correlators one bit long (complex mixing at mark and space, moving sum by a
   cumulative sum, squared magnitude) give per sample the soft decision d = |mark|^2 - |space|^2 and the
   in-band energy e. Mixing tables are indexed by absolute sample number modulo CHUNK: every tone used has a
   period dividing CHUNK, so the tables are constant.
3. Frame. A UART (8-N-1, LSB first) driven by per-channel positions: hunt for a mark->space edge (found for
   all hunting channels at once with a precomputed "next edge" table), then take ten decisions one bit apart.
   Bytes go to a message assembler that starts a message only on a message-type byte preceded by at least
   MIN_MARK_BITS of idle mark, and hands complete messages (type, length, body, checksum) back as bytes.

The loops in stage 3 are over UART steps (about a dozen per chunk), never over channels or samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.levels import SAMPLE_RATE, dbm0_to_mean_square

CHUNK = 80  # internal grid (10 ms); every tone period below divides it
BAUD = 1200
SPB = SAMPLE_RATE / BAUD  # samples per bit, 6.667
# Correlator length in samples (about one bit) and where, after a start edge (the zero crossing of d), the
# decision for bit k is taken: DECISION_OFFSET + k * bit period. Per tone pair: 1300/2100 Hz correlate less
# over 8 samples than over 7 (measured bit error rate 1.2e-4 against 4.6e-4 at 8 dB SNR).
CORR_LEN = {(1200.0, 2200.0): 7, (1300.0, 2100.0): 8}
DECISION_OFFSET = {7: 3.5, 8: 3.5}
TRACK_WINDOW = 2.0  # an edge within this many samples of the tracked bit clock is blended with it
TRACK_PHASE = 0.3  # share of the measured edge in the blended edge
TRACK_PHASE_BIT = 0.15  # share of a data-bit crossing's error taken into the character's start
TRACK_RATE = 0.1  # share of the edge error per bit taken into the tracked bit period
PMIN, PMAX = SPB * 0.97, SPB * 1.03
MIN_MARK_BITS = 16  # idle mark (no start bit) needed before a message-type byte starts a message
MAX_PAUSE_BITS = 12  # longer idle mark between two characters of a message loses the message
MAX_MESSAGE = 258  # type + length + 255 + checksum
GATE_DBM0 = -50.0  # a chunk quieter than this (mean square) leaves an idle channel asleep
CARRIER_DBM0 = -50.0  # correlator energy threshold, as the level of a tone, for the onset of the carrier
MESSAGE_TYPES = (0x04, 0x80)  # SDMF call setup, MDMF call setup

_GATE_MS = float(dbm0_to_mean_square(GATE_DBM0)) * CHUNK
# A steady tone of peak a gives |correlator|^2 = (a * L / 2)^2 = mean_square * L^2 / 2.
_CARRIER_MS = float(dbm0_to_mean_square(CARRIER_DBM0))


@dataclass(frozen=True)
class Message:
    """A complete, checksummed frame as received (not yet parsed)."""

    channel: int
    data: bytes  # type, length, body (no checksum)
    onset: int  # absolute sample where its carrier began


def _tables(mark_hz: float, space_hz: float) -> np.ndarray:
    """(CHUNK, 4) float32 rows cos/sin of mark and space for absolute sample n modulo CHUNK."""
    n = np.arange(CHUNK, dtype=np.float64)
    cols = []
    for f in (mark_hz, space_hz):
        if (f * CHUNK) % SAMPLE_RATE:
            raise ValueError(f"tone {f} Hz has no period dividing {CHUNK} samples")
        w = 2.0 * np.pi * f / SAMPLE_RATE
        cols += [np.cos(w * n), np.sin(w * n)]
    return np.stack(cols, axis=1).astype(np.float32)


class FskReceiver:
    """All the per-channel state of the FSK caller ID receiver, as arrays."""

    def __init__(self, channels: int, mark_hz: float, space_hz: float) -> None:
        self.channels = channels
        self._tab = _tables(mark_hz, space_hz)
        self._L = L = CORR_LEN.get((float(mark_hz), float(space_hz)), 7)
        self._offset = DECISION_OFFSET[L]
        self._carrier_e = _CARRIER_MS * L * L / 2.0
        c = channels
        self._pending = np.zeros((c, CHUNK), dtype=np.int16)  # samples waiting for a full chunk
        self._npending = 0
        self._t0 = 0  # absolute index of the next chunk's first sample
        # The last chunk with the CORR_LEN - 1 samples before it (history, and lookback on activation).
        self._prev = np.zeros((c, L - 1 + CHUNK), dtype=np.float32)
        self._active = np.zeros(c, dtype=bool)
        self._onset = np.zeros(c, dtype=np.int64)  # where the current activity episode's carrier began
        # UART
        self._receiving = np.zeros(c, dtype=bool)
        self._hunt = np.zeros(c, dtype=np.int64)  # absolute index from which to look for a start edge
        self._start = np.zeros(c, dtype=np.float64)  # absolute (fractional) start edge of the character
        self._period = np.full(c, SPB)  # tracked bit period in samples (senders may be off by 1 %)
        self._last_start = np.full(c, -1e12)  # start edge of the last good character
        self._bit = np.zeros(c, dtype=np.int8)  # 0 = start bit, 1..8 data, 9 stop
        self._shift = np.zeros(c, dtype=np.int32)
        self._pbit = np.zeros(c, dtype=bool)  # previous decision within the character
        self._prev_mark = np.zeros(c, dtype=bool)
        self._prev_d = np.zeros(c, dtype=np.float32)  # last soft decision of the previous window
        # message assembly
        self._buf = np.zeros((c, MAX_MESSAGE), dtype=np.uint8)
        self._len = np.zeros(c, dtype=np.int32)
        self._last_end = np.full(c, -(1 << 40), dtype=np.int64)  # end of the last character received
        self._msg_end = np.full(c, -(1 << 40), dtype=np.int64)  # end of the last message completed
        self._msg_onset = np.zeros(c, dtype=np.int64)

    # ------------------------------------------------------------------ public
    def reset(self, channel: int) -> None:
        ch = channel
        self._pending[ch] = 0
        self._prev[ch] = 0.0
        self._active[ch] = False
        self._sleep(np.array([ch]))

    def process(self, block: np.ndarray) -> list[Message]:
        """Feed a validated (channels, n) int16 block; returns complete messages."""
        out: list[Message] = []
        n = block.shape[1]
        i = 0
        while i < n:
            take = min(CHUNK - self._npending, n - i)
            if self._npending == 0 and take == CHUNK:
                chunk = block[:, i : i + CHUNK]
            else:
                self._pending[:, self._npending : self._npending + take] = block[:, i : i + take]
                self._npending += take
                if self._npending < CHUNK:
                    break
                chunk = self._pending
            i += take
            self._npending = 0
            self._chunk(chunk.astype(np.float32), out)
        return out

    # ------------------------------------------------------------------ internals
    def _sleep(self, idx: np.ndarray) -> None:
        """Channels in idx stop being demodulated: forget any character or message in progress."""
        self._receiving[idx] = False
        self._len[idx] = 0
        self._prev_mark[idx] = False
        self._prev_d[idx] = 0.0
        self._period[idx] = SPB
        self._last_start[idx] = -1e12
        self._last_end[idx] = -(1 << 40)
        self._msg_end[idx] = -(1 << 40)

    def _chunk(self, x: np.ndarray, out: list[Message]) -> None:
        t0 = self._t0
        energy = np.einsum("ij,ij->i", x, x)
        loud = energy >= _GATE_MS
        # A channel is demodulated while its chunks are loud, plus one chunk after (the tail of a message).
        was = self._active
        run = loud | was
        self._active = loud
        fresh = np.flatnonzero(loud & ~was)
        cont = np.flatnonzero(run & was)
        if fresh.size:
            # Look back one chunk for the exact start of the carrier.
            self._hunt[fresh] = t0 - CHUNK
            self._receiving[fresh] = False
            self._prev_mark[fresh] = False
            self._prev_d[fresh] = 0.0
            xe = np.concatenate([self._prev[fresh], x[fresh]], axis=1)
            self._run(fresh, xe, t0 - CHUNK, out, first=True)
        if cont.size:
            xe = np.concatenate([self._prev[cont, CHUNK:], x[cont]], axis=1)
            self._run(cont, xe, t0, out, first=False)
        quiet = np.flatnonzero(was & ~loud)
        if quiet.size:
            self._sleep(quiet)
        # Every channel keeps its last chunk (a channel turning active next chunk looks back into it).
        self._prev[:, : self._L - 1] = self._prev[:, CHUNK:]
        self._prev[:, self._L - 1 :] = x
        self._t0 = t0 + CHUNK

    def _demod(self, xe: np.ndarray, a0: int) -> tuple[np.ndarray, np.ndarray]:
        """Soft decision and energy for every sample of xe but the first L-1 (its history)."""
        m, L = xe.shape[1], self._L
        rows = (a0 - (L - 1) + np.arange(m)) % CHUNK
        z = xe[:, :, None] * self._tab[rows]
        s = np.cumsum(z, axis=1)
        w = s[:, L - 1 :]
        w[:, 1:] -= s[:, : m - L]
        w *= w
        pm = w[:, :, 0] + w[:, :, 1]
        ps = w[:, :, 2] + w[:, :, 3]
        return pm - ps, pm + ps

    def _run(self, idx: np.ndarray, xe: np.ndarray, a0: int, out: list[Message], first: bool) -> None:
        """Demodulate and frame channels idx over absolute samples a0 .. a0 + width - 1."""
        d, e = self._demod(xe, a0)
        width = d.shape[1]
        na = idx.size
        if first:
            on = e > self._carrier_e
            has = on.any(axis=1)
            first_on = np.where(has, on.argmax(axis=1), width - CHUNK)
            # The correlator sees a tone only when it fills part of its window: step back to its start.
            self._onset[idx] = a0 + np.maximum(first_on - self._L // 2, 0)
            self._last_end[idx] = self._onset[idx]  # a message needs idle mark after the carrier begins
        mark = d > 0
        prev = np.concatenate([self._prev_mark[idx, None], mark[:, :-1]], axis=1)
        edge = prev & ~mark
        dprev = np.concatenate([self._prev_d[idx, None], d[:, :-1]], axis=1)
        pos = np.arange(width + 1, dtype=np.int64)
        nxt = np.where(edge, pos[None, :width], width)
        nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1]
        nxt = np.concatenate([nxt, np.full((na, 1), width, dtype=nxt.dtype)], axis=1)
        self._prev_mark[idx] = mark[:, -1]
        self._prev_d[idx] = d[:, -1]

        receiving = self._receiving[idx]
        hunt = np.clip(self._hunt[idx] - a0, 0, width)
        start = self._start[idx] - a0
        last = self._last_start[idx] - a0
        period = self._period[idx]
        bit = self._bit[idx].astype(np.int64)
        shift = self._shift[idx].astype(np.int64)
        pbit = self._pbit[idx]
        while True:
            # Hunting channels: jump to the next start edge.
            h = np.flatnonzero(~receiving & (hunt < width))
            if h.size:
                s = nxt[h, hunt[h]]
                got = s < width
                hg, sg = h[got], s[got]
                # Where between the two samples d crossed zero.
                d0, d1 = dprev[hg, sg], d[hg, sg]
                edge_at = sg - 1 + d0 / np.maximum(d0 - d1, 1e-30)
                # A sender keeps its bit clock between characters: blend the edge with where the clock
                # says it should be (a second-order loop), unless it is far from any whole bit.
                p = period[hg]
                m = np.rint((edge_at - last[hg]) / p)
                resid = edge_at - (last[hg] + m * p)
                near = (m >= 10) & (m <= 30) & (np.abs(resid) < TRACK_WINDOW)
                edge_at = np.where(near, last[hg] + m * p + TRACK_PHASE * resid, edge_at)
                period[hg] = np.where(near, np.clip(p + TRACK_RATE * resid / np.maximum(m, 1), PMIN, PMAX), p)
                start[hg] = edge_at
                bit[hg] = 0
                shift[hg] = 0
                receiving[hg] = True
                hunt[h[~got]] = width
            # Receiving channels whose next decision falls in this window.
            at = start + self._offset + bit * period
            when = np.floor(at).astype(np.int64) + 1  # decided once the sample after `at` is in
            r = np.flatnonzero(receiving & (when < width))
            if not r.size:
                if not h.size:
                    break
                continue
            wr = when[r]
            frac = (at[r] - (wr - 1)).astype(np.float32)
            b = (dprev[r, wr] * (1 - frac) + d[r, wr] * frac) > 0  # d between the two samples
            br = bit[r]
            self._retime(r, br, b, pbit, start, period, d)
            pbit[r] = b
            # start bit must be space
            bad_start = (br == 0) & b
            data = (br >= 1) & (br <= 8)
            shift[r] |= np.where(data & b, np.left_shift(1, np.maximum(br - 1, 0)), 0)
            stop = br == 9
            done = stop | bad_start
            bit[r] += 1
            fin = r[done]
            receiving[fin] = False
            hunt[fin] = wr[done]
            ok = stop & b
            last[r[ok]] = start[r[ok]]
            if ok.any():
                self._bytes(idx, r[ok], shift[r[ok]], start[r[ok]].astype(np.int64) + a0, wr[ok] + a0, out)
            ferr = stop & ~b
            if ferr.any():
                self._len[idx[r[ferr]]] = 0  # framing error: whatever message was in progress is lost
        self._receiving[idx] = receiving
        self._hunt[idx] = hunt + a0
        self._start[idx] = start + a0
        self._last_start[idx] = last + a0
        self._period[idx] = period
        self._bit[idx] = bit
        self._shift[idx] = shift
        self._pbit[idx] = pbit

    @staticmethod
    def _retime(
        r: np.ndarray,
        br: np.ndarray,
        b: np.ndarray,
        pbit: np.ndarray,
        start: np.ndarray,
        period: np.ndarray,
        d: np.ndarray,
    ) -> None:
        """Nudge the bit clock of channels r from the zero crossing of d between two unlike data bits."""
        tr = (br >= 1) & (b != pbit[r])
        if not tr.any():
            return
        rt, k, up = r[tr], br[tr], b[tr]
        expect = start[rt] + k * period[rt]
        j = np.floor(expect).astype(np.int64)
        inside = (j >= 1) & (j + 2 < d.shape[1])
        rt, k, up, expect, j = rt[inside], k[inside], up[inside], expect[inside], j[inside]
        sg = np.where(up, 1.0, -1.0)
        after = [sg * d[rt, j + o] > 0 for o in (-1, 0, 1, 2)]
        lo = np.where(
            ~after[1] & after[2],
            j,
            np.where(~after[0] & after[1], j - 1, np.where(~after[2] & after[3], j + 1, -1)),
        )
        ok = lo >= 0
        rt, k, expect, lo = rt[ok], k[ok], expect[ok], lo[ok]
        d0, d1 = d[rt, lo], d[rt, lo + 1]
        resid = np.clip(lo + d0 / np.where(d0 == d1, 1.0, d0 - d1) - expect, -1.5, 1.5)
        start[rt] += TRACK_PHASE_BIT * resid

    def _bytes(
        self,
        idx: np.ndarray,
        local: np.ndarray,
        value: npt.NDArray[np.int64],
        start: npt.NDArray[np.int64],
        end: npt.NDArray[np.int64],
        out: list[Message],
    ) -> None:
        """One received character on each of channels idx[local]."""
        ch = idx[local]
        byte = value.astype(np.uint8)
        gap = start - self._last_end[ch]
        self._last_end[ch] = end
        fresh = (gap >= MIN_MARK_BITS * SPB) & np.isin(byte, MESSAGE_TYPES)
        length = self._len[ch]
        # A message restarts on a fresh type byte; a long pause inside one loses it.
        length[fresh | (gap > MAX_PAUSE_BITS * SPB)] = 0
        take = fresh | (length > 0)
        ch, byte, length, fresh = ch[take], byte[take], length[take], fresh[take]
        if not ch.size:
            return
        self._msg_onset[ch[fresh]] = np.maximum(self._onset[ch[fresh]], self._msg_end[ch[fresh]])
        self._buf[ch, length] = byte
        length += 1
        self._len[ch] = length
        total = self._buf[ch, 1].astype(np.int32) + 3
        complete = (length >= 3) & (length == total)
        for c in ch[complete]:
            n = int(self._len[c])
            frame = self._buf[c, :n]
            self._len[c] = 0
            if int(frame.sum(dtype=np.uint32)) % 256 != 0:
                continue  # bad checksum: no message
            self._msg_end[c] = self._last_end[c]
            out.append(Message(int(c), bytes(frame[:-1]), int(self._msg_onset[c])))
