"""Transfers, hold, three-way, pickup, follow-me, outbound permissions, CDR dispositions."""

from __future__ import annotations

import numpy as np

from firmware.calls.endpoint import Cause
from firmware.calls.loopback import PhoneBehaviour
from firmware.engine.tones import sine_mix


def freq_power(audio: np.ndarray, f: float) -> float:
    spec = np.abs(np.fft.rfft(audio.astype(float)))
    return float(spec[int(round(f * len(audio) / 8000))])


def connected_call(bed, agent: str = "1005"):
    bed.phones.add_phone(agent, PhoneBehaviour(answer_after=1.0))
    caller = bed.call_in("13811112222", "95599")  # sales queue directly
    bed.run(1.5)
    call = bed.call_of(caller)
    assert call.b is not None and call.b.number == agent
    return caller, call


def test_blind_transfer(make_bed) -> None:
    bed = make_bed()
    caller, call = connected_call(bed)
    bed.phones.add_phone("1002", PhoneBehaviour(answer_after=2.0))
    agent = call.b
    assert bed.mgr.blind_transfer(call, "1002")
    assert agent.state == "down"
    bed.run(3.0)
    assert call.b.number == "1002" and call.state == "up"
    caller.heard()
    call.b.say(sine_mix((900,), -10, 0.4))
    bed.run(0.5)
    assert freq_power(caller.heard()[-3200:], 900) > 1e5
    caller.far_hangup()
    bed.run(0.1)
    c = bed.mgr.store.cdrs()
    assert len(c) == 1 and c[0].lastapp == "Transfer" and c[0].dstchannel.startswith("SIP/1002")


def test_attended_transfer_and_hold_music(make_bed) -> None:
    bed = make_bed()
    caller, call = connected_call(bed)
    bed.phones.add_phone("1002", PhoneBehaviour(answer_after=1.0))
    agent = call.b
    c_leg = bed.mgr.consult(call, "1002")
    assert c_leg is not None and call.state == "held"
    bed.run(0.5)
    caller.heard()
    bed.run(1.5)
    held_audio = caller.heard()
    assert np.abs(held_audio).max() > 500  # music on hold
    agent.heard()
    c_leg.say(sine_mix((1100,), -10, 0.3))
    bed.run(0.4)
    assert freq_power(agent.heard()[-2400:], 1100) > 1e5  # agent talks to the consulted party
    assert bed.mgr.complete_transfer(call)
    bed.run(0.1)
    assert agent.state == "down" and call.b is c_leg
    caller.heard()
    c_leg.say(sine_mix((1100,), -10, 0.3))
    bed.run(0.4)
    assert freq_power(caller.heard()[-2400:], 1100) > 1e5


def test_hold_unhold(make_bed) -> None:
    bed = make_bed()
    caller, call = connected_call(bed)
    bed.mgr.hold(call)
    bed.run(0.2)
    caller.heard()
    call.b.say(sine_mix((1500,), -10, 0.5))
    bed.run(0.5)
    assert freq_power(caller.heard()[-3200:], 1500) < 1e4  # does not hear the agent while held
    bed.mgr.unhold(call)
    bed.run(0.1)
    caller.heard()
    call.b.say(sine_mix((1500,), -10, 0.5))
    bed.run(0.5)
    assert freq_power(caller.heard()[-3200:], 1500) > 1e5


def test_three_way_conference(make_bed) -> None:
    bed = make_bed()
    caller, call = connected_call(bed)
    bed.phones.add_phone("1010", PhoneBehaviour(answer_after=1.0))
    third = bed.mgr.conference_add(call, "1010")
    bed.run(1.5)
    assert third in call.conference
    # one talker at a time (the trunk echo canceller rightly treats simultaneous pure tones as double talk)
    for talker, f in ((caller, 500), (call.b, 1500), (third, 2500)):
        for leg in (caller, call.b, third):
            leg.heard()
        talker.say(sine_mix((f,), -10, 0.5))
        bed.run(0.6)
        for leg in (caller, call.b, third):
            p = freq_power(leg.heard()[-3200:], f)
            assert (p < 1e4) if leg is talker else (p > 1e5), (talker, leg, f, p)


