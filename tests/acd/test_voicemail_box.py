"""Voicemail retrieval in the box (*97 / *98, PIN, counts, play, delete), message-waiting on changes, and
the RFC 3842 NOTIFY the extension's SIP phones get."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware.acd.voicemail import check_pin, hash_pin
from firmware.calls.setup import DEFAULT_DIALPLAN


def _config(tmp_path: Path, pin: str = "4321") -> Path:
    config = tmp_path / "config"
    config.mkdir()
    text = DEFAULT_DIALPLAN.read_text(encoding="utf-8").replace(
        "max_wait: 600, survey: survey, record: 10}",
        "max_wait: 20, survey: survey, record: 10, overflow: 'voicemail:1001'}",
    )
    (config / "dialplan.yaml").write_text(text, encoding="utf-8")
    (config / "voicemail.yaml").write_text(f'mailboxes:\n  "1001": {{pin: "{hash_pin(pin)}"}}\n')
    return config


def _leave_message(bed) -> None:
    caller = bed.call_in("13855554444", "95588")  # no agent answers: the queue overflows to 1001's box
    bed.run(12.0)
    caller.press("1")
    bed.run(25.0)
    caller.say(np.full(8000 * 3, 3000, dtype=np.int16))
    bed.run(4.0)
    caller.far_hangup()  # hangs up while recording, as callers do
    bed.run(1.0)


def test_pin_is_stored_hashed_and_checked() -> None:
    stored = hash_pin("4321")
    assert "4321" not in stored and check_pin("4321", stored)
    assert not check_pin("1234", stored) and not check_pin("4321", "garbage")


def test_message_lights_the_lamp_and_is_retrieved_by_dtmf(make_bed, tmp_path) -> None:
    bed = make_bed(config_dir=_config(tmp_path))
    vm = bed.mgr.acd.voicemail
    lamp: list[tuple[str, int, int]] = []
    vm.listeners.append(lambda box, new, old: lamp.append((box, new, old)))
    _leave_message(bed)
    assert lamp == [("1001", 1, 0)] and vm.counts("1001") == (1, 0)
    [message] = vm.messages("1001")
    phone = bed.phones.call_in(bed.mgr, "1001", "*97")  # the agent dials *97 from their extension
    call = bed.call_of(phone)
    session = call.ivr
    assert call.cdr.lastapp == "VoiceMailMain" and session.box == "1001"
    bed.run(1.0)
    phone.press("4321#")
    bed.run(25.0)  # "you have 1 new and 0 old messages", the message, the options
    assert f"vm/{message.id}" in bed.engine.buffers  # the message itself was played
    assert lamp[-1] == ("1001", 0, 1)  # listened to: old now, the lamp goes off
    phone.press("7")  # delete
    bed.run(30.0)
    assert vm.messages("1001") == [] and lamp[-1] == ("1001", 0, 0)
    assert not Path(message.path).exists()
    assert session.outcome == "done" and bed.call_of(phone) is None  # "no more messages", goodbye
    cdr = bed.mgr.store.cdrs()[-1]
    assert cdr.lastapp == "VoiceMailMain" and cdr.src == "1001" and cdr.disposition == "ANSWERED"


def test_wrong_pin_three_times_hangs_up(make_bed, tmp_path) -> None:
    bed = make_bed(config_dir=_config(tmp_path))
    phone = bed.phones.call_in(bed.mgr, "1002", "*98")  # any box: mailbox first, then the PIN
    session = bed.call_of(phone).ivr
    for _ in range(3):
        bed.run(1.0)
        phone.press("1001#")
        bed.run(6.0)
        phone.press("1111#")
        bed.run(8.0)
    bed.run(10.0)
    assert session.outcome == "wrong_pin" and bed.call_of(phone) is None
    notes = [what for _, _, what in bed.mgr.log if "wrong mailbox or PIN" in what]
    assert len(notes) == 3


def test_mwi_notify_body_reaches_the_registered_phone() -> None:
    from firmware.sip.core import CoreConfig, SipCore
    from firmware.sip.extensions import Directory
    from firmware.sip.message import Request
    from firmware.sip.mwi import MwiNotifier, parse_message_summary
    from firmware.sip.rtp import MediaHub
    from tests.sip.phones import Phone, World

    directory = Directory.with_passwords("callbox", {"1001": "pw1", "1002": "pw2"})
    world = World(
        SipCore(directory, MediaHub(4), CoreConfig(host="127.0.0.1", port=5060, qualify_interval=0))
    )
    desk = Phone(world, "1001", "pw1", 6001)
    assert desk.register().status == 200
    mwi = MwiNotifier(world.core, now=lambda: world.now, flush=world.pump)
    assert mwi.update("1001", new=2, old=5) == 1
    assert mwi.update("1002", new=1, old=0) == 0  # nothing registered for 1002: nobody to tell
    [notify] = [m for m in desk.inbox if isinstance(m, Request) and m.method == "NOTIFY"]
    assert notify.headers.get("Event") == "message-summary"
    assert notify.headers.get("Content-Type") == "application/simple-message-summary"
    assert notify.uri == "sip:1001@127.0.0.1:6001"
    body = parse_message_summary(notify.body)
    assert body["messages-waiting"] == "yes" and body["voice-message"] == "2/5"
    assert body["message-account"] == "sip:1001@127.0.0.1:5060"
    mwi.update("1001", new=0, old=7)  # all listened to: the lamp goes off
    last = [m for m in desk.inbox if isinstance(m, Request) and m.method == "NOTIFY"][-1]
    assert parse_message_summary(last.body)["messages-waiting"] == "no"
    assert parse_message_summary(last.body)["voice-message"] == "0/7"
    # a phone registering later is told at once (the SipLine.on_registration hook)
    hook = mwi.on_registration(None)
    soft = Phone(world, "1001", "pw1", 6002)
    assert soft.register().status == 200
    hook("1001", "sip:1001@127.0.0.1:6002", True)
    [told] = [m for m in soft.inbox if isinstance(m, Request) and m.method == "NOTIFY"]
    assert parse_message_summary(told.body)["voice-message"] == "0/7"
    world.advance(40.0)  # the phones' 200 OK ends the transactions: nothing retransmitted or left over
    assert len([m for m in desk.inbox if isinstance(m, Request) and m.method == "NOTIFY"]) == 2


def test_a_mailbox_config_mistake_is_refused_with_file_line_and_field(tmp_path) -> None:
    import pytest

    from firmware.acd.voicemail import load_mailboxes
    from firmware.config import ConfigError

    (tmp_path / "voicemail.yaml").write_text('mailboxes:\n  "1001": {pin: "1234"}\n')  # a clear-text PIN
    with pytest.raises(ConfigError) as caught:
        load_mailboxes(tmp_path)
    assert caught.value.line == 2 and "mailboxes.1001.pin" in caught.value.field
    assert load_mailboxes(tmp_path / "nowhere") == {}


def test_box_sip_wires_holds_transfers_and_message_lamps(make_bed, tmp_path) -> None:
    """BoxSip.extension_lines joins the SIP line to call control: holds and REFERs to the manager, and a
    mailbox change to a NOTIFY for the extension's registered phone."""
    from firmware.sip.extensions import Directory
    from firmware.sip.message import Request, parse_datagram
    from firmware.sip.mwi import parse_message_summary
    from firmware.sip.service import BoxSip
    from tests.sip.phones import Phone, World

    bed = make_bed(config_dir=_config(tmp_path))
    sip = BoxSip(Directory.with_passwords("callbox", {"1001": "pw1"}), bed.clock, host="127.0.0.1", port=5090)
    try:
        line = sip.extension_lines(bed.mgr, bed.clock, 40)
        assert line.on_hold == bed.mgr.phone_hold and line.on_transfer == bed.mgr.transfer
        world = World(sip.service.core, clock=bed.clock)
        desk = Phone(world, "1001", "pw1", 6001)
        assert desk.register().status == 200
        sent: list[bytes] = []
        sip.service.server._send = lambda item: sent.append(item.data)  # observe what would go out
        bed.mgr.acd.voicemail.changed("1001")  # e.g. a message left: 0 new, 0 old here
        [notify] = [m for m in map(parse_datagram, sent) if isinstance(m, Request) and m.method == "NOTIFY"]
        assert notify.headers.get("Event") == "message-summary"
        assert parse_message_summary(notify.body)["voice-message"] == "0/0"
    finally:
        sip.close()
