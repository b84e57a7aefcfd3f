"""Seeded traffic storm against libpri (slow): random calls both ways, random answers, refusals and
clearing from either end, restarts and D-channel cuts, on one virtual clock. After every step our span's
tables must be consistent; at the end every call announced was released exactly once and no channel is
left held. A failing seed replays exactly."""

from __future__ import annotations

import random

import pytest

from firmware.signalling import events as ev
from firmware.signalling.pri import E1_BCHANNELS
from firmware.signalling.q931.state import LocalProtocolError, Party

from .interop import Bench

pytestmark = [pytest.mark.interop, pytest.mark.slow]


@pytest.mark.parametrize("seed", range(6))
def test_storm(seed: int) -> None:
    rng = random.Random(seed)
    role = Party.USER if seed % 2 == 0 else Party.NETWORK
    b = Bench(role)
    b.start()
    alive: set[int] = set()
    released: set[int] = set()
    peer_calls: dict = {}  # libpri call pointer -> channel, for calls libpri placed or got
    for _step in range(1500):
        r = rng.random()
        now = b.now
        try:
            if r < 0.15:
                b.ours.place_call(str(rng.randrange(10**6)), now, calling="1")
            elif r < 0.25:
                free = [c for c in E1_BCHANNELS if c not in peer_calls.values()]
                if free:
                    ch = rng.choice(free)
                    b.peer.command(now)
                    peer_calls[b.peer.place_call("4001", ch, exclusive=rng.random() < 0.5)] = ch
            elif r < 0.45 and b.ours.by_id:
                cid = rng.choice(sorted(b.ours.by_id))
                getattr(b.ours, rng.choice(["proceeding", "alert", "answer"]))(cid, now)
            elif r < 0.55 and b.ours.by_id:
                b.ours.hangup(rng.choice(sorted(b.ours.by_id)), now, rng.choice([16, 17, 19, 21, 34]))
            elif r < 0.65 and peer_calls:
                call = rng.choice(list(peer_calls))
                b.peer.command(now)
                b.peer.hangup(call, rng.choice([16, 17, 19]))
                peer_calls.pop(call)
            elif r < 0.67:
                b.ours.restart(now, rng.choice([None, *E1_BCHANNELS]))
            elif r < 0.68:
                b.cut = True
            elif r < 0.72:
                b.cut = False
            else:
                b.advance(rng.choice([0.01, 0.5, 2.0, 5.0]))
        except LocalProtocolError:
            pass
        b.pump()
        # libpri's application: answer what rings (sometimes), keep track of its calls.
        for e in b.peer_take("RING"):
            peer_calls[e.call] = e.channel
            if rng.random() < 0.7:
                b.do(rng.choice(["proceeding", "alert", "answer"]), e.call, e.channel)
        for e in b.peer_take("HANGUP"):
            peer_calls.pop(e.call, None)
        b.peer_take()
        for e in b.take():
            if isinstance(e, ev.IncomingCall):
                alive.add(e.call_id)
            elif isinstance(e, ev.Released):
                assert e.call_id not in released, f"call {e.call_id} released twice"
                released.add(e.call_id)
                alive.discard(e.call_id)
        b.ours.check_invariants()
    # Wind down: cable back, everything cleared, all timers run out.
    b.cut = False
    for cid in list(b.ours.by_id):
        b.ours.hangup(cid, b.now)
    b.pump()
    b.advance(400.0)
    for e in b.take():
        if isinstance(e, ev.Released):
            assert e.call_id not in released
            released.add(e.call_id)
    b.ours.check_invariants()
    assert not b.ours.by_id and all(c is None for c in b.ours.owner.values()) and not b.ours.maintenance
    assert b.ours.link_up
    assert b.ours.counters["calls"] == len(released) > 50
