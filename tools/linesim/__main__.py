"""Far ends as a program of their own: an exchange on every E1 span socket and a CO line on every FXO port
socket found in a run directory, in real time (they are the line clock), until Ctrl-C or --seconds.

    .venv/bin/python -m tools.linesim data/run                  # every socket in data/run
    .venv/bin/python -m tools.linesim data/run --ring-every 30  # each CO line rings now and then

This is what "another program is the far end" looks like in practice: it talks to the box only through
the sockets of docs/virtual-lines.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from board.clock import RealClock
from tools.linesim.co import CoLine, CoLineEnd
from tools.linesim.e1 import ExchangeE1, ExchangeE1End

N = 80


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.linesim", description=__doc__.split("\n")[0])
    ap.add_argument("rundir", help="the box's run directory (e1-spanN.sock, fxo-portN.sock)")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--ring-every", type=float, default=0.0, help="ring each CO line every S s (0: never)")
    ap.add_argument("--ppm", type=float, default=0.0, help="clock offset of the exchanges")
    ap.add_argument("--cas", action="store_true", help="exchanges in CAS framing (default CCS)")
    args = ap.parse_args(argv)
    run = Path(args.rundir)

    def number(p: Path) -> int:
        m = re.search(r"(\d+)\.sock$", p.name)
        return int(m.group(1)) if m else 0

    e1_paths = sorted(run.glob("e1-span*.sock"), key=number)
    fxo_paths = sorted(run.glob("fxo-port*.sock"), key=number)
    if not e1_paths and not fxo_paths:
        print(f"no line sockets in {run}", file=sys.stderr)
        return 2
    ends = [ExchangeE1End(str(p), ExchangeE1(cas=args.cas), ppm=args.ppm) for p in e1_paths]
    cos = [CoLineEnd(str(p), CoLine()) for p in fxo_paths]
    for end in [*ends, *cos]:
        try:
            end.connect()
        except OSError as exc:
            print(f"{end.path}: {exc.strerror}", file=sys.stderr)
            return 1
    print(f"far ends on {len(ends)} E1 spans and {len(cos)} CO lines in {run}", flush=True)
    clock = RealClock()
    start = clock.now()
    seen = [0] * len(cos)
    k = 0
    try:
        while args.seconds is None or k * N / 8000 < args.seconds:
            now = start + k * N / 8000
            clock.sleep_until(now)
            for end in ends:
                end.pump(N)
            for i, co in enumerate(cos):
                due = start + (i + 1) * 2 + seen[i] * args.ring_every
                if args.ring_every and co.line.state == "idle" and now >= due:
                    co.line.ring(now)
                    seen[i] += 1
                co.pump(now, N)
            k += 1
            if not any(e.connected for e in ends) and not any(c.connected for c in cos):
                print("every line was closed by the box", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        for end in [*ends, *cos]:
            end.close()
    for i, co in enumerate(cos, start=1):
        kinds = [e.kind for e in co.line.events]
        print(f"CO line {i}: {len(kinds)} events ({', '.join(sorted(set(kinds))) or 'none'})")
    for i, end in enumerate(ends, start=1):
        print(f"E1 span {i}: sent {end.sent_frames} frames, received {end.received_frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
