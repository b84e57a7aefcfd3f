"""Q.931 call states as tables (h11 style).

Two rules, as in h11's `_state.py`:
1. Every change of a call's state happens here, in `CallStateMachine.apply`; the rest of the stack asks
   this module whether a message may be sent or received and what the new state is.
2. The table does not know which side we play. Q.931 numbers its states by the direction of the call
   relative to the *user*: states 1-4 belong to calls the user side originated, 6-9 and 25 to calls the
   network side originated, 11 follows a DISCONNECT sent by the user, 12 one sent by the network. The same
   numbers are used by both sides (U1/N1, U6/N6 ...), so one table keyed by (state, who sends, message)
   serves the user side and the network side alike.

What is not in the table, with the reason:
- RELEASE / RELEASE COMPLETE from either side are accepted in every state but Null (§5.3.4/5.8.4: clearing
  messages are never "out of state"), so they are generated below from CLEARING_STATES, not listed by hand.
- STATUS, STATUS ENQUIRY, NOTIFY, FACILITY, PROGRESS and INFORMATION are state-neutral; STATUS_NEUTRAL lists
  the states where each is acceptable.
- Timers depend on which side we play, so TIMER_ON_ENTRY is keyed by (our party, state).
"""

from __future__ import annotations

import enum

from firmware.signalling.q931.codec import MT


class Party(enum.Enum):
    USER = "user"
    NETWORK = "network"

    @property
    def other(self) -> Party:
        return Party.NETWORK if self is Party.USER else Party.USER


class CallState(enum.IntEnum):
    NULL = 0
    CALL_INITIATED = 1
    OVERLAP_SENDING = 2
    OUTGOING_CALL_PROCEEDING = 3
    CALL_DELIVERED = 4
    CALL_PRESENT = 6
    CALL_RECEIVED = 7
    CONNECT_REQUEST = 8
    INCOMING_CALL_PROCEEDING = 9
    ACTIVE = 10
    DISCONNECT_REQUEST = 11
    DISCONNECT_INDICATION = 12
    RELEASE_REQUEST = 19
    OVERLAP_RECEIVING = 25


class LocalProtocolError(Exception):
    """We were asked to send something the call state does not allow."""


class RemoteProtocolError(Exception):
    """The peer sent something the call state does not allow (§5.8.4: answer with STATUS, cause 101)."""


U, N = Party.USER, Party.NETWORK
S = CallState

# TRANSITIONS[state][(sender, message type)] -> new state
TRANSITIONS: dict[CallState, dict[tuple[Party, MT], CallState]] = {
    S.NULL: {
        (U, MT.SETUP): S.CALL_INITIATED,
        (N, MT.SETUP): S.CALL_PRESENT,
    },
    # ---- calls originated by the user side ----
    S.CALL_INITIATED: {
        (N, MT.SETUP_ACKNOWLEDGE): S.OVERLAP_SENDING,
        (N, MT.CALL_PROCEEDING): S.OUTGOING_CALL_PROCEEDING,
        (N, MT.ALERTING): S.CALL_DELIVERED,
        (N, MT.CONNECT): S.ACTIVE,
    },
    S.OVERLAP_SENDING: {
        (U, MT.INFORMATION): S.OVERLAP_SENDING,
        (N, MT.CALL_PROCEEDING): S.OUTGOING_CALL_PROCEEDING,
        (N, MT.ALERTING): S.CALL_DELIVERED,
        (N, MT.CONNECT): S.ACTIVE,
    },
    S.OUTGOING_CALL_PROCEEDING: {
        (N, MT.ALERTING): S.CALL_DELIVERED,
        (N, MT.CONNECT): S.ACTIVE,
    },
    S.CALL_DELIVERED: {
        (N, MT.CONNECT): S.ACTIVE,
    },
    # ---- calls originated by the network side ----
    S.CALL_PRESENT: {
        (U, MT.SETUP_ACKNOWLEDGE): S.OVERLAP_RECEIVING,
        (U, MT.CALL_PROCEEDING): S.INCOMING_CALL_PROCEEDING,
        (U, MT.ALERTING): S.CALL_RECEIVED,
        (U, MT.CONNECT): S.CONNECT_REQUEST,
    },
    S.OVERLAP_RECEIVING: {
        (N, MT.INFORMATION): S.OVERLAP_RECEIVING,
        (U, MT.CALL_PROCEEDING): S.INCOMING_CALL_PROCEEDING,
        (U, MT.ALERTING): S.CALL_RECEIVED,
        (U, MT.CONNECT): S.CONNECT_REQUEST,
    },
    S.INCOMING_CALL_PROCEEDING: {
        (U, MT.ALERTING): S.CALL_RECEIVED,
        (U, MT.CONNECT): S.CONNECT_REQUEST,
    },
    S.CALL_RECEIVED: {
        (U, MT.CONNECT): S.CONNECT_REQUEST,
    },
    S.CONNECT_REQUEST: {
        (N, MT.CONNECT_ACKNOWLEDGE): S.ACTIVE,
    },
    S.ACTIVE: {
        (U, MT.CONNECT_ACKNOWLEDGE): S.ACTIVE,  # the user side acknowledging the network's CONNECT
        (N, MT.CONNECT_ACKNOWLEDGE): S.ACTIVE,  # late duplicate; harmless
    },
    # ---- clearing ----
    S.DISCONNECT_REQUEST: {  # the user sent DISCONNECT
        (N, MT.DISCONNECT): S.DISCONNECT_INDICATION,  # disconnect collision: the user answers with RELEASE
    },
    S.DISCONNECT_INDICATION: {  # the network sent DISCONNECT
        (U, MT.DISCONNECT): S.DISCONNECT_REQUEST,  # collision: the network answers with RELEASE
    },
    S.RELEASE_REQUEST: {},
}

