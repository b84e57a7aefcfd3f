"""SIP transactions (RFC 3261 17 + RFC 6026) driven by messages and a number for time alone."""

from __future__ import annotations

import pytest

from firmware.sip.message import Headers, LocalProtocolError, Request, make_response, parse_datagram
from firmware.sip.transaction import (
    T1,
    T2,
    Kind,
    Peer,
    RequestReceived,
    ResponseReceived,
    State,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
)

UA = Peer("UDP", "127.0.0.1", 5070)
TCP_UA = Peer("TCP", "127.0.0.1", 40000)


def request(method: str, branch: str = "z9hG4bKabc", cseq: int = 1, via_host: str = "127.0.0.1") -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP {via_host}:5070;branch={branch};rport")
    h.add("Max-Forwards", "70")
    h.add("From", "<sip:1000@box>;tag=f1")
    h.add("To", "<sip:1001@box>")
    h.add("Call-ID", "call-1")
    h.add("CSeq", f"{cseq} {method}")
    return parse_datagram(Request(method, "sip:1001@box", h).encode())


def transmits(events):
    return [e for e in events if isinstance(e, Transmit)]


def run_until(layer, start, end, step=0.01):
    """Advance time in small steps, collecting what the layer emits."""
    out = []
    t = start
    while t <= end:
        out += [(t, e) for e in layer.handle_timers(t)]
        t = round(t + step, 6)
    return out


def test_invite_client_retransmits_on_timer_a_doubling_then_times_out_at_b():
    layer = TransactionLayer()
    key, out = layer.send_request(request("INVITE"), UA, 0.0)
    assert len(transmits(out)) == 1
    events = run_until(layer, 0.0, 64 * T1 + 0.05)
    sends = [round(t, 2) for t, e in events if isinstance(e, Transmit)]
    # A fires at T1, 3T1, 7T1, 15T1, 31T1, 63T1 (intervals double), B at 64T1
    assert sends == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    timeouts = [t for t, e in events if isinstance(e, TransactionTimeout)]
    assert timeouts and abs(timeouts[0] - 64 * T1) < 0.02
    assert key not in layer.clients


def test_invite_client_non_2xx_acks_and_absorbs_retransmissions():
    layer = TransactionLayer()
    req = request("INVITE")
    key, _ = layer.send_request(req, UA, 0.0)
    ringing = make_response(req, 180, to_tag="t")
    out = layer.receive(parse_datagram(ringing.encode()), UA, 0.1)
    assert [type(e) for e in out] == [ResponseReceived]
    assert layer.clients[key].state is State.PROCEEDING
    # no more retransmissions in Proceeding
    assert not transmits([e for _, e in run_until(layer, 0.1, 5.0)])
    busy = parse_datagram(make_response(req, 486, to_tag="t").encode())
    out = layer.receive(busy, UA, 5.0)
    assert isinstance(out[0], ResponseReceived) and out[0].response.status == 486
    ack = parse_datagram(out[1].data)
    assert ack.method == "ACK" and ack.cseq == (1, "ACK") and ack.to.tag == "t"
    assert ack.top_via.branch == req.top_via.branch
    # retransmitted 486: ACK again, not passed up
    out = layer.receive(parse_datagram(busy.encode()), UA, 5.5)
    assert [type(e) for e in out] == [Transmit]
    run_until(layer, 5.5, 5.0 + 32.1, step=0.5)
    assert key not in layer.clients  # timer D


def test_invite_client_2xx_goes_to_accepted_and_passes_retransmissions():
    layer = TransactionLayer()
    req = request("INVITE")
    key, _ = layer.send_request(req, UA, 0.0)
    ok = parse_datagram(make_response(req, 200, to_tag="t").encode())
    assert isinstance(layer.receive(ok, UA, 0.2)[0], ResponseReceived)
    assert layer.clients[key].state is State.ACCEPTED
    assert isinstance(layer.receive(ok, UA, 0.3)[0], ResponseReceived)
    run_until(layer, 0.3, 64 * T1 + 0.5, step=0.5)
    assert key not in layer.clients  # timer M
    out = layer.receive(ok, UA, 40.0)  # after the transaction: still handed up, key None
    assert isinstance(out[0], ResponseReceived) and out[0].key is None


