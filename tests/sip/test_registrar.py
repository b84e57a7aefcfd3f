"""Digest authentication (RFC 2617 / RFC 7616 vectors) and the registrar (RFC 3261 10.3)."""

from __future__ import annotations

import hashlib
import logging

import pytest

from firmware.config import ConfigError
from firmware.sip.auth import DigestAuthenticator, Lockout, expected_response, make_ha1
from firmware.sip.extensions import Directory
from firmware.sip.message import Headers, Request, parse_auth, parse_datagram
from firmware.sip.registrar import Registrar
from firmware.sip.transaction import Peer

REALM = "callbox"
PHONE = Peer("UDP", "127.0.0.1", 5072)


def test_rfc2617_md5_vector():
    ha1 = make_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    got = expected_response(
        ha1,
        "MD5",
        "GET",
        "/dir/index.html",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "auth",
        "00000001",
        "0a4f113b",
    )
    assert got == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_sha256_vector():
    ha1 = make_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "SHA-256")
    got = expected_response(
        ha1,
        "SHA-256",
        "GET",
        "/dir/index.html",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "auth",
        "00000001",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert got == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def client_auth(challenge: str, user: str, password: str, method: str, uri: str, nc: int = 1) -> str:
    """What a phone computes, written independently with hashlib."""
    _, p = parse_auth(challenge)
    alg = p.get("algorithm", "MD5")
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg]

    def H(s: str) -> str:
        return h(s.encode()).hexdigest()

    cnonce = "abcdef"
    ncs = f"{nc:08x}"
    realm, nonce = p["realm"], p["nonce"]
    ha1 = H(f"{user}:{realm}:{password}")
    ha2 = H(f"{method}:{uri}")
    resp = H(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
        f'response="{resp}", algorithm={alg}, qop=auth, nc={ncs}, cnonce="{cnonce}"'
    )


def register(
    ext: str, contact: str, cseq: int, auth: str | None = None, expires: int | None = None
) -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 10.0.0.5:5072;branch=z9hG4bKr{cseq};rport")
    h.add("From", f"<sip:{ext}@box>;tag=reg")
    h.add("To", f"<sip:{ext}@box>")
    h.add("Call-ID", f"reg-{ext}-{contact}")
    h.add("CSeq", f"{cseq} REGISTER")
    h.add("Contact", contact)
    if expires is not None:
        h.add("Expires", str(expires))
    if auth:
        h.add("Authorization", auth)
    return parse_datagram(Request("REGISTER", "sip:box", h).encode())


@pytest.fixture
def registrar():
    directory = Directory.with_passwords(REALM, {"1001": "secret1", "1002": "secret2"})
    return Registrar(directory, DigestAuthenticator(REALM, secret=b"k" * 16), Lockout(3, 60, 300))


def do_register(reg, ext, password, contact, cseq, now, expires=None, alg_index=0):
    resp, _ = reg.handle(register(ext, contact, cseq, expires=expires), PHONE, now, "tt")
    assert resp.status == 401
    challenges = resp.headers.get_all("WWW-Authenticate")
    assert "algorithm=SHA-256" in challenges[0] and "algorithm=MD5" in challenges[1]
    auth = client_auth(challenges[alg_index], ext, password, "REGISTER", "sip:box")
    return reg.handle(register(ext, contact, cseq + 1, auth, expires), PHONE, now, "tt")


@pytest.mark.parametrize("alg_index", [0, 1])
def test_register_with_digest_both_algorithms(registrar, alg_index):
    resp, changes = do_register(
        registrar, "1001", "secret1", "<sip:1001@10.0.0.5:5072>", 1, 0.0, alg_index=alg_index
    )
    assert resp.status == 200
    assert changes[0].registered
    [b] = registrar.contacts("1001", 1.0)
    assert b.peer == PHONE  # NAT: where it came from, not the Contact's private address
    assert "expires=3600" in resp.headers["Contact"]


