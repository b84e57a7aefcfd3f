"""Media engine at 248 channels fully loaded (8 E1 spans + 8 FXO): tick work time, overruns, CPU, call rate.

    .venv/bin/python -m tools.bench.engine [--seconds 60] [--runs 3] [--tick-ms 10] [--no-echo]
    callbox bench engine --seconds 60 --runs 3

Load (issue 5): every channel busy; half in IVR (the menu prompt playing, DTMF detection on, callers
pressing a digit every few seconds), half bridged in pairs (two talkers); echo cancellation (dsp.echo,
128 ms tail) on every trunk channel; 10 % of channels recorded to WAV by the writer thread.

The lines (`Lines`, the far ends of all 264 rows) are simulated, not silent: each talker speaks in
talkspurts and pauses (P.59 artificial conversation: exponential talkspurts of 1.0 s and pauses of 1.5 s
mean, levels -26..-16 dBm0) from espeak-ng speech, over line noise at -60 dBm0; every line returns an echo
of what the box sent it through a G.168 Annex D hybrid model (d2..d9, ERL 6..16 dB, 0..6 ms bulk delay),
A-law both ways. The lines are advanced on the tick thread after each tick, outside the measured work
time (on the box this is the DMA ring); their CPU is measured and reported apart from the box's.

Measured for `--seconds` after a 2 s warm-up, per run: tick work time median / p99 / p99.9 / max as wall
time (includes preemption by the host's other load) and as the tick thread's CPU time; overruns (work >
period) and late ticks (started > half a period after the deadline); CPU share of one core per thread
(the media engine = tick thread without the line simulation, plus the recorder writer; the control plane;
the line simulation) from the threads' CPU clocks. Meanwhile the control plane sets up and clears calls
at a steady `--churn` per second on 16 spare rows (inbound call -> routed -> answered into the IVR ->
caller hangs up -> CDR committed with fsync -> released), as a box in service does, stepping after each
tick as `firmware.calls.runtime.ControlLoop` does. Then, at the same
media load, it sets up and clears calls as fast as it can for `--rate-seconds`: calls/s, with the tick's
figures during that burst. Also checked each run, so the load is doing its job: digits pressed vs
detected, and the echo the far party hears on bridged calls (ERLE over single talk). With `--runs N`
the medians of the runs are printed last.
"""

from __future__ import annotations

import argparse
import os
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft as sfft

from board.clock import RealClock
from dsp.g711 import ALAW_DECODE_TABLE, ALAW_ENCODE_TABLE
from firmware.calls.loopback import LoopNetwork
from firmware.calls.setup import close_box, open_box
from firmware.engine import MediaEngine, MediaEvent
from firmware.engine.record import RecordingWriter
from firmware.engine.tones import dtmf_buffer
from firmware.prompts import build, read_wav, speak
from tools.g168_report import load_models as load_hybrid_models

LOADED = 248  # 8 E1 spans x 30 B-channels + 8 FXO ports
SPARE = 16  # rows for the call setup/clear churn
DBM0_MS = 22785.0**2 / 2.0  # mean square of a 0 dBm0 sine
FFT = 256  # overlap-save size of the hybrid echo: delay + response <= FFT - tick samples
TALK_S, PAUSE_S = 1.004, 1.587  # P.59 talkspurt / pause means
DIGIT_EVERY_S = 4.0  # mean time between a caller's key presses in the IVR
CALLER_TEXTS = [
    ("en", "Hello, I am calling about my account, the last bill looks wrong to me."),
    ("en", "Yes, the number is one three eight, and I moved house in March."),
    ("cmn", "你好，我想查询一下我的账单，上个月的费用好像不对。"),
    ("cmn", "好的，我的电话号码是一三八，谢谢你的帮助。"),
    ("en", "Could you tell me when the engineer will come? I have been waiting all week."),
    ("cmn", "我已经等了很久了，请帮我转到人工服务，谢谢。"),
]


def dbm0(level: float) -> float:
    return DBM0_MS * 10.0 ** (level / 10.0)


