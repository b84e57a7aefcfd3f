"""The SIP user agent core driven by an independent test phone, in virtual time."""

from __future__ import annotations

import pytest

from firmware.sip.core import (
    CallAnswered,
    CallEnded,
    CallProgress,
    CallReplaced,
    CoreConfig,
    DtmfReceived,
    FeatureCode,
    HoldChanged,
    IncomingCall,
    RegistrationChanged,
    SipCore,
    TransferRequested,
)
from firmware.sip.extensions import Directory
from firmware.sip.message import Request, Response
from firmware.sip.rtp import MediaHub, build_rtp, telephone_event_payload
from firmware.sip.sdp import SessionDescription

from .phones import Phone, World


@pytest.fixture
def world():
    directory = Directory.with_passwords("callbox", {"1001": "pw1", "1002": "pw2", "1003": "pw3"})
    core = SipCore(directory, MediaHub(16), CoreConfig(host="127.0.0.1", port=5060, qualify_interval=30.0))
    return World(core)


def test_register_and_unknown_method(world):
    alice = Phone(world, "1001", "pw1", 6001)
    assert alice.register().status == 200
    assert world.of(RegistrationChanged)[0].registered
    req = alice.request("FOO", "sip:box", "x1", "<sip:box>")
    alice.send(req)
    assert alice.last(Response).status == 501 and "INVITE" in alice.last(Response).headers["Allow"]
    alice.send(alice.request("OPTIONS", "sip:box", "x2", "<sip:box>"))
    assert alice.last(Response).status == 200


def test_incoming_call_ring_answer_dtmf_bye(world):
    alice = Phone(world, "1001", "pw1", 6001)
    invite, resp = alice.call("5000")
    assert resp.status == 100
    [offered] = world.of(IncomingCall)
    assert (offered.extension, offered.number, offered.codec) == ("1001", "5000", "PCMA")
    world.core.ringing(offered.call, world.now)
    assert alice.last(Response, 180) is not None
    world.core.answer(offered.call, world.now)
    ok = alice.last(Response, 200, "INVITE")
    answer = SessionDescription.parse(ok.body)
    assert answer.media[0].formats == ["8", "101"] and answer.media[0].direction == "sendrecv"
    # the 200 is retransmitted until ACK
    world.advance(1.0)
    assert len([m for m in alice.inbox if isinstance(m, Response) and m.status == 200]) >= 2
    alice.ack(invite, ok)
    count = len(alice.inbox)
    world.advance(5.0)
    assert len(alice.inbox) == count
    # RFC 4733 digit from the phone reaches call control
    leg = offered.leg
    evs = world.core.hub.receive(
        leg, build_rtp(101, 1, 160, 5, telephone_event_payload(1, False, 160), True), 1.0
    )
    world.core.media_events(leg, evs)
    world.pump()
    assert world.of(DtmfReceived)[0].digit == "1"
    bye = alice.in_dialog(invite, ok, "BYE")
    alice.send(bye)
    assert alice.last(Response).status == 200
    [ended] = world.of(CallEnded)
    assert ended.cause == 16 and ended.by_remote and ended.stats is not None
    assert alice.last(Request, method="BYE") is None  # the call is over: no BYE back


def test_invite_needs_auth_and_wrong_password_is_refused(world):
    mallory = Phone(world, "1001", "wrong", 6009)
    for _ in range(5):
        _, resp = mallory.call("5000")
    assert resp.status == 403
    assert not world.of(IncomingCall)


def test_cancel_while_ringing(world):
    alice = Phone(world, "1001", "pw1", 6001)
    invite, _ = alice.call("5000")
    call = world.of(IncomingCall)[0].call
    world.core.ringing(call, world.now)
    cancel = Request("CANCEL", invite.uri, invite.headers.copy())
    cancel.headers.set("CSeq", f"{invite.cseq[0]} CANCEL")
    cancel.headers.remove("Authorization")
    cancel.body = b""
    cancel.headers.remove("Content-Type")
    alice.send(cancel)
    assert alice.last(Response, 200, "CANCEL") is not None
    assert alice.last(Response, 487, "INVITE") is not None
    [ended] = world.of(CallEnded)
    assert ended.status == 487 and ended.by_remote


@pytest.mark.parametrize(("cause", "status"), [(17, 486), (1, 404), (21, 603), (18, 408), (34, 503)])
def test_call_control_rejects_with_rfc3398_status(world, cause, status):
    alice = Phone(world, "1001", "pw1", 6001)
    alice.call("5000")
    world.core.hangup(world.of(IncomingCall)[0].call, world.now, cause)
    resp = alice.last(Response, status, "INVITE")
    assert resp is not None and f"cause={cause}" in resp.headers["Reason"]


