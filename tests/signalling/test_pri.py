"""PRI span (Q.931 over Q.921) with bytes and a fake time alone: our user side against our network side,
and a raw Q.921 end that sends hand-made Q.931 messages for the §5.8 error procedures."""

from __future__ import annotations

import pytest

from firmware.signalling import events as ev
from firmware.signalling.pri import E1_BCHANNELS, PriSpan
from firmware.signalling.q921 import DataIndication, DataLink, Role
from firmware.signalling.q931.codec import (
    MT,
    BearerCapability,
    CalledNumber,
    CallState,
    CauseIE,
    ChannelId,
    Message,
    RestartIndicator,
    decode_message,
    encode_message,
)
from firmware.signalling.q931.state import (
    CLEARING_STATES,
    TRANSITIONS,
    CallStateMachine,
    LocalProtocolError,
    Party,
    RemoteProtocolError,
)
from firmware.signalling.q931.state import CallState as S

from .harness import Pair


@pytest.fixture
def pair() -> Pair:
    p = Pair()
    p.up()
    p.take(p.user)
    p.take(p.net)
    return p


def establish(p: Pair, caller, callee, **kw) -> tuple[int, int]:
    cid = caller.place_call("4001", p.now, calling="13800138000", **kw)
    p.pump()
    (inc,) = p.take(callee, ev.IncomingCall)
    callee.proceeding(inc.call_id, p.now)
    callee.alert(inc.call_id, p.now)
    callee.answer(inc.call_id, p.now)
    p.pump()
    assert [type(e) for e in p.take(caller)] == [ev.CallProceeding, ev.Alerting, ev.Connected]
    assert p.take(callee) == [ev.Connected(inc.call_id, None)]
    return cid, inc.call_id


# ---- the tables themselves ------------------------------------------------------------------------------


def test_every_table_transition() -> None:
    for state, row in TRANSITIONS.items():
        for (sender, mt), new in row.items():
            for us in Party:
                m = CallStateMachine(us)
                m.state = state
                assert m.apply(sender, mt) is new


def test_illegal_messages_say_whose_fault() -> None:
    m = CallStateMachine(Party.USER)
    with pytest.raises(LocalProtocolError):
        m.apply(Party.USER, MT.CONNECT)  # we may not answer a call that does not exist
    with pytest.raises(RemoteProtocolError):
        m.apply(Party.NETWORK, MT.ALERTING)
    m.state = S.ACTIVE
    with pytest.raises(RemoteProtocolError):
        m.apply(Party.NETWORK, MT.SETUP_ACKNOWLEDGE)
    for st in CLEARING_STATES:
        m.state = st
        assert m.next_state(Party.NETWORK, MT.RELEASE_COMPLETE) is S.NULL


# ---- calls both ways, clearing both ways ------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["user->net", "net->user"])
@pytest.mark.parametrize("clearer", ["caller", "callee"])
def test_call_and_clear(pair: Pair, direction: str, clearer: str) -> None:
    caller, callee = (pair.user, pair.net) if direction == "user->net" else (pair.net, pair.user)
    a, b = establish(pair, caller, callee)
    assert caller.by_id[a].state is S.ACTIVE and callee.by_id[b].state is S.ACTIVE
    ch = caller.by_id[a].channel
    assert callee.by_id[b].channel == ch
    side, cid, other, oid = (caller, a, callee, b) if clearer == "caller" else (callee, b, caller, a)
    side.hangup(cid, pair.now, 16)
    pair.pump()
    assert pair.take(side) == [ev.Released(cid, 16)]
    assert pair.take(other) == [ev.Disconnected(oid, 16, False), ev.Released(oid, 16)]
    assert caller.owner[ch] is None and callee.owner[ch] is None
    pair.check()


