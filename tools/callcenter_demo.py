"""`callbox demo`: the box's main job on the simulated board, with the telephone network and agents around it.

Two processes, as in the field (the default):
- this process runs the appliance as `callbox run --board sim` does (the simulated board with its line
  sockets in DATA/run, PRI signalling on each span, the FXO lines, the media engine on its own thread, call
  control, the bilingual IVR, the ACD on the dialplan's queues, CDRs and the queue log in DATA), its SIP
  side on a free UDP/TCP port with the configuration's extensions, and the live view;
- a child process runs `callbox agents` (tools.sipagents): the queues' agents on SIP phones (real user
  agents over UDP, digest, RTP) registering, logging in by *41, answering after a few seconds, talking and
  now and then taking a break with a reason code (*43<code> / *44); its log in DATA/agents.log;
- a child process runs `callbox pstn --data DATA`: the telephone network on the other side of the sockets
  (PRI network side on every span, CO lines with ring, caller ID and polarity), callers arriving as a
  Poisson process on the spans and on the CO lines, who hear the IVR, press a menu key as in-band DTMF,
  wait in the queue, give up or talk (speech-like audio through a G.168 hybrid, so the echo canceller
  works). Its status lines come back as JSON for the view.

`--inprocess` (implied by `--speed` other than 1) runs the same world in this one process on a virtual
clock (`CallCenterDemo`: the board and the exchanges stepped tick by tick), which is what tests use.

The live view shows the spans, FXO ports and front panel, then callers, calls, queues (waiting, longest
wait, service level), agents and the media tick. Ctrl-C stops cleanly: the callers hang up, the box ends
what is left, and every call leaves its CDR; DATA keeps the CDRs, queue log and recordings (`callbox report
queues --data DATA`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import time as dtime
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.text import Text

from board.clock import Clock, RealClock, VirtualClock
from board.description import load_board
from board.panel import GpiozeroPins, Panel
from board.sim.board import default_rundir
from firmware.calls.appliance import Appliance
from firmware.calls.dialplan import Calendar
from firmware.calls.loopback import PhoneBehaviour
from tools.callcenter_view import plain_callcenter, render_callcenter
from tools.callers import CallerProfile, SimulatedCallers
from tools.demo import Demo
from tools.linesim.world import World
from tools.pstn import Pstn, load_hybrids
from tools.sipagents import AgentsProcess, open_demo_sip

REPO = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=None, help="stop after N seconds of the world")
    parser.add_argument(
        "--data", default="./data", help="data directory (CDRs, queue log, sockets in DATA/run)"
    )
    parser.add_argument("--config", default=None, help="configuration directory (dialplan.yaml, flows/)")
    parser.add_argument("--board", default="sim-2e1-4fxo", help="board description (name or YAML path)")
    parser.add_argument("--rate", type=float, default=600.0, help="PRI callers per hour (Poisson)")
    parser.add_argument("--fxo-rate", type=float, default=60.0, help="FXO callers per hour (Poisson)")
    parser.add_argument("--speed", type=float, default=1.0, help="world seconds per real second (in-process)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice in the world")
    parser.add_argument("--plain", action="store_true", help="print a status line every few seconds")
    parser.add_argument(
        "--hours", choices=("open", "calendar"), default="open",
        help="open: the office calendars are open all day every day, so the queues are busy whenever the "
        "demo runs (default); calendar: follow the dialplan's office hours and holidays (after hours the IVR "
        "plays its closed flow)",
    )  # fmt: skip
    parser.add_argument(
        "--inprocess", action="store_true",
        help="the network in this process on a virtual clock (default: `callbox pstn` as its own process)",
    )  # fmt: skip


def open_around_the_clock(app: Appliance) -> None:
    """Make every calendar of the box's dialplan open all day, every day, with no holidays (demo only)."""
    plan = app.mgr.plan
    for name in plan.calendars:
        plan.calendars[name] = Calendar(hours=[(set(range(7)), dtime.min, dtime.max)], holidays=[])


def _talking_to_agent(app: Appliance, leg: object) -> bool:
    """In-process only: does the box have this caller bridged to an agent right now?"""
    caller = getattr(leg, "caller", None)
    return any(
        call.cdr.src == caller and call.b is not None and call.state == "up"
        for call in app.mgr.calls.values()
    )