class Lines:
    """The far ends of every engine row, as the engine's port: what each line sends the box, and the echo
    of what the box sent it (see the module docstring). `advance()` computes the next block; `read`/`write`
    cost the engine what a DMA ring does (a reference, a copy)."""

    def __init__(
        self,
        channels: int,
        speech: np.ndarray,
        talkers: np.ndarray,
        keypads: np.ndarray,
        models: list[np.ndarray],
        tick: int,
        seed: int = 1,
    ) -> None:
        self.channels = c = channels
        self.n = n = tick
        rng = np.random.default_rng(seed)
        self.rng = rng
        # speech: one bank, each talker at its own offset and level
        self.speech = speech.astype(np.float32)
        active = self.speech[np.abs(self.speech) > 100]
        self.speech /= np.sqrt(np.mean(active.astype(np.float64) ** 2))  # unit active level
        self.spos = rng.integers(0, len(speech), c)
        self.gain = np.sqrt(dbm0(rng.uniform(-26.0, -16.0, c))).astype(np.float32)
        self.talker = talkers.astype(bool)  # rows whose far end talks (bridged calls)
        self.on = np.zeros(c, dtype=bool)
        self.left = rng.exponential(PAUSE_S, c) * 100  # ticks left in the current talkspurt/pause
        self.tick_s = tick / 8000.0
        # line noise (-60 dBm0, white-ish), one bank read at per-row offsets
        noise = rng.standard_normal(8000 * 4).astype(np.float32) * np.float32(np.sqrt(dbm0(-60.0)))
        self.noise = noise
        self.npos = rng.integers(0, len(noise), c)
        # key presses: rows in the IVR press a random digit every DIGIT_EVERY_S on average
        self.keypad = keypads.astype(bool)
        digits = "0123456789*#"
        self.digit_bank = np.stack([dtmf_buffer(d, on=0.1, off=0.1, dbm0=-9.0) for d in digits]).astype(
            np.float32
        )
        self.digit_len = self.digit_bank.shape[1]
        self.digit = np.full(c, -1, dtype=np.int64)  # digit being sent, -1 none
        self.dpos = np.zeros(c, dtype=np.int64)
        self.next_press = rng.exponential(DIGIT_EVERY_S, c) * 100
        self.pressed = np.zeros(c, dtype=np.int64)
        # hybrids: per row, delay + Annex D response at an ERL of 6..16 dB, as one spectrum for overlap-save
        h = np.zeros((c, FFT), dtype=np.float64)
        for r in range(c):
            m = models[r % len(models)]
            erl = rng.uniform(6.0, 16.0)
            delay = int(rng.integers(0, FFT - 80 - len(m) + 1))
            resp = m / np.sqrt(np.sum(m**2)) * 10.0 ** (-erl / 20.0)
            h[r, delay : delay + len(resp)] = resp
        self.H = sfft.rfft(h, axis=1).astype(np.complex64)
        self.hist = np.zeros((c, FFT), dtype=np.float32)  # what the box sent, newest last
        self.sent = np.full((c, n), int(ALAW_ENCODE_TABLE[0]), dtype=np.uint8)
        self.rx = np.full((c, n), int(ALAW_ENCODE_TABLE[0]), dtype=np.uint8)
        self.ramp = np.arange(n)
        self.cpu = 0.0  # CPU seconds spent in advance()
        self.ticks = 0
        # echo heard by the other party of a bridged call, single talk (ERLE measurement)
        self.partner = np.arange(c)
        self.echo_prev = np.zeros((c, n), dtype=np.float32)
        self.quiet_prev = np.zeros(c, dtype=bool)
        self.erle_echo = np.zeros(c)
        self.erle_res = np.zeros(c)
        self.measure_from = 500  # ticks: ERLE after 5 s of convergence

    # ---- the engine's port ---------------------------------------------------------------------------
    def read(self, n: int) -> np.ndarray:
        return self.rx

    def write(self, codes: np.ndarray) -> None:
        np.copyto(self.sent, codes)

    # LoopNetwork's far-end hooks (the churn legs need no audio checks)
    def capture(self, channel: int, on: bool = True) -> None:
        return None

    def heard(self, channel: int, clear: bool = True) -> np.ndarray:
        return np.zeros(0, dtype=np.int16)

    def send(self, channel: int, pcm: np.ndarray) -> None:
        return None

    # ---- the world beyond the lines, one tick on ------------------------------------------------------
    def advance(self) -> None:
        c0 = time.thread_time()
        n, c = self.n, self.channels
        tx = ALAW_DECODE_TABLE[self.sent].astype(np.float32)
        if self.ticks >= self.measure_from:  # what the partner was sent is this row's cancelled echo
            res = tx[self.partner]
            loud = np.mean(self.echo_prev**2, axis=1) > dbm0(-50.0)  # the other party was talking
            m = self.quiet_prev & loud & (self.partner != np.arange(c))
            self.erle_echo[m] += np.sum(self.echo_prev[m] ** 2, axis=1)
            self.erle_res[m] += np.sum(res[m] ** 2, axis=1)
        self.hist[:, :-n] = self.hist[:, n:]
        self.hist[:, -n:] = tx
        echo = sfft.irfft(sfft.rfft(self.hist, axis=1) * self.H, n=FFT, axis=1)[:, -n:]
        # talkers: P.59 on/off
        self.left -= 1
        flip = np.flatnonzero(self.left <= 0)
        if len(flip):
            self.on[flip] = ~self.on[flip]
            means = np.where(self.on[flip], TALK_S, PAUSE_S) / self.tick_s
            self.left[flip] = self.rng.exponential(means)
        talking = self.on & self.talker
        near = echo.astype(np.float32)
        near += self.noise[(self.npos[:, None] + self.ramp) % len(self.noise)]
        self.npos += n
        rows = np.flatnonzero(talking)
        if len(rows):
            idx = (self.spos[rows][:, None] + self.ramp) % len(self.speech)
            near[rows] += self.speech[idx] * self.gain[rows][:, None]
        self.spos += n
        # key presses
        self.next_press[self.keypad] -= 1
        start = np.flatnonzero(self.keypad & (self.next_press <= 0) & (self.digit < 0))
        if len(start):
            self.digit[start] = self.rng.integers(0, len(self.digit_bank), len(start))
            self.dpos[start] = 0
            self.pressed[start] += 1
            self.next_press[start] = self.rng.exponential(DIGIT_EVERY_S / self.tick_s, len(start))
        keying = np.flatnonzero(self.digit >= 0)
        if len(keying):
            near[keying] += self.digit_bank[
                self.digit[keying][:, None], self.dpos[keying][:, None] + self.ramp
            ]
            self.dpos[keying] += n
            over = keying[self.dpos[keying] + n > self.digit_len]
            self.digit[over] = -1
        self.echo_prev = echo.astype(np.float32)
        self.quiet_prev = ~talking & (self.digit < 0)
        pcm = np.clip(np.rint(near), -32768, 32767).astype(np.int16)
        np.take(ALAW_ENCODE_TABLE, pcm.view(np.uint16), out=self.rx)
        self.ticks += 1
        self.cpu += time.thread_time() - c0

    def erle_db(self, rows: np.ndarray) -> np.ndarray:
        ok = rows[(self.erle_echo[rows] > 0) & (self.erle_res[rows] > 0)]
        return 10 * np.log10(self.erle_echo[ok] / self.erle_res[ok])


