"""Our PriSpan against Debian's libpri on one virtual clock (libpri's gettimeofday follows it too).

`Bench.ours` is our span, `Bench.peer` the libpri end; `pump()` moves frames both ways until quiet;
`advance(s)` moves the shared clock, firing both sides' timers in deadline order. The libpri side plays
the part of a minimal application the way chan_dahdi does: on HANGUP_REQ (DISCONNECT) it hangs up, on
HANGUP (RELEASE/RELEASE COMPLETE) it frees the call.
"""

from __future__ import annotations

from firmware.signalling.pri import PriSpan
from firmware.signalling.q931.state import Party
from tools.libpri_peer import LibpriPeer


class Bench:
    def __init__(
        self, our_role: Party, *, overlap: bool = False, peer_timers: dict | None = None, **kw
    ) -> None:
        self.now = 0.0
        self.ours = PriSpan(our_role, name="ours", **kw)
        self.peer_network = our_role is Party.USER
        self.overlap = overlap
        self.peer_timers = peer_timers
        self.peer = self._new_peer()
        self.events: list = []
        self.peer_events: list = []
        self.cut = False  # the cable is pulled: frames in both directions are lost
        self.lose = None  # callable(direction, frame) -> True to lose that frame ("ours>peer"/"peer>ours")
        self.auto_hangup = True
        self.frames = 0

    def _new_peer(self) -> LibpriPeer:
        peer = LibpriPeer(network=self.peer_network, overlap=self.overlap, timers=self.peer_timers)
        peer.command(self.now)
        return peer

    def restart_peer(self) -> None:
        """libpri comes back from scratch (a reboot of the far end): new instance, new SABME."""
        self.peer = self._new_peer()
        self.pump()

    def start(self) -> None:
        self.peer.command(self.now)
        self.ours.start(self.now)
        self.pump()

    def pump(self) -> None:
        for _ in range(10000):
            moved = False
            for f in self.ours.frames_to_send():
                moved = True
                self.frames += 1
                if not self.cut and not (self.lose and self.lose("ours>peer", f)):
                    self.peer.receive(f, self.now)
            for f in self.peer.frames_to_send():
                moved = True
                self.frames += 1
                if not self.cut and not (self.lose and self.lose("peer>ours", f)):
                    self.ours.receive_frame(f, self.now)
            self.events.extend(self.ours.events())
            for e in self.peer.take():
                self.peer_events.append(e)
                if self.auto_hangup and e.kind in ("HANGUP_REQ", "HANGUP") and e.call is not None:
                    self.peer.command(self.now)
                    self.peer.hangup(e.call, e.cause or 16)
                    moved = True
            if not moved:
                return
        raise AssertionError("the two ends never stop talking")

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        for _ in range(100000):
            dls = [d for d in (self.ours.next_deadline(), self.peer.next_deadline()) if d is not None]
            nxt = min(dls) if dls else None
            if nxt is None or nxt > end:
                break
            self.now = max(self.now, nxt)
            self.ours.handle_timers(self.now)
            self.peer.handle_timers(self.now)
            self.pump()
        self.now = end
        self.peer.command(self.now)
        self.pump()

    # ---- peer commands at the current time ----------------------------------------------------------
    def do(self, method: str, *args, **kw):  # noqa: ANN201
        self.peer.command(self.now)
        result = getattr(self.peer, method)(*args, **kw)
        self.pump()
        return result

    def take(self, cls: type | None = None) -> list:
        self.events.extend(self.ours.events())
        if cls is None:
            out, self.events = self.events, []
            return out
        out = [e for e in self.events if isinstance(e, cls)]
        self.events = [e for e in self.events if not isinstance(e, cls)]
        return out

    def peer_take(self, *kinds: str) -> list:
        out = [e for e in self.peer_events if not kinds or e.kind in kinds]
        self.peer_events = [e for e in self.peer_events if kinds and e.kind not in kinds]
        return out
