"""`callbox prompts build --out DIR`: render the prompt texts with espeak-ng (build time)."""

from __future__ import annotations

import argparse

from firmware.prompts import LANGS, build


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="render firmware/prompts/texts.yaml to WAV")
    b.add_argument("--out", required=True, help="output directory (DIR/<lang>/<name>.wav)")
    b.add_argument("--lang", default=",".join(LANGS), help="languages, comma-separated (default cmn,en)")
    b.add_argument("--only", default="", help="only these prompt names, comma-separated")


def run(args: argparse.Namespace) -> int:
    only = [n for n in args.only.split(",") if n] or None
    written = build(args.out, [x for x in args.lang.split(",") if x], only)
    print(f"{len(written)} prompt files written to {args.out}")
    return 0
