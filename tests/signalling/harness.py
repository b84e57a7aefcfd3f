"""Two of our PRI spans back to back (user <-> network side) on a virtual clock, frames moved by hand."""

from __future__ import annotations

from firmware.signalling.pri import PriSpan
from firmware.signalling.q931.state import Party


class Pair:
    def __init__(self, **kw) -> None:
        self.now = 0.0
        self.user = PriSpan(Party.USER, name="user", **kw)
        self.net = PriSpan(Party.NETWORK, name="net", **kw)
        self.ev = {self.user: [], self.net: []}
        self.drop_to: set = set()  # spans whose incoming frames are lost (the link fails too)
        self.deaf: set = set()  # spans whose layer 3 ignores every message (the link stays up)
        for span in (self.user, self.net):
            span._receive_message = self._filter(span, span._receive_message)
        self.wire: list = []  # (dest, frame) log

    def _filter(self, span, receive):  # noqa: ANN202
        def receive_message(data: bytes, now: float) -> None:
            if span not in self.deaf:
                receive(data, now)

        return receive_message

    def pump(self) -> None:
        for _ in range(1000):
            moved = False
            for src, dst in ((self.user, self.net), (self.net, self.user)):
                for f in src.frames_to_send():
                    moved = True
                    self.wire.append((dst, f))
                    if dst not in self.drop_to:
                        dst.receive_frame(f, self.now)
            for s in (self.user, self.net):
                self.ev[s].extend(s.events())
            if not moved:
                return
        raise AssertionError("frames never stop")

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            dls = [d for d in (self.user.next_deadline(), self.net.next_deadline()) if d is not None]
            nxt = min(dls) if dls else None
            if nxt is None or nxt > end:
                break
            self.now = max(self.now, nxt)
            self.user.handle_timers(self.now)
            self.net.handle_timers(self.now)
            self.pump()
        self.now = end
        self.pump()

    def up(self) -> None:
        self.user.start(self.now)
        self.net.start(self.now)
        self.pump()
        assert self.user.link_up and self.net.link_up

    def take(self, span, cls=None) -> list:
        got = self.ev[span]
        if cls is None:
            self.ev[span] = []
            return got
        keep = [e for e in got if not isinstance(e, cls)]
        out = [e for e in got if isinstance(e, cls)]
        self.ev[span] = keep
        return out

    def check(self) -> None:
        self.user.check_invariants()
        self.net.check_invariants()
