"""SIP signalling benchmark (`callbox bench sip`, or `python -m tools.bench.sip`).

SIPp (Debian sip-tester) is the load, on loopback; the box's SIP service runs in this process on one
asyncio loop (one core). Measured, each bounded in count and time:

- registrations/s: REGISTER with digest (401 challenge, REGISTER with credentials, 200);
- call setups/s, signalling only: INVITE, 401, ACK, INVITE with credentials, 100, 180, 200, ACK, BYE, 200,
  answered at once by a test-double call control (no media pumped; each call still gets its RTP socket);
- the same without digest on INVITE, and the reference: SIPp's own UAS answering the same SIPp load
  (ratio box / SIPp-UAS, measured in this run on this machine).

- RTP media of `--rtp-legs` concurrent calls through the MediaHub (jitter buffers, PLC, G.711, packets
  in and out, RTCP), in process, plus the loopback UDP send/receive of the same packets: the share of one
  core it takes per second of audio (the engine's tick budget is 100%).

Rates are successful transactions (SIPp's SuccessfulCall count) over SIPp's wall time; "per CPU-second"
divides by the CPU time this process used, which is steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import os
import shutil
import socket
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from board.clock import RealClock
from firmware.calls.endpoint import Cause, Endpoint
from firmware.sip.core import CoreConfig
from firmware.sip.extensions import Directory
from firmware.sip.service import SipService

SCENARIOS = Path(__file__).resolve().parents[2] / "tests" / "sip" / "scenarios"
SCENARIOS_BENCH = Path(__file__).resolve().parent / "scenarios"
TARGET_CALLS_PER_S = 200.0


@dataclass
class Result:
    name: str
    ok: int
    failed: int
    wall: float
    cpu: float | None

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    def line(self) -> str:
        cpu = f"{self.ok / self.cpu:8.0f}/CPU-s" if self.cpu else "           -"
        counts = f"{self.ok:6d} ok {self.failed:4d} failed {self.wall:6.2f} s"
        return f"{self.name:<34} {counts} {self.rate:8.1f}/s {cpu}"


class _Answerer:
    """Answers every call to 5000 at once; the load's BYE clears it."""

    def incoming(self, ep: Endpoint, caller: str, called: str, caller_name: str | None = None) -> None:
        if called == "5000":
            ep.answer()
        else:
            ep.hangup(Cause.UNALLOCATED)

    def ringing(self, ep: Endpoint) -> None:
        pass

    def answered(self, ep: Endpoint) -> None:
        pass

    def hangup(self, ep: Endpoint, cause: int) -> None:
        pass

    def dtmf(self, ep: Endpoint, digit: str) -> None:
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sipp_stats(path: Path) -> tuple[int, int]:
    with path.open() as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return 0, 0
    head, last = rows[0], rows[-1]
    return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])


async def _load(
    target: str, scenario: list[str], count: int, rate: float, limit: int, seconds: float
) -> tuple[int, int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.csv"
        cmd = [
            "sipp",
            target,
            *scenario,
            "-i",
            "127.0.0.1",
            "-p",
            str(_free_port()),
            "-mp",
            str(_free_port()),
            "-m",
            str(count),
            "-r",
            str(rate),
            "-l",
            str(limit),
            "-nostdin",
            "-timeout",
            f"{int(seconds)}s",
            "-trace_stat",
            "-stf",
            str(stats),
            "-fd",
            "1",
            "-recv_timeout",
            "5000",
        ]
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=tmp
        )
        await asyncio.wait_for(proc.wait(), seconds + 15)
        wall = time.perf_counter() - t0
        ok, failed = _sipp_stats(stats) if stats.exists() else (0, count)
        return ok, failed, wall


async def _against_box(
    name: str, scenario: list[str], args: argparse.Namespace, count: int, auth: bool
) -> Result:
    directory = Directory.with_passwords("callbox", {"1001": "pw1001"}, digest_algorithms=("MD5", "SHA-256"))
    cfg = CoreConfig(qualify_interval=0, authenticate_invites=auth, max_calls=100000)
    svc = SipService(
        directory,
        RealClock(),
        "127.0.0.1",
        0,
        max_legs=args.max_legs,
        control=_Answerer(),
        config=cfg,
        rate=1e9,
        burst=1e9,
    )
    await svc.start()
    try:
        cpu0 = time.process_time()
        ok, failed, wall = await _load(
            f"127.0.0.1:{svc.port}", scenario, count, args.rate, args.limit, args.seconds
        )
        cpu = time.process_time() - cpu0
    finally:
        await svc.stop()
    return Result(name, ok, failed, wall, cpu)


