"""`callbox q931`: decode D-channel frames given in hex (one per argument, or one per line on stdin).

callbox q931 --from network 000100000802000105a104038090a3
callbox q931 --from user --q931 0802000105a104038090a3     # a bare Q.931 message, no Q.921 header
"""

from __future__ import annotations

import argparse
import sys

from firmware.signalling.q921 import Role
from firmware.signalling.trace import describe_frame, describe_message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("frames", nargs="*", help="frames in hex (default: one per line on stdin)")
    parser.add_argument(
        "--from",
        dest="sender",
        choices=["user", "network"],
        default="network",
        help="which side sent the frames (decides command/response)",
    )
    parser.add_argument("--q931", action="store_true", help="the hex is a Q.931 message without Q.921 header")


def run(args: argparse.Namespace) -> int:
    sender = Role.NETWORK if args.sender == "network" else Role.USER
    lines = args.frames or [line for line in sys.stdin.read().split("\n") if line.strip()]
    status = 0
    for text in lines:
        try:
            data = bytes.fromhex("".join(text.split()))
        except ValueError:
            print(f"not hex: {text!r}", file=sys.stderr)
            status = 2
            continue
        print(describe_message(data) if args.q931 else describe_frame(data, sender))
    return status
