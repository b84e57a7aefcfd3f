"""A simulated board with a far end on every line, all on one clock: the tests', the demo's and the
benchmark's world.

Per tick (in this order, so a tick's traffic crosses both ways within the tick and replays exactly):
far ends send their block -> the board steps (lines in, card time, lines out) -> far ends read what the
box sent -> `on_tick` callbacks (the media engine, a test's checks). Time is `start + k * period` for tick
k, never an accumulated float, so cadences land on the same tick in every run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from board.clock import Clock, VirtualClock
from board.description import BoardDescription
from board.sim.board import SimBoard
from tools.linesim.co import CoLine, CoLineEnd
from tools.linesim.e1 import ExchangeE1, ExchangeE1End


class World:
    def __init__(
        self,
        desc: BoardDescription,
        rundir: str | Path,
        clock: Clock | None = None,
        connect: bool = True,
        tick_frames: int = 80,
    ) -> None:
        self.clock = clock if clock is not None else VirtualClock()
        self.board = SimBoard(desc, rundir, tick_frames=tick_frames)
        self.n = tick_frames
        self.e1: list[ExchangeE1End] = [
            ExchangeE1End(self.board.socket_path("e1", s.span), ExchangeE1(s.framing == "cas", s.crc4))
            for s in desc.spans
        ]
        self.co: list[CoLineEnd] = [
            CoLineEnd(self.board.socket_path("fxo", p + 1), CoLine()) for p in range(desc.port_count)
        ]
        self.on_tick: list[Callable[[float], None]] = []
        self.ticks = 0
        self.start = self.clock.now()
        self._stopped = False
        if connect:
            for end in [*self.e1, *self.co]:
                end.connect()

    @property
    def period(self) -> float:
        return self.n / 8000

    def tick_time(self, k: int) -> float:
        return self.start + k * self.period

    def card_time(self, samples: int) -> float:
        """Clock time of a card timestamp (an FxoEvent.timestamp, 8 kHz since the board started)."""
        return self.start + samples / 8000

    def tick(self) -> None:
        now = self.tick_time(self.ticks)
        for end in self.e1:
            end.send_frames(end.frames_for(self.n))
        for co in self.co:
            co.send_block(now, self.n)
        self.board.step()
        for end in self.e1:
            end.receive()
        for co in self.co:
            co.receive(now)
        self.ticks += 1
        for cb in self.on_tick:
            cb(now)

    def attach(self) -> None:
        """Run one tick per period on the clock's timers (from the next tick time on)."""

        def fire() -> None:
            self.tick()
            if not self._stopped:
                self.clock.call_at(self.tick_time(self.ticks), fire)

        self.clock.call_at(self.tick_time(self.ticks), fire)

    def run(self, seconds: float) -> None:
        """Virtual time: `seconds` of ticks, as fast as the host goes."""
        for _ in range(round(seconds / self.period)):
            self.tick()
        if isinstance(self.clock, VirtualClock):
            self.clock.advance_to(max(self.clock.now(), self.tick_time(self.ticks)))

    def stop(self) -> None:
        self._stopped = True

    def close(self) -> None:
        self._stopped = True
        for end in [*self.e1, *self.co]:
            end.close()
        self.board.close()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