async def _reference(args: argparse.Namespace) -> Result:
    port = _free_port()
    uas = await asyncio.create_subprocess_exec(
        "sipp",
        "-sn",
        "uas",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mp",
        str(_free_port()),
        "-nostdin",
        "-timeout",
        f"{int(args.seconds) + 5}s",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.3)
    try:
        ok, failed, wall = await _load(
            f"127.0.0.1:{port}",
            ["-sf", str(SCENARIOS / "bench_call_noauth.xml"), "-s", "5000", "-set", "ext", "1001"],
            args.calls,
            args.rate,
            args.limit,
            args.seconds,
        )
    finally:
        if uas.returncode is None:
            uas.kill()
        await uas.wait()
    return Result("reference: SIPp UAS, no auth", ok, failed, wall, None)


async def _main(args: argparse.Namespace) -> int:
    ok = True
    if not args.rtp_only:
        ok = await _signalling(args)
    if args.rtp_calls:
        for echo in (True, False) if not args.echo_only else (True,):
            ok = await _engine_rtp(args, echo) and ok
    return 0 if ok else 1


async def _signalling(args: argparse.Namespace) -> bool:
    auth = ["-au", "1001", "-ap", "pw1001"]
    results = [
        await _against_box(
            "registrations (digest)",
            ["-sf", str(SCENARIOS / "register.xml"), "-s", "1001", *auth],
            args,
            args.registrations,
            True,
        ),
        await _against_box(
            "call setups (digest on INVITE)",
            ["-sf", str(SCENARIOS / "bench_call.xml"), "-s", "5000", "-set", "ext", "1001", *auth],
            args,
            args.calls,
            True,
        ),
        await _against_box(
            "call setups (no digest)",
            ["-sf", str(SCENARIOS / "bench_call_noauth.xml"), "-s", "5000", "-set", "ext", "1001"],
            args,
            args.calls,
            False,
        ),
        await _reference(args),
    ]
    print(f"SIP signalling on loopback, SIPp load at {args.rate:.0f}/s offered, {os.cpu_count()} CPUs shared")
    for r in results:
        print(r.line())
    calls, noauth, ref = results[1], results[2], results[3]
    if ref.rate:
        print(f"ratio box/SIPp-UAS (no auth, same load):  {noauth.rate / ref.rate:5.2f}")
    cap = calls.ok / calls.cpu if calls.cpu else 0.0
    load = os.getloadavg()[0]
    wall_verdict = "meets" if calls.rate >= TARGET_CALLS_PER_S else "BELOW"
    cpu_verdict = "meets" if cap >= TARGET_CALLS_PER_S else "BELOW"
    target = f"{TARGET_CALLS_PER_S:.0f}/s"
    print(
        f"call setups/s with digest: {calls.rate:.1f} wall ({wall_verdict} {target}; load average {load:.1f} "
        f"on {os.cpu_count()} CPUs), {cap:.0f} per CPU-second of one core ({cpu_verdict} {target})"
    )
    hub_load, sock_load, pps = _media_load(args.rtp_legs, 5.0)
    print(
        f"RTP media, {args.rtp_legs} calls ({pps} packets/s out, as many in): MediaHub {100 * hub_load:.1f}% "
        f"+ UDP syscalls {100 * sock_load:.1f}% of one core = {100 * (hub_load + sock_load):.1f}%"
    )
    return all(r.ok for r in results)


def _media_load(legs: int, seconds: float) -> tuple[float, float, int]:
    """CPU share of one core for `legs` calls' media: (hub, sockets, packets per second)."""
    import numpy as np

    from dsp import g711
    from firmware.sip.rtp import TICK, LegConfig, MediaHub, build_rtp

    hub = MediaHub(legs)
    for leg in range(legs):
        hub.open(LegConfig(("127.0.0.1", 9000 + 2 * leg)), 0.0)
    t = np.arange(160)
    payload = g711.alaw_encode((6000 * np.sin(2 * np.pi * 1000 * t / 8000)).astype(np.int16)).tobytes()
    tx = np.zeros((legs, TICK), np.int16)
    ticks = int(seconds * 100)
    sent = 0
    cpu0 = time.process_time()
    for n in range(ticks):
        now = n * 0.01
        if n % 2 == 0:
            k = n // 2
            for leg in range(legs):
                hub.receive(leg, build_rtp(8, k, k * 160, 1000 + leg, payload), now)
        hub.pull(now)
        sent += len(hub.push_tx(tx, now))
    hub_cpu = time.process_time() - cpu0
    # the same number of datagrams through loopback sockets, both ways
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    b.setblocking(False)
    dest = b.getsockname()
    packet = build_rtp(8, 1, 160, 1, payload)
    count = legs * ticks // 2
    cpu0 = time.process_time()
    for i in range(count):
        a.sendto(packet, dest)
        if i % 32 == 31:
            try:
                while True:
                    b.recvfrom(2048)
            except BlockingIOError:
                pass
    sock_cpu = (time.process_time() - cpu0) * 2  # as many received as sent
    a.close()
    b.close()
    return hub_cpu / seconds, sock_cpu / seconds, int(sent / seconds)


