"""FXO lines into call control: `FxoPort` supervision (firmware.signalling.fxo) joined to the endpoint
interface and the media engine.

    lines = FxoLines(ports, first_row, control=mgr, engine=engine, clock=clock, dnis="02161234567")
    mgr.trunks["fxo"] = lines                      # outbound calls (an Originator)
    driver events:  port.line_event(now, kind, value); lines.pump(now)
    driver commands: lines.hook_commands -> [(port_index, offhook)] for the FXO driver

Port i is engine row `first_row + i`. The ports' DSP needs are served by the engine: `Detect("callerid")`
/ `Detect("cpt")` enable the engine's caller-ID / call-progress detectors on the row, and their events come
back through `on_media_event`; `PlayDigits` plays DTMF into the row. An incoming call is offered to call
control once its caller ID has arrived (after the first ring) or at the second ring without one; call
control answers (answer_rings = 0 is the setting to use with the box's IVR).
"""

from __future__ import annotations

from typing import Any

from board.clock import Clock
from dsp.events import Event
from firmware.calls.endpoint import CallControl, Cause, Endpoint
from firmware.engine import MediaEngine, MediaEvent
from firmware.engine.tones import dtmf_buffer
from firmware.signalling import fxo as sig

DIAL_FAILED_CAUSE = {
    "busy": Cause.USER_BUSY,
    "congestion": Cause.CONGESTION,
    "no answer": Cause.NO_ANSWER,
    "no dial tone": Cause.NETWORK_OUT_OF_ORDER,
    "no battery": Cause.OUT_OF_ORDER,
    "cancelled": Cause.NORMAL,
}


class FxoLeg(Endpoint):
    kind = "fxo"

    def __init__(self, lines: FxoLines, index: int, inbound: bool) -> None:
        super().__init__(f"DAHDI/fxo-{index + 1}", lines.first_row + index, lines.name)
        self.lines = lines
        self.index = index
        self.inbound = inbound
        self.state = "dialling"
        self.cause: int | None = None

    def _port(self) -> sig.FxoPort:
        return self.lines.ports[self.index]

    def progress(self) -> None:
        return None  # an analog line has no early media: the caller hears the CO's ringing

    def ring(self) -> None:
        return None

    def answer(self) -> None:
        if self.state != "down" and self.inbound and self._port().state is sig.S.RINGING:
            self._port().answer(self.lines.clock.now())
            self.state = "up"
            self.up = True
            self.lines.flush()

    def hangup(self, cause: int = Cause.NORMAL) -> None:
        if self.state != "down":
            self.state = "down"
            self.cause = cause
            self.up = False
            self._port().hangup(self.lines.clock.now())
            self.lines.legs.pop(self.index, None)
            self.lines.flush()


class FxoLines:
    def __init__(
        self,
        ports: list[sig.FxoPort],
        first_row: int,
        control: CallControl,
        engine: MediaEngine,
        clock: Clock,
        name: str = "fxo",
        dnis: str = "",
    ) -> None:
        self.ports = ports
        self.first_row = first_row
        self.control = control
        self.engine = engine
        self.clock = clock
        self.name = name
        self.dnis = dnis
        self.legs: dict[int, FxoLeg] = {}
        self.hook_commands: list[tuple[int, bool]] = []  # for the FXO driver: (port index, off hook)
        self.gain_commands: list[tuple[int, float, float]] = []
        self._pending_cid: dict[int, Any] = {}
        self.flush()

    # --- Originator ----------------------------------------------------------------------------------
    def originate(
        self, number: str, caller_id: str, caller_name: str | None, control: CallControl
    ) -> FxoLeg | None:
        for i, port in enumerate(self.ports):
            if i not in self.legs and port.state is sig.S.IDLE and port.battery:
                port.dial(self.clock.now(), number)
                leg = FxoLeg(self, i, inbound=False)
                leg.number = number
                self.legs[i] = leg
                self.flush()
                return leg
        return None

    # --- media events for the lines' rows (caller ID, call-progress tones) ---------------------------
    def on_media_event(self, event: MediaEvent) -> bool:
        i = event.channel - self.first_row
        if not 0 <= i < len(self.ports) or event.kind not in ("callerid", "tone"):
            return False
        self.ports[i].dsp_event(self.clock.now(), Event(i, event.kind, event.value, event.sample))
        self.pump(self.clock.now())
        return True

    # --- the ports' commands and events ---------------------------------------------------------------
    def flush(self) -> None:
        for i, port in enumerate(self.ports):
            row = self.first_row + i
            for c in port.commands():
                if isinstance(c, sig.Hook):
                    self.hook_commands.append((i, c.offhook))
                elif isinstance(c, sig.SetGain):
                    self.gain_commands.append((i, c.rx_db, c.tx_db))
                elif isinstance(c, sig.Detect):
                    self.engine.enable_detector("callerid" if c.what == "callerid" else "tone", row, c.on)
                elif isinstance(c, sig.PlayDigits):
                    pcm = dtmf_buffer(c.digits, c.on_ms / 1000, c.off_ms / 1000)
                    self.engine.play(row, [self.engine.add_buffer(f"fxo/dial/{c.digits}", pcm)])

    def pump(self, now: float) -> None:
        for i, port in enumerate(self.ports):
            d = port.next_deadline()
            if d is not None and d <= now:
                port.handle_timers(now)
            for e in port.events():
                self._event(i, e, now)
        self.flush()

    def _offer(self, i: int, callerid: Any) -> None:
        leg = FxoLeg(self, i, inbound=True)
        self.legs[i] = leg
        number = getattr(callerid, "number", None) or ""
        name = getattr(callerid, "name", None)
        leg.number = number
        self.control.incoming(leg, number, self.dnis, name)

    def _event(self, i: int, e: Any, now: float) -> None:
        leg = self.legs.get(i)
        if isinstance(e, sig.CallerIdReceived):
            if leg is None:
                self._offer(i, e.callerid)
        elif isinstance(e, sig.Ringing):
            if leg is None and e.count >= 2:
                self._offer(i, e.callerid)
        elif isinstance(e, sig.RingingStopped | sig.Disconnected | sig.DialFailed):
            if leg is not None and leg.state != "down":
                cause = Cause.NORMAL
                if isinstance(e, sig.DialFailed):
                    cause = DIAL_FAILED_CAUSE.get(e.reason, Cause.NORMAL_UNSPECIFIED)
                elif isinstance(e, sig.Disconnected) and e.reason in ("busy", "congestion"):
                    cause = Cause.NORMAL  # the far end hung up; the CO then sends busy tone
                leg.state = "down"
                leg.up = False
                leg.cause = cause
                self.legs.pop(i, None)
                self.control.hangup(leg, cause)
        elif isinstance(e, sig.Progress):
            if leg is not None and not leg.inbound:
                leg.state = "ringing"
                self.control.ringing(leg)
        elif isinstance(e, sig.Answered):
            if leg is not None and not e.incoming and leg.state != "down":
                leg.state = "up"
                leg.up = True
                self.control.answered(leg)