class Tap:
    """The engine's event queue, counting DTMF detections on the loaded IVR rows on the way through."""

    def __init__(self, inner: Any, rows: int) -> None:
        self.inner = inner
        self.rows = rows
        self.digits = 0

    def put(self, ev: MediaEvent) -> None:
        if ev.kind == "dtmf" and ev.channel < self.rows:
            self.digits += 1
            return
        self.inner.put(ev)

    def get_nowait(self) -> MediaEvent:
        return self.inner.get_nowait()

    def empty(self) -> bool:
        return bool(self.inner.empty())


def load_speech(work: Path) -> tuple[np.ndarray, np.ndarray]:
    """(callers' speech bank, the IVR menu prompt), espeak-ng at 8 kHz."""
    prompts = work / "prompts"
    build(prompts, ["cmn"], ["welcome", "main_menu"])
    menu = np.concatenate([read_wav(prompts / "cmn" / f"{n}.wav") for n in ("welcome", "main_menu")])
    speech = np.concatenate([speak(text, lang) for lang, text in CALLER_TEXTS])
    return speech, menu


def load_models() -> list[np.ndarray]:
    models = load_hybrid_models()
    return [np.asarray(models[k]["coeffs"], dtype=np.float64) for k in sorted(models)]


def thread_cpu(t: threading.Thread | None) -> float:
    if t is None or t.ident is None:
        return 0.0
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    except (OSError, ProcessLookupError):
        return 0.0