def test_non_invite_client_timer_e_caps_at_t2():
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS"), UA, 0.0)
    sends = [round(t, 2) for t, e in run_until(layer, 0.0, 20.0) if isinstance(e, Transmit)]
    intervals = [round(b - a, 2) for a, b in zip([0.0, *sends], sends, strict=False)]
    assert intervals[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(intervals) == T2


def test_non_invite_client_over_tcp_has_no_retransmission():
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS"), TCP_UA, 0.0)
    events = run_until(layer, 0.0, 40.0, step=0.1)
    assert not transmits([e for _, e in events])
    assert any(isinstance(e, TransactionTimeout) for _, e in events)


def test_invite_server_final_retransmitted_until_ack():
    layer = TransactionLayer()
    req = request("INVITE")
    out = layer.receive(req, UA, 0.0)
    assert isinstance(out[0], RequestReceived)
    key = out[0].key
    assert layer.servers[key].kind is Kind.INVITE_SERVER
    layer.send_response(key, make_response(req, 100), 0.0)
    # a retransmitted INVITE gets the last provisional again
    again = layer.receive(request("INVITE"), UA, 0.3)
    assert parse_datagram(again[0].data).status == 100
    layer.send_response(key, make_response(req, 486, to_tag="x"), 1.0)
    sends = [round(t, 2) for t, e in run_until(layer, 1.0, 3.0) if isinstance(e, Transmit)]
    assert sends == [1.5, 2.5]  # timer G: T1, then 2T1
    ack = Request("ACK", req.uri, req.headers.copy())
    ack.headers.set("CSeq", "1 ACK")
    assert layer.receive(parse_datagram(ack.encode()), UA, 3.0) == []
    assert layer.servers[key].state is State.CONFIRMED
    assert not transmits([e for _, e in run_until(layer, 3.0, 10.0, 0.5)])
    assert key not in layer.servers


def test_invite_server_no_ack_times_out_h():
    layer = TransactionLayer()
    req = request("INVITE")
    key = layer.receive(req, UA, 0.0)[0].key
    layer.send_response(key, make_response(req, 404, to_tag="x"), 0.0)
    events = run_until(layer, 0.0, 64 * T1 + 0.1, step=0.05)
    assert any(isinstance(e, TransactionTimeout) for _, e in events)


def test_server_rport_and_received():
    layer = TransactionLayer()
    req = request("OPTIONS", via_host="10.1.1.1")  # phone behind NAT claims a private address
    nat = Peer("UDP", "127.0.0.1", 40123)
    key = layer.receive(req, nat, 0.0)[0].key
    via = req.top_via
    assert via.params["received"] == "127.0.0.1" and via.params["rport"] == "40123"
    out = layer.send_response(key, make_response(req, 200, to_tag="a"), 0.0)
    assert out[0].peer == nat
    resp = parse_datagram(out[0].data)
    assert resp.top_via.params["rport"] == "40123"


def test_non_invite_server_absorbs_and_repeats_final():
    layer = TransactionLayer()
    req = request("REGISTER")
    key = layer.receive(req, UA, 0.0)[0].key
    assert layer.receive(request("REGISTER"), UA, 0.1) == []  # Trying: absorbed
    layer.send_response(key, make_response(req, 200, to_tag="a"), 0.2)
    again = layer.receive(request("REGISTER"), UA, 0.5)
    assert parse_datagram(again[0].data).status == 200
    with pytest.raises(LocalProtocolError):
        layer.send_response(key, make_response(req, 200, to_tag="a"), 0.6)
    run_until(layer, 0.6, 33.0, step=0.5)
    assert key not in layer.servers  # timer J


def test_ack_for_2xx_and_cancel_are_their_own():
    layer = TransactionLayer()
    req = request("INVITE")
    key = layer.receive(req, UA, 0.0)[0].key
    cancel = request("CANCEL")
    ev = layer.receive(cancel, UA, 0.1)
    assert isinstance(ev[0], RequestReceived) and ev[0].key != key
    assert ev[0].key[0] == key[0]  # same branch, so the core can find the INVITE
    layer.send_response(key, make_response(req, 200, to_tag="a"), 0.2)
    assert layer.servers[key].state is State.ACCEPTED
    ack = request("ACK", branch="z9hG4bKnew")
    ev = layer.receive(ack, UA, 0.3)
    assert isinstance(ev[0], RequestReceived) and ev[0].key is None


def test_local_errors():
    layer = TransactionLayer()
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("ACK"), UA, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("OPTIONS", branch="nomagic"), UA, 0.0)
    layer.send_request(request("OPTIONS"), UA, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("OPTIONS"), UA, 0.0)