def test_pickup_in_group(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=None))
    bed.phones.add_phone("1002", PhoneBehaviour(answer_after=None))
    caller = bed.call_in("13900000001")  # VIP -> service queue -> rings 1001
    bed.run(1.0)
    call = bed.call_of(caller)
    ringing = call.ringing[0]
    assert ringing.number == "1001"
    picker = bed.phones.call_in(bed.mgr, "1002", "*8")  # 1002 goes off-hook (same pickup group)
    bed.run(0.1)
    assert bed.mgr.pickup(picker)
    bed.run(0.1)
    assert call.b is picker and ringing.state == "down" and ringing.cause == Cause.NON_SELECTED


def test_follow_me_to_external(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1010", PhoneBehaviour(answer_after=None))
    bed.pstn.add_phone("13812345678", PhoneBehaviour(answer_after=2.0))
    ext_call = bed.phones.call_in(bed.mgr, "1001", "1010")
    bed.run(21.0)
    call = bed.call_of(ext_call)
    assert call.ringing and call.ringing[0].name.startswith("DAHDI/1-")
    bed.run(3.0)
    assert call.b is not None and call.b.number == "13812345678"
    assert call.vars["presented"] == "95588"  # the number presented on span1


def test_outbound_permissions_and_dispositions(make_bed) -> None:
    bed = make_bed()
    bed.pstn.add_phone("00441234567", PhoneBehaviour(answer_after=1.0))
    bed.pstn.add_phone("62345678", PhoneBehaviour(answer_after=1.0, hangup_after=5.0))
    bed.pstn.add_phone("63333333", PhoneBehaviour(busy=True))
    bed.phones.add_phone("1002", PhoneBehaviour(answer_after=None))
    # international is off by default
    intl = bed.phones.call_in(bed.mgr, "1001", "00441234567")
    bed.run(4.0)
    assert intl.state == "down" and intl.cause == Cause.OUTGOING_BARRED
    # local call through the trunk group, answered, far end hangs up
    local = bed.phones.call_in(bed.mgr, "1001", "62345678")
    bed.run(8.0)
    assert local.state == "down"
    busy = bed.phones.call_in(bed.mgr, "1001", "63333333")
    bed.run(1.0)
    noans = bed.phones.call_in(bed.mgr, "1003", "1002")
    bed.run(21.0)
    unalloc = bed.phones.call_in(bed.mgr, "1004", "64444444")
    bed.run(1.0)
    assert busy.state == noans.state == unalloc.state == "down"
    # no free trunk channel -> CONGESTION
    bed.mgr.trunks = {}
    cong = bed.phones.call_in(bed.mgr, "1001", "65555555")
    bed.run(0.5)
    assert cong.state == "down"
    by_dst = {c.dst: c for c in bed.mgr.store.cdrs()}
    assert (
        by_dst["00441234567"].disposition == "FAILED"
        and by_dst["00441234567"].userfield == "denied:international"
    )
    assert by_dst["62345678"].disposition == "ANSWERED" and by_dst["62345678"].billsec == 5
    assert by_dst["63333333"].disposition == "BUSY"
    assert by_dst["1002"].disposition == "NO ANSWER"
    assert by_dst["64444444"].disposition == "FAILED"
    assert by_dst["65555555"].disposition == "CONGESTION"
    assert len(bed.mgr.store.cdrs()) == 6 and not bed.mgr.calls


def test_supervisor_listen(make_bed) -> None:
    bed = make_bed()
    caller, call = connected_call(bed)
    sup = bed.phones.call_in(bed.mgr, "1010", "*9")  # a supervisor leg
    bed.run(0.1)
    bed.mgr.listen(sup, call, "listen")
    bed.run(0.1)
    sup.heard()
    caller.say(sine_mix((600,), -10, 0.4))
    call.b.say(sine_mix((1800,), -10, 0.4))
    bed.run(0.5)
    s = sup.heard()[-3200:]
    assert freq_power(s, 600) > 1e5 and freq_power(s, 1800) > 1e5
