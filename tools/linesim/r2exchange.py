"""The telephone exchange behind an E1 span with MFC/R2 (China variant), over the span's far-end framer.

`R2Exchange(world, span_index)` runs the network side of the R2 stack (`firmware.signalling.r2.R2Span`
with glare priority, hunting from channel 30 down) on the CAS bits of the span's `ExchangeE1` (TS16
multiframe), generates its MF signals into the B-channel timeslots and detects the box's with
`dsp.r2mf.R2MfDetector`, and carries its callers' audio (in-band DTMF). Plug one per CAS span; the
interface is the same as the PRI exchange's (`tools.pstn`):

    ex = R2Exchange(world, span_index=0, dnis_digits=5)
    world.on_tick.append(ex.tick)            # after every board tick (virtual or real time)
    call = ex.call_in("13812345678", "95588")  # a caller dials the box: R2Call or None (no free channel)
    call.press("1"); call.far_hangup()         # call.state: dialling -> up -> down; call.cause
    ex.link_up, ex.framing == "cas", ex.status(), ex.line_lost(now) / ex.line_back(now)

Calls the box makes (`place_call` of the box's span) are answered by `decide(dnis, ani) -> str`:
"answer" (default, after `answer_after` s), "busy", "congestion", "unallocated", "out_of_order",
"noanswer" (accept, never answer); `ex.received` lists them (`ReceivedCall`: dnis, ani, channel, state).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivers._lib import lib
from dsp.g711 import ALAW_DECODE_TABLE, alaw_encode
from dsp.r2mf import LOOP_SAMPLES, R2MfDetector, mf_loop
from firmware.engine.tones import dtmf_buffer
from firmware.signalling import r2 as sig

ALAW_SILENCE = 0xD5
TIMESLOT = {c: (c if c <= 15 else c + 1) for c in range(1, 31)}  # CAS channel -> E1 timeslot
DECISION_CAUSE = {"busy": 17, "congestion": 42, "unallocated": 1, "out_of_order": 27}


@dataclass
class R2Call:
    """A caller of the exchange dialling the box."""

    exchange: R2Exchange
    call_id: int
    channel: int
    caller: str
    dnis: str
    state: str = "dialling"  # dialling | up | down
    cause: int | None = None
    speech: deque[np.ndarray] = field(default_factory=deque)

    def press(self, digits: str) -> None:
        if self.state != "down":
            self.exchange.speak(self.channel, dtmf_buffer(digits))

    def far_hangup(self) -> None:
        if self.state != "down":
            self.exchange.stack.hangup(self.call_id, self.exchange.now)


@dataclass
class ReceivedCall:
    """A call the box made to the network."""

    call_id: int
    channel: int
    dnis: str
    ani: str
    state: str = "offered"  # offered | ringing | up | refused | down
    cause: int | None = None
    answer_at: float | None = None


class R2Exchange:
    framing = "cas"

    def __init__(
        self,
        world: Any,
        span_index: int = 0,
        name: str = "",
        dnis_digits: int = 0,
        config: sig.R2Config | None = None,
        decide: Callable[[str, str], str] | None = None,
        answer_after: float = 2.0,
        read_voice: bool = True,
    ) -> None:
        """read_voice=False: `tick` leaves the received B-channels alone and whoever drives the exchange
        hands them to `heard(voice)` itself (tools.pstn's network does that for every span)."""
        self.world = world
        self.end = world.e1[span_index]
        self._setup(
            self.end.ex, world.n, name or f"r2exchange{span_index + 1}", dnis_digits, config, decide,
            answer_after, read_voice,
        )  # fmt: skip

    def _setup(
        self,
        ex: Any,
        n: int,
        name: str,
        dnis_digits: int,
        config: sig.R2Config | None,
        decide: Callable[[str, str], str] | None,
        answer_after: float,
        read_voice: bool,
    ) -> None:
        """The exchange on far-end framer `ex` (an `ExchangeE1` with CAS), n samples a tick."""
        self.ex = ex
        self.n = n
        self.name = name
        cfg = config or sig.R2Config(glare_priority=True, hunt="down", max_dnis=dnis_digits)
        self.stack = sig.R2Span(cfg, self.name)
        self.det = R2MfDetector(30)
        self.listening: dict[int, str | None] = {}
        self.tone: dict[int, tuple[str, int]] = {}  # channel -> (direction, signal) being sent
        self.tone_pos = np.zeros(31, dtype=np.int64)
        self.calls: dict[int, R2Call] = {}
        self.received: dict[int, ReceivedCall] = {}
        self.decide = decide or (lambda dnis, ani: "answer")
        self.answer_after = answer_after
        self.speech: dict[int, deque[np.ndarray]] = {}
        self.heard_audio: dict[int, list[np.ndarray]] = {}  # channel -> blocks (int16) the box sent, if asked
        self.now = 0.0
        self.link_up = False
        self.placed = 0
        self.refused = 0
        self.errors: list[str] = []
        self.read_voice = read_voice

    # ---- callers -----------------------------------------------------------------------------------
    def call_in(self, caller: str, dnis: str) -> R2Call | None:
        if not self.link_up or not self.stack.free_channels():
            return None
        call_id = self.stack.place_call(dnis, self.now, ani=caller)
        chan = self.stack.channel_of(call_id)
        if chan is None:
            return None
        call = R2Call(self, call_id, chan, caller, dnis)
        self.calls[call_id] = call
        self.placed += 1
        self._flush()
        return call

    def speak(self, channel: int, pcm: np.ndarray) -> None:
        q = self.speech.setdefault(channel, deque())
        n = self.n
        for start in range(0, len(pcm), n):
            q.append(pcm[start : start + n].astype(np.int16))

    def listen(self, channel: int) -> list[np.ndarray]:
        """Keep what the box sends on `channel` from now on (tests)."""
        return self.heard_audio.setdefault(channel, [])

    # ---- line state ---------------------------------------------------------------------------------
    def line_lost(self, now: float) -> None:
        if self.link_up:
            self.link_up = False
            self.stack.alarm(now)
            self._drain(now)

    def line_back(self, now: float) -> None:
        if not self.link_up:
            self.link_up = True
            self.stack.start(now, rx={c: self.ex.cas_get(c) for c in range(1, 31)})
            self._drain(now)

    # ---- every tick --------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        self.now = now
        aligned = not self.ex.status() & (lib.E1ST_LOS | lib.E1ST_LOF | lib.E1ST_AIS | lib.E1ST_LCASMFA)
        if aligned and not self.link_up:
            self.line_back(now)
        elif not aligned and self.link_up:
            self.line_lost(now)
        if self.link_up:
            changed = int(lib.e1f_cas_changed(self.ex.f))
            for c in range(1, 31):
                if changed >> c & 1:
                    self.stack.line_signal(c, self.ex.cas_get(c), now)
        if self.read_voice:
            self.heard(self.ex.voice(self.n))
        d = self.stack.next_deadline()
        if d is not None and d <= now:
            self.stack.handle_timers(now)
        self._answer_due(now)
        self._drain(now)
        self.ex.set_voice(self._voice_block())

    def heard(self, voice: np.ndarray) -> None:
        """(32, n) A-law the box sent this tick: MF receiver, and audio kept for tests."""
        pcm = ALAW_DECODE_TABLE[voice[[TIMESLOT[c] for c in range(1, 31)]]]
        for e in self.det.process(np.ascontiguousarray(pcm)):
            chan = e.channel + 1
            if e.value == "off":
                self.stack.mf(chan, 0, self.now)
            elif str(e.value)[:1] == self.listening.get(chan):
                self.stack.mf(chan, int(str(e.value)[1:]), self.now)
        for chan, blocks in self.heard_audio.items():
            blocks.append(pcm[chan - 1].copy())

    def _voice_block(self) -> np.ndarray:
        n = self.n
        block = np.full((32, n), ALAW_SILENCE, dtype=np.uint8)
        for chan, (direction, signal) in self.tone.items():
            loop = mf_loop(direction, signal)
            idx = (self.tone_pos[chan] + np.arange(n)) % LOOP_SAMPLES
            self.tone_pos[chan] += n
            block[TIMESLOT[chan]] = alaw_encode(loop[idx])
        for chan, q in self.speech.items():
            if q and chan not in self.tone:
                chunk = q.popleft()
                block[TIMESLOT[chan], : len(chunk)] = alaw_encode(chunk)
        return block

    def _answer_due(self, now: float) -> None:
        for rc in self.received.values():
            if rc.state == "ringing" and rc.answer_at is not None and now >= rc.answer_at:
                self.stack.answer(rc.call_id, now)
                rc.state = "up"

    def _drain(self, now: float) -> None:
        self._flush()
        for e in self.stack.events():
            self._event(e, now)
        self._flush()

    def _flush(self) -> None:
        for c in self.stack.commands():
            if isinstance(c, sig.SetAbcd):
                self.ex.cas_set(c.channel, c.abcd)
            elif isinstance(c, sig.PlayMf):
                if c.signal is None:
                    self.tone.pop(c.channel, None)
                else:
                    self.tone[c.channel] = (c.direction, c.signal)
                    self.tone_pos[c.channel] = 0
            elif isinstance(c, sig.DetectMf):
                self.listening[c.channel] = c.direction

    def _event(self, e: object, now: float) -> None:
        if isinstance(e, sig.IncomingCall):  # the box calls out
            rc = ReceivedCall(e.call_id, e.channel, e.dnis, e.ani)
            self.received[e.call_id] = rc
            what = self.decide(e.dnis, e.ani)
            if what in DECISION_CAUSE:
                rc.state, rc.cause = "refused", DECISION_CAUSE[what]
                self.stack.reject(e.call_id, now, DECISION_CAUSE[what])
            else:
                rc.state = "ringing"
                rc.answer_at = None if what == "noanswer" else now + self.answer_after
                self.stack.accept(e.call_id, now)
        elif isinstance(e, sig.Answered):
            call = self.calls.get(e.call_id)
            if call is not None:
                call.state = "up"
        elif isinstance(e, sig.ProtocolError):
            self.errors.append(f"ch{e.channel}: {e.reason}")
        elif isinstance(e, sig.Released):
            call = self.calls.pop(e.call_id, None)
            if call is not None:
                call.state, call.cause = "down", e.cause
                self.speech.pop(call.channel, None)
                if e.cause in (17, 42, 34, 1):
                    self.refused += 1
            rc = self.received.get(e.call_id)
            if rc is not None:
                if rc.state != "refused":
                    rc.state = "down"
                rc.cause = e.cause

    def hangup_received(self, call_id: int) -> None:
        """The called party of a call the box made hangs up (clear-back)."""
        self.stack.hangup(call_id, self.now)
        self._drain(self.now)

    def active(self) -> int:
        return len(self.calls)

    def status(self) -> dict[str, Any]:
        return {
            "framing": "cas",
            "link": self.link_up,
            "calls": len(self.calls),
            "placed": self.placed,
            "refused": self.refused,
            "received": len(self.received),
            "errors": len(self.errors),
        }
