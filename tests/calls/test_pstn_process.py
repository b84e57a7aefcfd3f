"""`callbox run` and `callbox pstn` as two processes over the line sockets, in real time: callers on the
PRI spans and the CO lines reach the box and every call leaves one CDR; a kill -9 of the box mid-traffic
(slow) comes back with every B-channel idle after RESTART and the network carries on."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _env(repo_root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(repo_root)}


def start_box(repo_root: Path, data: Path, prompts: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tools.cli", "run", "--board", "sim", "--data", str(data), "--prompts",
           str(prompts), "--sip-port", "0", "--status", "1"]  # fmt: skip
    box = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=repo_root,
                           env=_env(repo_root))  # fmt: skip
    deadline = time.monotonic() + 60
    assert box.stdout is not None
    while time.monotonic() < deadline:
        line = box.stdout.readline()
        if not line:
            break
        if line.startswith("callbox running"):
            os.set_blocking(box.stdout.fileno(), False)
            return box
    box.kill()
    raise AssertionError(f"callbox run did not start: {line!r}")


def start_pstn(repo_root: Path, data: Path, seconds: float, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tools.cli", "pstn", "--data", str(data), "--rate", "3600", "--fxo-rate",
           "1800", "--seconds", str(seconds), "--think", "2", "3", "--patience", "4", "--talk", "1", "2",
           "--json", "--status", "1", "--seed", "3", *extra]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=repo_root,
                            env=_env(repo_root))  # fmt: skip


def statuses(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def stop(box: subprocess.Popen[str]) -> None:
    box.send_signal(signal.SIGINT)
    try:
        box.wait(timeout=30)
    except subprocess.TimeoutExpired:
        box.kill()
        box.wait()


def cdrs(data: Path) -> dict[str, int]:
    db = sqlite3.connect(data / "callbox.db")
    try:
        rows = db.execute("SELECT dcontext, COUNT(*) FROM cdr GROUP BY dcontext").fetchall()
    finally:
        db.close()
    return dict(rows)


def test_box_and_network_as_two_processes(tmp_path: Path, repo_root: Path, prompt_dir: Path) -> None:
    data = tmp_path / "data"
    box = start_box(repo_root, data, prompt_dir)
    try:
        pstn = start_pstn(repo_root, data, 14.0)
        out, err = pstn.communicate(timeout=90)
        assert pstn.returncode == 0, err
    finally:
        stop(box)
    final = statuses(out)[-1]
    spans = final["spans"]
    # each span: one connection, one RESTART of every B-channel at start-up (no flapping D-channel)
    assert all(s["restarts"] == 1 and s["connects"] == 1 for s in spans.values()), json.dumps(spans)
    pri_placed = sum(s["placed"] for s in spans.values())
    fxo_placed = final["fxo"]["placed"]
    assert pri_placed >= 3 and fxo_placed >= 1, final
    assert final["active"] == 0  # the callers hung up at the end
    got = cdrs(data)
    # every call the network placed reached the box and left exactly one record
    assert got.get("from-span1", 0) + got.get("from-span2", 0) == pri_placed, (got, final)
    assert got.get("from-fxo", 0) <= fxo_placed  # an FXO caller who gives up while ringing never arrives


@pytest.mark.slow
def test_kill9_of_the_box_mid_traffic_comes_back_with_idle_channels(
    tmp_path: Path, repo_root: Path, prompt_dir: Path
) -> None:
    data = tmp_path / "data"
    box = start_box(repo_root, data, prompt_dir)
    pstn = start_pstn(repo_root, data, 40.0, "--patience", "60", "--talk", "20", "30")
    try:
        time.sleep(10)  # calls up on both spans
        os.kill(box.pid, signal.SIGKILL)
        box.wait()
        time.sleep(2)  # the network sees the cable pulled: its calls are cleared
        box = start_box(repo_root, data, prompt_dir)
        out, err = pstn.communicate(timeout=120)
        assert pstn.returncode == 0, err
    finally:
        if pstn.poll() is None:
            pstn.kill()
        stop(box)
    history = statuses(out)
    before = [h for h in history if h["t"] < 10]
    assert before and max(h["active"] for h in before) >= 2  # traffic stood when the box was killed
    final = history[-1]
    for name, span in final["spans"].items():
        assert span["connects"] == 2, name  # reconnected to the new box
        assert span["restarts"] == 2, name  # which RESTARTed every B-channel when its D-channel came up
        assert span["link"], name

    def placed(status: dict) -> int:
        return sum(span["placed"] for span in status["spans"].values())

    placed_after = placed(final) - max(placed(h) for h in before)  # offered to a box that was there
    assert placed_after > 5
    db = sqlite3.connect(data / "callbox.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    late = db.execute("SELECT COUNT(*) FROM cdr WHERE dcontext LIKE 'from-span%'").fetchone()[0]
    db.close()
    assert late >= placed_after - 2  # calls after the restart were taken and logged
