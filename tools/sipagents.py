"""Simulated call-center agents on SIP phones: real SIP user agents over UDP to the box.

    callbox agents --box 127.0.0.1:5060 --agents 1001-1009 [--password-format pw{ext}] [--seconds 600]

    agents = SipAgents(("127.0.0.1", 5060), {"1001": "pw1001", ...}, AgentProfile(), clock=RealClock())
    await agents.start()           # each agent: own UDP socket, REGISTER with digest, log in by *41
    ...                            # they answer the ACD's calls, talk, hang up, take coded breaks
    agents.status()                # per agent: state, calls answered, breaks
    await agents.stop()            # BYE for calls in progress, un-REGISTER

Each agent is a phone of its own (one SIP socket, one RTP/RTCP socket pair per call) built on the box's own
sans-I/O SIP pieces from the outside: `firmware.sip.message` to build and parse, `.transaction` for the
client and server transactions (retransmissions, ACK of non-2xx), `.auth` to answer the digest challenge,
`.sdp` for offer/answer, and one `.rtp.MediaHub` for the RTP of all agents' calls (jitter buffers, RTCP)
fed by `.transport.MediaSockets`. The box sees nothing but UDP datagrams from N addresses.

Behaviour per agent (`AgentProfile`, seeded): registers (re-registers at half the expiry), logs in to its
queues by feature code (`*41`, or `*41<queue>`), answers a call after a few seconds of ringing (180 then
200 with SDP), talks (speech-like audio, dsp.g168's composite source signal, or a tone for tests) until the
caller hangs up or its talk time runs out (then it sends BYE), now and then takes a break with a reason
code (`*43<code>`, later `*44`) when idle. What it hears is kept per call for checks (`heard`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from board.clock import Clock, RealClock
from dsp.g168 import css
from firmware.sip.auth import expected_response, make_ha1
from firmware.sip.message import (
    Headers,
    NameAddr,
    RemoteProtocolError,
    Request,
    Response,
    make_response,
    parse_auth,
    parse_datagram,
)
from firmware.sip.rtp import TICK, LegConfig, MediaHub
from firmware.sip.sdp import SdpError, SessionDescription, accept_answer, answer_offer, make_offer
from firmware.sip.transaction import (
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
    TransportFailure,
)
from firmware.sip.transport import MediaSockets

log = logging.getLogger(__name__)

RATE = 8000
HEARD_SECONDS = 8.0  # what an agent heard in its current/last call, kept for checks


@dataclass
class AgentProfile:
    answer_after: tuple[float, float] = (1.5, 4.0)  # seconds of ringing before the agent answers
    talk: tuple[float, float] = (30.0, 120.0)  # the agent ends the call after this unless the caller did
    wrap_up: float = 0.0  # seconds after a call before the agent is counted idle again
    breaks_every: tuple[float, float] | None = (60.0, 240.0)  # between breaks; None: no breaks
    break_length: tuple[float, float] = (15.0, 60.0)
    break_codes: tuple[str, ...] = ("1", "2", "3")  # *43<code>
    login: str | None = ""  # *41<login> at start ("" = all my queues); None: do not dial it
    tone_hz: float | None = None  # None: speech-like audio; else a steady tone (tests check it)
    level_dbm0: float = -18.0
    expires: int = 300


@dataclass
class AgentStats:
    registrations: int = 0
    calls_offered: int = 0
    calls_answered: int = 0
    hung_up_by_agent: int = 0
    hung_up_by_caller: int = 0
    breaks: int = 0
    features: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class _Dialog:
    call_id: str
    local_tag: str
    remote_uri: str  # remote target (Contact)
    local: str  # our From (outgoing) / To (incoming) name-addr with tag
    remote: str  # theirs, with tag
    leg: int
    incoming: bool
    local_cseq: int = 1
    confirmed: bool = False
    invite: Request | None = None
    invite_key: tuple[str, str, str] | None = None
    ok: Response | None = None  # our 2xx, retransmitted until the ACK
    answer_handle: asyncio.Handle | None = None
    talk_handle: asyncio.Handle | None = None
    offer: SessionDescription | None = None
    ended: asyncio.Future | None = None


class SipAgent:
    """One agent's phone; see the module docstring. Driven by its SipAgents pool's loop."""

    def __init__(self, pool: SipAgents, extension: str, password: str, rng: random.Random) -> None:
        self.pool = pool
        self.extension = extension
        self.password = password
        self.rng = rng
        self.profile = pool.profile
        self.layer = TransactionLayer()
        self.stats = AgentStats()
        self.state = "offline"  # offline, idle, ringing, talking, paused, wrap-up
        self.registered = False
        self.dialogs: dict[str, _Dialog] = {}
        self.heard: deque[np.ndarray] = deque(maxlen=int(HEARD_SECONDS * RATE / TICK))
        self.ip = pool.host
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._ids = itertools.count(1)
        self._cseq = itertools.count(1)
        self._waiting: dict[tuple[str, str], asyncio.Future] = {}
        self._register_call_id = f"reg-{secrets.token_hex(6)}@{extension}"
        self._tasks: list[asyncio.Task] = []
        self._paused = False

    # ---- wire ----------------------------------------------------------------------------------------
    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        agent = self

        class _Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple) -> None:
                agent.on_datagram(data, addr)

            def error_received(self, exc: Exception) -> None:
                log.debug("agent %s: %s", agent.extension, exc)

        self._transport, _ = await loop.create_datagram_endpoint(_Proto, local_addr=(self.pool.host, 0))
        self.port = self._transport.get_extra_info("sockname")[1]

    @property
    def box(self) -> Peer:
        return Peer("UDP", self.pool.box[0], self.pool.box[1])

    def _emit(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, Transmit):
                if self._transport is not None and not self._transport.is_closing():
                    self._transport.sendto(ev.data, (ev.peer.host, ev.peer.port))
            elif isinstance(ev, RequestReceived):
                self._on_request(ev)
            elif isinstance(ev, ResponseReceived):
                self._on_response(ev)
            elif isinstance(ev, TransactionTimeout | TransportFailure):
                fut = self._waiting.pop(ev.key, None)  # type: ignore[arg-type]
                if fut is not None and not fut.done():
                    fut.set_exception(TimeoutError(f"{ev.request.method} timed out"))

    def on_datagram(self, data: bytes, addr: tuple) -> None:
        if len(data) <= 4:
            return  # keep-alive
        try:
            msg = parse_datagram(data)
            events = self.layer.receive(msg, Peer("UDP", addr[0], addr[1]), self.pool.clock.now())
        except RemoteProtocolError as exc:
            log.info("agent %s: bad message from %s: %s", self.extension, addr, exc)
            return
        self._emit(events)

    def timers(self, now: float) -> None:
        self._emit(self.layer.handle_timers(now))

    # ---- requests out ---------------------------------------------------------------------------------
    def _branch(self) -> str:
        return f"z9hG4bK{self.extension}x{next(self._ids)}x{secrets.token_hex(3)}"

    def _request(
        self, method: str, uri: str, from_: str, to: str, call_id: str, cseq: int, body: bytes = b""
    ) -> Request:
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {self.ip}:{self.port};branch={self._branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", from_)
        h.add("To", to)
        h.add("Call-ID", call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("Contact", f"<sip:{self.extension}@{self.ip}:{self.port}>")
        h.add("User-Agent", "callbox-sipagents")
        if body:
            h.add("Content-Type", "application/sdp")
        return Request(method, uri, h, body)

    def _authorized(self, req: Request, challenge: Response) -> Request | None:
        """`req` again with an Authorization for the challenge (MD5 or SHA-256), a new branch and CSeq."""
        header = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
        for value in challenge.headers.get_all(header):
            scheme, p = parse_auth(value)
            algorithm = p.get("algorithm", "MD5")
            if scheme.lower() != "digest" or algorithm.upper() not in ("MD5", "SHA-256"):
                continue
            realm, nonce = p.get("realm", ""), p.get("nonce", "")
            ha1 = make_ha1(self.extension, realm, self.password, algorithm)
            cnonce = secrets.token_hex(4)
            qop = "auth" if "auth" in (p.get("qop") or "").split(",") else None
            resp = expected_response(ha1, algorithm, req.method, req.uri, nonce, qop, "00000001", cnonce)
            auth = (
                f'Digest username="{self.extension}", realm="{realm}", nonce="{nonce}", uri="{req.uri}", '
                f'response="{resp}", algorithm={algorithm}'
            )
            if qop:
                auth += f', qop={qop}, nc=00000001, cnonce="{cnonce}"'
            if "opaque" in p:
                auth += f', opaque="{p["opaque"]}"'
            again = self._request(
                req.method,
                req.uri,
                req.headers["From"],
                req.headers["To"],
                req.call_id,
                next(self._cseq),
                req.body,
            )
            again.headers.add("Authorization" if challenge.status == 401 else "Proxy-Authorization", auth)
            for name in ("Expires",):
                if name in req.headers:
                    again.headers.add(name, req.headers[name])
            return again
        return None

    async def _transact(self, req: Request, peer: Peer | None = None) -> Response:
        """Send `req` in a client transaction; the final response (one digest challenge answered)."""
        for attempt in range(2):
            loop = asyncio.get_running_loop()
            key, events = self.layer.send_request(req, peer or self.box, self.pool.clock.now())
            fut: asyncio.Future = loop.create_future()
            self._waiting[key] = fut
            self._emit(events)
            resp: Response = await asyncio.wait_for(fut, 40.0)
            if resp.status in (401, 407) and attempt == 0:
                again = self._authorized(req, resp)
                if again is None:
                    return resp
                req = again
                continue
            return resp
        raise AssertionError("unreachable")

    async def register(self, expires: int | None = None) -> bool:
        expires = self.profile.expires if expires is None else expires
        me = f"<sip:{self.extension}@{self.pool.box[0]}>"
        req = self._request(
            "REGISTER",
            f"sip:{self.pool.box[0]}:{self.pool.box[1]}",
            f"{me};tag={secrets.token_hex(4)}",
            me,
            self._register_call_id,
            next(self._cseq),
        )
        req.headers.add("Expires", str(expires))
        try:
            resp = await self._transact(req)
        except TimeoutError:
            self.stats.failures.append("REGISTER timed out")
            return False
        ok = resp.status == 200
        if expires and ok:
            self.registered = True
            self.stats.registrations += 1
        elif not expires:
            self.registered = False
        if not ok:
            self.stats.failures.append(f"REGISTER {resp.status}")
        return ok

    async def dial_feature(self, code: str) -> bool:
        """Call a feature code (*41, *43<reason>, ...): the box answers it and releases it after a second."""
        call_id = f"fc-{secrets.token_hex(6)}@{self.ip}"
        tag = secrets.token_hex(4)
        leg = self.pool.open_leg(LegConfig(("0.0.0.0", 9), send=False, receive=False))
        port = self.pool.media.open(leg)
        offer = make_offer(self.ip, port, int(self.pool.clock.now()), 1)
        frm = f'"{self.extension}" <sip:{self.extension}@{self.pool.box[0]}>;tag={tag}'
        uri = f"sip:{code}@{self.pool.box[0]}:{self.pool.box[1]}"
        req = self._request("INVITE", uri, frm, f"<{uri}>", call_id, next(self._cseq), offer.encode())
        dialog = _Dialog(call_id, tag, uri, frm, f"<{uri}>", leg, incoming=False, offer=offer)
        dialog.ended = asyncio.get_running_loop().create_future()
        self.dialogs[call_id] = dialog
        try:
            resp = await self._transact(req)
        except TimeoutError:
            self._end(dialog, by_agent=False)
            self.stats.failures.append(f"{code} timed out")
            return False
        if resp.status >= 300:
            self._end(dialog, by_agent=False)
            self.stats.failures.append(f"{code} {resp.status}")
            return False
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(dialog.ended), 5.0)  # the box's BYE
        if not dialog.ended.done():
            await self.hangup(dialog)
        self.stats.features.append(code)  # done, and the phone is free again
        return True

    async def hangup(self, dialog: _Dialog) -> None:
        if dialog.call_id not in self.dialogs:
            return
        self._end(dialog, by_agent=True)
        dialog.local_cseq += 1
        bye = self._request(
            "BYE", dialog.remote_uri, dialog.local, dialog.remote, dialog.call_id, dialog.local_cseq
        )
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await self._transact(bye, self._target(dialog.remote_uri))

    def _target(self, uri: str) -> Peer:
        with contextlib.suppress(Exception):
            parsed = NameAddr.parse(f"<{uri}>").sip_uri
            return Peer("UDP", parsed.host, parsed.port or 5060)
        return self.box

    # ---- responses in -------------------------------------------------------------------------------
    def _on_response(self, ev: ResponseReceived) -> None:
        resp = ev.response
        _, method = resp.cseq
        if method == "INVITE" and 200 <= resp.status < 300:
            dialog = self.dialogs.get(resp.call_id)
            if dialog is not None:
                to = resp.headers["To"]
                dialog.remote = to
                contacts = resp.contacts
                if contacts:
                    dialog.remote_uri = str(contacts[0].uri)
                if not dialog.confirmed and dialog.offer is not None and resp.body:
                    with contextlib.suppress(SdpError, RemoteProtocolError):
                        neg = accept_answer(dialog.offer, SessionDescription.parse(resp.body))
                        self.pool.hub.update(
                            dialog.leg, LegConfig((neg.remote_ip, neg.remote_port), neg.codec, neg.pt)
                        )
                dialog.confirmed = True
                ack = self._request("ACK", dialog.remote_uri, dialog.local, to, dialog.call_id, resp.cseq[0])
                self._emit(self.layer.send_stateless(ack, self._target(dialog.remote_uri)))
        if ev.key is None or resp.status < 200:
            return
        fut = self._waiting.pop(ev.key, None)
        if fut is not None and not fut.done():
            fut.set_result(resp)

    # ---- requests in --------------------------------------------------------------------------------
    def _respond(
        self, ev: RequestReceived, status: int, tag: str | None = None, body: bytes = b""
    ) -> Response:
        resp = make_response(ev.request, status, to_tag=tag or secrets.token_hex(4))
        if body:
            resp.headers.add("Contact", f"<sip:{self.extension}@{self.ip}:{self.port}>")
            resp.headers.add("Content-Type", "application/sdp")
            resp.body = body
        elif status < 300 and ev.request.method == "INVITE":
            resp.headers.add("Contact", f"<sip:{self.extension}@{self.ip}:{self.port}>")
        if ev.key is not None:
            self._emit(self.layer.send_response(ev.key, resp, self.pool.clock.now()))
        return resp

    def _on_request(self, ev: RequestReceived) -> None:
        req = ev.request
        method = req.method
        dialog = self.dialogs.get(req.call_id)
        if method == "ACK":
            if dialog is not None:
                dialog.confirmed = True
                dialog.ok = None
            return
        if method == "INVITE" and dialog is None:
            self._incoming(ev)
        elif method == "INVITE":  # re-INVITE (hold/resume, session refresh): accept, same media
            assert dialog is not None
            try:
                offer = SessionDescription.parse(req.body) if req.body else None
                port = self.pool.media.open(dialog.leg)
                body = b""
                if offer is not None:
                    sd, neg = answer_offer(offer, self.ip, port, 1, 2)
                    self.pool.hub.update(
                        dialog.leg, LegConfig((neg.remote_ip, neg.remote_port), neg.codec, neg.pt)
                    )
                    body = sd.encode()
                self._respond(ev, 200, dialog.local_tag, body)
            except (SdpError, RemoteProtocolError):
                self._respond(ev, 488, dialog.local_tag)
        elif method == "BYE":
            self._respond(ev, 200 if dialog else 481, dialog.local_tag if dialog else None)
            if dialog is not None:
                self._end(dialog, by_agent=False)
        elif method == "CANCEL":
            self._respond(ev, 200 if dialog else 481, dialog.local_tag if dialog else None)
            if dialog is not None and not dialog.confirmed and dialog.invite_key is not None:
                cancelled = make_response(dialog.invite, 487, to_tag=dialog.local_tag)  # type: ignore[arg-type]
                with contextlib.suppress(Exception):
                    self._emit(self.layer.send_response(dialog.invite_key, cancelled, self.pool.clock.now()))
                self._end(dialog, by_agent=False)
        elif method in ("OPTIONS", "NOTIFY", "INFO", "UPDATE"):
            self._respond(ev, 200, dialog.local_tag if dialog else None)
        else:
            self._respond(ev, 405)

    def _incoming(self, ev: RequestReceived) -> None:
        req = ev.request
        self.stats.calls_offered += 1
        busy = self.state != "idle" or any(not d.incoming or d.confirmed for d in self.dialogs.values())
        if busy or self._paused:
            self._respond(ev, 486)
            return
        try:
            offer = SessionDescription.parse(req.body)
        except RemoteProtocolError:
            self._respond(ev, 488)
            return
        tag = secrets.token_hex(4)
        to = NameAddr.parse(req.headers["To"])
        to.params["tag"] = tag
        contacts = req.contacts
        dialog = _Dialog(
            req.call_id,
            tag,
            str(contacts[0].uri) if contacts else req.from_.uri,
            str(to),
            req.headers["From"],
            -1,
            incoming=True,
            invite=req,
            invite_key=ev.key,
        )
        self.dialogs[req.call_id] = dialog
        self.state = "ringing"
        self._respond(ev, 180, tag)
        delay = self.rng.uniform(*self.profile.answer_after)
        dialog.answer_handle = asyncio.get_running_loop().call_later(delay, self._answer, dialog, offer)

    def _answer(self, dialog: _Dialog, offer: SessionDescription) -> None:
        if dialog.call_id not in self.dialogs or dialog.invite_key is None:
            return
        try:
            leg = self.pool.open_leg(LegConfig(("0.0.0.0", 9), send=False, receive=False))
            port = self.pool.media.open(leg)
            sd, neg = answer_offer(offer, self.ip, port, int(self.pool.clock.now()), 1)
        except (SdpError, RuntimeError) as exc:
            log.info("agent %s cannot answer: %s", self.extension, exc)
            self._emit(
                self.layer.send_response(
                    dialog.invite_key,
                    make_response(dialog.invite, 488, to_tag=dialog.local_tag),  # type: ignore[arg-type]
                    self.pool.clock.now(),
                )
            )
            self._end(dialog, by_agent=False)
            return
        dialog.leg = leg
        self.pool.hub.update(leg, LegConfig((neg.remote_ip, neg.remote_port), neg.codec, neg.pt))
        self.pool.talking(leg, self)
        self.heard.clear()
        ok = make_response(dialog.invite, 200, to_tag=dialog.local_tag)  # type: ignore[arg-type]
        ok.headers.add("Contact", f"<sip:{self.extension}@{self.ip}:{self.port}>")
        ok.headers.add("Content-Type", "application/sdp")
        ok.body = sd.encode()
        dialog.ok = ok
        self._emit(self.layer.send_response(dialog.invite_key, ok, self.pool.clock.now()))
        self._retransmit_ok(dialog, 0.5)
        self.state = "talking"
        self.stats.calls_answered += 1
        talk = self.rng.uniform(*self.profile.talk)
        dialog.talk_handle = asyncio.get_running_loop().call_later(
            talk, lambda: asyncio.ensure_future(self.hangup(dialog))
        )

    def _retransmit_ok(self, dialog: _Dialog, interval: float) -> None:
        """RFC 3261 13.3.1.4: the UAS core resends its 2xx until the ACK comes (UDP)."""

        def again() -> None:
            if dialog.ok is None or dialog.call_id not in self.dialogs or interval > 16:
                return
            if self._transport is not None and not self._transport.is_closing():
                peer = self.box
                via = dialog.ok.top_via
                host = via.params.get("received") or via.host
                port = int(via.params.get("rport") or via.port or 5060)
                peer = Peer("UDP", host, port)
                self._transport.sendto(dialog.ok.encode(), (peer.host, peer.port))
            self._retransmit_ok(dialog, min(2 * interval, 4.0) if interval < 4.0 else interval * 2)

        asyncio.get_running_loop().call_later(interval, again)

    def _end(self, dialog: _Dialog, by_agent: bool) -> None:
        if self.dialogs.pop(dialog.call_id, None) is None:
            return
        for handle in (dialog.answer_handle, dialog.talk_handle):
            if handle is not None:
                handle.cancel()
        dialog.ok = None
        if dialog.leg >= 0:
            self.pool.close_leg(dialog.leg)
        if dialog.ended is not None and not dialog.ended.done():
            dialog.ended.set_result(by_agent)
        if dialog.incoming:
            if dialog.confirmed or dialog.leg >= 0:
                if by_agent:
                    self.stats.hung_up_by_agent += 1
                else:
                    self.stats.hung_up_by_caller += 1
            self.state = "paused" if self._paused else "wrap-up" if self.profile.wrap_up else "idle"
            if self.state == "wrap-up":
                asyncio.get_running_loop().call_later(self.profile.wrap_up, self._wrapped_up)

    def _wrapped_up(self) -> None:
        if self.state == "wrap-up":
            self.state = "idle"

    # ---- life ----------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Register, log in, then keep registered and take breaks until cancelled."""
        while not await self.register():
            await asyncio.sleep(2.0)
        self.state = "idle"
        if self.profile.login is not None:
            await self.dial_feature("*41" + self.profile.login)
        self._tasks.append(asyncio.ensure_future(self._refresh()))
        if self.profile.breaks_every is not None:
            self._tasks.append(asyncio.ensure_future(self._breaks()))

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.profile.expires / 2)
            await self.register()

    async def _breaks(self) -> None:
        assert self.profile.breaks_every is not None
        while True:
            await asyncio.sleep(self.rng.uniform(*self.profile.breaks_every))
            while self.state != "idle":
                await asyncio.sleep(1.0)
            code = self.rng.choice(self.profile.break_codes)
            await self.take_break(code, self.rng.uniform(*self.profile.break_length))

    async def take_break(self, code: str, seconds: float) -> None:
        self._paused = True
        self.state = "paused"
        await self.dial_feature("*43" + code)
        self.stats.breaks += 1
        await asyncio.sleep(seconds)
        await self.dial_feature("*44")
        self._paused = False
        if self.state == "paused":
            self.state = "idle"

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for dialog in list(self.dialogs.values()):
            if dialog.confirmed or not dialog.incoming:
                await self.hangup(dialog)
            else:
                self._end(dialog, by_agent=True)
        if self.registered:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.register(0), 3.0)
        self.state = "offline"
        if self._transport is not None:
            self._transport.close()

    def heard_pcm(self) -> np.ndarray:
        """What this agent heard in its current or last call (up to HEARD_SECONDS), int16."""
        return np.concatenate(list(self.heard)) if self.heard else np.zeros(0, np.int16)


