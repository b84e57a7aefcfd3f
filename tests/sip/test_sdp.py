"""SDP offer/answer (RFC 3264): PCMA preferred, PCMU, telephone-event, hold directions, rejections."""

from __future__ import annotations

import pytest

from firmware.sip.sdp import SdpError, SessionDescription, accept_answer, answer_offer, make_offer


def offer(formats: str, extra: str = "", conn: str = "192.0.2.10") -> SessionDescription:
    text = (
        f"v=0\r\no=- 1 1 IN IP4 {conn}\r\ns=-\r\nc=IN IP4 {conn}\r\nt=0 0\r\n"
        f"m=audio 40000 RTP/AVP {formats}\r\n{extra}"
    )
    return SessionDescription.parse(text.encode())


def test_pcma_preferred_over_offer_order_and_dtmf_pt_kept():
    sd = offer("0 8 96", "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:20\r\n")
    ans, neg = answer_offer(sd, "127.0.0.1", 20000, 1, 0)
    assert (neg.codec, neg.pt, neg.dtmf_pt, neg.remote_ip, neg.remote_port) == (
        "PCMA",
        8,
        96,
        "192.0.2.10",
        40000,
    )
    m = SessionDescription.parse(ans.encode()).media[0]
    assert m.formats == ["8", "96"] and m.port == 20000 and m.ptime == 20 and m.direction == "sendrecv"


def test_pcmu_only_and_dynamic_pcmu_name():
    _, neg = answer_offer(offer("0"), "127.0.0.1", 20000, 1, 0)
    assert neg.codec == "PCMU" and neg.dtmf_pt is None
    _, neg = answer_offer(offer("97", "a=rtpmap:97 pcmu/8000\r\n"), "127.0.0.1", 20000, 1, 0)
    assert (neg.codec, neg.pt) == ("PCMU", 97)


@pytest.mark.parametrize(
    ("extra", "conn", "ours"),
    [
        ("a=sendonly\r\n", "192.0.2.10", "recvonly"),
        ("a=inactive\r\n", "192.0.2.10", "inactive"),
        ("a=recvonly\r\n", "192.0.2.10", "sendonly"),
        ("", "0.0.0.0", "recvonly"),  # RFC 2543 hold
    ],
)
def test_hold_directions(extra, conn, ours):
    _, neg = answer_offer(offer("8", extra, conn), "127.0.0.1", 20000, 1, 1)
    assert neg.direction == ours and neg.on_hold


def test_no_common_codec_is_488_and_extra_streams_rejected():
    with pytest.raises(SdpError) as exc:
        answer_offer(offer("18 4"), "127.0.0.1", 20000, 1, 0)
    assert exc.value.status == 488
    text = (
        b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8\r\n"
    )
    ans, neg = answer_offer(SessionDescription.parse(text), "127.0.0.1", 20000, 1, 0)
    assert [m.port for m in ans.media] == [0, 20000] and neg.remote_port == 4000


@pytest.mark.parametrize(
    "bad", [b"garbage", b"v=0\r\nm=audio x RTP/AVP 8\r\n", b"v=0\r\nc=IN\r\n", b"\xff\xfe"]
)
def test_malformed_sdp(bad):
    with pytest.raises(SdpError):
        SessionDescription.parse(bad)


def test_our_offer_and_their_answer():
    ours = make_offer("127.0.0.1", 20000, 5, 0)
    parsed = SessionDescription.parse(ours.encode())
    assert parsed.media[0].formats == ["8", "0", "101"]
    assert parsed.media[0].rtpmap[101] == "telephone-event/8000"
    their = offer("0 101", "a=rtpmap:101 telephone-event/8000\r\n")
    neg = accept_answer(parsed, their)
    assert (neg.codec, neg.dtmf_pt, neg.direction) == ("PCMU", 101, "sendrecv")
    held = make_offer("127.0.0.1", 20000, 5, 1, direction="sendonly")
    neg = accept_answer(held, offer("8", "a=recvonly\r\n"))
    assert neg.direction == "sendonly"
