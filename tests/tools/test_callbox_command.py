"""The `callbox` entry point as a shell user meets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_output_cut_short_by_the_reader_ends_quietly():
    # `callbox erlang ... | head -0`: the reader is gone before the first line is written
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tools.cli", "erlang", "--calls", "100", "--aht", "180"],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert b"Traceback" not in result.stderr and result.returncode == 0, result.stderr.decode()


def test_unknown_command_lists_the_commands_and_fails():
    result = subprocess.run([sys.executable, "-m", "tools.cli", "frobnicate"], cwd=ROOT, capture_output=True)
    assert result.returncode == 2 and b"demo" in result.stdout