class SipAgents:
    """N agents on one asyncio loop, one MediaHub for all their calls' RTP (a 10 ms media pump)."""

    def __init__(
        self,
        box: tuple[str, int],
        passwords: dict[str, str],
        profile: AgentProfile | None = None,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        seed: int = 1,
        max_legs: int | None = None,
    ) -> None:
        self.box = box
        self.profile = profile or AgentProfile()
        self.clock = clock or RealClock()
        self.host = host
        rng = random.Random(seed)
        legs = max_legs or max(8, 2 * len(passwords))
        self.hub = MediaHub(legs)
        self.media = MediaSockets(self.hub, self.clock, host)
        self.agents = {
            ext: SipAgent(self, ext, pw, random.Random(rng.random())) for ext, pw in sorted(passwords.items())
        }
        # what each leg plays: a row of `sources` (speech-like, or each agent's tone), from a per-leg offset
        self._length = 10 * RATE
        self._agent_index = {ext: i for i, ext in enumerate(self.agents)}
        self.sources = self._sources(seed)
        self._source_of = np.zeros(legs, np.int64)
        self._offset = np.zeros(legs, np.int64)
        self._talking = np.zeros(legs, bool)
        self._leg_agent: dict[int, SipAgent] = {}
        self._pos = 0
        self._tasks: list[asyncio.Task] = []

    def _sources(self, seed: int) -> np.ndarray:
        t = np.arange(self._length) / RATE
        rows = []
        for i in range(len(self.agents)):
            if self.profile.tone_hz is not None:
                amp = 32768 * 10 ** ((self.profile.level_dbm0 - 3.14) / 20) * np.sqrt(2)
                rows.append(np.rint(amp * np.sin(2 * np.pi * self.profile.tone_hz * t)).astype(np.int16))
            else:
                rows.append(css(self._length / RATE, self.profile.level_dbm0, seed=seed + i))
        return np.stack(rows) if rows else np.zeros((1, self._length), np.int16)

    def open_leg(self, config: LegConfig) -> int:
        return self.hub.open(config, self.clock.now())

    def close_leg(self, leg: int) -> None:
        self._talking[leg] = False
        self._leg_agent.pop(leg, None)
        if leg in self.hub.legs:
            self.hub.close(leg)
        self.media.close(leg)

    def talking(self, leg: int, agent: SipAgent) -> None:
        self._leg_agent[leg] = agent
        self._source_of[leg] = self._agent_index[agent.extension]
        self._offset[leg] = agent.rng.randrange(self._length)
        self._talking[leg] = True

    async def start(self, stagger: float = 0.05) -> None:
        """Open every agent's socket and set them going (registration, log-in), `stagger` s apart."""
        self.media.attach(asyncio.get_running_loop())
        for agent in self.agents.values():
            await agent.open()
        self._tasks.append(asyncio.ensure_future(self._timers()))
        self._tasks.append(asyncio.ensure_future(self._pump()))
        for agent in self.agents.values():
            self._tasks.append(asyncio.ensure_future(agent.run()))
            await asyncio.sleep(stagger)

    async def wait_ready(self, timeout: float = 20.0) -> bool:
        """Until every agent is registered and has dialled its log-in code."""
        want = 1 if self.profile.login is not None else 0
        deadline = self.clock.now() + timeout
        while self.clock.now() < deadline:
            if all(a.registered and len(a.stats.features) >= want for a in self.agents.values()):
                return True
            await asyncio.sleep(0.05)
        return False

    async def _timers(self) -> None:
        while True:
            await asyncio.sleep(0.02)
            now = self.clock.now()
            for agent in self.agents.values():
                agent.timers(now)

    async def _pump(self) -> None:
        idx = np.arange(TICK)
        next_at = self.clock.now()
        while True:
            next_at += TICK / RATE
            delay = next_at - self.clock.now()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:
                next_at = self.clock.now()
            now = self.clock.now()
            rx = self.hub.pull(now)
            for leg, agent in self._leg_agent.items():
                agent.heard.append(rx[leg].copy())
            pos = (self._offset[:, None] + self._pos + idx[None, :]) % self._length
            tx = self.sources[self._source_of[:, None], pos]
            tx[~self._talking] = 0
            self._pos += TICK
            self.media.send(self.hub.push_tx(tx, now))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(*(agent.stop() for agent in self.agents.values()), return_exceptions=True)
        self.media.close_all()

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            ext: {
                "state": a.state,
                "registered": a.registered,
                "answered": a.stats.calls_answered,
                "breaks": a.stats.breaks,
                "failures": list(a.stats.failures),
            }
            for ext, a in self.agents.items()
        }


