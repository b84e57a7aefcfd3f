"""Half an hour of seeded ACD traffic (the benchmark's scenario) in virtual time: the queue log must tell a
consistent story for every caller, and no agent may be left ringing or on a call that no longer exists."""

from __future__ import annotations

import sqlite3
from collections import defaultdict

import pytest

from firmware.acd.queuelog import read_entries
from tools.bench.acd import run_acd

TERMINAL = {
    "ABANDON",
    "COMPLETEAGENT",
    "COMPLETECALLER",
    "TRANSFER",
    "EXITWITHTIMEOUT",
    "EXITWITHKEY",
    "EXITEMPTY",
    "JOINEMPTY",
    "FULL",
}


@pytest.mark.parametrize(
    "seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)]
)
def test_log_tells_one_story_per_caller(tmp_path, seed):
    result = run_acd(1800, seed, tmp_path)
    assert result["decisions"] > 1000
    conn = sqlite3.connect(tmp_path / "callbox.db")
    story: dict[str, list[str]] = defaultdict(list)
    for entry in read_entries(conn):
        if entry.callid != "NONE":
            story[entry.callid].append(entry.event)
    assert story
    for callid, events in story.items():
        connects = events.count("CONNECT")
        assert connects <= 1 + events.count("ENTERQUEUE"), (callid, events)
        ends = [e for e in events if e in TERMINAL]
        # every ending follows an entry; a call connected to an agent ends at most once
        assert len(ends) <= events.count("ENTERQUEUE") + events.count("JOINEMPTY") + events.count("FULL"), (
            callid,
            events,
        )
        if "CONNECT" in events:
            after = events[events.index("CONNECT") + 1 :]
            assert not {"ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY"} & set(after), (callid, events)


def test_same_seed_replays_exactly(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_acd(120, 7, tmp_path / "a")
    second = run_acd(120, 7, tmp_path / "b")
    a = [e.to_line() for e in read_entries(sqlite3.connect(tmp_path / "a" / "callbox.db"))]
    b = [e.to_line() for e in read_entries(sqlite3.connect(tmp_path / "b" / "callbox.db"))]
    assert a == b and first["decisions"] == second["decisions"]
