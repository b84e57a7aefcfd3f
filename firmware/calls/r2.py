"""MFC/R2 trunks into call control: an `R2Span` (firmware.signalling.r2) joined to the endpoint interface and
to the media engine, which carries the MF signals in the B-channels.

    trunk = R2Trunk(span, "span1", first_row, control=mgr, engine=engine, clock=clock, span_no=1,
                    set_cas=lambda chan, abcd: driver_span.cas_set(chan, abcd))
    mgr.trunks["span1"] = trunk                       # outbound calls through this span (an Originator)
    mgr.media_watchers.append(trunk.on_media_event)   # MF receiver events for the span's rows
    on every ABCD change / timer:  span.line_signal(chan, abcd, now); trunk.pump(now)

CAS channel c (1..30) is engine row `first_row + c - 1` (the board's TdmPort order). The stack's commands
are served here: `SetAbcd` goes to `set_cas` (the E1 driver), `PlayMf` loops a 400-sample MF buffer
(`dsp.r2mf.mf_loop`) on the row with the engine's player until the next `PlayMf`, and `DetectMf` lends the
row a slot of the engine's "r2mf" detector pool (`dsp.r2mf.R2MfDetector`), which this module adds to the
engine's pools when the first R2 trunk is made (the engine runs every pool it has; no engine change).

An incoming call is accepted by the trunk itself when its register signalling completes (B-1 "subscriber
free, charge"), unless `admit(dnis, ani)` returns a Q.850 cause, which is refused with the matching group B
signal (17 busy -> B-2, 1 unallocated -> B-5, else B-4 congestion). Call control hears of the call only
once the compelled cycle of that B signal is over, so prompts and tones call control plays on the row never
cut into an MF signal; call control's `answer` then sends the line answer signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from board.clock import Clock
from dsp.r2mf import R2MfDetector, mf_loop
from firmware.calls.endpoint import CallControl, Cause, Endpoint
from firmware.engine import DetectorPool, MediaEngine, MediaEvent
from firmware.signalling import r2 as sig

log = logging.getLogger("callbox.calls.r2")


def ensure_r2_detectors(engine: MediaEngine) -> None:
    """Give the engine an "r2mf" detector pool (once) so rows can listen for MF signals."""
    if "r2mf" not in engine.pools:
        engine.pools["r2mf"] = DetectorPool(R2MfDetector, engine.channels, engine.silence_row, "r2mf")


class R2Leg(Endpoint):
    kind = "trunk"

    def __init__(self, trunk: R2Trunk, call_id: int, chan: int, inbound: bool) -> None:
        super().__init__(f"DAHDI/{trunk.span_no}-{chan}", trunk.row(chan), trunk.name)
        self.trunk_obj = trunk
        self.call_id = call_id
        self.chan = chan
        self.inbound = inbound
        self.state = "dialling"
        self.cause: int | None = None

    def _now(self) -> float:
        return self.trunk_obj.clock.now()

    def progress(self) -> None:
        return None  # the call is already accepted (B-1): in-band tones reach the caller as they are

    def ring(self) -> None:
        return None  # the exchange plays ringback after B-1

    def answer(self) -> None:
        if self.state != "down" and self.inbound and self.state != "up":
            try:
                self.trunk_obj.span.answer(self.call_id, self._now())
            except sig.LocalProtocolError as e:
                log.info("%s: answer refused by the stack: %s", self.name, e)
                return
            self.state = "up"
            self.up = True
            self.trunk_obj.flush()

    def hangup(self, cause: int = Cause.NORMAL) -> None:
        if self.state != "down":
            self.state = "down"
            self.cause = cause
            self.up = False
            self.trunk_obj.span.hangup(self.call_id, self._now(), cause)
            self.trunk_obj.legs.pop(self.call_id, None)
            self.trunk_obj.flush()


class R2Trunk:
    def __init__(
        self,
        span: sig.R2Span,
        name: str,
        first_row: int,
        control: CallControl,
        engine: MediaEngine,
        clock: Clock,
        span_no: int = 1,
        set_cas: Callable[[int, int], None] | None = None,
        admit: Callable[[str, str], int | None] | None = None,
    ) -> None:
        self.span = span
        self.name = name
        self.first_row = first_row
        self.control = control
        self.engine = engine
        self.clock = clock
        self.span_no = span_no
        self.set_cas = set_cas
        self.cas_backlog: list[tuple[int, int]] = []  # (channel, abcd) when no set_cas is given
        self.admit = admit
        self.legs: dict[int, R2Leg] = {}
        self.offered: dict[int, sig.IncomingCall] = {}  # accepted by us, waiting for the B cycle to end
        self.listening: dict[int, str | None] = {}
        self.errors = 0
        ensure_r2_detectors(engine)
        self.flush()

    def row(self, chan: int) -> int:
        return self.first_row + chan - 1

    @property
    def link_up(self) -> bool:
        return self.span.started

    # --- Originator ---------------------------------------------------------------------------------
    def originate(
        self, number: str, caller_id: str, caller_name: str | None, control: CallControl
    ) -> R2Leg | None:
        if not self.span.started or not number.isdigit():
            return None
        ani = caller_id if caller_id.isdigit() else ""
        call_id = self.span.place_call(number[:30], self.clock.now(), ani=ani[:20])
        chan = self.span.channel_of(call_id)
        if chan is None:  # no free channel: the stack already released the call
            self.span.events()
            return None
        leg = R2Leg(self, call_id, chan, inbound=False)
        leg.number = number
        self.legs[call_id] = leg
        self.flush()
        return leg

    # --- MF receiver events for the span's rows ------------------------------------------------------
    def on_media_event(self, event: MediaEvent) -> bool:
        chan = event.channel - self.first_row + 1
        if event.kind != "r2mf" or not 1 <= chan <= 30:
            return False
        value = str(event.value)
        now = self.clock.now()
        if value == "off":
            self.span.mf(chan, 0, now)
        elif value[:1] == self.listening.get(chan) and value[1:].isdigit():
            self.span.mf(chan, int(value[1:]), now)
        self.pump(now)
        return True

    # --- the stack's commands and events ---------------------------------------------------------------
    def flush(self) -> None:
        for c in self.span.commands():
            if isinstance(c, sig.SetAbcd):
                if self.set_cas is not None:
                    self.set_cas(c.channel, c.abcd)
                else:
                    self.cas_backlog.append((c.channel, c.abcd))
            elif isinstance(c, sig.PlayMf):
                row = self.row(c.channel)
                if c.signal is None:
                    self.engine.stop_play(row)
                else:
                    key = f"r2mf/{c.direction}{c.signal}"
                    buf = self.engine.buffers.get(key) or self.engine.add_buffer(
                        key, mf_loop(c.direction, c.signal)
                    )
                    self.engine.play(row, [buf], loop=True, replace=True)
            elif isinstance(c, sig.DetectMf):
                self.listening[c.channel] = c.direction
                self.engine.enable_detector("r2mf", self.row(c.channel), c.direction is not None)

    def pump(self, now: float) -> None:
        d = self.span.next_deadline()
        if d is not None and d <= now:
            self.span.handle_timers(now)
        for e in self.span.events():
            self._event(e, now)
        self.flush()

    def _event(self, e: object, now: float) -> None:
        if isinstance(e, sig.IncomingCall):
            cause = self.admit(e.dnis, e.ani) if self.admit is not None else None
            if cause is None:
                self.offered[e.call_id] = e
                self.span.accept(e.call_id, now)
            else:
                log.info("%s: call %s -> %s refused (%d)", self.name, e.ani, e.dnis, cause)
                self.span.reject(e.call_id, now, cause)
            return
        if isinstance(e, sig.ProtocolError):
            self.errors += 1
            log.info("%s: R2 channel %d: %s", self.name, e.channel, e.reason)
            return
        if isinstance(e, sig.Blocked):
            log.info("%s: channel %d %s by %s", self.name, e.channel, "blocked" if e.blocked else "unblocked",
                     "the far end" if e.remote else "us")  # fmt: skip
            return
        if isinstance(e, sig.Accepted):
            offer = self.offered.pop(e.call_id, None)
            if offer is not None:  # incoming: register phase over, call control takes it from here
                leg = R2Leg(self, e.call_id, offer.channel, inbound=True)
                leg.number = offer.ani
                self.legs[e.call_id] = leg
                self.control.incoming(leg, offer.ani, offer.dnis, None)
                return
            leg = self.legs.get(e.call_id)
            if leg is not None and leg.state == "dialling":
                leg.state = "ringing"
                self.control.ringing(leg)
            return
        call_id = getattr(e, "call_id", -1)
        if isinstance(e, sig.Released):
            self.offered.pop(call_id, None)
        leg = self.legs.get(call_id)
        if leg is None:
            return
        if isinstance(e, sig.Answered):
            if not leg.inbound and leg.state != "down":
                leg.state = "up"
                leg.up = True
                self.control.answered(leg)
        elif isinstance(e, sig.Released):
            self.legs.pop(call_id, None)
            if leg.state != "down":
                leg.state = "down"
                leg.up = False
                leg.cause = e.cause
                self.control.hangup(leg, e.cause)

    def status(self) -> dict[str, Any]:
        lines: dict[str, int] = {}
        for ch in self.span.channels.values():
            lines[ch.line.value] = lines.get(ch.line.value, 0) + 1
        return {"started": self.span.started, "lines": lines, "calls": len(self.legs), "errors": self.errors}