def test_outgoing_call_forks_to_all_contacts_first_answer_wins(world):
    desk = Phone(world, "1002", "pw2", 6002)
    soft = Phone(world, "1002", "pw2", 6003)
    desk.register()
    soft.register()
    desk.auto_answer = "ring"
    soft.auto_answer = "ring"
    ref = world.core.place_call("1002", "02155551234", "Trunk caller", world.now)
    assert desk.last(Request, method="INVITE") and soft.last(Request, method="INVITE")
    invite = soft.last(Request, method="INVITE")
    assert invite.from_.display == "Trunk caller" and invite.from_.sip_uri.user == "02155551234"
    assert world.of(CallProgress)[0].status == 180
    soft.answer(invite)
    assert world.of(CallAnswered)[0].call == ref
    assert soft.last(Request, method="ACK") is not None
    assert desk.last(Request, method="CANCEL") is not None
    # we hang up: BYE to the phone that answered
    world.core.hangup(ref, world.now)
    assert soft.last(Request, method="BYE") is not None
    assert world.of(CallEnded)[0].by_remote is False


def test_outgoing_call_busy_and_unregistered(world):
    bob = Phone(world, "1002", "pw2", 6002)
    bob.register()
    bob.auto_answer = "busy"
    world.core.place_call("1002", "100", "", world.now)
    [ended] = world.of(CallEnded)
    assert (ended.cause, ended.status) == (17, 486)
    assert bob.last(Request, method="ACK") is not None  # the transaction ACKed the 486
    world.events.clear()
    world.core.place_call("1003", "100", "", world.now)
    assert world.of(CallEnded)[0].cause == 20
    world.core.place_call("7777", "100", "", world.now)
    assert world.of(CallEnded)[1].cause == 1


def test_outgoing_call_unanswered_contact_times_out(world):
    bob = Phone(world, "1002", "pw2", 6002)
    bob.register()
    world.drop_to.add(("127.0.0.1", 6002))
    world.core.place_call("1002", "100", "", world.now)
    world.advance(33.0, step=0.25)
    [ended] = world.of(CallEnded)
    assert ended.status == 408 and ended.cause == 102


def answered_call(world, phone):
    invite, _ = phone.call("5000")
    call = world.of(IncomingCall)[-1].call
    world.core.answer(call, world.now)
    ok = phone.last(Response, 200, "INVITE")
    phone.ack(invite, ok)
    return call, invite, ok


def test_reinvite_hold_resume_from_phone(world):
    alice = Phone(world, "1001", "pw1", 6001)
    call, invite, ok = answered_call(world, alice)
    for direction, held in (("sendonly", True), ("sendrecv", False)):
        re = alice.in_dialog(invite, ok, "INVITE", alice.sdp(direction))
        alice.send(re)
        resp = alice.last(Response, 200, "INVITE")
        assert SessionDescription.parse(resp.body).media[0].direction == ("recvonly" if held else "sendrecv")
        alice.ack(re, resp)
        assert world.of(HoldChanged)[-1].held is held


def test_hold_from_our_side_and_session_refresh(world):
    alice = Phone(world, "1001", "pw1", 6001)
    call, invite, ok = answered_call(world, alice)
    world.core.hold(call, world.now)
    re = alice.last(Request, method="INVITE")
    assert SessionDescription.parse(re.body).media[0].direction == "sendonly"
    assert alice.last(Request, method="ACK") is not None
    world.core.resume(call, world.now)
    assert (
        SessionDescription.parse(alice.last(Request, method="INVITE").body).media[0].direction == "sendrecv"
    )
    upd = alice.in_dialog(invite, ok, "UPDATE")
    alice.send(upd)
    assert alice.last(Response).status == 200


def test_refer_blind_transfer(world):
    alice = Phone(world, "1001", "pw1", 6001)
    call, invite, ok = answered_call(world, alice)
    refer = alice.in_dialog(invite, ok, "REFER")
    refer.headers.add("Refer-To", "<sip:1003@box>")
    alice.send(refer)
    assert alice.last(Response, 202) is not None
    [tr] = world.of(TransferRequested)
    assert (tr.call, tr.target, tr.replaces) == (call, "1003", None)
    notify = alice.last(Request, method="NOTIFY")
    assert b"100 Trying" in notify.body and notify.headers["Event"].startswith("refer")
    world.core.transfer_result(call, True, world.now)
    final = alice.last(Request, method="NOTIFY")
    assert b"200 OK" in final.body and final.headers["Subscription-State"].startswith("terminated")


