"""SIP transactions (RFC 3261 section 17, with the Accepted states of RFC 6026), sans-I/O.

Everything that changes transaction state lives in this file, as tables in the manner of h11's _state.py:
`TRANSITIONS[kind][state][input] -> new state`. The work a transition does (send, retransmit, pass up,
start or stop a timer) is written out in `Transaction._act`, one branch per input, beside the table.

Inputs a peer causes (a response, a retransmitted request, an ACK) that the table does not list for the
current state are absorbed silently, as RFC 3261 says (e.g. a 1xx after the final response). Inputs we
cause (the TU sending a response) that the table does not list raise LocalProtocolError.

`TransactionLayer` holds the transactions and matches messages to them (17.1.3, 17.2.3). It is fed parsed
messages, the peer's address and the current time, and returns events: `Transmit` (bytes to send to an
address), `RequestReceived` / `ResponseReceived` (for the transaction user), `TransactionTimeout`,
`TransportFailure`. `next_deadline()` tells the caller when to call `handle_timers(now)`. There is no
socket and no clock in here: tests drive it with bytes and a number for time.

`rport` (RFC 3581): on receiving a request the top Via gets `received=` when the packet came from another
address than the Via says, and `rport=<port>` when the client asked for it; responses go back to that
address and port.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from .message import (
    Headers,
    LocalProtocolError,
    Request,
    Response,
    Via,
)

log = logging.getLogger(__name__)

T1 = 0.5  # RTT estimate
T2 = 4.0  # longest retransmit interval for non-INVITE requests and INVITE responses
T4 = 5.0  # longest time a message stays in the network
BRANCH_MAGIC = "z9hG4bK"


class Peer(NamedTuple):
    """Where a message came from / goes to. `transport` is 'UDP' or 'TCP'."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


class Kind(Enum):
    INVITE_CLIENT = "invite-client"
    NON_INVITE_CLIENT = "non-invite-client"
    INVITE_SERVER = "invite-server"
    NON_INVITE_SERVER = "non-invite-server"


