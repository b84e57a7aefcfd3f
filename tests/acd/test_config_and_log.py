"""Queue config errors carry file, line and field; queue_log lines have Asterisk's shape field by field."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.acd.config import ConfigError, load_acd_config, parse_acd_config
from firmware.acd.queuelog import QueueLog, QueueLogFormatError, parse_line

GOOD = """queues:
  service:
    strategy: ringall
    members: {"8001": 0, "8002": 1}
    penalty_steps: [{after: 30, max_penalty: 1}]
    overflow: "queue:sales"
  sales:
    members: ["8003"]
"""


def test_good_config_loads():
    config = parse_acd_config(GOOD, "queues.yaml")
    service = config.queues["service"]
    assert service.members == {"8001": 0, "8002": 1}
    assert service.max_penalty_after(10) == 0 and service.max_penalty_after(30) == 1
    assert service.overflow_kind == "queue" and service.overflow_target == "sales"


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        (GOOD.replace("ringall", "ringsome"), 3, "queues.service.strategy", "is not one of"),
        (
            GOOD.replace('    members: ["8003"]\n', "    wrapup: 5\n"),
            7,
            "queues.sales",
            "'members' is a required",
        ),
        (GOOD.replace("queue:sales", "queue:nowhere"), 6, "queues.service.overflow", "unknown queue"),
        (
            GOOD.replace("strategy: ringall", "strategy: ringall\n    ring_timeout: soon"),
            4,
            "queues.service.ring_timeout",
            "not of type 'number'",
        ),
        (
            GOOD.replace("strategy: ringall", "strategy: ringall\n    colour: blue"),
            4,
            "queues.service.colour",
            "unknown field",
        ),
        (GOOD.replace('"8002": 1', '"8002": -1'), 4, "queues.service.members.8002", "less than the minimum"),
        (
            GOOD.replace("{after: 30, max_penalty: 1}", "{after: 30}"),
            5,
            "queues.service.penalty_steps.0",
            "'max_penalty' is a required",
        ),
        (GOOD.replace('"queue:sales"', '"elsewhere"'), 6, "queues.service.overflow", "does not match"),
        ("queues: [\n", 2, "", "YAML syntax"),
        ("", None, "queues", "empty"),
        ("agents: {}\n", 1, "agents", "unknown field"),
    ],
)
def test_config_errors_name_file_line_and_field(text, line, field, reason):
    with pytest.raises(ConfigError) as caught:
        parse_acd_config(text, "queues.yaml")
    error = caught.value
    assert (error.file, error.line, error.field) == ("queues.yaml", line, field)
    assert reason in error.message
    assert str(error).startswith(f"queues.yaml:{line}" if line else "queues.yaml")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_acd_config(tmp_path / "absent.yaml")


def test_asterisk_documentation_line_parses_field_by_field():
    # The example line of Asterisk's queue log documentation
    entry = parse_line("1366720340|1366720340.303267|MYQUEUE|SIP/8007|RINGNOANSWER|1000")
    assert entry.time == 1366720340
    assert (entry.callid, entry.queue, entry.agent, entry.event) == (
        "1366720340.303267",
        "MYQUEUE",
        "SIP/8007",
        "RINGNOANSWER",
    )
    assert entry.field("ringtime") == "1000"
    assert entry.to_line() == "1366720340|1366720340.303267|MYQUEUE|SIP/8007|RINGNOANSWER|1000"
    connect = parse_line("1366720350|1366720340.303267|MYQUEUE|SIP/8007|CONNECT|10|1366720345.303268|5")
    assert (
        connect.number("holdtime"),
        connect.field("bridgedchanneluniqueid"),
        connect.number("ringtime"),
    ) == (10, "1366720345.303268", 5)
    with pytest.raises(KeyError):
        connect.field("calltime")


def test_writer_file_and_sqlite_agree(tmp_path):
    conn = sqlite3.connect(tmp_path / "db")
    log = QueueLog(conn, tmp_path / "queue_log")
    log.write(100.7, "c1", "q", "SIP/8001", "COMPLETEAGENT", 12, 340, 2)
    log.write(101.0, "c2", "q", "", "ENTERQUEUE", "", "1380000|0000")  # a separator in a field is neutralised
    file_entries = [parse_line(line) for line in (tmp_path / "queue_log").read_text().splitlines()]
    assert [e.to_line() for e in file_entries] == [e.to_line() for e in log.entries()]
    assert file_entries[0].to_line() == "100|c1|q|SIP/8001|COMPLETEAGENT|12|340|2"
    assert file_entries[1].agent == "NONE" and file_entries[1].field("callerid") == "1380000/0000"


@pytest.mark.parametrize("bad", ["", "abc", "1|2|3|4", "notatime|c|q|a|ENTERQUEUE"])
def test_malformed_lines_are_rejected_clearly(bad):
    with pytest.raises(QueueLogFormatError):
        parse_line(bad)


def test_unknown_event_and_too_many_fields_are_refused(tmp_path):
    log = QueueLog(sqlite3.connect(tmp_path / "db"))
    with pytest.raises(QueueLogFormatError):
        log.write(1, "c", "q", "a", "MADEUP")
    with pytest.raises(QueueLogFormatError):
        log.write(1, "c", "q", "a", "ABANDON", 1, 2, 3, 4, 5, 6)


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_cleanly(text):
    try:
        parse_line(text)
    except QueueLogFormatError:
        pass


@given(st.text(max_size=120))
def test_any_yaml_text_loads_or_gives_a_config_error(text):
    try:
        parse_acd_config(text, "fuzz.yaml")
    except ConfigError:
        pass


def test_acd_queues_come_from_the_dialplan_entries(repo_root):
    from firmware.acd.config import acd_config_from_dialplan
    from firmware.config import load_yaml

    doc = load_yaml(repo_root / "firmware" / "calls" / "default" / "dialplan.yaml")
    config = acd_config_from_dialplan(doc)
    assert set(config.queues) == set(doc.data["queues"])
    for name, entry in doc.data["queues"].items():
        queue = config.queues[name]
        assert list(queue.members) == [str(a) for a in entry["agents"]]
        assert queue.ring_timeout == entry.get("ring_seconds", queue.ring_timeout)
        assert queue.max_wait == entry.get("max_wait", 0.0)


def test_dialplan_queue_errors_keep_the_dialplan_line():
    from firmware.acd.config import acd_config_from_dialplan
    from firmware.config import parse_yaml

    text = (
        "queues:\n"
        "  service:\n"
        "    agents: {'1001': 0, '1002': 1}\n"
        "    ring_seconds: 15\n"
        "    timeout_dest: {queue: sales}\n"
        "    strategy: leastrecent\n"
        "  sales:\n"
        "    agents: ['1003']\n"
        "    wrapup: soon\n"
    )
    with pytest.raises(ConfigError) as caught:
        acd_config_from_dialplan(parse_yaml(text, "dialplan.yaml"))
    assert (caught.value.file, caught.value.line, caught.value.field) == (
        "dialplan.yaml",
        9,
        "queues.sales.wrapup",
    )
    good = acd_config_from_dialplan(parse_yaml(text.replace("wrapup: soon", "wrapup: 5"), "dialplan.yaml"))
    assert good.queues["service"].overflow == "queue:sales"
    assert good.queues["service"].members == {"1001": 0, "1002": 1}
