"""`callbox demo`: the box's main job on the simulated board, with the telephone network and agents around it.

What runs, all in this process on one clock:
- the simulated board (E1 spans and FXO ports as register-level card models, their line sockets in
  DATA/run) with the appliance on it: PRI signalling on each span, the media engine on the TDM rows,
  call control, the bilingual IVR, the ACD on the dialplan's queues, CDRs and the queue log in DATA;
- the telephone exchange on the far side of every E1 span (PRI network side over the span's far-end
  framer), with simulated callers arriving as a Poisson process: they hear the IVR, press a menu key as
  in-band DTMF, wait in the queue, give up or talk to an agent;
- agents on in-process phones (the SIP extensions' rows), answering after a few seconds and now and then
  taking a break (feature codes *43 / *44).

The live view shows the spans, FXO ports and front panel, then calls, queues (waiting, longest wait,
service level), agents and the media tick. Ctrl-C stops cleanly; DATA keeps the CDRs, queue log and
recordings (`callbox report queues --data DATA`). `--speed N` runs the world N times faster than real
time when the machine keeps up.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from rich.console import Group
from rich.live import Live
from rich.text import Text

from board.clock import VirtualClock
from board.description import load_board
from board.panel import GpiozeroPins, Panel
from board.sim.board import default_rundir
from firmware.calls.appliance import Appliance
from firmware.calls.loopback import PhoneBehaviour
from tools.callcenter_view import plain_callcenter, render_callcenter
from tools.callers import CallerProfile, SimulatedCallers
from tools.demo import Demo
from tools.linesim.world import World
from tools.pstn import PriExchange, Pstn


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=None, help="stop after N seconds of the world")
    parser.add_argument(
        "--data", default="./data", help="data directory (CDRs, queue log, sockets in DATA/run)"
    )
    parser.add_argument("--config", default=None, help="configuration directory (dialplan.yaml, flows/)")
    parser.add_argument("--board", default="sim-2e1-4fxo", help="board description (name or YAML path)")
    parser.add_argument("--rate", type=float, default=600.0, help="callers per hour (Poisson)")
    parser.add_argument("--speed", type=float, default=1.0, help="world seconds per real second")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice in the world")
    parser.add_argument("--plain", action="store_true", help="print a status line every few seconds")


class CallCenterDemo:
    def __init__(
        self,
        board: str,
        data: str | Path,
        config: str | Path | None,
        rate: float,
        seed: int,
        prompt_dirs: list[str | Path] | None = None,
    ) -> None:
        self.clock = VirtualClock(start=time.time(), seed=seed)
        desc = load_board(board)
        data = Path(data)
        self.world = World(desc, default_rundir(data), clock=self.clock)
        self.panel = Panel(desc, GpiozeroPins(mock=True))
        self.app = Appliance(
            self.world.board, data, config, clock=self.clock, extension_rows=16, prompt_dirs=prompt_dirs
        )
        self.exchanges = [PriExchange(self.world, i) for i in range(len(self.world.e1))]
        for exchange in self.exchanges:
            self.world.on_tick.append(exchange.tick)
        self.world.on_tick.append(self.app.on_tick)
        self.world.attach()
        self.board_view = Demo(world=self.world, panel=self.panel, clock=self.clock)  # its rendering only
        self.random = random.Random(seed)
        director = self.app.mgr.acd
        self.agents = sorted(director.acd.agents) if director is not None else []
        for agent in self.agents:
            self.app.extensions.add_phone(agent, PhoneBehaviour(answer_after=self.random.uniform(1.5, 4.0)))
        self.callers = SimulatedCallers(
            self.clock,
            Pstn(self.exchanges),
            self._talking_to_agent,
            CallerProfile(calls_per_hour=rate),
            seed=seed,
        )
        self.since = self.clock.now()
        self.clock.call_later(3.0, self.callers.start)  # once the D-channels are up
        self.clock.call_later(30.0, self._agent_breaks)

    def _talking_to_agent(self, leg: object) -> bool:
        """Stands in for the caller hearing a person: is their call bridged to an agent right now?"""
        caller = getattr(leg, "caller", None)
        return any(
            call.cdr.src == caller and call.b is not None and call.state == "up"
            for call in self.app.mgr.calls.values()
        )

    def _agent_breaks(self) -> None:
        director = self.app.mgr.acd
        if director is not None and self.agents:
            agent = self.random.choice(self.agents)
            if director.acd.agents[agent].paused:
                director.feature(agent, "unpause", "")
            else:
                director.feature(agent, "pause", str(self.random.randint(1, 3)))
        self.clock.call_later(self.random.uniform(20.0, 60.0), self._agent_breaks)

    def step(self) -> float:
        """One tick of the world; returns the work time it took."""
        start = time.perf_counter()
        self.clock.advance(self.world.period)
        if self.world.ticks % 10 == 0:
            self.panel.update(self.clock.now(), self.board_view.panel_status())
        work = time.perf_counter() - start
        self.board_view.tick_work.append(work)
        del self.board_view.tick_work[:-500]
        return work

    def render(self) -> Group:
        stats = self.callers.stats
        callers = Text(
            f"callers: {stats.offered} offered, {stats.talked} reached an agent, {stats.abandoned} gave up, "
            f"{stats.no_line} found no free line; {sum(e.placed for e in self.exchanges)} PRI calls placed"
        )
        board = self.board_view.render()
        return Group(board, callers, render_callcenter(self.app.mgr, self.app.mgr.acd.acd, self.since))

    def plain(self) -> str:
        stats = self.callers.stats
        elapsed = self.clock.now() - self.since
        head = f"t={elapsed:7.1f}s callers {stats.offered}/{stats.talked}/{stats.abandoned}"
        return f"{head} | {plain_callcenter(self.app.mgr, self.app.mgr.acd.acd, self.since)}"

    def close(self) -> None:
        self.callers.stop()
        for call in list(self.app.mgr.calls.values()):  # clean stop: every call gets its CDR and log lines
            self.app.mgr.end_call(call)
        self.app.close()
        self.panel.close()
        self.world.close()


def run(args: argparse.Namespace) -> int:
    print("callbox demo: starting the box on the simulated board (first start builds the voice prompts)...")
    demo = CallCenterDemo(args.board, args.data, args.config, args.rate, args.seed)
    wall_start = time.monotonic()
    world_start = demo.clock.now()
    next_view = 0.0
    try:
        if args.plain:
            view = None
        else:
            view = Live(demo.render(), refresh_per_second=4, screen=False)
            view.start()
        while args.seconds is None or demo.clock.now() - world_start < args.seconds:
            demo.step()
            elapsed_world = demo.clock.now() - world_start
            delay = wall_start + elapsed_world / args.speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() >= next_view:
                if view is not None:
                    view.update(demo.render())
                    next_view = time.monotonic() + 0.25
                else:
                    print(demo.plain(), flush=True)
                    next_view = time.monotonic() + 5.0
    except KeyboardInterrupt:
        pass
    finally:
        if not args.plain and view is not None:
            view.stop()
        print(demo.plain())
        demo.close()
        print(f"data kept in {args.data}: callbox report queues --data {args.data} --from 0")
    return 0
