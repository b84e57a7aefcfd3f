"""PRI signalling benchmark: call setups + clears per second per core for our stack, with libpri beside it.

N spans, each our PriSpan against a libpri peer, in one thread (so one core). Calls go in batches of 30
(a full span), alternately outgoing (we call, libpri answers, we clear) and incoming (libpri calls, we
answer, libpri clears). The CPU time (time.thread_time, so a loaded machine does not count against us)
spent inside our stack and inside libpri is measured separately around every call into each; the harness
moving frames between them is counted in neither. A second run puts our
user side against our network side (both halves ours) for the stack alone. Reference in the same process:
libpri against libpri on the same call pattern.

    .venv/bin/python -m tools.bench.pri [--spans 4] [--calls 600] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware.signalling import events as ev
from firmware.signalling.pri import E1_BCHANNELS, PriSpan
from firmware.signalling.q931.state import Party
from tools.libpri_peer import LibpriPeer

BATCH = len(E1_BCHANNELS)


@dataclass
class Timed:
    """Accumulates the CPU time (this thread) spent in the calls it wraps."""

    seconds: float = 0.0

    def __call__(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        t0 = time.thread_time()
        try:
            return fn(*args, **kw)
        finally:
            self.seconds += time.thread_time() - t0


@dataclass
class Result:
    calls: int = 0
    ours: float = 0.0
    peer: float = 0.0
    wall: float = 0.0
    extra: dict = field(default_factory=dict)


class OursVsLibpri:
    def __init__(self, role: Party) -> None:
        self.span = PriSpan(role)
        self.peer = LibpriPeer(network=role is Party.USER)
        self.peer.command(0.0)
        self.t = Timed()
        self.events: list = []
        self.peer_events: list = []

    def pump(self) -> None:
        t, span, peer = self.t, self.span, self.peer
        while True:
            out = t(span.frames_to_send)
            for f in out:
                peer.receive(f, 0.0)
            back = peer.frames_to_send()
            for f in back:
                t(span.receive_frame, f, 0.0)
            self.events += t(span.events)
            self.peer_events += peer.take()
            if not out and not back:
                return

    def start(self) -> None:
        self.t(self.span.start, 0.0)
        self.pump()
        assert self.span.link_up

    def outgoing_batch(self) -> int:
        t, span, peer = self.t, self.span, self.peer
        ids = [t(span.place_call, "5551234", 0.0, calling="88001234") for _ in range(BATCH)]
        self.pump()
        rings = [e for e in self.peer_events if e.kind == "RING"]
        self.peer_events.clear()
        for r in rings:
            t0 = time.thread_time()
            peer.proceeding(r.call, r.channel)
            peer.alert(r.call, r.channel)
            peer.answer(r.call, r.channel)
            peer.busy_time += time.thread_time() - t0
        self.pump()
        connected = sum(isinstance(e, ev.Connected) for e in self.events)
        for cid in ids:
            t(span.hangup, cid, 0.0)
        self._clear_peer()
        released = sum(isinstance(e, ev.Released) for e in self.events)
        self.events.clear()
        assert connected == released == BATCH, (connected, released)
        return BATCH

    def incoming_batch(self) -> int:
        t, span, peer = self.t, self.span, self.peer
        t0 = time.thread_time()
        calls = [peer.place_call("4001", ch, calling="13800138000") for ch in E1_BCHANNELS]
        peer.busy_time += time.thread_time() - t0
        self.pump()
        incoming = [e for e in self.events if isinstance(e, ev.IncomingCall)]
        self.events.clear()
        for e in incoming:
            t(span.proceeding, e.call_id, 0.0)
            t(span.alert, e.call_id, 0.0)
            t(span.answer, e.call_id, 0.0)
        self.pump()
        t0 = time.thread_time()
        for c in calls:
            peer.hangup(c, 16)
        peer.busy_time += time.thread_time() - t0
        self._clear_peer()
        released = sum(isinstance(e, ev.Released) for e in self.events)
        self.events.clear()
        assert len(incoming) == released == BATCH, (len(incoming), released)
        return BATCH

    def _clear_peer(self) -> None:
        """libpri's application side of clearing: hang up on DISCONNECT, free on RELEASE."""
        for _ in range(10):
            self.pump()
            todo = [e for e in self.peer_events if e.kind in ("HANGUP_REQ", "HANGUP") and e.call is not None]
            self.peer_events.clear()
            if not todo:
                return
            t0 = time.thread_time()
            for e in todo:
                self.peer.hangup(e.call, e.cause or 16)
            self.peer.busy_time += time.thread_time() - t0


def run_vs_libpri(spans: int, calls: int, role: Party) -> Result:
    benches = [OursVsLibpri(role) for _ in range(spans)]
    for b in benches:
        b.start()
    res = Result()
    peer0 = sum(b.peer.busy_time for b in benches)
    ours0 = sum(b.t.seconds for b in benches)
    t0 = time.thread_time()
    n = 0
    while res.calls < calls:
        for b in benches:
            res.calls += b.outgoing_batch() if n % 2 == 0 else b.incoming_batch()
        n += 1
    res.wall = time.thread_time() - t0
    res.ours = sum(b.t.seconds for b in benches) - ours0
    res.peer = sum(b.peer.busy_time for b in benches) - peer0
    return res