class State(Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


S = State
# Inputs: "1xx", "2xx", "final" (300-699) responses received or, prefixed "send_", sent; "request" a
# retransmitted request; "ack"; "timer_X"; "transport_error".
TRANSITIONS: dict[Kind, dict[State, dict[str, State]]] = {
    Kind.INVITE_CLIENT: {  # RFC 3261 figure 5 + RFC 6026 figure 3
        S.CALLING: {
            "timer_A": S.CALLING,
            "timer_B": S.TERMINATED,
            "1xx": S.PROCEEDING,
            "2xx": S.ACCEPTED,
            "final": S.COMPLETED,
            "transport_error": S.TERMINATED,
        },
        S.PROCEEDING: {"1xx": S.PROCEEDING, "2xx": S.ACCEPTED, "final": S.COMPLETED, "timer_B": S.TERMINATED},
        S.COMPLETED: {"final": S.COMPLETED, "timer_D": S.TERMINATED, "transport_error": S.TERMINATED},
        S.ACCEPTED: {"2xx": S.ACCEPTED, "timer_M": S.TERMINATED},
    },
    Kind.NON_INVITE_CLIENT: {  # figure 6
        S.TRYING: {
            "timer_E": S.TRYING,
            "timer_F": S.TERMINATED,
            "1xx": S.PROCEEDING,
            "2xx": S.COMPLETED,
            "final": S.COMPLETED,
            "transport_error": S.TERMINATED,
        },
        S.PROCEEDING: {
            "timer_E": S.PROCEEDING,
            "timer_F": S.TERMINATED,
            "1xx": S.PROCEEDING,
            "2xx": S.COMPLETED,
            "final": S.COMPLETED,
            "transport_error": S.TERMINATED,
        },
        S.COMPLETED: {"timer_K": S.TERMINATED},
    },
    Kind.INVITE_SERVER: {  # figure 7 + RFC 6026 figure 5
        S.PROCEEDING: {
            "request": S.PROCEEDING,
            "send_1xx": S.PROCEEDING,
            "send_2xx": S.ACCEPTED,
            "send_final": S.COMPLETED,
            "transport_error": S.TERMINATED,
        },
        S.COMPLETED: {
            "request": S.COMPLETED,
            "timer_G": S.COMPLETED,
            "timer_H": S.TERMINATED,
            "ack": S.CONFIRMED,
            "transport_error": S.TERMINATED,
        },
        S.CONFIRMED: {"timer_I": S.TERMINATED},
        S.ACCEPTED: {"ack": S.ACCEPTED, "send_2xx": S.ACCEPTED, "timer_L": S.TERMINATED},
    },
    Kind.NON_INVITE_SERVER: {  # figure 8
        S.TRYING: {
            "send_1xx": S.PROCEEDING,
            "send_2xx": S.COMPLETED,
            "send_final": S.COMPLETED,
            "transport_error": S.TERMINATED,
        },
        S.PROCEEDING: {
            "request": S.PROCEEDING,
            "send_1xx": S.PROCEEDING,
            "send_2xx": S.COMPLETED,
            "send_final": S.COMPLETED,
            "transport_error": S.TERMINATED,
        },
        S.COMPLETED: {"request": S.COMPLETED, "timer_J": S.TERMINATED},
    },
}

INITIAL: dict[Kind, State] = {
    Kind.INVITE_CLIENT: S.CALLING,
    Kind.NON_INVITE_CLIENT: S.TRYING,
    Kind.INVITE_SERVER: S.PROCEEDING,
    Kind.NON_INVITE_SERVER: S.TRYING,
}


_ORDER = itertools.count()


def response_class(status: int) -> str:
    if status < 200:
        return "1xx"
    if status < 300:
        return "2xx"
    return "final"


# ---------------------------------------------------------------------------------------------------------
# events out


@dataclass(frozen=True)
class Transmit:
    data: bytes
    peer: Peer


@dataclass(frozen=True)
class RequestReceived:
    request: Request
    peer: Peer
    key: tuple[str, str, str] | None  # server transaction key; None for an ACK to a 2xx (no transaction)


@dataclass(frozen=True)
class ResponseReceived:
    response: Response
    key: tuple[str, str] | None  # client transaction key; None for a 2xx retransmission after it ended


@dataclass(frozen=True)
class TransactionTimeout:
    key: tuple
    request: Request


@dataclass(frozen=True)
class TransportFailure:
    key: tuple
    request: Request


Event = Transmit | RequestReceived | ResponseReceived | TransactionTimeout | TransportFailure


# ---------------------------------------------------------------------------------------------------------


@dataclass
class Transaction:
    kind: Kind
    key: tuple
    request: Request
    peer: Peer  # client: where requests go; server: where responses go
    t1: float = T1
    t2: float = T2
    t4: float = T4
    state: State = S.TRYING
    last_response: Response | None = None
    timers: dict[str, float] = field(default_factory=dict)  # name -> deadline
    intervals: dict[str, float] = field(default_factory=dict)  # retransmit interval of A, E, G
    encoded_request: bytes = b""
    encoded_response: bytes = b""
    ack: bytes = b""
    heap: list | None = field(default=None, repr=False)  # the layer's timer heap, shared

    @property
    def reliable(self) -> bool:
        return self.peer.reliable

    def next_deadline(self) -> float | None:
        return min(self.timers.values()) if self.timers else None

    def _start(self, name: str, now: float, delay: float) -> None:
        self.timers[name] = now + delay
        if self.heap is not None:
            heapq.heappush(self.heap, (now + delay, next(_ORDER), self, name))

    def _stop(self, *names: str) -> None:
        for name in names:
            self.timers.pop(name, None)

    # -- the transition function -------------------------------------------------------------------------

    def feed(self, input_: str, now: float, msg: Request | Response | None = None) -> list[Event]:
        table = TRANSITIONS[self.kind].get(self.state, {})
        new_state = table.get(input_)
        if new_state is None:
            if input_.startswith("send_"):
                raise LocalProtocolError(f"{self.kind.value} in {self.state.value} cannot {input_}")
            return []  # absorbed
        old_state = self.state
        self.state = new_state
        out = self._act(input_, old_state, now, msg)
        if new_state is S.TERMINATED:
            self.timers.clear()
        return out

    def _act(self, input_: str, old: State, now: float, msg: Request | Response | None) -> list[Event]:
        kind = self.kind
        out: list[Event] = []
        send_req = Transmit(self.encoded_request, self.peer)
        if kind is Kind.INVITE_CLIENT:
            if input_ == "timer_A":
                out.append(send_req)
                self.intervals["A"] *= 2
                self._start("timer_A", now, self.intervals["A"])
            elif input_ in ("timer_B", "transport_error"):
                ev = TransactionTimeout if input_ == "timer_B" else TransportFailure
                out.append(ev(self.key, self.request))
            elif input_ == "1xx":
                self._stop("timer_A")
                out.append(ResponseReceived(msg, self.key))  # type: ignore[arg-type]
            elif input_ == "2xx":
                if old is not S.ACCEPTED:
                    self._stop("timer_A", "timer_B")
                    self._start("timer_M", now, 64 * self.t1)
                out.append(ResponseReceived(msg, self.key))  # type: ignore[arg-type]
            elif input_ == "final":
                assert isinstance(msg, Response)
                if old is not S.COMPLETED:
                    self._stop("timer_A", "timer_B")
                    self.ack = build_ack(self.request, msg).encode()
                    self._start("timer_D", now, 0.0 if self.reliable else 32.0)
                    out.append(ResponseReceived(msg, self.key))
                out.append(Transmit(self.ack, self.peer))
        elif kind is Kind.NON_INVITE_CLIENT:
            if input_ == "timer_E":
                out.append(send_req)
                if self.state is S.PROCEEDING:
                    self.intervals["E"] = self.t2
                else:
                    self.intervals["E"] = min(2 * self.intervals["E"], self.t2)
                self._start("timer_E", now, self.intervals["E"])
            elif input_ in ("timer_F", "transport_error"):
                ev = TransactionTimeout if input_ == "timer_F" else TransportFailure
                out.append(ev(self.key, self.request))
            elif input_ == "1xx":
                out.append(ResponseReceived(msg, self.key))  # type: ignore[arg-type]
            elif input_ in ("2xx", "final"):
                self._stop("timer_E", "timer_F")
                self._start("timer_K", now, 0.0 if self.reliable else self.t4)
                out.append(ResponseReceived(msg, self.key))  # type: ignore[arg-type]
        elif kind is Kind.INVITE_SERVER:
            if input_ == "request":
                if self.encoded_response:
                    out.append(Transmit(self.encoded_response, self.peer))
            elif input_.startswith("send_"):
                assert isinstance(msg, Response)
                self.last_response = msg
                self.encoded_response = msg.encode()
                out.append(Transmit(self.encoded_response, self.peer))
                if input_ == "send_final":
                    if not self.reliable:
                        self.intervals["G"] = self.t1
                        self._start("timer_G", now, self.t1)
                    self._start("timer_H", now, 64 * self.t1)
                elif input_ == "send_2xx" and old is not S.ACCEPTED:
                    self._start("timer_L", now, 64 * self.t1)
            elif input_ == "timer_G":
                out.append(Transmit(self.encoded_response, self.peer))
                self.intervals["G"] = min(2 * self.intervals["G"], self.t2)
                self._start("timer_G", now, self.intervals["G"])
            elif input_ == "timer_H":
                out.append(TransactionTimeout(self.key, self.request))
            elif input_ == "transport_error":
                out.append(TransportFailure(self.key, self.request))
            elif input_ == "ack":
                if old is S.COMPLETED:
                    self._stop("timer_G", "timer_H")
                    self._start("timer_I", now, 0.0 if self.reliable else self.t4)
                else:  # Accepted: an ACK to our 2xx that reused the INVITE's branch goes to the TU
                    out.append(RequestReceived(msg, self.peer, None))  # type: ignore[arg-type]
        else:  # NON_INVITE_SERVER
            if input_ == "request":
                if self.encoded_response:
                    out.append(Transmit(self.encoded_response, self.peer))
            elif input_.startswith("send_"):
                assert isinstance(msg, Response)
                self.last_response = msg
                self.encoded_response = msg.encode()
                out.append(Transmit(self.encoded_response, self.peer))
                if input_ != "send_1xx":
                    self._start("timer_J", now, 0.0 if self.reliable else 64 * self.t1)
            elif input_ == "transport_error":
                out.append(TransportFailure(self.key, self.request))
        return out


def build_ack(request: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 17.1.1.3): same Request-URI, Call-ID, From, CSeq
    number, the request's top Via only, its Route headers, and To from the response."""
    headers = Headers()
    headers.add("Via", request.headers["Via"])
    for route in request.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", request.headers["From"])
    headers.add("To", response.headers.get("To") or request.headers["To"])
    headers.add("Call-ID", request.headers["Call-ID"])
    headers.add("CSeq", f"{request.cseq[0]} ACK")
    return Request("ACK", request.uri, headers)


def response_peer(via: Via, peer: Peer) -> Peer:
    """Where a response to a request with top Via `via`, received from `peer`, goes (18.2.2, RFC 3581)."""
    if peer.reliable:
        return peer
    host = via.params.get("maddr") or via.params.get("received") or via.host
    rport = via.params.get("rport")
    if rport and rport.isdigit():
        port = int(rport)
    else:
        port = via.port or 5060
    return Peer(peer.transport, host, port)


class TransactionLayer:
    """All transactions of one SIP element; see the module docstring."""

    def __init__(self, t1: float = T1, t2: float = T2, t4: float = T4) -> None:
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.clients: dict[tuple[str, str], Transaction] = {}
        self.servers: dict[tuple[str, str, str], Transaction] = {}
        self._heap: list = []  # (deadline, order, transaction, timer name); stale entries skipped

    def __len__(self) -> int:
        return len(self.clients) + len(self.servers)

    # -- client side ----------------------------------------------------------------------------------

    def send_request(self, request: Request, peer: Peer, now: float) -> tuple[tuple[str, str], list[Event]]:
        """Start a client transaction for `request` (its top Via must carry an RFC 3261 branch)."""
        if request.method == "ACK":
            raise LocalProtocolError("ACK is not sent in a transaction; use send_stateless")
        branch = request.top_via.branch
        if not branch or not branch.startswith(BRANCH_MAGIC):
            raise LocalProtocolError("request needs a Via branch starting with z9hG4bK")
        key = (branch, request.method)
        if key in self.clients:
            raise LocalProtocolError(f"client transaction {key} already exists")
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        txn = Transaction(kind, key, request, peer, self.t1, self.t2, self.t4, heap=self._heap)
        txn.state = INITIAL[kind]
        txn.encoded_request = request.encode()
        self.clients[key] = txn
        if not peer.reliable:
            name = "A" if kind is Kind.INVITE_CLIENT else "E"
            txn.intervals[name] = self.t1
            txn._start(f"timer_{name}", now, self.t1)
        txn._start("timer_B" if kind is Kind.INVITE_CLIENT else "timer_F", now, 64 * self.t1)
        return key, [Transmit(txn.encoded_request, peer)]

    def send_stateless(self, msg: Request | Response, peer: Peer) -> list[Event]:
        return [Transmit(msg.encode(), peer)]

    def transport_error(self, key: tuple, now: float) -> list[Event]:
        txn = self.clients.get(key) or self.servers.get(key)  # type: ignore[call-overload]
        if txn is None:
            return []
        out = txn.feed("transport_error", now)
        self._reap(txn)
        return out

    # -- server side ----------------------------------------------------------------------------------

    def send_response(self, key: tuple[str, str, str], response: Response, now: float) -> list[Event]:
        txn = self.servers.get(key)
        if txn is None:
            raise LocalProtocolError(f"no server transaction {key}")
        out = txn.feed("send_" + response_class(response.status), now, response)
        self._reap(txn)
        return out

    def server(self, key: tuple[str, str, str]) -> Transaction | None:
        return self.servers.get(key)

    # -- input ----------------------------------------------------------------------------------------

    def receive(self, msg: Request | Response, peer: Peer, now: float) -> list[Event]:
        """Feed one parsed message received from `peer`. Raises RemoteProtocolError for a malformed
        one (the caller answers 400 or drops it)."""
        if isinstance(msg, Response):
            return self._receive_response(msg, now)
        return self._receive_request(msg, peer, now)

    def _receive_response(self, resp: Response, now: float) -> list[Event]:
        via = resp.top_via
        _, method = resp.cseq
        key = (via.branch or "", method)
        txn = self.clients.get(key)
        if txn is None:
            if 200 <= resp.status < 300 and method == "INVITE":
                return [ResponseReceived(resp, None)]  # 2xx retransmission: the TU re-sends its ACK
            log.debug("stray response %s %s dropped", resp.status, key)
            return []
        out = txn.feed(response_class(resp.status), now, resp)
        self._reap(txn)
        return out

    def _receive_request(self, req: Request, peer: Peer, now: float) -> list[Event]:
        via = req.top_via
        # RFC 3581 / 18.2.1: note where it really came from.
        changed = False
        if via.host != peer.host:
            via.params["received"] = peer.host
            changed = True
        if "rport" in via.params and via.params["rport"] is None:
            via.params["rport"] = str(peer.port)
            changed = True
        if changed:
            req.headers.replace_first("Via", str(via))
        branch = via.branch or ""
        method = req.method.upper()
        if not branch.startswith(BRANCH_MAGIC):
            # RFC 2543 peer: match on the request's identity instead of the branch.
            branch = "2543:" + "|".join(
                [req.call_id, str(req.cseq[0]), req.from_.tag or "", req.uri if method != "ACK" else ""]
            )
        sent_by = f"{via.host}:{via.port or 5060}"
        key = (branch, sent_by, "INVITE" if method == "ACK" else method)
        txn = self.servers.get(key)
        if txn is not None:
            out = txn.feed("ack" if method == "ACK" else "request", now, req)
            self._reap(txn)
            return out
        if method == "ACK":
            return [RequestReceived(req, peer, None)]
        kind = Kind.INVITE_SERVER if method == "INVITE" else Kind.NON_INVITE_SERVER
        dest = response_peer(via, peer)
        txn = Transaction(kind, key, req, dest, self.t1, self.t2, self.t4, heap=self._heap)
        txn.state = INITIAL[kind]
        self.servers[key] = txn
        return [RequestReceived(req, peer, key)]

    # -- time -----------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, txn, name = heap[0]
            if txn.timers.get(name) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timers(self, now: float) -> list[Event]:
        out: list[Event] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, txn, name = heapq.heappop(heap)
            if txn.timers.get(name) != deadline:
                continue  # stopped or restarted since
            del txn.timers[name]
            out.extend(txn.feed(name, now))
            self._reap(txn)
        return out

    def _reap(self, txn: Transaction) -> None:
        if txn.state is S.TERMINATED:
            table = self.clients if txn.kind in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT) else self.servers
            table.pop(txn.key, None)  # type: ignore[call-overload]
