"""The box's main job (`callbox demo`) headless: simulated callers over PRI through the simulated board,
the IVR, the ACD and agents; every caller leaves a CDR and the queue log tells each queued call whole."""

from __future__ import annotations

import sqlite3

from firmware.acd.queuelog import read_entries
from tools.callcenter_demo import CallCenterDemo


def test_demo_runs_calls_end_to_end_and_keeps_the_records(tmp_path, prompt_dir) -> None:
    demo = CallCenterDemo(
        "sim-2e1-4fxo", tmp_path / "data", None, rate=1800, seed=5, prompt_dirs=[prompt_dir]
    )
    try:
        for _ in range(int(45 / demo.world.period)):
            demo.step()
        stats = demo.callers.stats
        assert stats.offered >= 8 and stats.talked >= 2
        assert all(exchange.link_up for exchange in demo.exchanges)
        rendered = demo.render()  # the live view builds from the running box
        assert rendered is not None and "callers" in demo.plain()
    finally:
        demo.close()
    conn = sqlite3.connect(tmp_path / "data" / "callbox.db")
    cdrs = conn.execute("SELECT COUNT(*) FROM cdr WHERE dcontext LIKE 'from-span%'").fetchone()[0]
    assert cdrs == stats.offered - stats.no_line  # every call that reached the box left one record
    story: dict[str, list[str]] = {}
    for entry in read_entries(conn):
        if entry.callid != "NONE":
            story.setdefault(entry.callid, []).append(entry.event)
    assert story
    for events in story.values():
        assert events[0] == "ENTERQUEUE"
        assert events[-1] in ("COMPLETECALLER", "COMPLETEAGENT", "ABANDON", "EXITWITHTIMEOUT"), events