# DISCONNECT may be sent by either side from every state of call establishment or the active state.
CLEARABLE_STATES = [
    S.CALL_INITIATED,
    S.OVERLAP_SENDING,
    S.OUTGOING_CALL_PROCEEDING,
    S.CALL_DELIVERED,
    S.CALL_PRESENT,
    S.CALL_RECEIVED,
    S.CONNECT_REQUEST,
    S.INCOMING_CALL_PROCEEDING,
    S.ACTIVE,
    S.OVERLAP_RECEIVING,
]
for _st in CLEARABLE_STATES:
    TRANSITIONS[_st][(U, MT.DISCONNECT)] = S.DISCONNECT_REQUEST
    TRANSITIONS[_st][(N, MT.DISCONNECT)] = S.DISCONNECT_INDICATION

CLEARING_STATES = [*CLEARABLE_STATES, S.DISCONNECT_REQUEST, S.DISCONNECT_INDICATION, S.RELEASE_REQUEST]
for _st in CLEARING_STATES:
    for _p in Party:
        # RELEASE: the sender waits in Release Request for RELEASE COMPLETE; a RELEASE received while we
        # wait ourselves (release collision, §5.3.5) ends the call reference at once.
        TRANSITIONS[_st][(_p, MT.RELEASE)] = S.NULL if _st is S.RELEASE_REQUEST else S.RELEASE_REQUEST
        TRANSITIONS[_st][(_p, MT.RELEASE_COMPLETE)] = S.NULL
# SETUP may be refused at once with RELEASE COMPLETE from the Null state's successors only (above).

# Messages that do not change the state, and the states where they are acceptable.
_ALL_BUT_NULL = frozenset(CLEARING_STATES)
STATUS_NEUTRAL: dict[MT, frozenset[CallState]] = {
    MT.STATUS: _ALL_BUT_NULL,
    MT.STATUS_ENQUIRY: _ALL_BUT_NULL,
    MT.NOTIFY: _ALL_BUT_NULL,
    MT.FACILITY: _ALL_BUT_NULL,
    MT.PROGRESS: frozenset(
        {
            S.CALL_INITIATED,
            S.OVERLAP_SENDING,
            S.OUTGOING_CALL_PROCEEDING,
            S.CALL_DELIVERED,
            S.INCOMING_CALL_PROCEEDING,
            S.OVERLAP_RECEIVING,
            S.CALL_RECEIVED,
            S.CALL_PRESENT,
            S.ACTIVE,
            S.DISCONNECT_INDICATION,
        }
    ),
    MT.INFORMATION: frozenset(
        {
            S.OVERLAP_SENDING,
            S.OVERLAP_RECEIVING,
            S.OUTGOING_CALL_PROCEEDING,
            S.INCOMING_CALL_PROCEEDING,
            S.CALL_DELIVERED,
            S.CALL_RECEIVED,
            S.CONNECT_REQUEST,
            S.ACTIVE,
            S.DISCONNECT_REQUEST,
            S.DISCONNECT_INDICATION,
        }
    ),
}

