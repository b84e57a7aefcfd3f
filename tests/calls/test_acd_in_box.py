"""The ACD inside the box: calls through the IVR into ACD queues, agents on phones, feature codes,
announcements, and the queue log beside the CDRs in the data directory."""

from __future__ import annotations

import numpy as np
import pytest

from firmware.acd.core import AgentState, Announce
from firmware.acd.queuelog import parse_line
from firmware.calls.loopback import PhoneBehaviour


def queue_log(bed) -> list:
    return [parse_line(line) for line in (bed.mgr.data_dir / "queue_log").read_text().splitlines()]


def test_ivr_to_acd_queue_to_agent_and_both_logs_agree(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=2.0))
    caller = bed.call_in("13812345678", "95588")
    bed.run(12.0)
    caller.press("1")
    bed.run(5.0)
    call = bed.call_of(caller)
    assert call.queue == "service" and call.b is not None and call.b.number == "1001"
    assert bed.mgr.acd.acd.agents["1001"].state is AgentState.ON_CALL
    bed.run(20.0)
    caller.far_hangup()
    bed.run(0.5)
    entries = [e for e in queue_log(bed) if e.callid == call.uniqueid]
    assert [e.event for e in entries] == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"]
    assert entries[1].agent == "SIP/1001" and entries[1].field("ringtime") == "2"
    [cdr] = bed.mgr.store.cdrs()
    assert cdr.uniqueid == call.uniqueid and cdr.disposition == "ANSWERED" and cdr.lastapp == "Queue"
    assert bed.mgr.acd.acd.agents["1001"].state is AgentState.AVAILABLE
    assert not bed.mgr.calls


def test_feature_codes_pause_and_route_around_the_agent(make_bed) -> None:
    bed = make_bed()
    for agent in ("1001", "1002"):
        bed.phones.add_phone(agent, PhoneBehaviour(answer_after=1.0))
    director = bed.mgr.acd
    assert director.feature("1001", "pause", "2")  # *432: pause, reason code 2
    assert director.acd.agents["1001"].state is AgentState.PAUSED
    assert director.acd.agents["1001"].pause_reason == "code 2"
    caller = bed.call_in("13800000001", "95588")
    bed.run(12.0)
    caller.press("1")
    bed.run(4.0)
    assert bed.call_of(caller).b.number == "1002"
    assert director.feature("1001", "unpause", "")
    assert director.feature("1001", "queue_logout", "")
    assert director.acd.agents["1001"].state is AgentState.LOGGED_OUT
    assert not director.feature("9999", "pause", "")  # not an agent: refused
    events = [e.event for e in queue_log(bed) if e.agent == "SIP/1001"]
    assert events[-4:] == ["PAUSE", "UNPAUSE", "REMOVEMEMBER", "AGENTLOGOFF"]


def test_waiting_caller_hears_position_announcements(make_bed) -> None:
    bed = make_bed()  # no agent phone answers: everyone rings out
    director = bed.mgr.acd
    said: list[object] = []
    run = director._run
    director._run = lambda actions: (said.extend(actions), run(actions))[1]  # observe, change nothing
    caller = bed.call_in("13800000002", "95588")
    bed.run(12.0)
    caller.press("1")
    bed.run(65.0)
    announcements = [a for a in said if isinstance(a, Announce)]
    assert len(announcements) == 2 and all(a.position == 1 for a in announcements)
    assert bed.call_of(caller).state == "queue"
    caller.far_hangup()
    bed.run(0.5)
    assert queue_log(bed)[-1].event == "ABANDON"