PLAY = """  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>
  <pause milliseconds="8000"/>
"""


class _Bridger:
    """Call control for the RTP run: answers each SIP call and bridges its row to the next free trunk
    channel (an E1 B-channel row of the simulated board), echo canceller on that trunk row as the box runs
    it; the load's BYE unbridges."""

    def __init__(self, engine: Any, trunk_rows: list[int], echo: bool) -> None:
        self.engine = engine
        self.free = deque(trunk_rows)
        self.echo = echo
        self.rows: dict[str, int] = {}
        self.answered = 0
        self.refused = 0

    def incoming(self, ep: Endpoint, caller: str, called: str, caller_name: str | None = None) -> None:
        if not self.free:
            self.refused += 1
            ep.hangup(Cause.NO_CIRCUIT)
            return
        row = self.free.popleft()
        self.rows[ep.name] = row
        ep.answer()
        self.engine.bridge(row, ep.channel)
        if self.echo:
            self.engine.enable_echo(row, True)
        self.answered += 1

    def ringing(self, ep: Endpoint) -> None:
        pass

    def answered(self, ep: Endpoint) -> None:
        pass

    def hangup(self, ep: Endpoint, cause: int) -> None:
        row = self.rows.pop(ep.name, None)
        if row is not None:
            self.engine.unbridge(row, ep.channel)
            if self.echo:
                self.engine.enable_echo(row, False)
            self.free.append(row)

    def dtmf(self, ep: Endpoint, digit: str) -> None:
        pass

    @property
    def active(self) -> int:
        return len(self.rows)


class _WorldPort:
    """The simulated 8-E1 board as the engine's port, far ends on every span sending speech-like A-law.

    read() gathers the frames the last step brought; `step()` is the world beyond the DMA rings (far ends
    send, board steps: line sockets, C card models, drivers; far ends receive). It runs after each tick
    outside the tick's measured work when the engine offers `after_tick`, else inside read()."""

    def __init__(self, world: Any, inline: bool) -> None:
        import numpy as np

        from dsp.g168 import css
        from dsp.g711 import alaw_encode

        self.world = world
        self.tdm = world.board.tdm
        self.channels = self.tdm.channels
        self.inline = inline
        speech = alaw_encode(css(10.0, -18.0, seed=5))
        self._speech = speech
        self._pos = 0
        self._rows = np.arange(32)
        self._np = np

    def step(self) -> None:
        n = self.world.n
        np = self._np
        idx = (self._pos + 997 * self._rows[:, None] + np.arange(n)[None, :]) % len(self._speech)
        block = self._speech[idx]
        self._pos += n
        for end in self.world.e1:
            end.ex.set_voice(block)
        self.world.tick()

    def read(self, n: int) -> Any:
        if self.inline:
            self.step()
        return self.tdm.read(n)

    def write(self, codes: Any) -> None:
        self.tdm.write(codes)