@pytest.mark.parametrize("cause", [17, 21, 34, 44, 28, 1, 31, 41])
def test_refusals_carry_cause(pair: Pair, cause: int) -> None:
    cid = pair.user.place_call("123", pair.now)
    pair.pump()
    (inc,) = pair.take(pair.net, ev.IncomingCall)
    pair.net.hangup(inc.call_id, pair.now, cause)
    pair.pump()
    assert pair.take(pair.user) == [ev.Released(cid, cause)]
    assert pair.take(pair.net) == [ev.Released(inc.call_id, cause)]
    pair.check()


def test_inband_disconnect_waits_for_hangup(pair: Pair) -> None:
    # A network DISCONNECT with progress 8 (busy tone in band): the user side keeps the call until told.
    cid = pair.user.place_call("123", pair.now)
    pair.pump()
    (inc,) = pair.take(pair.net, ev.IncomingCall)
    pair.net.proceeding(inc.call_id, pair.now)
    pair.pump()
    pair.take(pair.user)
    call = pair.net.by_id[inc.call_id]
    from firmware.signalling.q931.codec import ProgressIndicator

    pair.net._send(call, MT.DISCONNECT, [CauseIE(17, 2), ProgressIndicator(8, 2)], pair.now)
    pair.pump()
    assert pair.take(pair.user, ev.Disconnected) == [ev.Disconnected(cid, 17, True)]
    assert pair.user.by_id[cid].state is S.DISCONNECT_INDICATION
    pair.user.hangup(cid, pair.now)
    pair.pump()
    assert pair.take(pair.user) == [ev.Released(cid, 17)]


def test_inband_disconnect_released_by_guard_without_hangup(pair: Pair) -> None:
    from firmware.signalling.q931.codec import ProgressIndicator

    pair.net.timers["T305"] = 1e6  # a network that would wait for ever
    cid = pair.user.place_call("123", pair.now)
    pair.pump()
    (inc,) = pair.take(pair.net, ev.IncomingCall)
    pair.net.proceeding(inc.call_id, pair.now)
    pair.pump()
    pair.take(pair.user)
    pair.net._send(
        pair.net.by_id[inc.call_id], MT.DISCONNECT, [CauseIE(34, 2), ProgressIndicator(8, 2)], pair.now
    )
    pair.pump()
    pair.advance(34.0)
    assert pair.take(pair.user) == [ev.Disconnected(cid, 34, True)]
    pair.advance(2.0)
    assert pair.take(pair.user) == [ev.Released(cid, 34)]
    pair.check()


def test_overlap_both_directions(pair: Pair) -> None:
    for caller, callee in ((pair.user, pair.net), (pair.net, pair.user)):
        cid = caller.place_call("0", pair.now, sending_complete=False)
        pair.pump()
        (inc,) = pair.take(callee, ev.IncomingCall)
        assert not inc.sending_complete
        callee.setup_ack(inc.call_id, pair.now)
        pair.pump()
        assert [type(e) for e in pair.take(caller)] == [ev.SetupAcknowledged]
        assert caller.by_id[cid].state in (S.OVERLAP_SENDING, S.OVERLAP_RECEIVING)
        caller.send_digits(cid, "10", pair.now)
        caller.send_digits(cid, "086", pair.now, complete=True)
        pair.pump()
        assert pair.take(callee) == [
            ev.DigitsReceived(inc.call_id, "10", False),
            ev.DigitsReceived(inc.call_id, "086", True),
        ]
        callee.answer(inc.call_id, pair.now)
        pair.pump()
        assert [type(e) for e in pair.take(caller)] == [ev.Connected]
        caller.hangup(cid, pair.now)
        pair.pump()
        pair.take(caller)
        pair.take(callee)
    pair.check()


# ---- channels --------------------------------------------------------------------------------------------


def test_span_full_and_cause_34(pair: Pair) -> None:
    ids = [establish(pair, pair.user, pair.net) for _ in range(30)]
    assert all(c is not None for c in pair.user.owner.values())
    assert sorted(pair.user.by_id[a].channel for a, _ in ids) == list(E1_BCHANNELS)
    cid = pair.user.place_call("1", pair.now)
    pair.pump()
    assert pair.take(pair.user) == [ev.Released(cid, 34)]
    cid = pair.net.place_call("1", pair.now)
    assert pair.net.events() == [ev.Released(cid, 34)]
    pair.check()


