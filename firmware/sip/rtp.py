"""RTP/RTCP media for SIP legs (RFC 3550, RFC 3551 G.711, RFC 4733 telephone-events), sans-I/O.

`MediaHub` holds every SIP leg's media state as arrays shaped (legs, ...), the shape the engine works in:

    rx = hub.pull(now)                  # (legs, 80) int16: exactly one tick of audio per leg, always
    packets = hub.push_tx(tx, now)      # tx (legs, 80) int16 from the engine -> [(leg, bytes)] to send
    events = hub.receive(leg, data, now)  # one datagram from the network (RTP or RTCP)

The jitter buffer is a ring per leg indexed by RTP timestamp modulo its size. Whatever the network does,
`pull` hands out 80 samples per leg per tick:
- reordered packets land in their slot; duplicates overwrite the same samples (counted);
- late packets (their samples already played) are dropped and counted; when the buffer has run dry
  (the peer paused, or its clock jumped) a late packet instead re-anchors the playout point;
- missing samples are concealed (PLC): the last good tick repeated with a fade to silence over 50 ms, a
  simple form of G.711 Appendix I's waveform repetition;
- clock drift: the buffer depth is smoothed per leg; a leg running too deep reads 81 samples into 80
  (drops one), a leg running too shallow reads 79 (repeats one), so depth returns to target without a
  click.
All of that is numpy over the (legs, ...) arrays; only parsing a datagram is per packet.

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
        target_ms: float = 60.0,
        rtcp_interval: float = 5.0,
        seed: int = 0,
    ) -> None:
        if capacity & (capacity - 1) or capacity < 4 * TICK:
            raise ValueError("capacity must be a power of two of at least 4 ticks")
        self.max_legs = max_legs
        self.capacity = capacity
        self.target = int(target_ms * RATE / 1000)
        self.rtcp_interval = rtcp_interval
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.ring = np.zeros((max_legs, capacity), np.int16)
        self.filled = np.zeros((max_legs, capacity), bool)
        self.read_ts = np.zeros(max_legs, np.int64)  # RTP timestamp of the next sample to play
        self.newest = np.zeros(max_legs, np.int64)  # one past the newest sample held, relative units
        self.started = np.zeros(max_legs, bool)
        self.active = np.zeros(max_legs, bool)
        self.depth = np.zeros(max_legs, np.float64)  # smoothed buffer depth, samples
        self.last_good = np.zeros((max_legs, TICK), np.int16)
        self.lost_ticks = np.zeros(max_legs, np.int32)
        self.concealed = np.zeros(max_legs, np.int64)  # samples
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
        self.filled[leg] = False
        self.ring[leg] = 0
        self.started[leg] = False
        self.depth[leg] = 0
        self.last_good[leg] = 0
        self.lost_ticks[leg] = 0
        self.concealed[leg] = 0

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
        self.filled[leg] = False
        self.started[leg] = False
        if any(item[0] == leg for item in self._pending):
            self._pending = [item for item in self._pending if item[0] != leg]
            self._pending_keys = {(item[0], item[1]) for item in self._pending}

    def _push_audio(self, leg: int, st: _Leg, pkt: RtpPacket) -> None:
        """Place one packet's samples by timestamp. Only the bookkeeping happens here; the samples are
        decoded and written for all packets of a tick at once when `pull` runs (`_flush_pending`)."""
        n = len(pkt.payload)
        if n == 0 or n > self.capacity // 2:
            st.stats.bad += 1
            return
        ts = pkt.ts
        if not self.started[leg]:
            self.started[leg] = True
            self.read_ts[leg] = ts - self.target
            self.newest[leg] = ts
            self.depth[leg] = self.target
        read = int(self.read_ts[leg])
        delta = _signed32(ts - read)
        ahead = _signed32(int(self.newest[leg]) - read)
        if delta < 0:
            if ahead <= 0:
                # buffer ran dry: the peer paused or jumped back; re-anchor playout on this packet
                self._resync(leg)
                self.started[leg] = True
                self.read_ts[leg] = ts - self.target
                self.newest[leg] = ts
                delta = self.target
            else:
                st.stats.late += 1
                return
        if delta + n > self.capacity - 2 * TICK:
            # too far ahead (a timestamp jump): start again from this packet
            self._resync(leg)
            self.started[leg] = True
            self.read_ts[leg] = ts - self.target
            self.newest[leg] = ts
            self.overflows += 1
        key = (leg, ts)
        mask = self.capacity - 1
        if key in self._pending_keys or (
            self.filled[leg, ts & mask] and self.filled[leg, (ts + n - 1) & mask]
        ):
            st.stats.duplicates += 1
            return
        self._pending.append((leg, ts, pkt.pt == 8, pkt.payload))
        self._pending_keys.add(key)
        if _signed32(ts + n - int(self.newest[leg])) > 0:
            self.newest[leg] = ts + n

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
            self.filled[rows, idx] = True

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
        cap_mask = self.capacity - 1
        with self._lock:
            if self._pending:
                self._flush_pending()
            rows = np.flatnonzero(self.active & self.started)
            out = np.zeros((self.max_legs, TICK), np.int16)
            if rows.size == 0:
                return out
            read = self.read_ts[rows]
            depth = (self.newest[rows] - read) & 0xFFFFFFFF
            depth = np.where(depth > 2**31, 0, depth)
            self.depth[rows] += (depth - self.depth[rows]) * 0.02
            adj = np.where(
                self.depth[rows] > self.target + 1.5 * TICK,
                1,
                np.where(self.depth[rows] < self.target - 1.5 * TICK, -1, 0),
            )
            adj = np.where(depth <= 0, 0, adj)  # no drift correction while empty
            advance = TICK + adj
            i = np.arange(TICK)
            offs = (i[None, :] * (advance[:, None] - 1) + (TICK - 1) // 2) // (TICK - 1)
            idx = (read[:, None] + offs) & cap_mask
            r2 = rows[:, None]
            data = self.ring[r2, idx]
            ok = self.filled[r2, idx]
            span = np.arange(TICK + 1)
            clear_idx = (read[:, None] + span[None, :]) & cap_mask
            clear_mask = span[None, :] < advance[:, None]
            rr = np.broadcast_to(r2, clear_idx.shape)
            self.filled[rr[clear_mask], clear_idx[clear_mask]] = False
            self.read_ts[rows] = read + advance
            # PLC
            full = ok.all(axis=1)
            lost = self.lost_ticks[rows]
            lost = np.where(full, 0, lost + 1)
            gain = np.clip(1.0 - 0.2 * (lost - 1), 0.0, 1.0)
            conceal = (self.last_good[rows].astype(np.float32) * gain[:, None]).astype(np.int16)
            frame = np.where(ok, data, conceal)
            self.lost_ticks[rows] = lost
            self.concealed[rows] += (~ok).sum(axis=1)
            self.last_good[rows] = np.where(full[:, None], frame, self.last_good[rows])
            # legs whose concealment faded out keep their last good frame faded too
            faded = lost >= 6
            if faded.any():
                self.last_good[rows[faded]] = 0
            out[rows] = frame
            return out

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


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value
