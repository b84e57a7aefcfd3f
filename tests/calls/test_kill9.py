"""kill -9 of the box mid-traffic: every call whose end was reported has its CDR; the store opens clean."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import sys, random
from firmware.calls.testbed import Testbed
from firmware.calls.loopback import PhoneBehaviour
data, prompts = sys.argv[1], sys.argv[2]
bed = Testbed(data, 1795399200.0, prompt_dirs=[prompts], trunk_lines=30, extensions=8)
for ext in ("1005", "1006", "1007"):
    bed.phones.add_phone(ext, PhoneBehaviour(answer_after=0.5, hangup_after=None))
rng = random.Random(7)
bed.mgr.on_call_end.append(lambda call: print(call.uniqueid, flush=True))  # after the CDR commit
n = 0
while True:
    if bed.pstn.free_rows and rng.random() < 0.5:
        leg = bed.call_in(f"1380000{n % 10000:04d}", rng.choice(["95599", "95599", "0000"]))
        n += 1
        life = rng.uniform(0.2, 3.0)
        bed.clock.call_later(life, leg.far_hangup)
    bed.run(0.1)
"""


def test_kill9_mid_traffic_loses_no_completed_call(tmp_path: Path, repo_root: Path) -> None:
    data = tmp_path / "data"
    empty = tmp_path / "noprompts"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    cmd = [sys.executable, "-c", CHILD, str(data), str(empty)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=repo_root, env=env)
    done: list[str] = []
    deadline = time.monotonic() + 120
    while len(done) < 60 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        done.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(done) >= 60, f"only {len(done)} calls completed before the deadline"
    db = sqlite3.connect(data / "callbox.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    have = {r[0] for r in db.execute("SELECT uniqueid FROM cdr")}
    missing = [u for u in done if u not in have]
    assert not missing, f"completed calls without a CDR after kill -9: {missing[:5]}"
    dispositions = {r[0] for r in db.execute("SELECT disposition FROM cdr")}
    assert "ANSWERED" in dispositions
    db.close()
    # the box starts again on the same data: nothing is left over from the killed run
    from firmware.calls.testbed import Testbed

    bed = Testbed(data, 1795399300.0, prompt_dirs=[empty])
    assert not bed.mgr.calls and bed.pstn.busy_count == 0
    assert bed.mgr.store.cdr_count() >= len(done)
    bed.close()
