"""Registrar (RFC 3261 10.3) for the box's extensions, sans-I/O.

`Registrar.handle(request, peer, now)` takes a REGISTER and returns the response to send plus the binding
changes it made. Each extension may have several contacts (desk phone and softphone ring together), each
with its own expiry; a contact is remembered with the address the REGISTER really came from, so calls to
a phone behind NAT go to its public address and port (RFC 3581) instead of the private Contact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .auth import DigestAuthenticator, Lockout
from .extensions import Directory
from .message import NameAddr, RemoteProtocolError, Request, Response, SipUri, make_response, parse_auth
from .transaction import Peer

log = logging.getLogger(__name__)


@dataclass
class Binding:
    extension: str
    contact: str  # the Contact URI
    peer: Peer  # where requests to it go: its Contact, or the NAT's public side it registered from
    expires_at: float
    call_id: str
    cseq: int
    instance: str | None = None


@dataclass(frozen=True)
class BindingChange:
    extension: str
    contact: str
    registered: bool  # False: removed or expired
    expires_at: float


def _target(request: Request, peer: Peer, contact: str) -> Peer:
    """Where requests to this contact go. Behind NAT (the REGISTER did not come from where its Via says)
    or over TCP (reuse the connection): the address it came from. Otherwise the Contact's own address."""
    via = request.top_via
    if peer.reliable or (via.host, via.port or 5060) != (peer.host, peer.port):
        return peer
    try:
        uri = SipUri.parse(contact)
    except RemoteProtocolError:
        return peer
    transport = (uri.params.get("transport") or "udp").upper()
    if transport != "UDP" or not uri.host or uri.host.startswith("["):
        return peer
    return Peer("UDP", uri.host, uri.port or 5060)


MD5_ONLY_AGENTS = ("baresip",)  # baresip 1.0 (libre): "Function not implemented" on any SHA-256 challenge