class PriFarEnd:
    """The exchange's side of a PRI span into the box (network-side Q.931 over Q.921 frames, moved every
    5 ms of virtual time). Calls the box places (callbacks) are answered, or left ringing, as told."""

    def __init__(self, bed, answer_after: float | None = 2.0) -> None:
        from firmware.calls.pri import PriTrunk
        from firmware.signalling.pri import PriSpan
        from firmware.signalling.q931.state import Party

        self.bed = bed
        self.box = PriSpan(Party.USER)
        self.net = PriSpan(Party.NETWORK)
        self.trunk = PriTrunk(self.box, "span1", 0, bed.mgr, bed.clock, span_no=1)
        bed.mgr.trunks["span1"] = self.trunk
        self.answer_after = answer_after
        self.events: list = []
        self.dialled: list = []  # the box's outbound calls (IncomingCall on the network side)
        now = bed.clock.now()
        self.box.start(now)
        self.net.start(now)
        self._tick()

    def _tick(self) -> None:
        from firmware.signalling import events as ev

        now = self.bed.clock.now()
        for _ in range(100):
            a, b = self.box.frames_to_send(), self.net.frames_to_send()
            for frame in a:
                self.net.receive_frame(frame, now)
            for frame in b:
                self.box.receive_frame(frame, now)
            for span in (self.box, self.net):
                deadline = span.next_deadline()
                if deadline is not None and deadline <= now:
                    span.handle_timers(now)
            self.trunk.pump(now)
            for event in self.net.events():
                self.events.append(event)
                if isinstance(event, ev.IncomingCall):
                    self.dialled.append(event)
                    self.net.proceeding(event.call_id, now)
                    self.net.alert(event.call_id, now)
                    if self.answer_after is not None:
                        self.bed.clock.call_later(
                            self.answer_after,
                            lambda cid=event.call_id: self.net.answer(cid, self.bed.clock.now()),
                        )
            if not a and not b:
                break
        self.bed.clock.call_later(0.005, self._tick)

    def hangup(self, call_id: int) -> None:
        self.net.hangup(call_id, self.bed.clock.now())


def _callback_config(tmp_path, **settings: object) -> object:
    from firmware.calls.setup import DEFAULT_DIALPLAN

    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    text = DEFAULT_DIALPLAN.read_text(encoding="utf-8").replace(
        "max_wait: 600, survey: survey, record: 10}", f"max_wait: 600, record: 0{extra}}}"
    )
    config = tmp_path / "config"
    config.mkdir()
    (config / "dialplan.yaml").write_text(text, encoding="utf-8")
    return config


def _pri_caller_asks_for_callback(bed, x) -> tuple[object, int]:
    """A PRI caller reaches the service queue, hears the offer, presses 2 and hangs up."""
    from firmware.engine.tones import dtmf_buffer

    director = bed.mgr.acd
    for agent in ("1001", "1002", "1003", "1004"):
        director.feature(agent, "pause", "1")
    bed.run(0.5)
    assert x.trunk.link_up
    call_id = x.net.place_call("95588", bed.clock.now(), calling="13812345678")
    bed.run(10.5)
    leg = next(iter(x.trunk.legs.values()))
    call = bed.mgr.call_of(leg)
    bed.port.send(leg.channel, dtmf_buffer("1"))  # IVR: 1 = the service queue
    bed.run(33.0)  # the offer comes at 30 s in the queue
    assert call.state == "queue"
    bed.port.send(leg.channel, dtmf_buffer("2"))  # 2 = be called back keeping my place
    bed.run(2.0)
    x.hangup(call_id)  # hangs up while told the callback is registered
    bed.run(3.0)
    assert not bed.mgr.calls
    return call, call_id


