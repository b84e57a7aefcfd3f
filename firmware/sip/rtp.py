"""RTP/RTCP media for SIP legs (RFC 3550, RFC 3551 G.711, RFC 4733 telephone-events), sans-I/O.

`MediaHub` holds every SIP leg's media state as arrays shaped (legs, ...), the shape the engine works in:

    rx = hub.pull(now)                  # (legs, 80) int16: exactly one tick of audio per leg, always
    packets = hub.push_tx(tx, now)      # tx (legs, 80) int16 from the engine -> [(leg, bytes)] to send
    events = hub.receive(leg, data, now)  # one datagram from the network (RTP or RTCP)

The jitter buffer is a ring per leg indexed by RTP timestamp modulo its size; it is adaptive: the playout
delay follows the jitter the leg measures, and whatever the network does, `pull` hands out 80 samples per
leg per tick:
- every audio packet's *headroom* h = its timestamp - the playout point when it arrives is recorded in
  sliding windows (min and max over the last 3-6 s). A packet with h < 0 came too late; the spread of h is
  the jitter the buffer must absorb;
- grows fast: when the buffer runs dry, playout holds (the tick is concealed without consuming audio), so
  the packet that comes late plays instead of being dropped; when the windowed minimum headroom is short of
  a small margin (late or reordered packets), a whole pitch-synchronous block is inserted at once (expand);
- shrinks slowly: when even the earliest-needed packets of the last seconds had headroom to spare, the
  buffer drops up to half a tick per tick during silence, and 1-2 samples per tick (a 1.25-2.5 % time-scale
  change, linear interpolation) during talk; the delay stays within [min_ms, max_ms] (20-200 ms by default);
- clock drift (+-100 ppm and far more) is the same control seen slowly: the headroom creeps and is taken
  back a sample at a time, mostly in silence;
- reordered packets land in their slot; duplicates are dropped and counted (also after they played);
- a talk spurt after silence, a peer that paused or whose timestamps jumped is re-anchored: its first packet
  gets the headroom the measured jitter calls for;
- missing samples are concealed (PLC) in the manner of G.711 Appendix I: the last pitch period found by
  autocorrelation in the last 20 ms is repeated (phase-continuous, so a tone stays a tone), attenuated
  20 % per 10 ms after the first 10 ms, silent after 60 ms.
All of that is numpy over the (legs, ...) arrays; per packet there is only parsing and a few scalar updates.

RTCP (RFC 3550 6.4, A.1, A.3, A.8): receiver statistics per leg (extended highest sequence, cumulative and
fraction lost, interarrival jitter), SR/RR + SDES CNAME compound packets every `rtcp_interval`, and the
peer's reports parsed; `hub.stats(leg)` gives the figures the CDR keeps.
"""

from __future__ import annotations

import contextlib
import logging
import random
import struct
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dsp import g711

log = logging.getLogger(__name__)

TICK = 80  # samples per engine tick (10 ms at 8 kHz)
RATE = 8000
NTP_EPOCH_OFFSET = 2208988800
DTMF_EVENTS = "0123456789*#ABCD"


class RtpError(ValueError):
    """A datagram that is not usable RTP/RTCP."""


@dataclass(frozen=True)
class RtpPacket:
    pt: int
    seq: int
    ts: int
    ssrc: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    if len(data) < 12:
        raise RtpError("RTP packet shorter than its header")
    b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
    if b0 >> 6 != 2:
        raise RtpError(f"RTP version {b0 >> 6}")
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension
        if len(data) < offset + 4:
            raise RtpError("truncated RTP header extension")
        (ext_words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * ext_words
    end = len(data)
    if b0 & 0x20:  # padding
        if end <= offset or data[-1] == 0 or data[-1] > end - offset:
            raise RtpError("bad RTP padding")
        end -= data[-1]
    if offset > end:
        raise RtpError("truncated RTP packet")
    return RtpPacket(b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), bytes(data[offset:end]))