class Registrar:
    def __init__(
        self,
        directory: Directory,
        auth: DigestAuthenticator,
        lockout: Lockout,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
    ) -> None:
        self.directory = directory
        self.auth = auth
        self.lockout = lockout
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.bindings: dict[str, dict[str, Binding]] = {}
        # User-Agents known to fail on a SHA-256 challenge even when an MD5 one follows (RFC 8760 2.4):
        # they are challenged with MD5 alone whatever the extension's digest_algorithms say
        self.md5_only_agents: tuple[str, ...] = MD5_ONLY_AGENTS

    def contacts(self, extension: str, now: float) -> list[Binding]:
        return [b for b in self.bindings.get(extension, {}).values() if b.expires_at > now]

    def expire(self, now: float) -> list[BindingChange]:
        changes: list[BindingChange] = []
        for ext, table in list(self.bindings.items()):
            for uri, b in list(table.items()):
                if b.expires_at <= now:
                    del table[uri]
                    changes.append(BindingChange(ext, uri, False, b.expires_at))
                    log.info("registration of %s at %s expired", ext, uri)
            if not table:
                del self.bindings[ext]
        return changes

    def next_expiry(self) -> float | None:
        times = [b.expires_at for t in self.bindings.values() for b in t.values()]
        return min(times) if times else None

    def authenticate(
        self, request: Request, peer: Peer, now: float, extension: str | None, to_tag: str
    ) -> Response | None:
        """Digest-check `request` for `extension` (None: any known user). Returns the response to send
        when the request may not go on (401 challenge, 403 locked out), None when it is authenticated."""
        address = peer.host
        if self.lockout.locked(address, now):
            resp = make_response(request, 403, "Forbidden (locked out)", to_tag)
            return resp
        header = request.headers.get("Authorization")
        user = extension
        if header and user is None:
            try:
                user = parse_auth(header)[1].get("username")
            except RemoteProtocolError:
                user = None
        ext = self.directory.get(user) if user else None
        result = self.auth.check(
            header, request.method, now, address, ext.ha1 if ext else None, expected_user=extension
        )
        if result.ok:
            self.lockout.success(address)
            return None
        if result.attempted:
            log.info(
                "auth failure from %s:%d as %r for %s: %s",
                peer.host,
                peer.port,
                result.username,
                request.method,
                result.reason,
            )
            if self.lockout.failure(address, now, result.username or ""):
                return make_response(request, 403, "Forbidden (locked out)", to_tag)
        resp = make_response(request, 401, "", to_tag)
        prefs = ext.digest_algorithms if ext is not None else None
        agent = (request.headers.get("User-Agent") or "").lower()
        if agent and any(name in agent for name in self.md5_only_agents):
            prefs = ("MD5",)
        for value in self.auth.challenges(now, address, stale=result.stale, algorithms=prefs):
            resp.headers.add("WWW-Authenticate", value)
        return resp

    def handle(
        self, request: Request, peer: Peer, now: float, to_tag: str
    ) -> tuple[Response, list[BindingChange]]:
        to_uri = request.to.sip_uri
        extension = to_uri.user or ""
        if self.directory.get(extension) is None:
            log.info("REGISTER for unknown extension %r from %s:%d", extension, peer.host, peer.port)
            # Same answer as a wrong password would get first, so extensions cannot be enumerated.
            denied = self.authenticate(request, peer, now, extension, to_tag)
            if denied is not None:
                return denied, []
            return make_response(request, 404, "", to_tag), []
        denied = self.authenticate(request, peer, now, extension, to_tag)
        if denied is not None:
            return denied, []
        return self._update(request, peer, now, extension, to_tag)

    def _update(
        self, request: Request, peer: Peer, now: float, ext: str, to_tag: str
    ) -> tuple[Response, list[BindingChange]]:
        header_expires = request.headers.get("Expires")
        if header_expires is not None and not header_expires.strip().isdigit():
            return make_response(request, 400, "Bad Expires", to_tag), []
        default = int(header_expires) if header_expires is not None else self.default_expires
        call_id = request.call_id
        cseq = request.cseq[0]
        table = self.bindings.setdefault(ext, {})
        changes: list[BindingChange] = []
        raw_contacts = request.headers.get_all("Contact")
        if any(c.strip() == "*" for c in raw_contacts):
            if len(raw_contacts) != 1 or default != 0:
                return make_response(request, 400, "Wildcard Contact needs Expires: 0", to_tag), []
            for uri, b in list(table.items()):
                if b.call_id == call_id and cseq <= b.cseq:
                    continue
                del table[uri]
                changes.append(BindingChange(ext, uri, False, now))
        else:
            limit = self.directory.extensions[ext].max_contacts
            for contact in request.contacts:
                SipUri.parse(contact.uri)  # must be a SIP URI we can call
                value = contact.params.get("expires")
                if value is not None and not value.isdigit():
                    return make_response(request, 400, "Bad expires parameter", to_tag), []
                expires = int(value) if value is not None else default
                if 0 < expires < self.min_expires:
                    resp = make_response(request, 423, "", to_tag)
                    resp.headers.add("Min-Expires", str(self.min_expires))
                    return resp, []
                expires = min(expires, self.max_expires)
                old = table.get(contact.uri)
                if old is not None and old.call_id == call_id and cseq <= old.cseq:
                    return make_response(request, 500, "Out of order REGISTER", to_tag), []
                if expires == 0:
                    if old is not None:
                        del table[contact.uri]
                        changes.append(BindingChange(ext, contact.uri, False, now))
                    continue
                if old is None and len([b for b in table.values() if b.expires_at > now]) >= limit:
                    # make room: the binding closest to expiry goes
                    oldest = min(table.values(), key=lambda b: b.expires_at)
                    del table[oldest.contact]
                    changes.append(BindingChange(ext, oldest.contact, False, now))
                instance = contact.params.get("+sip.instance")
                target = _target(request, peer, contact.uri)
                table[contact.uri] = Binding(ext, contact.uri, target, now + expires, call_id, cseq, instance)
                changes.append(BindingChange(ext, contact.uri, True, now + expires))
        if not table:
            self.bindings.pop(ext, None)
        resp = make_response(request, 200, "", to_tag)
        for b in self.contacts(ext, now):
            left = max(0, int(round(b.expires_at - now)))
            resp.headers.add("Contact", f"{NameAddr(b.contact)};expires={left}")
        for ch in changes:
            log.info(
                "%s %s at %s (from %s:%d)",
                "registered" if ch.registered else "unregistered",
                ch.extension,
                ch.contact,
                peer.host,
                peer.port,
            )
        return resp, changes
