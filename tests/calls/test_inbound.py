"""Inbound calls end to end in virtual time: IVR menu by in-band DTMF, queue, bridge, CDR."""

from __future__ import annotations

import numpy as np

from firmware.calls.endpoint import Cause
from firmware.calls.loopback import PhoneBehaviour
from firmware.engine.tones import sine_mix


def test_ivr_menu_to_service_queue_and_cdr(make_bed) -> None:
    bed = make_bed()
    assert bed.engine.has("dtmf")
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=3.0))
    caller = bed.call_in("13812345678", "95588", name="Li Lei")
    bed.run(1.0)
    assert caller.state == "up"
    heard = caller.heard()
    assert np.abs(heard).max() > 1000  # the welcome prompt is playing
    call = bed.call_of(caller)
    assert call.state == "ivr"
    bed.run(12.0)  # welcome + menu prompt
    caller.press("1")
    bed.run(1.0)
    assert call.state == "queue" and call.queue == "service"
    bed.run(4.0)
    assert call.state == "up" and call.b is not None and call.b.number == "1001"
    agent = call.b
    caller.heard()
    caller.say(sine_mix((700,), -10, 0.5))
    agent.say(sine_mix((1300,), -10, 0.5))
    bed.run(0.6)
    spec = np.abs(np.fft.rfft(agent.heard()[-3200:].astype(float)))
    assert abs(np.argmax(spec) * 8000 / 3200 - 700) < 10
    bed.run(30)
    caller.far_hangup()
    bed.run(0.1)
    # survey flow is configured for `service`, but the caller hung up: the call just ends
    cdrs = bed.mgr.store.cdrs()
    assert len(cdrs) == 1
    c = cdrs[0]
    assert c.disposition == "ANSWERED" and c.src == "13812345678" and c.dst == "95588"
    assert c.clid == '"Li Lei" <13812345678>' and c.channel.startswith("DAHDI/1-")
    assert c.dstchannel.startswith("SIP/1001") and c.lastapp == "Queue" and c.lastdata == "service"
    assert c.dcontext == "from-span1"
    assert c.duration >= 48 and 0 < c.billsec <= c.duration
    assert not bed.mgr.calls and agent.state == "down"
    assert not bed.mgr._by_channel


def test_fxo_call_key_zero_reaches_operator(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1000", PhoneBehaviour(answer_after=2.0))
    caller = bed.call_in("02155550000", "02161234567", fxo=True)
    bed.run(2.0)
    caller.press("0")  # barge into the welcome prompt
    bed.run(1.0)
    bed.run(12.0)  # the operator node's prompt, then ringing
    call = bed.call_of(caller)
    assert call.b is not None and call.b.number == "1000"
    assert "operator" in call.vars["ivr_node"]
    call.b.far_hangup()
    bed.run(0.1)
    c = bed.mgr.store.cdrs()[0]
    assert c.disposition == "ANSWERED" and c.channel.startswith("FXO/")


def test_blacklist_hears_busy_and_is_logged(make_bed) -> None:
    bed = make_bed()
    caller = bed.call_in("13000000666")
    bed.run(1.0)
    assert caller.state == "early" and not caller.up  # never answered
    h = caller.heard().astype(float)
    on = np.abs(h).reshape(-1, 80).max(axis=1) > 1000
    assert on.any() and not on.all()  # cadenced busy tone
    bed.run(5.0)
    assert caller.state == "down" and caller.cause == Cause.USER_BUSY
    c = bed.mgr.store.cdrs()[0]
    assert c.disposition == "BUSY" and c.userfield == "blacklist" and c.billsec == 0 and c.answer == 0


def test_vip_skips_ivr_to_queue_and_named_agent(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=1.0))
    bed.phones.add_phone("1003", PhoneBehaviour(answer_after=1.0))
    vip = bed.call_in("13900000001")
    bed.run(0.5)
    call = bed.call_of(vip)
    assert call.state == "queue" and bed.mgr.acd.acd.callers[call.uniqueid].priority == 10  # in the ACD
    bed.run(2.0)
    assert call.b.number == "1001"
    named = bed.call_in("13900000002")
    bed.run(2.0)
    assert bed.call_of(named).b.number == "1003"


def test_dnis_route_to_sales_queue(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1005", PhoneBehaviour(answer_after=1.0))
    caller = bed.call_in("13811112222", "95599")
    bed.run(0.2)
    call = bed.call_of(caller)
    assert call.queue == "sales" and call.vars["route"] == "route 0"
    bed.run(2.0)
    assert call.b.number == "1005"


def test_queue_hunts_agents_in_turn(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1005", PhoneBehaviour(answer_after=None))  # never answers
    bed.phones.add_phone("1006", PhoneBehaviour(busy=True))
    bed.phones.add_phone("1007", PhoneBehaviour(answer_after=2.0))
    caller = bed.call_in("13811112222", "95599")
    bed.run(16.0)  # 1005 rings 15 s, then 1006 is busy, then 1007 rings
    call = bed.call_of(caller)
    assert call.b is None
    bed.run(3.0)
    assert call.b is not None and call.b.number == "1007"
    names = [w for _, _, w in bed.mgr.log if "ringing" in w]
    assert [n.split()[1] for n in names] == ["1005", "1006", "1007"]
