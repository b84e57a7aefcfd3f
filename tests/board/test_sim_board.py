"""The simulated board's own duties: sockets in the run directory, stepping on a clock, real-time pacing on
the local oscillator or on the line clock of a far end, cleanup."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time

import pytest

from board.clock import RealClock, VirtualClock
from board.description import load_board, simple_board
from board.sim.board import SimBoard
from tools.linesim.e1 import ExchangeE1End


@pytest.fixture
def rundir():
    path = tempfile.mkdtemp(prefix="cbb")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_sockets_per_span_and_port_and_cleanup(rundir):
    board = SimBoard(load_board("sim-2e1-4fxo"), rundir)
    names = sorted(os.listdir(rundir))
    assert names == ["e1-span1.sock", "e1-span2.sock", *[f"fxo-port{i}.sock" for i in range(1, 5)]]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(os.path.join(rundir, "e1-span1.sock"))
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_SEQPACKET
    board.step()
    assert board.connected("e1", 1) and not board.connected("e1", 2)
    s.close()
    board.close()
    assert os.listdir(rundir) == []


def test_stale_socket_files_are_replaced(rundir):
    open(os.path.join(rundir, "e1-span1.sock"), "w").close()
    with SimBoard(simple_board(1, 0), rundir) as board:
        board.step()


def test_steps_on_a_virtual_clock(rundir):
    clock = VirtualClock(start=100.0)
    with SimBoard(simple_board(1, 0), rundir) as board:
        end = ExchangeE1End(board.socket_path("e1", 1))
        end.connect()

        def far(k: int = 0) -> None:  # the far end on the same clock, just before the board each tick
            end.pump(80)
            clock.call_at(100.0 + (k + 1) * 0.01 - 1e-6, lambda: far(k + 1))

        clock.call_at(100.0 - 1e-6, far)
        board.attach(clock)
        clock.advance(2.0)
        assert board.steps == 201 and board.frames == 201 * 80
        assert board.e1.span(1).status().in_sync
        end.close()


def test_real_time_on_the_line_clock_and_on_the_oscillator(rundir):
    with SimBoard(simple_board(1, 0), rundir) as board:
        end = ExchangeE1End(board.socket_path("e1", 1))
        end.connect()
        stop = threading.Event()

        def far_end() -> None:
            clk = RealClock()
            t0 = clk.now()
            k = 0
            while not stop.is_set():
                clk.sleep_until(t0 + k * 0.01)
                end.pump(80)
                k += 1

        t = threading.Thread(target=far_end, daemon=True)
        t.start()
        timer = threading.Timer(1.0, board.stop)
        timer.start()
        t0 = time.monotonic()
        board.run_realtime(timing_span=1)
        wall = time.monotonic() - t0
        stop.set()
        t.join(2)
        assert 0.9 <= wall <= 3.0
        assert board.steps >= 30  # paced by the far end's frames (loose: a loaded host is slow)
        assert board.e1.span(1).status().in_sync
        end.close()


def test_far_ends_as_a_separate_program(rundir):
    import subprocess
    import sys

    with SimBoard(load_board("sim-2e1-4fxo"), rundir) as board:
        runner = threading.Thread(target=lambda: board.run_realtime(timing_span=1), daemon=True)
        runner.start()
        try:
            out = subprocess.run(
                [sys.executable, "-m", "tools.linesim", rundir, "--seconds", "1.5"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            board.stop()
            runner.join(5)
        assert out.returncode == 0, out.stderr
        assert "far ends on 2 E1 spans and 4 CO lines" in out.stdout
        c = board.e1.span(1).counters()
        assert c.rx_frames >= 8000 and c.fas_errors == 0  # a second and a half of clean frames
        assert board.line_counters("fxo", 4).connects == 1


def test_a_board_the_model_cannot_build_is_refused_cleanly(rundir):
    from dataclasses import replace

    desc = simple_board(1, 4)
    too_many = replace(desc, cards=(replace(desc.cards[0], spans=desc.cards[0].spans * 9), desc.cards[1]))
    with pytest.raises(ValueError, match="1..8 spans"):
        SimBoard(too_many, rundir)
    with pytest.raises(ValueError, match="over 4096"):
        SimBoard(desc, rundir, tick_frames=800)
    assert os.listdir(rundir) == []
