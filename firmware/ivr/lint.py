"""`callbox ivr lint FILE...`: schema errors (file:line: field: message) and usability warnings.

Warnings (the rules our call-center customers set): menu depth over 3, more than 5 options in a menu, a
menu's prompts longer than 30 s; also nodes no path reaches and prompts with no recording or text.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from firmware.config import ConfigError
from firmware.ivr.flow import Flow, load_flow
from firmware.prompts import PromptLibrary, texts

MAX_DEPTH = 3
MAX_OPTIONS = 5
MAX_MENU_SECONDS = 30.0


def _prompt_names(items: list) -> list[tuple[str, str | None]]:
    out = []
    for item in items or []:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, dict) and "prompt" in item:
            out.append((item["prompt"], item.get("lang")))
    return out


def lint_flow(flow: Flow, library: PromptLibrary | None = None) -> list[str]:
    warnings: list[str] = []
    doc = flow.doc

    def where(*path: object) -> str:
        line = doc.line(("nodes", *path)) if doc is not None else None
        return f"{flow.file}:{line}" if line else flow.file

    # depth: the largest number of menus on any path from the start (cycles cut)
    depth: dict[str, int] = {}

    def walk(name: str, menus: int, seen: frozenset[str]) -> None:
        node = flow.nodes[name]
        if node["type"] == "menu":
            menus += 1
            if menus > depth.get(name, 0):
                depth[name] = menus
        for t in flow.targets(name):
            if t not in seen:
                walk(t, menus, seen | {t})

    walk(flow.start, 0, frozenset({flow.start}))
    known_texts = texts()
    for name, node in flow.nodes.items():
        if node["type"] == "menu":
            if depth.get(name, 0) > MAX_DEPTH:
                warnings.append(f"{where(name)}: nodes.{name}: menu depth {depth[name]} (over {MAX_DEPTH})")
            n = len(node["options"])
            if n > MAX_OPTIONS:
                warnings.append(
                    f"{where(name, 'options')}: nodes.{name}.options: {n} options (over {MAX_OPTIONS})"
                )
            if library is not None:
                total = 0.0
                for p, lang in _prompt_names(node.get("prompts", [])):
                    total += library.seconds(p, lang or flow.language) or 0.0
                if total > MAX_MENU_SECONDS:
                    warnings.append(
                        f"{where(name, 'prompts')}: nodes.{name}.prompts: {total:.1f} s of prompts "
                        f"(over {MAX_MENU_SECONDS:.0f} s)"
                    )
        for key in ("prompts",):
            for p, lang in _prompt_names(node.get(key, [])):
                missing_rec = library is None or library.path(p, lang or flow.language) is None
                if p not in known_texts and missing_rec:
                    warnings.append(
                        f"{where(name, key)}: nodes.{name}.{key}: prompt '{p}' has no text or recording"
                    )
    reachable = {flow.start}
    todo = [flow.start]
    while todo:
        for t in flow.targets(todo.pop()):
            if t not in reachable:
                reachable.add(t)
                todo.append(t)
    for name in flow.nodes:
        if name not in reachable:
            warnings.append(f"{where(name)}: nodes.{name}: no path from '{flow.start}' reaches this node")
    return warnings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    lint = sub.add_parser("lint", help="check IVR flow files (schema errors and usability warnings)")
    lint.add_argument("files", nargs="+")
    lint.add_argument("--prompts", action="append", default=[], help="prompt directory (repeatable)")


def run(args: argparse.Namespace) -> int:
    library = PromptLibrary(args.prompts) if args.prompts else None
    status = 0
    for f in args.files:
        try:
            flow = load_flow(Path(f))
        except ConfigError as exc:
            print(f"error: {exc}")
            status = 2
            continue
        warnings = lint_flow(flow, library)
        for w in warnings:
            print(f"warning: {w}")
        if warnings and status == 0:
            status = 1
        if not warnings:
            print(f"{f}: ok")
    return status
