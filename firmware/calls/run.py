"""`callbox run --board sim --data DIR [--config DIR]`: the appliance as it runs on the box.

Opens the board the description names (`--board sim` = board/boards/sim-2e1-4fxo: 2 E1 PRI spans, user side,
and 4 FXO lines; the line sockets appear under DIR/run/), loads the configuration (`--config DIR` with
dialplan.yaml and flows/, or the defaults), builds the prompts on first start, and serves calls until
Ctrl-C (or `--seconds`). Prints a status line every `--status` seconds. CDRs, recordings and alarms stay in
DIR (`callbox cdr export --data DIR`).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

from board.clock import RealClock
from firmware.config import ConfigError

BOARDS = {"sim": "sim-2e1-4fxo", "sim-small": "sim-2e1-4fxo", "sim-full": "sim-8e1-8fxo"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", default="sim", help="sim | sim-full | a board description name or file")
    parser.add_argument(
        "--data", required=True, help="data directory (CDRs, recordings, line sockets in run/)"
    )
    parser.add_argument("--config", default=None, help="configuration directory (dialplan.yaml, flows/)")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    parser.add_argument("--status", type=float, default=5.0, help="seconds between status lines (0: none)")
    parser.add_argument("--tick-ms", type=int, default=10, choices=(5, 10, 20))


def status_line(app: object) -> str:
    st = app.status()  # type: ignore[attr-defined]
    t = st["tick"]
    spans = " ".join(
        f"span{s}:{'up' if v['link'] else ','.join(v['alarms']) or 'down'}" for s, v in st["spans"].items()
    )
    return (
        f"calls {st['calls']} {st['by_state']}  {spans}  tick median {t.get('median_ms', 0):.2f} ms "
        f"p99.9 {t.get('p999_ms', 0):.2f} ms overruns {t.get('overruns', 0)}"
    )


def run(args: argparse.Namespace) -> int:
    from board.description import BoardConfigError, load_board
    from board.hardware import open_board
    from firmware.calls.appliance import Appliance

    data = Path(args.data)
    try:
        desc = load_board(BOARDS.get(args.board, args.board))
    except BoardConfigError as exc:
        print(f"error: {exc}")
        return 2
    clock = RealClock()
    board = open_board(desc, data / "run", tick_frames=args.tick_ms * 8)
    try:
        app = Appliance(board, data, args.config, clock=clock, tick_ms=args.tick_ms, realtime=True)
    except ConfigError as exc:
        print(f"error: {exc}")
        board.close()
        return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        app.start()
        print(f"callbox running: board {desc.name if hasattr(desc, 'name') else args.board}, "
              f"line sockets in {data / 'run'}, data in {data}; Ctrl-C stops")  # fmt: skip
        started = time.monotonic()
        while not stop.is_set():
            stop.wait(args.status if args.status > 0 else 1.0)
            if args.status > 0:
                print(status_line(app), flush=True)
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
        app.close()
        board.close()
    print(f"stopped; CDRs, recordings and alarms are in {data}")
    return 0
