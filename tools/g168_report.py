"""Print the G.168 test table for dsp.echo and the ERLE at 1 s and 10 s per hybrid model.

    .venv/bin/python -m tools.g168_report            # CI subset (4 channels), ~30 s
    .venv/bin/python -m tools.g168_report --full     # 8 models x 4 levels x 3 delays x linear/A-law
    .venv/bin/python -m tools.g168_report --plot erle.png   # ERLE over time per hybrid model

Procedures and criteria: dsp/g168.py (framed as spandsp's echo_tests.c), docs/echo.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from dsp import g168
from dsp.echo import EchoCanceller

CONFORMANCE = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "g168"
LEVELS = (0.0, -10.0, -20.0, -30.0)
DELAYS = (0, 400)  # plus the longest delay that keeps the model inside the 128 ms tail


def load_models(path: Path = CONFORMANCE / "hybrid_models.json") -> dict[str, Any]:
    return json.loads(path.read_text())["models"]


def _case(models: dict[str, Any], name: str, **kw: Any) -> g168.Case:
    m = models[name]
    return g168.Case(name, tuple(m["coeffs"]), m["gain"], **kw)


def matrix(models: dict[str, Any]) -> tuple[list[g168.Case], list[g168.Case]]:
    """Every model x Rin level x delay x codec, and the model each switches to for reconvergence."""
    names = sorted(models)
    cases, alts = [], []
    for k, name in enumerate(names):
        other = names[(k + 3) % len(names)]
        last = 1024 - int(models[name]["taps"])
        for lv in LEVELS:
            for d in (*DELAYS, last):
                for alaw in (False, True):
                    cases.append(_case(models, name, delay=d, level=lv, alaw=alaw))
                    alts.append(
                        _case(
                            models,
                            other,
                            delay=min(d, 1024 - int(models[other]["taps"])),
                            level=lv,
                            alaw=alaw,
                        )
                    )
    return cases, alts


def subset(models: dict[str, Any]) -> tuple[list[g168.Case], list[g168.Case]]:
    spec = [("d2", 0, 0.0), ("d5", 300, -10.0), ("d8", 900, -30.0), ("d9", 500, -20.0)]
    aspec = [("d4", 100, 0.0), ("d6", 0, -10.0), ("d3", 200, -30.0), ("d7", 800, -20.0)]
    return (
        [_case(models, m, delay=d, level=lv) for m, d, lv in spec],
        [_case(models, m, delay=d, level=lv) for m, d, lv in aspec],
    )


def make(n: int) -> EchoCanceller:
    return EchoCanceller(n, tail_ms=128)


def run_all(
    cases: list[g168.Case], alts: list[g168.Case], full: bool, only: list[str] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    long = 1.0 if full else 1 / 6
    runs = {
        "2A": lambda: g168.test_2a(make, cases, alts),
        "2B": lambda: g168.test_2b(make, cases, alts),
        "2C": lambda: g168.test_2c(make, cases),
        "3A": lambda: g168.test_3a(make, cases),
        "3B(a) 0 dB": lambda: g168.test_3b(make, cases, 0.0),
        "3B(b) -15 dB": lambda: g168.test_3b(make, cases, -15.0),
        "3C": lambda: g168.test_3c(make, cases),
        "4": lambda: g168.test_4(make, cases, silence_s=120.0 * long),
        "5": lambda: g168.test_5(make, cases),
        "6": lambda: g168.test_6(make, cases, tone_s=5.0 if full else 2.0),
        "7": lambda: g168.test_7(make, cases, seconds=120.0 * long),
        "9": lambda: g168.test_9(make, cases, quiet_s=30.0 if full else 6.0),
    }
    out = {}
    for name, fn in runs.items():
        if only and name.split()[0] not in only:
            continue
        t = time.perf_counter()
        out[name] = fn()
        out[name]["_secs"] = np.array(time.perf_counter() - t)
    return out


def _fmt(v: np.ndarray) -> str:
    return f"{np.min(v):6.1f}..{np.max(v):6.1f}"


def print_table(cases: list[g168.Case], res: dict[str, dict[str, np.ndarray]]) -> None:
    print(f"G.168 tests on {len(cases)} channels (one canceller, one echo path per channel)")
    print(f"{'test':14s} {'pass':>9s}  figures (min..max over channels)")
    for name, r in res.items():
        ok = r["pass"]
        figs = "  ".join(f"{k}={_fmt(v)}" for k, v in r.items() if k not in ("pass", "_secs"))
        print(f"{name:14s} {int(ok.sum()):4d}/{len(ok):<4d}  {figs}")
    if "2B" not in res:
        return
    r2b = res["2B"]
    print("\nERLE (dB, NLP off, test 2B(a)) at 1 s and at 10 s per hybrid model, over levels/delays/codecs")
    print(f"{'model':6s} {'1 s min':>8s} {'1 s med':>8s} {'10 s min':>9s} {'10 s med':>9s}")
    names = np.array([c.model for c in cases])
    for m in sorted(set(names)):
        sel = names == m
        e1, e10 = r2b["erle1_a"][sel], r2b["erle10_a"][sel]
        print(f"{m:6s} {e1.min():8.1f} {np.median(e1):8.1f} {e10.min():9.1f} {np.median(e10):9.1f}")


def plot(models: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(models)
    cases = [_case(models, m, delay=300, level=-10.0) for m in names]
    b = g168._bench(make, cases, nlp=False)
    b.run(g168._rin(cases, 10.0), g168._zeros(cases, 10.0))
    sin, out = b.sin[-1], b.sout[-1]
    t = np.arange(0, 10.0 - 0.35, 0.05)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, m in enumerate(names):
        ax.plot(t, [g168.erle_db(sin[i : i + 1], out[i : i + 1], s, 0.35)[0] for s in t], label=m)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("ERLE (dB), 350 ms windows")
    ax.set_title(
        "dsp.echo: ERLE vs time, G.168 Annex D paths, CSS -10 dBm0, ERL 6 dB, A-law, 300 sample delay"
    )
    ax.grid(True)
    ax.legend(ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full", action="store_true", help="whole matrix (8 models x levels x delays x codecs)"
    )
    parser.add_argument("--plot", metavar="PNG", help="save ERLE over time per hybrid model")
    parser.add_argument("--only", nargs="*", help="run only these tests (e.g. 2A 3B(a) 7)")


def run(args: argparse.Namespace) -> int:
    models = load_models()
    cases, alts = matrix(models) if args.full else subset(models)
    print_table(cases, run_all(cases, alts, args.full, args.only))
    if args.plot:
        plot(models, args.plot)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
