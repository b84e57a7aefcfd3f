"""Recording on or off per extension, per queue and per trunk, as the box applies it to its calls."""

from __future__ import annotations

from firmware.calls.loopback import PhoneBehaviour


def _queue_call(bed, number: str) -> None:
    bed.phones.add_phone("1002", PhoneBehaviour(answer_after=1.0))
    bed.mgr.acd.feature("1001", "pause", "")  # 1002 takes the call
    caller = bed.call_in(number, "95588")
    bed.run(12.0)
    caller.press("1")
    bed.run(10.0)
    caller.far_hangup()
    bed.run(1.0)


def _recorded(bed) -> list[str]:
    return [r["uniqueid"] for r in bed.mgr.store.recordings()]


def test_an_extension_that_opts_out_is_not_recorded_even_when_its_queue_records_all(make_bed) -> None:
    bed = make_bed()
    bed.mgr.plan.queues["service"]["record"] = 100
    bed.mgr.plan.extensions["1002"]["record"] = False
    _queue_call(bed, "13877776666")
    assert bed.mgr.store.cdrs()[-1].disposition == "ANSWERED"
    assert _recorded(bed) == []


def test_an_extension_set_to_record_is_recorded_when_its_queue_records_none(make_bed) -> None:
    bed = make_bed()
    bed.mgr.plan.queues["service"]["record"] = 0
    bed.mgr.plan.extensions["1002"]["record"] = True
    _queue_call(bed, "13877776667")
    assert len(_recorded(bed)) == 1


def test_a_trunk_set_to_record_records_calls_whose_queue_and_agent_say_nothing(make_bed) -> None:
    bed = make_bed()
    del bed.mgr.plan.queues["service"]["record"]
    bed.mgr.plan.record_trunks = {"span1": True}
    _queue_call(bed, "13877776668")
    assert len(_recorded(bed)) == 1
    bed.mgr.plan.record_trunks = {"span1": False}
    _queue_call(bed, "13877776669")
    assert len(_recorded(bed)) == 1  # the second call was not recorded


def test_record_settings_are_checked_at_load(tmp_path) -> None:
    import pytest

    from firmware.calls.dialplan import load_dialplan
    from firmware.config import ConfigError

    plan = tmp_path / "dialplan.yaml"
    plan.write_text("routes: []\nrecord_trunks: {span1: yes-please}\n")
    with pytest.raises(ConfigError, match="record_trunks"):
        load_dialplan(plan, set())