def test_requested_channel_busy_exclusive_44_preferred_moves() -> None:
    raw = RawEnd(Party.NETWORK)
    raw.setup(76, channel=5)
    (first,) = raw.span.events()
    assert first.channel == 5
    raw.setup(77, channel=5, exclusive=True)
    assert [(m.type, cause_of(m)) for m in raw.replies()] == [(MT.RELEASE_COMPLETE, 44)]
    raw.setup(78, channel=5, exclusive=False)
    assert raw.replies() == []  # nothing sent until call control acts
    (inc,) = raw.span.events()
    assert inc.channel not in (5, None)
    raw.span.proceeding(inc.call_id, raw.now)
    raw.pump()
    (cp,) = raw.replies()
    assert cp.type == MT.CALL_PROCEEDING and cp.get(ChannelId) == ChannelId(inc.channel, exclusive=True)
    raw.span.check_invariants()


def test_glare_network_wins(pair: Pair) -> None:
    # Both sides pick channel 31 at the same moment (frames cross on the wire).
    ucid = pair.user.place_call("1", pair.now, channel=31, exclusive=False)
    ncid = pair.net.place_call("2", pair.now, channel=31)
    pair.pump()
    (inc_u,) = pair.take(pair.user, ev.IncomingCall)
    assert inc_u.channel == 31  # the network's call took the channel
    (inc_n,) = pair.take(pair.net, ev.IncomingCall)
    assert inc_n.channel != 31  # the user's preferred channel was busy: another one
    pair.net.proceeding(inc_n.call_id, pair.now)
    pair.user.proceeding(inc_u.call_id, pair.now)
    pair.pump()
    assert pair.take(pair.user, ev.CallProceeding) == [ev.CallProceeding(ucid, inc_n.channel)]
    assert pair.take(pair.net, ev.CallProceeding) == [ev.CallProceeding(ncid, 31)]
    assert pair.user.by_id[ucid].channel == inc_n.channel
    pair.check()


def test_glare_exclusive_user_call_refused_44(pair: Pair) -> None:
    ucid = pair.user.place_call("1", pair.now, channel=31, exclusive=True)
    pair.net.place_call("2", pair.now, channel=31)
    pair.pump()
    assert ev.Released(ucid, 44) in pair.take(pair.user, ev.Released)
    pair.check()


def test_restart_channel_and_interface(pair: Pair) -> None:
    a, b = establish(pair, pair.user, pair.net, channel=3)
    pair.net.restart(pair.now, 3)
    pair.pump()
    assert pair.take(pair.net) == [ev.Released(b, 41), ev.RestartCompleted((3,), True)]
    assert pair.take(pair.user) == [ev.Released(a, 41), ev.ChannelsRestarted((3,))]
    establish(pair, pair.net, pair.user)
    pair.user.restart(pair.now)
    pair.pump()
    assert pair.take(pair.user, ev.RestartCompleted) == [ev.RestartCompleted(E1_BCHANNELS, True)]
    assert pair.take(pair.net, ev.ChannelsRestarted) == [ev.ChannelsRestarted(E1_BCHANNELS)]
    assert not pair.user.by_id and not pair.net.by_id
    pair.check()


def test_restart_blocks_channel_until_acknowledged(pair: Pair) -> None:
    pair.drop_to = {pair.net}
    pair.user.restart(pair.now, 1)
    pair.pump()
    cid = pair.user.place_call("1", pair.now, channel=1)
    assert pair.user.events() == [ev.Released(cid, 44)]
    pair.drop_to = set()
    pair.advance(125.0)  # T316: the RESTART goes again, now answered
    assert pair.take(pair.user, ev.RestartCompleted) == [ev.RestartCompleted((1,), True)]
    assert 1 not in pair.user.maintenance


