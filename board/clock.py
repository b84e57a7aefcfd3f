"""The one clock everything that waits reads from (DESIGN.md: never time.time() directly).

RealClock follows the host's monotonic clock; VirtualClock only moves when told to, so a test of an hour
of traffic runs in seconds and replays exactly. Both hand out timers the same way: callers ask for
`now()` and schedule work with `call_at`; whoever drives the clock runs what is due with `run_due()`.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class Timer:
    deadline: float
    order: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Time source plus a timer heap. Subclasses decide what `now()` means."""

    def __init__(self, seed: int = 0) -> None:
        self._timers: list[Timer] = []
        self._order = itertools.count()
        # One seeded random source shared by the simulated world, so a failing seed replays exactly.
        self.random = random.Random(seed)

    def now(self) -> float:
        raise NotImplementedError

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(deadline, next(self._order), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.now() + delay, callback)

    def next_deadline(self) -> float | None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].deadline if self._timers else None

    def run_due(self) -> int:
        """Run every timer whose deadline has passed, in deadline order; returns how many ran."""
        ran = 0
        now = self.now()
        while self._timers and self._timers[0].deadline <= now:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()
                ran += 1
        return ran


class RealClock(Clock):
    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline: float) -> None:
        delay = deadline - self.now()
        if delay > 0:
            time.sleep(delay)


class VirtualClock(Clock):
    """Simulated time: starts at `start` and moves only through `advance` / `advance_to`."""

    def __init__(self, start: float = 0.0, seed: int = 0) -> None:
        super().__init__(seed)
        self._now = start

    def now(self) -> float:
        return self._now

    def advance_to(self, when: float) -> None:
        """Move time forward to `when`, running each timer at its own deadline on the way."""
        if when < self._now:
            raise ValueError(f"virtual time cannot go back ({when} < {self._now})")
        while (deadline := self.next_deadline()) is not None and deadline <= when:
            self._now = max(self._now, deadline)
            self.run_due()
        self._now = when

    def advance(self, seconds: float) -> None:
        self.advance_to(self._now + seconds)

    def sleep_until(self, deadline: float) -> None:
        self.advance_to(max(deadline, self._now))
