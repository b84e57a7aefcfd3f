"""The ACD inside the box: calls through the IVR into ACD queues, agents on phones, feature codes,
announcements, and the queue log beside the CDRs in the data directory."""

from __future__ import annotations

import numpy as np

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


def test_callback_settings_are_refused_until_the_box_can_dial_back(tmp_path) -> None:
    import pytest

    from firmware.calls.setup import DEFAULT_DIALPLAN, load_acd
    from firmware.config import ConfigError

    text = DEFAULT_DIALPLAN.read_text(encoding="utf-8")
    assert "offer_frequency" not in text
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("service:"))
    lines[index] = lines[index].replace("record: 10}", "record: 10, offer_frequency: 60}")
    (config_dir / "dialplan.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_acd(config_dir)
    assert caught.value.field == "queues.service.offer_frequency" and caught.value.line == index + 1
    assert "not available yet" in caught.value.message


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