def test_restart_given_up_after_n316(pair: Pair) -> None:
    pair.drop_to = {pair.net}
    pair.user.restart(pair.now, 2)
    pair.advance(500.0)
    assert pair.take(pair.user, ev.RestartCompleted) == [ev.RestartCompleted((2,), False)]
    assert 2 not in pair.user.maintenance


# ---- timers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["user", "net"])
def test_t303_setup_repeated_once_then_102(pair: Pair, side: str) -> None:
    caller = pair.user if side == "user" else pair.net
    other = pair.net if side == "user" else pair.user
    pair.deaf = {other}
    cid = caller.place_call("1", pair.now)
    pair.advance(4.1)
    assert caller.by_id[cid].state in (S.CALL_INITIATED, S.CALL_PRESENT)
    pair.advance(4.0)
    assert pair.take(caller) == [ev.Released(cid, 102)]
    assert all(c is None for c in caller.owner.values())


def test_t310_user_side(pair: Pair) -> None:
    cid = pair.user.place_call("1", pair.now)
    pair.pump()
    (inc,) = pair.take(pair.net, ev.IncomingCall)
    pair.net.proceeding(inc.call_id, pair.now)
    pair.pump()
    pair.advance(30.5)
    assert ev.Released(cid, 102) in pair.take(pair.user)
    assert ev.Disconnected(inc.call_id, 102, False) in pair.take(pair.net)


def test_t313_user_answer_not_acknowledged(pair: Pair) -> None:
    pair.net.timers["T303"] = 1e6  # the deaf network side must not give up on its own first
    pair.net.place_call("1", pair.now)
    pair.pump()
    (inc,) = pair.take(pair.user, ev.IncomingCall)
    pair.deaf = {pair.net}
    pair.user.answer(inc.call_id, pair.now)
    pair.pump()
    assert pair.user.by_id[inc.call_id].state is S.CONNECT_REQUEST
    pair.advance(4.1)  # T313: DISCONNECT 102, then T305 30 s, RELEASE, T308 twice, channel restarted
    assert pair.user.by_id[inc.call_id].state is S.DISCONNECT_REQUEST
    pair.advance(30.0)
    assert pair.user.by_id[inc.call_id].state is S.RELEASE_REQUEST
    pair.advance(8.1)
    assert pair.take(pair.user, ev.Released) == [ev.Released(inc.call_id, 102)]
    ch = inc.channel
    assert ch in pair.user.maintenance  # T308 twice: channel restarted before reuse
    pair.deaf = set()
    pair.advance(125.0)
    assert ch not in pair.user.maintenance
    pair.check()


def test_t305_network_side(pair: Pair) -> None:
    a, b = establish(pair, pair.user, pair.net)
    pair.deaf = {pair.user}
    pair.net.hangup(b, pair.now, 16)
    pair.pump()
    assert pair.net.by_id[b].state is S.DISCONNECT_INDICATION
    pair.advance(30.1)
    assert pair.net.by_id[b].state is S.RELEASE_REQUEST


def test_t309_active_call_survives_short_link_loss(pair: Pair) -> None:
    a, b = establish(pair, pair.user, pair.net)
    ringing = pair.user.place_call("9", pair.now)
    pair.pump()
    pair.take(pair.user)
    pair.take(pair.net)
    pair.drop_to = {pair.user, pair.net}
    got: list = []
    while ev.LinkDown not in [type(e) for e in got]:
        pair.advance(0.25)  # unacknowledged I frames / T203, then N200 enquiries: the link fails
        got += pair.take(pair.user)
        assert pair.now < 20
    assert ev.Released(ringing, 41) in got  # calls not yet active go with the link
    assert a in pair.user.by_id and pair.user.by_id[a].t309_at is not None  # the active one waits T309
    pair.drop_to = set()
    pair.advance(3.0)
    assert pair.user.link_up and a in pair.user.by_id and b in pair.net.by_id
    assert pair.user.by_id[a].t309_at is None
    pair.check()


