"""One PRI call end to end through the simulated board: libpri (either Q.931 side) behind the exchange's E1
framer, its frames in HDLC on TS16 of G.704 frames over the span's Unix socket, the box's simulated card
and C driver (dchan_send/dchan_recv), and our PriSpan (the other side) on top. Virtual time throughout: the
world's tick time is the `now` of our stack and of libpri."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from firmware.signalling import events as ev
from firmware.signalling.pri import PriSpan
from firmware.signalling.q931.state import Party
from tools.libpri_peer import LibpriPeer

pytestmark = pytest.mark.interop


class E2E:
    def __init__(self, rundir: str, role: Party = Party.USER) -> None:
        from board.description import simple_board
        from tools.linesim.world import World

        self.w = World(simple_board(1, 0), rundir)
        self.span = self.w.board.e1.span(1)  # the box's driver
        self.ex = self.w.e1[0].ex  # the exchange's framer
        self.ours = PriSpan(role)
        self.peer = LibpriPeer(network=role is Party.USER)
        self.peer.command(self.now)
        self.to_box: list[bytes] = []
        self.to_far: list[bytes] = []
        self.events: list = []
        self.peer_events: list = []
        self.started = False

    @property
    def now(self) -> float:
        return self.w.tick_time(self.w.ticks)

    def tick(self) -> None:
        now = self.now
        from drivers import e1

        bad = self.span.status().raw & (e1.LOS | e1.LOF | e1.AIS)
        if not self.started and not bad:
            self.ours.start(now)
            self.started = True
        elif self.started and bad:
            self.ours.alarm(now)  # span alarm: calls cleared, channels blocked until the link is back
            self.started = False
        # libpri <-> exchange framer
        for f in self.ex.dchan_recv():
            self.peer.receive(f, now)
        self.peer.handle_timers(now)
        self.to_far += self.peer.frames_to_send()
        while self.to_far and self.ex.dchan_send(self.to_far[0]):
            self.to_far.pop(0)
        # box driver <-> our stack
        for f in self.span.dchan_recv():
            self.ours.receive_frame(f, now)
        self.ours.handle_timers(now)
        self.to_box += self.ours.frames_to_send()
        while self.to_box and self.span.dchan_send(self.to_box[0]):
            self.to_box.pop(0)
        self.events += self.ours.events()
        for e in self.peer.take():
            self.peer_events.append(e)
            if e.kind in ("HANGUP_REQ", "HANGUP") and e.call is not None:
                self.peer.command(now)
                self.peer.hangup(e.call, e.cause or 16)
        self.w.tick()

    def run_until(self, pred, seconds: float) -> None:
        for _ in range(round(seconds / self.w.period)):
            if pred():
                return
            self.tick()
        raise AssertionError(f"not reached in {seconds} s: events {self.events} peer {self.peer_events}")

    def peer_kinds(self) -> list[str]:
        return [e.kind for e in self.peer_events]


@pytest.fixture(params=[Party.USER, Party.NETWORK], ids=["ourCPE-libpriNET", "ourNET-libpriCPE"])
def e2e(request):
    path = tempfile.mkdtemp(prefix="cbx")
    bench = E2E(path, request.param)
    yield bench
    bench.w.close()
    shutil.rmtree(path, ignore_errors=True)


def test_pri_call_through_the_simulated_e1_socket(e2e: E2E) -> None:
    e2e.run_until(lambda: ev.LinkUp() in e2e.events and "DCHAN_UP" in e2e.peer_kinds(), 3.0)
    # Incoming: the exchange calls the box on timeslot 17 (the 16th B-channel).
    e2e.peer.command(e2e.now)
    call = e2e.peer.place_call("4001", 17, calling="13800138000")
    e2e.run_until(lambda: any(isinstance(e, ev.IncomingCall) for e in e2e.events), 1.0)
    (inc,) = [e for e in e2e.events if isinstance(e, ev.IncomingCall)]
    assert inc.channel == 17 and inc.called.digits == "4001" and inc.calling.digits == "13800138000"
    e2e.ours.proceeding(inc.call_id, e2e.now)
    e2e.ours.alert(inc.call_id, e2e.now)
    e2e.ours.answer(inc.call_id, e2e.now)
    e2e.run_until(lambda: ev.Connected(inc.call_id, None) in e2e.events and "ANSWER" in e2e.peer_kinds(), 1.0)
    e2e.peer.command(e2e.now)
    e2e.peer.hangup(call, 16)
    e2e.run_until(lambda: ev.Released(inc.call_id, 16) in e2e.events, 1.0)
    # Outgoing: the box calls out, the exchange answers, the box clears.
    cid = e2e.ours.place_call("5551234", e2e.now, calling="88001234")
    e2e.run_until(lambda: "RING" in e2e.peer_kinds(), 1.0)
    (ring,) = [e for e in e2e.peer_events if e.kind == "RING"]
    e2e.peer.command(e2e.now)
    e2e.peer.proceeding(ring.call, ring.channel)
    e2e.peer.answer(ring.call, ring.channel)
    e2e.run_until(lambda: ev.Connected(cid, None) in e2e.events, 1.0)
    e2e.ours.hangup(cid, e2e.now)
    e2e.run_until(lambda: ev.Released(cid, 16) in e2e.events, 1.0)
    assert not e2e.ours.calls
    c = e2e.span.counters()
    assert c.hdlc_fcs_errors == 0 and c.hdlc_rx > 10 and c.hdlc_tx > 10


def test_pulled_cable_clears_calls_and_blocks_channels(e2e: E2E) -> None:
    e2e.run_until(lambda: ev.LinkUp() in e2e.events, 3.0)
    cid = e2e.ours.place_call("5551234", e2e.now)
    e2e.run_until(lambda: "RING" in e2e.peer_kinds(), 1.0)
    (ring,) = [e for e in e2e.peer_events if e.kind == "RING"]
    e2e.peer.command(e2e.now)
    e2e.peer.answer(ring.call, ring.channel)
    e2e.run_until(lambda: ev.Connected(cid, None) in e2e.events, 1.0)
    e2e.w.e1[0].close()  # the cable is pulled: LOS at the box
    e2e.run_until(lambda: ev.Released(cid, 41) in e2e.events, 1.0)
    assert any(isinstance(e, ev.LinkDown) for e in e2e.events)
    refused = e2e.ours.place_call("1", e2e.now)
    assert e2e.ours.events() == [ev.Released(refused, 41)]
    assert all(c is None for c in e2e.ours.owner.values())
    e2e.events.clear()
    e2e.w.e1[0].connect()  # plugged back in: alignment, then the D-channel comes back
    e2e.run_until(lambda: ev.LinkUp() in e2e.events, 5.0)
    cid = e2e.ours.place_call("5551234", e2e.now)
    e2e.run_until(lambda: sum(e.kind == "RING" for e in e2e.peer_events) == 2, 1.0)