def test_pri_caller_presses_2_and_is_called_back_on_the_pri(make_bed, tmp_path) -> None:
    """Press 2, hang up; later an agent frees: the box rings the agent, then dials the customer on the PRI
    (presenting the trunk's number), bridges them; CDR and queue log agree."""
    bed = make_bed(config_dir=_callback_config(tmp_path, offer_frequency=30))
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=2.0))
    x = PriFarEnd(bed, answer_after=3.0)
    call, _ = _pri_caller_asks_for_callback(bed, x)
    original = call.uniqueid
    bed.run(20.0)  # nobody free: the callback waits in the caller's place
    assert f"{original}-cb" in bed.mgr.acd.acd.callers and not x.dialled
    bed.mgr.acd.feature("1001", "unpause", "")  # the agent frees up
    bed.run(2.5)  # the box calls the agent first; they answer after 2 s
    assert len(x.dialled) == 1
    setup = x.dialled[0]
    assert setup.called.digits == "13812345678" and setup.calling.digits == "95588"  # span1's number
    bed.run(4.0)  # the customer answers after 3 s: bridged
    [callback] = list(bed.mgr.calls.values())
    assert callback.state == "up" and callback.b is not None and callback.b.name.startswith("DAHDI/1-")
    assert bed.mgr.acd.acd.agents["1001"].state is AgentState.ON_CALL
    bed.run(20.0)  # they talk
    x.hangup(setup.call_id)  # the customer hangs up
    bed.run(1.0)
    assert not bed.mgr.calls and bed.mgr.acd.acd.agents["1001"].state is AgentState.AVAILABLE
    cdrs = {cdr.uniqueid: cdr for cdr in bed.mgr.store.cdrs()}
    back = cdrs[callback.uniqueid]
    assert back.linkedid == original and cdrs[original].linkedid == original
    assert back.dst == "13812345678" and back.src == "1001" and back.disposition == "ANSWERED"
    assert back.channel.startswith("SIP/1001") and back.dstchannel.startswith("DAHDI/1-")
    assert 19 <= back.billsec <= 21 and back.userfield == f"callback:{original}"
    story = [e for e in queue_log(bed) if e.callid == f"{original}-cb"]
    assert [e.event for e in story] == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"]
    assert story[0].field("url") == "callback" and story[0].field("callerid") == "13812345678"
    connect, complete = story[1], story[2]
    assert connect.agent == "SIP/1001" and connect.field("bridgedchanneluniqueid") == back.uniqueid
    assert connect.time == pytest.approx(back.answer, abs=1.0)
    assert int(complete.field("calltime")) == pytest.approx(back.billsec, abs=1)
    assert int(connect.field("holdtime")) == int(back.answer - cdrs[original].start) - 10  # from ENTERQUEUE
    assert [e.event for e in queue_log(bed) if e.callid == original] == ["ENTERQUEUE", "EXITWITHKEY"]
    db = bed.mgr.acd.acd.conn  # the file and the database tell the same story
    assert (
        db.execute("SELECT COUNT(*) FROM queue_log WHERE callid = ?", (f"{original}-cb",)).fetchone()[0] == 3
    )


def test_callback_customer_not_answering_is_retried_then_given_up(make_bed, tmp_path) -> None:
    bed = make_bed(
        config_dir=_callback_config(
            tmp_path, offer_frequency=30, callback_attempts=2, callback_retry=60, callback_ring=15
        )
    )
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=1.0))
    x = PriFarEnd(bed, answer_after=None)  # the customer's phone rings and rings
    call, _ = _pri_caller_asks_for_callback(bed, x)
    original = call.uniqueid
    bed.mgr.acd.feature("1001", "unpause", "")
    bed.run(1.5 + 15.5)  # agent answers; the customer rings 15 s
    assert len(x.dialled) == 1 and not bed.mgr.calls
    assert bed.mgr.acd.acd.agents["1001"].state is AgentState.AVAILABLE  # the agent is free meanwhile
    bed.run(50.0)
    assert len(x.dialled) == 1  # the retry interval (60 s) has not passed
    bed.run(30.0)
    assert len(x.dialled) == 2
    bed.run(120.0)
    assert len(x.dialled) == 2 and f"{original}-cb" not in bed.mgr.acd.acd.callers  # given up
    attempts = [c for c in bed.mgr.store.cdrs() if c.linkedid == original and c.uniqueid != original]
    assert [c.disposition for c in attempts] == ["NO ANSWER", "NO ANSWER"]
    assert all(c.dst == "13812345678" and c.answer == 0 for c in attempts)
    story = [(e.event, e.data) for e in queue_log(bed) if e.callid == f"{original}-cb"]
    assert [event for event, _ in story] == [
        "ENTERQUEUE",
        "CALLBACKFAILED",
        "CALLBACKFAILED",
        "EXITWITHTIMEOUT",
    ]
    assert story[1][1] == ("13812345678", "1", "noanswer") and story[2][1][1] == "2"


