"""Simulated callers and agents for the demo and for soak tests: the people on the far ends.

Callers arrive as a Poisson process with caller IDs, listen to the IVR, press a menu key (in-band DTMF),
wait in the queue with a patience drawn from an exponential distribution and hang up when it runs out,
or talk to an agent for a while and hang up. Agents answer their phones after a few seconds, talk, and
hang up. Every random choice comes from one seeded generator and every wait from the shared clock, so a
run replays exactly in virtual time.

The far ends are driven through a small line interface (`CallerLines`): `call_in(caller, dnis)` returns a
leg that can `press(digits)` and `far_hangup()` and has a `state` ("down" once the box cleared it); a leg
that carries audio may also `start_talking()` once its caller hears a person. The in-process testbed lines
and the exchanges of `tools.pstn` (PRI spans and CO lines) offer it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from board.clock import Clock


class CallerLeg(Protocol):
    state: str

    def press(self, digits: str) -> None: ...

    def far_hangup(self) -> None: ...


class CallerLines(Protocol):
    def call_in(self, caller: str, dnis: str) -> CallerLeg | None: ...


@dataclass
class CallerProfile:
    calls_per_hour: float = 360.0
    dnis: str = "95588"
    menu: dict[str, float] = field(default_factory=lambda: {"1": 0.55, "2": 0.25, "9": 0.1, "0": 0.1})
    think: tuple[float, float] = (6.0, 12.0)  # seconds after the call is answered before the key is pressed
    patience_mean: float = 150.0  # seconds a caller waits for an agent before hanging up (exponential)
    talk: tuple[float, float] = (45.0, 240.0)  # seconds with an agent
    repeat_callers: float = 0.2  # share of calls from a number that called before (sticky agent, reports)


@dataclass
class CallerStats:
    offered: int = 0
    no_line: int = 0
    pressed: int = 0
    talked: int = 0
    abandoned: int = 0
    cleared_by_box: int = 0


class SimulatedCallers:
    """Poisson arrivals onto `lines`; `connected(leg)` says whether the caller is talking to a person
    (it stands in for the caller recognising a human voice)."""

    def __init__(
        self,
        clock: Clock,
        lines: CallerLines,
        connected: Callable[[Any], bool],
        profile: CallerProfile | None = None,
        seed: int = 1,
    ) -> None:
        self.clock = clock
        self.lines = lines
        self.connected = connected
        self.profile = profile or CallerProfile()
        self.random = random.Random(seed)
        self.stats = CallerStats()
        self.active: list[Any] = []
        self._numbers: list[str] = []
        self._running = False

    def start(self) -> None:
        self._running = True
        self._schedule_next()

    def stop(self) -> None:
        self._running = False

    def _schedule_next(self) -> None:
        if self._running and self.profile.calls_per_hour > 0:
            self.clock.call_later(self.random.expovariate(self.profile.calls_per_hour / 3600.0), self._arrive)

    def _number(self) -> str:
        if self._numbers and self.random.random() < self.profile.repeat_callers:
            return self.random.choice(self._numbers)
        number = f"13{self.random.randrange(10**9):09d}"
        self._numbers.append(number)
        return number

    def _arrive(self) -> None:
        if not self._running:
            return
        self._schedule_next()
        self.stats.offered += 1
        leg = self.lines.call_in(self._number(), self.profile.dnis)
        if leg is None:
            self.stats.no_line += 1
            return
        self.active.append(leg)
        keys, weights = zip(*self.profile.menu.items(), strict=True)
        digit = self.random.choices(keys, weights)[0]
        patience = self.random.expovariate(1.0 / self.profile.patience_mean)
        talk = self.random.uniform(*self.profile.talk)
        think = self.random.uniform(*self.profile.think)
        self.clock.call_later(think, lambda: self._press(leg, digit, patience, talk))

    def _press(self, leg: Any, digit: str, patience: float, talk: float) -> None:
        if leg.state == "down":
            return self._gone(leg)
        leg.press(digit)
        self.stats.pressed += 1
        gives_up_at = self.clock.now() + patience
        self.clock.call_later(1.0, lambda: self._wait(leg, gives_up_at, talk))
        return None

    def _wait(self, leg: Any, gives_up_at: float, talk: float) -> None:
        if leg.state == "down":
            return self._gone(leg)
        if self.connected(leg):
            self.stats.talked += 1
            start_talking = getattr(leg, "start_talking", None)
            if start_talking is not None:
                start_talking()  # the caller's voice goes down the line (lines that carry audio)
            self.clock.call_later(talk, lambda: self._hang_up(leg))
        elif self.clock.now() >= gives_up_at:
            self.stats.abandoned += 1
            self._hang_up(leg)
        else:
            self.clock.call_later(1.0, lambda: self._wait(leg, gives_up_at, talk))
        return None

    def _hang_up(self, leg: Any) -> None:
        if leg.state != "down":
            leg.far_hangup()
        if leg in self.active:
            self.active.remove(leg)

    def _gone(self, leg: Any) -> None:
        self.stats.cleared_by_box += 1
        if leg in self.active:
            self.active.remove(leg)
