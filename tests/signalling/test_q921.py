"""Q.921 LAPD data link, tested with frames and a fake time alone (two DataLinks back to back)."""

from __future__ import annotations

import pytest

from firmware.signalling.q921 import (
    DataIndication,
    DataLink,
    FrameError,
    LinkDown,
    LinkState,
    LinkUp,
    Role,
    decode_frame,
    encode_frame,
)


class Wire:
    def __init__(self, **kw) -> None:
        self.now = 0.0
        self.u = DataLink(Role.USER, **kw)
        self.n = DataLink(Role.NETWORK, **kw)
        self.lost: set[DataLink] = set()  # frames TO these links are lost
        self.log: list[tuple[str, bytes]] = []
        self.filter = None  # callable(dst, frame) -> bool (False drops it)

    def pump(self) -> None:
        for _ in range(10000):
            moved = False
            for src, dst, tag in ((self.u, self.n, "u>n"), (self.n, self.u, "n>u")):
                for f in src.frames_to_send():
                    moved = True
                    self.log.append((tag, f))
                    if dst in self.lost or (self.filter and not self.filter(dst, f)):
                        continue
                    dst.receive_frame(f, self.now)
            if not moved:
                return
        raise AssertionError("endless frames")

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            dls = [d for d in (self.u.next_deadline(), self.n.next_deadline()) if d is not None]
            if not dls or min(dls) > end:
                break
            self.now = max(self.now, min(dls))
            self.u.handle_timers(self.now)
            self.n.handle_timers(self.now)
            self.pump()
        self.now = end
        self.pump()

    def up(self) -> None:
        self.u.start(self.now)
        self.n.start(self.now)
        self.pump()
        assert self.u.state is LinkState.MULTIFRAME_ESTABLISHED
        assert self.n.state is LinkState.MULTIFRAME_ESTABLISHED


def data(link: DataLink) -> list[bytes]:
    return [e.data for e in link.events() if isinstance(e, DataIndication)]


def test_frame_codec_roundtrip() -> None:
    for role in Role:
        peer = Role.USER if role is Role.NETWORK else Role.NETWORK
        for kind, command in (("SABME", True), ("DISC", True), ("UA", False), ("DM", False)):
            for pf in (False, True):
                f = decode_frame(encode_frame(role, command, kind, pf), role)
                assert (f.kind, f.command, f.pf, f.sapi, f.tei) == (kind, command, pf, 0, 0)
        for kind in ("RR", "RNR", "REJ"):
            for nr in (0, 1, 64, 127):
                f = decode_frame(encode_frame(role, False, kind, True, nr=nr), role)
                assert (f.kind, f.nr, f.command, f.pf) == (kind, nr, False, True)
        f = decode_frame(encode_frame(role, True, "I", False, 127, 5, b"\x08\x02"), role)
        assert (f.kind, f.ns, f.nr, f.info, f.command) == ("I", 127, 5, b"\x08\x02", True)
        assert peer is not role


def test_known_octets() -> None:
    # SABME P=1 from the user side (C/R=0 for a user command): 00 01 7F; UA F=1 from the network: 00 01 73.
    assert encode_frame(Role.USER, True, "SABME", True) == bytes.fromhex("00017f")
    assert encode_frame(Role.NETWORK, False, "UA", True) == bytes.fromhex("000173")
    assert encode_frame(Role.NETWORK, True, "SABME", True) == bytes.fromhex("02017f")
    assert encode_frame(Role.USER, False, "RR", False, nr=3) == bytes.fromhex("02010106")


@pytest.mark.parametrize(
    "raw",
    ["", "00", "0001", "0100ff", "000101", "0001010203", "0001ff", "00016f00", "000100"],
)
def test_bad_frames_rejected(raw: str) -> None:
    frame = bytes.fromhex(raw)
    if len(frame) == 4 and frame[2] == 0:  # a valid I frame with empty info: fine
        decode_frame(frame, Role.NETWORK)
        return
    with pytest.raises(FrameError):
        decode_frame(frame, Role.NETWORK)


