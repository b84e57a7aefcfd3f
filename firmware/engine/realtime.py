"""What the media tick's thread asks of the host: scheduling class, CPU, the GIL and the garbage collector.

`thread_setup(priority, cpus)` is called on the tick thread itself. It asks Linux for SCHED_FIFO at
`priority` (the tick then preempts every ordinary thread the moment its timer fires), and, failing that
(no CAP_SYS_NICE, RLIMIT_RTPRIO 0, a container that forbids it), for the highest niceness it may take; it
pins the thread to `cpus` when asked. It never fails: it returns a line saying what applied and what was
refused, for the status view and the benchmark.

`IdleGc` keeps the cyclic garbage collector out of the ticks. Python's collector runs inside whichever
allocation crosses its threshold, in any thread, holding the GIL for as long as the scan takes: with
hundreds of thousands of live objects (call control, the ACD, SIP) a generation-2 scan is tens of
milliseconds landing in a random tick. So, while the engine runs in real time:

- everything alive after start-up is frozen (`gc.freeze()`: moved to a permanent generation no scan
  visits);
- automatic collection is off (`gc.disable()`);
- the tick thread collects in the idle time after a tick, when at least `min_idle` of the period is left:
  generation 0 when its count passes the threshold, generation 1 every 10th of those, generation 2 every
  `full_every` seconds (or as soon as generation 2 holds 10x its threshold). Each collection is timed.

Stopping restores what was there (collector enabled or not, frozen objects given back, switch interval).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time

__all__ = ["IdleGc", "SwitchInterval", "thread_setup", "SWITCH_INTERVAL"]

# The GIL hand-over interval while the tick runs. numpy gives the GIL up inside every large operation; when
# another thread (call control) takes it, the tick thread waits for up to this long to get it back, many
# times a tick. Python's default is 5 ms, half a tick. 0.5 ms bounds each wait at a twentieth of a tick;
# the cost is more frequent GIL hand-overs in the control thread (measured in tools/bench/engine.py).
SWITCH_INTERVAL = 0.0005


def thread_setup(priority: int | None = 10, cpus: set[int] | None = None) -> str:
    """Make the calling thread the real-time tick thread as far as the host permits; says what applied."""
    said = []
    if priority is not None and hasattr(os, "sched_setscheduler"):
        try:
            lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
            prio = min(max(int(priority), lo), hi)
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))  # 0 = this thread (Linux)
            said.append(f"SCHED_FIFO priority {prio}")
        except (OSError, ValueError) as exc:
            said.append(f"SCHED_FIFO refused ({_why(exc)})")
            said.append(_renice())
    elif priority is not None:
        said.append("no SCHED_FIFO on this OS")
    else:
        said.append("ordinary scheduling (asked for no priority)")
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
            said.append(f"pinned to CPU {','.join(map(str, sorted(cpus)))}")
        except (OSError, ValueError, AttributeError) as exc:
            said.append(f"CPU pinning refused ({_why(exc)})")
    return "; ".join(said)


def _renice() -> str:
    """Second best: the lowest niceness this thread may take (Linux nice is per thread)."""
    tid = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as exc:
        return f"niceness unknown ({_why(exc)})"
    for nice in (-10, -5, -1):
        if nice >= before:
            break
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
            return f"SCHED_OTHER nice {nice}"
        except OSError:
            continue
    return f"SCHED_OTHER nice {before} (raising priority refused)"


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class IdleGc:
    """The cyclic collector run by the tick thread between ticks (see the module docstring)."""

    def __init__(self, full_every: float = 10.0, min_idle: float = 0.4) -> None:
        self.full_every = full_every
        self.min_idle = min_idle
        self.collections = [0, 0, 0]
        self.seconds = 0.0  # total time spent collecting
        self.max_seconds = 0.0  # the longest single collection
        self._was_enabled = True
        self._active = False
        self._young = 0
        self._last_full = 0.0
        self._threshold = gc.get_threshold()

    def start(self) -> None:
        if self._active:
            return
        self._was_enabled = gc.isenabled()
        self._threshold = gc.get_threshold()
        gc.collect()  # start-up garbage goes now, not into the frozen generation
        gc.freeze()
        gc.disable()
        self._active = True
        self._last_full = time.monotonic()

    def stop(self) -> None:
        if not self._active:
            return
        self._active = False
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def collect(self, idle: float, period: float) -> int:
        """Called after a tick with `idle` seconds left before the next one; returns the generation
        collected, or -1. Collects only if there is enough idle time, unless garbage piles up."""
        if not self._active:
            return -1
        t0, t1, t2 = self._threshold
        n0, _n1, n2 = gc.get_count()
        now = time.monotonic()
        gen = -1
        if now - self._last_full >= self.full_every or n2 > 10 * max(t2, 1):
            gen = 2
        elif n0 >= t0:
            gen = 1 if self._young >= 9 else 0
        if gen < 0:
            return -1
        if idle < self.min_idle * period and n0 < 10 * t0:
            return -1  # not now: the next idle stretch will do, unless garbage is piling up
        start = time.perf_counter()
        gc.collect(gen)
        spent = time.perf_counter() - start
        self.collections[gen] += 1
        self.seconds += spent
        self.max_seconds = max(self.max_seconds, spent)
        if gen == 0:
            self._young += 1
        else:
            self._young = 0
        if gen == 2:
            self._last_full = now
        return gen

    def summary(self) -> dict[str, float]:
        return {
            "gc_gen0": self.collections[0],
            "gc_gen1": self.collections[1],
            "gc_gen2": self.collections[2],
            "gc_total_ms": self.seconds * 1e3,
            "gc_max_ms": self.max_seconds * 1e3,
        }


class SwitchInterval:
    """sys.setswitchinterval while the tick runs; the old value comes back at `restore()`."""

    def __init__(self, seconds: float | None) -> None:
        self.old = sys.getswitchinterval()
        self.seconds = seconds
        if seconds is not None:
            sys.setswitchinterval(seconds)

    def restore(self) -> None:
        if self.seconds is not None:
            sys.setswitchinterval(self.old)
