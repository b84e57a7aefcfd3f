"""Call-center reports from the stored queue log, per queue, per agent and per hour, for any time range.

Definitions (what our buyers manage by):
- offered: callers presented to the queue (ENTERQUEUE, plus callers refused by JOINEMPTY or FULL);
- answered: CONNECT; abandoned: ABANDON; also timeouts, exits by key, exits when empty, refused;
- service level, both of Asterisk's formulas (app_queue's `queue show` SL and SL2), threshold T:
    SL  = answered within T / answered
    SL2 = (answered within T + abandoned within T) / (answered + abandoned)
- ASA: mean time waited by answered calls; AHT: talk + hold + wrap-up per handled call;
- abandon rate: abandoned / (answered + abandoned);
- occupancy per agent: time handling calls (ringing, on a call, wrapping up) / time logged in and not paused.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields

from firmware.acd.queuelog import QueueLogEntry, read_entries

HANDLING_STATES = ("ringing", "on-call", "wrap-up")
STAFFED_STATES = ("available", *HANDLING_STATES)


@dataclass
class QueueFigures:
    queue: str
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    timeout: int = 0
    exit_key: int = 0
    exit_empty: int = 0
    refused: int = 0
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0
    wait_answered_total: float = 0.0
    talk_total: float = 0.0
    hold_total: float = 0.0
    wrapup_total: float = 0.0
    handled: int = 0

    @property
    def service_level(self) -> float | None:
        return self.answered_in_sl / self.answered if self.answered else None

    @property
    def service_level2(self) -> float | None:
        total = self.answered + self.abandoned
        return (self.answered_in_sl + self.abandoned_in_sl) / total if total else None

    @property
    def asa(self) -> float | None:
        return self.wait_answered_total / self.answered if self.answered else None

    @property
    def aht(self) -> float | None:
        if not self.handled:
            return None
        return (self.talk_total + self.hold_total + self.wrapup_total) / self.handled

    @property
    def abandon_rate(self) -> float | None:
        total = self.answered + self.abandoned
        return self.abandoned / total if total else None


@dataclass
class AgentFigures:
    agent: str
    answered: int = 0
    missed: int = 0
    talk_total: float = 0.0
    hold_total: float = 0.0
    wrapup_total: float = 0.0
    staffed_seconds: float = 0.0
    handling_seconds: float = 0.0
    paused_seconds: float = 0.0

    @property
    def aht(self) -> float | None:
        return (
            (self.talk_total + self.hold_total + self.wrapup_total) / self.answered if self.answered else None
        )

    @property
    def occupancy(self) -> float | None:
        return self.handling_seconds / self.staffed_seconds if self.staffed_seconds else None


def _agent_name(channel: str) -> str:
    return channel.split("/", 1)[1] if "/" in channel else channel


def _queue_figures(
    entries: Iterable[QueueLogEntry], threshold: float, key: Callable[[QueueLogEntry], str]
) -> dict[str, QueueFigures]:
    figures: dict[str, QueueFigures] = {}

    def get(name: str) -> QueueFigures:
        if name not in figures:
            figures[name] = QueueFigures(name)
        return figures[name]

    for entry in entries:
        if entry.queue == "NONE":
            continue
        row = get(key(entry))
        event = entry.event
        if event in ("ENTERQUEUE", "JOINEMPTY", "FULL"):
            row.offered += 1
            row.refused += event != "ENTERQUEUE"
        elif event == "CONNECT":
            row.answered += 1
            wait = entry.number("holdtime")
            row.wait_answered_total += wait
            row.answered_in_sl += wait <= threshold
        elif event == "ABANDON":
            row.abandoned += 1
            row.abandoned_in_sl += entry.number("waittime") <= threshold
        elif event == "EXITWITHTIMEOUT":
            row.timeout += 1
        elif event == "EXITWITHKEY":
            row.exit_key += 1
        elif event == "EXITEMPTY":
            row.exit_empty += 1
    return figures


ENDINGS = ("COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER")


def _call_rows(
    conn: sqlite3.Connection, start: float, end: float
) -> list[tuple[str, str, float, float, float]]:
    """Handled calls ending in the range, from the queue log as Asterisk writes it: (queue, agent,
    calltime, hold, wrap-up). calltime is the agent's time on the call (COMPLETEAGENT / COMPLETECALLER /
    BLINDTRANSFER / ATTENDEDTRANSFER / TRANSFER), hold the sum of the call's UNHOLD durations; wrap-up is
    the box's own record (Asterisk does not log it)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS acd_calls (callid TEXT PRIMARY KEY, queue TEXT, agent TEXT, number TEXT,"
        " entered REAL, connected REAL, ended REAL, hold REAL DEFAULT 0, wrapup REAL DEFAULT 0)"
    )
    marks = ",".join("?" for _ in ENDINGS)
    ended = conn.execute(
        f"SELECT callid, queuename, agent, event, data2, data4 FROM queue_log WHERE event IN ({marks})"
        " AND time >= ? AND time < ? ORDER BY time, id",
        (*ENDINGS, start, end),
    ).fetchall()
    rows = []
    for callid, queue, agent, event, data2, data4 in ended:
        # COMPLETE*: holdtime|calltime|origposition; the transfers: two fields, holdtime, calltime, ...
        calltime = float((data2 if event.startswith("COMPLETE") else data4) or 0)
        hold = conn.execute(
            "SELECT COALESCE(SUM(CAST(data1 AS REAL)), 0) FROM queue_log"
            " WHERE callid = ? AND event = 'UNHOLD'",
            (callid,),
        ).fetchone()[0]
        wrapup = conn.execute("SELECT wrapup FROM acd_calls WHERE callid = ?", (callid,)).fetchone()
        rows.append((queue, _agent_name(agent), calltime, float(hold), float(wrapup[0]) if wrapup else 0.0))
    return rows


