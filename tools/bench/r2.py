"""MFC/R2 benchmark: the MF receiver (channels per core, against spandsp's r2_mf_rx in the same process) and
the sans-I/O R2 stack (complete calls per second per core: seizure, 17 compelled MF cycles, accept, answer,
clear).

    .venv/bin/python -m tools.bench.r2 [--channels 240] [--seconds 10] [--calls 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from dsp.r2mf import R2MfDetector, mf_signal
from dsp.tones import to_int16
from firmware.signalling import r2


def signal_block(channels: int, seconds: float) -> np.ndarray:
    """Compelled-signalling-like traffic on every channel: 80 ms signals, 80 ms gaps, both directions."""
    n = int(seconds * 8000)
    x = np.zeros((channels, n))
    rng = np.random.default_rng(1)
    period = 1280
    for ch in range(channels):
        d = "F" if ch % 2 else "B"
        for start in range(int(rng.integers(0, period)), n - 640, period):
            x[ch, start : start + 640] = mf_signal(d, int(rng.integers(1, 16)), 80.0, -12.0)
    return to_int16(x + rng.normal(0, 30, x.shape))


def bench_detector(channels: int, seconds: float, runs: int) -> dict[str, float]:
    x = signal_block(channels, seconds)
    ours = []
    for _ in range(runs):
        det = R2MfDetector(channels)
        t0 = time.thread_time()
        for i in range(0, x.shape[1], 80):  # 10 ms ticks, as the engine feeds it
            det.process(x[:, i : i + 80])
        ours.append(time.thread_time() - t0)
    out = {"ours_ch_per_core": channels * seconds / statistics.median(ours)}
    # the engine's case: one bank of 128 rows, 4 of them in register signalling, the rest silence
    bank = np.zeros((128, x.shape[1]), dtype=np.int16)
    bank[:4] = x[:4]
    t_bank = []
    for _ in range(runs):
        det = R2MfDetector(128)
        t0 = time.thread_time()
        for i in range(0, x.shape[1], 80):
            det.process(bank[:, i : i + 80])
        t_bank.append(time.thread_time() - t0)
    out["bank_ms_per_tick"] = statistics.median(t_bank) / (x.shape[1] / 80) * 1e3
    try:
        ref = spandsp_time(x, runs)
        out["spandsp_ch_per_core"] = channels * seconds / ref
        out["ratio"] = out["ours_ch_per_core"] / out["spandsp_ch_per_core"]
    except OSError:
        pass
    return out


def spandsp_time(x: np.ndarray, runs: int) -> float:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(
        "void *r2_mf_rx_init(void *s, int fwd, void *cb, void *u);"
        "int r2_mf_rx(void *s, const int16_t *a, int n); int r2_mf_rx_free(void *s);"
    )
    lib: Any = ffi.dlopen("libspandsp.so.2")
    times = []
    for _ in range(runs):
        states = [lib.r2_mf_rx_init(ffi.NULL, ch % 2, ffi.NULL, ffi.NULL) for ch in range(x.shape[0])]
        rows = [ffi.cast("int16_t *", ffi.from_buffer(np.ascontiguousarray(r))) for r in x]
        t0 = time.thread_time()
        for s, row in zip(states, rows, strict=True):  # whole signal per call: spandsp's best case
            lib.r2_mf_rx(s, row, x.shape[1])
        times.append(time.thread_time() - t0)
        for s in states:
            lib.r2_mf_rx_free(s)
    return statistics.median(times)


def bench_stack(calls: int, runs: int) -> dict[str, float]:
    """Two R2Spans back to back, signals delivered at once; every call runs the whole China sequence."""
    rates = []
    for _ in range(runs):
        box = r2.R2Span(r2.R2Config(max_dnis=8))
        net = r2.R2Span(r2.R2Config(glare_priority=True, hunt="down", max_dnis=8))
        box.start(0.0)
        net.start(0.0)
        box.commands()
        net.commands()
        now = 0.0
        t0 = time.thread_time()
        for _k in range(calls):
            cid = net.place_call("62345678", now, ani="13812345678")
            _shuttle(box, net, now)
            inc = next(e for e in box.events() if isinstance(e, r2.IncomingCall))
            box.answer(inc.call_id, now)
            _shuttle(box, net, now)
            net.hangup(cid, now)
            _shuttle(box, net, now)
            box.events()
            net.events()
        rates.append(calls / (time.thread_time() - t0))
    return {"calls_per_s_both_sides": statistics.median(rates)}


def _shuttle(box: r2.R2Span, net: r2.R2Span, now: float) -> None:
    for _ in range(200):
        moved = False
        for src, dst in ((box, net), (net, box)):
            for c in src.commands():
                moved = True
                if isinstance(c, r2.SetAbcd):
                    dst.line_signal(c.channel, c.abcd, now)
                elif isinstance(c, r2.PlayMf):
                    dst.mf(c.channel, 0 if c.signal is None else c.signal, now)
        if not moved:
            return


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=240)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args(argv)
    d = bench_detector(a.channels, a.seconds, a.runs)
    print(f"R2 MF receiver, {a.channels} channels x {a.seconds:.0f} s, 10 ms blocks (median of {a.runs}):")
    print(f"  ours     {d['ours_ch_per_core']:10.0f} channels per core")
    print(f"  engine bank of 128 rows with 4 signalling: {d['bank_ms_per_tick']:.3f} ms per 10 ms tick")
    if "spandsp_ch_per_core" in d:
        print(f"  spandsp  {d['spandsp_ch_per_core']:10.0f} channels per core (whole signal per call)")
        print(f"  ratio    {d['ratio']:10.2f}x")
    s = bench_stack(a.calls, a.runs)
    print(f"R2 stack, both sides, China sequence (8-digit DNIS, 11-digit ANI), median of {a.runs}:")
    print(f"  {s['calls_per_s_both_sides']:.0f} complete calls per second per core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