def test_box_recordings_are_searchable_and_purged_after_retention(make_bed) -> None:
    from firmware.acd.recordings import RecordingIndex
    from firmware.calls.setup import PURGE_EVERY_S

    bed = make_bed()
    bed.mgr.plan.queues["service"]["record"] = 100
    bed.mgr.plan.recording_retention_days = 1
    bed.phones.add_phone("1002", PhoneBehaviour(answer_after=1.0))
    bed.mgr.acd.feature("1001", "pause", "")
    caller = bed.call_in("13877776666", "95588")
    bed.run(12.0)
    caller.press("1")
    bed.run(10.0)
    caller.far_hangup()
    bed.run(1.0)
    index = RecordingIndex(bed.mgr.acd.acd.conn, bed.mgr.data_dir / "recordings")
    [found] = index.search(number="7776666")
    assert found.agent == "1002" and found.queue == "service" and found.complete and found.seconds > 5
    assert index.search(agent="1001") == [] and len(index.search(queue="service")) == 1
    path = found.path
    assert PURGE_EVERY_S <= 3600  # the box purges at least hourly; a day later this one is past retention
    assert index.purge(bed.mgr.wall() + 86400 + 60, bed.mgr.plan.recording_retention_days) == 1
    assert index.search() == []
    import os

    assert not os.path.exists(path)


def test_what_the_announcement_says(make_bed) -> None:
    """Position and estimated wait as the recorded fragments the caller hears, in Mandarin and English."""
    from firmware.acd.core import Announce
    from firmware.ivr.say import say_number_cmn, say_number_en

    bed = make_bed()
    director = bed.mgr.acd
    spoken: list[list[str]] = []
    director._say = lambda call, fragments: spoken.append(fragments)  # observe what would be played
    caller = bed.call_in("13800000003", "95588")
    bed.run(12.0)
    caller.press("1")
    bed.run(2.0)
    callid = bed.call_of(caller).uniqueid
    director._run([Announce(callid, 3, 150.0)])
    assert spoken[-1] == [
        "you_are_number",
        *say_number_cmn(3),
        "in_queue",
        "wait_about",
        *say_number_cmn(2),
        "minutes",
    ]  # 150 s rounds to about 2 minutes
    director.lang = "en"
    director._run([Announce(callid, 12, None)])  # no estimate yet: the position alone
    assert spoken[-1] == ["you_are_number", *say_number_en(12), "in_queue"]
    # every fragment named exists as a prompt in both languages
    for lang in ("cmn", "en"):
        for name in ["you_are_number", "in_queue", "wait_about", "minutes", *say_number_cmn(3)]:
            assert bed.mgr.prompts.path(name, lang) is not None, (name, lang)


