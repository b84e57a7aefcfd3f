"""Interop with Debian's libpri 1.6 (EuroISDN E1) in both roles, on one virtual clock."""

from __future__ import annotations

import pytest

from firmware.signalling import events as ev
from firmware.signalling.pri import E1_BCHANNELS
from firmware.signalling.q931.state import Party

from .interop import Bench

pytestmark = pytest.mark.interop

ROLES = [Party.USER, Party.NETWORK]  # our side; libpri plays the other


def ids(role: Party) -> str:
    return "ourCPE-libpriNET" if role is Party.USER else "ourNET-libpriCPE"


@pytest.fixture(params=ROLES, ids=ids)
def bench(request) -> Bench:
    b = Bench(request.param)
    b.start()
    assert b.take(ev.LinkUp) == [ev.LinkUp()]
    assert [e.kind for e in b.peer_take("DCHAN_UP")] == ["DCHAN_UP"]
    return b


def test_dchannel_up_and_keepalive(bench: Bench) -> None:
    bench.advance(65.0)  # several T203 periods on both sides: enquiries answered, link stays up
    assert bench.ours.link_up
    assert bench.take(ev.LinkDown) == []
    assert bench.peer_take("DCHAN_DOWN") == []
    bench.ours.check_invariants()


def outgoing(b: Bench, called: str = "5551234", **kw):
    cid = b.ours.place_call(called, b.now, calling="88001234", **kw)
    b.pump()
    rings = b.peer_take("RING")
    assert len(rings) == 1
    return cid, rings[0]


def incoming(b: Bench, channel: int, called: str = "4001", exclusive: bool = True, complete: bool = True):
    call = b.do("place_call", called, channel, exclusive=exclusive, calling="13800138000", complete=complete)
    got = b.take(ev.IncomingCall)
    assert len(got) == 1, b.events
    return call, got[0]


@pytest.mark.parametrize("clearer", ["ours", "peer"])
def test_outgoing_answered_and_cleared(bench: Bench, clearer: str) -> None:
    cid, ring = outgoing(bench)
    assert ring.called == "5551234" and ring.calling == "88001234" and ring.complete
    ch = ring.channel
    assert ch in E1_BCHANNELS
    bench.do("proceeding", ring.call, ch)
    bench.do("alert", ring.call, ch, True)
    bench.do("answer", ring.call, ch)
    got = bench.take()
    assert [type(e) for e in got] == [ev.CallProceeding, ev.Alerting, ev.Connected]
    assert got[0].channel == ch and got[1].inband
    assert bench.ours.owner[ch] is not None
    if clearer == "ours":
        bench.ours.hangup(cid, bench.now, 16)
        bench.pump()
        assert [(e.kind, e.cause) for e in bench.peer_take("HANGUP_REQ", "HANGUP")][:1] == [
            ("HANGUP_REQ", 16)
        ]
        assert bench.take(ev.Released) == [ev.Released(cid, 16)]
    else:
        bench.do("hangup", ring.call, 16)
        assert bench.take() == [ev.Disconnected(cid, 16, False), ev.Released(cid, 16)]
    assert bench.ours.owner[ch] is None and not bench.ours.calls
    bench.ours.check_invariants()


@pytest.mark.parametrize("clearer", ["ours", "peer"])
def test_incoming_answered_and_cleared(bench: Bench, clearer: str) -> None:
    call, inc = incoming(bench, 7)
    assert inc.channel == 7 and inc.called.digits == "4001" and inc.calling.digits == "13800138000"
    assert inc.sending_complete
    bench.ours.proceeding(inc.call_id, bench.now)
    bench.ours.alert(inc.call_id, bench.now)
    bench.ours.answer(inc.call_id, bench.now)
    bench.pump()
    kinds = [e.kind for e in bench.peer_take("PROCEEDING", "RINGING", "ANSWER")]
    assert kinds == ["PROCEEDING", "RINGING", "ANSWER"]
    assert bench.take(ev.Connected) == [ev.Connected(inc.call_id, None)]
    if clearer == "ours":
        bench.ours.hangup(inc.call_id, bench.now, 16)
        bench.pump()
        assert bench.take(ev.Released) == [ev.Released(inc.call_id, 16)]
    else:
        bench.do("hangup", call, 16)
        assert bench.take() == [ev.Disconnected(inc.call_id, 16, False), ev.Released(inc.call_id, 16)]
    assert [e.cause for e in bench.peer_take("HANGUP", "HANGUP_REQ")][:1] == [16]
    assert all(c is None for c in bench.ours.owner.values())
    bench.ours.check_invariants()


