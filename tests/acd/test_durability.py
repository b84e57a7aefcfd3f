"""kill -9 in the middle of ACD traffic: the queue log in SQLite loses no committed line and parses whole,
and a restarted ACD rebuilds every agent from it with nobody stuck ringing or on a call."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from firmware.acd.config import parse_acd_config
from firmware.acd.core import Acd, AgentState
from firmware.acd.queuelog import QueueLog, parse_line, read_entries
from tools.bench.acd import build_config

RUNNER = """
import sys
from pathlib import Path
from tools.bench.acd import run_acd
run_acd(36000, 3, Path(sys.argv[1]), pace=600.0)  # ten hours of traffic at 600x: killed long before the end
"""


def test_kill_minus_nine_mid_traffic_loses_nothing_committed(tmp_path: Path):
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tmp_path)], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
    )
    db = tmp_path / "callbox.db"
    deadline = time.monotonic() + 60
    completed = 0
    while time.monotonic() < deadline and completed < 30:
        time.sleep(0.5)
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as probe:
                    completed = probe.execute(
                        "SELECT COUNT(*) FROM queue_log WHERE event IN ('COMPLETEAGENT','COMPLETECALLER')"
                    ).fetchone()[0]
            except sqlite3.OperationalError:
                pass  # tables not created yet
    assert process.poll() is None, "the traffic process ended before it could be killed"
    seen_before_kill = completed
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert seen_before_kill >= 30

    conn = sqlite3.connect(db)
    entries = list(read_entries(conn))
    completes = [e for e in entries if e.event in ("COMPLETEAGENT", "COMPLETECALLER")]
    assert len(completes) >= seen_before_kill  # everything a reader saw committed is still there
    for entry in completes:  # each completed call's whole story is in the store with it
        story = [e.event for e in entries if e.callid == entry.callid]
        assert "ENTERQUEUE" in story and "CONNECT" in story, story
    # the text file is a faithful copy up to its last whole line
    lines = (tmp_path / "queue_log").read_text().splitlines()
    for line in lines[:-1]:
        parse_line(line)

    log = QueueLog(conn)
    restarted = Acd(parse_acd_config(build_config()), log)
    restarted.restore(entries, time.time())
    states = {agent.state for agent in restarted.agents.values()}
    assert states <= {AgentState.AVAILABLE, AgentState.PAUSED, AgentState.LOGGED_OUT}
    assert sum(agent.logged_in for agent in restarted.agents.values()) == 200


def test_full_database_keeps_the_log_in_memory_and_the_calls_going(make_acd):
    h = make_acd("queues:\n  service:\n    members: ['8001']\n")
    alarms: list[str] = []
    h.log.on_alarm = lambda source, text: alarms.append(text)
    h.acd.login("8001", h.now)
    pages = h.conn.execute("PRAGMA page_count").fetchone()[0]
    h.conn.execute(f"PRAGMA max_page_count = {pages}")  # the database is full from here on
    calls = 0
    for n in range(40):  # a few pages' worth of queue log
        h.acd.enter(f"c{n}", "service", f"1380000{n:04d}", h.now)
        h.acd.answered(f"c{n}", "8001", h.now + 1)
        h.acd.agent_hangup(f"c{n}", h.now + 30)
        h.now += 31
        calls += 1
    assert calls == 40 and not h.acd.callers  # routing went on
    assert h.log.pending and any("kept in memory" in a for a in alarms)
    h.conn.execute("PRAGMA max_page_count = 1073741823")  # space again
    h.acd.tick(h.now)
    assert not h.log.pending
    stored = [e for e in h.log.entries() if e.callid.startswith("c")]
    assert [e.callid for e in stored if e.event == "ENTERQUEUE"] == [f"c{n}" for n in range(40)]  # in order
    assert len([e for e in stored if e.event == "COMPLETEAGENT"]) == 40
