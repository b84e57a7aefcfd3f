"""A small, independent SIP phone for driving SipCore in virtual time (test helper, not product code)."""

from __future__ import annotations

import hashlib
import itertools

from firmware.sip.core import SipCore
from firmware.sip.message import Headers, Request, Response, make_response, parse_auth, parse_datagram
from firmware.sip.transaction import Peer, Transmit

SDP = (
    "v=0\r\no=phone 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    "a=ptime:20\r\na={direction}\r\n"
)


class Phone:
    def __init__(self, world: World, ext: str, password: str, port: int, ip: str = "127.0.0.1") -> None:
        self.world, self.ext, self.password, self.port, self.ip = world, ext, password, port, ip
        self.peer = Peer("UDP", ip, port)
        world.phones[(ip, port)] = self
        self.inbox: list = []
        self.seq = itertools.count(1)
        self.auto_answer: str | None = None  # None, "ring", "answer", "busy"
        self.dialogs: dict[str, dict] = {}

    # -- building -----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        uri: str,
        call_id: str,
        to: str,
        from_tag: str = "ph",
        body: str = "",
        cseq: int | None = None,
    ) -> Request:
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK{next(self.world.ids)};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f'"Ext {self.ext}" <sip:{self.ext}@box>;tag={from_tag}')
        h.add("To", to)
        h.add("Call-ID", call_id)
        h.add("CSeq", f"{cseq if cseq is not None else next(self.seq)} {method}")
        h.add("Contact", f"<sip:{self.ext}@{self.ip}:{self.port}>")
        if body:
            h.add("Content-Type", "application/sdp")
        return Request(method, uri, h, body.encode())

    def sdp(self, direction: str = "sendrecv", rtp_port: int = 40000) -> str:
        return SDP.format(ip=self.ip, port=rtp_port, direction=direction)

    def authorize(self, req: Request, challenge: Response, algorithm_index: int = 0) -> Request:
        value = challenge.headers.get_all("WWW-Authenticate")[algorithm_index]
        _, p = parse_auth(value)
        alg = p["algorithm"]
        h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg]

        def H(s: str) -> str:
            return h(s.encode()).hexdigest()

        ha1 = H(f"{self.ext}:{p['realm']}:{self.password}")
        ha2 = H(f"{req.method}:{req.uri}")
        resp = H(f"{ha1}:{p['nonce']}:00000001:cn:auth:{ha2}")
        again = Request(req.method, req.uri, req.headers.copy(), req.body)
        n, m = again.cseq
        again.headers.set("CSeq", f"{next(self.seq)} {m}")
        via = again.top_via
        via.params["branch"] = f"z9hG4bK{next(self.world.ids)}"
        again.headers.replace_first("Via", str(via))
        again.headers.add(
            "Authorization",
            f'Digest username="{self.ext}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{req.uri}", '
            f'response="{resp}", algorithm={alg}, qop=auth, nc=00000001, cnonce="cn"',
        )
        return again

    # -- acting -------------------------------------------------------------------------------------

    def send(self, msg: Request | Response) -> None:
        self.world.deliver(msg.encode(), self.peer)

    def last(self, kind=Response, status: int | None = None, method: str | None = None):
        self.world.pump()  # deliver whatever call-control commands made the core send
        for m in reversed(self.inbox):
            if (
                isinstance(m, kind)
                and (status is None or m.status == status)
                and (
                    method is None
                    or (isinstance(m, Request) and m.method == method)
                    or (isinstance(m, Response) and m.cseq[1] == method)
                )
            ):
                return m
        return None

    def register(self, expires: int = 3600) -> Response:
        cid = f"reg-{self.ext}-{self.port}"
        req = self.request("REGISTER", "sip:box", cid, f"<sip:{self.ext}@box>")
        req.headers.add("Expires", str(expires))
        self.send(req)
        challenge = self.last(Response)
        if challenge.status == 401:
            self.inbox.remove(challenge)
            self.send(self.authorize(req, challenge))
        return self.last(Response)

    def call(self, number: str, body: str | None = None) -> tuple[Request, Response]:
        cid = f"call-{next(self.world.ids)}@{self.ip}"
        req = self.request(
            "INVITE",
            f"sip:{number}@box",
            cid,
            f"<sip:{number}@box>",
            "from1",
            self.sdp() if body is None else body,
        )
        self.send(req)
        resp = self.last(Response, method="INVITE")
        if resp is not None and resp.status == 401:
            self.ack_error(req, resp)
            req = self.authorize(req, resp)
            self.send(req)
        return req, self.last(Response, method="INVITE")

    def ack_error(self, req: Request, resp: Response) -> None:
        """The ACK a client transaction sends for a non-2xx final response (same branch)."""
        h = Headers()
        h.add("Via", req.headers["Via"])
        h.add("From", req.headers["From"])
        h.add("To", resp.headers["To"])
        h.add("Call-ID", req.call_id)
        h.add("CSeq", f"{req.cseq[0]} ACK")
        self.send(Request("ACK", req.uri, h))

    def ack(self, invite: Request, resp: Response, body: str = "") -> None:
        ack = self.request(
            "ACK",
            invite.uri,
            invite.call_id,
            resp.headers["To"],
            invite.from_.tag or "",
            body,
            cseq=invite.cseq[0],
        )
        self.send(ack)

    def in_dialog(self, invite: Request, resp: Response, method: str, body: str = "") -> Request:
        req = self.request(
            method,
            resp.contacts[0].uri if resp.contacts else invite.uri,
            invite.call_id,
            resp.headers["To"],
            invite.from_.tag or "",
            body,
        )
        return req

    # -- receiving ----------------------------------------------------------------------------------

    def on_datagram(self, data: bytes) -> None:
        msg = parse_datagram(data)
        self.inbox.append(msg)
        if isinstance(msg, Request):
            self.on_request(msg)

    def on_request(self, req: Request) -> None:
        if req.method == "ACK":
            return
        if req.method == "INVITE" and req.to.tag is None:
            self.dialogs[req.call_id] = {"invite": req}
            if self.auto_answer == "busy":
                self.send(make_response(req, 486, to_tag="pt"))
            elif self.auto_answer in ("ring", "answer"):
                self.send(make_response(req, 180, to_tag="pt"))
                if self.auto_answer == "answer":
                    self.answer(req)
            return
        if req.method == "CANCEL":
            self.send(make_response(req, 200, to_tag="pt"))
            inv = self.dialogs.get(req.call_id, {}).get("invite")
            if inv is not None:
                self.send(make_response(inv, 487, to_tag="pt"))
            return
        resp = make_response(req, 200, to_tag="pt")
        if req.method == "INVITE":
            resp.headers.add("Contact", f"<sip:{self.ext}@{self.ip}:{self.port}>")
            resp.headers.add("Content-Type", "application/sdp")
            resp.body = self.sdp().encode()
        self.send(resp)

    def answer(self, req: Request) -> None:
        resp = make_response(req, 200, to_tag="pt")
        resp.headers.add("Contact", f"<sip:{self.ext}@{self.ip}:{self.port}>")
        resp.headers.add("Content-Type", "application/sdp")
        resp.body = self.sdp().encode()
        self.send(resp)