async def _engine_rtp(args: argparse.Namespace, echo: bool) -> bool:
    """`args.rtp_calls` SIPp calls with RTP (g711a.pcap) bridged through the media engine to B-channels
    of the simulated 8-E1 board: the engine's tick figures and the CPU share while they all run."""
    import inspect

    from board.description import load_board
    from firmware.engine import MediaEngine
    from firmware.engine.ports import StackedPort
    from tools.linesim.world import World

    clock = RealClock()
    with tempfile.TemporaryDirectory() as tmp:
        world = World(load_board("sim-8e1-8fxo"), Path(tmp) / "run", clock=clock)
        after_tick = "after_tick" in inspect.signature(MediaEngine.start_thread).parameters
        board_port = _WorldPort(world, inline=not after_tick)
        spans = [s.span for s in world.board.desc.spans]
        trunk_rows = [world.board.tdm.channel(span=s, chan=c) for s in spans for c in range(1, 31)]
        trunk_rows = [r for r in trunk_rows if r is not None][: args.rtp_calls]
        cfg = CoreConfig(qualify_interval=0, authenticate_invites=False, max_calls=100000)
        directory = Directory.with_passwords("callbox", {"1001": "pw1001"})
        svc = SipService(directory, clock, "127.0.0.1", 0, max_legs=args.rtp_calls + 16, config=cfg,
                         channel_base=board_port.channels, rate=1e9, burst=1e9)  # fmt: skip
        port = StackedPort([board_port, svc.media_port])
        engine = MediaEngine(port, tick_ms=10, trunk_channels=range(board_port.channels), echo=echo)
        bridger = _Bridger(engine, trunk_rows, echo)
        svc.line.control = bridger
        await svc.start()
        if after_tick:
            engine.start_thread(clock, after_tick=board_port.step)
        else:
            engine.start_thread(clock)
        plays = max(2, int((args.rtp_seconds + 20) / 8) + 1)
        scenario = (
            (SCENARIOS_BENCH / "rtp_call.xml")
            .read_text()
            .replace(
                "  <!-- PLAYS: the bench puts here N times: play g711a.pcap, pause 8 s -->\n", PLAY * plays
            )
        )
        scen = Path(tmp) / "rtp_call.xml"
        scen.write_text(scenario)
        calls = args.rtp_calls
        rate = max(20.0, calls / 6)
        load = asyncio.ensure_future(
            _load(
                f"127.0.0.1:{svc.port}",
                ["-sf", str(scen), "-s", "5000", "-set", "ext", "1001"],
                calls,
                rate,
                calls,
                plays * 8 + 30,
            )  # fmt: skip
        )
        deadline = time.monotonic() + calls / rate + 20
        while bridger.active < calls and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        up = bridger.active
        await asyncio.sleep(2.0)  # jitter buffers filled, echo cancellers adapting
        since = engine.stats.ticks
        cpu0, wall0 = time.process_time(), time.perf_counter()
        sipp_cpu0 = _children_cpu()
        packets0 = _hub_packets(svc)
        await asyncio.sleep(args.rtp_seconds)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        packets = _hub_packets(svc) - packets0
        summary = engine.stats.summary(since)
        still = bridger.active
        engine.stop()
        try:
            ok_calls, failed, _ = await asyncio.wait_for(load, plays * 8 + 60)
        except TimeoutError:
            ok_calls, failed = 0, calls
        sipp_cpu = _children_cpu() - sipp_cpu0
        await svc.stop()
        world.close()
    mode = (
        "world stepped after each tick (outside the work time)" if after_tick else "tick includes board.step"
    )
    print(
        f"RTP through the engine, echo {'ON (every trunk row in a call)' if echo else 'OFF'}: {up}/{calls} "
        f"SIPp calls (g711a.pcap) up and bridged to B-channels of 8 E1 spans (sim-8e1-8fxo, {mode}); "
        f"{still} still up after {wall:.1f} s measured; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"  engine tick ({summary['ticks']} ticks): work median {summary['median_ms']:.2f} ms, p99 "
        f"{summary['p99_ms']:.2f} ms, p99.9 {summary['p999_ms']:.2f} ms, max {summary['max_ms']:.2f} ms; "
        f"CPU median {summary['cpu_median_ms']:.2f} ms, p99.9 {summary['cpu_p999_ms']:.2f} ms; overruns "
        f"{summary['overruns']}, late {summary['late']}"
    )
    print(
        f"  CPU share of one core: this process {100 * cpu / wall:.1f}% (engine + SIP/RTP sockets + "
        f"simulated board and far ends); SIPp (the load) {100 * sipp_cpu / max(wall, 1e-9):.1f}% (its run); "
        f"RTP packets received by the box {packets / wall:.0f}/s; SIPp calls ok {ok_calls}, failed {failed}; "
        f"verdict: {'tick free of overruns' if summary['overruns'] == 0 else 'OVERRUNS'}"
    )
    return up == calls and summary["ticks"] > 0


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _hub_packets(svc: SipService) -> int:
    hub = svc.hub
    return sum(hub.stats(leg).packets_received for leg in list(hub.legs))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=3000, help="calls per call-setup run")
    parser.add_argument("--registrations", type=int, default=3000, help="registrations in the REGISTER run")
    parser.add_argument("--rate", type=float, default=600.0, help="offered load, per second")
    parser.add_argument("--limit", type=int, default=200, help="most calls SIPp keeps open at once")
    parser.add_argument("--max-legs", type=int, default=256, help="SIP media legs of the box")
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound of each run")
    parser.add_argument("--rtp-legs", type=int, default=240, help="concurrent calls in the media run")
    parser.add_argument("--rtp-seconds", type=float, default=20.0, help="seconds measured in the RTP runs")
    parser.add_argument("--rtp-calls", type=int, default=240,
                        help="concurrent SIPp RTP calls bridged to E1 by the engine (0: skip)")  # fmt: skip
    parser.add_argument("--echo-only", action="store_true", help="RTP through the engine: echo on only")
    parser.add_argument("--rtp-only", action="store_true", help="only the RTP-through-the-engine runs")


def run(args: argparse.Namespace) -> int:
    if shutil.which("sipp") is None:
        print("sipp not found (Debian package sip-tester)")
        return 2
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_main(args))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="callbox bench sip", description=(__doc__ or "").splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
