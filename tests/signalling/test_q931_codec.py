"""Q.931 codec: every message type and IE encoded and decoded; known octets; malformed input."""

from __future__ import annotations

import pytest

from firmware.signalling.q931.codec import (
    MT,
    BearerCapability,
    CalledNumber,
    CallingNumber,
    CallState,
    CauseIE,
    ChannelId,
    ConnectedNumber,
    Display,
    KeypadFacility,
    Message,
    MessageError,
    ProgressIndicator,
    RawIE,
    RestartIndicator,
    SendingComplete,
    decode_message,
    encode_message,
)

ALL_IES = [
    SendingComplete(),
    BearerCapability(),
    BearerCapability(transfer=0x10),
    BearerCapability(transfer=0x08, layer1=None),
    CauseIE(17, 2),
    CauseIE(16, 0, b"\x01"),
    CallState(10),
    ChannelId(1),
    ChannelId(31, exclusive=False),
    ChannelId(17, exclusive=True),
    ChannelId(None, exclusive=False),
    ChannelId(None, none=True),
    ProgressIndicator(8, 2),
    ProgressIndicator(1, 4),
    Display("Agent 007"),
    KeypadFacility("*21#"),
    ConnectedNumber("010123456", 2, 1, 0, 1),
    CallingNumber("13800138000", 2, 1, 1, 3),
    CallingNumber("", 0, 0, 2, 0),  # withheld, number not available
    CalledNumber("4001", 4, 9),
    RestartIndicator(0),
    RestartIndicator(7),
    RawIE(0x7E, b"\x04hello"),  # user-user, carried
]


@pytest.mark.parametrize("mt", list(MT), ids=lambda m: m.name)
def test_every_message_type_roundtrips(mt: MT) -> None:
    for cr, orig in ((0, True), (1, True), (0x7FFF, False), (300, False)):
        msg = Message(mt, cr, orig, list(ALL_IES[:3]))
        back = decode_message(encode_message(msg))
        assert (back.type, back.call_ref, back.from_originator) == (mt, cr, orig)
        assert back.ies == msg.ies and back.errors == []


@pytest.mark.parametrize("ie", ALL_IES, ids=lambda ie: type(ie).__name__)
def test_every_ie_roundtrips(ie) -> None:
    msg = Message(MT.SETUP, 5, True, [ie])
    back = decode_message(encode_message(msg))
    assert back.errors == []
    assert back.ies == [ie]


def test_known_setup_octets_match_libpri_layout() -> None:
    # Bearer speech/A-law exactly as libpri encodes it: 04 03 80 90 a3; channel 1 exclusive: 18 03 a9 83 81.
    msg = Message(MT.SETUP, 1, True, [BearerCapability(), ChannelId(1), CalledNumber("12", 0, 1)])
    assert encode_message(msg).hex() == "080200010504038090a31803a98381700381" + "3132"
    # A CALL PROCEEDING as libpri (network side) sent it in interop: 08 02 80 01 02 18 03 a9 83 81
    m = decode_message(bytes.fromhex("0802800102" + "1803a98381"))
    assert m.type == MT.CALL_PROCEEDING and not m.from_originator and m.get(ChannelId) == ChannelId(1)


def test_channel_timeslot_numbering() -> None:
    # The channel number is the E1 timeslot: 16 (the D-channel) and 0 do not exist.
    for bad in (0, 16, 32):
        raw = bytes.fromhex("08020001051803a983") + bytes([0x80 | bad])
        m = decode_message(raw)
        assert m.get(ChannelId) is None and m.errors[0].kind == "content"
    raw = bytes.fromhex("08020001051803a98391")  # timeslot 17: the 16th B-channel
    assert decode_message(raw).get(ChannelId) == ChannelId(17)


def test_explicit_interface_identifier_accepted_for_interface_0() -> None:
    m = decode_message(bytes.fromhex("08020001051804e9808385"))
    assert m.get(ChannelId) == ChannelId(5)
    m = decode_message(bytes.fromhex("08020001051804e9818385"))
    assert m.get(ChannelId) is None and "interface" in m.errors[0].detail


@pytest.mark.parametrize(
    "raw,why",
    [
        ("", "too short"),
        ("08", "too short"),
        ("0902000105", "protocol discriminator"),
        ("080300000105", "call reference length"),
        ("0802", "too short"),
        ("080200", "truncated"),
        ("08020001", "truncated"),
        ("0802000185", "bit 8"),
    ],
)
def test_messages_that_are_ignored(raw: str, why: str) -> None:
    with pytest.raises(MessageError, match=why):
        decode_message(bytes.fromhex(raw))


def test_ie_problems_are_reported_not_raised() -> None:
    # Truncated IE
    m = decode_message(bytes.fromhex("0802000105" + "040380"))
    assert m.errors and m.errors[0].kind == "content"
    # Unknown IE, not comprehension required (0x7b) and comprehension required (0x0b)
    m = decode_message(bytes.fromhex("0802000105" + "7b0100" + "0b0100"))
    kinds = [(e.ie_id, e.kind, e.comprehension_required) for e in m.errors]
    assert kinds == [(0x7B, "unrecognized", False), (0x0B, "unrecognized", True)]
    # Bad contents: cause value without extension bit, bearer coding standard not ITU-T
    m = decode_message(bytes.fromhex("0802000145" + "08028010"))
    assert m.get(CauseIE) is None and m.errors[0].kind == "content"
    m = decode_message(bytes.fromhex("0802000105" + "0403e090a3"))
    assert m.get(BearerCapability) is None and m.errors[0].kind == "content"
    # Oversized IE
    m = decode_message(bytes.fromhex("0802000105" + "1e04" + "82888888"))
    assert m.errors[0].kind == "content" and "maximum" in m.errors[0].detail
    # Non-IA5 digits
    m = decode_message(bytes.fromhex("0802000105" + "700381" + "31b2"))
    assert m.get(CalledNumber) is None


def test_codeset_shift() -> None:
    # Locking shift to codeset 6 then a codeset-6 IE: carried raw, not taken as a codeset-0 IE.
    m = decode_message(bytes.fromhex("0802000105" + "96" + "0801ff"))
    assert m.get(CauseIE) is None and m.ies == [RawIE(0x08, b"\xff", 6)]
    # Non-locking shift applies to one IE only.
    m = decode_message(bytes.fromhex("0802000145" + "9e" + "0801ff" + "08028090"))
    assert m.get(CauseIE) == CauseIE(16, 0)


def test_calling_number_presentation_and_screening() -> None:
    raw = encode_message(Message(MT.SETUP, 1, True, [CallingNumber("123", 2, 1, 1, 3)]))
    assert raw.endswith(bytes.fromhex("6c05" + "21" + "a3" + "313233"))
    m = decode_message(raw)
    cn = m.get(CallingNumber)
    assert (cn.ton, cn.npi, cn.presentation, cn.screening) == (2, 1, 1, 3)