def test_refer_attended_names_the_replaced_call(world):
    alice = Phone(world, "1001", "pw1", 6001)
    call1, inv1, ok1 = answered_call(world, alice)
    call2, inv2, ok2 = answered_call(world, alice)
    refer = alice.in_dialog(inv1, ok1, "REFER")
    refer.headers.add("Refer-To", f"<sip:1003@box?Replaces={inv2.call_id}%3Bto-tag%3Dx%3Bfrom-tag%3Dy>")
    alice.send(refer)
    [tr] = world.of(TransferRequested)
    assert tr.call == call1 and tr.replaces == call2


def test_feature_code_emits_event_and_releases(world):
    alice = Phone(world, "1001", "pw1", 6001)
    invite, _ = alice.call("*415")
    [fc] = world.of(FeatureCode)
    assert (fc.extension, fc.action, fc.argument) == ("1001", "queue_login", "5")
    ok = alice.last(Response, 200, "INVITE")
    alice.ack(invite, ok)
    world.advance(1.5)
    assert alice.last(Request, method="BYE") is not None
    assert not world.of(IncomingCall)


def test_session_timer_too_small_and_unsupported_require(world):
    alice = Phone(world, "1001", "pw1", 6001)
    req = alice.request("INVITE", "sip:5000@box", "st1", "<sip:5000@box>", "t", alice.sdp())
    req.headers.add("Session-Expires", "30")
    alice.send(req)
    alice.send(alice.authorize(req, alice.last(Response)))
    assert alice.last(Response).status == 422
    req = alice.request("INVITE", "sip:5000@box", "st2", "<sip:5000@box>", "t", alice.sdp())
    req.headers.add("Require", "100rel, foo")
    alice.send(req)
    alice.send(alice.authorize(req, alice.last(Response)))
    assert alice.last(Response).status == 420


def test_in_dialog_request_for_unknown_dialog_is_481(world):
    alice = Phone(world, "1001", "pw1", 6001)
    bye = alice.request("BYE", "sip:box", "nope", "<sip:box>;tag=zz")
    alice.send(bye)
    assert alice.last(Response).status == 481


def test_qualify_removes_dead_contact(world):
    alice = Phone(world, "1001", "pw1", 6001)
    alice.register()
    world.drop_to.add(("127.0.0.1", 6001))
    world.advance(65.0, step=0.5)
    assert not world.core.registrar.contacts("1001", world.now)
    assert world.of(RegistrationChanged)[-1].registered is False


def test_no_ack_ends_call(world):
    alice = Phone(world, "1001", "pw1", 6001)
    alice.call("5000")
    world.core.answer(world.of(IncomingCall)[0].call, world.now)
    world.advance(40.0, step=0.25)
    ended = world.of(CallEnded)
    assert ended and ended[0].status == 408
    assert alice.last(Request, method="BYE") is not None


def test_delayed_offer_answered_in_ack(world):
    alice = Phone(world, "1001", "pw1", 6001)
    invite, _ = alice.call("5000", body="")
    call = world.of(IncomingCall)[0].call
    world.core.answer(call, world.now)
    ok = alice.last(Response, 200, "INVITE")
    assert SessionDescription.parse(ok.body).media[0].formats[:2] == ["8", "0"]  # our offer
    alice.ack(invite, ok, alice.sdp())
    assert world.core.calls[call].negotiated.codec == "PCMA"


def test_malformed_request_answered_400_and_garbage_ignored(world):
    alice = Phone(world, "1001", "pw1", 6001)
    req = alice.request("OPTIONS", "sip:box", "m1", "<sip:box>")
    raw = req.encode().replace(b"Content-Length: 0", b"Content-Length: 50")
    world.deliver(raw, alice.peer)
    assert alice.last(Response).status == 400
    world.deliver(b"\x00\x01garbage", alice.peer)
    world.deliver(b"SIP/2.0 200 OK\r\n\r\n", alice.peer)
    assert world.core.counters["malformed"] == 3
    assert world.core.counters.get("internal_errors", 0) == 0


def test_bye_in_early_dialog_answers_the_invite_487(world):
    alice = Phone(world, "1001", "pw1", 6001)
    invite, _ = alice.call("5000")
    call = world.of(IncomingCall)[0].call
    world.core.ringing(call, world.now)
    ringing = alice.last(Response, 180)
    alice.send(alice.in_dialog(invite, ringing, "BYE"))
    assert alice.last(Response, 200, "BYE") is not None
    assert alice.last(Response, 487, "INVITE") is not None
    assert world.of(CallEnded)[0].call == call