def queue_report(
    conn: sqlite3.Connection, start: float, end: float, threshold: float = 20.0
) -> list[QueueFigures]:
    figures = _queue_figures(read_entries(conn, start, end), threshold, key=lambda e: e.queue)
    for queue, _agent, calltime, hold, wrapup in _call_rows(conn, start, end):
        row = figures.setdefault(queue, QueueFigures(queue))
        row.handled += 1
        row.talk_total += calltime - hold
        row.hold_total += hold
        row.wrapup_total += wrapup
    return sorted(figures.values(), key=lambda f: f.queue)


def hourly_report(
    conn: sqlite3.Connection,
    start: float,
    end: float,
    threshold: float = 20.0,
    localtime: Callable[[float], time.struct_time] = time.localtime,
) -> list[QueueFigures]:
    """Queue figures per hour (box local time), all queues together; `queue` holds 'YYYY-MM-DD HH:00'."""

    def hour(entry: QueueLogEntry) -> str:
        return time.strftime("%Y-%m-%d %H:00", localtime(entry.time))

    figures = _queue_figures(read_entries(conn, start, end), threshold, key=hour)
    return sorted(figures.values(), key=lambda f: f.queue)


def agent_report(conn: sqlite3.Connection, start: float, end: float) -> list[AgentFigures]:
    figures: dict[str, AgentFigures] = {}

    def get(name: str) -> AgentFigures:
        if name not in figures:
            figures[name] = AgentFigures(name)
        return figures[name]

    for entry in read_entries(conn, start, end):
        if entry.event == "CONNECT":
            get(_agent_name(entry.agent)).answered += 1
        elif entry.event == "RINGNOANSWER":
            get(_agent_name(entry.agent)).missed += 1
    for _queue, agent, calltime, hold, wrapup in _call_rows(conn, start, end):
        row = get(agent)
        row.talk_total += calltime - hold
        row.hold_total += hold
        row.wrapup_total += wrapup
    # Time in each state, clipped to the range: each state lasts until the agent's next state row.
    rows = conn.execute(
        "SELECT agent, time, state FROM acd_agent_state WHERE time < ? ORDER BY agent, time, id", (end,)
    ).fetchall()
    by_agent: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for agent, when, state in rows:
        by_agent[agent].append((when, state))
    for agent, timeline in by_agent.items():
        for (when, state), following in zip(timeline, [*timeline[1:], (end, "")], strict=True):
            lo, hi = max(when, start), min(following[0], end)
            if hi <= lo:
                continue
            row = get(agent)
            if state in STAFFED_STATES:
                row.staffed_seconds += hi - lo
            if state in HANDLING_STATES:
                row.handling_seconds += hi - lo
            if state == "paused":
                row.paused_seconds += hi - lo
    return sorted(figures.values(), key=lambda f: f.agent)


def _cells(item: QueueFigures | AgentFigures) -> dict[str, object]:
    row: dict[str, object] = {k: v for k, v in asdict(item).items() if not k.endswith("_total")}
    derived = ("service_level", "service_level2", "asa", "aht", "abandon_rate", "occupancy")
    for name in derived:
        if hasattr(type(item), name):
            row[name] = getattr(item, name)
    return row


def _format(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 1.0 else f"{value:.1f}"
    return str(value)


def to_csv(items: list[QueueFigures] | list[AgentFigures]) -> str:
    out = io.StringIO()
    rows = [_cells(item) for item in items]
    header = list(rows[0]) if rows else [f.name for f in fields(QueueFigures)]
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row[h] is None else row[h] for h in header])
    return out.getvalue()


def to_table(items: list[QueueFigures] | list[AgentFigures]) -> str:
    rows = [_cells(item) for item in items]
    if not rows:
        return "(no data in this range)\n"
    header = list(rows[0])
    cells = [[_format(row[h]) for h in header] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines) + "\n"