class _Agents:
    """The agents on in-process phones, taking coded breaks now and then."""

    def __init__(self, app: Appliance, clock: Clock, rng: random.Random) -> None:
        self.app = app
        self.clock = clock
        self.random = rng
        director = app.mgr.acd
        self.names = sorted(director.acd.agents) if director is not None else []
        for agent in self.names:
            app.extensions.add_phone(agent, PhoneBehaviour(answer_after=rng.uniform(1.5, 4.0)))
        clock.call_later(30.0, self._breaks)

    def _breaks(self) -> None:
        director = self.app.mgr.acd
        if director is not None and self.names:
            agent = self.random.choice(self.names)
            if director.acd.agents[agent].paused:
                director.feature(agent, "unpause", "")
            else:
                director.feature(agent, "pause", str(self.random.randint(1, 3)))
        self.clock.call_later(self.random.uniform(20.0, 60.0), self._breaks)


def _end_all_calls(app: Appliance) -> None:
    for call in list(app.mgr.calls.values()):  # clean stop: every call gets its CDR and log lines
        app.mgr.end_call(call)


class CallCenterDemo:
    """Everything in this process on one virtual clock: the board stepped tick by tick, the exchanges of
    `tools.pstn` on its far ends (PRI spans and CO lines), the appliance, callers and agents."""

    def __init__(
        self,
        board: str,
        data: str | Path,
        config: str | Path | None,
        rate: float,
        seed: int,
        prompt_dirs: list[str | Path] | None = None,
        fxo_rate: float = 60.0,
        start: float | None = None,
    ) -> None:
        """start: the world's epoch (default now; tests pin it, since the IVR follows office hours)."""
        self.clock = VirtualClock(start=time.time() if start is None else start, seed=seed)
        desc = load_board(board)
        data = Path(data)
        self.world = World(desc, default_rundir(data), clock=self.clock)
        self.panel = Panel(desc, GpiozeroPins(mock=True))
        self.app = Appliance(
            self.world.board, data, config, clock=self.clock, extension_rows=16, prompt_dirs=prompt_dirs
        )
        self.pstn, fxo_lines = Pstn.on_world(self.world, load_hybrids(), seed)
        self.exchanges = self.pstn.exchanges
        self.world.on_tick.append(self.app.on_tick)
        self.world.attach()
        self.board_view = Demo(world=self.world, panel=self.panel, clock=self.clock)  # its rendering only
        self.random = random.Random(seed)
        self.agents = _Agents(self.app, self.clock, self.random)

        def connected(leg: object) -> bool:
            return _talking_to_agent(self.app, leg)

        self.callers = SimulatedCallers(
            self.clock, self.pstn, connected, CallerProfile(calls_per_hour=rate), seed=seed
        )
        self.fxo_callers = SimulatedCallers(
            self.clock, fxo_lines, connected, CallerProfile(calls_per_hour=fxo_rate, dnis=""), seed=seed + 1
        )
        self.since = self.clock.now()
        self.clock.call_later(3.0, self.callers.start)  # once the D-channels are up
        self.clock.call_later(1.0, self.fxo_callers.start)

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

    def callers_line(self) -> str:
        pri, fxo = self.callers.stats, self.fxo_callers.stats
        return (
            f"callers: PRI {pri.offered} offered, {pri.talked} reached an agent, {pri.abandoned} gave up, "
            f"{pri.no_line} found no free line; FXO {fxo.offered} offered, {fxo.talked} reached an agent, "
            f"{fxo.abandoned} gave up, {fxo.no_line} found no free line"
        )

    def render(self) -> Group:
        board = self.board_view.render()
        return Group(
            board,
            Text(self.callers_line()),
            render_callcenter(self.app.mgr, self.app.mgr.acd.acd, self.since),
        )

    def plain(self) -> str:
        pri, fxo = self.callers.stats, self.fxo_callers.stats
        elapsed = self.clock.now() - self.since
        head = f"t={elapsed:7.1f}s callers {pri.offered}/{pri.talked}/{pri.abandoned} fxo {fxo.offered}"
        return f"{head} | {plain_callcenter(self.app.mgr, self.app.mgr.acd.acd, self.since)}"

    def close(self) -> None:
        self.callers.stop()
        self.fxo_callers.stop()
        _end_all_calls(self.app)
        self.app.close()
        self.panel.close()
        self.world.close()


