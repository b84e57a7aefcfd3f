"""MFC/R2 on one E1 CAS span (ITU-T Q.421 line signalling, Q.441 inter-register signalling), China variant
by default, sans-I/O.

Inputs, each with `now` (seconds on the box clock):
- `line_signal(channel, abcd, now)`: the debounced ABCD nibble received for CAS channel 1..30 (A = bit 3);
- `mf(channel, signal, now)`: the MF receiver on that channel's B-channel recognised signal 1..15 of the
  direction the channel listens to (see `DetectMf`), or 0 when the signal ended;
- commands from call control: `place_call`, `accept`, `reject`, `answer`, `hangup`, `block`, `unblock`;
  `start(now)` when the span has frame and CAS multiframe alignment, `alarm(now)` when it loses it;
- `handle_timers(now)` once `next_deadline()` has passed.
Outputs: `commands()` for the driver and the media engine (`SetAbcd`, `PlayMf`, `DetectMf`) and
`events()` for call control (`IncomingCall`, `Accepted`, `Answered`, `Released`, `Blocked`,
`ProtocolError`).

Line signalling (Q.421 §3, digital version; only the A and B bits carry R2, C/D are sent as the variant
says and ignored on receipt, as openr2 does):

    forward (outgoing end)      AB    backward (incoming end)       AB
    idle / clear-forward        10    idle / release guard           10
    seizure                     00    seizure acknowledgement        11
                                      answer                         01
                                      clear-back                     11
                                      blocking                       11

With the ITU C/D = 01 that is idle 1001, seize 0001, seize ack 1101, answer 0101, clear back 1101, clear
forward 1001, blocked 1101. openr2's "CN" variant sends C/D = 11 instead ("in China they are both set to
1; they are never used") — `Variant.cd_bits` chooses; the default China variant follows the ITU bits the
board's far ends expect (`CHINA.cd_bits = 0b01`), `CHINA_CD11` sends 11.

Inter-register signalling is compelled (Q.441/Q.442): the outgoing register sends a forward signal and
holds it until a backward signal is recognised, then removes it; the incoming register removes its
backward signal when it sees the forward one go, and only then may the next forward signal be sent. The
incoming register may also send a *pulsed* backward signal (150 ms, Q.442) when the forward side is
silent — here, A-3 once the called number has ended by silence (China has no I-15 "end of number").

China variant (as openr2's r2config_china and the China No.1 signalling it models):
- group A: A-1 send next digit (of the calling number while that is being collected, else of the called
  number), A-2/A-7/A-8 resend the n-1/n-2/n-3 digit, A-3 address complete: change to group B (the
  forward side sends its group II category KD), A-4 congestion, A-5 unallocated number (China No.1's
  "vacant number"), A-6 send calling party category KA and then the calling number (ANI).
  NOTE: the ITU default (openr2 "ITU") uses A-5 for "send category / next ANI digit"; China uses A-6.
- group B: B-1 subscriber free, charge; B-2 and B-3 subscriber busy; B-4 congestion; B-5 unallocated;
  B-6 (China No.1) and B-7 (openr2) subscriber free, no charge; B-8 line out of order.
- group I: digits 1..10 (10 = digit 0), I-15 end of calling number, I-12 calling number restricted; no
  end-of-called-number signal.
The incoming side asks for the calling number after `ani_after` called digits (openr2's get_ani_first
after the first digit), and ends the called number at `max_dnis` digits or after `t_digit` of silence.

Timers (`R2Config`; defaults from openr2's context defaults and Q.476's T1):
- `t_seize_ack` 8 s: seizure not acknowledged (openr2 r2_seize) -> clear forward, cause 102;
- `t1_forward` 15 s: a forward signal (or silence waiting for a backward pulse) without a backward signal,
  or a backward signal that never ends (Q.476 T1) -> clear forward, cause 102;
- `t_mf_cycle` 5 s: the incoming register waiting for a forward signal to start or end (openr2
  mf_back_cycle) -> the call fails (clear-back), cause 102;
- `t_answer` 60 s: accepted outgoing call not answered (openr2 r2_answer) -> clear forward, cause 19; the
  same limit bounds an accepted incoming call that call control neither answers nor clears;
- `t_offer` 4 s: call control neither accepts nor rejects an offered incoming call -> B-4 congestion;
- `t_release` 10 s: after clear forward, the far end does not return to idle -> the channel is marked
  faulty (kept out of use until it does).

Glare (both ends seize the same idle channel): the end with `glare_priority` keeps its call and waits for
the seizure acknowledgement; the other end gives up its call (`Released(cause 44)`) and answers the far
end's seizure as an incoming call. The network side has priority by default and hunts channels from the
top, the box from the bottom, so glare is rare.

Every change of a channel's line state goes through `_to`, checked against TRANSITIONS. A signal that the
state does not allow (an unexpected ABCD pattern, an MF signal out of sequence or of the wrong group, a
bad value) is a remote protocol error: a `ProtocolError` event with the reason, the call (if call control
knows it) released with cause 111, and the channel cleared; nothing raises. A command the state does not
allow raises `LocalProtocolError` and changes nothing.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("callbox.signalling.r2")

CHANNELS = tuple(range(1, 31))  # CAS channels: channel c is TS c for c <= 15, TS c+1 above

# AB patterns (A = bit 1, B = bit 0 of this 2-bit value)
AB_IDLE = 0b10  # forward idle / clear forward, backward idle / release guard
AB_SEIZE = 0b00
AB_SEIZE_ACK = 0b11  # also clear-back and blocking
AB_ANSWER = 0b01


class LocalProtocolError(ValueError):
    """Call control asked for something the channel's state does not allow; nothing changed."""


