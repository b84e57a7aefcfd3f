"""The endpoint interface: how call control sees one leg of a call, whatever carries it.

An E1 B-channel (PRI/R2), an FXO port, a SIP leg or an in-process phone all look the same to call control:

- the leg's owner (the signalling glue for that line) calls the `CallControl` methods when something
  happens on the line: `incoming(...)` for a new inbound call, then `ringing`, `answered`, `hangup(cause)`,
  `dtmf(digit)` (out-of-band digits: SIP RFC 2833/INFO; in-band digits come from the media engine);
- call control calls the `Endpoint` methods to act on the line: `progress` (early media, in-band tones),
  `ring` (alerting), `answer`, `hangup(cause)`, `send_dtmf`;
- `channel` is the leg's row in the media engine, which carries its audio.

An `Originator` makes outbound legs (a trunk group, the extension directory, a SIP registrar): it returns
an `Endpoint` already dialling, or None when it has no free channel (congestion).

Causes are ITU-T Q.850 values (the `Cause` constants).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol


class Cause:
    UNALLOCATED = 1
    NO_ROUTE = 3
    NORMAL = 16
    USER_BUSY = 17
    NO_USER_RESPONSE = 18
    NO_ANSWER = 19
    CALL_REJECTED = 21
    NON_SELECTED = 26
    OUT_OF_ORDER = 27
    INVALID_NUMBER = 28
    NORMAL_UNSPECIFIED = 31
    NO_CIRCUIT = 34
    NETWORK_OUT_OF_ORDER = 38
    TEMPORARY_FAILURE = 41
    CONGESTION = 42
    OUTGOING_BARRED = 52
    INCOMING_BARRED = 54
    FACILITY_REJECTED = 29
    INTERWORKING = 127


def disposition_for(cause: int) -> str:
    """Asterisk's mapping of an unanswered leg's cause to a CDR disposition."""
    if cause == Cause.USER_BUSY:
        return "BUSY"
    if cause in (Cause.NO_ANSWER, Cause.NO_USER_RESPONSE, Cause.NORMAL, Cause.NON_SELECTED):
        return "NO ANSWER"
    if cause in (Cause.NO_CIRCUIT, Cause.CONGESTION, Cause.TEMPORARY_FAILURE, Cause.NETWORK_OUT_OF_ORDER):
        return "CONGESTION"
    return "FAILED"


class CallControl(Protocol):
    """What a line's owner calls on call control (implemented by firmware.calls.manager.CallManager)."""

    def incoming(self, ep: Endpoint, caller: str, called: str, caller_name: str | None = None) -> None: ...

    def ringing(self, ep: Endpoint) -> None: ...

    def answered(self, ep: Endpoint) -> None: ...

    def hangup(self, ep: Endpoint, cause: int) -> None: ...

    def dtmf(self, ep: Endpoint, digit: str) -> None: ...


class Endpoint(ABC):
    """One leg of a call. Subclasses: trunk channels, FXO ports, SIP legs, loopback phones."""

    kind: str = "endpoint"  # "trunk" | "fxo" | "sip" | "local"

    def __init__(self, name: str, channel: int, trunk: str | None = None) -> None:
        self.name = name  # Asterisk-style channel name, e.g. "DAHDI/1-5", "SIP/1001-0000002a"
        self.channel = channel  # row in the media engine
        self.trunk = trunk  # trunk (inbound routing key), None for extensions
        self.number = ""  # for extensions: the extension number
        self.up = False
        # implementations keep this current; "down" once the leg is cleared (either side)
        self.state = "idle"

    @abstractmethod
    def progress(self) -> None:
        """Early media: in-band tones/announcements without answering (PRI PROGRESS, SIP 183)."""

    @abstractmethod
    def ring(self) -> None:
        """Tell the caller the called party is being alerted (PRI ALERTING, SIP 180)."""

    @abstractmethod
    def answer(self) -> None:
        """Answer an inbound leg (PRI CONNECT, FXO off-hook, SIP 200)."""

    @abstractmethod
    def hangup(self, cause: int = Cause.NORMAL) -> None:
        """Clear the leg with a Q.850 cause. Must not call back CallControl.hangup for this leg."""

    def send_dtmf(self, digits: str) -> None:
        """Out-of-band DTMF towards the line; the default sends nothing (in-band via the engine instead)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ch={self.channel}>"


class Originator(Protocol):
    """Something that makes outbound legs: a trunk group, the extension directory, a SIP registrar."""

    def originate(
        self, number: str, caller_id: str, caller_name: str | None, control: CallControl
    ) -> Endpoint | None: ...