def parse_agents(spec: str, password_format: str) -> dict[str, str]:
    """ "1001-1009,1020" -> {ext: password} with the password from `password_format` ("pw{ext}")."""
    out: dict[str, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(f"bad extension range {part!r}")
        for n in range(int(first), int(last or first) + 1):
            ext = str(n).zfill(len(first))
            out[ext] = password_format.format(ext=ext)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--box", default="127.0.0.1:5060", help="the box's SIP address HOST:PORT (UDP)")
    parser.add_argument("--agents", default="1001-1009", help="extensions, e.g. 1001-1009,1020")
    parser.add_argument(
        "--password-format", default="pw{ext}", help="each extension's password ({ext} = its number)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="local address of the agents' phones")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-breaks", action="store_true", help="agents take no breaks")
    parser.add_argument("--talk", type=float, nargs=2, default=(30.0, 120.0), metavar=("MIN", "MAX"))


def run(args: argparse.Namespace) -> int:
    host, _, port = args.box.rpartition(":")
    try:
        passwords = parse_agents(args.agents, args.password_format)
        box = (host or "127.0.0.1", int(port))
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    profile = AgentProfile(talk=tuple(args.talk), breaks_every=None if args.no_breaks else (60.0, 240.0))

    async def main() -> int:
        agents = SipAgents(box, passwords, profile, host=args.host, seed=args.seed)
        await agents.start()
        ok = await agents.wait_ready(30.0)
        ready = "registered and logged in" if ok else "NOT all ready"
        print(f"{len(passwords)} agents {ready} at {args.box}")
        try:
            waited = 0.0
            while not args.seconds or waited < args.seconds:
                await asyncio.sleep(5.0)
                waited += 5.0
                st = agents.status()
                states = " ".join(f"{ext}:{s['state']}/{s['answered']}" for ext, s in st.items())
                print(states, flush=True)
        finally:
            await agents.stop()
        return 0 if ok else 1

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0


# ---- for `callbox demo`: the box's SIP side on a free port, and the agents as their own process ----------


def open_demo_sip(config: str | Path | None, clock: Clock, host: str = "127.0.0.1", legs: int = 32) -> Any:
    """A bound firmware.sip.service.BoxSip with the configuration's extensions on a free port, for an
    Appliance(extension_port=sip.media_port, make_extension_lines=sip.extension_lines) whose
    `pollers` get `sip.poll`."""
    from firmware.sip.extensions import Directory
    from firmware.sip.service import BoxSip, extensions_path

    sip = BoxSip(Directory.load(extensions_path(config)), clock, host, 0, max_legs=legs)
    sip.start()
    return sip


class AgentsProcess:
    """`callbox agents` as a child process: the demo's agents on SIP phones over UDP to the box at
    host:port (passwords by the default configuration's scheme, pw<ext>), its log in DATA/agents.log."""

    def __init__(self, host: str, port: int, agents: list[str], data: str | Path, seed: int = 1) -> None:
        self.cmd = [
            sys.executable, "-m", "tools.cli", "agents", "--box", f"{host}:{port}", "--host", host,
            "--agents", ",".join(agents), "--seed", str(seed),
        ]  # fmt: skip
        self.log_path = Path(data) / "agents.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        repo = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=repo, env=env
            )

    def stop(self) -> None:
        """The agents hang up their calls and un-register (SIGINT), then the process ends."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