def test_t309_expiry_clears_active_call(pair: Pair) -> None:
    a, b = establish(pair, pair.user, pair.net)
    pair.drop_to = {pair.user, pair.net}
    pair.advance(14.5 + 6.5)
    assert ev.Released(a, 41) in pair.take(pair.user)
    assert not pair.user.by_id
    pair.check()


# ---- §5.8 error procedures, against a raw Q.921 end -----------------------------------------------------


class RawEnd:
    """Our span (`span`, playing the other side of `raw_party`) and a bare data link sending raw messages."""

    def __init__(self, raw_party: Party) -> None:
        self.now = 0.0
        ours = Party.USER if raw_party is Party.NETWORK else Party.NETWORK
        self.span = PriSpan(ours, name="dut")
        self.link = DataLink(Role.NETWORK if raw_party is Party.NETWORK else Role.USER)
        self.span.start(self.now)
        self.link.start(self.now)
        self._got: list[Message] = []
        self.pump()
        self.span.events()

    def pump(self) -> None:
        for _ in range(1000):
            a = self.span.frames_to_send()
            b = self.link.frames_to_send()
            for f in a:
                self.link.receive_frame(f, self.now)
            for f in b:
                self.span.receive_frame(f, self.now)
            for e in self.link.events():
                if isinstance(e, DataIndication):
                    self._got.append(decode_message(e.data))
            if not a and not b:
                return

    def send(self, raw: bytes) -> None:
        self.link.send(raw, self.now)
        self.pump()

    def msg(self, mt: int, cr: int, ies: list, from_originator: bool = True) -> None:
        self.send(encode_message(Message(mt, cr, from_originator, ies)))

    def setup(
        self, cr: int, channel: int | None = 1, exclusive: bool = True, extra: list | None = None
    ) -> None:
        ies: list = [BearerCapability()]
        if channel is not None:
            ies.append(ChannelId(channel, exclusive))
        ies.append(CalledNumber("4001", 0, 1))
        self.msg(MT.SETUP, cr, ies + (extra or []))

    def replies(self) -> list[Message]:
        out, self._got = self._got, []
        return out


def cause_of(m: Message) -> int | None:
    c = m.get(CauseIE)
    return None if c is None else c.value


@pytest.fixture(params=[Party.NETWORK, Party.USER], ids=["raw-net", "raw-user"])
def raw(request) -> RawEnd:
    return RawEnd(request.param)


def test_unknown_call_reference(raw: RawEnd) -> None:
    raw.msg(MT.ALERTING, 99, [])
    (r,) = raw.replies()
    assert (r.type, cause_of(r), r.call_ref, r.from_originator) == (MT.RELEASE_COMPLETE, 81, 99, False)
    raw.msg(MT.RELEASE, 98, [CauseIE(16)])
    assert [(m.type, cause_of(m)) for m in raw.replies()] == [(MT.RELEASE_COMPLETE, 81)]
    raw.msg(MT.RELEASE_COMPLETE, 97, [])
    assert raw.replies() == []
    raw.msg(MT.STATUS_ENQUIRY, 96, [])
    (r,) = raw.replies()
    assert r.type == MT.STATUS and cause_of(r) == 30 and r.get(CallState) == CallState(0)
    raw.msg(MT.STATUS, 95, [CauseIE(30), CallState(10)])
    assert [(m.type, cause_of(m)) for m in raw.replies()] == [(MT.RELEASE_COMPLETE, 101)]
    raw.msg(MT.STATUS, 94, [CauseIE(30), CallState(0)])
    assert raw.replies() == []


