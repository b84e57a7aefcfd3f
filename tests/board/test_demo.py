"""The demo as functions: built on a virtual clock, ticked, rendered; and the command for one second."""

from __future__ import annotations

import io
import shutil
import tempfile

from rich.console import Console

from board.clock import VirtualClock


def test_demo_world_ticks_and_renders():
    from tools.demo import build_demo

    data = tempfile.mkdtemp(prefix="cbd")
    try:
        demo = build_demo("sim-2e1-4fxo", data, VirtualClock(seed=3))
        demo.answer_after_rings = 1
        for _ in range(20 * 100):  # 20 s: every line has rung by then (first calls within 17 s)
            demo.tick()
        out = io.StringIO()
        Console(file=out, width=160, force_terminal=False).print(demo.render())
        text = out.getvalue()
        assert "E1 spans" in text and "FXO ports" in text and text.count("in sync") == 2
        assert "present" in text and "tick load" in text
        log = "\n".join(demo.events)
        assert "ring_start" in log or "hook" in log or "polarity" in log
        status = demo.panel_status()
        assert status.spans == ["sync", "sync"] and not status.alarm
        demo.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_demo_command_runs_for_bounded_time(capsys):
    from tools.cli import main

    data = tempfile.mkdtemp(prefix="cbd")
    try:
        assert main(["board-demo", "--seconds", "1.2", "--plain", "--data", data]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines and "span1:sync" in lines[-1] and "fxo4:" in lines[-1]
    finally:
        shutil.rmtree(data, ignore_errors=True)
