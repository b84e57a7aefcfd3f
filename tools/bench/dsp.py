"""`callbox bench dsp`: channels one core sustains in real time at a 10 ms block (80 samples), ours beside
the reference in the same run, and peak memory per channel, for every DSP detector.

    .venv/bin/python -m tools.bench.dsp                  # DTMF, call progress, caller ID, echo (all present)
    .venv/bin/python -m tools.bench.dsp --only dtmf cpt --repeats 7

Rows:
- DTMF, "IVR" load: every channel carries the talk-off corpus (speech, two-talker, music; tools/corpus.py)
  with a key press (50-100 ms, -25..-5 dBm0 per tone) every ~2 s; and a worst case where every channel
  carries keys back to back (50 ms on / 50 ms off). Reference: spandsp dtmf_rx.
- Call progress: every channel carries China tones (dial, busy, ringback, congestion at -10..-30 dBm0)
  alternating with corpus speech. Reference: spandsp super_tone_rx loaded with the same cadences.
- Caller ID and echo rows come from tools/bench/dsp_callerid.py and tools/bench/dsp_echo.py when present
  (each provides bench(seconds) -> rows).
spandsp runs from a small compiled C loop (cffi API mode), so no Python per call is charged to it.
Ours runs with BLAS limited to one thread. Time is CPU time of the process (one thread); each figure is
the median over the repeats; the machine is shared, so read ratios rather than absolutes.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from dsp import tones
from dsp.levels import SAMPLE_RATE

BLOCK = 80


def _blas_one_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is in install_requires
        return None
    return threadpool_limits(limits=1)


def _corpus(minutes: float = 2.0) -> np.ndarray:
    from tools import corpus

    return corpus.load(minutes).astype(np.float64)


def dtmf_base(kind: str, seconds: float = 60.0, seed: int = 11) -> np.ndarray:
    """One long int16 signal the channels read at different offsets."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    if kind == "keys":
        digits = "".join(rng.choice(list(tones.DTMF_KEYS), size=n // 800 + 1))
        return tones.to_int16(tones.dtmf_sequence(digits, 50.0, 50.0, -10.0)[:n])
    base = _corpus(seconds / 60.0)[:n].copy()
    pos = int(rng.integers(0, 2 * SAMPLE_RATE))
    while pos < n - 1000:
        key = tones.dtmf_digit(
            str(rng.choice(list(tones.DTMF_KEYS))), float(rng.uniform(50, 100)), float(rng.uniform(-25, -5))
        )
        base[pos : pos + key.size] += key[: n - pos]
        pos += int(rng.uniform(1.0, 3.0) * SAMPLE_RATE)
    return tones.to_int16(base)


def cpt_base(seconds: float = 60.0, seed: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    speech = _corpus(seconds / 60.0)
    parts, total = [], 0
    names = ["dial", "busy", "ringback", "congestion"]
    while total < n:
        name = names[int(rng.integers(0, 4))]
        t = tones.cadence("cn", name, float(rng.uniform(4, 12)), float(rng.uniform(-30, -10)), 0.05, rng)
        s0 = int(rng.integers(0, max(1, speech.size - 5 * SAMPLE_RATE)))
        parts += [t, speech[s0 : s0 + int(rng.uniform(2, 5) * SAMPLE_RATE)]]
        total += t.size + parts[-1].size
    return tones.to_int16(np.concatenate(parts)[:n])


class _Feed:
    """Blocks for `channels` channels reading `base` at staggered offsets (built outside the timing)."""

    def __init__(self, base: np.ndarray, channels: int, seed: int = 3) -> None:
        self.base = base
        self.offsets = np.random.default_rng(seed).integers(0, base.size, channels)
        self.t = 0
        self._ar = np.arange(BLOCK)

    def next(self) -> np.ndarray:
        idx = (self.offsets[:, None] + self.t + self._ar[None, :]) % self.base.size
        self.t += BLOCK
        return self.base[idx]

    def contiguous(self, n: int) -> np.ndarray:
        idx = (self.offsets[:, None] + self.t + np.arange(n)[None, :]) % self.base.size
        self.t += n
        return self.base[idx]


def _time_ours(
    make: Callable[[int], Any], base: np.ndarray, channels: int, seconds: float
) -> tuple[float, int]:
    """(channels per core, events) for a detector fed 10 ms blocks for `seconds` of audio."""
    det = make(channels)
    feed = _Feed(base, channels)
    for _ in range(5):
        det.process(feed.next())  # warm-up
    spent = 0.0
    events = 0
    ticks = int(seconds * 100)
    for _ in range(ticks):
        block = feed.next()
        t0 = time.process_time()
        events += len(det.process(block))
        spent += time.process_time() - t0
    return channels * ticks * 0.01 / max(spent, 1e-9), events


def _peak_bytes_per_channel(make: Callable[[int], Any], base: np.ndarray, channels: int = 4096) -> float:
    feed = _Feed(base, channels)
    blocks = [feed.next() for _ in range(20)]
    gc.collect()
    tracemalloc.start()
    det = make(channels)
    for b in blocks:
        det.process(b)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / channels


def _heap_bytes() -> int:
    """Bytes allocated by malloc in this process (glibc mallinfo2): where spandsp's states live."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(
        "struct mallinfo2 { size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, "
        "fordblks, keepcost; }; struct mallinfo2 mallinfo2(void);"
    )
    libc = ffi.dlopen(None)
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _ref_memory(make: Callable[[int], Any], channels: int = 2000) -> float:
    gc.collect()
    before = _heap_bytes()
    ref = make(channels)
    after = _heap_bytes()
    ref.close()
    return (after - before) / channels


def _time_ref(make: Callable[[int], Any], base: np.ndarray, channels: int, seconds: float) -> float:
    ref = make(channels)
    feed = _Feed(base, channels)
    x = feed.contiguous(int(seconds * SAMPLE_RATE) // BLOCK * BLOCK)
    ref.run_blocks(x[:, : BLOCK * 5], BLOCK)  # warm-up (and compile the loop once)
    t0 = time.process_time()
    ref.run_blocks(x, BLOCK)
    spent = time.process_time() - t0
    ref.close()
    return channels * (x.shape[1] / SAMPLE_RATE) / max(spent, 1e-9)


def _rows_for(
    label: str,
    make_ours: Callable[[int], Any],
    make_ref: Callable[[int], Any],
    ref_name: str,
    base: np.ndarray,
    seconds: float,
    repeats: int,
    channels: int,
    ref_channels: int,
) -> dict[str, Any]:
    ours, refs, events = [], [], 0
    for _ in range(repeats):
        rate, events = _time_ours(make_ours, base, channels, seconds)
        ours.append(rate)
        refs.append(_time_ref(make_ref, base, ref_channels, seconds))
    return {
        "name": label,
        "ours_ch_per_core": statistics.median(ours),
        "ref_name": ref_name,
        "ref_ch_per_core": statistics.median(refs),
        "mem_per_channel_bytes": _peak_bytes_per_channel(make_ours, base),
        "ref_mem_per_channel_bytes": _ref_memory(make_ref),
        "spread": (min(ours), max(ours)),
        "events": events,
    }


def bench_dtmf(seconds: float, repeats: int, channels: int, ref_channels: int) -> list[dict[str, Any]]:
    from dsp.dtmf import DtmfDetector
    from tools.bench.ref_spandsp import SpandspDtmf

    rows = []
    for kind, label in (
        ("ivr", "DTMF (IVR load: speech/music + keys)"),
        ("keys", "DTMF (keys back to back)"),
    ):
        base = dtmf_base(kind)
        rows.append(
            _rows_for(
                label,
                DtmfDetector,
                SpandspDtmf,
                "spandsp dtmf_rx",
                base,
                seconds,
                repeats,
                channels,
                ref_channels,
            )
        )
    return rows


def bench_cpt(seconds: float, repeats: int, channels: int, ref_channels: int) -> list[dict[str, Any]]:
    from dsp.cpt import CallProgressDetector
    from tools.bench.ref_spandsp import SpandspToneRx, spandsp_cadences

    base = cpt_base()
    return [
        _rows_for(
            "call progress (China tones + speech)",
            CallProgressDetector,
            lambda n: SpandspToneRx(spandsp_cadences("cn"), n),
            "spandsp super_tone_rx",
            base,
            seconds,
            repeats,
            channels,
            ref_channels,
        )
    ]


def _external(module: str, seconds: float) -> list[dict[str, Any]]:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        print(f"({module} not available: {exc})", file=sys.stderr)
        return []
    return list(mod.bench(seconds))


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'detector':44s} {'ours ch/core':>13s} {'reference':32s} {'ref ch/core':>12s} {'ratio':>6s} "
        f"{'mem B/ch':>9s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r["ours_ch_per_core"] / r["ref_ch_per_core"] if r.get("ref_ch_per_core") else float("nan")
        mem = r.get("mem_per_channel_bytes", float("nan"))
        print(
            f"{r['name'][:44]:44s} {r['ours_ch_per_core']:13,.0f} {str(r.get('ref_name', ''))[:32]:32s} "
            f"{r.get('ref_ch_per_core', float('nan')):12,.0f} {ratio:6.2f} {mem:9,.0f}"
        )
    extra = [r for r in rows if "spread" in r and "ref_mem_per_channel_bytes" in r]
    for r in extra:
        lo, hi = r.get("spread", (0, 0))
        print(
            f"  {r['name']}: ours {lo:,.0f}..{hi:,.0f} ch/core over repeats; "
            f"reference state {r['ref_mem_per_channel_bytes']:,.0f} B/ch (malloc growth)"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=2.0, help="audio per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--channels", type=int, default=32768, help="channels our detectors run at once")
    parser.add_argument("--ref-channels", type=int, default=1000)
    parser.add_argument(
        "--only", nargs="*", choices=["dtmf", "cpt", "callerid", "echo"], help="subset of rows (default: all)"
    )


def run(args: argparse.Namespace) -> int:
    want = set(args.only or ["dtmf", "cpt", "callerid", "echo"])
    rows: list[dict[str, Any]] = []
    limiter = _blas_one_thread()
    try:
        if "dtmf" in want:
            rows += bench_dtmf(args.seconds, args.repeats, args.channels, args.ref_channels)
        if "cpt" in want:
            try:
                rows += bench_cpt(args.seconds, args.repeats, args.channels, args.ref_channels)
            except ImportError as exc:
                print(f"(call progress not available: {exc})", file=sys.stderr)
        if "callerid" in want:
            rows += _external("tools.bench.dsp_callerid", args.seconds)
        if "echo" in want:
            rows += _external("tools.bench.dsp_echo", args.seconds)
    finally:
        if limiter is not None:
            limiter.unregister()
    print_table(rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
