"""Faults: a full disk stops recording with an alarm, never the call; a full database keeps CDRs in memory
(alarmed) and writes them when space is back; channels are released either way."""

from __future__ import annotations

import os
import sqlite3

import pytest

from firmware.calls.loopback import PhoneBehaviour
from firmware.engine.tones import sine_mix


def test_full_disk_stops_recording_not_the_call(make_bed) -> None:
    bed = make_bed()
    bed.mgr.plan.queues["sales"]["record"] = 100
    bed.phones.add_phone("1005", PhoneBehaviour(answer_after=1.0))
    caller = bed.call_in("13811112222", "95599")
    bed.run(0.2)
    call = bed.call_of(caller)
    rec_dir = bed.mgr.data_dir / "recordings"
    rec_dir.mkdir(parents=True, exist_ok=True)
    os.symlink("/dev/full", rec_dir / f"{call.uniqueid}.wav")  # every write: ENOSPC
    bed.run(1.5)
    assert call.state == "up" and call.recording is not None
    bed.run(2.0)
    assert any("disk full" in a for a in bed.mgr.alarms), bed.mgr.alarms
    assert not bed.engine.rec_active.any()
    agent = call.b
    caller.heard()
    agent.say(sine_mix((900,), -10, 0.5))
    bed.run(0.6)
    assert abs(caller.heard()).max() > 1000  # the call goes on
    caller.far_hangup()
    bed.run(0.1)
    assert bed.mgr.store.cdrs()[0].disposition == "ANSWERED"
    rec = bed.mgr.store.recordings()[0]
    assert rec["complete"] == 0
    assert any(kind == "alarm" and "disk full" in text for _, src, kind, text in bed.mgr.store.alarms())


def test_full_database_keeps_cdrs_and_releases_channels(make_bed) -> None:
    bed = make_bed()
    store = bed.mgr.store
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 4}")
    with pytest.raises(sqlite3.OperationalError, match="full"):
        for _n in range(100_000):  # fill every table's pages: SQLite now answers SQLITE_FULL
            store._db.execute(
                "INSERT INTO alarms(at, source, kind, text) VALUES (0, 'test', 'fill', ?)", ("x" * 64,)
            )
    with pytest.raises(sqlite3.OperationalError, match="full"):
        for n in range(100_000):
            store._db.execute("INSERT INTO cdr(uniqueid, linkedid) VALUES (?, 'filler')", (f"filler-{n}",))
    fillers = store.cdr_count()
    bed.phones.add_phone("1005", PhoneBehaviour(answer_after=0.5, hangup_after=2.0))
    for i in range(5):
        bed.call_in(f"1381111000{i}", "95599")
        bed.run(4.0)
    assert len(bed.mgr.pending_cdrs) == 5 and any("not written" in a for a in bed.mgr.alarms)
    assert not bed.mgr.calls and bed.pstn.busy_count == 0 and bed.phones.busy_count == 0
    store._db.execute("PRAGMA max_page_count = 1073741823")  # space again
    bed.run(11.0)
    assert not bed.mgr.pending_cdrs and store.cdr_count() == fillers + 5, bed.mgr.alarms[-2:]
    real = [c.src for c in store.cdrs() if c.linkedid != "filler"]
    assert real == [f"1381111000{i}" for i in range(5)]  # in order
