"""A completed queue call's queue-log lines commit with its CDR, in one SQLite transaction: kill -9 the box
at random points of queue traffic and the store never holds a CDR without its queue-log ending or a
queue-log ending without its CDR; the text file holds only lines the database committed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from firmware.acd.queuelog import parse_line

CHILD = r"""
import sys, random
from firmware.calls.testbed import Testbed
from firmware.calls.loopback import PhoneBehaviour
data, prompts, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
bed = Testbed(data, 1795399200.0, prompt_dirs=[prompts], trunk_lines=30, extensions=8)
for ext in ("1005", "1006", "1007"):
    bed.phones.add_phone(ext, PhoneBehaviour(answer_after=0.5, hangup_after=None))
rng = random.Random(seed)
bed.mgr.on_call_end.append(lambda call: print(call.uniqueid, flush=True))  # after the CDR commit
n = 0
while True:
    if bed.pstn.free_rows and rng.random() < 0.5:
        leg = bed.call_in(f"1380000{n % 10000:04d}", "95599")  # the sales queue, no IVR
        n += 1
        bed.clock.call_later(rng.uniform(0.2, 4.0), leg.far_hangup)  # abandons or talks, then hangs up
    bed.run(0.1)
"""

ENDINGS = ("COMPLETEAGENT", "COMPLETECALLER", "ABANDON")


def _kill_at_random(data: Path, prompts: Path, repo_root: Path, seed: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    cmd = [sys.executable, "-c", CHILD, str(data), str(prompts), str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=repo_root, env=env)
    wanted = random.Random(seed).randint(15, 60)  # a random point in the traffic
    done = 0
    deadline = time.monotonic() + 120
    while done < wanted and time.monotonic() < deadline:
        if not proc.stdout.readline():
            break
        done += 1
    time.sleep(random.Random(seed + 1).uniform(0.0, 0.3))  # and somewhere inside the next call's ending
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return done


def test_kill9_never_splits_a_cdr_from_its_queue_log_lines(tmp_path: Path, repo_root: Path) -> None:
    prompts = tmp_path / "noprompts"
    prompts.mkdir()
    checked = 0
    for seed in (11, 12, 13):
        data = tmp_path / f"data{seed}"
        done = _kill_at_random(data, prompts, repo_root, seed)
        assert done >= 15, f"only {done} calls completed before the deadline"
        db = sqlite3.connect(data / "callbox.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        cdrs = {row[0] for row in db.execute("SELECT uniqueid FROM cdr WHERE lastapp = 'Queue'")}
        marks = ",".join("?" for _ in ENDINGS)
        ended = {
            row[0] for row in db.execute(f"SELECT callid FROM queue_log WHERE event IN ({marks})", ENDINGS)
        }
        entered = {row[0] for row in db.execute("SELECT callid FROM queue_log WHERE event = 'ENTERQUEUE'")}
        assert cdrs <= ended, f"CDRs without their queue-log ending: {sorted(cdrs - ended)[:5]}"
        assert ended <= cdrs, f"queue-log endings without their CDR: {sorted(ended - cdrs)[:5]}"
        assert ended <= entered
        # the text file: only what the database committed, in whole lines (bar a torn last one)
        stored = {
            (int(r[0]), r[1], r[2])
            for r in db.execute("SELECT CAST(time AS INTEGER), callid, event FROM queue_log")
        }
        lines = (data / "queue_log").read_text().splitlines()
        for line in lines[:-1]:
            entry = parse_line(line)
            assert (int(entry.time), entry.callid, entry.event) in stored, line
        db.close()
        checked += len(cdrs)
    assert checked >= 45


def test_a_store_that_cannot_write_keeps_the_cdr_and_its_lines_together(make_bed) -> None:
    """The CDR write fails: the call's last queue-log lines are not committed either (nor in the file);
    both wait in memory and land together on the retry."""
    from firmware.calls.loopback import PhoneBehaviour

    bed = make_bed()
    bed.phones.add_phone("1005", PhoneBehaviour(answer_after=0.5))
    caller = bed.call_in("13800001111", "95599")  # the sales queue
    bed.run(5.0)
    call = bed.call_of(caller)
    assert call.b is not None and call.b.number == "1005"
    uid = call.uniqueid
    conn = bed.mgr.acd.acd.conn
    log_file = bed.mgr.data_dir / "queue_log"

    def endings() -> tuple[int, int]:
        stored = conn.execute(
            "SELECT COUNT(*) FROM queue_log WHERE callid = ? AND event = 'COMPLETECALLER'", (uid,)
        ).fetchone()[0]
        in_file = sum(
            f"|{uid}|" in line and "COMPLETECALLER" in line for line in log_file.read_text().splitlines()
        )
        return stored, in_file

    bed.mgr.store._db.execute("PRAGMA query_only = 1")  # the store cannot write from here
    caller.far_hangup()
    bed.run(1.0)
    assert bed.mgr.store.cdr(uid) is None and [c.uniqueid for c in bed.mgr.pending_cdrs] == [uid]
    assert endings() == (0, 0)
    assert bed.mgr.acd.acd.agents["1005"].state.value == "available"  # the agent is not held up by it
    bed.mgr.store._db.execute("PRAGMA query_only = 0")
    bed.run(11.0)  # pending CDRs are retried every 10 s
    assert bed.mgr.store.cdr(uid) is not None and not bed.mgr.pending_cdrs
    assert endings() == (1, 1)
