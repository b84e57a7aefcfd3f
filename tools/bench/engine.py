"""Media engine at 248 channels fully loaded (8 E1 spans + 8 FXO): tick work time, overruns, CPU, call rate.

    .venv/bin/python -m tools.bench.engine [--seconds 60] [--tick-ms 10] [--no-echo]
    callbox bench engine --seconds 20

Load (issue 5): every channel busy; half in IVR (prompt playing, DTMF detection on), half bridged in
pairs; echo cancellation (dsp.echo, 128 ms) on every trunk channel in a call; 10 % of channels recorded to
WAV by the writer thread. The source is synthetic speech-like A-law on every row (the simulated board is
not wired to the engine yet). The tick runs in real time on its own thread; the figures are its work time
per tick (median / p99 / p99.9), overruns (work > one period), late ticks and the process's CPU share of
one core. Then, with that load still running, the control plane sets up and clears calls as fast as it
can (inbound call -> routed -> answered into the IVR -> caller hangs up -> CDR committed with fsync ->
channel released) on 16 spare channels, and the rate is printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from board.clock import RealClock
from firmware.calls.loopback import LoopNetwork
from firmware.calls.setup import close_box, open_box
from firmware.engine import MediaEngine
from firmware.engine.ports import SyntheticPort
from firmware.engine.record import RecordingWriter
from firmware.prompts import build

LOADED = 248
SPARE = 16


class BoardPort:
    """The simulated board as the engine's port: each read first steps the board model by one tick (the
    line sockets, the C card models and drivers, the DMA rings), then gathers the voice channels."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self.tdm = board.tdm
        self.channels = self.tdm.channels

    def read(self, n: int) -> np.ndarray:
        self.board.step(n)
        return self.tdm.read(n)

    def write(self, codes: np.ndarray) -> None:
        self.tdm.write(codes)

    def capture(self, channel: int, on: bool = True) -> None:
        return None

    def heard(self, channel: int, clear: bool = True) -> np.ndarray:
        return np.zeros(0, dtype=np.int16)

    def send(self, channel: int, pcm: np.ndarray) -> None:
        return None