def test_outgoing_rejected_busy(bench: Bench) -> None:
    # libpri sends nothing for a pri_hangup before any answer to the SETUP (the call is not yet "alive"
    # in libpri); chan_dahdi answers CALL PROCEEDING first, then clears with cause 17. So do we.
    cid, ring = outgoing(bench)
    bench.do("proceeding", ring.call, ring.channel)
    bench.do("hangup", ring.call, 17)
    assert bench.take() == [
        ev.CallProceeding(cid, ring.channel),
        ev.Disconnected(cid, 17, False),
        ev.Released(cid, 17),
    ]
    assert not bench.ours.calls and all(c is None for c in bench.ours.owner.values())


def test_incoming_rejected_busy(bench: Bench) -> None:
    call, inc = incoming(bench, 3)
    bench.ours.hangup(inc.call_id, bench.now, 17)
    bench.pump()
    assert [(e.kind, e.cause) for e in bench.peer_take("HANGUP")] == [("HANGUP", 17)]
    assert bench.take(ev.Released) == [ev.Released(inc.call_id, 17)]
    assert bench.ours.owner[3] is None


def test_outgoing_unanswered_caller_gives_up(bench: Bench) -> None:
    """Far end rings, nobody answers; call control's ring timer clears with cause 19 (no answer)."""
    cid, ring = outgoing(bench)
    bench.do("alert", ring.call, ring.channel)
    bench.advance(60.0)
    assert bench.take(ev.Alerting) and bench.ours.by_id[cid].state in (4, 7)  # U4 / N7: call delivered
    bench.ours.hangup(cid, bench.now, 19)
    bench.pump()
    assert [e.cause for e in bench.peer_take("HANGUP_REQ")] == [19]
    assert bench.take(ev.Released) == [ev.Released(cid, 19)]


def test_incoming_unanswered_peer_gives_up(bench: Bench) -> None:
    call, inc = incoming(bench, 9)
    bench.ours.alert(inc.call_id, bench.now)
    bench.pump()
    bench.advance(45.0)
    bench.do("hangup", call, 19)
    assert bench.take() == [ev.Disconnected(inc.call_id, 19, False), ev.Released(inc.call_id, 19)]
    assert bench.ours.owner[9] is None


def test_outgoing_no_response_t303(bench: Bench) -> None:
    """libpri's application never answers the SETUP: T303 twice, then cause 102, channel free."""
    cid, ring = outgoing(bench)
    bench.advance(3.9)
    assert bench.take(ev.Released) == []
    bench.advance(4.2)
    assert bench.take(ev.Released) == [ev.Released(cid, 102)]
    assert not bench.ours.calls and all(c is None for c in bench.ours.owner.values())


def test_incoming_no_response_peer_t303(bench: Bench) -> None:
    """We never answer libpri's SETUP: libpri sends it again after T303 (its own timer, on our virtual
    clock; we ignore the repeat), then gives up without a word (cause 18 to its application). Our own
    guard (TRESP, 10 s) releases the call reference and the channel; the RELEASE COMPLETE is harmless."""
    call, inc = incoming(bench, 11)
    bench.advance(9.0)
    assert [(e.kind, e.cause) for e in bench.peer_take("HANGUP")] == [("HANGUP", 18)]
    assert bench.take(ev.Released) == [] and bench.ours.owner[11] is not None
    bench.advance(2.0)
    assert bench.take(ev.Released) == [ev.Released(inc.call_id, 102)]
    assert bench.ours.owner[11] is None and not bench.ours.calls


