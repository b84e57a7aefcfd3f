"""PRI trunks into call control: a `PriSpan` (firmware.signalling.pri) joined to the endpoint interface.

    trunk = PriTrunk(span, "span1", first_row=0, control=mgr, clock=clock, span_no=1)
    mgr.trunks["span1"] = trunk                  # outbound calls through this span (an Originator)
    ... on every D-channel frame / timer:  span.receive_frame(f, now); trunk.pump(now)

B-channel timeslot ts (1-15, 17-31) of the span is engine row `first_row + index` (index 0..29 in timeslot
order). `pump(now)` turns the stack's events into `CallControl` calls; `PriLeg` turns call control's
commands into stack commands. Each time the D-channel comes up with no call standing the trunk RESTARTs
the whole span, so it starts with every B-channel idle on both sides (at start-up, e.g. after a kill -9 of
the box, and after a restart of the exchange or a pulled cable). The stack is sans-I/O: whoever owns the
D-channel moves its frames (`span.frames_to_send()`) and calls `pump` after feeding it.
"""

from __future__ import annotations

from typing import Any

from board.clock import Clock
from firmware.calls.endpoint import CallControl, Cause, Endpoint
from firmware.signalling import events as ev
from firmware.signalling.pri import PriSpan

TIMESLOTS = [ts for ts in range(1, 32) if ts != 16]


class PriLeg(Endpoint):
    kind = "trunk"

    def __init__(self, trunk: PriTrunk, call_id: int, ts: int, inbound: bool) -> None:
        super().__init__(f"DAHDI/{trunk.span_no}-{ts}", trunk.row(ts), trunk.name)
        self.trunk_obj = trunk
        self.call_id = call_id
        self.ts = ts
        self.inbound = inbound
        self.state = "dialling"
        self.cause: int | None = None
        self._proceeding = False

    def _span(self) -> PriSpan:
        return self.trunk_obj.span

    def _now(self) -> float:
        return self.trunk_obj.clock.now()

    def _flush(self) -> None:
        self.trunk_obj.flush()

    def progress(self) -> None:
        if self.state in ("dialling", "ringing") and self.inbound:
            self._span().alert(self.call_id, self._now(), inband=True)  # PI 8: tones in the B-channel
            self.state = "early"
            self._flush()

    def ring(self) -> None:
        if self.state == "dialling" and self.inbound:
            self._span().alert(self.call_id, self._now(), inband=False)
            self.state = "ringing"
            self._flush()

    def answer(self) -> None:
        if self.state in ("dialling", "ringing", "early") and self.inbound:
            self._span().answer(self.call_id, self._now())
            self.state = "up"
            self.up = True
            self._flush()

    def hangup(self, cause: int = Cause.NORMAL) -> None:
        if self.state != "down":
            self.state = "down"
            self.cause = cause
            self.up = False
            self._span().hangup(self.call_id, self._now(), cause)
            self._flush()


class PriTrunk:
    def __init__(
        self,
        span: PriSpan,
        name: str,
        first_row: int,
        control: CallControl,
        clock: Clock,
        span_no: int = 1,
        send: Any = None,
    ) -> None:
        self.span = span
        self.name = name
        self.first_row = first_row
        self.control = control
        self.clock = clock
        self.span_no = span_no
        self.send = send  # callable(frame) that puts a D-channel frame on the line, or None (caller drains)
        self.legs: dict[int, PriLeg] = {}
        self.link_up = False
        self.restarts = 0  # RESTARTs of the whole span sent (one per D-channel up)
        self.restarted: bool | None = None  # the last one acknowledged (None: none finished yet)

    def row(self, ts: int) -> int:
        return self.first_row + TIMESLOTS.index(ts)

    def flush(self) -> None:
        if self.send is not None:
            for f in self.span.frames_to_send():
                self.send(f)

    # --- Originator ---------------------------------------------------------------------------------
    def originate(
        self, number: str, caller_id: str, caller_name: str | None, control: CallControl
    ) -> PriLeg | None:
        if not self.link_up:
            return None
        free = [ts for ts in TIMESLOTS if self.span.owner.get(ts) is None and ts not in self.span.maintenance]
        if not free:
            return None
        now = self.clock.now()
        call_id = self.span.place_call(number, now, calling=caller_id or None, channel=free[0])
        leg = PriLeg(self, call_id, free[0], inbound=False)
        leg.number = number
        self.legs[call_id] = leg
        self.flush()
        return leg

    # --- stack events -> call control ---------------------------------------------------------------
    def pump(self, now: float) -> None:
        for e in self.span.events():
            self._event(e, now)
        self.flush()

    def _event(self, e: ev.PriEvent, now: float) -> None:
        if isinstance(e, ev.LinkUp):
            # The D-channel came up with no call standing (start-up, after a span alarm, a restart of the box
            # or of the exchange): RESTART of the whole interface puts every B-channel idle on both sides,
            # whatever the other side remembers (Q.931 5.5; chan_dahdi does the same). Calls that rode out a
            # short D-channel loss (T309) are kept: no RESTART then.
            self.link_up = True
            if not self.span.by_id:
                self.span.restart(now)
                self.restarts += 1
            return
        if isinstance(e, ev.RestartCompleted):
            self.restarted = e.acknowledged
            return
        if isinstance(e, ev.LinkDown):
            self.link_up = False
            return
        if isinstance(e, ev.IncomingCall):
            leg = PriLeg(self, e.call_id, e.channel, inbound=True)
            self.legs[e.call_id] = leg
            self.span.proceeding(e.call_id, now)
            caller = e.calling.digits if e.calling is not None else ""
            called = e.called.digits if e.called is not None else ""
            leg.number = caller
            self.control.incoming(leg, caller, called, e.display)
            return
        leg = self.legs.get(getattr(e, "call_id", -1))
        if leg is None:
            return
        if isinstance(e, ev.CallProceeding | ev.SetupAcknowledged) and e.channel and e.channel != leg.ts:
            # glare: the network moved our call to another channel
            move = getattr(self.control, "move_channel", None)
            leg.ts = e.channel
            leg.name = f"DAHDI/{self.span_no}-{e.channel}"
            if move is not None:
                move(leg, self.row(e.channel))
            else:
                leg.channel = self.row(e.channel)
        elif isinstance(e, ev.Alerting):
            if not leg.inbound:
                leg.state = "ringing"
                self.control.ringing(leg)
        elif isinstance(e, ev.Connected):
            if not leg.inbound and leg.state != "down":
                leg.state = "up"
                leg.up = True
                self.control.answered(leg)
        elif isinstance(e, ev.Disconnected):
            if e.inband:
                self.span.hangup(e.call_id, now, e.cause)
            self._gone(leg, e.cause)
        elif isinstance(e, ev.Released):
            self._gone(leg, e.cause)
            self.legs.pop(e.call_id, None)

    def _gone(self, leg: PriLeg, cause: int) -> None:
        if leg.state == "down":
            return
        leg.state = "down"
        leg.up = False
        leg.cause = cause
        self.control.hangup(leg, cause)
