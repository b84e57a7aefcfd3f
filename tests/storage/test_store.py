"""CDR store: WAL, fields, Master.csv export, customers, durability under SIGKILL."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.storage import MASTER_CSV_COLUMNS, Cdr, Store, cdr_csv_line, read_master_csv


def make_cdr(i: int, disposition: str = "ANSWERED") -> Cdr:
    c = Cdr(
        uniqueid=f"1700000000.{i}",
        linkedid=f"1700000000.{i}",
        clid='"Zhang San" <13800000000>',
        src="13800000000",
        dst="95555",
        dcontext="from-pstn",
        channel="E1/1-1",
        dstchannel="SIP/1001-1",
        lastapp="Dial",
        lastdata="SIP/1001",
        start=1_700_000_000.0,
        disposition=disposition,
    )
    if disposition == "ANSWERED":
        c.answer = 1_700_000_005.5
    c.close(1_700_000_065.9)
    return c


def test_wal_and_roundtrip(tmp_path: Path) -> None:
    store = Store(tmp_path / "box.db")
    assert store.journal_mode == "wal"
    c = make_cdr(1)
    assert (c.duration, c.billsec) == (65, 60)
    store.write_cdr(c)
    got = store.cdr(c.uniqueid)
    assert got == c
    u = make_cdr(2, "NO ANSWER")
    assert u.billsec == 0 and u.answer == 0
    with pytest.raises(ValueError):
        make_cdr(3, "WEIRD")


def test_master_csv_export(tmp_path: Path) -> None:
    store = Store(tmp_path / "box.db")
    store.write_cdr(make_cdr(1))
    store.write_cdr(make_cdr(2, "BUSY"))
    out = io.StringIO()
    assert store.export_csv(out, gmt=True) == 2
    text = out.getvalue()
    first = text.splitlines()[0]
    # strings quoted (inner quotes doubled), ints bare, Asterisk's date format
    assert first.startswith('"","13800000000","95555","from-pstn","""Zhang San"" <13800000000>","E1/1-1"')
    assert ',"2023-11-14 22:13:20","2023-11-14 22:13:25","2023-11-14 22:14:25",65,60,"ANSWERED",' in first
    rows = list(read_master_csv(text))
    assert len(rows) == 2 and rows[1]["disposition"] == "BUSY" and rows[1]["answer"] == ""
    assert list(rows[0]) == list(MASTER_CSV_COLUMNS)
    assert rows[0]["linkedid"] == "1700000000.1" and rows[0]["clid"] == '"Zhang San" <13800000000>'
    assert cdr_csv_line(make_cdr(1), gmt=True) == first


def test_customers(tmp_path: Path) -> None:
    store = Store(tmp_path / "box.db")
    store.add_customer("13800000000", "88001234", "王芳", {"balance": "1024.50", "level": "gold"})
    rec = store.lookup_customer("account", "88001234")
    assert rec is not None and rec["name"] == "王芳" and rec["balance"] == "1024.50"
    assert store.lookup_customer("number", "13800000000")["level"] == "gold"
    assert store.lookup_customer("number", "1") is None
    with pytest.raises(ValueError):
        store.lookup_customer("name; DROP TABLE cdr", "x")


CHILD = r"""
import sys
from firmware.storage import Store, Cdr
store = Store(sys.argv[1])
i = 0
while True:
    c = Cdr(uniqueid=f"k.{i}", linkedid=f"k.{i}", src="1", dst="2", start=1.0, disposition="ANSWERED")
    c.answer = 2.0
    c.close(3.0)
    store.write_cdr(c)
    print(c.uniqueid, flush=True)   # acknowledged = the call's resources may now be released
    i += 1
"""


def test_cdr_durable_under_sigkill(tmp_path: Path, repo_root: Path) -> None:
    for round_ in range(3):
        db = tmp_path / f"box{round_}.db"
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=repo_root,
            env={**os.environ, "PYTHONPATH": str(repo_root)},
        )
        acked = []
        deadline = time.monotonic() + 30
        while len(acked) < 40 + 13 * round_ and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert acked, "writer never acknowledged a record"
        store = Store(db)  # recovery on open; WAL replays committed transactions
        have = {c.uniqueid for c in store.cdrs()}
        missing = [u for u in acked if u not in have]
        assert not missing, f"lost acknowledged CDRs after kill -9: {missing[:5]}"
        store.close()


def test_cdr_export_cli(tmp_path: Path, capsys) -> None:
    from tools.cli import main

    store = Store(tmp_path / "callbox.db")
    store.write_cdr(make_cdr(1))
    store.close()
    assert main(["cdr", "export", "--data", str(tmp_path), "--gmt"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and '"ANSWERED"' in out
    assert main(["cdr", "export", "--data", str(tmp_path / "nowhere")]) == 2
