"""HTTP digest authentication for SIP (RFC 3261 22, RFC 2617, RFC 8760 SHA-256), server side.

Credentials are kept only as HA1 = H(username:realm:password), one per algorithm, so the box never holds a
password. Nonces are stateless: `<issue time>:<salt>:<HMAC(secret, time|salt|address)>`, so a nonce is
bound to the address it was given to and goes stale after `nonce_lifetime` seconds (then `stale=true` lets
the phone retry without asking its user). Nonce counts are remembered per nonce (bounded) to refuse replays.

`Lockout` counts failed attempts per source address: `max_failures` failures within `window` seconds lock
that address out for `lockout` seconds (logged), other addresses are unaffected.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass

from .message import RemoteProtocolError, parse_auth

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256"}


def digest(algorithm: str, text: str) -> str:
    name = ALGORITHMS.get(algorithm.upper().removesuffix("-SESS"))
    if name is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(name, text.encode("utf-8")).hexdigest()


def make_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """HA1 for storing in the extensions file instead of the password."""
    return digest(algorithm, f"{username}:{realm}:{password}")


def make_ha1_set(username: str, realm: str, password: str) -> dict[str, str]:
    return {alg: make_ha1(username, realm, password, alg) for alg in ALGORITHMS}


def expected_response(
    ha1: str,
    algorithm: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
) -> str:
    """The `response` a client with the right password computes (RFC 2617 3.2.2.1)."""
    if algorithm.upper().endswith("-SESS"):
        ha1 = digest(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = digest(algorithm, f"{method}:{uri}")
    if qop:
        return digest(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return digest(algorithm, f"{ha1}:{nonce}:{ha2}")


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""
    attempted: bool = False  # the request carried credentials (a failure counts towards lockout)


class DigestAuthenticator:
    def __init__(
        self,
        realm: str,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        nonce_lifetime: float = 300.0,
        secret: bytes | None = None,
    ) -> None:
        for alg in algorithms:
            if alg.upper() not in ALGORITHMS:
                raise ValueError(f"unsupported digest algorithm {alg!r}")
        self.realm = realm
        self.algorithms = algorithms
        self.nonce_lifetime = nonce_lifetime
        self._secret = secret if secret is not None else os.urandom(16)
        self._nc_seen: OrderedDict[str, int] = OrderedDict()

    def _mac(self, stamp: str, salt: str, address: str) -> str:
        return hmac.new(self._secret, f"{stamp}|{salt}|{address}".encode(), "sha256").hexdigest()[:24]

    def _nonce(self, now: float, address: str) -> str:
        stamp = f"{now:.3f}"
        salt = os.urandom(6).hex()
        return f"{stamp}:{salt}:{self._mac(stamp, salt, address)}"

    def challenges(
        self, now: float, address: str, stale: bool = False, algorithms: tuple[str, ...] | None = None
    ) -> list[str]:
        """WWW-Authenticate values, one per algorithm, preferred first (RFC 8760 2.4). `algorithms`
        overrides the order for one user (legacy phones that read only the first challenge)."""
        nonce = self._nonce(now, address)
        out = []
        for alg in algorithms or self.algorithms:
            value = f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={alg}, qop="auth"'
            if stale:
                value += ", stale=true"
            out.append(value)
        return out

    def check(
        self,
        authorization: str | None,
        method: str,
        now: float,
        address: str,
        credentials: dict[str, str] | None,
        expected_user: str | None = None,
    ) -> AuthResult:
        """Verify an Authorization header value. `credentials` maps algorithm -> HA1 for the user named
        in it (None when unknown)."""
        if not authorization:
            return AuthResult(False, reason="no credentials")
        try:
            scheme, p = parse_auth(authorization)
        except RemoteProtocolError as exc:
            return AuthResult(False, reason=str(exc), attempted=True)
        if scheme != "digest":
            return AuthResult(False, reason=f"scheme {scheme}", attempted=True)
        username = p.get("username", "")
        if p.get("realm") != self.realm:
            return AuthResult(False, username, reason="wrong realm", attempted=True)
        algorithm = p.get("algorithm", "MD5").upper()
        base_alg = algorithm.removesuffix("-SESS")
        if base_alg not in ALGORITHMS:
            return AuthResult(False, username, reason=f"algorithm {algorithm}", attempted=True)
        if expected_user is not None and username != expected_user:
            return AuthResult(False, username, reason="username does not match", attempted=True)
        nonce = p.get("nonce", "")
        stamp, _, rest = nonce.partition(":")
        salt, _, mac = rest.partition(":")
        try:
            issued = float(stamp)
        except ValueError:
            return AuthResult(False, username, reason="bad nonce", attempted=True)
        if not hmac.compare_digest(mac, self._mac(stamp, salt, address)):
            # not ours (or given to another address): ask again, not a password failure
            return AuthResult(False, username, stale=True, reason="unknown nonce")
        if credentials is None or base_alg not in credentials:
            return AuthResult(False, username, reason="unknown user", attempted=True)
        qop = p.get("qop")
        nc = p.get("nc", "")
        cnonce = p.get("cnonce", "")
        if qop is not None and qop.lower() != "auth":
            return AuthResult(False, username, reason=f"qop {qop}", attempted=True)
        want = expected_response(
            credentials[base_alg], algorithm, method, p.get("uri", ""), nonce, qop, nc, cnonce
        )
        if not hmac.compare_digest(want, p.get("response", "").lower()):
            return AuthResult(False, username, reason="wrong password", attempted=True)
        if now - issued > self.nonce_lifetime:
            return AuthResult(False, username, stale=True, reason="stale nonce")
        if qop:
            try:
                count = int(nc, 16)
            except ValueError:
                return AuthResult(False, username, reason="bad nc", attempted=True)
            key = f"{nonce}|{cnonce}"
            last = self._nc_seen.get(key, 0)
            if count <= last:
                return AuthResult(False, username, stale=True, reason="replayed nonce count")
            self._nc_seen[key] = count
            self._nc_seen.move_to_end(key)
            while len(self._nc_seen) > 10000:
                self._nc_seen.popitem(last=False)
        return AuthResult(True, username)


class Lockout:
    """Failed-authentication counting per source address (see module docstring)."""

    def __init__(self, max_failures: int = 5, window: float = 60.0, lockout: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked(self, address: str, now: float) -> bool:
        until = self._locked_until.get(address)
        if until is None:
            return False
        if now >= until:
            del self._locked_until[address]
            log.info("auth lockout of %s lifted", address)
            return False
        return True

    def failure(self, address: str, now: float, who: str = "") -> bool:
        """Record a failure; True when this one locked the address out."""
        times = [t for t in self._failures.get(address, []) if now - t < self.window]
        times.append(now)
        self._failures[address] = times
        if len(times) >= self.max_failures:
            self._locked_until[address] = now + self.lockout
            del self._failures[address]
            log.warning(
                "auth lockout: %s locked for %.0f s after %d failures (last as %r)",
                address,
                self.lockout,
                len(times),
                who,
            )
            return True
        if len(self._failures) > 100000:  # a flood of spoofed addresses must not grow us without bound
            self._failures = {a: ts for a, ts in self._failures.items() if now - ts[-1] < self.window}
        return False

    def success(self, address: str) -> None:
        self._failures.pop(address, None)
