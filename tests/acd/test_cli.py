"""The report commands on a real data directory, as an admin runs them."""

from __future__ import annotations

import pytest

from tools.acdcli import parse_when
from tools.cli import main

QUEUES = 'queues:\n  service:\n    members: ["8001"]\n    wrapup: 0\n'


def test_report_queues_csv_and_agents_table(make_acd, tmp_path, capsys):
    h = make_acd(QUEUES)
    h.acd.login("8001", 1000)
    h.acd.enter("c1", "service", "138", 1000)
    h.acd.answered("c1", "8001", 1012)
    h.acd.agent_hangup("c1", 1100)
    assert main(["report", "queues", "--data", str(tmp_path), "--from", "0", "--to", "2000", "--csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("queue,offered,answered") and out[1].startswith("service,1,1,0")
    assert main(["report", "agents", "--data", str(tmp_path), "--from", "0", "--to", "2000"]) == 0
    table = capsys.readouterr().out
    assert "8001" in table and "occupancy" in table
    assert main(["acd", "--data", str(tmp_path)]) == 0
    assert "available" in capsys.readouterr().out


def test_report_without_data_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no data"):
        main(["report", "queues", "--data", str(tmp_path / "nothing")])


def test_erlang_command(capsys):
    assert main(["erlang", "--calls", "100", "--interval", "1800", "--aht", "180"]) == 0
    assert "agents needed          14" in capsys.readouterr().out


def test_time_arguments():
    assert parse_when("1700000000") == 1700000000.0
    assert parse_when("today", now=1700000000.0) <= 1700000000.0
    with pytest.raises(Exception, match="not a time"):
        parse_when("last tuesday-ish")
