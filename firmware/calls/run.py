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
from typing import Any

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
    parser.add_argument(
        "--prompts", action="append", default=None, metavar="DIR",
        help="voice prompt directory (repeatable; default DATA/prompts, built on first start)",
    )  # fmt: skip
    add_sip_arguments(parser)


def add_sip_arguments(parser: argparse.ArgumentParser) -> None:
    """The extensions' side: SIP phones register here (UDP and TCP on the same port)."""
    parser.add_argument("--sip-host", default="0.0.0.0", help="address SIP listens on (UDP and TCP)")
    parser.add_argument("--sip-port", type=int, default=5060, help="SIP port (0: any free one, printed)")
    parser.add_argument("--sip-advertise", default=None, help="address put in Contact/SDP (default: host)")
    parser.add_argument("--sip-legs", type=int, default=64, help="SIP media legs (engine rows)")


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


def sip_extensions_path(config: str | None) -> Path:
    from firmware.sip.service import extensions_path

    return extensions_path(config)


def open_sip(args: argparse.Namespace, clock: RealClock) -> Any:
    """The box's SIP side (firmware.sip.service.BoxSip) with the configuration's extensions, bound."""
    from firmware.sip.core import CoreConfig
    from firmware.sip.extensions import Directory
    from firmware.sip.service import BoxSip

    directory = Directory.load(sip_extensions_path(args.config))
    sip = BoxSip(directory, clock, args.sip_host, args.sip_port, advertise=args.sip_advertise,
                 max_legs=args.sip_legs, config=CoreConfig())  # fmt: skip
    try:
        sip.start()
    except OSError:
        sip.close()
        raise
    return sip


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
    try:
        sip = open_sip(args, clock)
    except (ConfigError, OSError) as exc:
        print(f"error: SIP: {exc}")
        return 2
    board = open_board(desc, data / "run", tick_frames=args.tick_ms * 8)
    try:
        app = Appliance(board, data, args.config, clock=clock, tick_ms=args.tick_ms, realtime=True,
                        extension_port=sip.media_port, make_extension_lines=sip.extension_lines,
                        prompt_dirs=args.prompts)  # fmt: skip
    except ConfigError as exc:
        print(f"error: {exc}")
        sip.close()
        board.close()
        return 2
    app.pollers.append(sip.poll)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        app.start()
        print(f"callbox running: board {desc.name if hasattr(desc, 'name') else args.board}, "
              f"line sockets in {data / 'run'}, data in {data}; Ctrl-C stops")  # fmt: skip
        print(f"SIP on {args.sip_host} port {sip.port} (UDP and TCP), extensions from "
              f"{sip_extensions_path(args.config)}", flush=True)  # fmt: skip
        started = time.monotonic()
        while not stop.is_set():
            stop.wait(args.status if args.status > 0 else 1.0)
            if args.status > 0:
                print(f"{status_line(app)}  sip registered {len(sip.status()['registered'])}", flush=True)
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
        app.close()
        sip.close()
        board.close()
    print(f"stopped; CDRs, recordings and alarms are in {data}")
    return 0
