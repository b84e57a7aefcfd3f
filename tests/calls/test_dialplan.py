"""Dialplan: routes by trunk/DNIS/caller with calendars, blacklist, VIP, permissions, located errors."""

from __future__ import annotations

import calendar

import pytest

from firmware.calls.dialplan import loads_dialplan
from firmware.config import ConfigError

PLAN = """
timezone: Asia/Shanghai
calendars:
  office:
    hours: [{days: mon-fri, from: "09:00", to: "18:00"}, {days: sat, from: "09:00", to: "12:00"}]
    holidays: ["2026-10-01..2026-10-07", "2026-12-25"]
blacklist: ["13000000666", "^170"]
vip: [{caller: "^1390000", queue: q, priority: 20}]
routes:
  - {trunk: span2, queue: q}
  - {dnis: "95599", caller: "^138", extension: "1001"}
  - {dnis: "95599", flow: main, calendar: office, closed: {flow: night}, holiday: {queue: q}}
  - {flow: main}
extensions: {"1001": {permission: international}, "1002": {}}
queues: {q: {agents: ["1001"]}}
"""


def at(y, mo, d, h, mi=0) -> float:
    return calendar.timegm((y, mo, d, h - 8, mi, 0))  # Shanghai local time


def test_routing_and_calendars() -> None:
    plan = loads_dialplan(PLAN, {"main", "night"})
    r = plan.route_inbound
    assert r("span2", "1", "2", at(2026, 11, 23, 10))[0].target == "q"
    assert r("span1", "95599", "13812345678", at(2026, 11, 23, 10))[0].target == "1001"
    assert r("span1", "95599", "021", at(2026, 11, 23, 10))[0].target == "main"  # Monday 10:00 open
    assert r("span1", "95599", "021", at(2026, 11, 23, 19))[0].target == "night"  # after hours
    assert r("span1", "95599", "021", at(2026, 11, 28, 11))[0].target == "main"  # Saturday morning
    assert r("span1", "95599", "021", at(2026, 11, 29, 11))[0].target == "night"  # Sunday
    assert r("span1", "95599", "021", at(2026, 10, 3, 10))[0].target == "q"  # National Day holiday
    assert r("span1", "95599", "021", at(2026, 12, 25, 10))[1] == "route 2 holiday"
    assert r("span1", "400", "021", at(2026, 12, 25, 10))[0].target == "main"
    assert (
        plan.blacklisted("13000000666")
        and plan.blacklisted("17012345678")
        and not plan.blacklisted("13000000667")
    )
    vip = plan.vip_dest("13900001234")
    assert vip is not None and vip.priority == 20 and vip.target == "q"


def test_permissions() -> None:
    plan = loads_dialplan(PLAN, {"main", "night"})
    assert plan.permitted("1002", "1001") == (True, "internal")
    assert plan.permitted("1002", "62345678") == (True, "local")
    assert plan.permitted("1002", "02161234567") == (False, "long_distance")
    assert plan.permitted("1002", "0044123") == (False, "international")  # off by default
    assert plan.permitted("1001", "0044123") == (True, "international")
    assert plan.permitted("1002", "110")[0]  # emergency always


@pytest.mark.parametrize(
    ("bad", "line", "field", "text"),
    [
        ("  - {trunk: span2, queue: q}", 10, "routes.0.queue", "unknown queue 'nosuch'"),
        ("    holidays: [", 7, "", "YAML syntax"),
        ("extensions: {", 14, "extensions.1003.permission", "is not one of"),
        ("  - {flow: main}", 13, "routes.3.colour", "unknown field 'colour'"),
    ],
)
def test_errors_are_located(bad: str, line: int, field: str, text: str) -> None:
    replaced = {
        "  - {trunk: span2, queue: q}": "  - {trunk: span2, queue: nosuch}",
        "    holidays: [": "    holidays: [[[",
        "extensions: {": 'extensions: {"1003": {permission: everything}, ',
        "  - {flow: main}": "  - {flow: main, colour: red}",
    }[bad]
    with pytest.raises(ConfigError) as exc:
        loads_dialplan(PLAN.replace(bad, replaced), {"main", "night"})
    e = exc.value
    assert e.line == line and e.field == field and text in e.message, str(e)