def build_rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return (
        struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        + payload
    )


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 4: RTCP packet types 200-204 sit where RTP payload types 72-76 (with marker) would."""
    return len(data) >= 2 and 200 <= data[1] <= 204


# ---------------------------------------------------------------------------------------------------------
# RFC 4733


def parse_telephone_event(payload: bytes) -> tuple[int, bool, int, int]:
    """-> (event, end, volume, duration)."""
    if len(payload) < 4:
        raise RtpError("telephone-event payload shorter than 4 bytes")
    event, flags, duration = struct.unpack_from("!BBH", payload)
    return event, bool(flags & 0x80), flags & 0x3F, duration


def telephone_event_payload(event: int, end: bool, duration: int, volume: int = 10) -> bytes:
    return struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), min(duration, 0xFFFF))


@dataclass(frozen=True)
class DtmfEvent:
    leg: int
    digit: str
    duration_ms: float | None  # None at the start of the event, the length when it ended


# ---------------------------------------------------------------------------------------------------------
# statistics (RFC 3550 A.1, A.3, A.8)


@dataclass
class ReceiverStats:
    ssrc: int | None = None
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    transit: float | None = None
    jitter: float = 0.0  # in timestamp units
    duplicates: int = 0
    late: int = 0
    bad: int = 0
    last_sr_ntp: int = 0  # middle 32 bits of the last SR's NTP time
    last_sr_at: float | None = None

    def update(self, seq: int, ts: int, arrival: float) -> None:
        if self.ssrc is None or self.received == 0:
            self.base_seq = self.max_seq = seq
            self.cycles = 0
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if delta < 0x8000:
                if seq < self.max_seq:
                    self.cycles += 0x10000
                self.max_seq = seq
        self.received += 1
        transit = arrival * RATE - ts
        if self.transit is not None:
            d = abs(transit - self.transit)
            if d < 2**31:  # ignore timestamp jumps
                self.jitter += (d - self.jitter) / 16.0
        self.transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.received else 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def report_block(self, now: float) -> tuple[int, int, int, int, int, int]:
        """(fraction lost, cumulative lost, extended max seq, jitter, LSR, DLSR) for an RR block."""
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (
            0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        )
        dlsr = 0 if self.last_sr_at is None else int((now - self.last_sr_at) * 65536)
        return (
            min(fraction, 255),
            min(self.lost, 0x7FFFFF),
            self.extended_max & 0xFFFFFFFF,
            int(self.jitter),
            self.last_sr_ntp,
            dlsr,
        )


@dataclass
class LegStats:
    """What the CDR keeps for one leg."""

    packets_sent: int = 0
    octets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    jitter_ms: float = 0.0
    late: int = 0
    duplicates: int = 0
    concealed_ms: float = 0.0
    buffer_ms: float = 0.0  # the jitter buffer's playout delay now (headroom of the earliest packets)
    underruns: int = 0  # times the buffer ran dry (playout held and concealed until audio came)
    inserted_ms: float = 0.0  # audio added (expand, stretch) to grow the delay
    dropped_ms: float = 0.0  # audio taken out (silence, compress, overflow) to shrink it
    remote_fraction_lost: float | None = None  # from the peer's reports about our stream
    remote_jitter_ms: float | None = None


# ---------------------------------------------------------------------------------------------------------


@dataclass
class LegConfig:
    remote: tuple[str, int]
    codec: str = "PCMA"  # PCMA | PCMU
    pt: int = 8
    dtmf_pt: int | None = 101
    ptime: int = 20
    send: bool = True
    receive: bool = True


@dataclass
class _Leg:
    config: LegConfig
    ssrc: int
    seq: int
    ts: int
    stats: ReceiverStats = field(default_factory=ReceiverStats)
    sent_packets: int = 0
    sent_octets: int = 0
    next_rtcp: float = 0.0
    dtmf_queue: list[tuple[int, int]] = field(default_factory=list)  # (event, duration in samples)
    dtmf_active: tuple[int, int, int, int] | None = None  # (event, start ts, elapsed, total)
    dtmf_end_sent: int = 0
    rx_event_ts: int | None = None
    rx_event_end: bool = False
    remote_fraction_lost: float | None = None
    remote_jitter: float | None = None
    cname: str = ""


class MediaHub:
    """Media state of up to `max_legs` SIP legs; see the module docstring."""

    def __init__(
        self,
        max_legs: int,
        capacity: int = 4096,
        target_ms: float = 40.0,
        rtcp_interval: float = 5.0,
        seed: int = 0,
        min_ms: float = 20.0,
        max_ms: float = 200.0,
        window_s: float = 3.0,
    ) -> None:
        """`target_ms` is the delay a leg starts with, before it has measured anything; the adaptive delay
        then stays within [`min_ms`, `max_ms`]; `window_s` is how long a jitter peak is remembered (between
        one and two windows)."""
        if capacity & (capacity - 1) or capacity < 4 * TICK:
            raise ValueError("capacity must be a power of two of at least 4 ticks")
        if not 0 < min_ms <= target_ms <= max_ms:
            raise ValueError("need 0 < min_ms <= target_ms <= max_ms")
        self.max_legs = max_legs
        self.capacity = capacity
        self.initial = int(target_ms * RATE / 1000)
        self.min_delay = int(min_ms * RATE / 1000)
        self.max_delay = int(max_ms * RATE / 1000)
        if capacity < 2 * self.max_delay + 8 * TICK:
            raise ValueError("capacity too small for max_ms")
        self.window_ticks = max(1, int(window_s * 100))
        self.rtcp_interval = rtcp_interval
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.ring = np.zeros((max_legs, capacity), np.int16)
        # per sample of the ring: 0 nothing, 1 received and not played yet, 2 played from a packet
        self.slot = np.zeros((max_legs, capacity), np.int8)
        self.read_ts = np.zeros(max_legs, np.int64)  # RTP timestamp of the next sample to play
        self.newest = np.zeros(max_legs, np.int64)  # one past the newest sample held, relative units
        self.started = np.zeros(max_legs, bool)
        self.active = np.zeros(max_legs, bool)
        self.depth = np.zeros(max_legs, np.float64)  # smoothed buffer depth, samples
        # headroom of arriving packets (samples) in two sliding windows: min and max, current and previous
        self.hmin_cur = np.full(max_legs, _BIG, np.int64)
        self.hmin_prev = np.full(max_legs, _BIG, np.int64)
        self.hmax_cur = np.full(max_legs, -_BIG, np.int64)
        self.hmax_prev = np.full(max_legs, -_BIG, np.int64)
        # headrooms of this tick's packets, kept in plain lists (cheap per packet), merged in `pull`
        self._pmin: list[int] = [_BIG] * max_legs
        self._pmax: list[int] = [-_BIG] * max_legs
        self.hist = np.zeros((max_legs, 2 * TICK), np.int16)  # the last 20 ms played, for PLC
        self.held = np.zeros(max_legs, np.int64)  # samples of playout held since the buffer ran dry
        self.preroll = np.zeros(max_legs, np.int64)  # samples still to wait before a new stream plays
        self.dry_spells = np.zeros(max_legs, np.int64)  # times the buffer ran dry (underrun events)
        self.lost_ticks = np.zeros(max_legs, np.int32)
        self.concealed = np.zeros(max_legs, np.int64)  # samples
        self.underruns = np.zeros(max_legs, np.int64)  # ticks
        self.inserted = np.zeros(max_legs, np.int64)  # samples
        self.dropped = np.zeros(max_legs, np.int64)  # samples
        self._ticks = 0
        self.tx_buf = np.zeros((max_legs, 8 * 40), np.uint8)  # up to 40 ms of encoded audio
        self.tx_fill = np.zeros(max_legs, np.int32)
        self.is_alaw = np.ones(max_legs, bool)
        self.legs: dict[int, _Leg] = {}
        self._free: deque[int] = deque(range(max_legs))
        self._pending: list[tuple[int, int, bool, bytes]] = []  # (leg, ts, A-law?, payload) this tick
        self._pending_keys: set[tuple[int, int]] = set()
        self.overflows = 0

    # -- legs ------------------------------------------------------------------------------------------

    def open(self, config: LegConfig, now: float, leg: int | None = None) -> int:
        with self._lock:
            if leg is None:
                # least recently freed first: a leg index (an engine row) is not reused while call
                # control may still be clearing the call that had it
                while self._free and self.active[self._free[0]]:
                    self._free.popleft()
                if not self._free:
                    raise RuntimeError("no free media leg")
                leg = self._free.popleft()
            elif self.active[leg]:
                raise RuntimeError(f"media leg {leg} already open")
            else:
                with contextlib.suppress(ValueError):
                    self._free.remove(leg)
            self._reset_rx(leg)
            self.tx_fill[leg] = 0
            self.active[leg] = True
            self.is_alaw[leg] = config.codec == "PCMA"
            ssrc = self._rng.randrange(1, 2**32 - 1)
            self.legs[leg] = _Leg(
                config,
                ssrc,
                self._rng.getrandbits(16),
                self._rng.getrandbits(32),
                next_rtcp=now + self.rtcp_interval,
                cname=f"callbox-{leg}@{ssrc:08x}",
            )
            return leg

    def update(self, leg: int, config: LegConfig) -> None:
        """New remote address/codec/direction after a re-INVITE (same SSRC, sequence continues)."""
        with self._lock:
            self.legs[leg].config = config
            self.is_alaw[leg] = config.codec == "PCMA"

    def close(self, leg: int) -> LegStats:
        with self._lock:
            stats = self._stats(leg)
            self.active[leg] = False
            self.legs.pop(leg, None)
            self._free.append(leg)
            self._reset_rx(leg)
            return stats

    def _reset_rx(self, leg: int) -> None:
        self._resync(leg)
        self.ring[leg] = 0
        self.depth[leg] = 0
        self.hist[leg] = 0
        self.lost_ticks[leg] = 0
        self.held[leg] = 0
        self.preroll[leg] = 0
        self.dry_spells[leg] = 0
        self.concealed[leg] = 0
        self.underruns[leg] = 0
        self.inserted[leg] = 0
        self.dropped[leg] = 0

    def stats(self, leg: int) -> LegStats:
        with self._lock:
            return self._stats(leg)

    def _stats(self, leg: int) -> LegStats:
        st = self.legs[leg]
        s = st.stats
        return LegStats(
            packets_sent=st.sent_packets,
            octets_sent=st.sent_octets,
            packets_received=s.received,
            packets_lost=s.lost,
            jitter_ms=s.jitter / RATE * 1000,
            late=s.late,
            duplicates=s.duplicates,
            concealed_ms=float(self.concealed[leg]) / RATE * 1000,
            buffer_ms=self._delay(leg) / RATE * 1000,
            underruns=int(self.dry_spells[leg]),
            inserted_ms=float(self.inserted[leg]) / RATE * 1000,
            dropped_ms=float(self.dropped[leg]) / RATE * 1000,
            remote_fraction_lost=st.remote_fraction_lost,
            remote_jitter_ms=st.remote_jitter,
        )

    # -- receive -----------------------------------------------------------------------------------------

    def receive(self, leg: int, data: bytes, now: float) -> list[DtmfEvent]:
        """One datagram for `leg`. Malformed data is counted and dropped (RtpError is not raised)."""
        with self._lock:
            st = self.legs.get(leg)
            if st is None:
                return []
            try:
                if is_rtcp(data):
                    self._receive_rtcp(st, data, now)
                    return []
                pkt = parse_rtp(data)
            except (RtpError, struct.error) as exc:
                if st is not None:
                    st.stats.bad += 1
                log.debug("leg %d: bad media datagram: %s", leg, exc)
                return []
            if not st.config.receive:
                return []
            if st.stats.ssrc != pkt.ssrc:
                if st.stats.ssrc is not None:
                    log.info("leg %d: SSRC changed %08x -> %08x", leg, st.stats.ssrc, pkt.ssrc)
                    self._resync(leg)
                st.stats = ReceiverStats(ssrc=pkt.ssrc, duplicates=st.stats.duplicates, late=st.stats.late)
            st.stats.update(pkt.seq, pkt.ts, now)
            if pkt.pt == st.config.pt or pkt.pt in (0, 8):
                self._push_audio(leg, st, pkt)
                return []
            if st.config.dtmf_pt is not None and pkt.pt == st.config.dtmf_pt:
                return self._receive_event(leg, st, pkt)
            st.stats.bad += 1
            return []

    def _resync(self, leg: int) -> None:
        """Forget the leg's buffered audio and timeline (a new SSRC, a new stream)."""
        self.slot[leg] = 0
        self.started[leg] = False
        self.hmin_cur[leg] = self.hmin_prev[leg] = _BIG
        self.hmax_cur[leg] = self.hmax_prev[leg] = -_BIG
        self._pmin[leg], self._pmax[leg] = _BIG, -_BIG
        if any(item[0] == leg for item in self._pending):
            self._pending = [item for item in self._pending if item[0] != leg]
            self._pending_keys = {(item[0], item[1]) for item in self._pending}

    def _delay(self, leg: int) -> int:
        """The playout delay now: the headroom the earliest packets of the last seconds had, samples."""
        hi = max(int(self.hmax_cur[leg]), int(self.hmax_prev[leg]), self._pmax[leg])
        return max(0, hi) if hi > -_BIG else 0

    def _resume_headroom(self, leg: int) -> int:
        """Headroom for the first packet of a talk spurt: the jitter spread measured so far plus a margin,
        so that later packets of the spurt arriving slower still play."""
        lo = min(int(self.hmin_cur[leg]), int(self.hmin_prev[leg]), self._pmin[leg])
        if lo >= _BIG:
            return self.initial
        hi = max(int(self.hmax_cur[leg]), int(self.hmax_prev[leg]), self._pmax[leg])
        return min(max(hi - lo + _MARGIN_GROW, self.min_delay), self.max_delay)

    def _reanchor(self, leg: int, ts: int, headroom: int) -> None:
        """Move the playout point so that timestamp `ts` has `headroom` samples to go; the windows move
        with it (they are headrooms relative to the playout point)."""
        read = int(self.read_ts[leg])
        shift = _signed32(ts - headroom - read)
        self.read_ts[leg] = read + shift
        self.newest[leg] = read + shift
        self.slot[leg] = 0
        if self._pmin[leg] < _BIG:
            self._pmin[leg] -= shift
        if self._pmax[leg] > -_BIG:
            self._pmax[leg] -= shift
        if self.hmin_cur[leg] < _BIG:
            self.hmin_cur[leg] -= shift
            self.hmax_cur[leg] -= shift
        if self.hmin_prev[leg] < _BIG:
            self.hmin_prev[leg] -= shift
            self.hmax_prev[leg] -= shift

    def _push_audio(self, leg: int, st: _Leg, pkt: RtpPacket) -> None:
        """Place one packet's samples by timestamp. Only the bookkeeping happens here; the samples are
        decoded and written for all packets of a tick at once when `pull` runs (`_flush_pending`)."""
        n = len(pkt.payload)
        if n == 0 or n > 4 * TICK * 4:
            st.stats.bad += 1
            return
        ts = pkt.ts
        mask = self.capacity - 1
        if not self.started[leg]:
            # a new stream: play it after `initial` samples of silence (not counted as concealment)
            self.started[leg] = True
            self.read_ts[leg] = ts
            self.newest[leg] = ts
            self.preroll[leg] = self.initial
            self.held[leg] = 0
        read = int(self.read_ts[leg])
        delta = _signed32(ts - read)  # this packet's headroom
        if _signed32(int(self.newest[leg]) - read) <= 0:
            # the buffer is dry: a talk spurt starts, the peer paused or jumped, or a loss burst ends;
            # playout is held meanwhile, so a packet that is merely late fits where it belongs
            if delta < -self.max_delay or delta > self.capacity // 2:  # timestamps jumped
                resume = self._resume_headroom(leg)
                self._reanchor(leg, ts, resume)
                delta = resume
            elif delta > 0:
                # the time spent holding already stood in for what is missing before this packet (a
                # loss, or the silence before a talk spurt): the packet keeps the headroom it would have
                # had without the hold, at most what the measured jitter calls for
                h = min(max(delta - int(self.held[leg]), 0), self._resume_headroom(leg))
                if h != delta:
                    self._reanchor(leg, ts, h)
                    delta = h
        if delta < 0:
            if self.slot[leg, ts & mask] and self.slot[leg, (ts + n - 1) & mask]:
                st.stats.duplicates += 1  # a copy of what already played (or is playing)
            else:
                st.stats.late += 1
                if delta < self._pmin[leg]:
                    self._pmin[leg] = delta
            return
        if delta + n > self.capacity - 4 * TICK:
            # too far ahead (a timestamp jump while playing): start again from this packet
            self._resync(leg)
            self.started[leg] = True
            self.read_ts[leg] = ts
            self.newest[leg] = ts
            self.preroll[leg] = self.initial
            delta = 0
            self.overflows += 1
        key = (leg, ts)
        if key in self._pending_keys or (
            self.slot[leg, ts & mask] == 1 and self.slot[leg, (ts + n - 1) & mask] == 1
        ):
            st.stats.duplicates += 1
            return
        if delta < self._pmin[leg]:
            self._pmin[leg] = delta
        if delta > self._pmax[leg]:
            self._pmax[leg] = delta
        self._pending.append((leg, ts, pkt.pt == 8, pkt.payload))
        self._pending_keys.add(key)
        if _signed32(ts + n - int(self.newest[leg])) > 0:
            self.newest[leg] += _signed32(ts + n - int(self.newest[leg]))

    def _flush_pending(self) -> None:
        """Decode and write every packet received since the last tick, vectorised per payload size."""
        pending, self._pending = self._pending, []
        self._pending_keys.clear()
        groups: dict[int, list[tuple[int, int, bool, bytes]]] = {}
        for item in pending:
            groups.setdefault(len(item[3]), []).append(item)
        mask = self.capacity - 1
        for n, items in groups.items():
            k = len(items)
            legs = np.fromiter((i[0] for i in items), np.intp, k)
            ts = np.fromiter((i[1] for i in items), np.int64, k)
            alaw = np.fromiter((i[2] for i in items), bool, k)
            codes = np.frombuffer(b"".join(i[3] for i in items), np.uint8).reshape(k, n)
            if alaw.all():
                pcm = g711.alaw_decode(codes)
            elif not alaw.any():
                pcm = g711.ulaw_decode(codes)
            else:
                pcm = np.where(alaw[:, None], g711.alaw_decode(codes), g711.ulaw_decode(codes))
            idx = (ts[:, None] + np.arange(n)[None, :]) & mask
            rows = legs[:, None]
            self.ring[rows, idx] = pcm
            self.slot[rows, idx] = 1

    def _receive_event(self, leg: int, st: _Leg, pkt: RtpPacket) -> list[DtmfEvent]:
        try:
            event, end, _vol, duration = parse_telephone_event(pkt.payload)
        except RtpError:
            st.stats.bad += 1
            return []
        if event >= len(DTMF_EVENTS):
            return []  # other telephone events (flash, tones) are not DTMF digits
        digit = DTMF_EVENTS[event]
        out: list[DtmfEvent] = []
        if st.rx_event_ts != pkt.ts:
            st.rx_event_ts = pkt.ts
            st.rx_event_end = False
            out.append(DtmfEvent(leg, digit, None))
        if end and not st.rx_event_end:
            st.rx_event_end = True
            out.append(DtmfEvent(leg, digit, duration / RATE * 1000))
        return out

    def _receive_rtcp(self, st: _Leg, data: bytes, now: float) -> None:
        offset = 0
        while offset + 4 <= len(data):
            b0, pt, length = struct.unpack_from("!BBH", data, offset)
            if b0 >> 6 != 2:
                raise RtpError("RTCP version")
            end = offset + 4 * (length + 1)
            if end > len(data):
                raise RtpError("truncated RTCP")
            count = b0 & 0x1F
            blocks_at = offset + 8
            if pt == 200:  # SR
                if end - offset < 28:
                    raise RtpError("short SR")
                ntp_hi, ntp_lo = struct.unpack_from("!II", data, offset + 8)
                st.stats.last_sr_ntp = ((ntp_hi & 0xFFFF) << 16) | (ntp_lo >> 16)
                st.stats.last_sr_at = now
                blocks_at = offset + 28
            if pt in (200, 201):
                for i in range(count):
                    at = blocks_at + 24 * i
                    if at + 24 > end:
                        raise RtpError("truncated report block")
                    ssrc, lost_word, _ext, jitter = struct.unpack_from("!IIII", data, at)
                    if ssrc == st.ssrc:
                        st.remote_fraction_lost = (lost_word >> 24) / 256.0
                        st.remote_jitter = jitter / RATE * 1000
            offset = end

    # -- the tick ----------------------------------------------------------------------------------------

    def pull(self, now: float | None = None) -> np.ndarray:
        """One tick (80 samples) per leg, int16 (legs, 80); silence for legs not playing."""
        del now
        mask = self.capacity - 1
        with self._lock:
            if self._pending:
                self._flush_pending()
            if self._pmin.count(_BIG) != self.max_legs:
                np.minimum(self.hmin_cur, np.array(self._pmin, np.int64), out=self.hmin_cur)
                np.maximum(self.hmax_cur, np.array(self._pmax, np.int64), out=self.hmax_cur)
                self._pmin = [_BIG] * self.max_legs
                self._pmax = [-_BIG] * self.max_legs
            self._ticks += 1
            if self._ticks % self.window_ticks == 0:
                self._rotate_windows()
            rows = np.flatnonzero(self.active & self.started)
            out = np.zeros((self.max_legs, TICK), np.int16)
            if rows.size == 0:
                return out
            ahead = _signed32_array(self.newest[rows] - self.read_ts[rows])
            over = ahead - (self.max_delay + 4 * TICK)
            if (over > 0).any():  # a burst after a stall: drop the oldest audio beyond the bound
                for leg, n in zip(rows[over > 0].tolist(), over[over > 0].tolist(), strict=True):
                    self._skip(leg, n)
                ahead = _signed32_array(self.newest[rows] - self.read_ts[rows])
            read = self.read_ts[rows]
            wait = self.preroll[rows] > 0
            if wait.any():
                self.preroll[rows[wait]] -= TICK
                self._shift_windows(rows[wait], np.full(int(wait.sum()), -TICK))
                rows, read, ahead = rows[~wait], read[~wait], ahead[~wait]
                if rows.size == 0:
                    return out
            self.depth[rows] += (np.maximum(ahead, 0) - self.depth[rows]) * 0.02
            # the control: headroom windows -> grow (deficit) or shrink (excess), in samples
            hmin = np.minimum(self.hmin_cur[rows], self.hmin_prev[rows])
            hmax = np.maximum(self.hmax_cur[rows], self.hmax_prev[rows])
            known = hmin < _BIG
            empty = ahead <= 0
            deficit = np.where(known & (hmin < _MARGIN_LO), _MARGIN_GROW - hmin, 0)
            deficit = np.where(known & (deficit == 0) & (hmax < self.min_delay - TICK // 2), 1, deficit)
            deficit = np.where(hmax >= self.max_delay, 0, deficit)
            excess = np.where(
                known & (deficit == 0), np.minimum(hmin - _MARGIN_HI, hmax - self.min_delay), 0
            ).clip(0)
            i = np.arange(TICK)
            r2 = rows[:, None]
            idx = (read[:, None] + i) & mask
            data = self.ring[r2, idx]
            ok = self.slot[r2, idx] == 1
            ok_tick = ok  # what the next 80 samples held, for consuming them below
            whole = ok.all(axis=1)
            expand = ~empty & (deficit >= TICK // 4)
            stretch = ~empty & (deficit > 0) & ~expand
            shrink = ~empty & (excess > 0)
            skip = shrink & whole
            if skip.any():
                quiet = (data[skip] < _SILENT).all(axis=1) & (data[skip] > -_SILENT).all(axis=1)
                skip[skip] = quiet
            compress = shrink & ~skip
            adv = np.full(rows.size, TICK, np.int64)
            adv[empty] = 0
            adv[stretch] = TICK - 1
            adv[skip] = TICK + np.minimum(excess[skip], TICK // 2)
            adv[compress] = TICK + 1 + (excess[compress] > 4 * TICK)
            need_plc = empty | expand | ~whole
            period = np.zeros(rows.size, np.int64)
            ins = np.zeros(rows.size, np.int64)
            if need_plc.any():
                period[need_plc] = self._pitch(rows[need_plc])
                if expand.any():
                    # grow at once by whole pitch periods, so the inserted block joins both sides in phase
                    p = period[expand]
                    ins[expand] = p * (TICK // p)
                    adv[expand] = TICK - ins[expand]
                    src = i[None, :] - ins[:, None]
                    idx = (read[:, None] + np.maximum(src, 0)) & mask
                    data = self.ring[r2, idx]
                    ok = (self.slot[r2, idx] == 1) & (src >= 0)
            ok[empty] = False
            scaled = np.flatnonzero(stretch | compress)
            if scaled.size:
                # a tiny time-scale change: 79 or 81-82 samples read into 80 by linear interpolation
                pos = i[None, :] * (adv[scaled][:, None] / TICK)
                i0 = pos.astype(np.int64)
                frac = pos - i0
                rr = rows[scaled][:, None]
                j0 = (read[scaled][:, None] + i0) & mask
                j1 = (j0 + 1) & mask
                x0 = self.ring[rr, j0].astype(np.float32)
                o1 = self.slot[rr, j1] == 1
                x1 = np.where(o1, self.ring[rr, j1], x0)
                data[scaled] = np.rint(x0 + (x1 - x0) * frac).astype(np.int16)
                ok[scaled] = self.slot[rr, j0] == 1
            frame = data
            lost_now = ~ok & (i[None, :] >= ins[:, None])  # missing, not inserted on purpose
            lost = np.where(lost_now.any(axis=1), self.lost_ticks[rows] + 1, 0)
            self.lost_ticks[rows] = lost
            fill = np.flatnonzero(~ok.all(axis=1))
            if fill.size:
                frame[fill] = self._conceal(rows[fill], frame[fill], ok[fill], period[fill], lost[fill])
            # consume what was played (or skipped) and move the playout point
            moved = np.flatnonzero(adv != TICK)
            plain = adv == TICK
            if moved.size == 0:
                self.slot[r2, (read[:, None] + i) & mask] = ok_tick * 2
            else:
                self.slot[r2[plain], ((read[plain][:, None] + i) & mask)] = ok_tick[plain] * 2
                span = np.arange(TICK + TICK // 2 + 1)
                mr = rows[moved][:, None]
                cmask = span[None, :] < adv[moved][:, None]
                cr = np.broadcast_to(mr, cmask.shape)[cmask]
                cc = ((read[moved][:, None] + span[None, :]) & mask)[cmask]
                self.slot[cr, cc] = (self.slot[cr, cc] == 1) * 2
            self.read_ts[rows] = read + adv
            if moved.size:
                self._shift_windows(rows[moved], adv[moved] - TICK)
                d = adv[moved] - TICK
                self.dropped[rows[moved]] += d.clip(0)
                self.inserted[rows[moved]] += np.where(empty[moved], 0, (-d).clip(0))
            if rows[-1] - rows[0] + 1 == rows.size:  # the usual case: a contiguous block of legs
                block = slice(int(rows[0]), int(rows[-1]) + 1)
                self.hist[block, :TICK] = self.hist[block, TICK:]
                self.hist[block, TICK:] = frame
            else:
                self.hist[rows] = np.concatenate([self.hist[rows, TICK:], frame], axis=1)
            self.concealed[rows] += lost_now.sum(axis=1)
            self.underruns[rows] += empty
            self.dry_spells[rows] += empty & (self.held[rows] == 0)
            self.held[rows] = np.where(empty, self.held[rows] + TICK, 0)
            out[rows] = frame
            return out

    def _rotate_windows(self) -> None:
        """Every window: the current min/max become the previous ones (legs that heard nothing keep
        theirs, so a silence does not forget the jitter)."""
        have = self.hmin_cur < _BIG
        self.hmin_prev = np.where(have, self.hmin_cur, self.hmin_prev)
        self.hmax_prev = np.where(have, self.hmax_cur, self.hmax_prev)
        self.hmin_cur[have] = _BIG
        self.hmax_cur[have] = -_BIG

    def _shift_windows(self, legs: np.ndarray, advanced: np.ndarray) -> None:
        """The playout point moved `advanced` samples more than a tick: every headroom is that much less."""
        for lo, hi in ((self.hmin_cur, self.hmax_cur), (self.hmin_prev, self.hmax_prev)):
            known = lo[legs] < _BIG
            lo[legs] = np.where(known, lo[legs] - advanced, lo[legs])
            hi[legs] = np.where(known, hi[legs] - advanced, hi[legs])

    def _skip(self, leg: int, n: int) -> None:
        read = int(self.read_ts[leg])
        cols = (read + np.arange(min(n, self.capacity))) & (self.capacity - 1)
        self.slot[leg, cols] = 0
        self.read_ts[leg] = read + n
        self.dropped[leg] += n
        self._shift_windows(np.array([leg]), np.array([n]))

    def _pitch(self, legs: np.ndarray) -> np.ndarray:
        """Pitch period (20-80 samples, 100-400 Hz and the harmonics of any tone) of the last 10 ms
        played, by normalised autocorrelation against the 10 ms before, per leg."""
        h = self.hist[legs].astype(np.float32)
        seg = h[:, TICK:]
        win = np.lib.stride_tricks.sliding_window_view(h[:, : 2 * TICK - _PMIN], TICK, axis=1)
        corr = np.einsum("kwn,kn->kw", win, seg)
        energy = np.einsum("kwn,kwn->kw", win, win)
        score = corr / np.sqrt(energy + 1.0)
        return TICK - np.argmax(score, axis=1)

    def _conceal(
        self, legs: np.ndarray, frame: np.ndarray, ok: np.ndarray, period: np.ndarray, lost: np.ndarray
    ) -> np.ndarray:
        """Fill the missing samples of `frame` (k, 80) by repeating the last pitch period before the first
        gap (from the history and the samples of this tick before it), attenuated as G.711 Appendix I:
        full for the first 10 ms lost, then 20 % less per 10 ms, silent from 60 ms."""
        i = np.arange(TICK)
        buf = np.concatenate([self.hist[legs], frame], axis=1)
        first = np.argmax(~ok, axis=1)
        p = np.where(period > 0, period, TICK)
        src = 2 * TICK + first[:, None] - p[:, None] + (i[None, :] - first[:, None]) % p[:, None]
        rep = np.take_along_axis(buf, src, axis=1).astype(np.float32)
        gain = np.clip(1.0 - 0.2 * (lost - 1), 0.0, 1.0)
        gain = np.where(lost == 0, 1.0, gain)  # an insertion, nothing lost
        return np.where(ok, frame, (rep * gain[:, None]).astype(np.int16))

    def push_tx(self, tx: np.ndarray, now: float) -> list[tuple[int, bytes]]:
        """Encode one tick of outgoing audio (legs, 80) int16 and return the RTP/RTCP datagrams now due,
        as (leg, bytes)."""
        if tx.shape != (self.max_legs, TICK):
            raise ValueError(f"tx must be ({self.max_legs}, {TICK}), got {tx.shape}")
        out: list[tuple[int, bytes]] = []
        with self._lock:
            rows = np.flatnonzero(self.active)
            if rows.size == 0:
                return out
            alaw = self.is_alaw[rows]
            block = tx[rows]
            codes = np.where(alaw[:, None], g711.alaw_encode(block), g711.ulaw_encode(block))
            fill = self.tx_fill[rows]
            cols = fill[:, None] + np.arange(TICK)[None, :]
            self.tx_buf[rows[:, None], cols] = codes
            fill = fill + TICK
            self.tx_fill[rows] = fill
            for k, leg in enumerate(rows.tolist()):
                st = self.legs[leg]
                frame = st.config.ptime * RATE // 1000
                if fill[k] < frame:
                    continue
                self.tx_fill[leg] = 0
                payload = self.tx_buf[leg, :frame].tobytes()
                cfg = st.config
                if st.dtmf_active is not None or st.dtmf_queue:
                    pkt = self._dtmf_packet(st, frame)
                    if pkt is not None:
                        out.append((leg, pkt))
                        st.ts = (st.ts + frame) & 0xFFFFFFFF
                        continue
                if cfg.send:
                    out.append((leg, build_rtp(cfg.pt, st.seq, st.ts, st.ssrc, payload)))
                    st.seq = (st.seq + 1) & 0xFFFF
                    st.sent_packets += 1
                    st.sent_octets += frame
                st.ts = (st.ts + frame) & 0xFFFFFFFF
                if now >= st.next_rtcp:
                    st.next_rtcp = now + self.rtcp_interval
                    out.append((leg, self._rtcp(st, now)))
        return out

    # -- DTMF out ----------------------------------------------------------------------------------------

    def send_dtmf(self, leg: int, digit: str, duration_ms: int = 100) -> bool:
        """Queue an RFC 4733 event; False when the peer did not negotiate telephone-event (the caller
        then plays the digit in-band through the engine)."""
        with self._lock:
            st = self.legs.get(leg)
            if st is None or st.config.dtmf_pt is None or digit.upper() not in DTMF_EVENTS:
                return False
            st.dtmf_queue.append((DTMF_EVENTS.index(digit.upper()), max(40, duration_ms) * RATE // 1000))
            return True

    def _dtmf_packet(self, st: _Leg, frame: int) -> bytes | None:
        assert st.config.dtmf_pt is not None
        if st.dtmf_active is None:
            event, total = st.dtmf_queue.pop(0)
            st.dtmf_active = (event, st.ts, 0, total)
            st.dtmf_end_sent = 0
        event, start_ts, elapsed, total = st.dtmf_active
        marker = elapsed == 0
        elapsed = min(elapsed + frame, total)
        end = elapsed >= total
        payload = telephone_event_payload(event, end, elapsed)
        pkt = build_rtp(st.config.dtmf_pt, st.seq, start_ts, st.ssrc, payload, marker)
        st.seq = (st.seq + 1) & 0xFFFF
        st.sent_packets += 1
        st.dtmf_active = (event, start_ts, elapsed, total)
        if end:
            st.dtmf_end_sent += 1
            if st.dtmf_end_sent >= 3:  # the end packet is sent three times (RFC 4733 2.5.1.4)
                st.dtmf_active = None
        return pkt

    # -- RTCP out ----------------------------------------------------------------------------------------

    def _rtcp(self, st: _Leg, now: float) -> bytes:
        block = b""
        rc = 0
        if st.stats.ssrc is not None and st.stats.received:
            fraction, cum, ext, jitter, lsr, dlsr = st.stats.report_block(now)
            block = struct.pack("!IIIIII", st.stats.ssrc, (fraction << 24) | cum, ext, jitter, lsr, dlsr)
            rc = 1
        if st.sent_packets:
            ntp = now + NTP_EPOCH_OFFSET
            hi = int(ntp) & 0xFFFFFFFF
            lo = int((ntp % 1) * 2**32) & 0xFFFFFFFF
            body = struct.pack("!IIIIII", st.ssrc, hi, lo, st.ts, st.sent_packets, st.sent_octets) + block
            pt = 200
        else:
            body = struct.pack("!I", st.ssrc) + block
            pt = 201
        head = struct.pack("!BBH", 0x80 | rc, pt, (len(body) + 4) // 4 - 1)
        cname = st.cname.encode()
        sdes_items = bytes([1, len(cname)]) + cname + b"\x00"
        sdes_items += b"\x00" * (-(4 + len(sdes_items)) % 4)
        sdes = struct.pack("!BBHI", 0x81, 202, (8 + len(sdes_items)) // 4 - 1, st.ssrc) + sdes_items
        return head + body + sdes


_BIG = 1 << 40  # "no packet in this window"
_MARGIN_LO = 8  # grow when the earliest-needed packets had less headroom than this (samples)
_MARGIN_GROW = TICK // 2  # ... up to this
_MARGIN_HI = TICK  # shrink when they all had more than this
_SILENT = 128  # a tick whose samples all stay within +-128 (about -48 dBFS) is silence
_PMIN = 20  # shortest pitch period for PLC (400 Hz)


def _signed32_array(value: np.ndarray) -> np.ndarray:
    value = value & 0xFFFFFFFF
    return np.where(value >= 2**31, value - 2**32, value)


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value
