"""`callbox demo`: the appliance on the simulated board with far ends on every line and a live status view.

For now the appliance is the board itself: two E1 spans, each cabled to an exchange far end, and four
FXO ports on CO lines that ring now and then (China cadence); the demo answers a ringing line after two
rings and hangs up a little later, so ring detection, ring trip and the polarity reversals show. The
status view (rich) shows spans with their sync/alarm state and counters, FXO ports with hook, ring,
battery and polarity, the front panel LEDs, and the tick load. Ctrl-C stops cleanly.

The pieces are functions so the full call-center demo can grow from them: `build_demo()` makes the
world (board + far ends + panel) on a clock, `Demo.tick()` runs one 10 ms tick, `Demo.render()` makes the
status view, `run_demo()` paces it in real time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from board.clock import Clock, RealClock
from board.description import load_board
from board.panel import GpiozeroPins, Panel, PanelStatus, status_from_cards
from board.sim.board import default_rundir
from tools.linesim.world import World


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: Ctrl-C)")
    parser.add_argument("--data", default="./data", help="data directory (sockets go in DATA/run)")
    parser.add_argument("--board", default="sim-2e1-4fxo", help="board description (name or YAML path)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated world's random choices")
    parser.add_argument("--plain", action="store_true", help="print a status line per second, no live view")


@dataclass
class Demo:
    world: World
    panel: Panel
    clock: Clock
    answer_after_rings: int = 2
    talk_seconds: float = 6.0
    tick_work: list[float] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    extra_tick: list[Callable[[float], None]] = field(default_factory=list)  # later: the media engine
    _answered_at: dict[int, float] = field(default_factory=dict)
    _next_call: dict[int, float] = field(default_factory=dict)
    _rings: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rnd = self.clock.random
        for p in range(1, len(self.world.co) + 1):
            self._next_call[p] = self.world.start + 2.0 + rnd.uniform(0, 15)
        tdm = self.world.board.tdm
        # Far ends talk on every voice channel: a quiet tone per channel, so the DMA carries audio.
        for end in self.world.e1:
            t = np.arange(80)
            block = np.full((32, 80), 0xD5, np.uint8)
            block[1:] = (0xD5 ^ ((t[None, :] * 3 + np.arange(1, 32)[:, None]) & 0x0F)).astype(np.uint8)
            end.ex.set_voice(block)
        self._tx = np.full((tdm.channels, 80), 0xD5, np.uint8)

    @property
    def now(self) -> float:
        """Clock time of the next tick (the time base of the far ends)."""
        return self.world.tick_time(self.world.ticks)

    @property
    def elapsed(self) -> float:
        return self.now - self.world.start

    def tick(self) -> None:
        t0 = time.perf_counter()
        now = self.now
        self._co_lines(now)
        self.world.board.tdm.write(self._tx)
        self.world.tick()
        self.world.board.tdm.read(80)
        for ev in self.world.board.fxo.events() if self.world.board.fxo is not None else []:
            self._fxo_event(now, ev)
        for cb in self.extra_tick:
            cb(now)
        if self.world.ticks % 10 == 0:
            self.panel.update(now, self.panel_status())
        self.tick_work.append(time.perf_counter() - t0)
        del self.tick_work[:-500]

    # ---- a tiny stand-in for call control: answer after N rings, hang up later ---------------------
    def _co_lines(self, now: float) -> None:
        fxo = self.world.board.fxo
        for p, end in enumerate(self.world.co, start=1):
            line = end.line
            if line.state == "idle" and now >= self._next_call[p] and not end.line.box_offhook:
                line.ring(now)
                self._rings[p] = 0
                self._next_call[p] = now + 25 + self.clock.random.uniform(0, 20)
                self._log(now, f"fxo {p}: CO rings")
            answered = self._answered_at.get(p)
            if answered is not None and now - answered >= self.talk_seconds and fxo is not None:
                fxo.port(p).hook(False)
                del self._answered_at[p]
                self._log(now, f"fxo {p}: box hangs up")

    def _fxo_event(self, now: float, ev: object) -> None:
        kind, port, value = ev.kind, ev.port, ev.value  # type: ignore[attr-defined]
        self._log(now, f"fxo {port}: {kind}" + (f" {value}" if kind in ("polarity", "hook") else ""))
        if kind == "ring_start":
            self._rings[port] = self._rings.get(port, 0) + 1
        if kind == "ring_stop" and self._rings.get(port, 0) >= self.answer_after_rings:
            self.world.board.fxo.port(port).hook(True)  # type: ignore[union-attr]
            self._answered_at[port] = now

    def _log(self, now: float, text: str) -> None:
        self.events.append(f"{now - self.world.start:8.2f}  {text}")
        del self.events[:-8]

    # ---- status --------------------------------------------------------------------------------------
    def panel_status(self) -> PanelStatus:
        return status_from_cards(self.world.board.e1, self.world.board.fxo)

    def render(self) -> Group:
        board = self.world.board
        spans = Table(title="E1 spans", expand=False)
        columns = ("span", "state", "alarms", "rx frames", "FAS err", "CRC err", "E-bits", "slips", "D rx/tx")
        for col in columns:
            spans.add_column(col, justify="right" if col not in ("state", "alarms") else "left")
        if board.e1 is not None:
            for span in board.e1.spans:
                st, c = span.status(), span.counters()
                state = Text("in sync", "green") if st.in_sync else Text("no sync", "red")
                spans.add_row(
                    str(span.number),
                    state,
                    " ".join(st.alarms) or "-",
                    str(c.rx_frames),
                    str(c.fas_errors),
                    str(c.crc_errors),
                    str(c.febe),
                    str(c.rx_slips + c.tx_slips),
                    f"{c.hdlc_rx}/{c.hdlc_tx}",
                )
        ports = Table(title="FXO ports")
        for col in ("port", "hook", "ring", "battery", "polarity", "line V", "loop mA", "CO line"):
            ports.add_column(col)
        if board.fxo is not None:
            for port, end in zip(board.fxo.ports, self.world.co, strict=True):
                ps = port.status()
                ports.add_row(
                    str(port.number),
                    Text("off hook", "yellow") if ps.offhook else Text("on hook"),
                    Text("RINGING", "bold magenta") if ps.ringing else Text("-"),
                    Text("present", "green") if ps.battery else Text("LOST", "red"),
                    "reversed" if ps.reversed else "normal",
                    f"{ps.line_volts:6.1f}",
                    str(ps.loop_ma),
                    end.line.state if end.connected else "unplugged",
                )
        work = np.array(self.tick_work or [0.0])
        period = self.world.period
        load = Text(
            f"t = {self.elapsed:7.2f} s   tick load: median {np.median(work) / period:6.1%}  "
            f"max {work.max() / period:6.1%} of {period * 1000:.0f} ms"
        )
        return Group(spans, ports, self._leds(), load, Text("\n".join(self.events), "dim"))

    def _leds(self) -> Text:
        f = self.panel.pins.factory  # type: ignore[attr-defined]

        def dot(pin: int, colour: str) -> Text:
            return Text("●", colour) if f is not None and f.pin(pin).state else Text("○", "dim")

        out = Text("panel: power ") + dot(self.panel.led_pins["power"], "green")
        out += Text("  run ") + dot(self.panel.led_pins["run"], "green")
        out += Text("  alarm ") + dot(self.panel.led_pins["alarm"], "red")
        for i, (r, g) in enumerate(self.panel.span_pins, start=1):
            out += Text(f"  span{i} ") + dot(r, "red") + dot(g, "green")
        for i, pin in enumerate(self.panel.fxo_pins, start=1):
            out += Text(f"  fxo{i} ") + dot(pin, "yellow")
        return out

    def close(self) -> None:
        self.panel.close()
        self.world.close()


def build_demo(board: str, data: str | Path, clock: Clock) -> Demo:
    desc = load_board(board)
    world = World(desc, default_rundir(data), clock=clock)
    panel = Panel(desc, GpiozeroPins(mock=True))
    return Demo(world=world, panel=panel, clock=clock)


def run_demo(demo: Demo, clock: RealClock, seconds: float | None, plain: bool = False) -> int:
    """Real time: one tick per 10 ms of the clock until `seconds` or Ctrl-C."""
    start = clock.now()
    deadline = start
    period = demo.world.period
    next_view = start

    def loop(show: Callable[[], None]) -> None:
        nonlocal deadline, next_view
        while seconds is None or clock.now() - start < seconds:
            clock.sleep_until(deadline)
            demo.tick()
            deadline += period
            if clock.now() - deadline > 5 * period:
                deadline = clock.now()  # the host stalled: resynchronise
            if clock.now() >= next_view:
                show()
                next_view += 1.0 if plain else 0.25

    try:
        if plain:
            loop(lambda: print(_plain_line(demo), flush=True))
        else:
            with Live(demo.render(), refresh_per_second=4, screen=False) as live:
                loop(lambda: live.update(demo.render()))
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0


def _plain_line(demo: Demo) -> str:
    board = demo.world.board
    spans = " ".join(
        f"span{s.number}:{'sync' if (st := s.status()).in_sync else ','.join(st.alarms)}"
        for s in (board.e1.spans if board.e1 else [])
    )
    ports = " ".join(
        f"fxo{p.number}:{'off' if (ps := p.status()).offhook else 'RING' if ps.ringing else 'on'}"
        for p in (board.fxo.ports if board.fxo else [])
    )
    return f"t={demo.elapsed:7.2f} {spans} {ports}"


def run(args: argparse.Namespace) -> int:
    clock = RealClock(seed=args.seed)
    demo = build_demo(args.board, args.data, clock)
    return run_demo(demo, clock, args.seconds, plain=args.plain)
