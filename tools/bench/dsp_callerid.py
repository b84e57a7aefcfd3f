"""Caller ID receiver benchmark: channels one core sustains in real time at a 10 ms block, ours against
spandsp's adsi_rx in the same run, plus peak memory per channel.

    .venv/bin/python -m tools.bench.dsp_callerid                 # default 3 repeats, medians and ratios
    .venv/bin/python -m tools.bench.dsp_callerid --seconds 4 --repeats 5
    .venv/bin/python -m tools.bench.dsp_callerid --snr              # decode rate vs SNR, ours and spandsp
    .venv/bin/python -m tools.bench.dsp_callerid --snr --standard v23 --level -40 --trials 500

Two loads, the same samples fed to both receivers:
- "ring cadence": every channel gets one Bell 202 MDMF caller ID (-20 dBm0, 30 dB SNR) per 6 s ring cycle
  (China: 1 s ring, 4 s silence, caller ID in the first silence), staggered over channels; line noise
  at -65 dBm0 elsewhere. This is what an FXO port sees.
- "continuous FSK": every channel carries caller ID messages back to back, so every channel is being
  demodulated all the time (our worst case; spandsp's cost does not depend on the load).
spandsp is driven from a small compiled C loop (cffi API mode) so that no Python call per channel and block
is charged to it; the figure with a Python loop per call is printed too when --python-loop is given.
CPU time is process time (both run on one thread); figures are medians over the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from typing import Any

import numpy as np

from dsp.callerid import CallerId, CallerIdReceiver, CallerIdSender
from dsp.levels import SAMPLE_RATE, dbm0_to_rms

BLOCK = 80  # 10 ms
RING_CYCLE_S = 6.0
DATA_START = (300 + 180) * SAMPLE_RATE // 1200  # samples of seizure and mark before the message


def random_cids(
    n: int, rng: np.random.Generator, standard: str = "bell202", fmt: str = "mdmf"
) -> list[CallerId]:
    """n caller IDs: 11-digit numbers; with a name (MDMF) and a date/time (FSK)."""
    out = []
    for i in range(n):
        num = "1" + "".join(str(d) for d in rng.integers(0, 10, 10))
        if standard == "dtmf":
            out.append(CallerId(number=num))
            continue
        mo, dy, hh, mi = rng.integers(1, 13), rng.integers(1, 29), rng.integers(0, 24), rng.integers(0, 60)
        when = f"{mo:02d}{dy:02d}{hh:02d}{mi:02d}"
        name = None if fmt == "sdmf" else f"CALLER {i:05d}"
        out.append(CallerId(number=num, name=name, when=when))
    return out


def noisy_batch(
    standard: str, snr_db: float | None, level_dbm0: float, n: int, seed: int, fmt: str = "mdmf",
    codec: str | None = None,
) -> tuple[np.ndarray, list[CallerId], list[int]]:  # fmt: skip
    """(n, samples) int16: one caller ID per row at a random offset, white Gaussian noise at snr_db below
    the signal's power (over the whole 4 kHz band), optionally through A-law ("alaw") encode/decode."""
    from dsp import g711
    from dsp.levels import dbm0_to_mean_square

    rng = np.random.default_rng(seed)
    cids = random_cids(n, rng, standard, fmt)
    sender = CallerIdSender(standard, level_dbm0=level_dbm0)
    sigs = [sender.signal(c, fmt) for c in cids]
    length = max(len(s) for s in sigs) + 2400
    x = np.zeros((n, length))
    offsets = []
    for i, sig in enumerate(sigs):
        off = int(rng.integers(200, 1000))
        offsets.append(off)
        x[i, off : off + len(sig)] = sig
    if snr_db is not None:
        # DTMF power is that of the two tones while on; FSK's is that of one tone.
        power = float(dbm0_to_mean_square(level_dbm0)) * (2.0 if standard == "dtmf" else 1.0)
        x += rng.standard_normal(x.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    y = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    if codec == "alaw":
        y = g711.alaw_decode(g711.alaw_encode(y))
    return y, cids, offsets


def decode_rate(
    standard: str, snr_db: float | None, level_dbm0: float, n: int, seed: int = 1, fmt: str = "mdmf",
    codec: str | None = None, receiver: str = "ours",
) -> tuple[int, int]:  # fmt: skip
    """(right, wrong) among n messages: right = exactly the caller ID sent; wrong = any other event."""
    from dsp.callerid import dtmf_clip_string

    y, cids, _ = noisy_batch(standard, snr_db, level_dbm0, n, seed, fmt, codec)
    if receiver == "spandsp":
        from tools.bench.ref_spandsp_adsi import SpandspAdsiRx

        rx = SpandspAdsiRx(n, standard)
        rx.process(y)
        sender = CallerIdSender(standard)
        right = wrong = 0
        for i, msgs in enumerate(rx.messages):
            want = (
                dtmf_clip_string(cids[i]).encode() if standard == "dtmf" else sender.frame(cids[i], fmt)[:-1]
            )
            right += sum(1 for m in msgs if m == want) > 0
            wrong += sum(1 for m in msgs if m != want)
        rx.close()
        return right, wrong
    rx = CallerIdReceiver(n, standard)
    events = []
    for k in range(0, y.shape[1], BLOCK):
        events += rx.process(y[:, k : k + BLOCK])
    right = len({e.channel for e in events if e.value == cids[e.channel]})
    wrong = sum(1 for e in events if e.value != cids[e.channel])
    return right, wrong


def snr_table(standard: str, level_dbm0: float, trials: int, lo: int = 0, hi: int = 20,
              fmt: str = "mdmf", spandsp: bool = True) -> list[dict]:  # fmt: skip
    """Decode rate per SNR step of 1 dB from hi down to lo, ours and (optionally) spandsp's adsi_rx."""
    rows = []
    for snr in range(hi, lo - 1, -1):
        r, w = decode_rate(standard, snr, level_dbm0, trials, seed=snr, fmt=fmt)
        row = {"snr_db": snr, "ours_pct": 100.0 * r / trials, "ours_wrong": w}
        if spandsp:
            r2, w2 = decode_rate(standard, snr, level_dbm0, trials, seed=snr, fmt=fmt, receiver="spandsp")
            row |= {"spandsp_pct": 100.0 * r2 / trials, "spandsp_wrong": w2}
        rows.append(row)
    return rows


def make_load(
    channels: int, seconds: float, kind: str, seed: int = 1
) -> tuple[np.ndarray, list[list[CallerId]]]:
    """(channels, n) int16 samples, and per channel the caller IDs whose whole signal is inside."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE) // BLOCK * BLOCK
    sender = CallerIdSender("bell202", level_dbm0=-20.0)
    cids = random_cids(16, rng)
    variants = [sender.signal(c) for c in cids]
    y = np.empty((channels, n), dtype=np.int16)
    sent: list[list[CallerId]] = []
    cycle = int(RING_CYCLE_S * SAMPLE_RATE)
    noise = float(dbm0_to_rms(-65.0))
    for ch in range(channels):
        which = ch % len(variants)
        sig = variants[which]
        x = rng.standard_normal(n).astype(np.float32) * noise
        if kind == "cadence":  # caller ID 1.5 s into each ring cycle
            pos = int(rng.integers(0, cycle)) + int(1.5 * SAMPLE_RATE) - cycle
            step = cycle
        else:  # back to back
            pos = int(rng.integers(0, len(sig))) - len(sig)
            step = len(sig) + 40
        got = []
        while pos < n:
            lo, hi = max(pos, 0), min(pos + len(sig), n)
            if hi > lo:
                x[lo:hi] += sig[lo - pos : hi - pos]
            if pos + DATA_START >= 0 and pos + len(sig) <= n:  # the message itself is inside
                got.append(cids[which])
            pos += step
        sent.append(got)
        y[ch] = np.clip(np.round(x), -32768, 32767)
    return y, sent


def _ours(x: np.ndarray) -> tuple[float, list[Any]]:
    rx = CallerIdReceiver(x.shape[0], "bell202")
    events = []
    t = time.process_time()
    for k in range(0, x.shape[1], BLOCK):
        events += rx.process(x[:, k : k + BLOCK])
    return time.process_time() - t, events


def _spandsp(x: np.ndarray, python_loop: bool = False) -> tuple[float, list[list[bytes]]]:
    from tools.bench.ref_spandsp_adsi import SpandspAdsiRx, _compiled_loop

    if not python_loop:
        try:
            _compiled_loop()
        except Exception as exc:  # noqa: BLE001 - no C compiler: time spandsp from Python instead
            print(f"(spandsp C loop not built: {exc}; timing it from a Python loop)", file=sys.stderr)
            python_loop = True
    rx = SpandspAdsiRx(x.shape[0], "bell202")
    t = time.process_time()
    if python_loop:
        for k in range(0, x.shape[1], BLOCK):
            rx.process(x[:, k : k + BLOCK])
    else:
        rx.run_blocks(x, BLOCK)
    dt = time.process_time() - t
    msgs = rx.messages
    rx.close()
    return dt, msgs


def _peak_bytes_per_channel(channels: int) -> float:
    """Peak traced allocation (numpy included) of making a receiver and running 2 s of continuous FSK on
    every channel (the most it ever holds), per channel."""
    x, _ = make_load(channels, 2.0, "continuous", seed=7)
    tracemalloc.start()
    rx = CallerIdReceiver(channels, "bell202")
    for k in range(0, x.shape[1], BLOCK):
        rx.process(x[:, k : k + BLOCK])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del rx
    return peak / channels


def _count(sent: list[list[CallerId]], ours: list[Any], ref: list[list[bytes]], nref: int) -> str:
    """Complete messages decoded on the channels both receivers ran: ours, spandsp's, of those sent."""
    sender = CallerIdSender("bell202")
    want = sum(len(s) for s in sent[:nref])
    ours_ok = sum(1 for e in ours if e.channel < nref and e.value in sent[e.channel])
    frames = [{sender.frame(c)[:-1] for c in s} for s in sent[:nref]]
    ref_ok = sum(1 for ch, msgs in enumerate(ref) for m in msgs if m in frames[ch])
    return f"{ours_ok}/{want} vs {ref_ok}/{want}"


LOADS = {
    "cadence": "ring cadence",  # one caller ID per channel per 6 s ring cycle
    "continuous": "continuous FSK",  # every channel demodulating all the time
}


def bench(
    seconds: float = 3.0,
    repeats: int = 3,
    channels: int = 2000,
    ref_channels: int = 300,
    python_loop: bool = False,
    loads: tuple[str, ...] = ("cadence", "continuous"),
) -> list[dict]:
    """Rows {name, ours_ch_per_core, ref_name, ref_ch_per_core, mem_per_channel_bytes, decoded, ...};
    channels one core sustains in real time at 10 ms blocks (medians of `repeats` runs, CPU time)."""
    rows = []
    mem = _peak_bytes_per_channel(min(channels, 1000))
    for kind in loads:
        x, sent = make_load(channels, seconds, kind)
        xr = np.ascontiguousarray(x[:ref_channels])
        audio_s = x.shape[1] / SAMPLE_RATE
        ours, ref, ref_py = [], [], []
        decoded = ""
        for _ in range(repeats):
            dt, events = _ours(x)
            ours.append(channels * audio_s / dt)
            dt, msgs = _spandsp(xr)
            ref.append(ref_channels * audio_s / dt)
            if python_loop:
                dt, _ = _spandsp(xr, python_loop=True)
                ref_py.append(ref_channels * audio_s / dt)
            decoded = _count(sent, events, msgs, ref_channels)
        row = {
            "name": f"callerid bell202 {LOADS[kind]} ({channels} ch)",
            "ours_ch_per_core": statistics.median(ours),
            "ref_name": "spandsp adsi_rx",
            "ref_ch_per_core": statistics.median(ref),
            "mem_per_channel_bytes": mem,
            "decoded": decoded,
            "ours_runs": [round(v) for v in ours],
            "ref_runs": [round(v) for v in ref],
        }
        if ref_py:
            row["ref_python_loop_ch_per_core"] = statistics.median(ref_py)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dsp_callerid", description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="audio per run (default 3)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure; medians are printed")
    ap.add_argument("--channels", type=int, default=2000, help="channels in our receiver")
    ap.add_argument("--ref-channels", type=int, default=300, help="channels in the spandsp run")
    ap.add_argument("--python-loop", action="store_true", help="also time spandsp called from Python")
    ap.add_argument("--snr", action="store_true", help="print decode rate against SNR instead")
    ap.add_argument("--standard", default="bell202", choices=("bell202", "v23", "dtmf"))
    ap.add_argument("--level", type=float, default=-20.0, help="signal level in dBm0 (--snr)")
    ap.add_argument("--trials", type=int, default=300, help="messages per SNR step (--snr)")
    ap.add_argument("--format", default="mdmf", choices=("mdmf", "sdmf"))
    args = ap.parse_args(argv)
    if args.snr:
        print(f"{args.standard} {args.format.upper()} at {args.level} dBm0, {args.trials} messages per step, "
              "white noise over 0-4 kHz; % decoded exactly (wrong events)")  # fmt: skip
        for r in snr_table(args.standard, args.level, args.trials, fmt=args.format):
            print(
                f"  {r['snr_db']:3d} dB   ours {r['ours_pct']:6.1f} % ({r['ours_wrong']})   "
                f"spandsp {r['spandsp_pct']:6.1f} % ({r['spandsp_wrong']})"
            )
        return 0
    rows = bench(args.seconds, args.repeats, args.channels, args.ref_channels, args.python_loop)
    for r in rows:
        ratio = r["ours_ch_per_core"] / r["ref_ch_per_core"]
        print(
            f"{r['name']}\n    ours {r['ours_ch_per_core']:7.0f} ch/core (runs {r['ours_runs']})   "
            f"{r['ref_name']} {r['ref_ch_per_core']:7.0f} ch/core (runs {r['ref_runs']})   "
            f"ratio {ratio:4.2f}\n"
            f"    peak memory {r['mem_per_channel_bytes']:.0f} B/channel   "
            f"decoded on the first {args.ref_channels} channels: ours vs spandsp {r['decoded']}"
        )
        if "ref_python_loop_ch_per_core" in r:
            print(f"    (spandsp called from a Python loop: {r['ref_python_loop_ch_per_core']:.0f} ch/core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