class _RemoteLine:
    """A CO line whose far end is in the pstn process: the view shows whether it is plugged in."""

    def __init__(self, board: Any, port: int) -> None:
        self.board = board
        self.port = port
        self.line = self
        self.state = "pstn"

    @property
    def connected(self) -> bool:
        return bool(self.board.connected("fxo", self.port))


class _BoardOnly:
    """What `tools.demo.Demo`'s rendering needs of a World, for a board whose far ends are another process."""

    def __init__(self, board: Any, clock: Clock) -> None:
        self.board = board
        self.e1: list[Any] = []
        self.co = [_RemoteLine(board, p) for p in range(1, board.desc.port_count + 1)]
        self.clock = clock
        self.start = clock.now()
        self.period = 0.01

    @property
    def ticks(self) -> int:
        return int((self.clock.now() - self.start) / self.period)

    def tick_time(self, k: int) -> float:
        return self.start + k * self.period

    def close(self) -> None:
        return None


class TwoProcessDemo:
    """The appliance in real time in this process, the network as a `callbox pstn` child process."""

    def __init__(
        self,
        board: str,
        data: str | Path,
        config: str | Path | None,
        rate: float,
        fxo_rate: float,
        seed: int,
        prompt_dirs: list[str | Path] | None = None,
        pstn_args: list[str] | None = None,
    ) -> None:
        from board.hardware import open_board

        self.data = Path(data)
        self.clock = RealClock(seed=seed)
        desc = load_board(board)
        self.board = open_board(desc, default_rundir(self.data), tick_frames=80)
        # the agents' side is SIP, as on the box: extensions register over UDP (tools.sipagents)
        self.sip = open_demo_sip(config, self.clock)
        self.app = Appliance(self.board, self.data, config, clock=self.clock, realtime=True,
                             extension_rows=16, prompt_dirs=prompt_dirs, extension_port=self.sip.media_port,
                             make_extension_lines=self.sip.extension_lines)  # fmt: skip
        self.app.pollers.append(self.sip.poll)
        self.panel = Panel(desc, GpiozeroPins(mock=True))
        self.board_view = Demo(world=_BoardOnly(self.board, self.clock), panel=self.panel, clock=self.clock)  # type: ignore[arg-type]
        self.random = random.Random(seed)
        director = self.app.mgr.acd
        names = sorted(director.acd.agents) if director is not None else []
        self.agents = AgentsProcess("127.0.0.1", self.sip.port, names, self.data, seed)
        self.since = self.clock.now() + self.app.mgr.epoch_offset
        self.pstn_status: dict[str, Any] = {}
        self.view: Group | None = None
        self.plain_text = ""
        spans = len(desc.spans)
        cmd = [sys.executable, "-m", "tools.cli", "pstn", "--data", str(self.data), "--rate", str(rate),
               "--fxo-rate", str(fxo_rate), "--seed", str(seed), "--spans", str(spans),
               "--fxo", str(desc.port_count), "--json", "--status", "1", *(pstn_args or [])]  # fmt: skip
        self.pstn_cmd = cmd
        self.pstn: subprocess.Popen[str] | None = None
        self._log = open(self.data / "pstn.log", "a")  # noqa: SIM115 - open for the child's lifetime
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self.app.start()
        self.agents.start()  # agents on SIP phones: register, log in (*41), answer, breaks (*43/*44)
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.pstn = subprocess.Popen(self.pstn_cmd, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                     cwd=REPO, env=env)  # fmt: skip
        self._reader = threading.Thread(target=self._read_pstn, name="pstn-status", daemon=True)
        self._reader.start()
        self.clock.call_later(0.0, self._refresh)

    def _read_pstn(self) -> None:
        assert self.pstn is not None and self.pstn.stdout is not None
        for line in self.pstn.stdout:
            try:
                self.pstn_status = json.loads(line)
            except ValueError:
                self._log.write(line)

    def _refresh(self) -> None:
        """On the control thread (call control is touched from there only): build the view's contents."""
        try:
            with self.app.lock:
                self.panel.update(self.clock.now(), self.board_view.panel_status())
                tick = self.app.engine.stats.summary()
                self.board_view.tick_work[:] = [tick.get("median_ms", 0.0) / 1000.0]
                self.view = Group(
                    self.board_view.render(),
                    Text(self.callers_line()),
                    render_callcenter(self.app.mgr, self.app.mgr.acd.acd, self.since),
                )
                elapsed = self.clock.now() + self.app.mgr.epoch_offset - self.since
                box = plain_callcenter(self.app.mgr, self.app.mgr.acd.acd, self.since)
                self.plain_text = f"t={elapsed:7.1f}s {self.callers_line()} | {box}"
        finally:
            self.clock.call_later(0.25, self._refresh)

    def callers_line(self) -> str:
        st = self.pstn_status
        if not st:
            return "callers: waiting for the pstn process"
        pri, fxo = st["pri_callers"], st["fxo_callers"]
        return (
            f"callers (pstn process): PRI {pri['offered']} offered, {pri['talked']} heard an agent, "
            f"{pri['abandoned']} gave up, {pri['no_line']} found no free line; FXO {fxo['offered']} offered, "
            f"{fxo['talked']} heard an agent, {fxo['abandoned']} gave up; {st['active']} on the lines now"
        )

    def stop(self) -> None:
        """Callers hang up first (the box logs those calls as theirs), then the box ends what is left."""
        if self.pstn is not None and self.pstn.poll() is None:
            self.pstn.send_signal(signal.SIGINT)
            try:
                self.pstn.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.pstn.kill()
                self.pstn.wait()
        time.sleep(0.3)  # the box takes the last DISCONNECTs and clears
        self.agents.stop()
        self.app.stop()  # control and tick threads stopped: this thread may end the calls
        _end_all_calls(self.app)
        self.app.close()
        self.sip.close()
        self.panel.close()
        self.board.close()
        self._log.close()