@dataclass(frozen=True)
class Variant:
    name: str
    cd_bits: int  # C and D as sent (ignored on receipt)
    group_a: dict[int, str]  # backward group A signal -> meaning
    group_b: dict[int, str]  # backward group B signal -> meaning
    end_of_dnis: int | None  # group I "no more called digits", None if the variant has none
    end_of_ani: int
    ani_restricted: int
    ani_request: str = "next"  # the group A meaning that asks for the next calling digit

    def a_signal(self, meaning: str) -> int:
        return next(s for s, m in self.group_a.items() if m == meaning)

    def b_signal(self, meaning: str) -> int:
        return next(s for s, m in self.group_b.items() if m == meaning)


CHINA = Variant(
    name="CN",
    cd_bits=0b01,
    group_a={
        1: "next",
        2: "minus_1",
        3: "to_b",
        4: "congestion",
        5: "unallocated",
        6: "category",
        7: "minus_2",
        8: "minus_3",
    },  # fmt: skip
    group_b={
        1: "free_charge",
        2: "busy",
        3: "busy",
        4: "congestion",
        5: "unallocated",
        6: "free_no_charge",
        7: "free_no_charge",
        8: "out_of_order",
    },  # fmt: skip
    end_of_dnis=None,
    end_of_ani=15,
    ani_restricted=12,
)
CHINA_CD11 = Variant(**{**CHINA.__dict__, "name": "CN-CD11", "cd_bits": 0b11})
ITU = Variant(
    name="ITU",
    cd_bits=0b01,
    group_a={1: "next", 2: "minus_1", 3: "to_b", 4: "congestion", 5: "category", 7: "minus_2", 8: "minus_3"},
    group_b={
        2: "special",
        3: "busy",
        4: "congestion",
        5: "unallocated",
        6: "free_charge",
        7: "free_no_charge",
        8: "out_of_order",
    },  # fmt: skip
    end_of_dnis=15,
    end_of_ani=15,
    ani_restricted=12,
    ani_request="category",  # openr2 ITU: A-5 is both "send category" and "next calling digit"
)
VARIANTS = {v.name: v for v in (CHINA, CHINA_CD11, ITU)}

# group B meaning -> Q.850 cause of the failed call
B_CAUSE = {"busy": 17, "congestion": 42, "unallocated": 1, "out_of_order": 27, "special": 31}
# Q.850 cause of a refusal -> group B meaning sent
CAUSE_B = {17: "busy", 1: "unallocated", 3: "unallocated", 28: "unallocated", 27: "out_of_order"}
CAUSE_PROTOCOL = 111
CAUSE_TIMEOUT = 102
CAUSE_GLARE = 44
CAUSE_NO_CIRCUIT = 34
CAUSE_ALARM = 41


@dataclass(frozen=True)
class R2Config:
    variant: Variant = CHINA
    max_dnis: int = 0  # called digits expected; 0: the number ends after t_digit of silence
    max_ani: int = 20
    get_ani: bool = True
    ani_after: int = 1  # ask for the calling number after this many called digits
    category: int = 1  # KA sent on A-6 (China No.1: 1 = ordinary subscriber)
    kd: int = 3  # group II category sent on A-3 (China No.1 KD: 3 = local call)
    glare_priority: bool = False
    hunt: str = "up"  # "up" from channel 1, "down" from channel 30
    t_seize_ack: float = 8.0
    t1_forward: float = 15.0
    t_mf_cycle: float = 5.0
    t_digit: float = 3.0
    t_pulse: float = 0.15
    t_answer: float = 60.0
    t_offer: float = 4.0
    t_release: float = 10.0

    def __post_init__(self) -> None:
        for name in ("category", "kd"):
            if not 1 <= getattr(self, name) <= 15:
                raise ValueError(f"{name} must be an MF signal 1..15, not {getattr(self, name)!r}")
        if self.hunt not in ("up", "down"):
            raise ValueError(f"hunt must be 'up' or 'down', not {self.hunt!r}")
        if self.max_dnis < 0 or self.max_ani < 0 or self.ani_after < 0:
            raise ValueError("max_dnis, max_ani and ani_after must be >= 0")
        for name in ("t_seize_ack", "t1_forward", "t_mf_cycle", "t_digit", "t_pulse", "t_answer", "t_offer",
                     "t_release"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")


# ---- configuration (the dialplan's `r2:` section) ---------------------------------------------------------
VARIANTS: dict[str, Variant] = {"china": CHINA, "china_cd11": CHINA_CD11, "itu": ITU}
_TIMERS = (
    "t_seize_ack",
    "t1_forward",
    "t_mf_cycle",
    "t_digit",
    "t_pulse",
    "t_answer",
    "t_offer",
    "t_release",
)
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {  # span number -> that span's R2 settings
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "variant": {"enum": list(VARIANTS)},
            "max_dnis": {"type": "integer", "minimum": 0, "maximum": 30},
            "max_ani": {"type": "integer", "minimum": 0, "maximum": 30},
            "get_ani": {"type": "boolean"},
            "ani_after": {"type": "integer", "minimum": 0, "maximum": 30},
            "category": {"type": "integer", "minimum": 1, "maximum": 15},
            "kd": {"type": "integer", "minimum": 1, "maximum": 15},
            **{t: {"type": "number", "exclusiveMinimum": 0, "maximum": 600} for t in _TIMERS},
        },
    },
}


def configs_from_yaml(doc: Any, section: str = "r2", spans: int = 16) -> dict[int, R2Config]:
    """`R2Config` per span from a validated YamlDocument's `section` (span number -> settings); a bad span
    number or setting raises the document's ConfigError (file:line: field: message)."""
    raw = (doc.data or {}).get(section) or {}
    out: dict[int, R2Config] = {}
    for key, settings in raw.items():
        span = int(key) if str(key).isdigit() else 0  # the YAML loader gives keys as text
        if isinstance(key, bool) or not 1 <= span <= spans:
            raise doc.error((section, key), f"span must be a span number 1..{spans}, not {key!r}")
        s = dict(settings or {})
        s["variant"] = VARIANTS[s.get("variant", "china")]
        try:
            out[span] = R2Config(**s)
        except (TypeError, ValueError) as exc:
            raise doc.error((section, key), str(exc)) from None
    return out


