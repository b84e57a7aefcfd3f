"""ACD routing under load: 240 callers across 10 queues, 200 agents changing state, in virtual time.

    python -m tools.bench.acd [--seconds 1800] [--runs 3] [--pace 30] [--no-engine]

The ACD runs in the main thread on a virtual clock (callers keep arriving so about 240 wait; agents answer
after 1-6 s, talk 10-120 s, wrap up, pause and unpause, sometimes miss offers; callers abandon and
overflow), paced at --pace times real time (30x: thirty times the traffic of a full 200-seat center)
while the media engine ticks in real time on its own thread over 248 channels in the same process, as on
the box, so the tick figures show whether the ACD disturbs it.

Printed (medians over the runs; CPU is this thread's CPU time, so other processes on a shared machine do
not inflate it):
- routing decisions per second of routing CPU (a decision = agent(s) chosen and offered a caller): the
  routing function's capacity, target >= 10,000/s;
- ACD input events per second of ACD CPU, everything included (queue log to SQLite and file, agent state
  rows, one durable commit per event), and ACD CPU per hour of traffic;
- the media tick's median / p99 / p99.9 work time, overruns and late ticks while the ACD ran.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from firmware.acd.config import parse_acd_config
from firmware.acd.core import Acd, Connect, Leave, Ring
from firmware.acd.queuelog import QueueLog

QUEUES = 10
AGENTS = 200
TARGET_WAITING = 240
STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom")


def build_config() -> str:
    lines = ["queues:"]
    for q in range(QUEUES):
        # each agent serves its home queue (penalty 0) and the next queue (penalty 1): skills overlap
        members = {f"{8000 + a}": 0 for a in range(AGENTS) if a % QUEUES == q}
        members |= {f"{8000 + a}": 1 for a in range(AGENTS) if (a + 1) % QUEUES == q}
        member_text = ", ".join(f'"{k}": {v}' for k, v in members.items())
        lines += [
            f"  q{q}:",
            f"    strategy: {STRATEGIES[q % len(STRATEGIES)]}",
            f"    members: {{{member_text}}}",
            "    penalty_steps: [{after: 20, max_penalty: 1}]",
            "    ring_timeout: 12",
            "    retry: 3",
            "    wrapup: 5",
            "    autopause: 3",
            "    announce_frequency: 30",
            "    offer_frequency: 60",
            "    max_wait: 600",
            f"    overflow: {'callback' if q % 2 else 'hangup'}",
            "    sticky_days: 7",
        ]
    return "\n".join(lines) + "\n"


def run_acd(seconds: float, seed: int, workdir: Path, pace: float | None = None) -> dict[str, float]:
    conn = sqlite3.connect(workdir / "callbox.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    log = QueueLog(conn, workdir / "queue_log", fsync=False)
    acd = Acd(parse_acd_config(build_config(), "bench.yaml"), log, seed=seed)
    route_time = 0.0
    route = acd._route

    def timed_route(when: float) -> list:
        nonlocal route_time
        start = time.thread_time()
        actions = route(when)
        route_time += time.thread_time() - start
        return actions

    acd._route = timed_route  # type: ignore[method-assign]  # bench-only instrumentation
    rng = acd.random.__class__(seed + 1)
    now = 1_700_000_000.0
    spent = 0.0
    inputs = 0
    events: list[tuple[float, str, str, str]] = []  # (when, kind, callid, agent), kept sorted lazily
    callers = 0
    calls_waiting: set[str] = set()

    def call(method, *args: object) -> list:  # noqa: ANN001 - times one ACD entry point
        nonlocal spent, inputs
        inputs += 1
        start = time.thread_time()
        actions = method(*args)
        spent += time.thread_time() - start
        return actions

    def handle(actions: list) -> None:
        for action in actions:
            if isinstance(action, Ring):
                if rng.random() < 0.05:
                    continue  # the agent lets it ring out: RINGNOANSWER, retry, maybe auto-pause
                events.append((now + rng.uniform(1, 6), "answer", action.callid, action.agent))
            elif isinstance(action, Connect) and action.callback_number is not None:
                # the customer is dialled: answers after a few seconds, or not (retried later)
                kind = "cb_answer" if rng.random() < 0.8 else "cb_fail"
                events.append((now + rng.uniform(3, 20), kind, action.callid, action.agent))
            elif isinstance(action, Connect):
                calls_waiting.discard(action.callid)
                events.append((now + rng.uniform(10, 120), "hangup", action.callid, action.agent))
            elif isinstance(action, Leave):
                calls_waiting.discard(action.callid)

    for agent in sorted(acd.agents):
        handle(call(acd.login, agent, now))
    lines_before = conn.execute("SELECT COUNT(*) FROM queue_log").fetchone()[0]
    start_virtual, start_wall = now, time.perf_counter()
    end = now + seconds
    step = 0.1
    while now < end:
        now += step
        if pace:
            delay = start_wall + (now - start_virtual) / pace - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        while len(calls_waiting) < TARGET_WAITING:
            callers += 1
            callid = f"c{callers}"
            calls_waiting.add(callid)
            queue = f"q{rng.randrange(QUEUES)}"
            number = f"1380000{rng.randrange(5000):04d}"
            handle(call(acd.enter, callid, queue, number, now, 5 if rng.random() < 0.05 else 0))
        due = [e for e in events if e[0] <= now]
        if due:
            events[:] = [e for e in events if e[0] > now]
            for _when, kind, callid, agent in sorted(due):
                if kind == "answer":
                    handle(call(acd.answered, callid, agent, now))
                elif kind == "cb_answer":
                    handle(call(acd.callback_answered, callid, now))
                    handle([Connect(callid, agent)])  # talking now: hangs up later like any call
                elif kind == "cb_fail":
                    handle(call(acd.callback_failed, callid, now, "noanswer"))
                else:
                    handle(call(acd.agent_hangup if rng.random() < 0.5 else acd.hangup, callid, now))
        if rng.random() < 0.02 and calls_waiting:  # a caller gives up
            callid = rng.choice(sorted(calls_waiting))
            calls_waiting.discard(callid)
            handle(call(acd.hangup, callid, now))
        if rng.random() < 0.05:  # an agent takes a break or comes back
            agent = f"{8000 + rng.randrange(AGENTS)}"
            paused = acd.agents[agent].paused
            handle(call(acd.unpause if paused else acd.pause, agent, now, "break"))
        handle(call(acd.tick, now))
    lines = conn.execute("SELECT COUNT(*) FROM queue_log").fetchone()[0] - lines_before
    log.close()
    conn.close()
    return {
        "virtual_seconds": seconds,
        "acd_cpu_seconds": spent,
        "decisions": acd.decisions,
        "evaluations": acd.evaluations,
        "route_cpu_seconds": route_time,
        "decisions_per_s": acd.decisions / route_time,
        "evaluations_per_s": acd.evaluations / route_time,
        "inputs_per_s": inputs / spent,
        "log_lines": lines,
        "callers": callers,
    }


def _runs(count: int, seconds: float, seed: int, pace: float | None) -> list[dict[str, float]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="callbox-bench-acd-") as tmp:
        for run in range(count):
            workdir = Path(tmp) / f"run{run}"
            workdir.mkdir()
            results.append(run_acd(seconds, seed + run, workdir, pace))
    return results


def _print_runs(title: str, results: list[dict[str, float]], seconds: float) -> None:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in results)

    print(title)
    print(f"  callers offered / routing decisions  {median('callers'):>8,.0f} / {median('decisions'):,.0f}")
    print(
        f"  routing decisions / s of routing CPU        {median('decisions_per_s'):>8,.0f}   target >= 10,000"
    )
    print(f"  caller evaluations / s of routing CPU       {median('evaluations_per_s'):>8,.0f}")
    print(f"  ACD input events / s, durable log included  {median('inputs_per_s'):>8,.0f}")
    print(
        f"  ACD CPU per hour of this traffic            {3600 * median('acd_cpu_seconds') / seconds:>8.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callbox bench acd", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1800.0, help="virtual seconds of traffic per run")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (the median is printed)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pace",
        type=float,
        default=30.0,
        help="virtual seconds per real second with the engine (0: flat out)",
    )
    parser.add_argument("--no-engine", action="store_true", help="skip the run beside the media tick")
    args = parser.parse_args(argv)

    print(f"ACD: {QUEUES} queues, {AGENTS} agents, ~{TARGET_WAITING} callers waiting, {args.seconds:.0f} s")
    alone = _runs(args.runs, args.seconds, args.seed, None)
    _print_runs(f"1. the ACD alone, flat out ({args.runs} runs, median):", alone, args.seconds)
    if args.no_engine:
        return 0
    from firmware.engine import MediaEngine
    from firmware.engine.ports import LoopPort

    engine = MediaEngine(LoopPort(248), tick_ms=10, echo=False)
    engine.start_thread()
    try:
        beside = _runs(1, args.seconds, args.seed, args.pace or None)
    finally:
        engine.stop()
    tick = engine.stats.summary()
    _print_runs(
        f"2. the ACD at {args.pace:g}x real time beside the media tick (248 channels, 10 ms, same process;"
        " its thread competes for the GIL and the caches):",
        beside,
        args.seconds,
    )
    median_ms, p99_ms, p999_ms = tick["median_ms"], tick["p99_ms"], tick["p999_ms"]
    print(
        f"  media tick: {tick['ticks']:.0f} ticks, work median {median_ms:.2f} ms, p99 {p99_ms:.2f} ms,"
        f" p99.9 {p999_ms:.2f} ms, overruns {tick['overruns']:.0f}, late {tick['late']:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