def test_establish_from_either_side_and_collision() -> None:
    for first in ("u", "n", "both"):
        w = Wire()
        if first in ("u", "both"):
            w.u.start(0.0)
        if first in ("n", "both"):
            w.n.start(0.0)
        w.pump()
        assert w.u.state is LinkState.MULTIFRAME_ESTABLISHED, first
        assert w.n.state is LinkState.MULTIFRAME_ESTABLISHED, first
        assert w.u.events() == [LinkUp()] and w.n.events() == [LinkUp()]


def test_in_order_delivery_window_and_wrap() -> None:
    w = Wire()
    w.up()
    msgs = [bytes([i % 256, i // 256]) for i in range(300)]  # wraps modulo 128 twice
    w.filter = None
    for m in msgs:
        w.u.send(m, w.now)
        assert (w.u.vs - w.u.va) % 128 <= 7
    w.pump()
    assert data(w.n) == msgs
    assert w.u.vs == 300 % 128 and w.n.vr == 300 % 128 and w.u.va == w.u.vs
    # Window k = 7: with the peer silent, only 7 I frames go out.
    w.lost = {w.n}
    mark = len(w.log)
    for m in msgs[:10]:
        w.u.send(m, w.now)
    w.pump()
    sent = [f for tag, f in w.log[mark:] if tag == "u>n" and f[2] & 1 == 0]
    assert len(sent) == 7


def test_lost_i_frame_recovered_by_reject() -> None:
    w = Wire()
    w.up()
    dropped = []

    def drop_second_i(dst, f) -> bool:
        if dst is w.n and f[2] & 1 == 0 and f[2] >> 1 == 1 and not dropped:
            dropped.append(f)
            return False
        return True

    w.filter = drop_second_i
    for i in range(5):
        w.u.send(bytes([i]), w.now)
    w.pump()
    w.advance(3.0)
    assert dropped
    assert data(w.n) == [bytes([i]) for i in range(5)]
    assert w.u.counters["retransmissions"] >= 1
    assert any(tag == "n>u" and f[2] == 0x09 for tag, f in w.log)  # REJ


def test_lost_acknowledgement_recovered_by_t200_enquiry() -> None:
    w = Wire()
    w.up()
    w.lost = {w.u}  # everything towards the user side is lost for a moment
    w.u.send(b"a", w.now)
    w.pump()
    w.lost = set()
    w.advance(1.5)  # T200: RR command P=1, answered with RR F=1 acknowledging
    assert data(w.n) == [b"a"]
    assert w.u.va == w.u.vs == 1 and w.u.state is LinkState.MULTIFRAME_ESTABLISHED


def test_t203_idle_enquiry_keeps_link() -> None:
    w = Wire()
    w.up()
    w.advance(100.0)
    polls = [f for tag, f in w.log if f[2] == 0x01 and f[3] & 1]
    assert len(polls) >= 9
    assert w.u.state is LinkState.MULTIFRAME_ESTABLISHED and w.n.state is LinkState.MULTIFRAME_ESTABLISHED
    assert w.u.events() == [LinkUp()]


def test_peer_silent_link_loss_then_reestablishment() -> None:
    w = Wire()
    w.up()
    w.u.events()
    w.lost = {w.u, w.n}
    w.advance(13.5)  # T203 10 s, enquiry; N200 = 3 more, T200 = 1 s apart: still trying
    assert w.u.events() == [] and w.u.state is LinkState.TIMER_RECOVERY
    w.advance(1.0)  # the N200th T200 expiry: link error, re-establishment attempt
    ev = w.u.events()
    assert [type(e) for e in ev] == [LinkDown]
    assert w.u.state in (LinkState.AWAITING_ESTABLISHMENT, LinkState.TEI_ASSIGNED)
    w.advance(30.0)
    assert w.u.counters["frames_out"] > 10  # keeps trying
    w.lost = set()
    w.advance(10.0)
    assert w.u.state is LinkState.MULTIFRAME_ESTABLISHED and w.n.state is LinkState.MULTIFRAME_ESTABLISHED
    assert [type(e) for e in w.u.events()] == [LinkUp]


def test_peer_disc_and_dm() -> None:
    w = Wire()
    w.up()
    w.u.events()
    w.n.stop(w.now)
    w.pump()
    assert w.n.state is LinkState.TEI_ASSIGNED
    assert w.u.events()[0] == LinkDown("peer released the link")
    # A released link answers DISC with DM; the user side (PRI links stay up) asks again after T200 and
    # the released peer accepts the SABME.
    w.n.receive_frame(encode_frame(Role.USER, True, "DISC", True), w.now)
    assert w.n.frames_to_send() == [encode_frame(Role.NETWORK, False, "DM", True)]
    w.advance(1.5)
    assert w.u.state is LinkState.MULTIFRAME_ESTABLISHED and w.n.state is LinkState.MULTIFRAME_ESTABLISHED
    assert w.u.events() == [LinkUp()]


def test_sabme_while_established_resets_link() -> None:
    w = Wire()
    w.up()
    w.u.events()
    w.u.send(b"x", w.now)
    w.pump()
    w.n.receive_frame(encode_frame(Role.USER, True, "SABME", True), w.now)
    w.pump()
    assert w.n.events()[-1] == LinkUp(reestablished=True)
    assert w.n.vs == w.n.vr == w.n.va == 0


def test_nr_error_and_frmr_reestablish() -> None:
    w = Wire()
    w.up()
    w.u.events()
    w.u.receive_frame(encode_frame(Role.NETWORK, False, "RR", False, nr=50), w.now)  # N(R) not sent yet
    assert w.u.state is LinkState.AWAITING_ESTABLISHMENT
    w.pump()
    assert w.u.state is LinkState.MULTIFRAME_ESTABLISHED
    assert [type(e) for e in w.u.events()] == [LinkDown, LinkUp]
    w.u.receive_frame(encode_frame(Role.NETWORK, False, "FRMR", False, info=b"\x00\x00\x00\x00\x00"), w.now)
    w.pump()
    assert w.u.state is LinkState.MULTIFRAME_ESTABLISHED
    assert w.u.counters["reestablishments"] == 2


def test_rnr_holds_transmission() -> None:
    w = Wire()
    w.up()
    w.u.receive_frame(encode_frame(Role.NETWORK, False, "RNR", False, nr=0), w.now)
    w.u.send(b"held", w.now)
    assert not [f for f in w.u.frames_to_send() if f[2] & 1 == 0]
    w.u.receive_frame(encode_frame(Role.NETWORK, False, "RR", False, nr=0), w.now)
    out = w.u.frames_to_send()
    assert [f[4:] for f in out if f[2] & 1 == 0] == [b"held"]


def test_garbage_never_breaks_the_link() -> None:
    w = Wire()
    w.up()
    for junk in (b"", b"\xff", b"\x00\x01", b"\x00\x01\xff\xff", b"\xfc\x01\x03", b"\x00\xff\x01\x00"):
        w.u.receive_frame(junk, w.now)
    assert w.u.counters["bad_frames"] >= 4
    w.u.send(b"ok", w.now)
    w.pump()
    assert data(w.n) == [b"ok"]


def test_wrong_sapi_tei_ignored() -> None:
    w = Wire()
    w.up()
    frame = bytearray(encode_frame(Role.NETWORK, True, "I", False, 0, 0, b"zz"))
    frame[0] = 63 << 2 | 2  # SAPI 63 (TEI management)
    w.u.receive_frame(bytes(frame), w.now)
    frame[0], frame[1] = 2, 127 << 1 | 1  # broadcast TEI
    w.u.receive_frame(bytes(frame), w.now)
    assert data(w.u) == [] and w.u.vr == 0


@pytest.mark.parametrize(
    "bad",
    [
        "0201" + "0000" + "aa" * 261,  # I frame over N201
        "0201" + "010001",  # S frame with an information field
        "0201" + "0d00",  # undefined S control field
        "0201" + "ef",  # undefined U control field
        "0201" + "4300",  # DISC with an information field
    ],
)
def test_frame_rejection_condition_reestablishes(bad: str) -> None:
    w = Wire()
    w.up()
    w.u.events()
    w.u.receive_frame(bytes.fromhex(bad), w.now)
    assert w.u.state is LinkState.AWAITING_ESTABLISHMENT  # §5.8.5: MDL-ERROR, re-establishment
    w.pump()
    assert [type(e) for e in w.u.events()] == [LinkDown, LinkUp]
    # The same octets for another TEI are just discarded.
    frame = bytearray(bytes.fromhex(bad))
    frame[1] = 5 << 1 | 1
    w.u.receive_frame(bytes(frame), w.now)
    assert w.u.state is LinkState.MULTIFRAME_ESTABLISHED
