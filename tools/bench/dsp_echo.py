"""Echo canceller benchmark: channels one core sustains in real time, 128 ms tail, 10 ms ticks; ours
(dsp.echo, all channels in one call per tick) against speexdsp's speex_echo_cancellation (128 ms filter,
frame 80, one call per channel per tick through cffi) in the same run.

    .venv/bin/python -m tools.bench.dsp_echo            # 3 s of audio per measurement, 5 repeats
    .venv/bin/python -m tools.bench.dsp_echo --seconds 10

Figures are CPU seconds of this process (time.process_time), so other load on the machine inflates them
less; medians of the repeats. Memory: our state arrays plus the peak of temporaries during a tick
(tracemalloc) per channel; speexdsp's by resident-set growth per channel.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from typing import Any

import cffi
import numpy as np

from dsp import g168
from dsp.echo import EchoCanceller

TICK = 80
TAIL_MS = 128
CHANNELS = 240  # a box's worth of E1 trunk channels
REPEATS = 5

_CDEF = """
typedef struct SpeexEchoState_ SpeexEchoState;
SpeexEchoState *speex_echo_state_init(int frame_size, int filter_length);
void speex_echo_state_destroy(SpeexEchoState *st);
void speex_echo_cancellation(SpeexEchoState *st, const int16_t *rec, const int16_t *play, int16_t *out);
"""


class Speex:
    """speexdsp echo cancellers, one per channel."""

    def __init__(self, channels: int, frame: int = TICK, tail_ms: int = TAIL_MS) -> None:
        self.ffi = cffi.FFI()
        self.ffi.cdef(_CDEF)
        self.lib = self.ffi.dlopen("libspeexdsp.so.1")
        self.states = [self.lib.speex_echo_state_init(frame, tail_ms * 8) for _ in range(channels)]
        self.frame = frame

    def close(self) -> None:
        for s in self.states:
            self.lib.speex_echo_state_destroy(s)
        self.states = []

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        out = np.empty_like(near)
        ffi, fn = self.ffi, self.lib.speex_echo_cancellation
        n = near.shape[1]
        pn = ffi.from_buffer("int16_t[]", np.ascontiguousarray(near))
        pf = ffi.from_buffer("int16_t[]", np.ascontiguousarray(far))
        po = ffi.from_buffer("int16_t[]", out)
        for i, st in enumerate(self.states):
            o = i * n
            fn(st, pn + o, pf + o, po + o)
        return out


_MEM_PROBE = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from tools.bench.dsp_echo import Speex, _rss
n = {n}
z = np.zeros((n, 80), np.int16)
r0 = _rss()
sp = Speex(n)
sp.process(z, z)
print((_rss() - r0) / n)
"""


def speex_memory_per_channel(channels: int = CHANNELS) -> float:
    """Resident-set growth per speexdsp state (128 ms, frame 80), measured in a fresh interpreter."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    code = _MEM_PROBE.format(root=root, n=channels)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _signals(channels: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """CSS far ends at -10 dBm0 and their echo through a G.168 D.2-like dispersive path, ERL ~6 dB."""
    n = int(seconds * 8000) // TICK * TICK
    base = g168.css(seconds + 0.5, -10.0)
    far = np.stack([np.roll(base, 37 * i)[:n] for i in range(min(channels, 16))])
    rng = np.random.default_rng(1)
    h = np.zeros(160)
    h[40:104] = rng.standard_normal(64) * np.exp(-np.arange(64) / 12.0)
    h *= 0.5 / np.sqrt(np.sum(h * h))
    near = np.stack([np.convolve(f.astype(float), h)[:n] for f in far])
    near = np.clip(np.rint(near), -32768, 32767).astype(np.int16)
    reps = -(-channels // far.shape[0])
    return np.tile(near, (reps, 1))[:channels].copy(), np.tile(far, (reps, 1))[:channels].copy()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _time_ticks(proc: Any, near: np.ndarray, far: np.ndarray) -> float:
    t = time.process_time()
    for i in range(0, near.shape[1], TICK):
        proc(near[:, i : i + TICK], far[:, i : i + TICK])
    return time.process_time() - t


def bench(seconds: float = 3.0) -> list[dict[str, Any]]:
    """One row per echo canceller configuration (see module doc)."""
    near, far = _signals(CHANNELS, seconds)
    audio_s = near.shape[1] / 8000.0
    ours_rates, ref_rates = [], []
    ref_ch = 24
    for _ in range(REPEATS):
        ec = EchoCanceller(CHANNELS, tail_ms=TAIL_MS)
        _time_ticks(ec.process, near[:, :800], far[:, :800])  # warm-up
        ours_rates.append(CHANNELS * audio_s / _time_ticks(ec.process, near, far))
        sp = Speex(ref_ch)
        ref_rates.append(ref_ch * audio_s / _time_ticks(sp.process, near[:ref_ch], far[:ref_ch]))
        sp.close()
    # memory per channel
    gc.collect()
    tracemalloc.start()
    ec = EchoCanceller(CHANNELS, tail_ms=TAIL_MS)
    for i in range(0, 1600, TICK):
        ec.process(near[:, i : i + TICK], far[:, i : i + TICK])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ref_mem = speex_memory_per_channel()
    ours = statistics.median(ours_rates)
    ref = statistics.median(ref_rates)
    return [
        {
            "name": f"echo canceller {TAIL_MS} ms ({CHANNELS} ch/call)",
            "ours_ch_per_core": ours,
            "ref_name": f"speexdsp echo {TAIL_MS} ms, frame {TICK}",
            "ref_ch_per_core": ref,
            "mem_per_channel_bytes": peak / CHANNELS,
            "ref_mem_per_channel_bytes": ref_mem,
            "ours_runs": ours_rates,
            "ref_runs": ref_rates,
        }
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="echo canceller channels per core, ours vs speexdsp")
    p.add_argument("--seconds", type=float, default=3.0, help="audio per measurement (default 3)")
    a = p.parse_args(argv)
    for r in bench(a.seconds):
        print(r["name"])
        print(
            f"  ours     {r['ours_ch_per_core']:8.0f} ch/core  (runs: "
            + ", ".join(f"{x:.0f}" for x in r["ours_runs"])
            + f")   memory {r['mem_per_channel_bytes'] / 1024:.1f} KiB/channel"
        )
        print(
            f"  {r['ref_name']}: {r['ref_ch_per_core']:8.0f} ch/core  (runs: "
            + ", ".join(f"{x:.0f}" for x in r["ref_runs"])
            + f")   memory {r['ref_mem_per_channel_bytes'] / 1024:.1f} KiB/channel"
        )
        print(f"  ratio ours/speexdsp: {r['ours_ch_per_core'] / r['ref_ch_per_core']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
