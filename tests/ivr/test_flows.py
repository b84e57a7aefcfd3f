"""IVR flows end to end in virtual time (in-band DTMF through the media engine), config errors, lint."""

from __future__ import annotations

import calendar
import shutil
import wave
from pathlib import Path

import pytest

from firmware.calls.loopback import PhoneBehaviour
from firmware.calls.setup import DEFAULT_DIALPLAN, DEFAULT_FLOWS, reload_config
from firmware.config import ConfigError
from firmware.engine.tones import sine_mix
from firmware.ivr.flow import loads_flow
from firmware.ivr.lint import lint_flow

MONDAY_8PM = calendar.timegm((2026, 11, 23, 12, 0, 0))
NATIONAL_DAY = calendar.timegm((2026, 10, 1, 3, 0, 0))

LOOKUP_FLOW = """
name: account
start: ask
nodes:
  ask: {type: collect, prompts: [enter_account], var: account, min: 6, max: 10, next: find}
  find: {type: lookup, by: account, found: balance, missing: nf}
  balance:
    type: play
    prompts: [your_balance_is, {say: number, value: "${customer.balance}"}, yuan]
    next: bye
  nf: {type: play, prompts: [account_not_found], next: bye}
  bye: {type: hangup}
"""


def config_with(tmp_path: Path, extra_flows: dict[str, str]) -> Path:
    cfg = tmp_path / "cfg"
    shutil.copytree(DEFAULT_FLOWS, cfg / "flows")
    text = DEFAULT_DIALPLAN.read_text()
    for name, body in extra_flows.items():
        (cfg / "flows" / f"{name}.yaml").write_text(body)
        text = text.replace("routes:\n", f'routes:\n  - {{dnis: "{name}", flow: {name}}}\n')
    (cfg / "dialplan.yaml").write_text(text)
    return cfg


@pytest.mark.slow
def test_invalid_then_timeout_then_fallback_operator(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1000", PhoneBehaviour(answer_after=1.0))
    caller = bed.call_in("13812345678")
    call = bed.call_of(caller)
    bed.run(13.0)
    caller.press("5")  # invalid
    bed.run(1.0)
    log = [w for _, uid, w in bed.mgr.log if uid == call.uniqueid]
    assert any("invalid '5'" in w for w in log)
    bed.run(90.0)  # never press again: timeouts, retries, then the fallback (operator)
    log = [w for _, uid, w in bed.mgr.log if uid == call.uniqueid]
    assert sum("no input" in w for w in log) == 3
    assert call.b is not None and call.b.number == "1000"


@pytest.mark.slow
def test_after_hours_records_a_message(make_bed) -> None:
    bed = make_bed(start=MONDAY_8PM)
    caller = bed.call_in("13812345678")
    call = bed.call_of(caller)
    from firmware.ivr.executor import _Record

    for _ in range(60):  # after-hours prompt, beep
        bed.run(0.5)
        if isinstance(call.ivr.waiting, _Record):
            break
    assert call.ivr.history[:2] == ["hours", "closed"]
    caller.say(sine_mix((440,), -12, 3.0))
    bed.run(3.2)
    caller.press("#")
    bed.run(6.0)  # goodbye, hang up
    assert caller.state == "down"
    recs = bed.mgr.store.recordings()
    assert len(recs) == 1 and recs[0]["kind"] == "message" and recs[0]["complete"] == 1
    with wave.open(recs[0]["path"]) as w:
        assert 3.0 <= w.getnframes() / 8000 <= 4.0
    assert bed.mgr.store.cdrs()[0].disposition == "ANSWERED"


def test_holiday_flow(make_bed) -> None:
    bed = make_bed(start=NATIONAL_DAY)
    caller = bed.call_in("13812345678")
    call = bed.call_of(caller)
    bed.run(15.0)
    assert caller.state == "down" and call.ivr is None
    assert [w for _, uid, w in bed.mgr.log if uid == call.uniqueid][-1].startswith("ended ANSWERED")


def test_customer_lookup_and_read_back(make_bed, tmp_path: Path) -> None:
    bed = make_bed(config_dir=config_with(tmp_path, {"account": LOOKUP_FLOW}))
    bed.mgr.store.add_customer("13800000000", "88001234", "王芳", {"balance": "1024.5"})
    caller = bed.call_in("13812345678", "account")
    call = bed.call_of(caller)
    bed.run(1.0)
    caller.press("88001234#")
    bed.run(2.0)
    assert call.vars["account"] == "88001234" and call.vars["customer.balance"] == "1024.5"
    caller.heard()
    bed.run(1.5)
    assert "balance" in call.ivr.history
    bed.run(25.0)
    assert caller.state == "down", call.ivr.history if call.ivr else bed.mgr.log[-5:]
    # missing account
    caller2 = bed.call_in("13812345679", "account")
    call2 = bed.call_of(caller2)
    bed.run(1.0)
    caller2.press("12345678#")
    bed.run(2.0)
    assert call2.ivr.history[-1] == "nf"


@pytest.mark.slow
def test_survey_after_agent_hangs_up(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=1.0, hangup_after=10.0))
    caller = bed.call_in("13900000001")  # VIP -> service queue (survey configured)
    bed.run(12.0)
    call = bed.call_of(caller)
    assert call.ivr is not None and call.ivr.flow.name == "survey"
    bed.run(2.0)
    caller.press("8")
    bed.run(10.0)
    cdr = bed.mgr.store.cdrs()[0]
    assert cdr.survey == 8 and "survey=8" in cdr.userfield


