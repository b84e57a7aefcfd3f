"""The telephone exchange on the far side of the box's E1 PRI spans: callers dial the hotline.

`PriExchange` runs the exchange's ISDN PRI stack (network side, `firmware.signalling.pri.PriSpan`) on the
D-channel of one span's far-end framer (`tools.linesim.e1`) and carries what its callers say in their
B-channel timeslots (A-law, in-band DTMF). It offers the line interface `tools.callers` drives:
`call_in(caller, dnis)` places a call on a free B-channel and returns the caller's leg, which can
`press(digits)` and `far_hangup()`; its `state` is "down" once the call is released, whoever cleared it.
Call `tick(now)` after every board tick (`World.on_tick`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp.g711 import alaw_encode
from firmware.engine.tones import dtmf_buffer
from firmware.signalling import events as ev
from firmware.signalling.pri import PriSpan
from firmware.signalling.q931.state import Party

B_CHANNELS = tuple(range(1, 16)) + tuple(range(17, 32))  # E1 timeslots carrying calls (16 is the D-channel)
ALAW_SILENCE = 0xD5


@dataclass
class ExchangeCall:
    exchange: PriExchange
    call_id: int
    timeslot: int
    caller: str
    state: str = "dialling"  # dialling | up | down
    cause: int | None = None
    speech: deque[np.ndarray] = field(default_factory=deque)

    def press(self, digits: str) -> None:
        """The caller presses keys: DTMF tones in their B-channel, as a telephone sends them."""
        if self.state != "down":
            self.exchange.speak(self, dtmf_buffer(digits))

    def far_hangup(self) -> None:
        if self.state != "down":
            self.exchange.hangup(self)


class PriExchange:
    def __init__(self, world: Any, span_index: int = 0, name: str = "") -> None:
        self.world = world
        self.far_end = world.e1[span_index].ex
        self.name = name or f"exchange{span_index + 1}"
        self.stack = PriSpan(Party.NETWORK)
        self.started = False
        self.calls: dict[int, ExchangeCall] = {}
        self.by_timeslot: dict[int, ExchangeCall] = {}
        self.link_up = False
        self._out: list[bytes] = []
        self._now = 0.0
        self.placed = 0
        self.refused = 0

    # ---- the callers' side ------------------------------------------------------------------------
    def call_in(self, caller: str, dnis: str) -> ExchangeCall | None:
        if not self.link_up:
            return None
        free = [ts for ts in B_CHANNELS if ts not in self.by_timeslot]
        if not free:
            return None
        timeslot = free[0]
        call_id = self.stack.place_call(dnis, self._now, calling=caller, channel=timeslot)
        call = ExchangeCall(self, call_id, timeslot, caller)
        self.calls[call_id] = call
        self.by_timeslot[timeslot] = call
        self.placed += 1
        return call

    def speak(self, call: ExchangeCall, pcm: np.ndarray) -> None:
        n = self.world.n
        for start in range(0, len(pcm), n):
            call.speech.append(pcm[start : start + n].astype(np.int16))

    def hangup(self, call: ExchangeCall) -> None:
        self.stack.hangup(call.call_id, self._now)

    # ---- every tick -------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        self._now = now
        if not self.started:
            self.stack.start(now)
            self.started = True
        for frame in self.far_end.dchan_recv():
            self.stack.receive_frame(frame, now)
        deadline = self.stack.next_deadline()
        if deadline is not None and deadline <= now:
            self.stack.handle_timers(now)
        for event in self.stack.events():
            self._event(event, now)
        self._out += self.stack.frames_to_send()
        while self._out and self.far_end.dchan_send(self._out[0]):
            self._out.pop(0)
        block = np.full((32, self.world.n), ALAW_SILENCE, dtype=np.uint8)
        for timeslot, call in self.by_timeslot.items():
            if call.speech:
                chunk = call.speech.popleft()
                block[timeslot, : len(chunk)] = alaw_encode(chunk)
        self.far_end.set_voice(block)

    def _event(self, event: object, now: float) -> None:
        if isinstance(event, ev.LinkUp):
            self.link_up = True
        elif isinstance(event, ev.LinkDown):
            self.link_up = False
        elif isinstance(event, ev.Connected):
            call = self.calls.get(event.call_id)
            if call is not None:
                call.state = "up"
        elif isinstance(event, ev.Disconnected):
            self.stack.hangup(event.call_id, now, event.cause)  # the box cleared: release the call
        elif isinstance(event, ev.Released):
            call = self.calls.pop(event.call_id, None)
            if call is not None:
                call.state, call.cause = "down", event.cause
                self.by_timeslot.pop(call.timeslot, None)
                if event.cause == 34:
                    self.refused += 1


class Pstn:
    """Several exchanges as one network: a call goes out on the first span with a free B-channel."""

    def __init__(self, exchanges: list[PriExchange]) -> None:
        self.exchanges = exchanges

    def call_in(self, caller: str, dnis: str) -> ExchangeCall | None:
        for exchange in self.exchanges:
            call = exchange.call_in(caller, dnis)
            if call is not None:
                return call
        return None

    def active(self) -> int:
        return sum(len(exchange.calls) for exchange in self.exchanges)