def test_setup_mandatory_ie_missing_or_bad(raw: RawEnd) -> None:
    raw.msg(MT.SETUP, 10, [ChannelId(1), CalledNumber("1")])  # no bearer capability
    assert [(m.type, cause_of(m)) for m in raw.replies()] == [(MT.RELEASE_COMPLETE, 96)]
    raw.send(bytes.fromhex("0802000b05" + "0403e090a3" + "1803a98381"))  # bearer not ITU-T coded
    assert [(m.type, cause_of(m)) for m in raw.replies()] == [(MT.RELEASE_COMPLETE, 100)]
    raw.send(bytes.fromhex("0802000c05" + "04038090a3" + "1803a98381" + "0b0100"))  # comprehension required
    assert [(m.type, cause_of(m)) for m in raw.replies()] == [(MT.RELEASE_COMPLETE, 96)]
    raw.setup(13, extra=[BearerCapability(transfer=0x08, layer1=None)])  # repeated: first one counts
    assert raw.replies() == []
    raw.msg(MT.SETUP, 14, [BearerCapability(transfer=0x08, layer1=None), ChannelId(2)])
    assert [(m.type, cause_of(m)) for m in raw.replies()] == [(MT.RELEASE_COMPLETE, 65)]
    raw.setup(15, channel=16)
    assert [(m.type, cause_of(m)) for m in raw.replies()][0][0] == MT.RELEASE_COMPLETE
    assert not raw.span.calls or all(c.channel != 16 for c in raw.span.by_id.values())
    raw.span.check_invariants()


def test_unrecognized_ie_status_99_and_call_continues(raw: RawEnd) -> None:
    raw.send(bytes.fromhex("0802001405" + "04038090a3" + "1803a98381" + "7b0100"))
    (r,) = raw.replies()
    assert (r.type, cause_of(r)) == (MT.STATUS, 99)
    assert [type(e) for e in raw.span.events()] == [ev.IncomingCall]


def test_out_of_state_message_status_101(raw: RawEnd) -> None:
    raw.setup(20)
    (inc,) = raw.span.events()
    raw.msg(MT.CONNECT_ACKNOWLEDGE, 20, [])  # CONNECT ACK before any CONNECT: ignored
    assert raw.replies() == []
    raw.msg(MT.SETUP_ACKNOWLEDGE, 20, [])  # nonsense for the originator to send
    (r,) = raw.replies()
    state = 6 if raw.span.role is Party.USER else 1  # U6 call present / N1 call initiated
    assert (r.type, cause_of(r), r.get(CallState)) == (MT.STATUS, 101, CallState(state))
    raw.msg(0x7F, 20, [])  # message type that does not exist
    (r,) = raw.replies()
    assert (r.type, cause_of(r)) == (MT.STATUS, 97)
    raw.msg(MT.STATUS_ENQUIRY, 20, [])
    (r,) = raw.replies()
    assert (r.type, cause_of(r), r.get(CallState)) == (MT.STATUS, 30, CallState(state))
    raw.msg(MT.SETUP, 20, [BearerCapability(), ChannelId(1)])  # repeated SETUP: ignored
    assert raw.replies() == []
    raw.msg(MT.DISCONNECT, 20, [])  # DISCONNECT without cause: released with cause 96
    msgs = raw.replies()
    assert [(m.type, cause_of(m)) for m in msgs] == [(MT.RELEASE, 96)]
    raw.msg(MT.RELEASE_COMPLETE, 20, [])
    assert raw.span.events() == [ev.Disconnected(inc.call_id, 31, False), ev.Released(inc.call_id, 31)]
    raw.span.check_invariants()
    assert not raw.span.calls


def test_status_null_releases_call(raw: RawEnd) -> None:
    raw.setup(21, channel=7)
    (inc,) = raw.span.events()
    raw.msg(MT.STATUS, 21, [CauseIE(98), CallState(0)])
    assert raw.span.events() == [ev.Released(inc.call_id, 98)]
    assert raw.span.owner[7] is None