def test_late_answer_after_peer_gave_up(bench: Bench) -> None:
    """Call control answers after libpri gave up: libpri answers RELEASE COMPLETE 81, we free the call."""
    call, inc = incoming(bench, 12)
    bench.advance(9.0)
    bench.ours.alert(inc.call_id, bench.now)
    bench.pump()
    assert bench.take(ev.Released) == [ev.Released(inc.call_id, 81)]
    assert bench.ours.owner[12] is None


def test_overlap_dialling_outgoing(request) -> None:
    for role in ROLES:
        b = Bench(role, overlap=True)
        b.start()
        b.take()
        cid = b.ours.place_call("55", b.now, calling="100", sending_complete=False)
        b.pump()
        (ring,) = b.peer_take("RING")
        assert ring.called == "55" and not ring.complete
        b.do("need_more_info", ring.call, ring.channel)
        assert b.take(ev.SetupAcknowledged) == [ev.SetupAcknowledged(cid, ring.channel)]
        b.ours.send_digits(cid, "51", b.now)
        b.ours.send_digits(cid, "234", b.now, complete=True)
        b.pump()
        infos = b.peer_take("INFO_RECEIVED")
        assert "".join(e.called for e in infos) == "51234" and infos[-1].complete
        b.do("proceeding", ring.call, ring.channel)
        b.do("answer", ring.call, ring.channel)
        assert [type(e) for e in b.take()] == [ev.CallProceeding, ev.Connected]
        b.ours.hangup(cid, b.now)
        b.pump()
        assert b.take(ev.Released) == [ev.Released(cid, 16)]


def test_overlap_dialling_incoming() -> None:
    for role in ROLES:
        b = Bench(role, overlap=True)
        b.start()
        call, inc = incoming(b, 20, called="8", complete=False)
        assert not inc.sending_complete and inc.called.digits == "8"
        b.ours.setup_ack(inc.call_id, b.now)
        b.pump()
        assert [e.kind for e in b.peer_take("SETUP_ACK")] == ["SETUP_ACK"]
        b.do("information", call, "001")
        digits = b.take(ev.DigitsReceived)
        assert "".join(d.digits for d in digits) == "001"
        b.ours.proceeding(inc.call_id, b.now)
        b.ours.answer(inc.call_id, b.now)
        b.pump()
        assert b.take(ev.Connected) == [ev.Connected(inc.call_id, None)]
        b.do("hangup", call, 16)
        assert b.take(ev.Released) == [ev.Released(inc.call_id, 16)]


def test_restart_one_channel_both_ways(bench: Bench) -> None:
    # A call on channel 5 is cleared by our RESTART of channel 5.
    call, inc = incoming(bench, 5)
    bench.ours.answer(inc.call_id, bench.now)
    bench.pump()
    bench.take()
    bench.ours.restart(bench.now, 5)
    bench.pump()
    assert bench.take(ev.Released) == [ev.Released(inc.call_id, 41)]
    assert bench.take(ev.RestartCompleted) == [ev.RestartCompleted((5,), True)]
    assert [e.channel for e in bench.peer_take("RESTART")] == [5]
    assert 5 not in bench.ours.maintenance and bench.ours.owner[5] is None
    # libpri restarts channel 9.
    bench.do("reset_channel", 9)
    assert bench.take(ev.ChannelsRestarted) == [ev.ChannelsRestarted((9,))]
    assert [e.channel for e in bench.peer_take("RESTART_ACK")] == [9]
    bench.ours.check_invariants()