def run_ours_vs_ours(spans: int, calls: int) -> Result:
    """Both ends ours; all the time counted is our stack's (both halves of every call)."""
    pairs = [(PriSpan(Party.USER), PriSpan(Party.NETWORK)) for _ in range(spans)]
    res = Result()

    def pump(u: PriSpan, n: PriSpan) -> list:
        got = []
        while True:
            a, b = u.frames_to_send(), n.frames_to_send()
            for f in a:
                n.receive_frame(f, 0.0)
            for f in b:
                u.receive_frame(f, 0.0)
            got += u.events() + n.events()
            if not a and not b:
                return got

    for u, n in pairs:
        u.start(0.0)
        n.start(0.0)
        pump(u, n)
    t0 = time.thread_time()
    while res.calls < calls:
        for u, n in pairs:
            ids = [u.place_call("5551234", 0.0, calling="88001234") for _ in range(BATCH)]
            inc = [e for e in pump(u, n) if isinstance(e, ev.IncomingCall)]
            for e in inc:
                n.proceeding(e.call_id, 0.0)
                n.alert(e.call_id, 0.0)
                n.answer(e.call_id, 0.0)
            pump(u, n)
            for cid in ids:
                u.hangup(cid, 0.0)
            rel = [e for e in pump(u, n) if isinstance(e, ev.Released)]
            assert len(inc) == BATCH and len(rel) == 2 * BATCH
            res.calls += BATCH
    res.wall = res.ours = time.thread_time() - t0
    return res


def run_libpri_vs_libpri(spans: int, calls: int) -> Result:
    """Reference: libpri CPE calling libpri NET, same pattern; all time counted is libpri's."""
    pairs = []
    for _ in range(spans):
        cpe, net = LibpriPeer(network=False), LibpriPeer(network=True)
        cpe.command(0.0)
        pairs.append((cpe, net))

    def pump(a: LibpriPeer, b: LibpriPeer) -> None:
        while True:
            x, y = a.frames_to_send(), b.frames_to_send()
            for f in x:
                b.receive(f, 0.0)
            for f in y:
                a.receive(f, 0.0)
            # libpri's application role: hang up on DISCONNECT and RELEASE.
            for p in (a, b):
                for e in p.take("HANGUP_REQ", "HANGUP"):
                    if e.call is not None:
                        p.hangup(e.call, e.cause or 16)
                        x = x or [b""]
            if not x and not y:
                return

    for a, b in pairs:
        pump(a, b)
    res = Result()
    t0 = time.thread_time()
    while res.calls < calls:
        for cpe, net in pairs:
            calls_ = [cpe.place_call("4001", ch, exclusive=False) for ch in E1_BCHANNELS]
            pump(cpe, net)
            rings = net.take("RING")
            for r in rings:
                net.proceeding(r.call, r.channel)
                net.alert(r.call, r.channel)
                net.answer(r.call, r.channel)
            pump(cpe, net)
            for c in calls_:
                cpe.hangup(c, 16)
            pump(cpe, net)
            assert len(rings) == BATCH
            cpe.take()
            net.take()
            res.calls += BATCH
    res.wall = res.peer = time.thread_time() - t0
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=4)
    ap.add_argument("--calls", type=int, default=600, help="calls per run (rounded up to batches of 30)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    rows: dict[str, list[float]] = {}

    def add(name: str, v: float) -> None:
        rows.setdefault(name, []).append(v)

    for _ in range(args.repeat):
        for role in (Party.USER, Party.NETWORK):
            r = run_vs_libpri(args.spans, args.calls, role)
            tag = "ourCPE-libpriNET" if role is Party.USER else "ourNET-libpriCPE"
            add(f"{tag}: our stack, calls/s", r.calls / r.ours)
            add(f"{tag}: libpri, calls/s", r.calls / r.peer)
            add(f"{tag}: whole loop incl. harness, calls/s", r.calls / r.wall)
        r = run_ours_vs_ours(args.spans, args.calls)
        add("our CPE + our NET (both halves ours), calls/s", r.calls / r.ours)
        r = run_libpri_vs_libpri(args.spans, args.calls)
        add("reference libpri CPE + libpri NET, calls/s", r.calls / r.peer)

    print(f"PRI setup+clear throughput, {args.spans} spans, {args.calls} calls/run, median of {args.repeat}")
    print(
        "(CPU time of one thread = per core; a 'call' is SETUP..CONNECT ACKNOWLEDGE, "
        "then DISCONNECT..RELEASE COMPLETE)"
    )
    med = {k: statistics.median(v) for k, v in rows.items()}
    for k, v in med.items():
        spread = f"[{min(rows[k]):,.0f} .. {max(rows[k]):,.0f}]"
        print(f"  {k:<58} {v:>10,.0f}  {spread}")
    ours_both = med["our CPE + our NET (both halves ours), calls/s"]
    ref = med["reference libpri CPE + libpri NET, calls/s"]
    print(f"  ratio our two halves / libpri two halves: {ours_both / ref:.2f}")
    worst = min(v for k, v in med.items() if "our stack" in k)
    target = 1000
    print(
        f"  target >= {target} setups/s per core for our stack: {'MET' if worst >= target else 'NOT MET'}"
        f" (worst role {worst:,.0f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
