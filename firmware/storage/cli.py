"""`callbox cdr export --data DIR [--out FILE] [--gmt]`: the CDRs as Asterisk's Master.csv."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from firmware.storage import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    exp = sub.add_parser("export", help="write every CDR as Asterisk Master.csv")
    exp.add_argument("--data", required=True, help="the box's data directory (holds callbox.db)")
    exp.add_argument("--out", default="-", help="output file (default: standard output)")
    exp.add_argument("--gmt", action="store_true", help="times in UTC (cdr_csv usegmtime=yes)")


def run(args: argparse.Namespace) -> int:
    db = Path(args.data) / "callbox.db"
    if not db.exists():
        print(f"no CDR store at {db}", file=sys.stderr)
        return 2
    store = Store(db)
    try:
        if args.out == "-":
            n = store.export_csv(sys.stdout, args.gmt)
        else:
            with open(args.out, "w", encoding="utf-8", newline="") as f:
                n = store.export_csv(f, args.gmt)
            print(f"{n} CDRs written to {args.out}", file=sys.stderr)
    finally:
        store.close()
    return 0