def test_restart_interface_both_ways(bench: Bench) -> None:
    cid, ring = outgoing(bench)
    bench.do("answer", ring.call, ring.channel)
    bench.ours.restart(bench.now)
    bench.pump()
    assert ev.Released(cid, 41) in bench.take(ev.Released)
    assert bench.take(ev.RestartCompleted) == [ev.RestartCompleted(E1_BCHANNELS, True)]
    assert not bench.ours.maintenance
    # libpri 1.6 has no interface-class RESTART of its own (pri_restart() is a no-op since its Q.921
    # rewrite); chan_dahdi restarts a span channel by channel, and so does the peer here.
    cid, ring = outgoing(bench)
    bench.do("answer", ring.call, ring.channel)
    for ch in E1_BCHANNELS:
        bench.do("reset_channel", ch)
    assert bench.take(ev.ChannelsRestarted) == [ev.ChannelsRestarted((ch,)) for ch in E1_BCHANNELS]
    assert bench.take(ev.Released) == [ev.Released(cid, 41)]
    assert len(bench.peer_take("RESTART_ACK")) == 30
    assert all(c is None for c in bench.ours.owner.values())
    bench.ours.check_invariants()


def test_recovers_when_libpri_restarts_its_link(bench: Bench) -> None:
    cid, ring = outgoing(bench)
    bench.do("answer", ring.call, ring.channel)
    bench.take()
    bench.restart_peer()  # a brand-new libpri: SABME, and it knows no calls
    bench.advance(10.0)
    assert bench.ours.link_up
    assert [e.kind for e in bench.peer_take("DCHAN_UP")] == ["DCHAN_UP"]
    # Our STATUS ENQUIRY for the surviving call finds nothing on the far side: the call is released.
    assert bench.take(ev.Released) and not bench.ours.calls
    cid2, ring2 = outgoing(bench)
    bench.do("answer", ring2.call, ring2.channel)
    assert bench.take(ev.Connected)


def test_link_loss_clears_calls_and_comes_back(bench: Bench) -> None:
    cid, ring = outgoing(bench)
    bench.do("answer", ring.call, ring.channel)
    cid2, ring2 = outgoing(bench)  # left ringing
    bench.take()
    bench.cut = True
    bench.advance(60.0)
    got = bench.take()
    assert ev.LinkDown in [type(e) for e in got]
    assert {e.call_id for e in got if isinstance(e, ev.Released)} == {cid, cid2}
    assert all(c is None for c in bench.ours.owner.values())
    bench.cut = False
    bench.advance(15.0)
    assert bench.ours.link_up and bench.take(ev.LinkUp) == [ev.LinkUp()]


def test_span_alarm_blocks_channels(bench: Bench) -> None:
    cid, ring = outgoing(bench)
    bench.do("answer", ring.call, ring.channel)
    bench.take()
    bench.ours.alarm(bench.now)
    got = bench.take()
    assert ev.Released(cid, 41) in got and ev.LinkDown in [type(e) for e in got]
    refused = bench.ours.place_call("1", bench.now)
    bench.pump()
    assert bench.take(ev.Released) == [ev.Released(refused, 41)]
    bench.ours.start(bench.now)
    bench.advance(30.0)
    assert bench.ours.link_up


def test_thirty_calls_fill_the_span_and_31st_gets_34(bench: Bench) -> None:
    # Incoming: libpri offers 31 calls; 30 channels, the 31st is refused with cause 34.
    calls = []
    for ch in E1_BCHANNELS:
        call, inc = incoming(bench, ch)
        bench.ours.answer(inc.call_id, bench.now)
        calls.append((call, inc))
    bench.pump()
    assert len(bench.take(ev.Connected)) == 30
    assert all(c is not None for c in bench.ours.owner.values())
    extra = bench.do("place_call", "4001", 1, exclusive=False, calling="1")
    assert bench.take(ev.IncomingCall) == []
    hang = [e for e in bench.peer_take("HANGUP") if e.call == extra]
    assert [e.cause for e in hang] == [34]
    # Outgoing while full: refused locally with 34.
    refused = bench.ours.place_call("1", bench.now)
    bench.pump()
    assert bench.take(ev.Released) == [ev.Released(refused, 34)]
    bench.ours.check_invariants()
    for call, _inc in calls:
        bench.do("hangup", call, 16)
    assert len(bench.take(ev.Released)) == 30
    # Outgoing: we fill the span towards libpri.
    rings = []
    for _ in range(30):
        cid, ring = outgoing(bench)
        bench.do("answer", ring.call, ring.channel)
        rings.append(ring)
    assert sorted(r.channel for r in rings) == sorted(E1_BCHANNELS)
    cid31 = bench.ours.place_call("1", bench.now)
    bench.pump()
    assert bench.take(ev.Released) == [ev.Released(cid31, 34)]
    assert bench.peer_take("RING") == []
    bench.ours.check_invariants()