# Timer started on entering a state, depending on the side we play (libpri's defaults, in seconds).
TIMER_ON_ENTRY: dict[tuple[Party, CallState], str] = {
    (U, S.CALL_INITIATED): "T303",
    (N, S.CALL_PRESENT): "T303",
    (U, S.OUTGOING_CALL_PROCEEDING): "T310",
    (N, S.INCOMING_CALL_PROCEEDING): "T310",
    (U, S.CONNECT_REQUEST): "T313",
    (U, S.DISCONNECT_REQUEST): "T305",
    (N, S.DISCONNECT_INDICATION): "T305",
    (U, S.RELEASE_REQUEST): "T308",
    (N, S.RELEASE_REQUEST): "T308",
    # Overlap: the side sending digits runs T304, the side receiving them T302 (both restart per INFORMATION).
    (U, S.OVERLAP_SENDING): "T304",
    (N, S.OVERLAP_SENDING): "T302",
    (U, S.OVERLAP_RECEIVING): "T302",
    (N, S.OVERLAP_RECEIVING): "T304",
    # Not a Q.931 timer: how long call control may leave an incoming SETUP without any answer. By then the
    # caller's T303 has run out twice and it has given up (libpri does so without a word), so the call
    # reference and its channel are released rather than held for ever.
    (U, S.CALL_PRESENT): "TRESP",
    (N, S.CALL_INITIATED): "TRESP",
    # Ours too: the far end cleared with in-band tones and call control has not released; after this long
    # we release anyway (the far end's T305 would normally have done it).
    (U, S.DISCONNECT_INDICATION): "TDISC",
    (N, S.DISCONNECT_REQUEST): "TDISC",
}

# Seconds. libpri 1.6's EuroISDN E1 defaults (pri_get_timer) where libpri runs the timer; libpri leaves T310,
# T316, T302 and T304 off (-1), so those take the Q.931/ETSI values.
TIMER_DEFAULTS: dict[str, float] = {
    "T303": 4.0,
    "T305": 30.0,
    "T308": 4.0,
    "T309": 6.0,
    "T310": 30.0,
    "T313": 4.0,
    "T316": 120.0,
    "T302": 15.0,  # libpri: off; Q.931 10-15 s
    "T304": 20.0,  # libpri: off; ETSI 20 s
    "TRESP": 10.0,  # ours, > 2 x T303
    "TDISC": 35.0,  # ours, > T305
}


# The tables above, flattened once into one dict keyed by plain values for the per-message lookup
# (hashing enum members is slow in CPython; the tables stay the readable source of truth).
_INDEX: dict[tuple[int, str, int], CallState] = {
    (int(st), sender.value, int(mt)): new
    for st, row in TRANSITIONS.items()
    for (sender, mt), new in row.items()
}
for _mt, _states in STATUS_NEUTRAL.items():
    for _st in _states:
        for _p in Party:
            _INDEX.setdefault((int(_st), _p.value, int(_mt)), _st)


def _behind(us: Party, ours: CallState, steps: int = 4) -> set[int]:
    """States from which our state is reached by messages *we* send, in up to `steps` transitions (never
    through Null: a path through Null would be another call on the same reference)."""
    found = {int(ours)}
    frontier = {int(ours)}
    for _ in range(steps):
        frontier = {
            int(st)
            for st, row in TRANSITIONS.items()
            for (sender, _mt), new in row.items()
            if sender is us and int(new) in frontier and int(st) not in found and st is not S.NULL
        }
        found |= frontier
    return found


# §5.8.11: the states the peer may report in STATUS while we are in a given state. The D-channel delivers
# in order, so by the time the peer's STATUS reaches us we have processed everything the peer sent
# before it; the peer can only lag behind by the messages *we* sent that it had not yet received. Both
# sides number states alike, so the compatible states are ours and those a few of our own messages away.
COMPATIBLE: dict[tuple[str, int], frozenset[int]] = {
    (us.value, int(ours)): frozenset(_behind(us, ours)) for us in Party for ours in CallState
}

_TIMER_INDEX: dict[tuple[str, int], str] = {(p.value, int(st)): t for (p, st), t in TIMER_ON_ENTRY.items()}


class CallStateMachine:
    """The state of one call reference, seen from `us` (our party)."""

    __slots__ = ("us", "state")

    def __init__(self, us: Party) -> None:
        self.us = us
        self.state = CallState.NULL

    def next_state(self, sender: Party, mt: int) -> CallState | None:
        """The state after `sender` sends `mt`, or None if not allowed now."""
        return _INDEX.get((self.state, sender._value_, mt))

    def apply(self, sender: Party, mt: int) -> CallState:
        """Change state for one message sent (sender == us) or received; the only place state changes."""
        new = self.next_state(sender, mt)
        if new is None:
            name = MT(mt).name if mt in MT._value2member_map_ else f"0x{mt:02x}"
            text = f"{name} from the {sender.value} side not allowed in state {self.state.value}"
            if sender is self.us:
                raise LocalProtocolError(text)
            raise RemoteProtocolError(text)
        self.state = new
        return new

    def release(self) -> None:
        """Release the call reference without a message (timer expiry, restart, link loss)."""
        self.state = CallState.NULL

    def timer(self) -> str | None:
        return _TIMER_INDEX.get((self.us._value_, self.state))
