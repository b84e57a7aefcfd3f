"""The whole appliance on the simulated board: an exchange (PRI network side) over the E1 span's socket,
the board's card model and C driver, the media engine on the TDM rows, the box's PRI stack, call control,
the IVR (in-band DTMF in the B-channel) and an agent extension. Virtual time throughout."""

from __future__ import annotations

import calendar
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from board.clock import VirtualClock
from firmware.calls.loopback import PhoneBehaviour
from firmware.engine.tones import dtmf_buffer
from firmware.signalling import events as ev
from firmware.signalling.pri import PriSpan
from firmware.signalling.q931.state import Party

MONDAY_10AM = calendar.timegm((2026, 11, 23, 2, 0, 0))


class NetworkSide:
    """The exchange's PRI stack on the far end of span 1, and what its callers say in the B-channels."""

    def __init__(self, world) -> None:
        from dsp.g711 import ALAW_ENCODE_TABLE

        self.enc = ALAW_ENCODE_TABLE
        self.w = world
        self.ex = world.e1[0].ex
        self.stack = PriSpan(Party.NETWORK)
        self.started = False
        self.events: list = []
        self.out: list[bytes] = []
        self.say: dict[int, deque] = {}
        self.heard: dict[int, list] = {}

    def tick(self, now: float) -> None:
        if not self.started:
            self.stack.start(now)
            self.started = True
        for f in self.ex.dchan_recv():
            self.stack.receive_frame(f, now)
        d = self.stack.next_deadline()
        if d is not None and d <= now:
            self.stack.handle_timers(now)
        self.events += self.stack.events()
        self.out += self.stack.frames_to_send()
        while self.out and self.ex.dchan_send(self.out[0]):
            self.out.pop(0)
        n = self.w.n
        block = np.full((32, n), 0xD5, dtype=np.uint8)
        for ts, q in self.say.items():
            if q:
                chunk = q.popleft()
                block[ts, : len(chunk)] = self.enc[chunk.view(np.uint16)]
        self.ex.set_voice(block)
        voice = self.ex.voice(n)
        for ts in self.heard:
            self.heard[ts].append(voice[ts].copy())

    def speak(self, ts: int, pcm: np.ndarray) -> None:
        q = self.say.setdefault(ts, deque())
        for i in range(0, len(pcm), self.w.n):
            q.append(pcm[i : i + self.w.n].astype(np.int16))


@pytest.fixture
def world_app(tmp_path: Path, prompt_dir: Path):
    from board.description import simple_board
    from firmware.calls.appliance import Appliance
    from tools.linesim.world import World

    clock = VirtualClock(start=MONDAY_10AM)
    w = World(simple_board(1, 0), tmp_path / "run", clock=clock)
    app = Appliance(w.board, tmp_path / "data", clock=clock, prompt_dirs=[prompt_dir], extension_rows=8)
    net = NetworkSide(w)
    w.on_tick.append(net.tick)
    w.on_tick.append(app.on_tick)
    w.attach()
    yield w, app, net, clock
    w.close()
    app.close()


def test_pri_caller_through_the_board_to_an_agent(world_app) -> None:
    w, app, net, clock = world_app
    clock.advance(3.0)
    trunk = app.pri[1][1]
    assert trunk.link_up and ev.LinkUp() in net.events
    app.extensions.add_phone("1001", PhoneBehaviour(answer_after=2.0))
    call_id = net.stack.place_call("95588", clock.now(), calling="13812345678", channel=5)
    net.heard[5] = []
    clock.advance(1.0)
    assert ev.Connected(call_id, None) in net.events or any(
        isinstance(e, ev.Connected) and e.call_id == call_id for e in net.events
    )
    # the welcome prompt comes back in timeslot 5 through the board
    from dsp.g711 import ALAW_DECODE_TABLE

    heard = ALAW_DECODE_TABLE[np.concatenate(net.heard[5])]
    assert np.abs(heard.astype(int)).max() > 1000
    (leg,) = trunk.legs.values()
    call = app.mgr.call_of(leg)
    assert call.state == "ivr" and call.cdr.channel == "DAHDI/1-5"
    clock.advance(11.0)
    net.speak(5, dtmf_buffer("1"))
    clock.advance(4.0)
    assert call.queue == "service" and call.b is not None and call.b.number == "1001"
    agent = call.b
    # the agent speaks; the caller hears it in timeslot 5
    net.heard[5] = []
    t = np.arange(4000) / 8000
    agent.say((np.sin(2 * np.pi * 1000 * t) * 8000).astype(np.int16))
    clock.advance(0.6)
    heard = ALAW_DECODE_TABLE[np.concatenate(net.heard[5])].astype(float)
    spec = np.abs(np.fft.rfft(heard))
    assert abs(np.argmax(spec) * 8000 / len(heard) - 1000) < 20
    net.stack.hangup(call_id, clock.now())
    clock.advance(1.0)
    assert any(isinstance(e, ev.Released) and e.call_id == call_id for e in net.events)
    cdr = app.mgr.store.cdrs()[0]
    assert cdr.disposition == "ANSWERED" and cdr.src == "13812345678" and cdr.channel == "DAHDI/1-5"
    assert not app.mgr.calls and agent.state == "down"
    st = app.status()
    assert st["spans"][1]["link"] and st["calls"] == 0


def test_realtime_appliance_runs_and_stops(tmp_path: Path, prompt_dir: Path) -> None:
    import time

    from board.clock import RealClock
    from board.description import simple_board
    from board.sim.board import SimBoard
    from firmware.calls.appliance import Appliance

    board = SimBoard(simple_board(1, 2), tmp_path / "run")
    app = Appliance(board, tmp_path / "data", clock=RealClock(), prompt_dirs=[prompt_dir], realtime=True)
    try:
        app.start()
        time.sleep(0.5)
        st = app.status()
        assert st["tick"]["ticks"] >= 20
        assert st["spans"][1]["aligned"] is False and "LOS" in st["spans"][1]["alarms"]  # no cable
        assert st["fxo"] == ["idle", "idle"]
    finally:
        app.close()
        board.close()
