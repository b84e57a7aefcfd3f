"""Q.921 (LAPD) point-to-point data link for an E1 PRI D-channel: SAPI 0, TEI 0, modulo 128.

Sans-I/O: feed `receive_frame(frame, now)` with the HDLC payload (address + control + info, no FCS), call
`handle_timers(now)` when `next_deadline()` has passed, drain `frames_to_send()` onto the line and
`events()` upward. The link works in both roles; the role only decides the C/R bit (Q.921 §3.3.2: the
network sends commands with C/R = 1, the user with C/R = 0).

All changes of link state live in this file. The states are those of the Q.921 SDL (Annex B):
TEI_ASSIGNED (4, released), AWAITING_ESTABLISHMENT (5), AWAITING_RELEASE (6), MULTIFRAME_ESTABLISHED (7),
TIMER_RECOVERY (8). Enquiry on T200/T203 expiry follows the 1993+ text (RR command with P = 1).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("callbox.signalling.q921")

MODULUS = 128
N201 = 260  # maximum information field octets

# Control field codes (P/F bit cleared).
SABME = 0x6F
DM = 0x0F
UI = 0x03
DISC = 0x43
UA = 0x63
FRMR = 0x87
XID = 0xAF
PF_U = 0x10
RR = 0x01
RNR = 0x05
REJ = 0x09


class Role(enum.Enum):
    USER = "user"
    NETWORK = "network"


class LinkState(enum.IntEnum):
    TEI_ASSIGNED = 4
    AWAITING_ESTABLISHMENT = 5
    AWAITING_RELEASE = 6
    MULTIFRAME_ESTABLISHED = 7
    TIMER_RECOVERY = 8


@dataclass(frozen=True)
class LinkUp:
    """DL-ESTABLISH indication/confirm: the link is in multiple-frame operation (again)."""

    reestablished: bool = False


@dataclass(frozen=True)
class LinkDown:
    """DL-RELEASE indication: the link left multiple-frame operation; `reason` says why."""

    reason: str


@dataclass(frozen=True)
class DataIndication:
    """DL-DATA indication: one layer 3 message, in order."""

    data: bytes


LinkEvent = LinkUp | LinkDown | DataIndication


@dataclass(slots=True)
class Frame:
    """A decoded LAPD frame (only what the procedures need)."""

    sapi: int
    tei: int
    command: bool  # from the peer's point of view: True if the peer sent a command
    kind: str  # "I", "RR", "RNR", "REJ", "SABME", "DM", "UI", "DISC", "UA", "FRMR", "XID", "?"
    pf: bool
    ns: int = 0
    nr: int = 0
    info: bytes = b""


class FrameError(ValueError):
    """The octets are not a LAPD frame we can act on (reason in the message). `rejection` marks a frame
    rejection condition of Q.921 §5.8.5 (undefined control field, wrong length, information field over
    N201) on a frame whose address was readable (`sapi`, `tei`); other errors make the frame invalid
    (§2.9), and it is simply discarded."""

    def __init__(self, message: str, rejection: bool = False, sapi: int = -1, tei: int = -1) -> None:
        super().__init__(message)
        self.rejection = rejection
        self.sapi = sapi
        self.tei = tei


_U_KINDS = {SABME: "SABME", DM: "DM", UI: "UI", DISC: "DISC", UA: "UA", FRMR: "FRMR", XID: "XID"}
_U_CODES = {v: k for k, v in _U_KINDS.items()}
_S_KINDS = {RR: "RR", RNR: "RNR", REJ: "REJ"}
_S_CODES = {v: k for k, v in _S_KINDS.items()}


def decode_frame(frame: bytes, peer_role: Role) -> Frame:
    """Decode address and control of one frame sent by a peer playing `peer_role`."""
    if len(frame) < 3:
        raise FrameError(f"frame of {len(frame)} octets is shorter than address + control")
    a1, a2 = frame[0], frame[1]
    if a1 & 1 or not a2 & 1:
        raise FrameError("address field extension bits are wrong (LAPD needs a 2-octet address)")
    sapi, cr, tei = a1 >> 2, bool(a1 & 2), a2 >> 1
    command = cr if peer_role is Role.NETWORK else not cr
    c = frame[2]
    if c & 1 == 0:  # I frame
        if len(frame) < 4:
            raise FrameError("I frame without its second control octet", True, sapi, tei)
        info = frame[4:]
        if len(info) > N201:
            raise FrameError(
                f"I frame information field of {len(info)} octets exceeds N201 = {N201}", True, sapi, tei
            )
        return Frame(sapi, tei, command, "I", bool(frame[3] & 1), c >> 1, frame[3] >> 1, bytes(info))
    if c & 3 == 1:  # S frame
        if len(frame) != 4:
            raise FrameError(f"S frame of {len(frame)} octets (must be 4)", True, sapi, tei)
        kind = _S_KINDS.get(c)
        if kind is None:
            raise FrameError(f"undefined supervisory control field 0x{c:02x}", True, sapi, tei)
        return Frame(sapi, tei, command, kind, bool(frame[3] & 1), nr=frame[3] >> 1)
    kind = _U_KINDS.get(c & ~PF_U)
    if kind is None:
        raise FrameError(f"undefined unnumbered control field 0x{c:02x}", True, sapi, tei)
    if kind not in ("UI", "FRMR", "XID") and len(frame) != 3:
        raise FrameError(f"{kind} frame with an information field", True, sapi, tei)
    return Frame(sapi, tei, command, kind, bool(c & PF_U), info=bytes(frame[3:]))


def encode_frame(
    role: Role,
    command: bool,
    kind: str,
    pf: bool = False,
    ns: int = 0,
    nr: int = 0,
    info: bytes = b"",
    sapi: int = 0,
    tei: int = 0,
) -> bytes:
    """Encode one frame sent by us playing `role`."""
    cr = command if role is Role.NETWORK else not command
    addr = bytes(((sapi << 2) | (int(cr) << 1), (tei << 1) | 1))
    if kind == "I":
        return addr + bytes((ns << 1, (nr << 1) | int(pf))) + info
    if kind in _S_CODES:
        return addr + bytes((_S_CODES[kind], (nr << 1) | int(pf)))
    return addr + bytes((_U_CODES[kind] | (PF_U if pf else 0),)) + info


def _between(low: int, x: int, high: int) -> bool:
    """low <= x <= high in modulo-128 arithmetic."""
    return (x - low) % MODULUS <= (high - low) % MODULUS


class DataLink:
    """One LAPD data link (SAPI 0, TEI 0) of a PRI D-channel."""

    def __init__(
        self,
        role: Role,
        *,
        t200: float = 1.0,
        n200: int = 3,
        t203: float = 10.0,
        k: int = 7,
        auto_establish: bool = True,
    ) -> None:
        self.role = role
        self.peer_role = Role.USER if role is Role.NETWORK else Role.NETWORK
        self.t200, self.n200, self.t203, self.k = t200, n200, t203, k
        self.auto_establish = auto_establish
        self.state = LinkState.TEI_ASSIGNED
        self.vs = self.va = self.vr = 0
        self.rc = 0
        self.peer_busy = False
        self.reject_exception = False
        self.t200_at: float | None = None
        self.t203_at: float | None = None
        self.l3_initiated = False
        self._unacked: dict[int, bytes] = {}  # N(S) -> info, for V(A) <= N(S) < V(S)
        self._queue: deque[bytes] = deque()
        self._out: list[bytes] = []
        self._events: list[LinkEvent] = []
        self.started = False
        self.retry_at: float | None = None
        self._reported_up = False
        self.counters = {
            "frames_in": 0,
            "frames_out": 0,
            "bad_frames": 0,
            "retransmissions": 0,
            "reestablishments": 0,
        }

    # ---- outputs -------------------------------------------------------------------------------------
    def frames_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        self.counters["frames_out"] += len(out)
        return out

    def events(self) -> list[LinkEvent]:
        ev, self._events = self._events, []
        return ev

    def next_deadline(self) -> float | None:
        times = [t for t in (self.t200_at, self.t203_at, self.retry_at) if t is not None]
        return min(times) if times else None

    @property
    def established(self) -> bool:
        return self.state in (LinkState.MULTIFRAME_ESTABLISHED, LinkState.TIMER_RECOVERY)

    # ---- layer 3 / management requests -----------------------------------------------------------------
    def start(self, now: float) -> None:
        """Physical layer up (or layer 3 asks): bring the link up (DL-ESTABLISH request)."""
        self.started = True
        self.retry_at = None
        if self.state is LinkState.TEI_ASSIGNED:
            self._establish(now, l3=True)

    def stop(self, now: float) -> None:
        """DL-RELEASE request: release the link gracefully; it stays down until `start`."""
        self.started = False
        if self.established:
            self._queue.clear()
            self._unacked.clear()
            self.rc = 0
            self._send_u(True, "DISC", True)
            self.t203_at = None
            self.t200_at = now + self.t200
            self.state = LinkState.AWAITING_RELEASE
        elif self.state is LinkState.AWAITING_ESTABLISHMENT:
            self._to_released("released by request", now)

    def physical_down(self, now: float) -> None:
        """The E1 lost frame alignment / signal: the link is gone at once, no frames can pass."""
        self.started = False
        self.retry_at = None
        if self.state is not LinkState.TEI_ASSIGNED:
            self._to_released("physical layer down", now)
        self._out.clear()

    def send(self, data: bytes, now: float) -> None:
        """DL-DATA request: queue one layer 3 message as an I frame."""
        if len(data) > N201:
            raise ValueError(f"layer 3 message of {len(data)} octets exceeds N201 = {N201}")
        self._queue.append(bytes(data))
        if self.established:
            self._push_i_frames(now)
        elif self.state is LinkState.TEI_ASSIGNED and self.started:
            self._establish(now, l3=True)

    # ---- timers -----------------------------------------------------------------------------------------
    def handle_timers(self, now: float) -> None:
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            if self.state is LinkState.TEI_ASSIGNED and self.started:
                self._establish(now, l3=True)
        if self.t200_at is not None and now >= self.t200_at:
            self.t200_at = None
            self._t200_expired(now)
        if self.t203_at is not None and now >= self.t203_at:
            self.t203_at = None
            if self.state is LinkState.MULTIFRAME_ESTABLISHED:
                self._transmit_enquiry(now)
                self.rc = 0
                self.state = LinkState.TIMER_RECOVERY

    def _t200_expired(self, now: float) -> None:
        st = self.state
        if st is LinkState.AWAITING_ESTABLISHMENT:
            if self.rc >= self.n200:
                self._to_released("no answer to SABME after N200 retries", now)
                return
            self.rc += 1
            self._send_u(True, "SABME", True)
            self.t200_at = now + self.t200
        elif st is LinkState.AWAITING_RELEASE:
            if self.rc >= self.n200:
                self._to_released("no answer to DISC", now)
                return
            self.rc += 1
            self._send_u(True, "DISC", True)
            self.t200_at = now + self.t200
        elif st is LinkState.MULTIFRAME_ESTABLISHED:
            self.rc = 0
            self._transmit_enquiry(now)
            self.rc = 1
            self.state = LinkState.TIMER_RECOVERY
        elif st is LinkState.TIMER_RECOVERY:
            if self.rc >= self.n200:
                log.warning("q921: peer silent after %d enquiries, re-establishing", self.rc)
                self._establish(now, l3=False)
                return
            self._transmit_enquiry(now)
            self.rc += 1

    # ---- receive ---------------------------------------------------------------------------------------
    def receive_frame(self, raw: bytes, now: float) -> None:
        self.counters["frames_in"] += 1
        try:
            f = decode_frame(raw, self.peer_role)
        except FrameError as exc:
            self.counters["bad_frames"] += 1
            log.info("q921: discarding frame %s: %s", bytes(raw[:8]).hex(), exc)
            if exc.rejection and exc.sapi == 0 and exc.tei == 0 and self.established:
                log.warning("q921: frame rejection condition (MDL-ERROR L/M/N/O), re-establishing")
                self._establish(now, l3=False)
            return
        if f.sapi != 0 or f.tei != 0:
            # TEI management (SAPI 63) and other SAPIs have no role on a point-to-point PRI.
            log.debug("q921: ignoring frame for SAPI %d TEI %d", f.sapi, f.tei)
            return
        handler = getattr(self, "_rx_" + f.kind, None)
        if handler is None:
            log.info("q921: ignoring %s frame", f.kind)
            return
        handler(f, now)

    def _rx_SABME(self, f: Frame, now: float) -> None:  # noqa: N802
        if not f.command:
            return self._bad_cr(f)
        st = self.state
        if st is LinkState.AWAITING_RELEASE:
            self._send_u(False, "DM", f.pf)
            return
        self._send_u(False, "UA", f.pf)
        if st is LinkState.AWAITING_ESTABLISHMENT:
            return  # collision of SABMEs: our UA answers theirs, their UA completes ours
        reestablished = self.established
        if reestablished:
            self.counters["reestablishments"] += 1
            log.info("q921: peer re-established the link (V(S)=%d V(A)=%d)", self.vs, self.va)
            if self.vs != self.va:
                self._unacked.clear()
        self._reset_variables()
        self.t200_at = None
        self.t203_at = now + self.t203
        self.state = LinkState.MULTIFRAME_ESTABLISHED
        self._link_up(reestablished)
        self._push_i_frames(now)

    def _rx_DISC(self, f: Frame, now: float) -> None:  # noqa: N802
        if not f.command:
            return self._bad_cr(f)
        st = self.state
        if st in (LinkState.TEI_ASSIGNED, LinkState.AWAITING_ESTABLISHMENT):
            self._send_u(False, "DM", f.pf)
            return
        self._send_u(False, "UA", f.pf)
        if st is LinkState.AWAITING_RELEASE:
            self._to_released("released", now)
            return
        self._to_released("peer released the link", now)

    def _rx_UA(self, f: Frame, now: float) -> None:  # noqa: N802
        if f.command:
            return self._bad_cr(f)
        st = self.state
        if st is LinkState.AWAITING_ESTABLISHMENT and f.pf:
            reest = not self.l3_initiated
            self._reset_variables()
            self.t200_at = None
            self.t203_at = now + self.t203
            self.state = LinkState.MULTIFRAME_ESTABLISHED
            self._link_up(reest)
            self._push_i_frames(now)
        elif st is LinkState.AWAITING_RELEASE and f.pf:
            self._to_released("released", now)
        else:
            log.info("q921: unsolicited UA in state %s (MDL-ERROR C/D)", st.name)

    def _rx_DM(self, f: Frame, now: float) -> None:  # noqa: N802
        if f.command:
            return self._bad_cr(f)
        st = self.state
        if st is LinkState.AWAITING_ESTABLISHMENT:
            if f.pf:
                self._to_released("peer refused establishment (DM)", now)
        elif st is LinkState.AWAITING_RELEASE:
            if f.pf:
                self._to_released("released", now)
        elif self.established:
            if not f.pf:
                log.info("q921: DM F=0 while established (MDL-ERROR E), re-establishing")
                self._establish(now, l3=False)
        elif self.started and not f.pf:
            self._establish(now, l3=True)

    def _rx_FRMR(self, f: Frame, now: float) -> None:  # noqa: N802
        if self.established:
            log.info("q921: FRMR received (MDL-ERROR K), re-establishing")
            self._establish(now, l3=False)

    def _rx_UI(self, f: Frame, now: float) -> None:  # noqa: N802
        log.debug("q921: ignoring UI frame (no unacknowledged service on this link)")

    def _rx_XID(self, f: Frame, now: float) -> None:  # noqa: N802
        log.debug("q921: ignoring XID frame")

    def _rx_I(self, f: Frame, now: float) -> None:  # noqa: N802
        if not f.command:
            return self._bad_cr(f)
        if not self.established:
            if self.state is LinkState.TEI_ASSIGNED and f.pf:
                self._send_u(False, "DM", True)
            return
        if not self._nr_valid(f.nr):
            return self._nr_error(f, now)
        if f.ns == self.vr:
            self.vr = (self.vr + 1) % MODULUS
            self.reject_exception = False
            self._events.append(DataIndication(f.info))
            if f.pf:
                self._send_s(False, "RR", True)
            elif not self._queue or self.peer_busy or not self._window_open():
                self._send_s(False, "RR", False)
            # otherwise the I frames we are about to send carry the acknowledgement
        elif self.reject_exception:
            if f.pf:
                self._send_s(False, "RR", True)
        else:
            self.reject_exception = True
            self._send_s(False, "REJ", f.pf)
        self._ack_to(f.nr, now, in_recovery=self.state is LinkState.TIMER_RECOVERY)
        self._push_i_frames(now)

    def _rx_RR(self, f: Frame, now: float) -> None:  # noqa: N802
        self._rx_supervisory(f, now, busy=False, reject=False)

    def _rx_RNR(self, f: Frame, now: float) -> None:  # noqa: N802
        self._rx_supervisory(f, now, busy=True, reject=False)

    def _rx_REJ(self, f: Frame, now: float) -> None:  # noqa: N802
        self._rx_supervisory(f, now, busy=False, reject=True)

    def _rx_supervisory(self, f: Frame, now: float, busy: bool, reject: bool) -> None:
        if not self.established:
            if self.state is LinkState.TEI_ASSIGNED and f.command and f.pf:
                self._send_u(False, "DM", True)
            return
        self.peer_busy = busy
        if f.command and f.pf:
            self._send_s(False, "RR", True)  # enquiry response
        if not self._nr_valid(f.nr):
            return self._nr_error(f, now)
        if self.state is LinkState.TIMER_RECOVERY:
            if not f.command and f.pf:
                # The answer to our enquiry: recovery is over.
                self._set_va(f.nr)
                self.t200_at = None
                self.t203_at = now + self.t203
                self.state = LinkState.MULTIFRAME_ESTABLISHED
                self._retransmit_from(f.nr, now)
            else:
                self._set_va(f.nr)
        elif reject:
            self._set_va(f.nr)
            self.t200_at = None
            self.t203_at = now + self.t203
            self._retransmit_from(f.nr, now)
        else:
            self._ack_to(f.nr, now, in_recovery=False)
            if busy:
                self.t203_at = None
                self.t200_at = now + self.t200
        self._push_i_frames(now)

    # ---- procedures ------------------------------------------------------------------------------------
    def _nr_valid(self, nr: int) -> bool:
        return _between(self.va, nr, self.vs)

    def _nr_error(self, f: Frame, now: float) -> None:
        log.warning(
            "q921: N(R)=%d outside V(A)=%d..V(S)=%d (MDL-ERROR J), re-establishing", f.nr, self.va, self.vs
        )
        self._establish(now, l3=False)

    def _ack_to(self, nr: int, now: float, in_recovery: bool) -> None:
        if in_recovery or self.peer_busy:
            self._set_va(nr)
        elif nr == self.vs:
            self._set_va(nr)
            self.t200_at = None
            self.t203_at = now + self.t203
        elif nr != self.va:
            self._set_va(nr)
            self.t200_at = now + self.t200

    def _set_va(self, nr: int) -> None:
        """V(A) = N(R): the I frames before N(R) are acknowledged and leave the retransmission store."""
        va = self.va
        while va != nr:
            self._unacked.pop(va, None)
            va = (va + 1) % MODULUS
        self.va = nr

    def _retransmit_from(self, nr: int, now: float) -> None:
        """Invoke retransmission: V(S) back to N(R), unacknowledged I frames go out again."""
        pending = [self._unacked[n] for n in self._seq(nr, self.vs) if n in self._unacked]
        if pending:
            self.counters["retransmissions"] += len(pending)
        self._unacked.clear()
        self.vs = nr
        for info in reversed(pending):
            self._queue.appendleft(info)

    @staticmethod
    def _seq(start: int, stop: int) -> list[int]:
        return [(start + i) % MODULUS for i in range((stop - start) % MODULUS)]

    def _window_open(self) -> bool:
        return (self.vs - self.va) % MODULUS < self.k

    def _push_i_frames(self, now: float) -> None:
        if self.state is not LinkState.MULTIFRAME_ESTABLISHED:
            return
        while self._queue and not self.peer_busy and self._window_open():
            info = self._queue.popleft()
            self._out.append(encode_frame(self.role, True, "I", False, self.vs, self.vr, info))
            self._unacked[self.vs] = info
            self.vs = (self.vs + 1) % MODULUS
            if self.t200_at is None:
                self.t203_at = None
                self.t200_at = now + self.t200

    def _transmit_enquiry(self, now: float) -> None:
        self._send_s(True, "RR", True)
        self.t200_at = now + self.t200

    def _establish(self, now: float, l3: bool) -> None:
        """Establish (or re-establish) the data link: SABME, T200, state 5."""
        was_up = self.established
        self.l3_initiated = l3
        if was_up:
            self.counters["reestablishments"] += 1
            self._link_down("re-establishing after a link error")
            if self.vs != self.va:
                # Unacknowledged I frames are lost to layer 3; Q.931 recovers by STATUS ENQUIRY.
                self._unacked.clear()
        self._reset_variables()
        self.rc = 0
        self._send_u(True, "SABME", True)
        self.t203_at = None
        self.t200_at = now + self.t200
        self.state = LinkState.AWAITING_ESTABLISHMENT

    def _reset_variables(self) -> None:
        self.vs = self.va = self.vr = 0
        self.peer_busy = False
        self.reject_exception = False
        self._unacked.clear()

    def _to_released(self, reason: str, now: float) -> None:
        self.state = LinkState.TEI_ASSIGNED
        self.t200_at = self.t203_at = None
        self._reset_variables()
        self._queue.clear()
        self.rc = 0
        self._link_down(reason)
        log.info("q921: link released: %s", reason)
        if self.started and self.auto_establish:
            self.retry_at = now + self.t200

    def _link_up(self, reestablished: bool) -> None:
        self._events.append(LinkUp(reestablished=reestablished or self._reported_up))
        self._reported_up = True

    def _link_down(self, reason: str) -> None:
        if self._reported_up:
            self._reported_up = False
            self._events.append(LinkDown(reason))

    def _bad_cr(self, f: Frame) -> None:
        self.counters["bad_frames"] += 1
        log.info("q921: %s with wrong C/R bit (MDL-ERROR L/N), ignored", f.kind)

    def _send_u(self, command: bool, kind: str, pf: bool) -> None:
        self._out.append(encode_frame(self.role, command, kind, pf))

    def _send_s(self, command: bool, kind: str, pf: bool) -> None:
        self._out.append(encode_frame(self.role, command, kind, pf, nr=self.vr))
