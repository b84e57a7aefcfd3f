"""Echo canceller benchmark: channels one core sustains in real time, 128 ms tail, 10 ms ticks; ours
(dsp.echo, all channels in one call per tick) against speexdsp's speex_echo_cancellation (128 ms filter,
frame 80, one call per channel per tick through cffi) in the same run.

Two loads, each printed as its own row:

- worst case: every channel's far end talks all the time (CSS at -10 dBm0): the filter runs on every row;
- speech on/off: each channel's far end talks in spurts (on 1.0 s / off 1.35 s on average, exponential,
  Brady's conversational model; -70 dBm0 noise in the pauses) and its near end answers in the far end's
  pauses. The canceller skips rows whose far end stayed below -60 dBm0 over the whole tail, so the cost
  follows the talk; the row says which share of channel-blocks ran the filter.

    .venv/bin/python -m tools.bench.dsp_echo            # 3 s of audio per measurement, 5 repeats
    .venv/bin/python -m tools.bench.dsp_echo --seconds 10 --channels 128

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


def _speech_signals(channels: int, seconds: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Talkspurts on the far end (Brady: mean on 1.0 s, off 1.35 s), the near talker in its pauses."""
    n = int(seconds * 8000) // TICK * TICK
    near0, far0 = _signals(channels, seconds)
    rng = np.random.default_rng(seed)
    gate = np.zeros((channels, n), bool)
    for i in range(channels):  # (signal generation, not the code under test)
        t, on = int(rng.integers(0, 8000)), bool(rng.integers(0, 2))
        gate[i, :t] = on
        while t < n:
            on = not on
            span = int(rng.exponential(1.0 if on else 1.35) * 8000) + 160
            gate[i, t : t + span] = on
            t += span
    hiss = g168.white_noise(n / 8000 + 0.1, -70.0, seed=seed)[:n]
    far = np.where(gate, far0, hiss[None, :]).astype(np.int16)
    # echo of what the far end really sent, plus the near talker while the far end is quiet
    rng2 = np.random.default_rng(1)
    h = np.zeros(160)
    h[40:104] = rng2.standard_normal(64) * np.exp(-np.arange(64) / 12.0)
    h *= 0.5 / np.sqrt(np.sum(h * h))
    talk = np.roll(g168.css(seconds + 0.5, -15.0, seed=11)[:n], 1234)
    near = np.stack([np.convolve(f.astype(float), h)[:n] for f in far]) + np.where(gate, 0, talk[None, :])
    del near0
    return np.clip(np.rint(near), -32768, 32767).astype(np.int16), far


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _time_ticks(proc: Any, near: np.ndarray, far: np.ndarray) -> float:
    t = time.process_time()
    for i in range(0, near.shape[1], TICK):
        proc(near[:, i : i + TICK], far[:, i : i + TICK])
    return time.process_time() - t


def _measure(channels: int, near: np.ndarray, far: np.ndarray, ref_ch: int) -> dict[str, Any]:
    audio_s = near.shape[1] / 8000.0
    ours_rates, ref_rates, share = [], [], []
    for _ in range(REPEATS):
        ec = EchoCanceller(channels, tail_ms=TAIL_MS)
        _time_ticks(ec.process, near[:, :800], far[:, :800])  # warm-up
        run0, idle0 = ec.blocks_run, ec.blocks_idle
        ours_rates.append(channels * audio_s / _time_ticks(ec.process, near, far))
        run, idle = ec.blocks_run - run0, ec.blocks_idle - idle0
        share.append(run / max(1, run + idle))
        sp = Speex(ref_ch)
        ref_rates.append(ref_ch * audio_s / _time_ticks(sp.process, near[:ref_ch], far[:ref_ch]))
        sp.close()
    return {
        "ours_ch_per_core": statistics.median(ours_rates),
        "ref_ch_per_core": statistics.median(ref_rates),
        "ours_runs": ours_rates,
        "ref_runs": ref_rates,
        "active_share": statistics.median(share),
    }


def bench(seconds: float = 3.0, channels: int = CHANNELS) -> list[dict[str, Any]]:
    """One row per load (see module doc): worst case, then speech on/off."""
    rows = []
    ref_ch = 24
    loads = (
        ("all channels talking (worst case)", _signals(channels, seconds)),
        ("speech on/off far end", _speech_signals(channels, max(seconds, 10.0))),
    )
    for label, (near, far) in loads:
        r = _measure(channels, near, far, ref_ch)
        r["name"] = f"echo {TAIL_MS} ms, {label} ({channels} ch/call)"
        r["ref_name"] = f"speexdsp echo {TAIL_MS} ms, frame {TICK}"
        rows.append(r)
    near, far = loads[0][1]
    # memory per channel
    gc.collect()
    tracemalloc.start()
    ec = EchoCanceller(channels, tail_ms=TAIL_MS)
    for i in range(0, 1600, TICK):
        ec.process(near[:, i : i + TICK], far[:, i : i + TICK])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ref_mem = speex_memory_per_channel()
    for r in rows:
        r["mem_per_channel_bytes"] = peak / channels
        r["ref_mem_per_channel_bytes"] = ref_mem
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="echo canceller channels per core, ours vs speexdsp")
    p.add_argument("--seconds", type=float, default=3.0, help="audio per measurement (default 3)")
    p.add_argument("--channels", type=int, default=CHANNELS, help=f"channels per call (default {CHANNELS})")
    a = p.parse_args(argv)
    for r in bench(a.seconds, a.channels):
        print(r["name"])
        print(f"  filter ran on {100 * r['active_share']:.0f} % of channel-blocks")
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
