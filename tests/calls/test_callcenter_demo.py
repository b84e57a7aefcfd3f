"""The box's main job (`callbox demo --inprocess`) headless: simulated callers over PRI and the CO lines
through the simulated board, the IVR, the ACD and agents; every caller leaves a CDR and the queue log tells
each queued call whole."""

from __future__ import annotations

import calendar
import sqlite3

from firmware.acd.queuelog import read_entries
from tools.callcenter_demo import CallCenterDemo


def test_demo_runs_calls_end_to_end_and_keeps_the_records(tmp_path, prompt_dir) -> None:
    demo = CallCenterDemo(
        "sim-2e1-4fxo",
        tmp_path / "data",
        None,
        rate=1800,
        seed=5,
        prompt_dirs=[prompt_dir],
        fxo_rate=360,
        start=calendar.timegm((2026, 11, 23, 2, 0, 0)),  # office hours in Shanghai: the IVR's menu
    )
    try:
        for _ in range(int(45 / demo.world.period)):
            demo.step()
        stats, fxo = demo.callers.stats, demo.fxo_callers.stats
        assert stats.offered >= 8 and stats.talked >= 2 and fxo.offered - fxo.no_line >= 1
        assert all(exchange.link_up and exchange.restarts == 1 for exchange in demo.exchanges)
        rendered = demo.render()  # the live view builds from the running box
        assert rendered is not None and "callers" in demo.plain()
    finally:
        demo.close()
    conn = sqlite3.connect(tmp_path / "data" / "callbox.db")
    cdrs = conn.execute("SELECT COUNT(*) FROM cdr WHERE dcontext LIKE 'from-span%'").fetchone()[0]
    assert cdrs == stats.offered - stats.no_line  # every call that reached the box left one record
    fxo_cdrs = conn.execute("SELECT src FROM cdr WHERE dcontext = 'from-fxo'").fetchall()
    assert 1 <= len(fxo_cdrs) <= fxo.offered - fxo.no_line  # (one who gives up while ringing never arrives)
    assert all(src.startswith("1") and len(src) == 11 for (src,) in fxo_cdrs)  # caller ID reached the CDR
    story: dict[str, list[str]] = {}
    for entry in read_entries(conn):
        if entry.callid != "NONE":
            story.setdefault(entry.callid, []).append(entry.event)
    assert story
    for events in story.values():
        assert events[0] == "ENTERQUEUE"
        assert events[-1] in ("COMPLETECALLER", "COMPLETEAGENT", "ABANDON", "EXITWITHTIMEOUT"), events
