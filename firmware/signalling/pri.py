"""One E1 PRI span: Q.921 data link + Q.931 calls + B-channel table, user side or network side.

Sans-I/O. Line side: `receive_frame(frame, now)` with each D-channel HDLC payload (no FCS), drain
`frames_to_send()`; call `handle_timers(now)` once `next_deadline()` has passed; `start(now)` when the
span has frame alignment and `alarm(now)` when it loses it (LOS/AIS/LOF). Call control side: drain
`events()` (firmware.signalling.events) and give commands: `place_call`, `proceeding`, `setup_ack`,
`alert`, `answer`, `send_digits`, `hangup`, `restart`.

Call states change only through `q931.state.CallStateMachine.apply` (the tables); this module decides what
to send and does the bookkeeping: call references, the B-channel table (a channel is owned by at most
one call), timers, and the Q.931 §5.8 error procedures (a log line each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from firmware.signalling import events as ev
from firmware.signalling.q921 import DataIndication, DataLink, Role
from firmware.signalling.q921 import LinkDown as DLDown
from firmware.signalling.q921 import LinkUp as DLUp
from firmware.signalling.q931.codec import (
    MT,
    RESTART_ALL_INTERFACES,
    RESTART_INDICATED_CHANNELS,
    RESTART_SINGLE_INTERFACE,
    BearerCapability,
    CalledNumber,
    CallingNumber,
    CallState,
    Cause,
    CauseIE,
    ChannelId,
    ConnectedNumber,
    Display,
    Location,
    Message,
    MessageError,
    PartyNumber,
    ProgressIndicator,
    RestartIndicator,
    SendingComplete,
    decode_message,
    encode_message,
)
from firmware.signalling.q931.state import (
    COMPATIBLE,
    STATUS_NEUTRAL,
    TIMER_DEFAULTS,
    TRANSITIONS,
    CallStateMachine,
    LocalProtocolError,
    Party,
    RemoteProtocolError,
)
from firmware.signalling.q931.state import CallState as S
from firmware.signalling.trace import describe_frame

log = logging.getLogger("callbox.signalling.pri")
_trace = logging.getLogger("callbox.signalling.pri.frames")  # DEBUG: every frame, decoded

E1_BCHANNELS: tuple[int, ...] = tuple(ts for ts in range(1, 32) if ts != 16)
N316 = 2  # RESTART retransmissions before giving up


def _check_number(what: str, digits: str) -> None:
    if len(digits) > 32 or any(not ("0" <= c <= "9" or c in "*#+ABCDabcd") for c in digits):
        raise ValueError(f"{what} number {digits!r} is not up to 32 digits 0-9 * # A-D")


class Call:
    """Bookkeeping of one call reference (its state lives in `machine`)."""

    __slots__ = (
        "call_id",
        "cr",
        "ours",
        "machine",
        "channel",
        "confirmed",
        "timer",
        "timer_at",
        "expiries",
        "t309_at",
        "last_sent",
        "cause",
        "setup_ies",
    )

    def __init__(self, call_id: int, cr: int, ours: bool, us: Party) -> None:
        self.call_id = call_id
        self.cr = cr
        self.ours = ours  # we allocated the call reference (outgoing call)
        self.machine = CallStateMachine(us)
        self.channel: int | None = None
        self.confirmed = False  # the peer has agreed to the channel
        self.timer: str | None = None
        self.timer_at: float | None = None
        self.expiries = 0
        self.t309_at: float | None = None
        self.last_sent: bytes = b""
        self.cause = int(Cause.NORMAL_CLEARING)
        self.setup_ies: list = []

    @property
    def state(self) -> S:
        return self.machine.state


@dataclass
class _Restart:
    channels: tuple[int, ...]
    message: bytes
    deadline: float
    tries: int = 1


class PriSpan:
    """A PRI span's D-channel signalling. `role` is the Q.931 side we play."""

    def __init__(
        self,
        role: Party = Party.USER,
        *,
        timers: dict[str, float] | None = None,
        t200: float = 1.0,
        n200: int = 3,
        t203: float = 10.0,
        k: int = 7,
        channels: tuple[int, ...] = E1_BCHANNELS,
        name: str = "span1",
    ) -> None:
        self.role = role
        self.name = name
        self.timers = dict(TIMER_DEFAULTS)
        if timers:
            self.timers.update(timers)
        self.link = DataLink(
            Role.USER if role is Party.USER else Role.NETWORK, t200=t200, n200=n200, t203=t203, k=k
        )
        self.channels = channels
        self.owner: dict[int, Call | None] = dict.fromkeys(channels)
        self.maintenance: set[int] = set()  # channels being restarted
        self.link_up = False
        self.calls: dict[tuple[bool, int], Call] = {}
        self.by_id: dict[int, Call] = {}
        self._next_id = 1
        self._next_cr = 1
        self._restarts: list[_Restart] = []
        self._events: list[ev.PriEvent] = []
        self.counters = {"messages_in": 0, "messages_out": 0, "ignored": 0, "status_sent": 0, "calls": 0}

    # ==== line side ===================================================================================
    def start(self, now: float) -> None:
        """The span is in frame alignment: bring the D-channel up."""
        self.link.start(now)
        self._pump(now)

    def alarm(self, now: float) -> None:
        """LOS/AIS/LOF: every call on the span is cleared now and no channel is offered until LinkUp."""
        self.link.physical_down(now)
        for call in list(self.by_id.values()):
            self._drop(call, Cause.TEMPORARY_FAILURE, "span alarm")
        self._pump(now)

    def receive_frame(self, frame: bytes, now: float) -> None:
        if _trace.isEnabledFor(logging.DEBUG):
            _trace.debug("%s rx %s", self.name, describe_frame(frame, self.link.peer_role))
        self.link.receive_frame(frame, now)
        self._pump(now)

    def frames_to_send(self) -> list[bytes]:
        out = self.link.frames_to_send()
        if out and _trace.isEnabledFor(logging.DEBUG):
            for f in out:
                _trace.debug("%s tx %s", self.name, describe_frame(f, self.link.role))
        return out

    def events(self) -> list[ev.PriEvent]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        best = self.link.next_deadline()
        for call in self.by_id.values():
            for t in (call.timer_at, call.t309_at):
                if t is not None and (best is None or t < best):
                    best = t
        for r in self._restarts:
            if best is None or r.deadline < best:
                best = r.deadline
        return best

    def handle_timers(self, now: float) -> None:
        self.link.handle_timers(now)
        self._pump(now)
        for call in list(self.by_id.values()):
            if call.t309_at is not None and now >= call.t309_at:
                call.t309_at = None
                log.info("%s: T309 expired, clearing call %d", self.name, call.call_id)
                self._drop(call, Cause.TEMPORARY_FAILURE, "T309")
                continue
            if call.timer_at is not None and now >= call.timer_at and call.call_id in self.by_id:
                self._timer_expired(call, now)
        for r in list(self._restarts):
            if now >= r.deadline:
                self._restart_timer(r, now)
        self._pump(now)

    # ==== commands from call control ====================================================================
    def place_call(
        self,
        called: str,
        now: float,
        *,
        calling: str | None = None,
        calling_ton: int = 0,
        calling_npi: int = 1,
        presentation: int = 0,
        screening: int = 0,
        called_ton: int = 0,
        called_npi: int = 1,
        channel: int | None = None,
        exclusive: bool | None = None,
        sending_complete: bool = True,
        transfer: int = 0x00,
        display: str | None = None,
    ) -> int:
        """Send SETUP; returns the call_id. A call that cannot start reports Released(cause) at once.
        Bad arguments (digits that are not IA5, plans out of range) raise ValueError and change nothing."""
        _check_number("called", called)
        if calling is not None:
            _check_number("calling", calling)
        for name, v, hi in (
            ("calling_ton", calling_ton, 7),
            ("called_ton", called_ton, 7),
            ("calling_npi", calling_npi, 15),
            ("called_npi", called_npi, 15),
            ("presentation", presentation, 3),
            ("screening", screening, 3),
        ):
            if not 0 <= v <= hi:
                raise ValueError(f"{name} {v} out of range 0..{hi}")
        if transfer not in (0x00, 0x10):
            raise ValueError("transfer must be 0x00 (speech) or 0x10 (3.1 kHz audio)")
        call = self._new_call(ours=True, cr=self._alloc_cr())
        if not self.link_up:
            self._drop(call, Cause.TEMPORARY_FAILURE, "D-channel down")
            return call.call_id
        if channel is not None and channel not in self.owner:
            self._drop(call, Cause.IDENTIFIED_CHANNEL_DOES_NOT_EXIST, f"no channel {channel}")
            return call.call_id
        if channel is not None and not self._free(channel):
            self._drop(call, Cause.REQUESTED_CHANNEL_NOT_AVAILABLE, f"channel {channel} busy")
            return call.call_id
        ch = channel if channel is not None else self._pick()
        if ch is None:
            self._drop(call, Cause.NO_CIRCUIT_AVAILABLE, "all channels busy")
            return call.call_id
        self._take(call, ch)
        if exclusive is None:
            exclusive = self.role is Party.NETWORK or channel is not None
        ies: list = []
        if sending_complete:
            ies.append(SendingComplete())
        ies.append(BearerCapability(transfer=transfer))
        ies.append(ChannelId(ch, exclusive=exclusive))
        if display:
            ies.append(Display(display))
        if calling is not None:
            ies.append(CallingNumber(calling, calling_ton, calling_npi, presentation, screening))
        ies.append(CalledNumber(called, called_ton, called_npi))
        call.setup_ies = ies
        self._send(call, MT.SETUP, ies, now)
        return call.call_id

    def proceeding(self, call_id: int, now: float) -> None:
        """Incoming call: CALL PROCEEDING (the number is complete, we are routing)."""
        call = self._call(call_id)
        self._send(call, MT.CALL_PROCEEDING, self._first_response_ies(call), now)

    def setup_ack(self, call_id: int, now: float) -> None:
        """Incoming call without Sending Complete: ask for more digits (overlap receiving)."""
        call = self._call(call_id)
        self._send(call, MT.SETUP_ACKNOWLEDGE, self._first_response_ies(call), now)

    def alert(self, call_id: int, now: float, inband: bool = False) -> None:
        call = self._call(call_id)
        ies = self._first_response_ies(call)
        if inband:
            ies.append(ProgressIndicator(8, self._location()))
        self._send(call, MT.ALERTING, ies, now)

    def progress(self, call_id: int, now: float, description: int = 8) -> None:
        """PROGRESS (default 8: in-band information, e.g. an announcement before answer or after failure)."""
        if not 1 <= description <= 127:
            raise ValueError(f"progress description {description} out of range")
        call = self._call(call_id)
        ies = self._first_response_ies(call)
        ies.append(ProgressIndicator(description, self._location()))
        self._send(call, MT.PROGRESS, ies, now)

    def answer(self, call_id: int, now: float, connected: str | None = None) -> None:
        if connected is not None:
            _check_number("connected", connected)
        call = self._call(call_id)
        ies = self._first_response_ies(call)
        if connected is not None:
            ies.append(ConnectedNumber(connected, 0, 1, 0, 1))
        self._send(call, MT.CONNECT, ies, now)
        if self.role is Party.NETWORK:
            self._connected(call, None)

    def send_digits(self, call_id: int, digits: str, now: float, complete: bool = False) -> None:
        """Overlap sending: more called-number digits in INFORMATION."""
        _check_number("digits", digits)
        call = self._call(call_id)
        ies: list = [SendingComplete()] if complete else []
        if digits:
            ies.append(CalledNumber(digits, 0, 1))
        self._send(call, MT.INFORMATION, ies, now)

    def hangup(self, call_id: int, now: float, cause: int = Cause.NORMAL_CLEARING) -> None:
        """Clear or refuse the call with `cause`; harmless on a call already clearing or gone."""
        if not 1 <= int(cause) <= 127:
            raise ValueError(f"cause {cause} is not a Q.850 cause value (1..127)")
        call = self.by_id.get(call_id)
        if call is None:
            return
        st = call.state
        peer_cleared = (self.role is Party.USER and st is S.DISCONNECT_INDICATION) or (
            self.role is Party.NETWORK and st is S.DISCONNECT_REQUEST
        )
        if not peer_cleared:
            call.cause = int(cause)  # otherwise Released reports the far end's cause
        cause_ie = CauseIE(int(cause), self._location())
        if st in (S.CALL_PRESENT, S.CALL_INITIATED) and not call.ours:
            self._send(call, MT.RELEASE_COMPLETE, [cause_ie], now)
            self._drop(call, cause, "refused")
        elif st is S.CALL_INITIATED and call.ours and not self.link_up:
            self._drop(call, cause, "cleared while the link is down")
        elif peer_cleared:
            self._send(call, MT.RELEASE, [cause_ie], now)
        elif st in (S.DISCONNECT_REQUEST, S.DISCONNECT_INDICATION, S.RELEASE_REQUEST, S.NULL):
            return
        else:
            self._send(call, MT.DISCONNECT, [cause_ie], now)
        self._pump(now)

    def restart(self, now: float, channel: int | None = None) -> None:
        """RESTART one channel, or the whole interface (channel=None). Calls on them are released."""
        if channel is not None and channel not in self.owner:
            raise ValueError(f"{self.name}: no B-channel {channel}")
        chans = (channel,) if channel is not None else self.channels
        for ch in chans:
            call = self.owner.get(ch)
            if call is not None:
                self._drop(call, Cause.TEMPORARY_FAILURE, "restart")
            self.maintenance.add(ch)
        if channel is not None:
            ies: list = [ChannelId(channel, exclusive=True), RestartIndicator(RESTART_INDICATED_CHANNELS)]
        else:
            ies = [RestartIndicator(RESTART_ALL_INTERFACES)]
        data = encode_message(Message(MT.RESTART, 0, True, ies))
        self._restarts.append(_Restart(tuple(chans), data, now + self.timers["T316"]))
        if self.link_up:
            self._transmit(data, now)  # otherwise it goes out when the link comes up

    # ==== invariants (tests) ==========================================================================
    def check_invariants(self) -> None:
        for ch, call in self.owner.items():
            if call is not None:
                assert call.channel == ch, f"channel {ch} owned by call {call.call_id} on {call.channel}"
                assert self.by_id.get(call.call_id) is call, f"channel {ch} owned by a dead call"
                assert ch not in self.maintenance, f"channel {ch} in a call and in maintenance"
        for call in self.by_id.values():
            assert call.state is not S.NULL, f"call {call.call_id} in Null kept"
            assert self.calls.get((call.ours, call.cr)) is call
            if call.channel is not None:
                assert self.owner.get(call.channel) is call, f"call {call.call_id} lost channel"
        assert len(self.calls) == len(self.by_id)
        lk = self.link
        for v in (lk.vs, lk.va, lk.vr):
            assert 0 <= v < 128
        assert (lk.vs - lk.va) % 128 <= lk.k

    # ==== internals ====================================================================================
    def _location(self) -> int:
        return Location.USER if self.role is Party.USER else Location.PUBLIC_LOCAL

    def _call(self, call_id: int) -> Call:
        call = self.by_id.get(call_id)
        if call is None:
            raise LocalProtocolError(f"{self.name}: no call {call_id}")
        return call

    def _new_call(self, ours: bool, cr: int) -> Call:
        call = Call(self._next_id, cr, ours, self.role)
        self._next_id += 1
        self.calls[(ours, cr)] = call
        self.by_id[call.call_id] = call
        self.counters["calls"] += 1
        return call

    def _alloc_cr(self) -> int:
        for _ in range(0x7FFF):
            cr = self._next_cr
            self._next_cr = cr % 0x7FFF + 1
            if (True, cr) not in self.calls:
                return cr
        raise RuntimeError("no free call reference")  # unreachable: at most 30 calls per span

    def _free(self, ch: int) -> bool:
        return self.link_up and ch in self.owner and self.owner[ch] is None and ch not in self.maintenance

    def _pick(self) -> int | None:
        # The user side hunts upward, the network side downward, to make glare rare.
        order = self.channels if self.role is Party.USER else reversed(self.channels)
        for ch in order:
            if self._free(ch):
                return ch
        return None

    def _take(self, call: Call, ch: int) -> None:
        self.owner[ch] = call
        call.channel = ch

    def _release_channel(self, call: Call) -> None:
        if call.channel is not None and self.owner.get(call.channel) is call:
            self.owner[call.channel] = None
        call.channel = None

    def _drop(self, call: Call, cause: int, why: str) -> None:
        """Release the call reference and its channel without a message; report Released."""
        call.machine.release()
        self._release_channel(call)
        self.calls.pop((call.ours, call.cr), None)
        if self.by_id.pop(call.call_id, None) is not None:
            self._events.append(ev.Released(call.call_id, int(cause)))
            log.debug("%s: call %d released (%s, cause %d)", self.name, call.call_id, why, cause)

    def _first_response_ies(self, call: Call) -> list:
        """Our first answer to an incoming SETUP names the call's channel (`_send` marks it confirmed)."""
        if call.confirmed or call.ours:
            return []
        return [ChannelId(call.channel, exclusive=True)]

    def _transmit(self, data: bytes, now: float) -> None:
        self.counters["messages_out"] += 1
        self.link.send(data, now)

    def _send(self, call: Call, mt: MT, ies: list, now: float) -> None:
        old = call.state
        call.machine.apply(self.role, mt)  # raises LocalProtocolError if not allowed
        if mt in _FIRST_RESPONSES and not call.ours:
            call.confirmed = True
        data = encode_message(Message(mt, call.cr, call.ours, ies))
        call.last_sent = data
        self._transmit(data, now)
        if call.state is S.NULL:
            self._drop(call, call.cause, "sent " + mt.name)
        elif call.state is not old or mt in (MT.RELEASE, MT.INFORMATION):
            self._arm(call, now)
        self._pump(now)

    def _arm(self, call: Call, now: float) -> None:
        name = call.machine.timer()
        if name != call.timer:
            call.expiries = 0
        call.timer = name
        call.timer_at = None if name is None else now + self.timers[name]

    def _status(
        self, cr: int, from_originator: bool, state: int, cause: int, now: float, diag: bytes = b""
    ) -> None:
        self.counters["status_sent"] += 1
        ies = [CauseIE(int(cause), self._location(), diag), CallState(state)]
        msg = Message(MT.STATUS, cr, from_originator, ies)
        self._transmit(encode_message(msg), now)

    def _connected(self, call: Call, number: PartyNumber | None) -> None:
        self._events.append(ev.Connected(call.call_id, number))

    # ---- link events ---------------------------------------------------------------------------------
    def _pump(self, now: float) -> None:
        for e in self.link.events():
            if type(e) is DataIndication:
                self._receive_message(e.data, now)
            elif type(e) is DLUp:
                self._on_link_up(e.reestablished, now)
            elif type(e) is DLDown:
                self._on_link_down(e.reason, now)

    def _on_link_up(self, reestablished: bool, now: float) -> None:
        was_up = self.link_up
        self.link_up = True
        for call in list(self.by_id.values()):
            # After a link failure (T309 running) or a reset of the link by the peer (§5.8.8/5.8.9), ask
            # the peer where each surviving call stands (§5.8.8 makes this optional for calls still being
            # set up; we ask, because a restarted peer that forgot a ringing call would otherwise leave it
            # without a timer). A peer that lost the call answers STATUS Null or RELEASE COMPLETE 81.
            clearing = call.state in (S.DISCONNECT_REQUEST, S.DISCONNECT_INDICATION, S.RELEASE_REQUEST)
            if call.t309_at is not None or (reestablished and not clearing):
                call.t309_at = None
                msg = Message(MT.STATUS_ENQUIRY, call.cr, call.ours, [])
                self._transmit(encode_message(msg), now)
        if not was_up:
            self._events.append(ev.LinkUp())
        for r in self._restarts:  # restarts sent while the link was down go out again
            self._transmit(r.message, now)

    def _on_link_down(self, reason: str, now: float) -> None:
        if not self.link_up:
            return
        self.link_up = False
        for call in list(self.by_id.values()):
            if call.state is S.ACTIVE:
                if call.t309_at is None:
                    call.t309_at = now + self.timers["T309"]
            else:
                self._drop(call, Cause.TEMPORARY_FAILURE, "data link lost")
        self._events.append(ev.LinkDown(reason))

    # ---- timers ----------------------------------------------------------------------------------------
    def _timer_expired(self, call: Call, now: float) -> None:
        name = call.timer
        call.timer_at = None
        call.expiries += 1
        log.info("%s: %s expired for call %d in state %d", self.name, name, call.call_id, call.state)
        cause = CauseIE(int(Cause.RECOVERY_ON_TIMER_EXPIRY), self._location())
        if name == "T303":
            if call.expiries == 1:
                self._transmit(call.last_sent, now)
                call.timer_at = now + self.timers["T303"]
                return
            call.cause = int(Cause.RECOVERY_ON_TIMER_EXPIRY)
            self._send(call, MT.RELEASE_COMPLETE, [cause], now)
        elif name in ("T310", "T313", "T304"):
            call.cause = int(Cause.RECOVERY_ON_TIMER_EXPIRY)
            self._send(call, MT.DISCONNECT, [cause], now)
        elif name == "T302":
            # No more digits and call control did not say the number is complete: incomplete number.
            call.cause = int(Cause.INVALID_NUMBER_FORMAT)
            self._send(call, MT.DISCONNECT, [CauseIE(call.cause, self._location())], now)
        elif name == "TRESP":
            call.cause = int(Cause.RECOVERY_ON_TIMER_EXPIRY)
            self._send(call, MT.RELEASE_COMPLETE, [cause], now)
        elif name == "TDISC":
            log.info("%s: call %d: no hangup after in-band DISCONNECT; releasing", self.name, call.call_id)
            self._send(call, MT.RELEASE, [CauseIE(call.cause, self._location())], now)
        elif name == "T305":
            self._send(call, MT.RELEASE, [CauseIE(call.cause, self._location())], now)
        elif name == "T308":
            if call.expiries == 1:
                self._transmit(call.last_sent, now)
                call.timer_at = now + self.timers["T308"]
                return
            ch = call.channel
            self._drop(call, Cause.RECOVERY_ON_TIMER_EXPIRY, "T308 twice")
            if ch is not None and self.link_up:
                self.restart(now, ch)  # the channel goes to maintenance until the peer acknowledges

    def _restart_timer(self, r: _Restart, now: float) -> None:
        if r.tries <= N316:
            r.tries += 1
            r.deadline = now + self.timers["T316"]
            self._transmit(r.message, now)
            return
        log.warning(
            "%s: RESTART of %s never acknowledged; channels returned to service", self.name, r.channels
        )
        self._restarts.remove(r)
        self.maintenance.difference_update(r.channels)
        self._events.append(ev.RestartCompleted(r.channels, False))

    # ---- receiving Q.931 ---------------------------------------------------------------------------------
    def _receive_message(self, data: bytes, now: float) -> None:
        self.counters["messages_in"] += 1
        try:
            msg = decode_message(data)
        except MessageError as exc:
            self.counters["ignored"] += 1
            log.info("%s: ignoring message %s: %s", self.name, data[:12].hex(), exc)
            return
        if msg.call_ref == 0:
            self._receive_global(msg, now)
            return
        call = self.calls.get((not msg.from_originator, msg.call_ref))
        if call is None:
            self._unknown_call_ref(msg, now)
            return
        try:
            self._receive_call_message(call, msg, now)
        except RemoteProtocolError as exc:
            log.info("%s: call %d: %s; STATUS cause 101", self.name, call.call_id, exc)
            bad = Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE
            self._status(call.cr, call.ours, call.state, bad, now, bytes((msg.type & 0x7F,)))

    def _ie_problems(self, msg: Message, mandatory: tuple[type, ...]) -> tuple[int | None, bool, bytes]:
        """§5.8.6/5.8.7: (cause for a STATUS/refusal or None, whether a mandatory IE is unusable,
        diagnostic: the identifier of the offending IE, as Q.850 suggests for causes 96, 99 and 100)."""
        for p in msg.errors:
            log.info("%s: %s IE 0x%02x: %s", self.name, msg.name, p.ie_id, p.detail)
        for cls in mandatory:
            if msg.get(cls) is None:
                bad = any(p.ie_id == cls.ID and p.kind == "content" for p in msg.errors)
                cause = Cause.INVALID_IE_CONTENTS if bad else Cause.MANDATORY_IE_MISSING
                return int(cause), True, bytes((cls.ID,))
        for p in msg.errors:
            if p.kind == "unrecognized" and p.comprehension_required:
                return int(Cause.MANDATORY_IE_MISSING), True, bytes((p.ie_id,))
        cause, diag = None, b""
        for p in msg.errors:
            if p.kind == "unrecognized" and cause is None:
                cause, diag = int(Cause.IE_NONEXISTENT), bytes((p.ie_id,))
            elif p.kind == "content":
                cause, diag = int(Cause.INVALID_IE_CONTENTS), bytes((p.ie_id,))
        return cause, False, diag

    def _unknown_call_ref(self, msg: Message, now: float) -> None:
        mt = msg.type
        cr, flag = msg.call_ref, not msg.from_originator  # our answer carries the opposite flag
        if mt == MT.SETUP and msg.from_originator:
            self._incoming_setup(msg, now)
            return
        self.counters["ignored"] += 1
        log.info("%s: %s for unknown call reference %d", self.name, msg.name, cr)
        if mt in (MT.RELEASE_COMPLETE, MT.SETUP):
            return
        if mt == MT.STATUS_ENQUIRY:
            self._status(cr, flag, 0, Cause.RESPONSE_TO_STATUS_ENQUIRY, now)
            return
        if mt == MT.STATUS:
            st = msg.get(CallState)
            if st is not None and st.state != 0:
                out = Message(
                    MT.RELEASE_COMPLETE,
                    cr,
                    flag,
                    [CauseIE(int(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE))],
                )
                self._transmit(encode_message(out), now)
            return
        out = Message(
            MT.RELEASE_COMPLETE, cr, flag, [CauseIE(int(Cause.INVALID_CALL_REFERENCE), self._location())]
        )
        self._transmit(encode_message(out), now)

    def _incoming_setup(self, msg: Message, now: float) -> None:
        cr = msg.call_ref

        def refuse(cause: int, why: str) -> None:
            log.info("%s: refusing SETUP cr %d: %s (cause %d)", self.name, cr, why, cause)
            out = Message(MT.RELEASE_COMPLETE, cr, False, [CauseIE(int(cause), self._location())])
            self._transmit(encode_message(out), now)

        mandatory: tuple[type, ...] = (BearerCapability,)
        if self.role is Party.USER:
            mandatory = (BearerCapability, ChannelId)
        cause, fatal, diag = self._ie_problems(msg, mandatory)
        if fatal:
            return refuse(cause or Cause.MANDATORY_IE_MISSING, "mandatory IE missing or bad")
        if any(p.kind == "content" and p.ie_id == ChannelId.ID for p in msg.errors):
            return refuse(Cause.INVALID_IE_CONTENTS, "channel identification unusable")
        bc = msg.get(BearerCapability)
        if bc.transfer not in (0x00, 0x10):
            return refuse(Cause.BEARER_CAPABILITY_NOT_IMPLEMENTED, f"bearer 0x{bc.transfer:02x}")
        if not self.link_up:
            return refuse(Cause.TEMPORARY_FAILURE, "link not up")
        cid: ChannelId | None = msg.get(ChannelId)
        ch: int | None = None
        if cid is not None and cid.channel is not None:
            want = cid.channel
            if want not in self.owner:
                return refuse(Cause.IDENTIFIED_CHANNEL_DOES_NOT_EXIST, f"no channel {want}")
            holder = self.owner[want]
            if self._free(want):
                ch = want
            elif (
                self.role is Party.USER
                and holder is not None
                and holder.ours
                and holder.state is S.CALL_INITIATED
                and want not in self.maintenance
            ):
                # Glare: our SETUP and the network's crossed on one channel; the network wins (§5.2.3.1)
                # and our call waits for the channel the network gives it in its answer.
                log.info("%s: glare on channel %d, network's call takes it", self.name, want)
                self._release_channel(holder)
                ch = want
            elif cid.exclusive:
                return refuse(Cause.REQUESTED_CHANNEL_NOT_AVAILABLE, f"channel {want} busy")
            else:
                ch = self._pick()
        elif cid is not None and cid.none:
            return refuse(Cause.REQUESTED_CHANNEL_NOT_AVAILABLE, "no-channel calls not supported")
        else:
            ch = self._pick()
        if ch is None:
            return refuse(Cause.NO_CIRCUIT_AVAILABLE, "all channels busy")
        call = self._new_call(ours=False, cr=cr)
        call.machine.apply(self.role.other, MT.SETUP)
        self._take(call, ch)
        self._arm(call, now)
        call.confirmed = False  # our first answer always names the channel
        if cause is not None:
            self._status(cr, False, call.state, cause, now, diag)
        called = msg.get(CalledNumber)
        disp = msg.get(Display)
        self._events.append(
            ev.IncomingCall(
                call.call_id,
                ch,
                called,
                msg.get(CallingNumber),
                msg.get(SendingComplete) is not None,
                bc.transfer,
                disp.text if disp is not None else None,
            )
        )

    def _receive_global(self, msg: Message, now: float) -> None:
        if msg.type == MT.RESTART:
            cause, fatal, diag = self._ie_problems(msg, (RestartIndicator,))
            ri = msg.get(RestartIndicator)
            cid = msg.get(ChannelId)
            if fatal or (ri.klass == RESTART_INDICATED_CHANNELS and (cid is None or cid.channel is None)):
                missing = cause or Cause.MANDATORY_IE_MISSING
                self._status(0, not msg.from_originator, 0, missing, now, diag or bytes((ChannelId.ID,)))
                return
            if ri.klass == RESTART_INDICATED_CHANNELS:
                if cid.channel not in self.owner:
                    self._status(0, not msg.from_originator, 0, Cause.INVALID_IE_CONTENTS, now, b"\x18")
                    return
                chans: tuple[int, ...] = (cid.channel,)
            else:
                chans = self.channels
            for ch in chans:
                call = self.owner.get(ch)
                if call is not None:
                    self._drop(call, Cause.TEMPORARY_FAILURE, "peer restart")
            ies: list = [cid] if ri.klass == RESTART_INDICATED_CHANNELS else []
            ies.append(ri)
            self._transmit(encode_message(Message(MT.RESTART_ACKNOWLEDGE, 0, False, ies)), now)
            self._events.append(ev.ChannelsRestarted(chans))
        elif msg.type == MT.RESTART_ACKNOWLEDGE:
            ri = msg.get(RestartIndicator)
            cid = msg.get(ChannelId)
            for r in self._restarts:
                single = len(r.channels) == 1 and cid is not None and cid.channel == r.channels[0]
                whole = (
                    ri is not None
                    and ri.klass in (RESTART_SINGLE_INTERFACE, RESTART_ALL_INTERFACES)
                    and len(r.channels) > 1
                )
                if single or whole:
                    self._restarts.remove(r)
                    self.maintenance.difference_update(r.channels)
                    self._events.append(ev.RestartCompleted(r.channels, True))
                    return
            log.info("%s: unexpected RESTART ACKNOWLEDGE ignored", self.name)
        elif msg.type == MT.STATUS_ENQUIRY:
            self._status(0, not msg.from_originator, 0, Cause.RESPONSE_TO_STATUS_ENQUIRY, now)
        else:
            self.counters["ignored"] += 1
            log.info("%s: %s on the global call reference ignored", self.name, msg.name)

    def _receive_call_message(self, call: Call, msg: Message, now: float) -> None:
        mt = msg.type
        peer = self.role.other
        if mt not in _IMPLEMENTED:
            log.info("%s: call %d: unknown message type 0x%02x; STATUS cause 97", self.name, call.call_id, mt)
            self._status(call.cr, call.ours, call.state, Cause.MESSAGE_TYPE_NONEXISTENT, now, bytes((mt,)))
            return
        if mt == MT.STATUS_ENQUIRY:
            self._status(call.cr, call.ours, call.state, Cause.RESPONSE_TO_STATUS_ENQUIRY, now)
            return
        if mt == MT.STATUS:
            self._receive_status(call, msg, now)
            return
        if mt == MT.SETUP:
            # §5.8.3.2 e): a SETUP for a call reference in use (T303 retransmission) is ignored.
            log.debug("%s: call %d: repeated SETUP ignored", self.name, call.call_id)
            return
        if mt in (MT.RESTART, MT.RESTART_ACKNOWLEDGE) or call.machine.next_state(peer, mt) is None:
            if mt == MT.DISCONNECT and call.state in (S.RELEASE_REQUEST, S.DISCONNECT_REQUEST):
                return  # clearing already under way; the standard says ignore
            if mt == MT.CONNECT_ACKNOWLEDGE:
                return
            raise RemoteProtocolError(
                f"{msg.name} from the {peer.value} side not allowed in state {call.state}"
            )
        handler = _HANDLERS.get(mt)
        mandatory = _MANDATORY.get(mt, ())
        cause, fatal, diag = self._ie_problems(msg, mandatory)
        if fatal and mt not in (MT.DISCONNECT, MT.RELEASE, MT.RELEASE_COMPLETE):
            log.info("%s: call %d: %s unusable; STATUS cause %d", self.name, call.call_id, msg.name, cause)
            self._status(call.cr, call.ours, call.state, cause or Cause.MANDATORY_IE_MISSING, now, diag)
            return
        if cause is not None and mt not in (MT.DISCONNECT, MT.RELEASE, MT.RELEASE_COMPLETE):
            self._status(call.cr, call.ours, call.state, cause, now, diag)
        old = call.state
        if handler is not None and handler(self, call, msg, now) is False:
            return
        call.machine.apply(peer, mt)
        if call.state is S.NULL:
            self._drop(call, call.cause, "received " + msg.name)
            return
        if call.state is not old or mt == MT.INFORMATION:
            self._arm(call, now)
        self._after_receive(call, msg, old, now)

    def _after_receive(self, call: Call, msg: Message, old: S, now: float) -> None:
        mt = msg.type
        cid = call.call_id
        st = call.state
        if mt == MT.SETUP_ACKNOWLEDGE:
            self._events.append(ev.SetupAcknowledged(cid, call.channel))
        elif mt == MT.CALL_PROCEEDING:
            self._events.append(ev.CallProceeding(cid, call.channel))
        elif mt == MT.ALERTING:
            pi = msg.get(ProgressIndicator)
            self._events.append(ev.Alerting(cid, pi is not None and pi.description == 8))
        elif mt == MT.PROGRESS:
            pi = msg.get(ProgressIndicator)
            if pi is not None:
                self._events.append(ev.Progress(cid, pi.description))
        elif mt == MT.CONNECT:
            cn = msg.get(ConnectedNumber)
            self._send(call, MT.CONNECT_ACKNOWLEDGE, [], now)
            self._connected(call, cn)
        elif mt == MT.CONNECT_ACKNOWLEDGE:
            if old is S.CONNECT_REQUEST:
                self._connected(call, None)
        elif mt == MT.INFORMATION:
            called = msg.get(CalledNumber)
            complete = msg.get(SendingComplete) is not None
            if called is not None or complete:
                self._events.append(ev.DigitsReceived(cid, called.digits if called else "", complete))
        elif mt == MT.DISCONNECT:
            ce = msg.get(CauseIE)
            call.cause = ce.value if ce is not None else int(Cause.NORMAL_UNSPECIFIED)
            pi = msg.get(ProgressIndicator)
            inband = pi is not None and pi.description == 8
            self._events.append(ev.Disconnected(cid, call.cause, inband))
            if not inband or ce is None:
                rel_cause = call.cause if ce is not None else int(Cause.MANDATORY_IE_MISSING)
                self._send(call, MT.RELEASE, [CauseIE(rel_cause, self._location())], now)
        elif mt == MT.RELEASE and st is S.RELEASE_REQUEST:
            self._send(call, MT.RELEASE_COMPLETE, [], now)

    # handlers run before the state change; returning False stops the message (they have dealt with it)
    def _h_channel(self, call: Call, msg: Message, now: float) -> bool:
        """First answer to our SETUP: the channel the peer gives the call (glare, preferred channel)."""
        cid = msg.get(ChannelId)
        if cid is None or cid.channel is None:
            if call.channel is None:
                log.info("%s: call %d has no channel after glare; clearing", self.name, call.call_id)
                self._clear_own(call, Cause.REQUESTED_CHANNEL_NOT_AVAILABLE, msg, now)
                return False
            return True
        if cid.channel != call.channel:
            if cid.channel in self.owner and self._free(cid.channel):
                self._release_channel(call)
                self._take(call, cid.channel)
            else:
                log.info("%s: call %d: peer gave busy channel %s", self.name, call.call_id, cid.channel)
                self._clear_own(call, Cause.REQUESTED_CHANNEL_NOT_AVAILABLE, msg, now)
                return False
        call.confirmed = True
        return True

    def _clear_own(self, call: Call, cause: int, msg: Message, now: float) -> None:
        """Clear our outgoing call after the answer `msg` (applied first so the tables stay in step)."""
        call.machine.apply(self.role.other, msg.type)
        call.cause = int(cause)
        self._send(call, MT.DISCONNECT, [CauseIE(int(cause), self._location())], now)

    def _h_release(self, call: Call, msg: Message, now: float) -> bool:
        ce = msg.get(CauseIE)
        if ce is not None:
            call.cause = ce.value
        elif call.state not in (S.DISCONNECT_REQUEST, S.DISCONNECT_INDICATION, S.RELEASE_REQUEST):
            call.cause = int(Cause.NORMAL_UNSPECIFIED)
        return True

    def _receive_status(self, call: Call, msg: Message, now: float) -> None:
        st = msg.get(CallState)
        ce = msg.get(CauseIE)
        if st is None or ce is None:
            log.info("%s: call %d: STATUS without cause or call state ignored", self.name, call.call_id)
            return
        log.info(
            "%s: call %d: STATUS cause %d peer state %d (ours %d)",
            self.name,
            call.call_id,
            ce.value,
            st.state,
            call.state,
        )
        if st.state == 0:
            # §5.8.11: the peer has no such call: release the call reference and the channel.
            self._drop(
                call,
                ce.value if ce.value != 30 else int(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE),
                "peer has no such call",
            )
        elif st.state not in COMPATIBLE[(self.role.value, int(call.state))]:
            log.warning(
                "%s: call %d: peer in state %d, we in %d: clearing (cause 101)",
                self.name,
                call.call_id,
                st.state,
                call.state,
            )
            call.cause = int(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE)
            cause_ie = CauseIE(call.cause, self._location())
            if call.state in (S.RELEASE_REQUEST,):
                return
            self._send(call, MT.RELEASE, [cause_ie], now)


_HANDLERS = {
    MT.SETUP_ACKNOWLEDGE: PriSpan._h_channel,
    MT.CALL_PROCEEDING: PriSpan._h_channel,
    MT.ALERTING: PriSpan._h_channel,
    MT.CONNECT: PriSpan._h_channel,
    MT.RELEASE: PriSpan._h_release,
    MT.RELEASE_COMPLETE: PriSpan._h_release,
}
_FIRST_RESPONSES = frozenset({MT.CALL_PROCEEDING, MT.SETUP_ACKNOWLEDGE, MT.ALERTING, MT.CONNECT})
_MANDATORY: dict[int, tuple[type, ...]] = {
    MT.DISCONNECT: (CauseIE,),
}
# Message types this stack implements; others get STATUS cause 97 (§5.8.4 / 5.8.5).
_IMPLEMENTED = {int(m) for table in TRANSITIONS.values() for (_p, m) in table} | {
    int(m) for m in STATUS_NEUTRAL
}