def test_restart_errors(raw: RawEnd) -> None:
    raw.msg(MT.RESTART, 0, [])  # no restart indicator
    (r,) = raw.replies()
    assert (r.type, cause_of(r)) == (MT.STATUS, 96)
    raw.msg(MT.RESTART, 0, [RestartIndicator(0)])  # indicated channels, but none indicated
    (r,) = raw.replies()
    assert (r.type, cause_of(r)) == (MT.STATUS, 96)
    raw.msg(MT.RESTART, 0, [ChannelId(4), RestartIndicator(0)])
    (r,) = raw.replies()
    assert r.type == MT.RESTART_ACKNOWLEDGE and r.get(ChannelId) == ChannelId(4) and not r.from_originator
    raw.msg(MT.RESTART_ACKNOWLEDGE, 0, [RestartIndicator(7)])  # unexpected: ignored
    assert raw.replies() == []
    raw.msg(MT.ALERTING, 0, [])  # call message on the global call reference: ignored
    assert raw.replies() == []


def test_garbage_messages_are_ignored(raw: RawEnd) -> None:
    for junk in (b"", b"\x00", b"\x08", b"\x09\x02\x00\x01\x05", b"\x08\x0f\x00", b"\x08\x02\x00\x01\xff"):
        raw.send(junk)
    assert raw.replies() == []
    assert raw.span.counters["ignored"] == 6
    raw.span.check_invariants()


def test_bad_command_arguments_change_nothing(pair: Pair) -> None:
    for kw in (
        {"called": "12\u00e9"},
        {"called": "1" * 40},
        {"called": "1", "calling": "x"},
        {"called": "1", "calling_ton": 9},
        {"called": "1", "transfer": 0x08},
    ):
        called = kw.pop("called")
        with pytest.raises(ValueError):
            pair.user.place_call(called, pair.now, **kw)
    assert not pair.user.by_id and pair.user.frames_to_send() == []
    a, b = establish(pair, pair.user, pair.net)
    with pytest.raises(ValueError):
        pair.user.hangup(a, pair.now, 300)
    with pytest.raises(LocalProtocolError):
        pair.user.answer(a, pair.now)  # our own outgoing call: nothing to answer
    with pytest.raises(LocalProtocolError):
        pair.user.proceeding(12345, pair.now)
    assert pair.user.by_id[a].state is S.ACTIVE
    pair.check()


def test_refused_command_keeps_first_answer_channel(pair: Pair) -> None:
    pair.net.place_call("1", pair.now, channel=9)
    pair.pump()
    (inc,) = pair.take(pair.user, ev.IncomingCall)
    with pytest.raises(LocalProtocolError):
        pair.user.send_digits(inc.call_id, "1", pair.now)  # not allowed in Call Present
    mark = len(pair.wire)
    pair.user.alert(inc.call_id, pair.now)
    pair.pump()
    assert pair.take(pair.net, ev.Alerting)
    sent = [decode_message(f[4:]) for dst, f in pair.wire[mark:] if dst is pair.net and f[2] & 1 == 0]
    assert [m.type for m in sent] == [MT.ALERTING] and sent[0].get(ChannelId) == ChannelId(9)
    assert pair.user.by_id[inc.call_id].confirmed and pair.net.owner[9] is not None


def test_t302_overlap_receiving_incomplete_number_28(pair: Pair) -> None:
    cid = pair.user.place_call("1", pair.now, sending_complete=False)
    pair.pump()
    (inc,) = pair.take(pair.net, ev.IncomingCall)
    pair.net.setup_ack(inc.call_id, pair.now)
    pair.pump()
    pair.advance(10.0)
    pair.user.send_digits(cid, "2", pair.now)  # each INFORMATION restarts T302 (and T304)
    pair.pump()
    pair.advance(10.0)
    assert inc.call_id in pair.net.by_id
    pair.advance(6.0)  # 15 s after the last digit: the number is incomplete
    assert ev.Released(inc.call_id, 28) in pair.take(pair.net)
    assert ev.Disconnected(cid, 28, False) in pair.take(pair.user)
    pair.check()


