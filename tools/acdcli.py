"""`callbox report`, `callbox erlang` and `callbox acd`: the ACD's figures from the box's data directory.

callbox report queues  --data DIR [--from 2026-11-01] [--to 2026-11-02] [--threshold 20] [--csv]
callbox report agents  --data DIR ...
callbox report hourly  --data DIR ...
callbox erlang --calls 100 --interval 1800 --aht 180 [--sl 0.8] [--answer 20]
callbox acd --data DIR          agents' current states and callers waiting, from the stored log
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from firmware.acd import reports
from firmware.acd.erlang import agents_required
from firmware.acd.queuelog import read_entries

DB_NAME = "callbox.db"
TERMINAL_EVENTS = {
    "ABANDON",
    "COMPLETEAGENT",
    "COMPLETECALLER",
    "EXITWITHTIMEOUT",
    "EXITWITHKEY",
    "EXITEMPTY",
    "TRANSFER",
    "BLINDTRANSFER",
    "ATTENDEDTRANSFER",
}


def parse_when(text: str, now: float | None = None) -> float:
    """A time given on the command line: epoch seconds, YYYY-MM-DD[ HH:MM[:SS]], today, yesterday."""
    now = time.time() if now is None else now
    today = dt.datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if text == "today":
        return today.timestamp()
    if text == "yesterday":
        return (today - dt.timedelta(days=1)).timestamp()
    if text == "now":
        return now
    try:
        return float(text)
    except ValueError:
        pass
    for form in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(text, form).timestamp()
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a time (use YYYY-MM-DD[ HH:MM], today, yesterday or epoch)"
    )


def open_db(data: Path) -> sqlite3.Connection:
    path = data / DB_NAME
    if not path.exists():
        raise SystemExit(f"callbox: no data at {path} (run the box with --data {data} first)")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("queues", "agents", "hourly"), help="what to report on")
    parser.add_argument("--data", type=Path, default=Path("data"), help="the box's data directory")
    parser.add_argument("--from", dest="start", default="today", help="start of the range (default: today)")
    parser.add_argument("--to", dest="end", default="now", help="end of the range (default: now)")
    parser.add_argument("--threshold", type=float, default=20.0, help="service-level answer time, seconds")
    parser.add_argument("--csv", action="store_true", help="CSV instead of a table")


def run_report(args: argparse.Namespace) -> int:
    start, end = parse_when(args.start), parse_when(args.end)
    conn = open_db(args.data)
    if args.kind == "queues":
        rows = reports.queue_report(conn, start, end, args.threshold)
    elif args.kind == "agents":
        rows = reports.agent_report(conn, start, end)
    else:
        rows = reports.hourly_report(conn, start, end, args.threshold)
    sys.stdout.write(reports.to_csv(rows) if args.csv else reports.to_table(rows))
    return 0


def add_erlang_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=float, required=True, help="calls offered per interval")
    parser.add_argument(
        "--interval", type=float, default=1800, help="interval length, seconds (default 1800)"
    )
    parser.add_argument("--aht", type=float, required=True, help="average handling time, seconds")
    parser.add_argument(
        "--sl", type=float, default=0.8, help="target service level as a fraction (default 0.8)"
    )
    parser.add_argument("--answer", type=float, default=20, help="target answer time, seconds (default 20)")
    parser.add_argument(
        "--max-occupancy", type=float, default=1.0, help="highest occupancy allowed (fraction)"
    )


def run_erlang(args: argparse.Namespace) -> int:
    try:
        result = agents_required(
            args.calls, args.interval, args.aht, args.sl, args.answer, args.max_occupancy
        )
    except ValueError as error:
        print(f"callbox erlang: {error}", file=sys.stderr)
        return 2
    print(f"traffic                {result.traffic_erlangs:.2f} Erlangs")
    print(f"agents needed          {result.agents}")
    print(f"service level          {100 * result.service_level:.1f} % answered in {args.answer:g} s")
    print(f"probability of waiting {100 * result.probability_of_waiting:.1f} %")
    print(f"average speed of answer {result.average_speed_of_answer:.1f} s")
    print(f"occupancy              {100 * result.occupancy:.1f} %")
    return 0


def add_acd_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data"), help="the box's data directory")


def run_acd(args: argparse.Namespace) -> int:
    conn = open_db(args.data)
    now = time.time()
    states = conn.execute(
        "SELECT agent, state, reason, time FROM acd_agent_state s WHERE id = "
        "(SELECT MAX(id) FROM acd_agent_state WHERE agent = s.agent) ORDER BY agent"
    ).fetchall()
    print(f"{'agent':<10}{'state':<12}{'since':<20}reason")
    for agent, state, reason, when in states:
        print(f"{agent:<10}{state:<12}{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(when)):<20}{reason}")
    waiting: dict[str, tuple[str, float]] = {}
    for entry in read_entries(conn, now - 86400, None):
        if entry.event == "ENTERQUEUE":
            waiting[entry.callid] = (entry.queue, entry.time)
        elif entry.event in TERMINAL_EVENTS or entry.event == "CONNECT":
            waiting.pop(entry.callid, None)
    print(f"\n{'queue':<12}{'waiting':<9}longest wait")
    per_queue: dict[str, list[float]] = {}
    for queue, entered in waiting.values():
        per_queue.setdefault(queue, []).append(now - entered)
    for queue, waits in sorted(per_queue.items()):
        print(f"{queue:<12}{len(waits):<9}{max(waits):.0f} s")
    return 0


# One module, three subcommands (tools/cli.py names them as tools.acdcli:report and so on).
report = SimpleNamespace(add_arguments=add_report_arguments, run=run_report)
erlang = SimpleNamespace(add_arguments=add_erlang_arguments, run=run_erlang)
acd = SimpleNamespace(add_arguments=add_acd_arguments, run=run_acd)
