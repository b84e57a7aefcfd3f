"""Vectorised 1200-baud FSK receiver for caller ID (private to dsp.callerid).

Four stages, all struct-of-arrays over channels:

1. Gate. The input is cut on a fixed grid of CHUNK samples counted from the receiver's creation, so any split
   of a signal into blocks gives the same chunks. A chunk's mean square decides whether a channel is *active*;
   only active channels are demodulated. When a channel turns active, the previous chunk is demodulated too
   (its raw samples are kept), so the start of the carrier is found to the sample.
2. Demodulate. Two non-coherent correlators about one bit long (complex mixing at mark and space, moving sum
   by a cumulative sum, squared magnitude) give per sample the soft decision d = |mark|^2 - |space|^2 and the
   in-band energy e. Mixing tables are indexed by absolute sample number modulo CHUNK: every tone used has a
   period dividing CHUNK, so the tables are constant.
3. Bit clock. Each channel has a bit clock (phase and period, a second-order loop). Every zero crossing of d
   in a chunk votes, weighted by its slope, for where bit boundaries fall (a circular mean over the chunk);
   the clock follows, and the chunk's bits are decided all at once at clock ticks by interpolating d.
   Central offices keep their bit clock between characters, so the seizure's 300 transitions lock it and the
   message's transitions hold it; a noisy start edge never sets the timing of a whole character.
4. Frame. A UART (8-N-1, LSB first) as a transition table over (state, bit), stepped once per bit for all
   channels; complete characters go to a message assembler that starts a message only on a message-type
   byte after at least MIN_MARK_BITS of idle mark, and returns complete frames whose checksum is right.

Python loops run over the bits of a chunk (about 13) and over characters per chunk (at most 2), never over
channels or samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.levels import SAMPLE_RATE, dbm0_to_mean_square

CHUNK = 160  # internal grid (20 ms: half the per-chunk overhead of 10 ms); tone periods divide it
BAUD = 1200
SPB = SAMPLE_RATE / BAUD  # samples per bit, 6.667
# Correlator length in samples (about one bit) per tone pair: 1300/2100 Hz correlate less over 8 samples than
# over 7 (measured bit error rate with ideal timing at 8 dB SNR: 1.2e-4 against 4.6e-4).
CORR_LEN = {(1200.0, 2200.0): 7, (1300.0, 2100.0): 8}
# Bits are decided DECISION_OFFSET samples after the zero crossing of d that marks the bit's start.
DECISION_OFFSET = 3.5
LOOP_PHASE = 0.5  # share of a chunk's measured clock error applied to the phase
LOOP_RATE = 0.01  # share of it (per bit) applied to the period
MIN_VOTE = 0.5  # least total relative slope of a chunk's crossings that moves the clock
MAX_STEP = 1.5  # largest phase correction per chunk once locked, in samples
PMIN, PMAX = SPB * 0.97, SPB * 1.03  # senders are within 1 % (GR-30, EN 300 659)
MIN_MARK_BITS = 10  # idle mark needed before a message-type byte starts a message (GR-30 sends 180)
MAX_PAUSE_BITS = 12  # longer idle mark between two characters of a message loses the message
MAX_MESSAGE = 258  # type + length + 255 + checksum
GATE_DBM0 = -50.0  # a chunk quieter than this (mean square) leaves an idle channel asleep
CARRIER_DBM0 = -50.0  # level of a tone whose peak marks the onset of the carrier
MESSAGE_TYPES = (0x04, 0x80)  # SDMF call setup, MDMF call setup
_FAR = -(1 << 40)

GATE_STRIDE = 4
_GATE_MS = float(dbm0_to_mean_square(GATE_DBM0)) * CHUNK / GATE_STRIDE
# The carrier begins at the first sample whose magnitude reaches the peak of a tone at CARRIER_DBM0.
_ONSET_PEAK = float(np.sqrt(2.0 * dbm0_to_mean_square(CARRIER_DBM0)))

# UART as a table. States: 0 idle after mark (a space is a start bit), 1 idle after a framing error (wait for
# mark), 2..9 waiting for data bit 0..7, 10 waiting for the stop bit. Symbols: 0 space, 1 mark, 2 no bit.
# The one-bit machine below is compiled into tables that take UART_STEP bits at a time, so a chunk's ~27 bits
# take 4 table lookups for all channels at once.
_NEXT1 = np.zeros(33, dtype=np.intp)
_DATA1 = np.zeros(33, dtype=np.int32)  # bit to OR into the character
_START1 = np.zeros(33, dtype=bool)
_IDLE1 = np.zeros(33, dtype=np.int32)  # one more idle mark bit
_END1 = np.zeros(33, dtype=np.int8)  # 1 stop bit seen (character complete), 2 missing (framing error)
for _s in range(11):
    _NEXT1[_s * 3 + 2] = _s
    if _s <= 1:
        _NEXT1[_s * 3 + 1] = 0
        _IDLE1[_s * 3 + 1] = 1
        _NEXT1[_s * 3 + 0] = 2 if _s == 0 else 1
        _START1[_s * 3 + 0] = _s == 0
    elif _s <= 9:
        _NEXT1[_s * 3 + 0] = _NEXT1[_s * 3 + 1] = _s + 1
        _DATA1[_s * 3 + 1] = 1 << (_s - 2)
    else:
        _NEXT1[_s * 3 + 1], _END1[_s * 3 + 1] = 0, 1
        _NEXT1[_s * 3 + 0], _END1[_s * 3 + 0] = 1, 2

UART_STEP = 8
DEMOD_GROUP = 128  # channels demodulated together (work buffers of about 350 kB stay in cache)


def _compile_uart(step: int) -> tuple[np.ndarray, ...]:
    """Tables over (state, `step` symbols) from the one-bit machine, run for all entries at once. Within 8
    bits at most one character can end (it takes 10) and at most one start (after any end)."""
    nsym = 3**step
    entries = np.arange(11 * nsym)
    state = entries // nsym
    code = entries % nsym
    pre = np.zeros(entries.size, dtype=np.int32)
    post = np.zeros(entries.size, dtype=np.int32)
    start = np.zeros(entries.size, dtype=bool)
    idle = np.zeros(entries.size, dtype=np.int32)
    end = np.zeros(entries.size, dtype=np.int8)
    for i in range(step):
        k = state * 3 + (code // 3 ** (step - 1 - i)) % 3
        ended = end > 0
        pre |= np.where(ended, 0, _DATA1[k])
        post |= np.where(ended, _DATA1[k], 0)
        start |= _START1[k]
        idle += np.where(start, 0, _IDLE1[k])
        end = np.where(_END1[k] > 0, _END1[k], end).astype(np.int8)
        state = _NEXT1[k]
    return state.astype(np.intp), pre, post, start, idle, end


_NSYM = 3**UART_STEP
_POW = 3 ** np.arange(UART_STEP - 1, -1, -1)
_NEXT, _PRE, _POST, _START, _IDLE, _END = _compile_uart(UART_STEP)


@dataclass(frozen=True)
class Message:
    """A complete frame whose checksum is right (not yet parsed)."""

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
        self.channels = c = channels
        self._tabT = np.ascontiguousarray(_tables(mark_hz, space_hz).T)  # (4, CHUNK)
        self._L = L = CORR_LEN.get((float(mark_hz), float(space_hz)), 7)
        self._pending = np.zeros((c, CHUNK), dtype=np.int16)  # samples waiting for a full chunk
        self._npending = 0
        self._t0 = 0  # absolute index of the next chunk's first sample
        self._hist = np.zeros((c, L - 1), dtype=np.float32)  # the samples before the chunk
        g = min(c, DEMOD_GROUP)
        self._z = np.zeros((4, g, CHUNK + L - 1), dtype=np.float32)  # demodulator work buffers
        self._w = np.zeros((4, g, CHUNK), dtype=np.float32)
        self._prev16 = np.zeros((c, CHUNK), dtype=np.int16)  # the last chunk (onset lookback)
        self._active = np.zeros(c, dtype=bool)
        self._onset = np.zeros(c, dtype=np.int64)  # where the current activity episode's carrier began
        self._prev_d = np.zeros(c, dtype=np.float32)  # last soft decision of the previous window
        # bit clock
        self._phase = np.zeros(c)  # absolute time of a bit-start crossing of d
        self._period = np.full(c, SPB)
        self._next = np.zeros(c)  # absolute time of the next bit decision
        self._still = np.ones(c, dtype=bool)  # the last chunk had no transition
        # UART
        self._state = np.zeros(c, dtype=np.int8)
        self._shift = np.zeros(c, dtype=np.int32)
        self._idle = np.zeros(c, dtype=np.int32)  # idle mark bits since the last character
        self._gap = np.zeros(c, dtype=np.int32)  # idle mark bits before the current character
        # message assembly
        self._buf = np.zeros((c, MAX_MESSAGE), dtype=np.uint8)
        self._len = np.zeros(c, dtype=np.int32)
        self._msg_end = np.full(c, _FAR, dtype=np.int64)  # end of the last message completed
        self._msg_onset = np.zeros(c, dtype=np.int64)

    # ------------------------------------------------------------------ public
    def reset(self, channel: int) -> None:
        self._pending[channel] = 0
        self._hist[channel] = 0.0
        self._prev16[channel] = 0
        self._active[channel] = False
        self._sleep(np.array([channel]))

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
                i += take
                if self._npending < CHUNK:
                    break
                chunk = self._pending
                take = 0
            i += take
            self._npending = 0
            self._chunk(chunk, out)
        return out

    # ------------------------------------------------------------------ internals
    def _sleep(self, idx: np.ndarray) -> None:
        """Channels in idx stop being demodulated: forget any character or message in progress."""
        self._state[idx] = 1
        self._len[idx] = 0
        self._prev_d[idx] = 0.0
        self._period[idx] = SPB
        self._msg_end[idx] = _FAR

    def _chunk(self, x16: np.ndarray, out: list[Message]) -> None:
        t0 = self._t0
        # The gate looks at every GATE_STRIDE-th sample: enough to tell a -40 dBm0 tone from a -50 dBm0 floor.
        g = x16[:, ::GATE_STRIDE].astype(np.float32)
        loud = np.einsum("ij,ij->i", g, g) >= _GATE_MS
        # A channel is demodulated while its chunks are loud, plus one chunk after (the tail of a message).
        was = self._active
        self._active = loud
        run = np.flatnonzero(loud | was)
        if run.size:
            new = loud[run] & ~was[run]
            fresh = run[new]
            if fresh.size:
                self._wake(fresh, x16[fresh], t0)
            xe = np.empty((run.size, self._L - 1 + CHUNK), dtype=np.float32)
            xe[:, : self._L - 1] = self._hist[run]
            xe[:, self._L - 1 :] = x16[run]
            self._run(run, xe, t0, new, out)
        quiet = np.flatnonzero(was & ~loud)
        if quiet.size:
            self._sleep(quiet)
        # Every channel keeps the end of its chunk (correlator history) and the chunk itself (onset lookback).
        self._hist[:] = x16[:, CHUNK - self._L + 1 :]
        self._prev16[:] = x16
        self._t0 = t0 + CHUNK

    def _wake(self, idx: np.ndarray, x16: np.ndarray, t0: int) -> None:
        """Channels idx turn active at chunk t0: find where the signal began, in this chunk or the last."""
        both = np.abs(np.concatenate([self._prev16[idx], x16], axis=1).astype(np.int32))
        above = both > _ONSET_PEAK
        first = np.where(above.any(axis=1), above.argmax(axis=1), CHUNK)
        self._onset[idx] = t0 - CHUNK + first
        self._state[idx] = 1  # wait for mark
        self._idle[idx] = 0
        self._period[idx] = SPB
        self._phase[idx] = t0
        self._still[idx] = True

    def _demod(self, xe: np.ndarray, a0: int) -> np.ndarray:
        """Soft decision d = |mark|^2 - |space|^2 for every sample of xe but the first L-1 (its history),
        in columns 1.. of the result (column 0 is the caller's).

        Works in preallocated buffers (no fresh pages per chunk), in groups of channels small enough to stay
        in cache."""
        n, m, L = xe.shape[0], xe.shape[1], self._L
        tab = self._tabT[:, None, (a0 - (L - 1) + np.arange(m)) % CHUNK]
        d = np.empty((n, m - L + 2), dtype=np.float32)  # column 0 left for the caller
        for g in range(0, n, DEMOD_GROUP):
            h = min(n - g, DEMOD_GROUP)
            z = np.multiply(tab, xe[None, g : g + h], out=self._z[:, :h, :m])
            w = self._w[:, :h, : m - L + 1]
            np.copyto(w, z[:, :, L - 1 :])
            for k in range(1, L):  # moving sum over L samples (in place: cheaper than a cumulative sum)
                w += z[:, :, L - 1 - k : m - k]
            w *= w
            w[0] += w[1]
            w[2] += w[3]
            np.subtract(w[0], w[2], out=d[g : g + h, 1:])
        return d

    def _clock(self, idx: np.ndarray, dd: np.ndarray, a0: int) -> None:
        """Update the bit clocks of idx from the zero crossings of d (dd = previous d, then this window's)."""
        pos = dd > 0
        rows, cols = np.nonzero(pos[:, 1:] != pos[:, :-1])  # crossing between dd[c] and dd[c + 1]
        if not rows.size:
            self._still[idx] = True
            return
        d0, d1 = dd[rows, cols], dd[rows, cols + 1]
        slope = np.abs(d0 - d1)
        at = a0 - 1 + cols + d0 / slope  # absolute time of the crossing
        # Votes weigh by slope relative to the window's largest |d|: the few steep crossings between bits
        # outvote the many shallow ones of noise (after the carrier ends, or in long runs of one bit).
        big = np.maximum(np.maximum(dd.max(axis=1), -dd.min(axis=1)), 1e-30)
        slope = slope / big[rows]
        ch = idx[rows]
        n = idx.size
        # Each crossing's offset from the clock's grid, in bits, wrapped to [-1/2, 1/2].
        u = (at - self._phase[ch]) / self._period[ch]
        u -= np.rint(u)
        weight = np.bincount(rows, slope, minlength=n)
        has = weight >= MIN_VOTE
        err = np.bincount(rows, slope * u, minlength=n) / np.maximum(weight, 1e-30)
        # After a chunk without transitions (idle mark) the clock is acquired afresh from this chunk, the
        # way a UART restarts on a start bit; a skipped or doubled tick there only touches idle mark. The
        # offsets are then anywhere in the bit, so they are averaged as angles (a circular mean).
        acquire = has & self._still[idx]
        if acquire.any():
            sel = acquire[rows]
            ang = (2.0 * np.pi) * u[sel]
            cs = np.bincount(rows[sel], slope[sel] * np.cos(ang), minlength=n)
            sn = np.bincount(rows[sel], slope[sel] * np.sin(ang), minlength=n)
            err = np.where(acquire, np.arctan2(sn, cs) / (2.0 * np.pi), err)
        err *= self._period[idx]  # samples
        track = has & ~acquire
        step = np.where(acquire, err, np.clip(LOOP_PHASE * err, -MAX_STEP, MAX_STEP))
        self._phase[idx] += np.where(has, step, 0.0)
        self._period[idx] = np.clip(self._period[idx] + np.where(track, LOOP_RATE * err, 0.0), PMIN, PMAX)
        self._still[idx] = ~has
        # Keep the phase reference near the end of the window (float precision over long runs).
        end = a0 + dd.shape[1] - 1
        self._phase[idx] += np.floor((end - self._phase[idx]) / self._period[idx]) * self._period[idx]

    def _run(self, idx: np.ndarray, xe: np.ndarray, a0: int, new: np.ndarray, out: list[Message]) -> None:
        """Demodulate, clock and frame channels idx (new: just woken) over samples a0 .. a0 + width - 1."""
        dd = self._demod(xe, a0)  # dd[:, j + 1] is the sample a0 + j; dd[:, 0] the one before
        d = dd[:, 1:]
        width = d.shape[1]
        dd[:, 0] = np.where(new, d[:, 0], self._prev_d[idx])  # no crossing into a just-woken channel
        self._clock(idx, dd, a0)
        self._prev_d[idx] = d[:, -1]

        # Decisions: ticks at phase + DECISION_OFFSET + k * period not yet taken, inside the window.
        phase, period = self._phase[idx], self._period[idx]
        base = phase + DECISION_OFFSET
        nxt = np.where(new, a0 - 1, self._next[idx])
        nxt = base + np.where(new, np.ceil((nxt - base) / period), np.round((nxt - base) / period)) * period
        kmax = -(-(int(np.ceil(width / SPB * 1.04)) + 1) // UART_STEP) * UART_STEP
        t = nxt[:, None] + np.arange(kmax)[None, :] * period[:, None]  # (n, k) absolute tick times
        rel = t - (a0 - 1)  # position in dd
        valid = rel < width  # dd[i + 1] must exist
        i0 = np.clip(rel.astype(np.int64), 0, width - 1)
        frac = np.clip(rel - i0, 0.0, 1.0).astype(np.float32)
        r = np.arange(idx.size)[:, None]
        soft = dd[r, i0] * (1.0 - frac) + dd[r, i0 + 1] * frac
        sym = np.where(valid, soft > 0, 2)
        count = valid.sum(axis=1)
        self._next[idx] = nxt + count * period

        # UART: one table step per UART_STEP bits for all channels.
        nk = int(count.max(initial=0))
        steps = -(-nk // UART_STEP)
        code = sym[:, : steps * UART_STEP].reshape(idx.size, steps, UART_STEP) @ _POW  # past the end: 2
        state = self._state[idx].astype(np.intp)
        shift = self._shift[idx]
        idle = self._idle[idx]
        gap = self._gap[idx]
        ev_rows, ev_byte, ev_gap, ev_good, ev_time = [], [], [], [], []
        for j in range(steps):
            s = state * _NSYM + code[:, j]
            end = _END[s]
            pre = shift | _PRE[s]
            if end.any():
                rr = np.flatnonzero(end)
                ev_rows.append(rr)
                ev_byte.append(pre[rr] & 0xFF)
                ev_gap.append(gap[rr])
                ev_good.append(end[rr] == 1)
                ev_time.append(t[rr, j * UART_STEP])
                shift = np.where(end > 0, _POST[s], pre)
            else:
                shift = pre
            st = _START[s]
            gap = np.where(st, idle + _IDLE[s], gap)
            idle = np.where(st, 0, idle + _IDLE[s])
            state = _NEXT[s]
        self._state[idx] = state
        self._shift[idx] = shift
        self._idle[idx] = idle
        self._gap[idx] = gap
        if ev_rows:
            self._characters(
                idx,
                np.concatenate(ev_rows),
                np.concatenate(ev_byte),
                np.concatenate(ev_gap),
                np.concatenate(ev_good),
                np.concatenate(ev_time),
                out,
            )

    def _characters(
        self,
        idx: np.ndarray,
        rows: np.ndarray,
        byte: np.ndarray,
        gap: np.ndarray,
        good: np.ndarray,
        when: np.ndarray,
        out: list[Message],
    ) -> None:
        """Characters (in time order per channel) to the message assemblers, one round per rank."""
        order = np.argsort(rows, kind="stable")
        rows, byte, gap, good, when = rows[order], byte[order], gap[order], good[order], when[order]
        first = np.concatenate(([True], rows[1:] != rows[:-1]))
        start_of = np.maximum.accumulate(np.where(first, np.arange(rows.size), 0))
        rank = np.arange(rows.size) - start_of
        for k in range(int(rank.max()) + 1):
            sel = rank == k
            self._assemble(idx[rows[sel]], byte[sel], gap[sel], good[sel], when[sel], out)

    def _assemble(
        self,
        ch: np.ndarray,
        byte: np.ndarray,
        gap: np.ndarray,
        good: np.ndarray,
        when: np.ndarray,
        out: list[Message],
    ) -> None:
        """One character (or framing error) on each of channels ch."""
        length = self._len[ch]
        fresh = good & (gap >= MIN_MARK_BITS) & ((byte == MESSAGE_TYPES[0]) | (byte == MESSAGE_TYPES[1]))
        # A framing error or a long pause loses the message in progress; a fresh type byte restarts one.
        length[~good | fresh | (gap > MAX_PAUSE_BITS)] = 0
        self._len[ch] = length
        take = fresh | (length > 0)
        ch, byte, length, fresh, when = ch[take], byte[take], length[take], fresh[take], when[take]
        if not ch.size:
            return
        self._msg_onset[ch[fresh]] = np.maximum(self._onset[ch[fresh]], self._msg_end[ch[fresh]])
        self._buf[ch, length] = byte
        length += 1
        self._len[ch] = length
        complete = (length >= 3) & (length == self._buf[ch, 1].astype(np.int32) + 3)
        if not complete.any():
            return
        done, ends, lens = ch[complete], when[complete], length[complete]
        self._len[done] = 0
        frames = self._buf[done]
        total = np.where(np.arange(MAX_MESSAGE) < lens[:, None], frames, 0).sum(axis=1)
        ok = total % 256 == 0  # a bad checksum gives no message
        self._msg_end[done[ok]] = ends[ok].astype(np.int64)
        onsets = self._msg_onset[done]
        for i in np.flatnonzero(ok):
            out.append(Message(int(done[i]), frames[i, : lens[i] - 1].tobytes(), int(onsets[i])))