def test_bad_flow_rejected_running_config_stays(make_bed, tmp_path: Path) -> None:
    bed = make_bed()
    flows_before = dict(bed.mgr.flows)
    bad = LOOKUP_FLOW.replace("missing: nf}", "missing: nowhere}")
    cfg = config_with(tmp_path, {"account": bad})
    with pytest.raises(ConfigError) as exc:
        reload_config(bed.mgr, cfg)
    e = exc.value
    assert e.file.endswith("account.yaml") and e.line == 6 and e.field == "nodes.find.missing"
    assert "unknown node 'nowhere'" in str(e)
    assert bed.mgr.flows == flows_before
    # schema error: wrong type, line and field
    with pytest.raises(ConfigError) as exc:
        loads_flow(
            "name: x\nstart: a\nnodes:\n  a:\n    type: menu\n    options: {1: a}\n    retries: many\n"
        )
    assert exc.value.line == 7 and exc.value.field == "nodes.a.retries"
    with pytest.raises(ConfigError) as exc:
        loads_flow("name: x\nstart: a\nnodes:\n  a: {type: hangup, colour: red}\n")
    assert exc.value.line == 4 and exc.value.field == "nodes.a.colour"
    # broken dialplan
    cfg2 = config_with(tmp_path / "2", {})
    (cfg2 / "dialplan.yaml").write_text(
        DEFAULT_DIALPLAN.read_text().replace("queue: sales}", "queue: nosuch}")
    )
    with pytest.raises(ConfigError) as exc:
        reload_config(bed.mgr, cfg2)
    assert exc.value.field == "routes.0.queue" and exc.value.line is not None


def assert_nothing_stuck(bed) -> None:
    assert not bed.mgr.calls and not bed.mgr._by_channel
    assert bed.pstn.busy_count == 0 and bed.phones.busy_count == 0
    assert all(p.active == 0 for p in bed.engine.pools.values())
    assert not bed.engine.play_active.any() and (bed.engine.src == bed.engine.silence_row).all()


@pytest.mark.slow
def test_endless_keys_leave_nothing_stuck(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1000", PhoneBehaviour(answer_after=None))
    caller = bed.call_in("13812345678")
    for _ in range(40):  # keys all the time
        caller.press("5*7")
        bed.run(1.0)
    assert bed.call_of(caller) is not None
    caller.far_hangup()
    bed.run(0.1)
    assert_nothing_stuck(bed)


def test_hangup_at_any_moment_leaves_nothing_stuck(make_bed) -> None:
    bed = make_bed()
    bed.phones.add_phone("1000", PhoneBehaviour(answer_after=None))
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=1.0))
    moments = (0.0, 0.05, 0.5, 2.5, 9.0, 14.0)
    for when in moments:  # in the welcome, the menu, the menu's wait, ringing the operator
        leg = bed.call_in("13812345678")
        bed.run(when)
        leg.press("0")
        bed.run(0.01)
        leg.far_hangup()
        bed.run(0.1)
    vip = bed.call_in("13900000001")  # in a queue, then talking to an agent
    bed.run(0.5)
    vip.far_hangup()
    vip2 = bed.call_in("13900000001")
    bed.run(2.0)
    assert bed.call_of(vip2).state == "up"
    vip2.far_hangup()
    bed.run(30.0)
    assert_nothing_stuck(bed)
    assert bed.mgr.store.cdr_count() == len(moments) + 2


def test_lint_warnings(tmp_path: Path) -> None:
    deep = {"name": "deep", "start": "m1", "operator": "op", "nodes": {"op": {"type": "hangup"}}}
    for i in range(1, 6):
        nxt = f"m{i + 1}" if i < 5 else "op"
        opts = {str(d): nxt for d in range(1, 8 if i == 2 else 2)}
        prompts = ["main_menu", "after_hours", "main_menu", "after_hours"]
        deep["nodes"][f"m{i}"] = {"type": "menu", "prompts": prompts, "options": opts}
    deep["nodes"]["orphan"] = {"type": "hangup", "prompts": ["no_such_prompt"]}
    import yaml

    flow = loads_flow(yaml.safe_dump(deep), file="deep.yaml")
    from firmware.prompts import PromptLibrary

    warnings = lint_flow(flow, PromptLibrary([Path(__file__).parent / "nonexistent"]))
    text = "\n".join(warnings)
    assert "menu depth 4" in text and "menu depth 5" in text
    assert "nodes.m2.options: 7 options" in text
    assert "no path from 'm1'" in text and "no_such_prompt" in text
    assert all(w.startswith("deep.yaml:") for w in warnings)


def test_lint_menu_prompt_length(prompt_dir: Path) -> None:
    from firmware.prompts import PromptLibrary

    long_menu = (
        "name: l\nstart: m\nnodes:\n  m:\n    type: menu\n"
        "    prompts: [after_hours, after_hours, after_hours]\n    options: {1: m}\n"
    )
    warnings = lint_flow(loads_flow(long_menu, file="l.yaml"), PromptLibrary([prompt_dir]))
    assert any("s of prompts (over 30 s)" in w for w in warnings)
    assert lint_flow(loads_flow(DEFAULT_FLOWS.joinpath("main.yaml").read_text(), file="main.yaml"),
                     PromptLibrary([prompt_dir])) == []  # fmt: skip