def test_several_contacts_expiry_and_refresh(registrar):
    do_register(registrar, "1001", "secret1", "<sip:1001@10.0.0.5:5072>", 1, 0.0, expires=120)
    do_register(registrar, "1001", "secret1", "<sip:1001@10.0.0.6:5072>", 1, 10.0, expires=600)
    assert len(registrar.contacts("1001", 20.0)) == 2
    # refresh of the first keeps it beyond its original expiry
    do_register(registrar, "1001", "secret1", "<sip:1001@10.0.0.5:5072>", 3, 100.0, expires=120)
    assert len(registrar.contacts("1001", 150.0)) == 2
    changes = registrar.expire(300.0)
    assert [c.contact for c in changes] == ["sip:1001@10.0.0.5:5072"]
    assert [b.contact for b in registrar.contacts("1001", 300.0)] == ["sip:1001@10.0.0.6:5072"]
    # unregister by expires=0
    resp, changes = do_register(registrar, "1001", "secret1", "<sip:1001@10.0.0.6:5072>", 3, 301.0, expires=0)
    assert resp.status == 200 and not changes[0].registered
    assert registrar.contacts("1001", 301.0) == []


def test_too_brief_interval(registrar):
    resp, _ = do_register(registrar, "1001", "secret1", "<sip:1001@10.0.0.5>", 1, 0.0, expires=10)
    assert resp.status == 423 and resp.headers["Min-Expires"] == "60"


def test_wrong_password_locks_out_address_and_logs(registrar, caplog):
    caplog.set_level(logging.INFO)
    statuses = []
    for i in range(4):
        resp, _ = registrar.handle(register("1001", "<sip:1001@h>", 10 + i), PHONE, float(i), "t")
        if resp.status == 403:
            statuses.append(403)
            continue
        challenge = resp.headers.get_all("WWW-Authenticate")[1]
        auth = client_auth(challenge, "1001", "wrong", "REGISTER", "sip:box")
        resp, _ = registrar.handle(register("1001", "<sip:1001@h>", 20 + i, auth), PHONE, float(i), "t")
        statuses.append(resp.status)
    assert statuses == [401, 401, 403, 403]
    assert "auth lockout" in caplog.text
    # even the right password is refused while locked; another address is not affected
    resp, _ = registrar.handle(register("1002", "<sip:1002@h>", 1), PHONE, 5.0, "t")
    assert resp.status == 403
    other = Peer("UDP", "127.0.0.2", 5072)
    resp, _ = registrar.handle(register("1002", "<sip:1002@h>", 1), other, 5.0, "t")
    assert resp.status == 401
    # lifted after the lockout time
    resp, _ = do_register(registrar, "1002", "secret2", "<sip:1002@h>", 1, 400.0)
    assert resp.status == 200


def test_unknown_extension_and_stale_nonce(registrar):
    resp, _ = registrar.handle(register("9999", "<sip:9999@h>", 1), PHONE, 0.0, "t")
    assert resp.status == 401  # no enumeration of extensions
    resp, _ = registrar.handle(register("1001", "<sip:1001@h>", 1), PHONE, 0.0, "t")
    auth = client_auth(resp.headers.get_all("WWW-Authenticate")[0], "1001", "secret1", "REGISTER", "sip:box")
    resp, _ = registrar.handle(register("1001", "<sip:1001@h>", 2, auth), PHONE, 1000.0, "t")
    assert resp.status == 401 and "stale=true" in resp.headers["WWW-Authenticate"]
    # replay of the same nonce count is refused
    resp, _ = registrar.handle(register("1001", "<sip:1001@h>", 3, auth), PHONE, 1.0, "t")
    assert resp.status == 200
    resp, _ = registrar.handle(register("1001", "<sip:1001@h>", 4, auth), PHONE, 2.0, "t")
    assert resp.status == 401


def test_directory_yaml_and_errors():
    ha1 = make_ha1("1001", "pbx", "pw")
    d = Directory.loads(
        f'realm: pbx\nextensions:\n  - number: "1001"\n    name: Alice\n    ha1: {{MD5: {ha1}}}\n'
        f'    permissions: national\n    follow_me: "0138"\n'
    )
    assert d.get("1001").ha1 == {"MD5": ha1} and d.get("1001").permissions == "national"
    assert d.feature("*41").action == "queue_login"
    assert d.feature("*415").argument == "5"
    assert d.feature("*81001").action == "pickup" and d.feature("*81001").argument == "1001"
    assert d.feature("1001") is None
    with pytest.raises(ConfigError) as exc:
        Directory.loads('extensions:\n  - number: "1001"\n    ha1: {MD5: xyz}\n')
    assert exc.value.line == 3
    with pytest.raises(ConfigError) as exc:
        Directory.loads(
            f'extensions:\n  - number: "1001"\n    ha1: {{MD5: {ha1}}}\n'
            f'  - number: "1001"\n    ha1: {{MD5: {ha1}}}\n'
        )
    assert "defined twice" in str(exc.value)