# ---- commands to the driver / media engine ---------------------------------------------------------------
@dataclass(frozen=True)
class SetAbcd:
    channel: int
    abcd: int


@dataclass(frozen=True)
class PlayMf:
    channel: int
    direction: str  # "F" forward (we are the outgoing register) or "B" backward
    signal: int | None  # 1..15, held until the next PlayMf for the channel; None = silence


@dataclass(frozen=True)
class DetectMf:
    channel: int
    direction: str | None  # which signals to listen for ("F" or "B"); None = receiver off


# ---- events to call control ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IncomingCall:
    """The called number, calling number and categories are in: `accept` or `reject` it."""

    call_id: int
    channel: int
    dnis: str
    ani: str
    category: int | None  # KA (group I/II signal sent on A-6), None if not asked
    kd: int  # group II category sent on A-3
    ani_restricted: bool = False


@dataclass(frozen=True)
class Accepted:
    """The register phase ended with "subscriber free" (outgoing: B-1/B-6 received; incoming: our accept
    went through the compelled cycle). The call waits for the answer."""

    call_id: int
    charge: bool


@dataclass(frozen=True)
class Answered:
    call_id: int


@dataclass(frozen=True)
class Released:
    """The call is over for call control (its channel may still be returning to idle). Last event of
    every call announced by IncomingCall or created by place_call, exactly once."""

    call_id: int
    cause: int


@dataclass(frozen=True)
class Blocked:
    channel: int
    remote: bool  # the far end blocked it (True) or we did
    blocked: bool


@dataclass(frozen=True)
class ProtocolError:
    channel: int
    reason: str


class Line(enum.Enum):
    IDLE = "idle"
    BLOCKED = "blocked"  # we block the channel (tx blocking)
    OUT_SEIZED = "out_seized"  # seizure sent, waiting for its acknowledgement
    OUT_MF = "out_mf"  # outgoing register signalling
    OUT_ACCEPTED = "out_accepted"  # B: subscriber free, waiting for answer
    OUT_ANSWERED = "out_answered"
    OUT_CLEARING = "out_clearing"  # clear forward sent, waiting for the far end to go idle
    IN_MF = "in_mf"  # seizure acknowledged, incoming register signalling
    IN_OFFERED = "in_offered"  # group II received, call control decides
    IN_ACCEPTED = "in_accepted"
    IN_ANSWERED = "in_answered"
    IN_CLEARING = "in_clearing"  # clear-back sent (or call refused): waiting for clear forward
    FAULT = "fault"  # out of use until the far end shows idle
    ALARM = "alarm"  # span not aligned


L = Line
TRANSITIONS: dict[Line, frozenset[Line]] = {
    L.IDLE: frozenset({L.OUT_SEIZED, L.IN_MF, L.BLOCKED, L.FAULT, L.ALARM}),
    L.BLOCKED: frozenset({L.IDLE, L.ALARM}),
    L.OUT_SEIZED: frozenset({L.OUT_MF, L.OUT_CLEARING, L.IN_MF, L.ALARM}),
    L.OUT_MF: frozenset({L.OUT_ACCEPTED, L.OUT_CLEARING, L.ALARM}),
    L.OUT_ACCEPTED: frozenset({L.OUT_ANSWERED, L.OUT_CLEARING, L.ALARM}),
    L.OUT_ANSWERED: frozenset({L.OUT_CLEARING, L.ALARM}),
    L.OUT_CLEARING: frozenset({L.IDLE, L.FAULT, L.ALARM}),
    L.IN_MF: frozenset({L.IN_OFFERED, L.IN_ACCEPTED, L.IN_CLEARING, L.IDLE, L.ALARM}),
    L.IN_OFFERED: frozenset({L.IN_MF, L.IN_CLEARING, L.IDLE, L.ALARM}),
    L.IN_ACCEPTED: frozenset({L.IN_ANSWERED, L.IN_CLEARING, L.IDLE, L.ALARM}),
    L.IN_ANSWERED: frozenset({L.IN_CLEARING, L.IDLE, L.ALARM}),
    L.IN_CLEARING: frozenset({L.IDLE, L.ALARM}),
    L.FAULT: frozenset({L.IDLE, L.ALARM}),
    L.ALARM: frozenset({L.IDLE}),
}
TX_AB = {
    L.IDLE: AB_IDLE, L.BLOCKED: AB_SEIZE_ACK, L.OUT_SEIZED: AB_SEIZE, L.OUT_MF: AB_SEIZE,
    L.OUT_ACCEPTED: AB_SEIZE, L.OUT_ANSWERED: AB_SEIZE, L.OUT_CLEARING: AB_IDLE, L.IN_MF: AB_SEIZE_ACK,
    L.IN_OFFERED: AB_SEIZE_ACK, L.IN_ACCEPTED: AB_SEIZE_ACK, L.IN_ANSWERED: AB_ANSWER,
    L.IN_CLEARING: AB_SEIZE_ACK, L.FAULT: AB_IDLE, L.ALARM: AB_IDLE,
}  # fmt: skip
OUTGOING = frozenset({L.OUT_SEIZED, L.OUT_MF, L.OUT_ACCEPTED, L.OUT_ANSWERED})
INCOMING_CALL = frozenset({L.IN_MF, L.IN_OFFERED, L.IN_ACCEPTED, L.IN_ANSWERED})


@dataclass
class Channel:
    number: int
    line: Line = Line.ALARM
    rx: int = AB_IDLE  # AB bits received last
    remote_blocked: bool = False
    block_wanted: bool = False  # block once the channel is idle again
    call_id: int | None = None
    announced: bool = False  # call control knows the call (IncomingCall sent / place_call returned)
    deadline: float | None = None
    timer: str = ""
    # register state (both directions)
    tone: int | None = None  # MF signal we are sending
    pulse: bool = False  # the tone is a pulse that ends by itself
    heard: int = 0  # MF signal being received (0 none)
    pending: int = 0  # outgoing: backward signal recognised, acted on when it ends
    group: str = "A"  # outgoing: the backward group expected (A or B); incoming: "I", "II"
    phase: str = "dnis"  # incoming: dnis | category | ani | group2 ; outgoing: dnis | ani
    dnis: str = ""
    ani: str = ""
    dnis_idx: int = -1  # outgoing: index of the called digit last sent
    ani_idx: int = -1
    category: int | None = None
    category_sent: bool = False
    ani_done: bool = False
    ani_restricted: bool = False
    kd: int = 0
    outcome: str = ""  # incoming: the group B meaning sent; outgoing: the one received
    answer_wanted: bool = False
    answered_early: bool = False  # outgoing: line answer seen before the B signal ended
    cause: int = 16
    calls: list[int] = field(default_factory=list)


