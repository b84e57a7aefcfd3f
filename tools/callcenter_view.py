"""The call-center half of the demo's live view: calls by state, each queue's waiting callers, longest wait
and service level, each agent's state, and the media tick's load. Renders with rich; also as plain lines
for logs and for terminals without live redraw."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from firmware.acd.core import Acd, AgentState
from firmware.acd.reports import queue_report

STATE_STYLE = {
    AgentState.AVAILABLE: "green",
    AgentState.RINGING: "yellow",
    AgentState.ON_CALL: "cyan",
    AgentState.WRAP_UP: "blue",
    AgentState.PAUSED: "magenta",
    AgentState.LOGGED_OUT: "dim",
}


def queue_rows(acd: Acd, wall_now: float, since: float) -> list[dict[str, Any]]:
    """Live queue figures plus today's service level from the stored queue log."""
    stored = {row.queue: row for row in queue_report(acd.conn, since, wall_now + 1)}
    rows = []
    for live in acd.queue_summary(wall_now):
        figures = stored.get(str(live["queue"]))
        threshold = acd.queues[str(live["queue"])].config.service_level
        rows.append(
            {
                **live,
                "answered": figures.answered if figures else 0,
                "abandoned": figures.abandoned if figures else 0,
                "service_level": figures.service_level if figures else None,
                "threshold": threshold,
            }
        )
    return rows


def render_callcenter(mgr: Any, acd: Acd, since: float) -> Group:
    now = mgr.wall()
    status = mgr.status()
    calls = Table(title="Calls", expand=False)
    for column in ("total", "IVR", "queue", "ringing", "talking", "held"):
        calls.add_column(column, justify="right")
    by_state = status["by_state"]
    calls.add_row(
        str(status["calls"]),
        str(by_state.get("ivr", 0)),
        str(by_state.get("queue", 0)),
        str(by_state.get("ringing", 0)),
        str(by_state.get("up", 0)),
        str(by_state.get("held", 0)),
    )

    queues = Table(title="Queues", expand=False)
    for column in ("queue", "waiting", "longest", "agents free/in", "answered", "abandoned", "SL"):
        queues.add_column(column, justify="right" if column != "queue" else "left")
    for row in queue_rows(acd, now, since):
        sl = row["service_level"]
        queues.add_row(
            str(row["queue"]),
            str(row["waiting"]),
            f"{row['longest_wait']:.0f} s",
            f"{row['available']}/{row['logged_in']}",
            str(row["answered"]),
            str(row["abandoned"]),
            "-" if sl is None else f"{100 * sl:.0f}% in {row['threshold']:.0f}s",
        )

    agents = Table(title="Agents", expand=False)
    agents.add_column("agent")
    agents.add_column("state")
    agents.add_column("calls", justify="right")
    for name, agent in sorted(acd.agents.items()):
        state = agent.state
        label = (
            f"{state.value} ({agent.pause_reason})"
            if state is AgentState.PAUSED and agent.pause_reason
            else state.value
        )
        agents.add_row(name, f"[{STATE_STYLE[state]}]{label}[/]", str(sum(agent.calls_taken.values())))

    tick = status["tick"]
    load = Table(title="Media tick", expand=False)
    for column in ("median", "p99", "p99.9", "overruns", "load"):
        load.add_column(column, justify="right")
    load.add_row(
        f"{tick.get('median_ms', 0):.2f} ms",
        f"{tick.get('p99_ms', 0):.2f} ms",
        f"{tick.get('p999_ms', 0):.2f} ms",
        str(int(tick.get("overruns", 0))),
        f"{100 * tick.get('load', 0):.1f} %",
    )
    return Group(calls, queues, agents, load)


def plain_callcenter(mgr: Any, acd: Acd, since: float) -> str:
    now = mgr.wall()
    status = mgr.status()
    parts = [f"calls {status['calls']}"]
    for row in queue_rows(acd, now, since):
        sl = row["service_level"]
        parts.append(
            f"{row['queue']}: {row['waiting']} waiting, longest {row['longest_wait']:.0f}s, "
            f"SL {'-' if sl is None else f'{100 * sl:.0f}%'}"
        )
    states: dict[str, int] = {}
    for agent in acd.agents.values():
        states[agent.state.value] = states.get(agent.state.value, 0) + 1
    parts.append("agents " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    return " | ".join(parts)