def test_glare_with_libpri(bench: Bench) -> None:
    """Both ends call on timeslot 31 at the same moment (the SETUPs cross on the wire). The network side's
    call keeps the channel; the user side's call moves to the channel the network names (§5.2.3.1)."""
    bench.peer.command(bench.now)
    ours_net = bench.ours.role is Party.NETWORK
    peer_call = bench.peer.place_call("4001", 31, exclusive=not ours_net, calling="1")
    cid = bench.ours.place_call("5551234", bench.now, channel=31, exclusive=ours_net)
    bench.pump()
    if ours_net:
        # libpri's (the user's) preferred channel was ours: we moved its call elsewhere.
        (inc,) = bench.take(ev.IncomingCall)
        assert inc.channel != 31
        bench.ours.proceeding(inc.call_id, bench.now)
        bench.pump()
        assert [e.channel for e in bench.peer_take("PROCEEDING")] == [inc.channel]
        (ring,) = bench.peer_take("RING")
        assert ring.channel == 31
        bench.do("proceeding", ring.call, 31)
        assert bench.take(ev.CallProceeding) == [ev.CallProceeding(cid, 31)]
    else:
        # libpri (the network) takes 31; its application gives our call another channel.
        (inc,) = bench.take(ev.IncomingCall)
        assert inc.channel == 31
        (ring,) = bench.peer_take("RING")
        assert ring.channel == 31
        bench.do("proceeding", ring.call, 30)
        assert bench.take(ev.CallProceeding) == [ev.CallProceeding(cid, 30)]
        assert bench.ours.owner[30].call_id == cid and bench.ours.owner[31].call_id == inc.call_id
    assert peer_call is not None
    bench.ours.check_invariants()


def test_lossy_dchannel_retransmission_with_libpri(bench: Bench) -> None:
    """One frame in five lost, each way: both Q.921 ends recover (REJ, T200 enquiry, retransmission) and
    every call still completes and clears."""
    import random

    rng = random.Random(5)
    bench.lose = lambda direction, frame: rng.random() < 0.2
    done = 0
    for _ in range(10):
        cid = bench.ours.place_call("5551234", bench.now)
        bench.advance(3.0)
        rings = bench.peer_take("RING")
        if not rings:
            continue
        bench.do("answer", rings[0].call, rings[0].channel)
        bench.advance(3.0)
        if ev.Connected(cid, None) in bench.take(ev.Connected):
            bench.ours.hangup(cid, bench.now)
            bench.advance(5.0)
            done += 1
    bench.lose = None
    bench.advance(20.0)
    for cid in list(bench.ours.by_id):  # calls whose answer came too late for the loop above
        bench.ours.hangup(cid, bench.now)
    bench.advance(60.0)
    assert done >= 7
    assert not bench.ours.calls and all(c is None for c in bench.ours.owner.values())
    assert bench.ours.link.counters["retransmissions"] > 0 and bench.ours.link_up
    bench.ours.check_invariants()


def test_restarted_libpri_forgets_a_ringing_call(bench: Bench) -> None:
    """A call ringing at the far end (no Q.931 timer runs in Call Delivered) when libpri restarts: the link
    reset makes us ask with STATUS ENQUIRY, the new libpri knows no such call, and the call is released."""
    cid, ring = outgoing(bench)
    bench.do("alert", ring.call, ring.channel)
    assert bench.take(ev.Alerting)
    bench.restart_peer()
    bench.advance(5.0)
    assert [e.call_id for e in bench.take(ev.Released)] == [cid]
    assert not bench.ours.calls and all(c is None for c in bench.ours.owner.values())