def _digit_signal(d: str) -> int:
    return 10 if d == "0" else int(d)


def _signal_digit(s: int) -> str:
    return "0" if s == 10 else str(s)


class R2Span:
    """The 30 CAS channels of one E1 span; see the module docstring."""

    def __init__(self, config: R2Config | None = None, name: str = "r2") -> None:
        self.config = config or R2Config()
        self.variant = self.config.variant
        self.name = name
        self.channels = {c: Channel(c) for c in CHANNELS}
        self.calls: dict[int, int] = {}  # call_id -> channel
        self._next_call = 1
        self._commands: list[SetAbcd | PlayMf | DetectMf] = []
        self._events: list[object] = []
        self.started = False

    # ---- outputs -------------------------------------------------------------------------------------
    def commands(self) -> list[SetAbcd | PlayMf | DetectMf]:
        out, self._commands = self._commands, []
        return out

    def events(self) -> list[object]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        times = [ch.deadline for ch in self.channels.values() if ch.deadline is not None]
        return min(times) if times else None

    def abcd(self, ab: int) -> int:
        return (ab << 2) | self.variant.cd_bits

    def free_channels(self) -> list[int]:
        """Channels an outgoing call may seize, in hunting order."""
        free = [
            c.number
            for c in self.channels.values()
            if c.line is L.IDLE and not c.remote_blocked and c.rx == AB_IDLE and c.call_id is None
        ]
        return free if self.config.hunt == "up" else free[::-1]

    def channel_of(self, call_id: int) -> int | None:
        return self.calls.get(call_id)

    # ---- span state ----------------------------------------------------------------------------------
    def start(self, now: float, rx: dict[int, int] | None = None) -> None:
        """The span is aligned (again): every channel idle; `rx` = the ABCD received now, per channel."""
        self.started = True
        for ch in self.channels.values():
            if rx is not None and ch.number in rx:
                ch.rx = (rx[ch.number] >> 2) & 3
            if ch.line is L.ALARM:
                self._to(ch, L.IDLE, now, force_tx=True)
            elif ch.line is L.IDLE:
                self._tx(ch)
            else:
                continue  # a channel in use keeps its state (start called twice)
            ch.remote_blocked = ch.rx == AB_SEIZE_ACK
            if ch.block_wanted:
                self._to(ch, L.BLOCKED, now)
            elif ch.rx == AB_SEIZE:
                self._incoming(ch, now)  # the far end seized while we were away

    def alarm(self, now: float) -> None:
        """LOS/AIS/LOF or loss of CAS multiframe: every call is cleared, no channel is used until start."""
        self.started = False
        for ch in self.channels.values():
            if ch.line is not L.ALARM:
                self._drop_call(ch, CAUSE_ALARM)
                self._to(ch, L.ALARM, now)

    # ---- line side -----------------------------------------------------------------------------------
    def line_signal(self, channel: int, abcd: int, now: float) -> None:
        ch = self.channels.get(channel) if isinstance(channel, int) else None
        if ch is None:
            self._events.append(ProtocolError(-1, f"ABCD for channel {channel!r}: no such CAS channel"))
            return
        if not isinstance(abcd, int) or not 0 <= abcd <= 15:
            self._error(ch, now, f"ABCD value {abcd!r} is not a nibble")
            return
        ab = (abcd >> 2) & 3
        if ab == ch.rx:
            return  # C/D changed only, or a repeat
        old, ch.rx = ch.rx, ab
        log.debug(
            "%s ch%d: rx AB %s -> %s in %s", self.name, channel, f"{old:02b}", f"{ab:02b}", ch.line.value
        )
        st = ch.line
        if st is L.ALARM:
            return
        if st in (L.IDLE, L.BLOCKED, L.FAULT):
            self._rx_idle_states(ch, ab, now)
        elif st is L.OUT_SEIZED:
            if ab == AB_SEIZE_ACK:
                self._to(ch, L.OUT_MF, now)
                ch.group, ch.phase = "A", "dnis"
                self._cmd(DetectMf(ch.number, "B"))
                self._send_dnis(ch, now, 0)
            elif ab == AB_SEIZE:
                self._glare(ch, now)
            else:
                self._error(ch, now, f"AB {ab:02b} while waiting for the seizure acknowledgement")
        elif st is L.OUT_MF:
            if ab == AB_ANSWER:
                ch.answered_early = True  # line faster than the MF receiver: wait for the B signal to end
            else:
                self._error(ch, now, f"AB {ab:02b} during register signalling")
        elif st is L.OUT_ACCEPTED:
            if ab == AB_ANSWER:
                self._to(ch, L.OUT_ANSWERED, now)
                self._events.append(Answered(ch.call_id or 0))
            else:
                self._error(ch, now, f"AB {ab:02b} while waiting for the answer")
        elif st is L.OUT_ANSWERED:
            if ab == AB_SEIZE_ACK:  # clear-back: the called party hung up; we release (calling party)
                self._clear_forward(ch, now, 16)
            else:
                self._error(ch, now, f"AB {ab:02b} in an answered call")
        elif st is L.OUT_CLEARING:
            if ab == AB_IDLE:
                self._to(ch, L.IDLE, now)
                self._after_idle(ch, now)
        elif st in INCOMING_CALL or st is L.IN_CLEARING:
            if ab == AB_IDLE:  # clear forward
                self._drop_call(ch, 16)
                self._to(ch, L.IDLE, now)  # release guard: our idle
                self._after_idle(ch, now)
            else:
                self._error(ch, now, f"AB {ab:02b} from the outgoing end of an incoming call")

    def _rx_idle_states(self, ch: Channel, ab: int, now: float) -> None:
        st = ch.line
        if ab == AB_SEIZE:
            if st is L.IDLE:
                self._incoming(ch, now)
            else:
                log.info("%s ch%d: seizure ignored, channel %s", self.name, ch.number, st.value)
            return
        if ab == AB_SEIZE_ACK:
            if not ch.remote_blocked:
                ch.remote_blocked = True
                self._events.append(Blocked(ch.number, remote=True, blocked=True))
            return
        if ab == AB_IDLE:
            if ch.remote_blocked:
                ch.remote_blocked = False
                self._events.append(Blocked(ch.number, remote=True, blocked=False))
            if st is L.FAULT:
                self._to(ch, L.IDLE, now)
                self._after_idle(ch, now)
            return
        self._events.append(ProtocolError(ch.number, f"AB {ab:02b} on an idle channel"))
        log.warning("%s ch%d: AB %s on an idle channel", self.name, ch.number, f"{ab:02b}")
        if st is L.IDLE:
            self._to(ch, L.FAULT, now)

    def mf(self, channel: int, signal: int, now: float) -> None:
        """Signal 1..15 recognised on the channel (in the direction it listens to), or 0: it ended."""
        ch = self.channels.get(channel) if isinstance(channel, int) else None
        if ch is None:
            self._events.append(ProtocolError(-1, f"MF for channel {channel!r}: no such CAS channel"))
            return
        if not isinstance(signal, int) or not 0 <= signal <= 15:
            self._error(ch, now, f"MF signal {signal!r} out of range")
            return
        if ch.line is L.OUT_MF:
            self._mf_outgoing(ch, signal, now)
        elif ch.line in (L.IN_MF, L.IN_OFFERED):
            self._mf_incoming(ch, signal, now)
        elif signal:
            log.info("%s ch%d: MF %d ignored in %s", self.name, ch.number, signal, ch.line.value)

    # ---- outgoing register (forward) -----------------------------------------------------------------
    def _mf_outgoing(self, ch: Channel, signal: int, now: float) -> None:
        if signal:
            if ch.heard:
                self._error(ch, now, f"backward signal {signal} while {ch.heard} is still on")
                return
            ch.heard = ch.pending = signal
            if ch.tone is not None:
                self._tone(ch, None)  # compelled: a backward signal is recognised, remove ours
            self._timer(ch, now, "t1", self.config.t1_forward)  # it must end in time too
            return
        if not ch.heard:
            return  # an end without a start: a receiver artefact, harmless
        ch.heard = 0
        sig, ch.pending = ch.pending, 0
        if ch.group == "A":
            self._group_a(ch, sig, now)
        else:
            self._group_b(ch, sig, now)

    def _group_a(self, ch: Channel, sig: int, now: float) -> None:
        meaning = self.variant.group_a.get(sig)
        if meaning == "next":
            if ch.phase == "ani":
                self._send_ani(ch, now)
            else:
                self._send_dnis(ch, now, 1)
        elif meaning in ("minus_1", "minus_2", "minus_3"):
            self._send_dnis(ch, now, -int(meaning[-1]))
        elif meaning == "category":
            if not ch.category_sent:
                ch.category_sent = True
                ch.phase = "ani"
                self._send(ch, now, self.config.category)
            else:
                self._send_ani(ch, now)  # ITU: A-5 again = next calling digit
        elif meaning == "to_b":
            ch.group = "B"
            self._send(ch, now, self.config.kd)
        elif meaning == "congestion":
            self._clear_forward(ch, now, 42)
        elif meaning == "unallocated":
            self._clear_forward(ch, now, 1)
        else:
            self._error(ch, now, f"A-{sig} has no meaning in the {self.variant.name} variant")

    def _group_b(self, ch: Channel, sig: int, now: float) -> None:
        meaning = self.variant.group_b.get(sig)
        if meaning in ("free_charge", "free_no_charge"):
            ch.outcome = meaning
            self._cmd(DetectMf(ch.number, None))
            self._to(ch, L.OUT_ACCEPTED, now)
            self._timer(ch, now, "answer", self.config.t_answer)
            self._events.append(Accepted(ch.call_id or 0, charge=meaning == "free_charge"))
            if ch.answered_early or ch.rx == AB_ANSWER:
                self._to(ch, L.OUT_ANSWERED, now)
                self._events.append(Answered(ch.call_id or 0))
        elif meaning in B_CAUSE:
            ch.outcome = meaning
            self._clear_forward(ch, now, B_CAUSE[meaning])
        else:
            self._error(ch, now, f"B-{sig} has no meaning in the {self.variant.name} variant")

    def _send(self, ch: Channel, now: float, signal: int | None) -> None:
        self._tone(ch, signal)
        self._timer(ch, now, "t1", self.config.t1_forward)

    def _send_dnis(self, ch: Channel, now: float, step: int) -> None:
        """step 0: the first digit; 1: the next one; -n: the digit n before the one sent last (A-2/7/8)."""
        ch.dnis_idx = max(ch.dnis_idx, 0) if step == 0 else max(0, ch.dnis_idx + step)
        if ch.dnis_idx < len(ch.dnis):
            self._send(ch, now, _digit_signal(ch.dnis[ch.dnis_idx]))
        elif self.variant.end_of_dnis is not None:
            self._send(ch, now, self.variant.end_of_dnis)
        else:
            self._send(ch, now, None)  # no more digits: the far end ends the number by a pulsed A-3

    def _send_ani(self, ch: Channel, now: float) -> None:
        ch.ani_idx += 1
        if ch.ani_idx < len(ch.ani):
            self._send(ch, now, _digit_signal(ch.ani[ch.ani_idx]))
        else:
            ch.phase = "dnis"
            self._send(ch, now, self.variant.ani_restricted if ch.ani_restricted else self.variant.end_of_ani)

    # ---- incoming register (backward) ----------------------------------------------------------------
    def _incoming(self, ch: Channel, now: float) -> None:
        self._reset_register(ch)
        ch.call_id = self._new_call(ch)
        ch.announced = False
        ch.phase = "dnis"
        self._to(ch, L.IN_MF, now)
        self._cmd(DetectMf(ch.number, "F"))
        self._timer(ch, now, "cycle", self.config.t_mf_cycle)

    def _mf_incoming(self, ch: Channel, signal: int, now: float) -> None:
        if signal == 0:
            if not ch.heard:
                return
            ch.heard = 0
            if ch.line is L.IN_OFFERED:
                # the forward side gave up its group II signal before our decision
                self._error(ch, now, "forward signal removed before it was answered")
                return
            if ch.tone is None:
                return
            self._tone(ch, None)  # compelled: the forward signal ended, end ours
            self._cycle_done(ch, now)
            return
        if ch.heard:
            self._error(ch, now, f"forward signal {signal} while {ch.heard} is still on")
            return
        if ch.tone is not None and not ch.pulse:
            self._error(ch, now, f"forward signal {signal} before our backward signal ended")
            return
        if ch.pulse:
            self._tone(ch, None)
            ch.pulse = False
        ch.heard = signal
        v = self.variant
        cfg = self.config
        reply: int | None
        if ch.phase == "dnis":
            if 1 <= signal <= 10:
                ch.dnis += _signal_digit(signal)
            elif signal != v.end_of_dnis:
                self._error(ch, now, f"I-{signal} is not a called-number digit")
                return
            complete = signal == v.end_of_dnis or (cfg.max_dnis and len(ch.dnis) >= cfg.max_dnis)
            if cfg.get_ani and not ch.category_sent and not complete and len(ch.dnis) >= cfg.ani_after:
                ch.category_sent = True
                ch.phase = "category"
                reply = v.a_signal("category")
            elif complete:
                ch.phase = "group2"
                reply = v.a_signal("to_b")
            else:
                reply = v.a_signal("next")
        elif ch.phase == "category":
            ch.category = signal
            ch.phase = "ani"
            reply = v.a_signal(v.ani_request)
        elif ch.phase == "ani":
            if 1 <= signal <= 10:
                ch.ani += _signal_digit(signal)
                ch.ani_done = len(ch.ani) >= cfg.max_ani
            elif signal in (v.end_of_ani, v.ani_restricted):
                ch.ani_done = True
                ch.ani_restricted = signal == v.ani_restricted
            else:
                self._error(ch, now, f"I-{signal} is not a calling-number digit")
                return
            if not ch.ani_done:
                reply = v.a_signal(v.ani_request)
            else:
                ch.phase = "dnis"
                if cfg.max_dnis and len(ch.dnis) >= cfg.max_dnis:
                    ch.phase = "group2"
                    reply = v.a_signal("to_b")
                else:
                    reply = v.a_signal("next")
        else:  # group II: the call is complete; call control decides, the forward signal is held meanwhile
            ch.kd = signal
            self._to(ch, L.IN_OFFERED, now)
            self._timer(ch, now, "offer", cfg.t_offer)
            ch.announced = True
            self._events.append(
                IncomingCall(
                    ch.call_id or 0, ch.number, ch.dnis, ch.ani, ch.category, ch.kd, ch.ani_restricted
                )
            )
            return
        self._tone(ch, reply)
        self._timer(ch, now, "cycle", cfg.t_mf_cycle)

    def _cycle_done(self, ch: Channel, now: float) -> None:
        """Our backward signal ended after the forward one: wait for the next forward signal, or finish."""
        if ch.outcome:
            self._cmd(DetectMf(ch.number, None))
            if ch.outcome in ("free_charge", "free_no_charge"):
                self._to(ch, L.IN_ACCEPTED, now)
                self._timer(ch, now, "answer", self.config.t_answer)
                self._events.append(Accepted(ch.call_id or 0, charge=ch.outcome == "free_charge"))
                if ch.answer_wanted:
                    self._to(ch, L.IN_ANSWERED, now)
            else:
                self._to(ch, L.IN_CLEARING, now)  # refused: wait for the clear forward
            return
        if ch.phase == "dnis" and ch.dnis and not self.config.max_dnis:
            self._timer(ch, now, "digit", self.config.t_digit)
        else:
            self._timer(ch, now, "cycle", self.config.t_mf_cycle)

    # ---- commands from call control -------------------------------------------------------------------
    def place_call(
        self,
        dnis: str,
        now: float,
        ani: str = "",
        channel: int | None = None,
        ani_restricted: bool = False,
    ) -> int:
        """Seize a channel and send `dnis`; returns the call id. No free channel (or span down):
        `Released(call_id, 34)` at once. Bad digits raise ValueError and change nothing."""
        for what, digits, most in (("called", dnis, 30), ("calling", ani, 20)):
            if (
                not isinstance(digits, str)
                or any(c not in "0123456789" for c in digits)
                or len(digits) > most
            ):
                raise ValueError(f"{what} number {digits!r}: R2 carries up to {most} digits 0-9")
        if not dnis:
            raise ValueError("called number is empty")
        if channel is not None and channel not in self.channels:
            raise ValueError(f"no CAS channel {channel!r} (1..30)")
        if channel is None:
            free = self.free_channels()
            chosen = free[0] if free else None
        else:
            chosen = channel if channel in self.free_channels() else None
        if chosen is None or not self.started:
            call_id = self._next_call
            self._next_call += 1
            self._events.append(Released(call_id, CAUSE_NO_CIRCUIT))
            return call_id
        ch = self.channels[chosen]
        self._reset_register(ch)
        ch.call_id = self._new_call(ch)
        ch.announced = True
        ch.dnis, ch.ani, ch.ani_restricted = dnis, ani, ani_restricted
        self._to(ch, L.OUT_SEIZED, now)
        self._timer(ch, now, "seize", self.config.t_seize_ack)
        return ch.call_id

    def _call(self, call_id: int, what: str) -> Channel:
        c = self.calls.get(call_id)
        if c is None:
            raise LocalProtocolError(f"{what}: no call {call_id}")
        return self.channels[c]

    def accept(self, call_id: int, now: float, charge: bool = True) -> None:
        """Accept an offered incoming call: B-1 (free, charge) or B-6 (free, no charge)."""
        ch = self._call(call_id, "accept")
        if ch.line is not L.IN_OFFERED:
            raise LocalProtocolError(f"accept: call {call_id} is {ch.line.value}, not offered")
        self._decide(ch, now, "free_charge" if charge else "free_no_charge")

    def reject(self, call_id: int, now: float, cause: int = 17) -> None:
        """Refuse an offered incoming call with the group B signal for the Q.850 cause (17 busy, 1
        unallocated, 27 out of order, anything else congestion). `Released` follows at once."""
        ch = self._call(call_id, "reject")
        if ch.line is not L.IN_OFFERED:
            raise LocalProtocolError(f"reject: call {call_id} is {ch.line.value}, not offered")
        self._decide(ch, now, CAUSE_B.get(cause, "congestion"))
        self._release_call(ch, cause)

    def _decide(self, ch: Channel, now: float, meaning: str) -> None:
        ch.outcome = meaning
        self._to(ch, L.IN_MF, now)
        self._tone(ch, self.variant.b_signal(meaning))
        self._timer(ch, now, "cycle", self.config.t_mf_cycle)

    def answer(self, call_id: int, now: float) -> None:
        """Answer an incoming call (accepting it first if it is still offered)."""
        ch = self._call(call_id, "answer")
        if ch.line is L.IN_OFFERED:
            self.accept(call_id, now)
        if ch.line is L.IN_ACCEPTED:
            self._to(ch, L.IN_ANSWERED, now)
        elif ch.line is L.IN_MF and ch.outcome in ("free_charge", "free_no_charge"):
            ch.answer_wanted = True  # sent when the B signal's compelled cycle is over
        elif ch.line is not L.IN_ANSWERED:
            raise LocalProtocolError(f"answer: call {call_id} is {ch.line.value}")

    def hangup(self, call_id: int, now: float, cause: int = 16) -> None:
        """Clear a call from our side; always safe (a call already gone is left alone)."""
        c = self.calls.get(call_id)
        if c is None:
            return
        ch = self.channels[c]
        if ch.line in OUTGOING:
            self._clear_forward(ch, now, cause)
        elif ch.line is L.IN_OFFERED:
            self.reject(call_id, now, cause)
        elif ch.line in INCOMING_CALL:
            if ch.line is L.IN_MF and not ch.outcome and ch.tone is None and ch.heard:
                # a forward signal waits for our reply: refuse with congestion
                self._tone(ch, self.variant.a_signal("congestion"))
                ch.outcome = "congestion"
                self._timer(ch, now, "cycle", self.config.t_mf_cycle)
                self._release_call(ch, cause)
                return
            self._clear_back(ch, now, cause)

    def block(self, channel: int, now: float) -> None:
        """Send blocking on an idle channel (or as soon as its call is over)."""
        ch = self.channels.get(channel)
        if ch is None:
            raise LocalProtocolError(f"block: no CAS channel {channel!r}")
        ch.block_wanted = True
        if ch.line is L.IDLE:
            self._to(ch, L.BLOCKED, now)
            self._events.append(Blocked(channel, remote=False, blocked=True))

    def unblock(self, channel: int, now: float) -> None:
        ch = self.channels.get(channel)
        if ch is None:
            raise LocalProtocolError(f"unblock: no CAS channel {channel!r}")
        ch.block_wanted = False
        if ch.line is L.BLOCKED:
            self._to(ch, L.IDLE, now)
            self._events.append(Blocked(channel, remote=False, blocked=False))
            self._after_idle(ch, now)

    # ---- timers --------------------------------------------------------------------------------------
    def handle_timers(self, now: float) -> None:
        for ch in self.channels.values():
            if ch.deadline is None or now < ch.deadline:
                continue
            kind, ch.deadline, ch.timer = ch.timer, None, ""
            self._expired(ch, kind, now)

    def _expired(self, ch: Channel, kind: str, now: float) -> None:
        st = ch.line
        if kind == "pulse":
            self._tone(ch, None)
            ch.pulse = False
            self._timer(ch, now, "cycle", self.config.t_mf_cycle)
        elif kind == "seize" and st is L.OUT_SEIZED:
            self._fail(ch, now, "no seizure acknowledgement", CAUSE_TIMEOUT)
        elif kind == "t1" and st is L.OUT_MF:
            self._fail(ch, now, "T1: no backward signal", CAUSE_TIMEOUT)
        elif kind == "answer" and st is L.OUT_ACCEPTED:
            self._clear_forward(ch, now, 19)
        elif kind == "answer" and st is L.IN_ACCEPTED:
            self._clear_back(ch, now, 19)
        elif kind == "offer" and st is L.IN_OFFERED:
            log.info("%s ch%d: call control did not decide in time: congestion", self.name, ch.number)
            self.reject(ch.call_id or 0, now, 42)
        elif kind == "digit" and st is L.IN_MF:
            # the called number ended by silence: pulsed A-3, then group II
            ch.phase = "group2"
            ch.pulse = True
            self._tone(ch, self.variant.a_signal("to_b"))
            self._timer(ch, now, "pulse", self.config.t_pulse)
        elif kind == "cycle" and st is L.IN_MF:
            self._fail(ch, now, "MF cycle timeout", CAUSE_TIMEOUT)
        elif kind == "release" and st is L.OUT_CLEARING:
            log.warning("%s ch%d: far end not idle %.0f s after clear forward", self.name, ch.number,
                        self.config.t_release)  # fmt: skip
            self._events.append(ProtocolError(ch.number, "no release guard after clear forward"))
            self._to(ch, L.FAULT, now)

    # ---- procedures ----------------------------------------------------------------------------------
    def _glare(self, ch: Channel, now: float) -> None:
        if self.config.glare_priority:
            log.info("%s ch%d: glare, we keep our call", self.name, ch.number)
            return
        log.info("%s ch%d: glare, the far end's call goes first", self.name, ch.number)
        self._release_call(ch, CAUSE_GLARE)
        self._incoming(ch, now)

    def _fail(self, ch: Channel, now: float, reason: str, cause: int) -> None:
        log.info("%s ch%d: %s", self.name, ch.number, reason)
        self._events.append(ProtocolError(ch.number, reason))
        if ch.line in OUTGOING:
            self._clear_forward(ch, now, cause)
        else:
            self._clear_back(ch, now, cause)

    def _error(self, ch: Channel, now: float, reason: str) -> None:
        log.warning("%s ch%d: protocol error in %s: %s", self.name, ch.number, ch.line.value, reason)
        self._events.append(ProtocolError(ch.number, reason))
        if ch.line in OUTGOING:
            self._clear_forward(ch, now, CAUSE_PROTOCOL)
        elif ch.line in INCOMING_CALL:
            self._clear_back(ch, now, CAUSE_PROTOCOL)
        elif ch.line is L.IDLE:
            self._to(ch, L.FAULT, now)

    def _clear_forward(self, ch: Channel, now: float, cause: int) -> None:
        self._release_call(ch, cause)
        self._stop_register(ch)
        self._to(ch, L.OUT_CLEARING, now)
        if ch.rx == AB_IDLE:  # the far end is already idle (never acknowledged, or released first)
            self._to(ch, L.IDLE, now)
            self._after_idle(ch, now)
        else:
            self._timer(ch, now, "release", self.config.t_release)

    def _clear_back(self, ch: Channel, now: float, cause: int) -> None:
        self._release_call(ch, cause)
        self._stop_register(ch)
        if ch.line is not L.IN_CLEARING:
            self._to(ch, L.IN_CLEARING, now)

    def _drop_call(self, ch: Channel, cause: int) -> None:
        self._release_call(ch, cause)
        self._stop_register(ch)

    def _release_call(self, ch: Channel, cause: int) -> None:
        if ch.call_id is None:
            return
        call_id, ch.call_id = ch.call_id, None
        self.calls.pop(call_id, None)
        if ch.announced:
            self._events.append(Released(call_id, cause))
        ch.announced = False

    def _stop_register(self, ch: Channel) -> None:
        if ch.tone is not None:
            self._tone(ch, None)
        ch.pulse = False
        ch.heard = ch.pending = 0
        self._cmd(DetectMf(ch.number, None))

    def _after_idle(self, ch: Channel, now: float) -> None:
        if ch.block_wanted and ch.line is L.IDLE:
            self._to(ch, L.BLOCKED, now)
            self._events.append(Blocked(ch.number, remote=False, blocked=True))
        elif ch.line is L.IDLE and ch.rx == AB_SEIZE:
            self._incoming(ch, now)

    def _reset_register(self, ch: Channel) -> None:
        ch.tone, ch.pulse, ch.heard, ch.pending = None, False, 0, 0
        ch.group, ch.phase = "A", "dnis"
        ch.dnis = ch.ani = ""
        ch.dnis_idx = ch.ani_idx = -1
        ch.category, ch.category_sent, ch.ani_done, ch.ani_restricted = None, False, False, False
        ch.kd, ch.outcome, ch.answer_wanted, ch.answered_early = 0, "", False, False

    def _new_call(self, ch: Channel) -> int:
        call_id = self._next_call
        self._next_call += 1
        self.calls[call_id] = ch.number
        return call_id

    # ---- the one place line state changes --------------------------------------------------------------
    def _to(self, ch: Channel, new: Line, now: float, force_tx: bool = False) -> None:
        if new not in TRANSITIONS[ch.line]:
            raise AssertionError(f"{self.name} ch{ch.number}: no transition {ch.line.value} -> {new.value}")
        old = ch.line
        log.debug("%s ch%d: %s -> %s", self.name, ch.number, old.value, new.value)
        ch.line = new
        ch.deadline, ch.timer = None, ""
        if force_tx or TX_AB[new] != TX_AB[old] or old is L.ALARM:
            self._tx(ch)

    def _tx(self, ch: Channel) -> None:
        self._cmd(SetAbcd(ch.number, self.abcd(TX_AB[ch.line])))

    def _tone(self, ch: Channel, signal: int | None) -> None:
        ch.tone = signal
        direction = "F" if ch.line in OUTGOING or ch.line is L.OUT_CLEARING else "B"
        self._cmd(PlayMf(ch.number, direction, signal))

    def _timer(self, ch: Channel, now: float, kind: str, seconds: float) -> None:
        ch.deadline, ch.timer = now + seconds, kind

    def _cmd(self, c: SetAbcd | PlayMf | DetectMf) -> None:
        self._commands.append(c)

    # ---- invariants (tests) ----------------------------------------------------------------------------
    def check_invariants(self) -> None:
        for call_id, c in self.calls.items():
            assert self.channels[c].call_id == call_id, (call_id, c)
        for ch in self.channels.values():
            if ch.call_id is not None:
                assert self.calls.get(ch.call_id) == ch.number
            if ch.line in (L.IDLE, L.BLOCKED, L.FAULT, L.ALARM):
                assert ch.call_id is None, ch
            if ch.line in (L.OUT_SEIZED, L.OUT_MF, L.OUT_ACCEPTED, L.IN_MF, L.IN_OFFERED, L.IN_ACCEPTED):
                assert ch.deadline is not None, ch  # every call state before answer has a deadline


def channels_of(events: Iterable[object]) -> list[int]:
    """Channels named by ProtocolError/Blocked events (for logs and tests)."""
    return [getattr(e, "channel", -1) for e in events if isinstance(e, ProtocolError | Blocked)]
