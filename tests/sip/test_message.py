"""SIP message parsing and serialization (RFC 3261 7, 20, 25; torture cases in the spirit of RFC 4475)."""

from __future__ import annotations

import pytest

from firmware.sip.message import (
    MAX_MESSAGE_SIZE,
    NameAddr,
    RemoteProtocolError,
    Request,
    Response,
    SipUri,
    StreamFramer,
    Via,
    make_response,
    parse_auth,
    parse_datagram,
)

INVITE = (
    b"INVITE sip:1001@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Agent" <sip:1001@192.0.2.1>\r\n'
    b"From: Alice <sip:1000@192.0.2.1>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:1000@127.0.0.1:5061>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_parse_request_fields():
    msg = parse_datagram(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and msg.uri == "sip:1001@192.0.2.1"
    assert msg.call_id == "a84b4c76e66710@pc33"
    assert msg.cseq == (314159, "INVITE")
    assert msg.from_.tag == "1928301774" and msg.from_.display == "Alice"
    assert msg.to.display == "Agent" and msg.to.tag is None
    via = msg.top_via
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "127.0.0.1", 5061, "z9hG4bK776asdhds")
    assert "rport" in via.params and via.params["rport"] is None
    assert msg.body == b"v=0\n"


def test_roundtrip_is_stable():
    msg = parse_datagram(INVITE)
    again = parse_datagram(msg.encode())
    assert again.encode() == msg.encode()
    assert again.body == msg.body


def test_compact_forms_folding_and_lists():
    raw = (
        b"OPTIONS sip:box SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example:5060;branch=z9hG4bK1,\r\n"
        b"   SIP/2.0/TCP b.example;branch=z9hG4bK2\r\n"
        b"f: <sip:x@a>;tag=1\r\n"
        b"t: <sip:y@b>\r\n"
        b"i: abc\r\n"
        b"CSeq  :   7 OPTIONS\r\n"
        b'm: "A, B" <sip:a@h>, <sip:b@h;transport=tcp>;expires=60\r\n'
        b"Subject: line one\r\n"
        b"\tline two\r\n"
        b"l: 0\r\n\r\n"
    )
    msg = parse_datagram(raw)
    assert [v.host for v in msg.vias] == ["a.example", "b.example"]
    assert msg.vias[1].transport == "TCP"
    assert msg.call_id == "abc"
    assert [c.uri for c in msg.contacts] == ["sip:a@h", "sip:b@h;transport=tcp"]
    assert msg.contacts[0].display == "A, B"
    assert msg.contacts[1].params["expires"] == "60"
    assert msg.headers["subject"] == "line one line two"
    assert b"Via: SIP/2.0/UDP a.example:5060;branch=z9hG4bK1\r\nVia: SIP/2.0/TCP" in msg.encode()


def test_response_parse_and_reason_with_spaces():
    raw = (
        b"SIP/2.0 486 Busy Here Right Now\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"
    )
    msg = parse_datagram(raw)
    assert isinstance(msg, Response)
    assert msg.status == 486 and msg.reason == "Busy Here Right Now"
    assert msg.body == b""


def test_datagram_body_longer_than_content_length_is_cut():
    msg = parse_datagram(INVITE + b"trailing junk")
    assert msg.body == b"v=0\n"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (INVITE.replace(b"Content-Length: 4", b"Content-Length: 40"), 400),
        (INVITE.replace(b"Content-Length: 4", b"Content-Length: x"), 400),
        (INVITE.replace(b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia"), 505),
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"), 400),
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: x INVITE"), 400),
        (INVITE.replace(b"Call-ID: a84b4c76e66710@pc33\r\n", b""), 400),
        (INVITE.replace(b"Via: SIP/2.0/UDP", b"Via: SIP/1.0/UDP"), 400),
        (INVITE.replace(b"Max-Forwards: 70", b"Max Forwards 70"), 400),
        (INVITE.replace(b"INVITE sip:", b"INVITE  sip:"), 400),
        (INVITE.replace(b"Call-ID: a84", b"Call-ID: 1\r\nCall-ID: a84"), 400),
        (INVITE.replace(b"\r\n\r\n", b"\r\n"), 400),
        (b"\xff\xfe garbage", 400),
        (b"", 400),
        (INVITE.replace(b"sip:1001@192.0.2.1 SIP", b"1001 SIP"), 416),
        (INVITE.replace(b"From: Alice", b"From: Alice <sip:unclosed"), 400),
    ],
)
def test_malformed_is_a_remote_error_with_status(raw, status):
    with pytest.raises(RemoteProtocolError) as exc:
        parse_datagram(raw)
    assert exc.value.status == status


def test_oversized_rejected():
    raw = INVITE.replace(b"Max-Forwards: 70\r\n", b"X-Pad: " + b"a" * MAX_MESSAGE_SIZE + b"\r\n")
    with pytest.raises(RemoteProtocolError) as exc:
        parse_datagram(raw)
    assert exc.value.status == 513


def test_too_many_headers_rejected():
    raw = INVITE.replace(b"Max-Forwards: 70\r\n", b"X-A: 1\r\n" * 200)
    with pytest.raises(RemoteProtocolError):
        parse_datagram(raw)


def test_stream_framer_splits_and_needs_content_length():
    framer = StreamFramer()
    two = INVITE + b"\r\n\r\n" + INVITE
    framer.feed(two[:50])
    assert framer.next_message() is None
    framer.feed(two[50:])
    first = framer.next_message()
    second = framer.next_message()
    assert first is not None and second is not None
    assert first.body == second.body == b"v=0\n"
    assert framer.next_message() is None

    bad = StreamFramer()
    bad.feed(INVITE.replace(b"Content-Length: 4\r\n", b""))
    with pytest.raises(RemoteProtocolError):
        bad.next_message()
    assert bad.broken


def test_uri_nameaddr_via_auth():
    uri = SipUri.parse("sip:1001:pw@[::1]:5070;transport=tcp;lr?subject=x")
    assert (uri.user, uri.password, uri.host, uri.port) == ("1001", "pw", "[::1]", 5070)
    assert uri.params == {"transport": "tcp", "lr": None}
    assert str(uri) == "sip:1001:pw@[::1]:5070;transport=tcp;lr?subject=x"
    assert SipUri.parse("sip:box.local").user is None
    with pytest.raises(RemoteProtocolError):
        SipUri.parse("http://x")
    na = NameAddr.parse('"Bob \\"B\\"" <sip:b@h>;tag=9;x')
    assert na.display == 'Bob "B"' and na.tag == "9" and na.params["x"] is None
    assert NameAddr.parse("sip:b@h;tag=3").tag == "3"
    via = Via.parse("SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKa;received=1.2.3.4")
    assert via.port is None and via.params["received"] == "1.2.3.4"
    assert str(via) == "SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKa;received=1.2.3.4"
    scheme, params = parse_auth('Digest username="1001", realm="cb", nonce="a,b", qop=auth, nc=00000001')
    assert scheme == "digest" and params["nonce"] == "a,b" and params["qop"] == "auth"


def test_make_response_copies_and_tags():
    req = parse_datagram(INVITE)
    resp = make_response(req, 180, to_tag="abc")
    assert resp.reason == "Ringing"
    assert resp.to.tag == "abc"
    assert resp.headers["Via"] == req.headers["Via"]
    trying = make_response(req, 100, to_tag="abc")
    assert trying.to.tag is None
    assert parse_datagram(resp.encode()).cseq == (314159, "INVITE")
