"""Events the PRI stack reports upward to call control (see docs/signalling.md).

Every call event carries `call_id`, the span-unique number `PriSpan.place_call` returned (outgoing) or
`IncomingCall` announced (incoming). Causes are Q.850 values (firmware.signalling.q931.codec.Cause).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.signalling.q931.codec import PartyNumber


@dataclass(frozen=True)
class LinkUp:
    """The D-channel carries Q.931 (again); channels are available."""


@dataclass(frozen=True)
class LinkDown:
    """The D-channel is down; calls not active are gone, active ones survive T309 at most."""

    reason: str


@dataclass(frozen=True)
class IncomingCall:
    call_id: int
    channel: int  # E1 timeslot given to the call (1-15, 17-31)
    called: PartyNumber | None
    calling: PartyNumber | None
    sending_complete: bool  # False: more digits may follow (overlap receiving: answer with setup_ack)
    transfer: int  # bearer: 0x00 speech, 0x10 3.1 kHz audio
    display: str | None = None


@dataclass(frozen=True)
class SetupAcknowledged:
    """The peer wants more digits for our outgoing call (overlap sending): use send_digits."""

    call_id: int
    channel: int | None


@dataclass(frozen=True)
class CallProceeding:
    call_id: int
    channel: int | None


@dataclass(frozen=True)
class Alerting:
    call_id: int
    inband: bool  # ringback is in the B-channel (progress indicator 8)


@dataclass(frozen=True)
class Progress:
    call_id: int
    description: int


@dataclass(frozen=True)
class Connected:
    """The call is active (outgoing: the far end answered; incoming: our answer was confirmed)."""

    call_id: int
    connected: PartyNumber | None = None


@dataclass(frozen=True)
class DigitsReceived:
    """Overlap receiving: more called-number digits (INFORMATION); `complete` if Sending Complete came."""

    call_id: int
    digits: str
    complete: bool


@dataclass(frozen=True)
class Disconnected:
    """The far end cleared (DISCONNECT). If `inband` the stack waits for `hangup` so tones can be heard;
    otherwise it has already answered with RELEASE and `Released` follows."""

    call_id: int
    cause: int
    inband: bool


@dataclass(frozen=True)
class Released:
    """The call and its channel are gone. The last event of every call."""

    call_id: int
    cause: int


@dataclass(frozen=True)
class ChannelsRestarted:
    """The peer restarted these channels (RESTART); any calls on them were released first."""

    channels: tuple[int, ...]


@dataclass(frozen=True)
class RestartCompleted:
    """Our RESTART of these channels finished: acknowledged, or given up after T316 retries."""

    channels: tuple[int, ...]
    acknowledged: bool


PriEvent = (
    LinkUp
    | LinkDown
    | IncomingCall
    | SetupAcknowledged
    | CallProceeding
    | Alerting
    | Progress
    | Connected
    | DigitsReceived
    | Disconnected
    | Released
    | ChannelsRestarted
    | RestartCompleted
)
