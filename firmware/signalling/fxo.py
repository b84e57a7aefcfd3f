"""FXO line supervision: one analog CO line seen from the box (the telephone side), sans-I/O.

Inputs, each with `now` (seconds on the box clock):
- `line_event(now, kind, value)`: the FXO driver's debounced events (drivers.fxo.FxoEvent kinds):
  ring_start / ring_stop, battery_lost / battery_restored, polarity (value 1 reversed, 0 normal);
- `dsp_event(now, event)`: dsp.events.Event for this port: kind "tone" (value "dial", "busy", "congestion",
  "ringback"), "callerid" (value dsp.callerid.CallerId);
- commands from call control: `answer(now)`, `dial(now, number)`, `hangup(now)`;
- `handle_timers(now)` once `next_deadline()` has passed.
Outputs: `commands()` for the driver and the DSP (Hook, PlayDigits, Detect) and `events()` for call control.

Incoming: a ring counts once the ring voltage has lasted `ring_min_s` (shorter bursts are ignored; China's
cadence is 1 s on / 4 s off). Caller ID is taken when it arrives before the first ring (DTMF CLIP) or
between the first and the second ring (FSK, Bell 202 in China); it is reported with the ring that follows
it and by itself. The port answers on ring `answer_rings` (0: only when call control says `answer`). If
the rings stop for `ring_gap_s` the caller gave up.

Outgoing: seize (off hook), wait for dial tone up to `dial_tone_s` (then dial anyway if
`dial_without_dial_tone`, else give up), play the digits at Q.23 timing (`dtmf_on_ms` / `dtmf_off_ms`,
at least 40 ms each), then wait for answer: a polarity reversal if the line gives one
(`answer_on="polarity"`), or, with `answer_on="dialled"`, treat the call as answered once the digits are
out, unless busy or congestion tone says otherwise. No answer within `answer_timeout_s`: on hook.

Disconnect supervision, by whichever of `disconnect` is enabled: "battery" (loop current drop, kewlstart),
"polarity" (a reversal during the call), "tone" (busy/congestion after the far end hung up). Every state
that holds the line off hook has a deadline, so the port can never stay off hook without a reason.

All state changes go through `_to`, checked against TRANSITIONS (the table of the port's states).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("callbox.signalling.fxo")


class FxoState(enum.Enum):
    IDLE = "idle"  # on hook, nothing happening
    RINGING = "ringing"  # on hook, incoming ringing
    SEIZED = "seized"  # off hook, waiting for dial tone
    DIALLING = "dialling"  # off hook, digits being played
    AWAIT_ANSWER = "await_answer"  # off hook, digits out, waiting for the far end
    CONNECTED = "connected"  # off hook, in a call
    GUARD = "guard"  # on hook after a call: the CO needs time to release the line


S = FxoState
TRANSITIONS: dict[FxoState, frozenset[FxoState]] = {
    S.IDLE: frozenset({S.RINGING, S.SEIZED}),
    S.RINGING: frozenset({S.CONNECTED, S.IDLE, S.RINGING}),
    S.SEIZED: frozenset({S.DIALLING, S.GUARD}),
    S.DIALLING: frozenset({S.AWAIT_ANSWER, S.GUARD}),
    S.AWAIT_ANSWER: frozenset({S.CONNECTED, S.GUARD}),
    S.CONNECTED: frozenset({S.GUARD}),
    S.GUARD: frozenset({S.IDLE}),
}
OFF_HOOK_STATES = frozenset({S.SEIZED, S.DIALLING, S.AWAIT_ANSWER, S.CONNECTED})
ANSWER_REVERSAL_S = 2.0  # a reversal this soon after our answer is the exchange confirming it
CLIP_MAX_AGE_S = 5.0  # DTMF caller ID older than this when the first ring comes belongs to no call


@dataclass(frozen=True)
class FxoConfig:
    answer_rings: int = 2
    callerid: str = "bell202"  # "bell202", "v23", "dtmf" or "none"
    ring_min_s: float = 0.2
    ring_gap_s: float = 8.0  # longer than China's 4 s off plus jitter
    dial_tone_s: float = 3.0
    dial_without_dial_tone: bool = False
    dtmf_on_ms: int = 100
    dtmf_off_ms: int = 100
    answer_on: str = "polarity"  # "polarity" or "dialled"
    answer_timeout_s: float = 60.0
    disconnect: frozenset[str] = field(default_factory=lambda: frozenset({"battery", "polarity", "tone"}))
    guard_s: float = 1.0
    max_call_s: float = 4 * 3600.0
    rx_gain_db: float = 0.0  # hardware (DAA codec) gains, applied when the port is created
    tx_gain_db: float = 0.0

    def __post_init__(self) -> None:
        if self.callerid not in ("bell202", "v23", "dtmf", "none"):
            raise ValueError(f"callerid must be bell202, v23, dtmf or none, not {self.callerid!r}")
        if self.answer_on not in ("polarity", "dialled"):
            raise ValueError(f"answer_on must be polarity or dialled, not {self.answer_on!r}")
        if not self.disconnect <= {"battery", "polarity", "tone"}:
            unknown = sorted(self.disconnect - {"battery", "polarity", "tone"})
            raise ValueError(f"unknown disconnect methods {unknown}")
        if self.dtmf_on_ms < 40 or self.dtmf_off_ms < 40:
            raise ValueError("Q.23: DTMF tone and pause must each last at least 40 ms")
        if self.answer_rings < 0:
            raise ValueError("answer_rings must be >= 0")
        for what, db in (("rx_gain_db", self.rx_gain_db), ("tx_gain_db", self.tx_gain_db)):
            if not -15.0 <= db <= 12.0:
                raise ValueError(f"{what} {db} dB out of the DAA's range -15..+12 dB")


# ---- commands to the driver / DSP ----------------------------------------------------------------------
@dataclass(frozen=True)
class Hook:
    offhook: bool


@dataclass(frozen=True)
class SetGain:
    rx_db: float
    tx_db: float


@dataclass(frozen=True)
class PlayDigits:
    digits: str
    on_ms: int
    off_ms: int


@dataclass(frozen=True)
class Detect:
    what: str  # "callerid" (on-hook caller ID receiver) or "cpt" (call progress tones)
    on: bool


# ---- events to call control ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Ringing:
    count: int
    callerid: Any = None  # dsp.callerid.CallerId or None


@dataclass(frozen=True)
class CallerIdReceived:
    callerid: Any


@dataclass(frozen=True)
class RingingStopped:
    """The caller gave up before the box answered."""

    rings: int


@dataclass(frozen=True)
class Answered:
    incoming: bool


@dataclass(frozen=True)
class Progress:
    tone: str  # "ringback" while waiting for an answer


@dataclass(frozen=True)
class DialFailed:
    reason: str  # "no dial tone", "busy", "congestion", "no answer", "no battery"


@dataclass(frozen=True)
class Disconnected:
    reason: str  # "battery", "polarity", "busy", "congestion", "local", "max duration"


@dataclass(frozen=True)
class Idle:
    """The line can be used again (after the guard time)."""


class FxoPort:
    def __init__(self, config: FxoConfig | None = None, name: str = "fxo1") -> None:
        self.config = config or FxoConfig()
        self.name = name
        self.state = S.IDLE
        self.battery = True
        self.reversed = False
        self.ring_on = False
        self.ring_started: float | None = None
        self.ring_counted = False
        self.rings = 0
        self.callerid: Any = None
        self.callerid_at = 0.0
        self.callerid_reported = False
        self.incoming = False
        self.number = ""
        self.deadline: float | None = None  # the state's own timer
        self.ring_check: float | None = None  # ring_min_s after ring_start
        self.answer_reversal_until: float | None = None  # the CO's reversal on our answer is not a clear
        self._commands: list[Any] = []
        self._events: list[Any] = []
        self._commands.append(SetGain(self.config.rx_gain_db, self.config.tx_gain_db))
        if self.config.callerid != "none":
            self._commands.append(Detect("callerid", True))

    # ---- outputs ----------
    def commands(self) -> list[Any]:
        out, self._commands = self._commands, []
        return out

    def events(self) -> list[Any]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        times = [t for t in (self.deadline, self.ring_check) if t is not None]
        return min(times) if times else None

    @property
    def offhook(self) -> bool:
        return self.state in OFF_HOOK_STATES

    # ---- the one place state changes ----------
    def _to(self, new: FxoState, now: float, deadline: float | None = None) -> None:
        if new not in TRANSITIONS[self.state]:
            raise AssertionError(f"{self.name}: no transition {self.state.value} -> {new.value}")
        was_off = self.offhook
        log.debug("%s: %s -> %s", self.name, self.state.value, new.value)
        self.state = new
        self.deadline = None if deadline is None else now + deadline
        if self.offhook != was_off:
            self._commands.append(Hook(self.offhook))
            if self.config.callerid != "none":
                self._commands.append(Detect("callerid", not self.offhook))
            self._commands.append(Detect("cpt", self.offhook))

    # ---- commands from call control ----------
    def answer(self, now: float) -> None:
        if self.state is not S.RINGING:
            raise ValueError(f"{self.name}: nothing to answer in state {self.state.value}")
        self._answer(now)

    def dial(self, now: float, number: str) -> None:
        if any(c not in "0123456789*#ABCD" for c in number) or not number:
            raise ValueError(f"{self.name}: {number!r} is not a DTMF number")
        if self.state is not S.IDLE:
            raise ValueError(f"{self.name}: line busy ({self.state.value})")
        if not self.battery:
            self._events.append(DialFailed("no battery"))
            return
        self.number = number
        self.incoming = False
        self._to(S.SEIZED, now, self.config.dial_tone_s)

    def hangup(self, now: float) -> None:
        if self.offhook:
            self._release(
                now, Disconnected("local") if self.state is S.CONNECTED else DialFailed("cancelled")
            )

    # ---- line events ----------
    def line_event(self, now: float, kind: str, value: int = 0) -> None:
        if kind == "ring_start":
            self.ring_on = True
            if not self.offhook and self.state is not S.GUARD:
                self.ring_started = now
                self.ring_check = now + self.config.ring_min_s
        elif kind == "ring_stop":
            if self.ring_on and self.ring_check is not None:
                log.debug("%s: ring burst shorter than %.2f s ignored", self.name, self.config.ring_min_s)
            self.ring_on = False
            self.ring_check = None
        elif kind == "battery_lost":
            self.battery = False
            if self.offhook and "battery" in self.config.disconnect:
                if self.state is S.CONNECTED:
                    self._release(now, Disconnected("battery"))
                else:
                    self._release(now, DialFailed("no battery"))
        elif kind == "battery_restored":
            self.battery = True
        elif kind == "polarity":
            rev = bool(value)
            if rev == self.reversed:
                return
            self.reversed = rev
            if self.state is S.AWAIT_ANSWER and self.config.answer_on == "polarity":
                self._connected(now)
            elif (
                self.state is S.CONNECTED
                and self.answer_reversal_until is not None
                and now <= self.answer_reversal_until
            ):
                # Chinese exchanges reverse the line when the called party answers, our own answer included.
                log.debug("%s: polarity reversal on our answer", self.name)
                self.answer_reversal_until = None
            elif self.state is S.CONNECTED and "polarity" in self.config.disconnect:
                self._release(now, Disconnected("polarity"))
        elif kind in ("hook", "ring_reject"):
            pass  # our own hook state echoed back / a burst the driver already rejected
        else:
            log.info("%s: unknown line event %r ignored", self.name, kind)

    def dsp_event(self, now: float, event: Any) -> None:
        kind, value = getattr(event, "kind", None), getattr(event, "value", None)
        if kind == "callerid":
            if self.state is S.IDLE or (self.state is S.RINGING and self.rings <= 1):
                self.callerid = value
                self.callerid_at = now
                self.callerid_reported = False
                if self.state is S.RINGING:
                    self._events.append(CallerIdReceived(value))
                    self.callerid_reported = True
            else:
                log.info("%s: caller ID outside the first ring gap ignored", self.name)
        elif kind == "tone":
            self._tone(now, str(value))

    def _tone(self, now: float, tone: str) -> None:
        st = self.state
        if st is S.SEIZED and tone == "dial":
            self._start_dialling(now)
        elif tone in ("busy", "congestion"):
            if st in (S.SEIZED, S.DIALLING, S.AWAIT_ANSWER):
                self._release(now, DialFailed(tone))
            elif st is S.CONNECTED and "tone" in self.config.disconnect:
                self._release(now, Disconnected(tone))
        elif tone == "ringback" and st is S.AWAIT_ANSWER:
            self._events.append(Progress("ringback"))

    # ---- timers ----------
    def handle_timers(self, now: float) -> None:
        if self.ring_check is not None and now >= self.ring_check:
            self.ring_check = None
            if self.ring_on:
                self._ring_counted(now)
        if self.deadline is None or now < self.deadline:
            return
        self.deadline = None
        st = self.state
        if st is S.RINGING:
            self._events.append(RingingStopped(self.rings))
            self._reset_incoming()
            self._to(S.IDLE, now)
        elif st is S.SEIZED:
            if self.config.dial_without_dial_tone:
                log.info("%s: no dial tone after %.1f s, dialling anyway", self.name, self.config.dial_tone_s)
                self._start_dialling(now)
            else:
                self._release(now, DialFailed("no dial tone"))
        elif st is S.DIALLING:
            if self.config.answer_on == "dialled":
                self._to(S.AWAIT_ANSWER, now, 0.0)
                self._connected(now)
            else:
                self._to(S.AWAIT_ANSWER, now, self.config.answer_timeout_s)
        elif st is S.AWAIT_ANSWER:
            self._release(now, DialFailed("no answer"))
        elif st is S.CONNECTED:
            self._release(now, Disconnected("max duration"))
        elif st is S.GUARD:
            self._to(S.IDLE, now)
            self._events.append(Idle())

    # ---- procedures ----------
    def _ring_counted(self, now: float) -> None:
        if self.state not in (S.IDLE, S.RINGING):
            return
        if self.rings == 0 and self.callerid is not None and now - self.callerid_at > CLIP_MAX_AGE_S:
            log.info(
                "%s: caller ID %.1f s before the first ring is stale, dropped",
                self.name,
                now - self.callerid_at,
            )
            self.callerid = None
        self.rings += 1
        self.incoming = True
        self._to(S.RINGING, now, self.config.ring_gap_s)
        cid = self.callerid
        if cid is not None and not self.callerid_reported:
            self._events.append(CallerIdReceived(cid))  # DTMF CLIP, sent before the first ring
            self.callerid_reported = True
        self._events.append(Ringing(self.rings, cid))
        if self.config.answer_rings and self.rings >= self.config.answer_rings:
            self._answer(now)

    def _answer(self, now: float) -> None:
        self._to(S.CONNECTED, now, self.config.max_call_s)
        self.answer_reversal_until = now + ANSWER_REVERSAL_S
        self._events.append(Answered(incoming=True))

    def _start_dialling(self, now: float) -> None:
        c = self.config
        self._commands.append(PlayDigits(self.number, c.dtmf_on_ms, c.dtmf_off_ms))
        self._to(S.DIALLING, now, len(self.number) * (c.dtmf_on_ms + c.dtmf_off_ms) / 1000.0)

    def _connected(self, now: float) -> None:
        self._to(S.CONNECTED, now, self.config.max_call_s)
        self.answer_reversal_until = None
        self._events.append(Answered(incoming=False))

    def _release(self, now: float, why: Any) -> None:
        self._to(S.GUARD, now, self.config.guard_s)
        self._events.append(why)
        self._reset_incoming()

    def _reset_incoming(self) -> None:
        self.rings = 0
        self.callerid = None
        self.callerid_reported = False
        self.ring_check = None