def test_status_for_the_console(world):
    alice = Phone(world, "1001", "pw1", 6001)
    alice.register()
    call, _, _ = answered_call(world, alice)
    st = world.core.status(world.now)
    assert st["registrations"][0]["extension"] == "1001"
    assert st["registrations"][0]["address"] == "UDP 127.0.0.1:6001"
    assert st["calls"] == [
        {
            "call": call,
            "direction": "in",
            "extension": "1001",
            "state": "answered",
            "leg": st["calls"][0]["leg"],
            "codec": "PCMA",
            "held": False,
        }
    ]


def test_session_timer_tolerated(world):
    alice = Phone(world, "1001", "pw1", 6001)
    req = alice.request("INVITE", "sip:5000@box", "st3", "<sip:5000@box>", "t", alice.sdp())
    req.headers.add("Session-Expires", "1800;refresher=uac")
    req.headers.add("Supported", "timer")
    alice.send(req)
    alice.send(alice.authorize(req, alice.last(Response)))
    world.core.answer(world.of(IncomingCall)[0].call, world.now)
    ok = alice.last(Response, 200, "INVITE")
    assert ok.headers["Session-Expires"] == "1800;refresher=uac" and "timer" in ok.headers.get_all("Require")


def replacing_invite(phone, target_call_id, to_tag, from_tag, early_only=False):
    """An INVITE with Replaces (RFC 3891) from `phone`, authenticated."""
    cid = f"repl-{next(phone.world.ids)}"
    req = phone.request("INVITE", "sip:callbox@box", cid, "<sip:callbox@box>", "from9", phone.sdp())
    value = f"{target_call_id};to-tag={to_tag};from-tag={from_tag}" + (";early-only" if early_only else "")
    req.headers.add("Replaces", value)
    phone.send(req)
    resp = phone.last(Response, method="INVITE")
    if resp is not None and resp.status == 401:
        phone.ack_error(req, resp)
        req = phone.authorize(req, resp)
        phone.send(req)
    return req, phone.last(Response, method="INVITE")


def test_invite_with_replaces_moves_an_answered_call_to_another_phone(world):
    alice = Phone(world, "1001", "pw1", 6001)
    bob = Phone(world, "1002", "pw2", 6002)
    call, invite, ok = answered_call(world, alice)
    leg = world.of(IncomingCall)[-1].leg
    inv2, ok2 = replacing_invite(bob, invite.call_id, ok.to.tag, invite.from_.tag)
    assert ok2.status == 200 and SessionDescription.parse(ok2.body).media[0].port > 0
    [replaced] = world.of(CallReplaced)
    assert (replaced.call, replaced.extension, replaced.previous) == (call, "1002", "1001")
    assert alice.last(Request, method="BYE").call_id == invite.call_id  # the old dialog is released
    assert not world.of(CallEnded)  # the call goes on: same ref, same media leg
    assert world.core.leg_of(call) == leg and world.core.hub.legs[leg].config.remote[1] == 40000
    bob.ack(inv2, ok2)
    bob.send(bob.in_dialog(inv2, ok2, "BYE"))
    assert bob.last(Response).status == 200 and world.of(CallEnded)[0].call == call


def test_invite_with_replaces_picks_up_a_ringing_call(world):
    bob = Phone(world, "1002", "pw2", 6002)
    carol = Phone(world, "1003", "pw3", 6003)
    bob.register()
    bob.auto_answer = "ring"
    call = world.core.place_call("1002", "02155550000", "Caller", world.now)
    world.pump()
    ringing_inv = bob.last(Request, method="INVITE")
    assert world.of(CallProgress)
    _, ok = replacing_invite(carol, ringing_inv.call_id, ringing_inv.from_.tag, "pt", early_only=True)
    assert ok.status == 200
    assert bob.last(Request, method="CANCEL") is not None  # the ringing phone stops
    assert [e.call for e in world.of(CallAnswered)] == [call]
    assert world.of(CallReplaced)[0].extension == "1003"


def test_invite_with_replaces_errors(world):
    alice = Phone(world, "1001", "pw1", 6001)
    bob = Phone(world, "1002", "pw2", 6002)
    call, invite, ok = answered_call(world, alice)
    _, resp = replacing_invite(bob, "no-such-call", "a", "b")
    assert resp.status == 481
    _, resp = replacing_invite(bob, invite.call_id, ok.to.tag, "wrong-tag")
    assert resp.status == 481
    _, resp = replacing_invite(bob, invite.call_id, ok.to.tag, invite.from_.tag, early_only=True)
    assert resp.status == 486  # early-only, and the call is answered
    # an incoming call we have not answered cannot be taken over (RFC 3891 3)
    inv3, _ = alice.call("5000")
    in3 = world.of(IncomingCall)[-1]
    tag = alice.last(Response, 100, "INVITE").to.tag or "x"
    _, resp = replacing_invite(bob, inv3.call_id, tag, inv3.from_.tag)
    assert resp.status == 481 and not world.of(CallReplaced) and in3.call != call


