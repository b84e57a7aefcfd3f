"""`callbox bench NAME [ARGS...]`: run the benchmark `tools/bench/NAME.py` (its `main(argv) -> int`).

Every module in tools/bench that defines `main(argv)` is a benchmark; other engineers' benches (dsp, pri,
sip, engine) plug in by being there. `callbox bench` alone lists them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

import tools.bench

_NOT_BENCHES = {"cli", "__main__"}


def discover() -> list[str]:
    """Names of the modules in tools/bench (those not yet imported are checked for `def main(` cheaply)."""
    names = []
    for info in pkgutil.iter_modules(tools.bench.__path__):
        if info.name in _NOT_BENCHES or info.name.startswith("_"):
            continue
        path = Path(tools.bench.__path__[0]) / f"{info.name}.py"
        if path.is_file() and "\ndef main(" in path.read_text(encoding="utf-8", errors="replace"):
            names.append(info.name)
    return sorted(names)


def _summary(name: str) -> str:
    path = Path(tools.bench.__path__[0]) / f"{name}.py"
    text = path.read_text(encoding="utf-8", errors="replace").lstrip()
    if text.startswith('"""'):
        return text[3:].split("\n", 1)[0].strip().rstrip('"').strip()
    return ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="benchmark to run (omit to list them)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")


def run(args: argparse.Namespace) -> int:
    names = discover()
    if not args.name:
        print("benchmarks (callbox bench NAME [ARGS]):")
        for name in names:
            print(f"  {name:<16} {_summary(name)}")
        return 0
    if args.name not in names:
        print(f"no benchmark {args.name!r}; known: {', '.join(names)}")
        return 2
    module = importlib.import_module(f"tools.bench.{args.name}")
    return int(module.main(list(args.args)) or 0)
