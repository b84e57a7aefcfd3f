"""`callbox` command line: one entry point, one subcommand per job.

Each subcommand lives in its own module and is imported only when used, so a broken or slow part of the
box never stops the others from starting. A module registers itself by being named in SUBCOMMANDS and
providing `add_arguments(parser)` and `run(args) -> int` (or by naming `module:attribute`, an object that
has both).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "report": ("tools.acdcli:report", "call-center reports (queues, agents, hourly) for a time range"),
    "erlang": ("tools.acdcli:erlang", "Erlang C staffing: agents needed for a service level"),
    "acd": ("tools.acdcli:acd", "agents' states and waiting callers from the box's stored log"),
    "bench": ("tools.bench.cli", "run a benchmark from tools/bench (callbox bench NAME; no NAME lists them)"),
    "ivr": ("firmware.ivr.lint", "IVR flows: `callbox ivr lint FILE` (schema errors, usability warnings)"),
    "cdr": ("firmware.storage.cli", "CDRs: `callbox cdr export --data DIR` (Asterisk Master.csv)"),
    "prompts": ("firmware.prompts.cli", "build IVR prompts from texts with espeak-ng (Mandarin, English)"),
    "run": ("firmware.calls.run", "the appliance: board, engine, signalling, calls, IVR (until Ctrl-C)"),
    "demo": (
        "tools.callcenter_demo",
        "the box's main job: the appliance on the simulated board, callers and agents, live view",
    ),
    "pstn": ("tools.pstn", "the telephone network on a box's line sockets: exchanges, CO lines, callers"),
    "agents": ("tools.sipagents", "simulated agents on SIP phones against a running box"),
    "board-demo": (
        "tools.demo",
        "the simulated board alone with far ends on every line and a live status view",
    ),
    "q931": ("firmware.signalling.cli", "decode ISDN D-channel frames (Q.921/Q.931) given in hex"),
}


def _load(spec: str):  # noqa: ANN202 - a module, or an object with add_arguments/run
    """`package.module` or `package.module:attribute` (several subcommands sharing one module)."""
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def build_parser(load_all: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callbox", description="CallBox call-center PBX appliance")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if load_all:
            _load(module_name).add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        build_parser(load_all=False).print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = _load(SUBCOMMANDS[argv[0]][0])
    parser = argparse.ArgumentParser(prog=f"callbox {argv[0]}", description=SUBCOMMANDS[argv[0]][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except BrokenPipeError:
        # the reader went away (`callbox report ... | head`): stop quietly, as command-line tools do, and keep
        # Python from complaining again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