# -- transfers done by phones, under the real call control ------------------------------------------------

from .test_callcontrol import box, testbed  # noqa: E402, F401 - the CallManager fixtures


def _agent_refer(phone, inv, refer_to):
    """REFER from a phone on the dialog the box opened with `inv` (the phone answered it, tag pt)."""
    req = Request("REFER", inv.contacts[0].uri if inv.contacts else inv.uri, inv.headers.copy())
    req.headers.remove("Content-Type")
    req.body = b""
    req.headers.set("From", inv.headers["To"] + ";tag=pt")
    req.headers.set("To", inv.headers["From"])
    req.headers.set("CSeq", "5 REFER")
    req.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.port};branch=z9hG4bKref{phone.port};rport")
    req.headers.set("Contact", f"<sip:{phone.ext}@127.0.0.1:{phone.port}>")
    req.headers.add("Refer-To", refer_to)
    phone.send(req)
    return phone.last(Response)


def _queue_call_to_agent(tb, world, line, agent):
    leg = tb.call_in("13800000000", dnis="95599")
    tb.run(3.0)
    call = tb.call_of(leg)
    assert call is not None and call.b is not None and call.b.number == agent.ext, tb.mgr.log[-5:]
    return leg, call, agent.dialogs[list(agent.dialogs)[-1]]["invite"]


def test_phone_blind_transfer_by_refer_reaches_the_other_extension(box):  # noqa: F811
    tb, world, line = box
    line.on_transfer = tb.mgr.transfer
    agent = Phone(world, "1005", "pw5", 6105)
    bob = Phone(world, "1006", "pw6", 6106)
    assert agent.register().status == 200
    agent.auto_answer = "answer"
    trunk, call, inv = _queue_call_to_agent(tb, world, line, agent)
    assert bob.register().status == 200  # (after the queue call, so that the queue rings the agent)
    bob.auto_answer = "answer"
    assert _agent_refer(agent, inv, "<sip:1006@box>").status == 202
    tb.run(3.0)
    assert call.b is not None and call.b.number == "1006" and call.b.up and trunk.state != "down"
    notify = [m for m in agent.inbox if isinstance(m, Request) and m.method == "NOTIFY"]
    assert b"200 OK" in notify[-1].body and agent.last(Request, method="BYE") is not None


def test_phone_attended_transfer_refer_with_replaces_joins_caller_and_target(box):  # noqa: F811
    """The way phones do it: the agent puts the caller on hold, calls 1006 on a second line, then REFERs
    the first call with Refer-To: <sip:1006@box?Replaces=(second call)>: the trunk caller ends up talking
    to 1006, both of the agent's calls are released, the consult call gets its own CDR."""
    tb, world, line = box
    line.on_transfer = tb.mgr.transfer
    agent = Phone(world, "1005", "pw5", 6105)
    bob = Phone(world, "1006", "pw6", 6106)
    assert agent.register().status == 200
    agent.auto_answer = "answer"
    trunk, call, inv = _queue_call_to_agent(tb, world, line, agent)
    assert bob.register().status == 200  # (after the queue call, so that the queue rings the agent)
    bob.auto_answer = "answer"
    inv2, _ = agent.call("1006")
    tb.run(2.0)
    ok2 = agent.last(Response, 200, "INVITE")
    agent.ack(inv2, ok2)
    consult = tb.mgr.call_of(next(ep for ep in line.endpoints.values() if ep.incoming))
    assert consult is not None and consult.b is not None and consult.b.up
    target = consult.b
    replaces = f"{inv2.call_id}%3Bto-tag%3D{ok2.to.tag}%3Bfrom-tag%3D{inv2.from_.tag}"
    assert _agent_refer(agent, inv, f"<sip:1006@box?Replaces={replaces}>").status == 202
    tb.run(2.0)
    assert call.b is target and target.up and trunk.state != "down"
    assert consult.state == "ended"
    byes = {m.call_id for m in agent.inbox if isinstance(m, Request) and m.method == "BYE"}
    assert byes == {inv.call_id, inv2.call_id}
    assert tb.mgr.engine.src[0, trunk.channel] == target.channel  # the caller hears 1006