class BenchPort(SyntheticPort):
    """Synthetic line audio on every row; the far-end hooks LoopNetwork uses are accepted and dropped."""

    def capture(self, channel: int, on: bool = True) -> None:
        return None

    def heard(self, channel: int, clear: bool = True) -> np.ndarray:
        return np.zeros(0, dtype=np.int16)

    def send(self, channel: int, pcm: np.ndarray) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="callbox bench engine", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--tick-ms", type=int, default=10, choices=(5, 10, 20))
    ap.add_argument("--no-echo", action="store_true")
    ap.add_argument("--rate-seconds", type=float, default=5.0, help="how long to measure call setup/clear")
    ap.add_argument("--board", choices=("synthetic", "sim"), default="synthetic",
                    help="sim: the simulated 8 E1 + 8 FXO board (sim-8e1-8fxo) is the port")  # fmt: skip
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    board = None
    global LOADED
    if args.board == "sim":
        from board.description import load_board
        from board.sim.board import SimBoard

        board = SimBoard(load_board("sim-8e1-8fxo"), work / "run", tick_frames=args.tick_ms * 8)
        port: Any = BoardPort(board)
        channels = port.channels  # 248: the last SPARE rows carry the call setup/clear churn
        LOADED = channels - SPARE
    else:
        channels = LOADED + SPARE
        port = BenchPort(channels)
    engine = MediaEngine(port, tick_ms=args.tick_ms, trunk_channels=range(channels), echo=not args.no_echo,
                         detector_slots=LOADED // 2 + SPARE)  # fmt: skip
    prompts = work / "prompts"
    build(prompts, ["cmn"], ["welcome", "main_menu"])
    prompt = engine.add_buffer(
        "menu", np.concatenate([_load(prompts, "welcome"), _load(prompts, "main_menu")])
    )
    writer = RecordingWriter(threaded=True)
    half = LOADED // 2
    for ch in range(half):  # IVR: prompt + DTMF detection
        engine.play(ch, [prompt], loop=True, replace=True)
        engine.enable_detector("dtmf", ch, True)
    for a in range(half, LOADED, 2):  # bridged pairs
        engine.bridge(a, a + 1)
    for ch in range(LOADED):
        engine.enable_echo(ch, True)
    recorded = list(range(0, LOADED, 10))[: LOADED // 10 + 1]
    for ch in recorded:
        engine.record(ch, writer.open(work / "rec" / f"{ch}.wav"))

    print(f"engine bench ({'simulated board, tick includes board.step' if board else 'synthetic source'}): "
          f"{LOADED} channels loaded (+{SPARE} spare), tick {args.tick_ms} ms, "
          f"{args.seconds:.0f} s; echo {'on' if engine.has('echo') else 'OFF'}, "
          f"DTMF {'on' if engine.has('dtmf') else 'OFF'} on {half}, bridged {LOADED - half}, "
          f"recording {len(recorded)}")  # fmt: skip
    cpu0, wall0 = time.process_time(), time.monotonic()
    engine.start_thread(RealClock())
    time.sleep(args.seconds)
    cpu1, wall1 = time.process_time(), time.monotonic()
    s = engine.stats.summary()
    cpu_share = (cpu1 - cpu0) / (wall1 - wall0)
    print(f"  ticks {s['ticks']}  overruns {s['overruns']}  late {s['late']}  "
          f"(max lateness {engine.stats.max_lateness * 1e3:.1f} ms)")  # fmt: skip
    print(f"  tick work  median {s['median_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms  "
          f"p99.9 {s['p999_ms']:.3f} ms  "
          f"max {s['max_ms']:.3f} ms  (period {args.tick_ms} ms)")  # fmt: skip
    print(f"  tick CPU   median {s['cpu_median_ms']:.3f} ms  p99 {s['cpu_p99_ms']:.3f} ms  "
          f"p99.9 {s['cpu_p999_ms']:.3f} ms  (thread CPU time, no preemption)")  # fmt: skip
    print(f"  CPU share of one core (whole process: tick thread + recorder): {cpu_share * 100:.1f} %  "
          f"tick-only load {s['load'] * 100:.1f} %")  # fmt: skip
    verdict = s["overruns"] == 0 and s["p999_ms"] < 3.0 * args.tick_ms / 10 and cpu_share < 0.25
    print(f"  target (0 overruns, p99.9 < {3.0 * args.tick_ms / 10:.1f} ms, < 25 % core): "
          f"{'MET' if verdict else 'NOT MET'}")  # fmt: skip

    # call setup / clear rate at that load
    clock = RealClock()
    mgr = open_box(
        engine,
        clock,
        work / "data",
        prompt_dirs=[prompts],
        epoch_offset=time.time() - clock.now(),
        engine_events="queue",
    )
    net = LoopNetwork(port, clock, LOADED, SPARE, "DAHDI/9", "trunk", "span1", inband=False)  # type: ignore[arg-type]
    done = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.rate_seconds:
        leg = net.call_in(mgr, f"1380000{done % 10000:04d}", "95588")
        if leg is None:
            time.sleep(0.001)
            continue
        leg.far_hangup()
        clock.run_due()
        mgr.pump()
        done += 1
    elapsed = time.monotonic() - t0
    cdrs = mgr.store.cdr_count()
    print(f"  call setup+clear at load: {done / elapsed:.0f} calls/s ({done} calls, {cdrs} CDRs committed, "
          f"fsync per CDR)")  # fmt: skip
    s2 = engine.stats.summary()
    print(f"  during call churn: overruns {s2['overruns'] - s['overruns']}, p99.9 {s2['p999_ms']:.3f} ms")
    print(f"  host load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    engine.stop()
    writer.stop()
    close_box(mgr)
    if board is not None:
        board.close()
    component_costs(LOADED + SPARE, args.tick_ms)  # after the real-time engine stopped: process time is ours
    return 0


def component_costs(channels: int, tick_ms: int, ticks: int = 300) -> None:
    """CPU time per tick (process time, so the host's other load does not count) of the engine alone, then
    with the DTMF detector pool, then with the echo canceller on every row: who costs what."""
    rows = []
    configs = (
        ("engine (switch, players, codec)", False, False),
        ("+ DTMF on half", True, False),
        ("+ echo canceller on all", True, True),
    )
    for label, dtmf, echo in configs:
        eng = MediaEngine(SyntheticPort(channels), tick_ms=tick_ms, trunk_channels=range(channels), echo=echo,
                          detector_slots=channels // 2 if dtmf else 0)  # fmt: skip
        buf = eng.add_buffer("p", np.random.default_rng(1).integers(-3000, 3000, 40000).astype(np.int16))
        for ch in range(channels // 2):
            eng.play(ch, [buf], loop=True, replace=True)
            eng.enable_detector("dtmf", ch, True)
        for a in range(channels // 2, channels - 1, 2):
            eng.bridge(a, a + 1)
        for ch in range(channels):
            eng.enable_echo(ch, True)
        for _ in range(10):
            eng.tick()
        t0 = time.process_time()
        for _ in range(ticks):
            eng.tick()
        per = (time.process_time() - t0) / ticks
        rows.append((label, per))
    print(f"  CPU per tick, {channels} channels, single thread (process time):")
    for label, per in rows:
        print(f"    {label:<34} {per * 1e3:7.3f} ms  = {per / (tick_ms / 1000) * 100:5.1f} % of one core")


def _load(d: Path, name: str) -> np.ndarray:
    from firmware.prompts import read_wav

    return read_wav(d / "cmn" / f"{name}.wav")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