def run_once(args: argparse.Namespace, work: Path, speech: np.ndarray, menu: np.ndarray, seed: int) -> dict:
    channels = LOADED + SPARE
    tick = args.tick_ms * 8
    half = LOADED // 2
    ivr = np.zeros(channels, dtype=bool)
    ivr[:half] = True
    bridged = np.zeros(channels, dtype=bool)
    bridged[half:LOADED] = True
    lines = Lines(channels, speech, bridged, ivr, load_models(), tick, seed)
    lines.partner[half:LOADED] = np.arange(half, LOADED) ^ 1  # pairs (half is even)
    engine = MediaEngine(
        lines,
        tick_ms=args.tick_ms,
        trunk_channels=range(channels),
        echo=not args.no_echo,
        detector_slots=half + SPARE,
        echo_bank=args.echo_bank,
    )
    tap = Tap(engine.events, LOADED)
    engine.events = tap  # type: ignore[assignment]
    prompt = engine.add_buffer("menu", menu)
    writer = RecordingWriter(threaded=True)
    run_dir = work / f"run{seed}"
    for ch in range(half):  # IVR: prompt + DTMF detection
        engine.play(ch, [prompt], loop=True, replace=True)
        engine.enable_detector("dtmf", ch, True)
    for a in range(half, LOADED, 2):  # bridged pairs
        engine.bridge(a, a + 1)
    for ch in range(LOADED):
        engine.enable_echo(ch, True)
    recorded = list(range(0, LOADED, 10))
    for ch in recorded:
        engine.record(ch, writer.open(run_dir / "rec" / f"{ch}.wav"))

    clock = RealClock()
    mgr = open_box(
        engine,
        clock,
        run_dir / "data",
        prompt_dirs=[work / "prompts"],
        epoch_offset=time.time() - clock.now(),
        engine_events="queue",
    )
    net = LoopNetwork(lines, clock, LOADED, SPARE, "DAHDI/9", "trunk", "span1", inband=False)  # type: ignore[arg-type]
    calls = [0]

    def one_call() -> bool:
        leg = net.call_in(mgr, f"1380000{calls[0] % 10000:04d}", "95588")
        if leg is None:
            return False
        leg.far_hangup()
        clock.run_due()
        mgr.pump()
        calls[0] += 1
        return True

    cpus = {args.cpu} if args.cpu is not None else None
    interval = None if args.switch_interval <= 0 else args.switch_interval
    engine.start_thread(
        clock,
        priority=None if args.no_rt else args.priority,
        cpus=cpus,
        idle_gc=not args.no_idle_gc,
        after_tick=lines.advance,
        switch_interval=interval,
    )
    main = threading.current_thread()
    rec_thread = writer._thread  # noqa: SLF001 - its CPU clock is what we measure
    ctl_writer = getattr(mgr.recorder, "_thread", None) if hasattr(mgr, "recorder") else None

    def window(seconds: float, churn: float | None) -> dict:
        t_start = clock.now()
        first = engine.stats.ticks
        cpu0 = {
            k: thread_cpu(t)
            for k, t in (
                ("tick", engine._thread),
                ("rec", rec_thread),  # noqa: SLF001
                ("ctl", main),
                ("ctlrec", ctl_writer),
            )
        }
        line0, proc0, digits0 = lines.cpu, time.process_time(), tap.digits
        pressed0 = int(lines.pressed.sum())
        calls0 = calls[0]
        next_call = t_start
        while clock.now() - t_start < seconds:
            if churn is None:
                if not one_call():
                    time.sleep(0.001)
                continue
            now = clock.now()
            if now >= next_call:
                one_call()
                next_call += 1.0 / churn
            clock.run_due()
            mgr.pump()
            engine.ticked.wait(2 * engine.period)  # as ControlLoop: step in the tick's idle time
            engine.ticked.clear()
        wall = clock.now() - t_start
        cpu = {
            k: thread_cpu(t) - cpu0[k]
            for k, t in (
                ("tick", engine._thread),
                ("rec", rec_thread),  # noqa: SLF001
                ("ctl", main),
                ("ctlrec", ctl_writer),
            )
        }
        line = lines.cpu - line0
        s = engine.stats.summary(since=first)
        return {
            **s,
            "wall_s": wall,
            "engine_pct": 100 * (cpu["tick"] - line) / wall,
            "recorder_pct": 100 * cpu["rec"] / wall,
            "control_pct": 100 * (cpu["ctl"] + cpu["ctlrec"]) / wall,
            "lines_pct": 100 * line / wall,
            "process_pct": 100 * (time.process_time() - proc0) / wall,
            "media_pct": 100 * (cpu["tick"] - line + cpu["rec"]) / wall,
            "calls": calls[0] - calls0,
            "calls_per_s": (calls[0] - calls0) / wall,
            "pressed": int(lines.pressed.sum()) - pressed0,
            "detected": tap.digits - digits0,
        }

    window(2.0, args.churn)  # warm-up: caches, first blocks of the cancellers, CDR store
    main_w = window(args.seconds, args.churn)
    erle = lines.erle_db(np.arange(half, LOADED))
    main_w["erle_median_db"] = float(np.median(erle)) if len(erle) else float("nan")
    main_w["erle_min_db"] = float(np.min(erle)) if len(erle) else float("nan")
    main_w["rt_mode"] = engine.rt_mode
    main_w.update(engine.gc.summary() if engine.gc is not None else {})
    burst = window(args.rate_seconds, None)
    engine.stop()
    writer.stop()
    main_w["burst"] = burst
    main_w["cdrs"] = mgr.store.cdr_count()
    close_box(mgr)
    main_w["channels"] = {
        "loaded": LOADED,
        "ivr": half,
        "bridged": LOADED - half,
        "recorded": len(recorded),
        "echo": engine.echo.active if engine.echo is not None else 0,
    }
    return main_w


