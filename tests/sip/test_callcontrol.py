"""SIP legs under the real call control (firmware.calls CallManager on the Testbed), in virtual time:
the endpoint contract both ways, with SIP phones as the extensions."""

from __future__ import annotations

import pytest

from firmware.calls.testbed import Testbed
from firmware.sip.core import CoreConfig, SipCore
from firmware.sip.endpoint import SipEndpoint, SipLine
from firmware.sip.extensions import Directory
from firmware.sip.message import Request, Response
from firmware.sip.rtp import MediaHub

from .phones import Phone, World

EPOCH = 1_790_000_000.0  # a weekday afternoon in Asia/Shanghai is not needed: queues route by DNIS


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    tb = Testbed(tmp_path_factory.mktemp("box"), start_epoch=EPOCH, trunk_lines=4, fxo_lines=0, extensions=16)
    yield tb
    tb.close()


@pytest.fixture
def box(testbed):
    """A fresh SIP side (core, phones, line) on the shared box for each test."""
    tb = testbed
    directory = Directory.with_passwords("callbox", {f"100{i}": f"pw{i}" for i in range(8)})
    core = SipCore(directory, MediaHub(16), CoreConfig(qualify_interval=0), now=tb.clock.now())
    world = World(core, clock=tb.clock)
    line = SipLine(core, tb.mgr, tb.clock, channel_base=4, flush=world.pump)
    world.on_event = line.handle
    tb.mgr.extension_lines = line
    yield tb, world, line
    for ep in list(line.endpoints.values()):
        ep.hangup()
    tb.run(1.0)


def test_trunk_call_to_queue_rings_sip_agent_who_answers_and_hangs_up(box):
    tb, world, line = box
    agents = {}
    for ext in ("1005", "1006", "1007"):
        phone = Phone(world, ext, f"pw{ext[-1]}", 6000 + int(ext[-1]))
        assert phone.register().status == 200
        agents[ext] = phone
    agents["1005"].auto_answer = "answer"
    agents["1006"].auto_answer = "ring"
    agents["1007"].auto_answer = "ring"
    leg = tb.call_in("13800000000", dnis="95599")
    tb.run(3.0)
    invite = next(
        (p.last(Request, method="INVITE"), ext)
        for ext, p in agents.items()
        if p.last(Request, method="INVITE")
    )
    assert invite[0] is not None
    call = tb.call_of(leg)
    assert call is not None
    answered = [ep for ep in line.endpoints.values() if ep.up]
    assert answered and isinstance(answered[0], SipEndpoint)
    assert call.b is answered[0]
    assert answered[0].channel == 4 + answered[0].leg
    # the agent hangs up: BYE from the phone clears the trunk side too
    phone = agents[answered[0].number]
    inv = phone.dialogs[[k for k in phone.dialogs][-1]]["invite"]
    bye = Request("BYE", inv.contacts[0].uri if inv.contacts else inv.uri, inv.headers.copy())
    bye.headers.remove("Content-Type")
    bye.body = b""
    frm, to = inv.headers["From"], inv.headers["To"] + ";tag=pt"
    bye.headers.set("From", to)
    bye.headers.set("To", frm)
    bye.headers.set("CSeq", "2 BYE")
    bye.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.port};branch=z9hG4bKbye1;rport")
    phone.send(bye)
    assert phone.last(Response).status == 200
    tb.run(2.0)
    assert leg.state == "down"
    assert call.state == "ended"


def test_sip_extension_dials_another_extension(box):
    tb, world, line = box
    alice = Phone(world, "1001", "pw1", 6001)
    bob = Phone(world, "1002", "pw2", 6002)
    alice.register()
    bob.register()
    bob.auto_answer = "answer"
    invite, resp = alice.call("1002")
    tb.run(2.0)
    ok = alice.last(Response, 200, "INVITE")
    assert ok is not None, [m for m in alice.inbox]
    assert bob.last(Request, method="INVITE").from_.sip_uri.user == "1001"
    a = [ep for ep in line.endpoints.values() if ep.incoming][0]
    call = tb.mgr.call_of(a)
    assert call is not None and call.b is not None and call.b.number == "1002"


def test_unregistered_agent_is_skipped_not_stuck(box):
    tb, world, line = box
    leg = tb.call_in("13800000001", dnis="95599")
    tb.run(5.0)
    call = tb.call_of(leg)
    # nobody is registered: every agent leg ends at once (cause 20); the caller waits in the queue
    assert call is not None and call.b is None
    assert not line.endpoints


def test_endpoint_tells_whether_dtmf_comes_out_of_band(box):
    tb, world, line = box
    alice = Phone(world, "1001", "pw1", 6001)
    for ext in ("1002", "1003"):
        callee = Phone(world, ext, f"pw{ext[-1]}", 6000 + int(ext[-1]))
        callee.register()
        callee.auto_answer = "ring"
    no4733 = alice.sdp().replace(" 101\r\n", "\r\n").replace("a=rtpmap:101 telephone-event/8000\r\n", "")
    no4733 = no4733.replace("a=fmtp:101 0-15\r\n", "")
    alice.call("1002", body=no4733)
    alice.call("1003")
    eps = sorted((ep for ep in line.endpoints.values() if ep.incoming), key=lambda e: e.ref)
    assert [ep.out_of_band_dtmf for ep in eps] == [False, True]


def test_sip_phone_calls_out_through_the_trunk_and_hears_causes(box):
    """UAC calling a trunk number: answered by the far end (then it hangs up: BYE to the phone); a busy
    number comes back to the phone as 486, an international number it may not dial as 403."""
    from firmware.calls.loopback import PhoneBehaviour

    tb, world, line = box
    tb.pstn.add_phone("62345678", PhoneBehaviour(answer_after=1.0, hangup_after=2.0))
    tb.pstn.add_phone("63333333", PhoneBehaviour(busy=True))
    alice = Phone(world, "1001", "pw1", 6001)
    invite, _ = alice.call("62345678")
    tb.run(2.0)
    ok = alice.last(Response, 200, "INVITE")
    assert ok is not None
    alice.ack(invite, ok)
    tb.run(3.0)
    assert alice.last(Request, method="BYE") is not None  # the far end hung up
    alice.call("63333333")
    tb.run(1.0)
    assert alice.last(Response, 486, "INVITE") is not None
    alice.call("00441234567")
    tb.run(5.0)
    rejected = alice.last(Response, method="INVITE")
    assert rejected.status == 403 and "cause=52" in rejected.headers["Reason"]


def test_agent_feature_codes_reach_the_acd(box):
    """*43<code> from an agent's SIP phone pauses them in the ACD with that reason; *44 unpauses; *42 logs
    them out (the queue log says so)."""
    from firmware.acd.core import AgentState

    tb, world, line = box
    phone = Phone(world, "1001", "pw1", 6101)
    assert phone.register().status == 200
    acd = tb.mgr.acd.acd
    phone.call("*432")
    tb.run(1.0)
    assert acd.agents["1001"].state is AgentState.PAUSED and acd.agents["1001"].pause_reason == "code 2"
    phone.call("*44")
    tb.run(1.0)
    assert acd.agents["1001"].state is AgentState.AVAILABLE
    phone.call("*42")
    tb.run(1.0)
    assert acd.agents["1001"].state is AgentState.LOGGED_OUT
    phone.call("*41")
    tb.run(1.0)
    assert acd.agents["1001"].state is AgentState.AVAILABLE
