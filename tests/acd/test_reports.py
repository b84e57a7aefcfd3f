"""Report figures against hand-computed expectations, and Erlang C against the published example."""

from __future__ import annotations

import time

import pytest

from firmware.acd.erlang import agents_required, erlang_c, staffing
from firmware.acd.reports import agent_report, hourly_report, queue_report, to_csv, to_table

QUEUES = """
queues:
  service:
    strategy: leastrecent
    members: ["8001", "8002"]
    wrapup: 10
    announce_frequency: 0
"""


@pytest.fixture
def scripted(make_acd):
    """A scripted 100 s of traffic; every figure below is worked out by hand from this script."""
    h = make_acd(QUEUES)
    acd, t0 = h.acd, 1000.0
    acd.login("8001", t0)
    acd.login("8002", t0)
    assert [a.agent for a in acd.enter("c1", "service", "111", t0) if hasattr(a, "timeout")] == ["8001"]
    assert [a.agent for a in acd.enter("c2", "service", "222", t0) if hasattr(a, "timeout")] == ["8002"]
    acd.answered("c1", "8001", t0 + 5)  # waited 5 s: inside the 20 s service level
    acd.enter("c3", "service", "333", t0 + 10)
    acd.enter("c4", "service", "444", t0 + 12)
    acd.hangup("c4", t0 + 20)  # abandoned after 8 s (inside SL)
    acd.hangup("c3", t0 + 35)  # abandoned after 25 s (outside SL)
    acd.answered("c2", "8002", t0 + 30)  # waited 30 s: outside
    acd.hold("c2", t0 + 40)
    acd.unhold("c2", t0 + 50)  # 10 s on hold
    acd.agent_hangup("c1", t0 + 65)  # talk 60 s, then 10 s wrap-up
    acd.tick(t0 + 75)
    acd.hangup("c2", t0 + 90)  # 60 s connected, 10 s of it on hold -> talk 50 s
    acd.tick(t0 + 100)
    return h, t0


def test_queue_figures_by_hand(scripted):
    h, t0 = scripted
    [row] = queue_report(h.conn, t0, t0 + 101, threshold=20)
    assert (row.offered, row.answered, row.abandoned) == (4, 2, 2)
    assert row.service_level == pytest.approx(1 / 2)  # c1 of c1, c2
    assert row.service_level2 == pytest.approx((1 + 1) / (2 + 2))  # + c4 abandoned inside 20 s
    assert row.asa == pytest.approx((5 + 30) / 2)
    assert row.aht == pytest.approx(((60 + 0 + 10) + (50 + 10 + 10)) / 2)
    assert row.abandon_rate == pytest.approx(0.5)


def test_agent_figures_by_hand(scripted):
    h, t0 = scripted
    rows = {row.agent: row for row in agent_report(h.conn, t0, t0 + 100)}
    assert rows["8001"].answered == rows["8002"].answered == 1
    # 8001: rung at 1000, on the call 1005-1065, wrap-up to 1075, then free until 1100
    assert rows["8001"].occupancy == pytest.approx(75 / 100)
    # 8002: rung 1000-1030, on the call to 1090, wrap-up to 1100
    assert rows["8002"].occupancy == pytest.approx(100 / 100)
    assert rows["8001"].aht == pytest.approx(70)


def test_hourly_and_csv_and_table(scripted):
    h, t0 = scripted
    [hour] = hourly_report(h.conn, t0, t0 + 101, localtime=time.gmtime)
    assert hour.queue == "1970-01-01 00:00" and hour.offered == 4
    csv_text = to_csv(queue_report(h.conn, t0, t0 + 101))
    header, line = csv_text.splitlines()
    assert header.startswith("queue,offered,answered,abandoned")
    assert line.startswith("service,4,2,2") and "service_level2" in header
    assert "service" in to_table(queue_report(h.conn, t0, t0 + 101))
    assert to_table([]) == "(no data in this range)\n"


def test_range_excludes_other_times(scripted):
    h, t0 = scripted
    assert queue_report(h.conn, t0 + 500, t0 + 600) == []


def test_erlang_c_published_example():
    # 100 calls in 30 minutes, AHT 180 s, 80 % answered in 20 s -> 14 agents (callcentrehelper.com)
    result = agents_required(100, 1800, 180, 0.80, 20)
    assert result.agents == 14
    assert result.traffic_erlangs == pytest.approx(10.0)
    assert result.service_level == pytest.approx(0.888, abs=0.001)
    assert result.average_speed_of_answer == pytest.approx(7.8, abs=0.05)
    assert result.occupancy == pytest.approx(0.714, abs=0.001)
    assert staffing(13, 100, 1800, 180, 20).service_level < 0.80  # one fewer misses it


def test_erlang_c_limits():
    assert erlang_c(10, 10.0) == 1.0
    assert erlang_c(1, 0.0) == 0.0
    with pytest.raises(ValueError):
        agents_required(100, 1800, 180, 80, 20)  # a percentage instead of a fraction
