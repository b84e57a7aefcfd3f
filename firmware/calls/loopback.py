"""In-process lines: endpoints whose far end is a scripted phone in this process (test doubles, demo agents).

A `LoopNetwork` owns a range of rows of a `LoopPort` and plays the line side for them: callers that dial in
(`call_in`), phones that can be called (`add_phone`, used as an `Originator`), pressing keys as in-band DTMF
audio, hanging up, answering after a delay, being busy. Timing runs on the shared clock, so everything is
exact in virtual time. Until SIP (issue 7) exists, the demo's agents are LoopNetwork phones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from board.clock import Clock
from firmware.calls.endpoint import CallControl, Cause, Endpoint
from firmware.engine.ports import LoopPort
from firmware.engine.tones import dtmf_buffer


@dataclass
class PhoneBehaviour:
    answer_after: float | None = 2.0  # seconds of ringing before answering; None = never answers
    busy: bool = False
    reject_cause: int | None = None  # e.g. Cause.UNALLOCATED
    hangup_after: float | None = None  # seconds after answer the phone hangs up by itself


class LoopLeg(Endpoint):
    def __init__(self, net: LoopNetwork, name: str, channel: int, trunk: str | None, kind: str) -> None:
        super().__init__(name, channel, trunk)
        self.kind = kind
        self.net = net
        self.state = "idle"  # idle | dialling | ringing | early | up | down
        self.cause: int | None = None
        self.received_dtmf = ""
        self.inbound = False
        self.control: CallControl | None = None
        self.log: list[tuple[float, str]] = []
        self.row = channel - net.engine_offset  # this leg's row on the network's own port

    # --- call control -> line ------------------------------------------------------------------
    def _note(self, what: str) -> None:
        self.log.append((self.net.clock.now(), what))

    def progress(self) -> None:
        self._note("progress")
        if self.state in ("dialling", "ringing"):
            self.state = "early"

    def ring(self) -> None:
        self._note("ring")
        if self.state == "dialling":
            self.state = "ringing"

    def answer(self) -> None:
        self._note("answer")
        if self.state != "down":
            self.state = "up"
            self.up = True

    def hangup(self, cause: int = Cause.NORMAL) -> None:
        self._note(f"hangup {cause}")
        if self.state != "down":
            self.state = "down"
            self.cause = cause
            self.up = False
            self.net.free(self)

    def send_dtmf(self, digits: str) -> None:
        self.received_dtmf += digits

    # --- far end (the simulated person / phone) -------------------------------------------------
    def press(self, digits: str, inband: bool | None = None) -> None:
        """The far end presses keys: in-band DTMF audio into the box, or out-of-band signalling."""
        if self.state == "down" or self.control is None:
            return
        use_inband = self.net.inband if inband is None else inband
        if use_inband:
            self.net.port.send(self.row, dtmf_buffer(digits))
        else:
            for d in digits:
                self.control.dtmf(self, d)

    def say(self, pcm: np.ndarray) -> None:
        if self.state != "down":
            self.net.port.send(self.row, pcm)

    def far_hangup(self, cause: int = Cause.NORMAL) -> None:
        if self.state == "down" or self.control is None:
            return
        self.state = "down"
        self.cause = cause
        self.up = False
        self.net.free(self)
        self.control.hangup(self, cause)

    def far_answer(self) -> None:
        if self.state in ("dialling", "ringing", "early") and self.control is not None:
            self.state = "up"
            self.up = True
            self.control.answered(self)

    def heard(self) -> np.ndarray:
        return self.net.port.heard(self.row)


class LoopNetwork:
    """A set of in-process lines on rows [first, first+count) of a LoopPort."""

    def __init__(
        self,
        port: LoopPort,
        clock: Clock,
        first: int,
        count: int,
        prefix: str = "Local",
        kind: str = "local",
        trunk: str | None = None,
        inband: bool = True,
        engine_offset: int = 0,
    ) -> None:
        """engine_offset: where the port's row 0 sits in the engine's array (StackedPort)."""
        self.port = port
        self.engine_offset = engine_offset
        self.clock = clock
        self.rows = list(range(first, first + count))
        self.free_rows = list(reversed(self.rows))
        self.prefix = prefix
        self.kind = kind
        self.trunk = trunk
        self.inband = inband
        self.phones: dict[str, PhoneBehaviour] = {}
        self.legs: dict[int, LoopLeg] = {}
        self._seq = 0
        self.on_ring: list[Callable[[LoopLeg, str], None]] = []

    def _new_leg(self, label: str) -> LoopLeg | None:
        if not self.free_rows:
            return None
        row = self.free_rows.pop()
        self._seq += 1
        if self.kind in ("trunk", "fxo"):  # Asterisk DAHDI style: span-channel
            name = f"{self.prefix}-{row - self.rows[0] + 1}"
        else:
            name = f"{self.prefix}/{label}-{self._seq:08x}"
        leg = LoopLeg(self, name, row + self.engine_offset, self.trunk, self.kind)
        self.legs[row] = leg
        self.port.capture(row, True)
        self.port.heard(row)  # start each leg with an empty capture
        return leg

    def free(self, leg: LoopLeg) -> None:
        if self.legs.get(leg.row) is leg:
            del self.legs[leg.row]
            self.free_rows.append(leg.row)

    @property
    def busy_count(self) -> int:
        return len(self.legs)

    # inbound: somebody on this network calls the box
    def call_in(
        self, control: CallControl, caller: str, called: str, name: str | None = None
    ) -> LoopLeg | None:
        leg = self._new_leg(caller or "anonymous")
        if leg is None:
            return None
        leg.inbound = True
        leg.control = control
        leg.state = "dialling"
        leg.number = caller
        control.incoming(leg, caller, called, name)
        return leg

    # outbound: the box calls a phone on this network
    def add_phone(self, number: str, behaviour: PhoneBehaviour | None = None) -> None:
        self.phones[number] = behaviour or PhoneBehaviour()

    def originate(
        self, number: str, caller_id: str, caller_name: str | None, control: CallControl
    ) -> LoopLeg | None:
        leg = self._new_leg(number)
        if leg is None:
            return None
        leg.control = control
        leg.state = "dialling"
        leg.number = number
        leg.caller_id = caller_id  # type: ignore[attr-defined]
        behaviour = self.phones.get(number)
        clock = self.clock

        def alive() -> bool:
            return leg.state not in ("down", "up")

        if behaviour is None:
            clock.call_later(0.05, lambda: alive() and leg.far_hangup(Cause.UNALLOCATED))
            return leg
        if behaviour.busy:
            clock.call_later(0.05, lambda: alive() and leg.far_hangup(Cause.USER_BUSY))
            return leg
        if behaviour.reject_cause is not None:
            clock.call_later(0.05, lambda: alive() and leg.far_hangup(behaviour.reject_cause or 21))
            return leg

        def ringing() -> None:
            if alive():
                leg.state = "ringing"
                control.ringing(leg)
                for cb in self.on_ring:
                    cb(leg, number)

        clock.call_later(0.1, ringing)
        if behaviour.answer_after is not None:

            def answer() -> None:
                if alive():
                    leg.far_answer()
                    if behaviour.hangup_after is not None:
                        clock.call_later(behaviour.hangup_after, lambda: leg.far_hangup(Cause.NORMAL))

            clock.call_later(0.1 + behaviour.answer_after, answer)
        return leg
