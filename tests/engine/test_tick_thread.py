"""The tick thread's host setup (scheduling, CPU, GIL interval, collector) and the echo pool's feed."""

from __future__ import annotations

import gc
import sys
import time

import numpy as np
import pytest

from firmware.engine import MediaEngine, TickStats
from firmware.engine.ports import LoopPort, SyntheticPort
from firmware.engine.realtime import IdleGc, thread_setup


def test_thread_setup_says_what_applied_and_never_fails() -> None:
    said = thread_setup(None)
    assert "ordinary scheduling" in said
    said = thread_setup(10, {0})
    assert ("SCHED_FIFO priority 10" in said or "SCHED_FIFO refused" in said) and "CPU 0" in said
    said = thread_setup(None, {10_000})  # no such CPU: refused, said, no exception
    assert "CPU pinning refused" in said


def test_idle_gc_collects_only_when_asked_and_restores() -> None:
    was = gc.isenabled()
    idle = IdleGc(full_every=3600.0)
    idle.start()
    try:
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        junk = [[i] for i in range(5 * gc.get_threshold()[0])]  # tracked objects: generation 0 fills
        assert idle.collect(0.0001, 0.01) == -1  # no idle time left: not now
        assert idle.collect(0.009, 0.01) == 0  # idle time: generation 0
        assert idle.collections[0] == 1 and idle.max_seconds > 0 and len(junk) > 0
    finally:
        idle.stop()
    assert gc.isenabled() == was and gc.get_freeze_count() == 0


def test_start_thread_reports_mode_and_restores_the_interpreter() -> None:
    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    eng = MediaEngine(SyntheticPort(16), tick_ms=10)
    after = []
    eng.start_thread(after_tick=lambda: after.append(1))
    try:
        assert "SCHED_FIFO" in eng.rt_mode  # granted or refused, it says which
        assert sys.getswitchinterval() == pytest.approx(0.0005) and not gc.isenabled()
        time.sleep(0.2)
    finally:
        eng.stop()
    assert len(after) >= eng.stats.ticks - 1 > 5
    assert sys.getswitchinterval() == interval and gc.isenabled() == enabled


def test_stats_since_a_tick() -> None:
    s = TickStats(0.01, keep=100)
    for i in range(150):
        s.record(0.02 if i < 140 else 0.001, 0.0)
    assert s.summary()["ticks"] == 100 and s.summary()["overruns"] == 90
    last = s.summary(since=140)
    assert last["ticks"] == 10 and last["overruns"] == 0 and last["max_ms"] == pytest.approx(1.0)


def _engine(trunks: list[int]) -> tuple[MediaEngine, LoopPort]:
    port = LoopPort(12)
    eng = MediaEngine(port, trunk_channels=trunks, echo_bank=4)
    if not eng.has("echo"):
        pytest.skip("dsp.echo not available")
    return eng, port


def test_echo_banks_fed_as_views_or_gathers_and_idle_rows_untouched() -> None:
    eng, port = _engine(list(range(8)))
    assert all(sl is not None for sl in eng.echo.bank_slices)  # contiguous rows: views
    odd, _ = _engine([0, 2, 4, 6, 8, 10])
    assert odd.echo.bank_slices[0] is None  # scattered rows: gathered
    for e in (eng, odd):
        e.enable_echo(2, True)
    rng = np.random.default_rng(3)
    x = np.clip(rng.standard_normal(800) * 2000, -32768, 32767).astype(np.int16)
    port.send(0, x)  # row 0: same bank as row 2, not in a call
    for e in (eng, odd):
        e.tick()
    eng.tick()
    # row 0 is bypassed: the engine's decoded input is exactly what the line sent (A-law round trip)
    from dsp.g711 import ALAW_DECODE_TABLE, ALAW_ENCODE_TABLE

    sent = ALAW_DECODE_TABLE[ALAW_ENCODE_TABLE[x.view(np.uint16)]]
    assert np.array_equal(eng.pcm_ext[0], sent[80:160])
    assert eng.echo.active == 1 and odd.echo.active == 1


def test_echo_default_is_one_canceller_per_phase_fed_as_views() -> None:
    port = LoopPort(300)
    eng = MediaEngine(port, trunk_channels=range(264))
    if not eng.has("echo"):
        pytest.skip("dsp.echo not available")
    pool = eng.echo
    halves = [-(-264 // pool.phases)] * pool.phases
    halves[-1] = 264 - sum(halves[:-1])
    assert pool.lengths == halves  # one object per tick of the block: adaptation spread evenly
    assert pool.bank_slices[0] == slice(0, halves[0])
    assert pool.banks[0] is None  # made at the first call, or by prepare() before real time
    eng.enable_echo(100, True)
    rng = np.random.default_rng(5)
    x = np.clip(rng.standard_normal(800) * 2000, -32768, 32767).astype(np.int16)
    port.send(7, x)  # a row of the same object not in a call: bypassed inside the canceller
    eng.tick()
    eng.tick()
    assert pool.banks[0].channels == halves[0] and pool.bank_active.tolist()[0] == 1
    assert pool.bank_active.tolist()[1:] == [0] * (len(halves) - 1)  # the other objects idle
    from dsp.g711 import ALAW_DECODE_TABLE, ALAW_ENCODE_TABLE

    sent = ALAW_DECODE_TABLE[ALAW_ENCODE_TABLE[x.view(np.uint16)]]
    assert np.array_equal(eng.pcm_ext[7], sent[80:160])
    assert pool.fed[0] == 160
    eng.enable_echo(100, False)
    eng.tick()
    assert pool.active == 0 and pool.fed[0] == 160  # no row in a call: the canceller is not called


def test_echo_bank_back_from_idle_keeps_its_phase() -> None:
    eng, _ = _engine(list(range(8)))
    pool = eng.echo
    if pool.phases < 2:
        pytest.skip("canceller block is one tick")
    for ch in (0, 4):  # bank 0 and bank 1
        eng.enable_echo(ch, True)
    for _ in range(3):
        eng.tick()
    eng.enable_echo(4, False)
    for _ in range(3):  # bank 1 idle for an odd number of ticks
        eng.tick()
    eng.enable_echo(5, True)
    eng.tick()
    for b in (0, 1):
        want = (eng.sample_count + (b % pool.phases) * pool.tick) % pool.block
        assert pool.fed[b] % pool.block == want


def test_control_loop_steps_in_the_tick_idle_time() -> None:
    import threading

    from board.clock import RealClock
    from firmware.calls.runtime import ControlLoop

    eng = MediaEngine(SyntheticPort(16), tick_ms=10)
    clock = RealClock()
    at: list[int] = []

    class Mgr:  # what ControlLoop uses of the call manager
        engine = eng

        def pump(self) -> int:
            at.append(eng.tick_count)
            return 0

    loop = ControlLoop(Mgr(), clock)  # type: ignore[arg-type]
    stop = threading.Event()
    eng.start_thread(clock)
    worker = threading.Thread(target=loop.run, args=(stop,))
    worker.start()
    try:
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join()
        eng.stop()
    # one step per tick (not every 5 ms), each after a different tick
    assert 10 <= len(at) <= eng.stats.ticks + 2
    assert len(set(at)) >= len(at) - 2