def _run_inprocess(args: argparse.Namespace) -> int:
    demo = CallCenterDemo(args.board, args.data, args.config, args.rate, args.seed, fxo_rate=args.fxo_rate)
    if args.hours == "open":
        open_around_the_clock(demo.app)
    wall_start = time.monotonic()
    world_start = demo.clock.now()
    next_view = 0.0
    view = None
    try:
        if not args.plain:
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
        if view is not None:
            view.stop()
        print(demo.plain())
        demo.close()
        print(f"data kept in {args.data}: callbox report queues --data {args.data} --from 0")
    return 0


def _run_two_processes(args: argparse.Namespace) -> int:
    demo = TwoProcessDemo(args.board, args.data, args.config, args.rate, args.fxo_rate, args.seed)
    if args.hours == "open":
        open_around_the_clock(demo.app)
    started = time.monotonic()
    view = None
    try:
        demo.start()
        if not args.plain:
            view = Live(Text("starting..."), refresh_per_second=4, screen=False)
            view.start()
        next_plain = time.monotonic() + 5.0
        while args.seconds is None or time.monotonic() - started < args.seconds:
            time.sleep(0.25)
            if view is not None and demo.view is not None:
                view.update(demo.view)
            elif view is None and time.monotonic() >= next_plain:
                print(demo.plain_text, flush=True)
                next_plain += 5.0
            if demo.pstn is not None and demo.pstn.poll() is not None:
                print(f"the pstn process stopped (exit {demo.pstn.returncode}); see {args.data}/pstn.log")
                break
    except KeyboardInterrupt:
        pass
    finally:
        if view is not None:
            view.stop()
        print(demo.plain_text)
        try:
            demo.stop()
        except KeyboardInterrupt:  # a second Ctrl-C: stop anyway, the CDRs written so far are kept
            demo.app.stop()
        print(f"data kept in {args.data}: callbox report queues --data {args.data} --from 0")
    return 0


def run(args: argparse.Namespace) -> int:
    print("callbox demo: starting the box on the simulated board (first start builds the voice prompts)...")
    if args.inprocess or args.speed != 1.0:
        return _run_inprocess(args)
    return _run_two_processes(args)