def print_run(i: int, r: dict, args: argparse.Namespace) -> None:
    b = r["burst"]
    print(
        f"run {i}: {r['ticks']} ticks  overruns {r['overruns']}  late {r['late']}  "
        f"(max lateness {r['max_late_ms']:.1f} ms)"
    )
    print(
        f"  tick work wall  median {r['median_ms']:.2f}  p99 {r['p99_ms']:.2f}  p99.9 {r['p999_ms']:.2f}  "
        f"max {r['max_ms']:.2f} ms"
    )
    print(
        f"  tick work CPU   median {r['cpu_median_ms']:.2f}  p99 {r['cpu_p99_ms']:.2f}  "
        f"p99.9 {r['cpu_p999_ms']:.2f}  max {r['cpu_max_ms']:.2f} ms"
    )
    print(
        f"  CPU share of one core: media {r['media_pct']:.1f} % (tick {r['engine_pct']:.1f} + recorder "
        f"{r['recorder_pct']:.1f}); control plane {r['control_pct']:.1f} % at {args.churn:g} calls/s; "
        f"line simulation (not the box) {r['lines_pct']:.1f} %; whole process {r['process_pct']:.1f} %"
    )
    print(
        f"  load check: digits pressed {r['pressed']}, detected {r['detected']}; echo heard by the other "
        f"party of bridged calls: ERLE median {r['erle_median_db']:.1f} dB, worst {r['erle_min_db']:.1f} dB"
    )
    if "gc_gen0" in r:
        print(
            f"  garbage collector between ticks: {r['gc_gen0']}/{r['gc_gen1']}/{r['gc_gen2']} collections "
            f"(gen 0/1/2), longest {r['gc_max_ms']:.2f} ms"
        )
    print(
        f"  calls set up + cleared at this load, as fast as the control plane can: {b['calls_per_s']:.0f}/s "
        f"({b['calls']} calls, CDR fsync each); tick meanwhile: overruns {b['overruns']}, "
        f"p99.9 wall {b['p999_ms']:.2f} ms, CPU {b['cpu_p999_ms']:.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="callbox bench engine", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measured window per run (after 2 s warm-up)")
    ap.add_argument("--runs", type=int, default=1, help="repeat; medians of the runs are printed last")
    ap.add_argument("--tick-ms", type=int, default=10, choices=(5, 10, 20))
    ap.add_argument("--no-echo", action="store_true")
    ap.add_argument(
        "--echo-bank", type=int, default=None, help="echo canceller rows per object (default: all trunk rows)"
    )
    ap.add_argument("--churn", type=float, default=5.0, help="calls/s set up and cleared during the window")
    ap.add_argument(
        "--rate-seconds", type=float, default=5.0, help="how long to measure max call setup/clear"
    )
    ap.add_argument("--priority", type=int, default=10, help="SCHED_FIFO priority asked for the tick thread")
    ap.add_argument("--no-rt", action="store_true", help="do not ask for SCHED_FIFO")
    ap.add_argument("--cpu", type=int, default=None, help="pin the tick thread to this CPU")
    ap.add_argument("--no-idle-gc", action="store_true", help="leave the garbage collector automatic")
    ap.add_argument(
        "--switch-interval", type=float, default=0.0005, help="GIL switch interval, s (0: Python's)"
    )
    ap.add_argument("--components", action="store_true", help="also print CPU per tick by component")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    speech, menu = load_speech(work)
    target = 3.0 * args.tick_ms / 10
    layout = f"cancellers of {args.echo_bank} rows" if args.echo_bank else "one canceller per block tick"
    print(
        f"engine bench: {LOADED} channels loaded (+{SPARE} spare for call churn), tick {args.tick_ms} ms, "
        f"{args.seconds:.0f} s x {args.runs} run(s); echo {'off' if args.no_echo else 'on'} on every trunk "
        f"row ({layout}), "
        f"DTMF on the {LOADED // 2} IVR rows, "
        f"{LOADED // 2} bridged, 10 % recorded; speech on/off both "
        f"ways with G.168 hybrid echo; host load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    results = []
    for i in range(args.runs):
        r = run_once(args, work, speech, menu, seed=i + 1)
        if i == 0:
            print(f"tick thread: {r['rt_mode']}")
        print_run(i + 1, r, args)
        results.append(r)
    med = {
        k: float(np.median([r[k] for r in results]))
        for k in results[0]
        if isinstance(results[0][k], float | int)
    }
    burst = float(np.median([r["burst"]["calls_per_s"] for r in results]))
    print(
        f"median of {len(results)} run(s): tick CPU median {med['cpu_median_ms']:.2f} / "
        f"p99 {med['cpu_p99_ms']:.2f} / "
        f"p99.9 {med['cpu_p999_ms']:.2f} ms; wall median {med['median_ms']:.2f} / p99 {med['p99_ms']:.2f} / "
        f"p99.9 {med['p999_ms']:.2f} ms; overruns {med['overruns']:.0f}, late {med['late']:.0f} per "
        f"{med['ticks']:.0f} ticks; media {med['media_pct']:.1f} % of a core (whole process "
        f"{med['process_pct']:.1f} %, line simulation {med['lines_pct']:.1f} %); {burst:.0f} calls/s"
    )
    met_cpu = med["cpu_p999_ms"] < target and med["overruns"] == 0 and med["media_pct"] < 25
    met_wall = med["p999_ms"] < target
    print(
        f"target (0 overruns, p99.9 < {target:.1f} ms, < 25 % of one core): "
        f"{'MET' if met_cpu and met_wall else 'NOT MET'} "
        f"(CPU-time p99.9 {'<' if med['cpu_p999_ms'] < target else '>='} "
        f"{target:.1f}, wall p99.9 {'<' if met_wall else '>='} {target:.1f}, overruns {med['overruns']:.0f}, "
        f"media {med['media_pct']:.1f} %)"
    )
    if args.components:
        component_costs(LOADED + SPARE, args.tick_ms, speech, menu)
    return 0


def component_costs(
    channels: int, tick_ms: int, speech: np.ndarray, menu: np.ndarray, ticks: int = 300
) -> None:
    """CPU time per tick (thread time, single thread, no real-time loop) of the engine alone, then with the
    DTMF pool, then with the echo canceller on every row, on the same simulated lines (advanced outside the
    timing): who costs what."""
    rows = []
    half = LOADED // 2
    for label, dtmf, echo in (
        ("engine (switch, players, codec, taps)", False, False),
        ("+ DTMF on the IVR half", True, False),
        ("+ echo canceller on every trunk row", True, True),
    ):
        talk = np.zeros(channels, dtype=bool)
        talk[half:LOADED] = True
        keys = np.zeros(channels, dtype=bool)
        keys[:half] = True
        lines = Lines(channels, speech, talk, keys, load_models(), tick_ms * 8)
        eng = MediaEngine(
            lines,
            tick_ms=tick_ms,
            trunk_channels=range(channels),
            echo=echo,
            detector_slots=half if dtmf else 0,
        )
        eng.events = queue.SimpleQueue()
        buf = eng.add_buffer("menu", menu)
        for ch in range(half):
            eng.play(ch, [buf], loop=True, replace=True)
            eng.enable_detector("dtmf", ch, True)
        for a in range(half, LOADED, 2):
            eng.bridge(a, a + 1)
        for ch in range(LOADED):
            eng.enable_echo(ch, True)
        spent = []
        for i in range(ticks + 50):
            c0 = time.thread_time()
            eng.tick()
            if i >= 50:
                spent.append(time.thread_time() - c0)
            lines.advance()
        rows.append((label, float(np.mean(spent)), float(np.percentile(spent, 99.9))))
    print(f"CPU per tick by component, {channels} rows, one thread (thread time, mean / p99.9):")
    for label, mean, p999 in rows:
        print(
            f"  {label:<40} {mean * 1e3:6.3f} / {p999 * 1e3:6.3f} ms  "
            f"= {mean / (tick_ms / 1000) * 100:5.1f} % of a core"
        )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
