"""SIP fuzzing: random and mutated messages get a proper error response or silence, never an exception
escaping, never corrupt state for anyone else (an established call survives the storm)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.sip.core import CallEnded, CoreConfig, IncomingCall, SipCore
from firmware.sip.extensions import Directory
from firmware.sip.message import RemoteProtocolError, Request, Response, StreamFramer, parse_datagram
from firmware.sip.rtp import MediaHub
from firmware.sip.transaction import Peer, Transmit

from .phones import Phone, World

SEEDS = [
    b"INVITE sip:5000@box SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKfz1;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:1001@box>;tag=a\r\nTo: <sip:5000@box>\r\nCall-ID: fz1\r\n"
    b"CSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1:7000>\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 83\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 8\r\n",
    b"REGISTER sip:box SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKfz2\r\n"
    b"f: <sip:1001@box>;tag=b\r\n"
    b"t: <sip:1001@box>\r\ni: fz2\r\nCSeq: 1 REGISTER\r\nm: <sip:1001@127.0.0.1:7000>;expires=60\r\n"
    b'Authorization: Digest username="1001", realm="callbox", nonce="1.0:ab:cd", uri="sip:box", '
    b'response="00", qop=auth, nc=00000001, cnonce="x"\r\nl: 0\r\n\r\n',
    b"BYE sip:box SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKfz3\r\n"
    b"From: <sip:1001@box>;tag=c\r\n"
    b"To: <sip:box>;tag=d\r\nCall-ID: fz3\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfz4\r\n"
    b"From: <sip:1@box>;tag=e\r\n"
    b"To: <sip:1002@box>;tag=f\r\nCall-ID: fz4\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    b"REFER sip:box SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKfz5\r\n"
    b"From: <sip:1001@box>;tag=g\r\nTo: <sip:box>;tag=h\r\nCall-ID: fz5\r\nCSeq: 3 REFER\r\n"
    b"Refer-To: <sip:1003@box?Replaces=x%3Bto-tag%3D1>\r\n"
    b"Content-Length: 0\r\n\r\n",
]

TOKENS = [
    b"\r\n",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b'"',
    b" ",
    b"\t",
    b"\x00",
    b"\xff",
    b"=",
    b"SIP/2.0",
    b"Content-Length: 99999",
    b"Via: ",
    b"CSeq: 4294967296 INVITE",
    b"branch=",
    b"tag=",
    b"@",
    b"\r\n ",
]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == 2:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == 3:
            data = data[:pos]
        else:
            lines = bytes(data).split(b"\r\n")
            if len(lines) > 2:
                i = draw(st.integers(1, len(lines) - 1))
                lines.insert(i, lines[draw(st.integers(1, len(lines) - 1))])
                data = bytearray(b"\r\n".join(lines))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=600), mutated()))
def test_parser_accepts_or_raises_remote_error_only(data):
    try:
        msg = parse_datagram(data)
    except RemoteProtocolError as exc:
        assert 400 <= exc.status <= 599
        return
    assert isinstance(msg, Request | Response)
    # whatever parsed serialises and parses again to the same thing
    again = parse_datagram(msg.encode())
    assert again.encode() == msg.encode()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=300), mutated()), max_size=8), st.integers(1, 50))
def test_stream_framer_never_raises_anything_else(chunks, cut):
    framer = StreamFramer()
    stream = b"".join(chunks)
    for i in range(0, len(stream), cut):
        framer.feed(stream[i : i + cut])
        try:
            while framer.next_message() is not None:
                pass
        except RemoteProtocolError:
            return


@pytest.fixture(scope="module")
def established():
    directory = Directory.with_passwords("callbox", {"1001": "pw1", "1002": "pw2"})
    core = SipCore(directory, MediaHub(64), CoreConfig(qualify_interval=0, max_calls=40))
    world = World(core)
    alice = Phone(world, "1001", "pw1", 6001)
    invite, _ = alice.call("5000")
    ref = world.of(IncomingCall)[0].call
    core.answer(ref, world.now)
    ok = alice.last(Response, 200, "INVITE")
    alice.ack(invite, ok)
    return world, alice, invite, ok, ref


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=400), mutated()), st.integers(1024, 65535))
def test_core_survives_fuzz_and_keeps_other_calls(established, data, port):
    world, alice, invite, ok, ref = established
    core = world.core
    core.receive(data, Peer("UDP", "127.0.0.1", port), world.now)
    for item in core.take():
        if isinstance(item, Transmit):
            parse_datagram(item.data)  # everything we send is well formed
    world.now += 0.01
    core.handle_timers(world.now)
    core.take()
    assert core.counters.get("internal_errors", 0) == 0
    assert not core.calls[ref].ended, "a fuzzed message from elsewhere ended an established call"


def test_established_call_still_clears_normally_after_fuzz(established):
    world, alice, invite, ok, ref = established
    alice.send(alice.in_dialog(invite, ok, "BYE"))
    assert alice.last(Response).status == 200
    assert [e.call for e in world.of(CallEnded)] == [ref]
    assert world.core.counters.get("internal_errors", 0) == 0