def test_queue_timeout_to_voicemail_leaves_a_message_in_the_mailbox(make_bed, tmp_path) -> None:
    """A queue whose callers wait too long overflows to voicemail:200; the default voicemail flow records
    the message, filed under mailbox 200 with the caller's number."""
    from firmware.acd.recordings import RecordingIndex
    from firmware.calls.setup import DEFAULT_DIALPLAN

    config = tmp_path / "config"
    config.mkdir()
    text = DEFAULT_DIALPLAN.read_text(encoding="utf-8").replace(
        "max_wait: 600, survey: survey, record: 10}",
        "max_wait: 20, survey: survey, record: 10, overflow: 'voicemail:200'}",
    )
    (config / "dialplan.yaml").write_text(text, encoding="utf-8")
    bed = make_bed(config_dir=config)
    assert bed.mgr.acd.acd.queues["service"].config.overflow == "voicemail:200"
    caller = bed.call_in("13855554444", "95588")  # no agent answers: everyone rings out
    bed.run(12.0)
    caller.press("1")
    bed.run(25.0)  # 20 s in the queue, then the voicemail greeting and the beep
    call = bed.call_of(caller)
    assert call is not None and call.state == "ivr" and call.vars.get("mailbox") == "200"
    caller.say(np.full(8000 * 3, 3000, dtype=np.int16))  # three seconds of message
    bed.run(4.0)
    caller.press("#")
    bed.run(6.0)
    index = RecordingIndex(bed.mgr.acd.acd.conn, bed.mgr.data_dir / "messages")
    [message] = index.search(extension="200", kind="message")
    assert message.number == "13855554444" and message.queue == "service"
    assert [e.event for e in queue_log(bed) if e.callid == call.uniqueid][-1] == "EXITWITHTIMEOUT"


def test_agent_holds_30s_and_transfers_reports_match_hand_computation(make_bed, tmp_path) -> None:
    """The agent's phone holds the caller 30 s (SIP re-INVITE -> CallManager.phone_hold) then transfers
    them (REFER -> CallManager.transfer): the queue log has HOLD / UNHOLD / BLINDTRANSFER as Asterisk writes
    them, and the report's AHT is talk + hold + wrap-up worked out by hand."""
    from firmware.acd.reports import agent_report, queue_report

    bed = make_bed(config_dir=_callback_config(tmp_path, wrapup=10))
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=2.0))
    bed.phones.add_phone("1005", PhoneBehaviour(answer_after=1.0))
    for agent in ("1002", "1003", "1004"):
        bed.mgr.acd.feature(agent, "pause", "")
    start = bed.mgr.wall()
    caller = bed.call_in("13812340000", "95588")
    bed.run(12.0)
    caller.press("1")
    bed.run(4.0)
    call = bed.call_of(caller)
    agent_leg = call.b
    assert agent_leg is not None and agent_leg.number == "1001"
    bed.run(18.0)  # 20 s of talk since the answer
    bed.mgr.phone_hold(agent_leg, True)
    assert call.state == "held"
    bed.run(30.0)  # 30 s on hold
    assert bed.mgr.transfer(agent_leg, "1005")  # REFER: blind transfer while the caller is held
    assert bed.mgr.acd.acd.agents["1001"].state is AgentState.WRAP_UP
    bed.run(5.0)
    assert call.b is not None and call.b.number == "1005"
    caller.far_hangup()
    bed.run(12.0)
    assert bed.mgr.acd.acd.agents["1001"].state is AgentState.AVAILABLE and not bed.mgr.calls
    story = [e for e in queue_log(bed) if e.callid == call.uniqueid]
    assert [e.event for e in story] == ["ENTERQUEUE", "CONNECT", "HOLD", "UNHOLD", "BLINDTRANSFER"]
    assert story[3].field("duration") == "30"
    transfer = story[4]
    assert transfer.agent == "SIP/1001" and transfer.field("extension") == "1005"
    assert transfer.field("calltime") == "50" and transfer.field("origposition") == "1"
    [cdr] = bed.mgr.store.cdrs()
    assert cdr.lastapp == "Transfer" and cdr.dstchannel.startswith("SIP/")
    conn = bed.mgr.acd.acd.conn
    [row] = [r for r in queue_report(conn, start, bed.mgr.wall() + 1) if r.queue == "service"]
    # by hand: talk 20 s + hold 30 s + wrap-up 10 s = 60 s, one handled call
    assert row.handled == 1 and row.answered == 1
    assert (row.talk_total, row.hold_total, row.wrapup_total) == (20.0, 30.0, 10.0)
    assert row.aht == 60.0
    agent = {r.agent: r for r in agent_report(conn, start, bed.mgr.wall() + 1)}["1001"]
    assert agent.aht == 60.0
