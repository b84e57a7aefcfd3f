"""The SIP user agent core of the box, sans-I/O: it turns SIP dialogs into endpoint events for call
control, and call control's commands into SIP.

    core = SipCore(directory, media_hub, CoreConfig(host="127.0.0.1", port=5060), open_media, close_media)
    core.receive(datagram, Peer("UDP", ip, port), now)    # from the transport
    core.handle_timers(now); core.next_deadline()
    for item in core.take():                              # Transmit (to the transport) or an event
        ...

Events for call control (frozen dataclasses below): IncomingCall, CallProgress, CallAnswered, CallEnded,
DtmfReceived, HoldChanged, TransferRequested, CallReplaced, FeatureCode, RegistrationChanged.
Commands from call control: place_call, ringing, progress, answer, hangup, hold, resume, send_dtmf,
transfer_result. A call is named by the string `ref` the core hands out; each call has one media leg
(the row index in the MediaHub arrays that the engine's tick reads and writes).

The box is the phones' registrar and their only peer (a B2BUA endpoint, not a proxy): INVITEs from an
extension must be authenticated (digest, as for REGISTER); calls to an extension ring every registered
contact at once (a parallel fork with one Call-ID per contact), the first to answer wins, the others are
cancelled. In-dialog requests go to the address the phone's messages came from (RFC 3581 rport and
symmetric signalling) so phones behind NAT work.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from .auth import DigestAuthenticator, Lockout
from .causes import NORMAL_CLEARING, cause_to_sip, sip_to_cause
from .extensions import Directory, FeatureRequest
from .message import (
    Headers,
    LocalProtocolError,
    NameAddr,
    RemoteProtocolError,
    Request,
    Response,
    SipError,
    SipUri,
    _split_head,
    make_response,
    parse_datagram,
    parse_head,
)
from .registrar import Binding, Registrar
from .rtp import DtmfEvent, LegConfig, LegStats, MediaHub
from .sdp import Negotiated, SdpError, SessionDescription, accept_answer, answer_offer, make_offer
from .transaction import (
    BRANCH_MAGIC,
    T1,
    T2,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
    TransportFailure,
    response_peer,
)

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, REFER, NOTIFY, INFO, UPDATE"
SUPPORTED = "replaces, timer"
USER_AGENT = "CallBox"


# ---------------------------------------------------------------------------------------------------------
# events for call control


@dataclass(frozen=True)
class IncomingCall:
    call: str
    extension: str  # the calling extension (authenticated)
    display: str
    number: str  # what it dialled
    leg: int
    codec: str


@dataclass(frozen=True)
class FeatureCode:
    call: str
    extension: str
    action: str  # queue_login, queue_logout, pause, unpause, pickup
    argument: str


@dataclass(frozen=True)
class CallProgress:
    call: str
    status: int  # 180 ringing, 183 session progress (early media flowing)


@dataclass(frozen=True)
class CallAnswered:
    call: str
    leg: int


@dataclass(frozen=True)
class CallEnded:
    call: str
    cause: int  # Q.931 cause (RFC 3398)
    status: int | None  # the SIP status behind it, None for a BYE
    by_remote: bool
    stats: LegStats | None  # RTP/RTCP figures for the CDR


@dataclass(frozen=True)
class DtmfReceived:
    call: str
    digit: str
    duration_ms: float | None  # None at the start of the digit


@dataclass(frozen=True)
class HoldChanged:
    call: str
    held: bool


@dataclass(frozen=True)
class TransferRequested:
    call: str
    target: str  # number or extension (user part of Refer-To)
    replaces: str | None  # the call (ref) it replaces, for an attended transfer


@dataclass(frozen=True)
class CallReplaced:
    """An INVITE with Replaces (RFC 3891) took over the call's dialog: the same call (ref and media leg)
    now goes to another phone, `extension` (a phone moving a call, a pickup, a transfer completed by
    phones). If the call was still ringing, CallAnswered follows."""

    call: str
    extension: str
    previous: str  # the extension whose dialog was replaced


@dataclass(frozen=True)
class RegistrationChanged:
    extension: str
    contact: str
    registered: bool


Event = (
    IncomingCall
    | FeatureCode
    | CallProgress
    | CallAnswered
    | CallEnded
    | DtmfReceived
    | HoldChanged
    | TransferRequested
    | CallReplaced
    | RegistrationChanged
)


# ---------------------------------------------------------------------------------------------------------


@dataclass
class CoreConfig:
    host: str = "127.0.0.1"  # the address phones reach us at (Via, Contact, SDP)
    port: int = 5060
    transport: str = "UDP"
    realm: str | None = None  # default: the directory's
    # Challenges sent, in order. RFC 8760 wants SHA-256 offered first, but SIPp 3.6 reads only the first
    # challenge and baresip 1.0 (libre) fails when any challenge is SHA-256: MD5 alone by default; an
    # extension whose phone does RFC 8760 gets `digest_algorithms: [SHA-256, MD5]` in its config. An
    # Authorization computed with SHA-256 is accepted whenever a phone sends one.
    digest_algorithms: tuple[str, ...] = ("MD5",)
    authenticate_invites: bool = True
    qualify_interval: float = 60.0  # OPTIONS to each registered contact; 0 disables
    max_calls: int = 1000
    min_session_expires: int = 90
    feature_hangup_after: float = 1.0  # a feature-code call is answered then released after this
    lockout_failures: int = 5
    lockout_window: float = 60.0
    lockout_time: float = 300.0
    t1: float = T1
    t2: float = T2


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: str  # our From/To address (name-addr text)
    remote_uri: str
    remote_target: str
    peer: Peer
    local_seq: int
    remote_seq: int | None = None
    route: list[str] = field(default_factory=list)
    confirmed: bool = False

    @classmethod
    def of_invite(cls, req: Request, tag: str, contact: str, peer: Peer) -> Dialog:
        """The UAS side of the dialog an incoming INVITE creates (RFC 3261 12.1.1)."""
        return cls(
            call_id=req.call_id,
            local_tag=tag,
            remote_tag=req.from_.tag,
            local_uri=req.headers["To"],
            remote_uri=req.headers["From"],
            remote_target=contact,
            peer=peer,
            local_seq=secrets.randbelow(2**20) + 1,
            remote_seq=req.cseq[0],
            route=list(req.headers.get_all("Record-Route")),
        )


@dataclass
class Fork:
    """One INVITE to one contact of an outgoing call."""

    call_id: str
    invite: Request
    key: tuple[str, str]
    peer: Peer
    provisional: bool = False
    final: int | None = None
    cancel_sent: bool = False
    dialog: Dialog | None = None


@dataclass
class Call:
    ref: str
    incoming: bool
    leg: int
    state: str = "offered"  # offered, early, answered, ended
    extension: str = ""
    dialog: Dialog | None = None
    server_key: tuple[str, str, str] | None = None  # the INVITE's server transaction
    invite: Request | None = None
    offer: SessionDescription | None = None  # the offer we made (outgoing / delayed offer)
    negotiated: Negotiated | None = None
    sdp_version: int = 0
    session_id: int = 0
    forks: dict[str, Fork] = field(default_factory=dict)  # Call-ID -> fork (outgoing)
    best_status: int | None = None
    held_by_remote: bool = False
    held_by_us: bool = False
    pending_reinvite: tuple[str, str] | None = None  # our re-INVITE's client key
    reinvite_server: tuple[str, str, str] | None = None
    feature: FeatureRequest | None = None
    refer_pending: tuple[str, int] | None = None  # (event id, cseq) for NOTIFY
    ended: bool = False
    answered_at: float | None = None
    session_expires: int | None = None


@dataclass
class _Pending2xx:
    """A 200 to an INVITE we retransmit until its ACK (RFC 3261 13.3.1.4)."""

    data: bytes
    peer: Peer
    next_at: float
    interval: float
    give_up_at: float


class SipCore:
    def __init__(
        self,
        directory: Directory,
        hub: MediaHub,
        config: CoreConfig | None = None,
        open_media: Callable[[int], int] | None = None,
        close_media: Callable[[int], None] | None = None,
        now: float = 0.0,
    ) -> None:
        self.config = config or CoreConfig()
        cfg = self.config
        self.directory = directory
        self.hub = hub
        realm = cfg.realm or directory.realm
        self.auth = DigestAuthenticator(realm, cfg.digest_algorithms)
        self.lockout = Lockout(cfg.lockout_failures, cfg.lockout_window, cfg.lockout_time)
        self.registrar = Registrar(directory, self.auth, self.lockout)
        self.transactions = TransactionLayer(cfg.t1, cfg.t2)
        self._open_media = open_media or (lambda leg: 20000 + 2 * leg)
        self._close_media = close_media or (lambda leg: None)
        self.calls: dict[str, Call] = {}
        self.by_call_id: dict[str, Call] = {}
        self.by_leg: dict[int, Call] = {}
        self.out: list[Transmit | Event] = []
        self._pending_2xx: dict[str, _Pending2xx] = {}
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []  # heap
        self._refs = itertools.count(1)
        self._next_qualify = now + cfg.qualify_interval if cfg.qualify_interval else None
        self.counters: dict[str, int] = {"malformed": 0, "unknown_method": 0}
        self.active_calls = 0

    # ------------------------------------------------------------------------------------------------
    # plumbing

    def take(self) -> list[Transmit | Event]:
        out, self.out = self.out, []
        return out

    def _emit(self, items: list) -> None:
        self.out.extend(items)

    def _tag(self) -> str:
        return secrets.token_hex(6)

    def _branch(self) -> str:
        return BRANCH_MAGIC + secrets.token_hex(8)

    @property
    def _me(self) -> str:
        cfg = self.config
        return f"{cfg.host}:{cfg.port}"

    def _via(self, transport: str) -> str:
        return f"SIP/2.0/{transport} {self._me};branch={self._branch()};rport"

    def _contact(self, user: str = "callbox", transport: str = "UDP") -> str:
        tp = ";transport=tcp" if transport == "TCP" else ""
        return f"<sip:{user}@{self._me}{tp}>"

    def _respond(self, key: tuple[str, str, str], resp: Response, now: float) -> None:
        resp.headers.add("Server", USER_AGENT)
        try:
            self._emit(self.transactions.send_response(key, resp, now))
        except LocalProtocolError as exc:
            log.debug("response not sent: %s", exc)

    def _reply(
        self, ev: RequestReceived, status: int, now: float, reason: str = "", tag: str | None = None
    ) -> None:
        if ev.key is None:
            return
        self._respond(ev.key, make_response(ev.request, status, reason, tag or self._tag()), now)

    def _call_later(self, when: float, fn: Callable[[float], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._refs), fn))

    # ------------------------------------------------------------------------------------------------
    # input

    def receive(self, data: bytes, peer: Peer, now: float) -> None:
        """One datagram (or one framed stream message) from `peer`. Never raises for bad input: a
        malformed request gets a 4xx/5xx when it can be answered, anything else is dropped and logged."""
        try:
            msg = parse_datagram(data)
        except RemoteProtocolError as exc:
            self.counters["malformed"] += 1
            log.info("malformed SIP from %s:%d: %s", peer.host, peer.port, exc)
            self._reject_malformed(data, peer, exc)
            return
        self.receive_message(msg, peer, now)

    def receive_message(self, msg: Request | Response, peer: Peer, now: float) -> None:
        try:
            events = self.transactions.receive(msg, peer, now)
        except SipError as exc:
            self.counters["malformed"] += 1
            log.info("bad SIP from %s:%d: %s", peer.host, peer.port, exc)
            return
        except Exception:  # noqa: BLE001 - never let one message stop the others
            self.counters["internal_errors"] = self.counters.get("internal_errors", 0) + 1
            log.exception("internal error receiving from %s:%d", peer.host, peer.port)
            return
        self._dispatch(events, now)

    def _reject_malformed(self, data: bytes, peer: Peer, exc: RemoteProtocolError) -> None:
        """Answer a malformed request statelessly when enough of it parses to build a response."""
        if data[:4] == b"SIP/":
            return
        try:
            split = _split_head(data)
            if split is None:
                return
            msg, _ = parse_head(split[0])
            if not isinstance(msg, Request) or msg.method == "ACK":
                return
            via = msg.top_via
            # a response needs these to be well formed itself; if they are not, silence
            msg.call_id  # noqa: B018 - the properties validate
            msg.cseq  # noqa: B018
            msg.from_  # noqa: B018
            msg.to  # noqa: B018
            resp = make_response(
                msg, exc.status if exc.status >= 400 else 400, str(exc)[:80].replace("\r", " ")
            )
            resp.headers.add("Server", USER_AGENT)
            self._emit([Transmit(resp.encode(), response_peer(via, peer))])
        except (SipError, ValueError, KeyError):
            return

    def _dispatch(self, events: list, now: float) -> None:
        for ev in events:
            try:
                self._dispatch_one(ev, now)
            except Exception:  # noqa: BLE001 - one bad message must not take the others' calls down
                self.counters["internal_errors"] = self.counters.get("internal_errors", 0) + 1
                log.exception("internal error handling %r", ev)

    def _dispatch_one(self, ev: object, now: float) -> None:
        try:
            if isinstance(ev, Transmit):
                self.out.append(ev)
            elif isinstance(ev, RequestReceived):
                self._on_request(ev, now)
            elif isinstance(ev, ResponseReceived):
                self._on_response(ev, now)
            elif isinstance(ev, TransactionTimeout | TransportFailure):
                self._on_timeout(ev, now)
        except SipError as exc:
            # a malformed header deep inside a message we had accepted: answer 400, keep going
            self.counters["malformed"] += 1
            log.info("bad SIP message: %s", exc)
            if isinstance(ev, RequestReceived) and ev.key is not None:
                status = exc.status if isinstance(exc, RemoteProtocolError) else 500
                self._reply(ev, status if status >= 400 else 400, now, str(exc)[:60])

    # ------------------------------------------------------------------------------------------------
    # requests

    def _on_request(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        method = req.method
        if method == "ACK":
            self._on_ack(req, ev.peer, now)
            return
        mf = req.headers.get("Max-Forwards")
        if mf is not None and (not mf.isdigit() or int(mf) == 0):
            self._reply(ev, 483, now)
            return
        handler = {
            "REGISTER": self._on_register,
            "INVITE": self._on_invite,
            "BYE": self._on_bye,
            "CANCEL": self._on_cancel,
            "OPTIONS": self._on_options,
            "REFER": self._on_refer,
            "NOTIFY": self._on_in_dialog_ok,
            "INFO": self._on_info,
            "UPDATE": self._on_update,
        }.get(method)
        if handler is None:
            self.counters["unknown_method"] += 1
            log.info("unsupported method %s from %s:%d", method, ev.peer.host, ev.peer.port)
            resp = make_response(req, 405 if method in ("SUBSCRIBE", "PUBLISH", "MESSAGE", "PRACK") else 501)
            resp.headers.add("Allow", ALLOW)
            if ev.key is not None:
                self._respond(ev.key, resp, now)
            return
        handler(ev, now)

    def _on_register(self, ev: RequestReceived, now: float) -> None:
        resp, changes = self.registrar.handle(ev.request, ev.peer, now, self._tag())
        assert ev.key is not None
        self._respond(ev.key, resp, now)
        for ch in changes:
            self.out.append(RegistrationChanged(ch.extension, ch.contact, ch.registered))

    def _on_options(self, ev: RequestReceived, now: float) -> None:
        resp = make_response(ev.request, 200, "", self._tag())
        resp.headers.add("Allow", ALLOW)
        resp.headers.add("Accept", "application/sdp")
        resp.headers.add("Supported", SUPPORTED)
        assert ev.key is not None
        self._respond(ev.key, resp, now)

    def _find_dialog_call(self, req: Request) -> Call | None:
        call = self.by_call_id.get(req.call_id)
        if call is None or call.ended:
            return None
        to_tag = req.to.tag
        if call.incoming:
            if call.dialog is None or to_tag != call.dialog.local_tag:
                return None
            return call
        fork = call.forks.get(req.call_id)
        if fork is None or fork.dialog is None or to_tag != fork.dialog.local_tag:
            return None
        return call

    def _dialog_of(self, call: Call) -> Dialog | None:
        if call.incoming:
            return call.dialog
        for fork in call.forks.values():
            if fork.dialog is not None and fork.dialog.confirmed:
                return fork.dialog
        return None

    def _check_remote_seq(self, dialog: Dialog, req: Request) -> bool:
        seq = req.cseq[0]
        if dialog.remote_seq is not None and seq <= dialog.remote_seq and req.method != "ACK":
            return False
        dialog.remote_seq = seq
        return True

    def _on_invite(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        if req.to.tag is not None:
            self._on_reinvite(ev, now)
            return
        if req.call_id in self.by_call_id and not self.by_call_id[req.call_id].ended:
            # a second INVITE with the same Call-ID and no To tag: a merged fork or a loop
            self._reply(ev, 482, now)
            return
        tag = self._tag()
        from_ = req.from_
        caller = from_.sip_uri.user or ""
        ext = self.directory.get(caller)
        if self.config.authenticate_invites:
            denied = self.registrar.authenticate(req, ev.peer, now, caller, tag)
            if denied is not None:
                assert ev.key is not None
                self._respond(ev.key, denied, now)
                return
        elif ext is None:
            self._reply(ev, 403, now, tag=tag)
            return
        if self.active_calls >= self.config.max_calls:
            self._reply(ev, 503, now, tag=tag)
            return
        # session timers (RFC 4028), tolerated: we accept the interval and let the phone refresh
        se_value = req.headers.get("Session-Expires")
        session_expires = None
        if se_value is not None:
            se = se_value.split(";")[0].strip()
            if not se.isdigit():
                self._reply(ev, 400, now, "Bad Session-Expires", tag)
                return
            if int(se) < self.config.min_session_expires:
                resp = make_response(req, 422, "", tag)
                resp.headers.add("Min-SE", str(self.config.min_session_expires))
                assert ev.key is not None
                self._respond(ev.key, resp, now)
                return
            supported = {v.strip().lower() for v in req.headers.get_all("Supported")}
            # with `timer` supported the phone refreshes (refresher=uac in our 200); without it RFC 4028
            # would make us the refresher, which we do not do: the interval is then simply not echoed
            session_expires = int(se) if "timer" in supported else None
        requires = [r.strip().lower() for r in req.headers.get_all("Require")]
        unsupported = [r for r in requires if r not in ("timer", "replaces")]
        if unsupported:
            resp = make_response(req, 420, "", tag)
            resp.headers.add("Unsupported", ", ".join(unsupported))
            assert ev.key is not None
            self._respond(ev.key, resp, now)
            return
        replaces = req.headers.get_all("Replaces")
        if replaces:
            self._on_invite_replaces(ev, replaces, caller, tag, session_expires, now)
            return
        uri = SipUri.parse(req.uri)
        number = uri.user or ""
        if not number:
            self._reply(ev, 404, now, tag=tag)
            return
        offer = None
        if req.body:
            if req.content_type != "application/sdp":
                self._reply(ev, 415, now, tag=tag)
                return
            try:
                offer = SessionDescription.parse(req.body)
            except SdpError as exc:
                self._reply(ev, exc.status, now, str(exc)[:60], tag)
                return
        try:
            leg = self.hub.open(LegConfig(("0.0.0.0", 9), send=False, receive=False), now)
        except RuntimeError:
            self._reply(ev, 503, now, "No media resources", tag)
            return
        ref = f"sip-{next(self._refs)}"
        call = Call(ref, True, leg, extension=caller, server_key=ev.key, invite=req)
        call.session_id = secrets.randbelow(2**31)
        call.session_expires = session_expires
        port = self._open_media(leg)
        if offer is not None:
            try:
                answer, neg = answer_offer(offer, self.config.host, port, call.session_id, 0)
            except SdpError as exc:
                self.hub.close(leg)
                self._close_media(leg)
                self._reply(ev, exc.status, now, str(exc)[:60], tag)
                return
            call.negotiated = neg
            call.offer = answer
            self.hub.update(leg, _leg_config(neg))
        else:
            call.offer = make_offer(self.config.host, port, call.session_id, 0)
        contact = req.contacts[0].uri if req.contacts else from_.uri
        call.dialog = Dialog.of_invite(req, tag, contact, ev.peer)
        self.calls[ref] = call
        self.active_calls += 1
        self.by_call_id[req.call_id] = call
        self.by_leg[leg] = call
        assert ev.key is not None
        self._respond(ev.key, make_response(req, 100), now)
        feature = self.directory.feature(number)
        if feature is not None:
            call.feature = feature
            self.out.append(FeatureCode(ref, caller, feature.action, feature.argument))
            log.info("feature %s(%s) from %s", feature.action, feature.argument, caller)
            self.answer(ref, now)
            self._call_later(now + self.config.feature_hangup_after, lambda t, r=ref: self.hangup(r, t))
            return
        display = from_.display
        codec = call.negotiated.codec if call.negotiated else "PCMA"
        self.out.append(IncomingCall(ref, caller, display, number, leg, codec))

    def _replaced_call(self, value: str) -> tuple[Call | None, Dialog | None, bool, bool]:
        """RFC 3891 3: (call, its dialog or None when early, early-only?, found as our early outgoing
        INVITE) for a Replaces value; the to-tag is ours and the from-tag the phone's, as the UAS sees it."""
        parts = [p.strip() for p in value.split(";")]
        params = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in parts[1:])}
        call = self.by_call_id.get(parts[0])
        if call is None or call.ended:
            return None, None, False, False
        early_only = "early-only" in params
        to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
        if call.incoming:
            d = call.dialog
            if d is None or d.local_tag != to_tag or d.remote_tag != from_tag:
                return None, None, early_only, False
            return call, d, early_only, False
        fork = call.forks.get(parts[0])
        if fork is None or (fork.invite.from_.tag or "") != to_tag:
            return None, None, early_only, False
        if fork.dialog is not None and fork.dialog.confirmed:
            return (
                (call, fork.dialog, early_only, False)
                if fork.dialog.remote_tag == from_tag
                else (
                    None,
                    None,
                    early_only,
                    False,
                )
            )
        return call, None, early_only, fork.provisional

    def _on_invite_replaces(
        self, ev: RequestReceived, values: list[str], caller: str, tag: str, se: int | None, now: float
    ) -> None:
        """An authenticated INVITE with Replaces: the new dialog takes the replaced one's place in the
        same call (ref, media leg, call control's endpoint); the replaced dialog gets BYE (answered) or
        CANCEL (our outgoing INVITE still ringing)."""
        req = ev.request
        if len(values) != 1:
            self._reply(ev, 400, now, "One Replaces only", tag)
            return
        call, old, early_only, ringing = self._replaced_call(values[0])
        if call is None or (old is None and not ringing):
            # no such dialog, or one we did not initiate while still early (RFC 3891 3: 481)
            self._reply(ev, 481, now, "Replaced dialog not found", tag)
            return
        if early_only and call.state == "answered":
            self._reply(ev, 486, now, tag=tag)
            return
        if call.incoming and call.state != "answered":
            self._reply(ev, 481, now, "Replaced dialog not found", tag)
            return
        if not req.body:
            self._reply(ev, 488, now, "Offer required with Replaces", tag)
            return
        try:
            offer = SessionDescription.parse(req.body)
            call.sdp_version += 1
            answer, neg = answer_offer(
                offer, self.config.host, self._open_media_port(call), call.session_id, call.sdp_version
            )
        except SdpError as exc:
            self._reply(ev, exc.status, now, str(exc)[:60], tag)
            return
        previous = call.extension
        log.info("call %s: dialog of %s replaced by %s (RFC 3891)", call.ref, previous, caller)
        # release what is replaced: BYE the answered dialog, CANCEL our INVITEs still ringing
        if old is not None:
            self._send_request(self._in_dialog_request(old, "BYE"), old.peer, now)
        for fork in call.forks.values():
            if fork.dialog is not old or old is None:
                self._cancel_fork(fork, now)
        for cid in [old.call_id] if old is not None else list(call.forks):
            if self.by_call_id.get(cid) is call:
                del self.by_call_id[cid]
        was_answered = call.state == "answered"
        from_ = req.from_
        contact = req.contacts[0].uri if req.contacts else from_.uri
        call.dialog = Dialog.of_invite(req, tag, contact, ev.peer)
        call.incoming = True
        call.forks = {}
        call.server_key = ev.key
        call.invite = req
        call.extension = caller
        call.negotiated = neg
        call.offer = answer
        call.held_by_remote = neg.direction in ("recvonly", "inactive")
        call.pending_reinvite = call.reinvite_server = None
        call.session_expires = se
        self.by_call_id[req.call_id] = call
        self.hub.update(call.leg, _leg_config(neg))
        self._send_2xx(call, ev, call.dialog, answer.encode(), now)
        call.state = "answered"
        self.out.append(CallReplaced(call.ref, caller, previous))
        if not was_answered:
            call.answered_at = now
            self.out.append(CallAnswered(call.ref, call.leg))

    def _on_reinvite(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        call = self._find_dialog_call(req)
        dialog = self._dialog_of(call) if call else None
        if call is None or dialog is None:
            self._reply(ev, 481, now)
            return
        if not self._check_remote_seq(dialog, req):
            self._reply(ev, 500, now, "CSeq out of order")
            return
        if call.pending_reinvite is not None or call.reinvite_server is not None:
            resp = make_response(req, 491)
            assert ev.key is not None
            self._respond(ev.key, resp, now)
            return
        dialog.peer = ev.peer
        if req.contacts:
            dialog.remote_target = req.contacts[0].uri
        if not req.body:
            # offerless re-INVITE (session refresh or a request for our offer): offer our current state
            call.reinvite_server = ev.key
            body = self._our_offer(call).encode()
            self._send_2xx(call, ev, dialog, body, now)
            call.reinvite_server = None
            return
        try:
            offer = SessionDescription.parse(req.body)
            call.sdp_version += 1
            port = self._open_media_port(call)
            answer, neg = answer_offer(
                offer, self.config.host, port, call.session_id, call.sdp_version, hold=call.held_by_us
            )
        except SdpError as exc:
            self._reply(ev, exc.status, now, str(exc)[:60], dialog.local_tag)
            return
        old_hold = call.held_by_remote
        call.negotiated = neg
        call.held_by_remote = neg.direction in ("recvonly", "inactive")
        self.hub.update(call.leg, _leg_config(neg))
        self._send_2xx(call, ev, dialog, answer.encode(), now)
        if old_hold != call.held_by_remote:
            self.out.append(HoldChanged(call.ref, call.held_by_remote))

    def _open_media_port(self, call: Call) -> int:
        return self._open_media(call.leg)

    def _our_offer(self, call: Call) -> SessionDescription:
        call.sdp_version += 1
        direction = "sendonly" if call.held_by_us else "sendrecv"
        return make_offer(
            self.config.host, self._open_media_port(call), call.session_id, call.sdp_version, direction
        )

    def _send_2xx(self, call: Call, ev: RequestReceived, dialog: Dialog, body: bytes, now: float) -> None:
        resp = make_response(ev.request, 200, "", dialog.local_tag)
        resp.headers.add("Contact", self._contact(transport=ev.peer.transport))
        resp.headers.add("Allow", ALLOW)
        resp.headers.add("Supported", SUPPORTED)
        if call.session_expires:
            resp.headers.add("Session-Expires", f"{call.session_expires};refresher=uac")
            resp.headers.add("Require", "timer")
        if body:
            resp.headers.add("Content-Type", "application/sdp")
            resp.body = body
        assert ev.key is not None
        self._respond(ev.key, resp, now)
        txn = self.transactions.server(ev.key)
        if not ev.peer.reliable and txn is not None:
            self._pending_2xx[f"{dialog.call_id}|{ev.request.cseq[0]}"] = _Pending2xx(
                txn.encoded_response,
                txn.peer,
                now + self.config.t1,
                self.config.t1,
                now + 64 * self.config.t1,
            )

    def _on_ack(self, req: Request, peer: Peer, now: float) -> None:
        key = f"{req.call_id}|{req.cseq[0]}"
        self._pending_2xx.pop(key, None)
        call = self.by_call_id.get(req.call_id)
        if call is None or call.ended or not call.incoming or call.dialog is None:
            return
        if req.to.tag != call.dialog.local_tag:
            return
        call.dialog.confirmed = True
        if req.body and call.negotiated is None and call.offer is not None:
            try:
                neg = accept_answer(call.offer, SessionDescription.parse(req.body))
            except SdpError as exc:
                log.info("call %s: unusable SDP in ACK: %s", call.ref, exc)
                self.hangup(call.ref, now, 65)
                return
            call.negotiated = neg
            self.hub.update(call.leg, _leg_config(neg))

    def _on_bye(self, ev: RequestReceived, now: float) -> None:
        call = self._find_dialog_call(ev.request)
        if call is None:
            self._reply(ev, 481, now)
            return
        dialog = self._dialog_of(call)
        tag = dialog.local_tag if dialog else None
        self._reply(ev, 200, now, tag=tag)
        if call.incoming and call.state in ("offered", "early") and call.server_key and call.invite:
            # BYE in an early dialog (RFC 3261 15.1.2): the pending INVITE gets its 487
            self._respond(call.server_key, make_response(call.invite, 487, "", tag), now)
        self._end(call, NORMAL_CLEARING, None, True, now, send=False)

    def _on_cancel(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        assert ev.key is not None
        branch, sent_by, _ = ev.key
        invite_key = (branch, sent_by, "INVITE")
        txn = self.transactions.server(invite_key)
        if txn is None:
            self._reply(ev, 481, now)
            return
        call = self.by_call_id.get(req.call_id)
        self._reply(ev, 200, now, tag=call.dialog.local_tag if call and call.dialog else None)
        if call is None or call.ended or call.state == "answered":
            return
        assert call.invite is not None and call.dialog is not None
        resp = make_response(call.invite, 487, "", call.dialog.local_tag)
        self._respond(invite_key, resp, now)
        self._end(call, NORMAL_CLEARING, 487, True, now, send=False)

    def _on_in_dialog_ok(self, ev: RequestReceived, now: float) -> None:
        call = self._find_dialog_call(ev.request)
        if call is None:
            self._reply(ev, 481, now)
            return
        dialog = self._dialog_of(call)
        self._reply(ev, 200, now, tag=dialog.local_tag if dialog else None)

    def _on_update(self, ev: RequestReceived, now: float) -> None:
        # RFC 3311 UPDATE as a session refresh (RFC 4028); a media change by UPDATE is refused with 488
        if ev.request.body:
            self._reply(ev, 488, now, "Use re-INVITE")
            return
        self._on_in_dialog_ok(ev, now)

    def _on_info(self, ev: RequestReceived, now: float) -> None:
        # SIP INFO DTMF (application/dtmf-relay), sent by some phones instead of RFC 4733
        call = self._find_dialog_call(ev.request)
        if call is None:
            self._reply(ev, 481, now)
            return
        dialog = self._dialog_of(call)
        self._reply(ev, 200, now, tag=dialog.local_tag if dialog else None)
        if ev.request.content_type == "application/dtmf-relay":
            for line in ev.request.body.decode("utf-8", "replace").splitlines():
                name, _, value = line.partition("=")
                if name.strip().lower() == "signal" and value.strip()[:1] in "0123456789*#ABCDabcd":
                    digit = value.strip()[:1].upper()
                    if digit:
                        self.out.append(DtmfReceived(call.ref, digit, None))

    def _on_refer(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        call = self._find_dialog_call(req)
        dialog = self._dialog_of(call) if call else None
        if call is None or dialog is None:
            self._reply(ev, 481, now)
            return
        refer_to = req.headers.get("Refer-To")
        if not refer_to:
            self._reply(ev, 400, now, "Missing Refer-To", dialog.local_tag)
            return
        target = NameAddr.parse(refer_to)
        uri_text, _, uri_headers = target.uri.partition("?")
        user = SipUri.parse(uri_text).user or ""
        replaces_ref: str | None = None
        for part in uri_headers.split("&"):
            name, _, value = part.partition("=")
            if name.lower() == "replaces":
                replaced_call_id = unquote(value).split(";")[0]
                other = self.by_call_id.get(replaced_call_id)
                if other is None or other.ended:
                    self._reply(ev, 481, now, "Replaced call not found", dialog.local_tag)
                    return
                replaces_ref = other.ref
        if not user:
            self._reply(ev, 400, now, "Bad Refer-To", dialog.local_tag)
            return
        self._reply(ev, 202, now, tag=dialog.local_tag)
        call.refer_pending = ("refer", req.cseq[0])
        self._notify_refer(call, "SIP/2.0 100 Trying", False, now)
        self.out.append(TransferRequested(call.ref, user, replaces_ref))

    def _notify_refer(self, call: Call, sipfrag: str, final: bool, now: float) -> None:
        dialog = self._dialog_of(call)
        if dialog is None or call.refer_pending is None:
            return
        state = "terminated;reason=noresource" if final else "active;expires=60"
        req = self._in_dialog_request(dialog, "NOTIFY")
        req.headers.add("Event", f"refer;id={call.refer_pending[1]}")
        req.headers.add("Subscription-State", state)
        req.headers.add("Content-Type", "message/sipfrag;version=2.0")
        req.body = (sipfrag + "\r\n").encode()
        self._send_request(req, dialog.peer, now)
        if final:
            call.refer_pending = None

    # ------------------------------------------------------------------------------------------------
    # responses (to requests we sent)

    def _on_response(self, ev: ResponseReceived, now: float) -> None:
        resp = ev.response
        number, method = resp.cseq
        call = self.by_call_id.get(resp.call_id)
        if method == "OPTIONS":
            return
        if call is None:
            log.debug("response %d for unknown call %s dropped", resp.status, resp.call_id)
            return
        if method == "INVITE" and not call.incoming and call.pending_reinvite is None:
            self._on_invite_response(call, resp, ev.key is None, now)
        elif method == "INVITE":
            self._on_reinvite_response(call, resp, now)
        elif method == "BYE":
            pass

    def _on_invite_response(self, call: Call, resp: Response, retransmission: bool, now: float) -> None:
        fork = call.forks.get(resp.call_id)
        if fork is None:
            return
        status = resp.status
        if status < 200:
            if status == 100:
                return
            fork.provisional = True
            if call.state == "ended" or call.ended:
                self._cancel_fork(fork, now)
                return
            if fork.cancel_sent is False and call.state == "cancelling":
                self._cancel_fork(fork, now)
                return
            if resp.body and resp.content_type == "application/sdp" and call.offer is not None:
                try:
                    neg = accept_answer(call.offer, SessionDescription.parse(resp.body))
                    call.negotiated = neg
                    self.hub.update(call.leg, _leg_config(neg))
                    status = 183
                except SdpError as exc:
                    log.info("call %s: bad early SDP: %s", call.ref, exc)
            if call.state == "offered" or (status == 183 and call.state == "early"):
                call.state = "early"
                self.out.append(CallProgress(call.ref, 183 if status == 183 else 180))
            return
        if 200 <= status < 300:
            tag = resp.to.tag
            contact = resp.contacts[0].uri if resp.contacts else fork.invite.uri
            if fork.dialog is None:
                fork.dialog = Dialog(
                    call_id=fork.call_id,
                    local_tag=fork.invite.from_.tag or "",
                    remote_tag=tag,
                    local_uri=fork.invite.headers["From"],
                    remote_uri=resp.headers["To"],
                    remote_target=contact,
                    peer=fork.peer,
                    local_seq=fork.invite.cseq[0],
                    route=list(reversed(resp.headers.get_all("Record-Route"))),
                )
            self._send_ack(fork.dialog, fork.invite.cseq[0], now)
            if call.state in ("answered", "cancelling", "ended") or call.ended or fork.final is not None:
                if fork.final is None:
                    fork.final = status
                    # another contact answered first, or we hung up meanwhile: release this one
                    self._send_request(self._in_dialog_request(fork.dialog, "BYE"), fork.peer, now)
                return
            fork.final = status
            fork.dialog.confirmed = True
            try:
                neg = accept_answer(call.offer, SessionDescription.parse(resp.body)) if resp.body else None
            except SdpError as exc:
                log.info("call %s: unusable SDP in 200: %s", call.ref, exc)
                neg = None
            if neg is None and call.negotiated is None:
                self._send_request(self._in_dialog_request(fork.dialog, "BYE"), fork.peer, now)
                self._end(call, 65, 488, False, now, send=False)
                return
            if neg is not None:
                call.negotiated = neg
                self.hub.update(call.leg, _leg_config(neg))
            call.state = "answered"
            call.answered_at = now
            call.dialog = fork.dialog
            for other in call.forks.values():
                if other is not fork and other.final is None:
                    self._cancel_fork(other, now)
            self.out.append(CallAnswered(call.ref, call.leg))
            return
        # 3xx-6xx from this contact
        if fork.final is None:
            fork.final = status
            if call.best_status is None or _better(status, call.best_status):
                call.best_status = status
        if (
            all(f.final is not None for f in call.forks.values())
            and call.state != "answered"
            and not call.ended
        ):
            best = call.best_status or status
            self._end(call, sip_to_cause(best), best, True, now, send=False)

    def _on_reinvite_response(self, call: Call, resp: Response, now: float) -> None:
        if resp.status < 200:
            return
        dialog = self._dialog_of(call)
        call.pending_reinvite = None
        if dialog is None:
            return
        if call.ended:
            if resp.status < 300:
                self._send_ack(dialog, resp.cseq[0], now)
            return
        if resp.status < 300:
            self._send_ack(dialog, resp.cseq[0], now)
            if resp.body and call.offer is not None:
                try:
                    neg = accept_answer(call.offer, SessionDescription.parse(resp.body))
                    call.negotiated = neg
                    self.hub.update(call.leg, _leg_config(neg))
                except SdpError as exc:
                    log.info("call %s: bad SDP in re-INVITE answer: %s", call.ref, exc)
        elif resp.status in (408, 481):
            self._end(call, sip_to_cause(resp.status), resp.status, True, now)

    def _on_timeout(self, ev: TransactionTimeout | TransportFailure, now: float) -> None:
        req = ev.request
        method = req.method
        if method == "OPTIONS":
            self._qualify_failed(req, now)
            return
        call = self.by_call_id.get(req.call_id)
        if call is None or call.ended:
            return
        if method == "INVITE" and not call.incoming and call.pending_reinvite is None:
            fork = call.forks.get(req.call_id)
            if fork is not None and fork.final is None:
                fork.final = 408
                if call.best_status is None:
                    call.best_status = 408
            if all(f.final is not None for f in call.forks.values()) and call.state != "answered":
                best = call.best_status or 408
                self._end(call, sip_to_cause(best), best, True, now, send=False)
        elif method in ("BYE", "NOTIFY"):
            return
        elif call.state == "answered" or isinstance(ev, TransportFailure):
            # RFC 3261 12.2.1.2: a timed-out in-dialog request ends the dialog
            self._end(call, 102, 408, True, now)

    # ------------------------------------------------------------------------------------------------
    # building requests

    def _in_dialog_request(self, dialog: Dialog, method: str) -> Request:
        if method != "ACK":
            dialog.local_seq += 1
        h = Headers()
        h.add("Via", self._via(dialog.peer.transport))
        h.add("Max-Forwards", "70")
        for r in dialog.route:
            h.add("Route", r)
        local = NameAddr.parse(dialog.local_uri)
        local.params["tag"] = dialog.local_tag
        remote = NameAddr.parse(dialog.remote_uri)
        if dialog.remote_tag:
            remote.params["tag"] = dialog.remote_tag
        h.add("From", str(local))
        h.add("To", str(remote))
        h.add("Call-ID", dialog.call_id)
        h.add("CSeq", f"{dialog.local_seq} {method}")
        h.add("User-Agent", USER_AGENT)
        if method in ("INVITE", "REFER", "NOTIFY"):
            h.add("Contact", self._contact(transport=dialog.peer.transport))
        return Request(method, dialog.remote_target, h)

    def _send_request(self, req: Request, peer: Peer, now: float) -> tuple[str, str] | None:
        try:
            key, events = self.transactions.send_request(req, peer, now)
        except LocalProtocolError as exc:
            log.warning("could not send %s: %s", req.method, exc)
            return None
        self._emit(events)
        return key

    def _send_ack(self, dialog: Dialog, cseq: int, now: float) -> None:
        ack = self._in_dialog_request(dialog, "ACK")
        ack.headers.set("CSeq", f"{cseq} ACK")
        ack.headers.remove("Contact")
        self._emit(self.transactions.send_stateless(ack, dialog.peer))
        del now

    def _cancel_fork(self, fork: Fork, now: float) -> None:
        if fork.cancel_sent or fork.final is not None:
            return
        if not fork.provisional:
            return  # RFC 3261 9.1: CANCEL only after a provisional; _on_invite_response sends it then
        fork.cancel_sent = True
        inv = fork.invite
        h = Headers()
        h.add("Via", inv.headers["Via"])
        for r in inv.headers.get_all("Route"):
            h.add("Route", r)
        h.add("Max-Forwards", "70")
        h.add("From", inv.headers["From"])
        h.add("To", inv.headers["To"])
        h.add("Call-ID", inv.call_id)
        h.add("CSeq", f"{inv.cseq[0]} CANCEL")
        self._send_request(Request("CANCEL", inv.uri, h), fork.peer, now)

    # ------------------------------------------------------------------------------------------------
    # commands from call control

    def place_call(
        self, extension: str, caller_number: str, caller_name: str, now: float, leg: int | None = None
    ) -> str:
        """Ring every registered contact of `extension`. Returns the call's ref; its media leg is
        `leg_of(ref)`. If the extension is unknown or nothing is registered, CallEnded (cause 1 or 20)
        follows at once. RuntimeError when no media leg is free."""
        ref = f"sip-{next(self._refs)}"
        known = self.directory.get(extension) is not None
        contacts = self.registrar.contacts(extension, now) if known else []
        media_leg = self.hub.open(LegConfig(("0.0.0.0", 9), send=False, receive=False), now, leg)
        call = Call(ref, False, media_leg, extension=extension)
        self.calls[ref] = call
        self.active_calls += 1
        self.by_leg[media_leg] = call
        if not contacts:
            cause, status = (20, 480) if known else (1, 404)
            self._end(call, cause, status, True, now, send=False)
            return ref
        call.session_id = secrets.randbelow(2**31)
        port = self._open_media(media_leg)
        call.offer = make_offer(self.config.host, port, call.session_id, 0)
        body = call.offer.encode()
        from_tag = self._tag()
        display = caller_name.replace('"', "")
        for binding in contacts:
            fork = self._make_fork(call, binding, caller_number, display, from_tag, body, now)
            call.forks[fork.call_id] = fork
            self.by_call_id[fork.call_id] = call
        return ref

    def _make_fork(
        self, call: Call, b: Binding, number: str, display: str, from_tag: str, body: bytes, now: float
    ) -> Fork:
        call_id = f"{secrets.token_hex(10)}@{self.config.host}"
        h = Headers()
        h.add("Via", self._via(b.peer.transport))
        h.add("Max-Forwards", "70")
        disp = f'"{display}" ' if display else ""
        h.add("From", f"{disp}<sip:{number}@{self._me}>;tag={from_tag}")
        h.add("To", f"<sip:{b.extension}@{self._me}>")
        h.add("Call-ID", call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", self._contact(number or "callbox", b.peer.transport))
        h.add("Allow", ALLOW)
        h.add("Supported", SUPPORTED)
        h.add("User-Agent", USER_AGENT)
        h.add("Content-Type", "application/sdp")
        invite = Request("INVITE", b.contact, h, body)
        key = self._send_request(invite, b.peer, now)
        assert key is not None
        return Fork(call_id, invite, key, b.peer)

    def _call(self, ref: str) -> Call:
        call = self.calls.get(ref)
        if call is None or call.ended:
            raise LocalProtocolError(f"no call {ref}")
        return call

    def ringing(self, ref: str, now: float) -> None:
        """180 Ringing to an incoming call."""
        self._provisional(ref, 180, now, with_sdp=False)

    def progress(self, ref: str, now: float) -> None:
        """183 Session Progress with our SDP: early media (ringback, prompts) flows from now on."""
        self._provisional(ref, 183, now, with_sdp=True)

    def _provisional(self, ref: str, status: int, now: float, with_sdp: bool) -> None:
        call = self._call(ref)
        if not call.incoming or call.state not in ("offered", "early") or call.server_key is None:
            raise LocalProtocolError(f"call {ref} cannot send {status} now")
        assert call.invite is not None and call.dialog is not None
        resp = make_response(call.invite, status, "", call.dialog.local_tag)
        resp.headers.add("Contact", self._contact(transport=call.dialog.peer.transport))
        if with_sdp and call.negotiated is not None and call.offer is not None:
            resp.headers.add("Content-Type", "application/sdp")
            resp.body = call.offer.encode()
        call.state = "early"
        self._respond(call.server_key, resp, now)

    def answer(self, ref: str, now: float) -> None:
        """200 OK to an incoming call (with our SDP answer, or our offer if the INVITE had none)."""
        call = self._call(ref)
        if not call.incoming or call.state not in ("offered", "early") or call.server_key is None:
            raise LocalProtocolError(f"call {ref} cannot be answered now")
        assert call.invite is not None and call.dialog is not None and call.offer is not None
        ev = RequestReceived(call.invite, call.dialog.peer, call.server_key)
        self._send_2xx(call, ev, call.dialog, call.offer.encode(), now)
        call.state = "answered"
        call.answered_at = now
        self.out.append(CallAnswered(ref, call.leg))

    def hangup(self, ref: str, now: float, cause: int = NORMAL_CLEARING) -> None:
        """End a call from our side: BYE when answered, CANCEL when we are ringing the phones, the
        RFC 3398 response for `cause` when it is an incoming call not yet answered."""
        call = self.calls.get(ref)
        if call is None or call.ended:
            return
        if call.incoming and call.state in ("offered", "early"):
            assert call.invite is not None and call.dialog is not None and call.server_key is not None
            status = cause_to_sip(cause)
            resp = make_response(call.invite, status, "", call.dialog.local_tag)
            resp.headers.add("Reason", f"Q.850;cause={cause}")
            self._respond(call.server_key, resp, now)
            self._end(call, cause, status, False, now, send=False)
            return
        if not call.incoming and call.state in ("offered", "early"):
            call.state = "cancelling"
            for fork in call.forks.values():
                self._cancel_fork(fork, now)
            self._end(call, cause, 487, False, now, send=False)
            return
        self._end(call, cause, None, False, now, send=True)

    def hold(self, ref: str, now: float) -> None:
        self._reinvite(ref, True, now)

    def resume(self, ref: str, now: float) -> None:
        self._reinvite(ref, False, now)

    def _reinvite(self, ref: str, hold: bool, now: float) -> None:
        call = self._call(ref)
        dialog = self._dialog_of(call)
        if dialog is None or call.state != "answered" or call.pending_reinvite is not None:
            raise LocalProtocolError(f"call {ref} cannot be re-INVITEd now")
        call.held_by_us = hold
        call.offer = self._our_offer(call)
        req = self._in_dialog_request(dialog, "INVITE")
        req.headers.add("Content-Type", "application/sdp")
        req.body = call.offer.encode()
        call.pending_reinvite = self._send_request(req, dialog.peer, now)

    def send_dtmf(self, ref: str, digit: str, duration_ms: int = 100) -> bool:
        """RFC 4733 digit towards the phone; False when it has no telephone-event (play it in-band)."""
        call = self._call(ref)
        return self.hub.send_dtmf(call.leg, digit, duration_ms)

    def transfer_result(self, ref: str, ok: bool, now: float) -> None:
        """Call control finished a transfer the phone asked for by REFER: tell the phone (NOTIFY)."""
        call = self.calls.get(ref)
        if call is None or call.ended:
            return  # the transfer released this leg: its NOTIFY went out before the BYE
        self._notify_refer(call, "SIP/2.0 200 OK" if ok else "SIP/2.0 503 Service Unavailable", True, now)

    def leg_of(self, ref: str) -> int:
        call = self.calls.get(ref)
        if call is None:
            raise LocalProtocolError(f"no call {ref}")
        return call.leg

    def media_events(self, leg: int, events: list[DtmfEvent]) -> None:
        """DTMF the media hub decoded on `leg` -> DtmfReceived events for its call."""
        call = self.by_leg.get(leg)
        if call is None or call.ended:
            return
        for ev in events:
            self.out.append(DtmfReceived(call.ref, ev.digit, ev.duration_ms))

    # ------------------------------------------------------------------------------------------------

    def _end(
        self, call: Call, cause: int, status: int | None, by_remote: bool, now: float, send: bool = True
    ) -> None:
        if call.ended:
            return
        if send:
            dialog = self._dialog_of(call)
            if dialog is not None:
                if call.refer_pending is not None:
                    # call control hangs up the transferor as part of the transfer: tell it first
                    self._notify_refer(call, "SIP/2.0 200 OK", True, now)
                self._send_request(self._in_dialog_request(dialog, "BYE"), dialog.peer, now)
        call.ended = True
        self.active_calls -= 1
        call.state = "ended" if call.state != "cancelling" else "cancelling"
        stats = self.hub.close(call.leg) if call.leg in self.hub.legs else None
        self._close_media(call.leg)
        self.by_leg.pop(call.leg, None)
        self.out.append(CallEnded(call.ref, cause, status, by_remote, stats))
        # keep the Call-ID mapping a while so late retransmissions and 2xx races still find the call
        self._call_later(now + 64 * self.config.t1, lambda t, c=call: self._forget(c))

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.ref, None)
        for cid in [call.dialog.call_id] if call.dialog else []:
            if self.by_call_id.get(cid) is call:
                del self.by_call_id[cid]
        for cid in call.forks:
            if self.by_call_id.get(cid) is call:
                del self.by_call_id[cid]

    def status(self, now: float) -> dict:
        """What a console `sip show ...` prints: registrations, calls, counters."""
        regs = [
            {
                "extension": b.extension,
                "contact": b.contact,
                "address": f"{b.peer.transport} {b.peer.host}:{b.peer.port}",
                "expires_in": round(b.expires_at - now),
            }
            for ext in sorted(self.registrar.bindings)
            for b in self.registrar.contacts(ext, now)
        ]
        calls = [
            {
                "call": c.ref,
                "direction": "in" if c.incoming else "out",
                "extension": c.extension,
                "state": c.state,
                "leg": c.leg,
                "codec": c.negotiated.codec if c.negotiated else None,
                "held": c.held_by_remote or c.held_by_us,
            }
            for c in self.calls.values()
            if not c.ended
        ]
        return {
            "registrations": regs,
            "calls": calls,
            "transactions": len(self.transactions),
            "counters": dict(self.counters),
        }

    # ------------------------------------------------------------------------------------------------
    # time

    def next_deadline(self) -> float | None:
        times = [self._timers[0][0]] if self._timers else []
        times += [p.next_at for p in self._pending_2xx.values()]
        d = self.transactions.next_deadline()
        if d is not None:
            times.append(d)
        e = self.registrar.next_expiry()
        if e is not None:
            times.append(e)
        if self._next_qualify is not None:
            times.append(self._next_qualify)
        return min(times) if times else None

    def handle_timers(self, now: float) -> None:
        self._dispatch(self.transactions.handle_timers(now), now)
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            fn(now)
        for key, p in list(self._pending_2xx.items()):
            if p.next_at > now:
                continue
            if now >= p.give_up_at:
                del self._pending_2xx[key]
                call = self.by_call_id.get(key.split("|")[0])
                if call is not None and not call.ended:
                    log.info("call %s: no ACK for our 200, ending it", call.ref)
                    self._end(call, 102, 408, True, now)
                continue
            self.out.append(Transmit(p.data, p.peer))
            p.interval = min(2 * p.interval, self.config.t2)
            p.next_at = now + p.interval
        for ch in self.registrar.expire(now):
            self.out.append(RegistrationChanged(ch.extension, ch.contact, False))
        if self._next_qualify is not None and now >= self._next_qualify:
            self._next_qualify = now + self.config.qualify_interval
            self._qualify(now)

    def _qualify(self, now: float) -> None:
        for ext, table in self.registrar.bindings.items():
            for b in table.values():
                h = Headers()
                h.add("Via", self._via(b.peer.transport))
                h.add("Max-Forwards", "70")
                h.add("From", f"<sip:callbox@{self._me}>;tag={self._tag()}")
                h.add("To", f"<sip:{ext}@{self._me}>")
                h.add("Call-ID", f"q-{secrets.token_hex(8)}")
                h.add("CSeq", "1 OPTIONS")
                h.add("X-Contact", b.contact)
                self._send_request(Request("OPTIONS", b.contact, h), b.peer, now)

    def _qualify_failed(self, req: Request, now: float) -> None:
        contact = req.headers.get("X-Contact")
        ext = req.to.sip_uri.user or ""
        table = self.registrar.bindings.get(ext, {})
        if contact in table:
            del table[contact]
            log.warning("extension %s at %s did not answer OPTIONS: unregistered", ext, contact)
            self.out.append(RegistrationChanged(ext, contact, False))
        del now


def _leg_config(neg: Negotiated) -> LegConfig:
    return LegConfig(
        remote=(neg.remote_ip, neg.remote_port),
        codec=neg.codec,
        pt=neg.pt,
        dtmf_pt=neg.dtmf_pt,
        ptime=neg.ptime,
        send=neg.direction in ("sendrecv", "sendonly") and neg.remote_ip not in ("0.0.0.0", "::"),
        receive=True,
    )


_PREFERENCE = {486: 0, 600: 0, 603: 1, 480: 2, 404: 3}


def _better(new: int, old: int) -> bool:
    """RFC 3261 16.7 in short: 6xx wins, then busy, then the rest."""
    return _PREFERENCE.get(new, 10 - new // 100) < _PREFERENCE.get(old, 10 - old // 100)