def test_t304_overlap_sending_gives_up(pair: Pair) -> None:
    pair.user.timers["T302"] = 1e6  # a patient network, to see the user's own T304
    pair.net.timers["T302"] = 1e6
    cid = pair.user.place_call("1", pair.now, sending_complete=False)
    pair.pump()
    (inc,) = pair.take(pair.net, ev.IncomingCall)
    pair.net.setup_ack(inc.call_id, pair.now)
    pair.pump()
    pair.advance(20.5)
    assert ev.Released(cid, 102) in pair.take(pair.user)
    assert ev.Disconnected(inc.call_id, 102, False) in pair.take(pair.net)


@pytest.mark.parametrize("callee_side", ["user", "net"])
def test_unanswered_incoming_setup_released_by_guard(pair: Pair, callee_side: str) -> None:
    caller, callee = (pair.net, pair.user) if callee_side == "user" else (pair.user, pair.net)
    caller.timers["T303"] = 1e6  # the caller waits for ever; our guard must not
    caller.place_call("1", pair.now)
    pair.pump()
    (inc,) = pair.take(callee, ev.IncomingCall)
    pair.advance(9.9)
    assert inc.call_id in callee.by_id
    pair.advance(0.2)
    assert pair.take(callee) == [ev.Released(inc.call_id, 102)]
    assert callee.owner[inc.channel] is None
    pair.check()


def test_progress_inband_before_answer(pair: Pair) -> None:
    cid = pair.user.place_call("1", pair.now)
    pair.pump()
    (inc,) = pair.take(pair.net, ev.IncomingCall)
    pair.net.proceeding(inc.call_id, pair.now)
    pair.net.progress(inc.call_id, pair.now)
    pair.pump()
    assert pair.take(pair.user) == [ev.CallProceeding(cid, inc.channel), ev.Progress(cid, 8)]
    with pytest.raises(ValueError):
        pair.net.progress(inc.call_id, pair.now, 200)


def test_status_diagnostics_name_the_problem(raw: RawEnd) -> None:
    raw.send(bytes.fromhex("0802001405" + "04038090a3" + "1803a98381" + "7b0100"))  # unknown IE 0x7b
    (r,) = raw.replies()
    assert r.get(CauseIE) == CauseIE(99, r.get(CauseIE).location, b"\x7b")
    raw.msg(MT.SETUP_ACKNOWLEDGE, 0x14, [])  # out of state: the message type is the diagnostic
    (r,) = raw.replies()
    assert (r.get(CauseIE).value, r.get(CauseIE).diagnostic) == (101, bytes([MT.SETUP_ACKNOWLEDGE]))
    raw.msg(MT.RESTART, 0, [RestartIndicator(0)])
    (r,) = raw.replies()
    assert (r.get(CauseIE).value, r.get(CauseIE).diagnostic) == (96, b"\x18")


def test_status_compatibility(raw: RawEnd) -> None:
    """§5.8.11: a STATUS whose state our own messages in flight explain is fine; another one clears (101)."""
    from firmware.signalling.q931.state import COMPATIBLE

    raw.setup(30, channel=3)
    (inc,) = raw.span.events()
    raw.span.proceeding(inc.call_id, raw.now)
    raw.span.alert(inc.call_id, raw.now)
    raw.pump()
    raw.replies()
    ours = raw.span.by_id[inc.call_id].state  # U7 / N4
    behind = 6 if raw.span.role is Party.USER else 1  # the peer has not seen our answers yet
    assert behind in COMPATIBLE[(raw.span.role.value, int(ours))]
    raw.msg(MT.STATUS, 30, [CauseIE(30), CallState(behind)])
    assert raw.replies() == [] and raw.span.by_id[inc.call_id].state is ours
    raw.msg(MT.STATUS, 30, [CauseIE(30), CallState(10)])  # the peer thinks the call is up: it is not
    (r,) = raw.replies()
    assert (r.type, cause_of(r)) == (MT.RELEASE, 101)
    raw.msg(MT.RELEASE_COMPLETE, 30, [])
    assert raw.span.events() == [ev.Released(inc.call_id, 101)]
    raw.span.check_invariants()