class World:
    """The box's core plus phones, joined by a lossless virtual network; time moves only when told."""

    def __init__(self, core: SipCore, clock=None) -> None:
        self.core = core
        self.clock = clock  # when given (a VirtualClock), time is the clock's
        self.on_event = None  # when given, core events go there instead of self.events
        self.phones: dict[tuple[str, int], Phone] = {}
        self._now = 0.0
        self.events: list = []
        self.ids = itertools.count(1000)
        self.drop_to: set[tuple[str, int]] = set()

    @property
    def now(self) -> float:
        return self.clock.now() if self.clock is not None else self._now

    @now.setter
    def now(self, value: float) -> None:
        self._now = value

    def deliver(self, data: bytes, src: Peer) -> None:
        self.core.receive(data, src, self.now)
        self.pump()

    def pump(self) -> None:
        for item in self.core.take():
            if isinstance(item, Transmit):
                addr = (item.peer.host, item.peer.port)
                if addr in self.drop_to:
                    continue
                phone = self.phones.get(addr)
                if phone is not None:
                    phone.on_datagram(item.data)
            elif self.on_event is not None:
                self.on_event(item)
            else:
                self.events.append(item)

    def advance(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.core.handle_timers(self.now)
            self.pump()

    def of(self, kind):
        self.pump()
        return [e for e in self.events if isinstance(e, kind)]
