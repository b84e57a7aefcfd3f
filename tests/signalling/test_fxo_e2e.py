"""FXO supervision end to end against the simulated CO line: the exchange rings with China's cadence and
sends Bell 202 caller ID after the first ring; the board's DAA model and C driver turn the line into
events and A-law audio; dsp.callerid decodes the FSK; FxoPort answers, and the exchange clears each way."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
import pytest

from dsp.callerid import CallerId, CallerIdReceiver, CallerIdSender
from dsp.g711 import alaw_decode
from firmware.signalling.fxo import (
    Answered,
    CallerIdReceived,
    Detect,
    Disconnected,
    FxoConfig,
    FxoPort,
    Hook,
    Ringing,
)

CID = CallerId(number="13800138000", name="ZHANG SAN", when="11230705")


class FxoE2E:
    def __init__(self, rundir: str, **cfg) -> None:
        from board.description import simple_board
        from tools.linesim.world import World

        self.w = World(simple_board(0, 1), rundir)
        self.port = FxoPort(FxoConfig(**cfg))
        self.drv = self.w.board.fxo.port(1)
        self.co = self.w.co[0].line
        self.cid_rx = CallerIdReceiver(1, "bell202")
        self.listen_cid = False
        self.events: list = []
        self._apply(self.port.commands())

    @property
    def now(self) -> float:
        return self.w.tick_time(self.w.ticks)

    def _apply(self, cmds: list) -> None:
        for c in cmds:
            if isinstance(c, Hook):
                self.drv.hook(c.offhook)
            elif isinstance(c, Detect) and c.what == "callerid":
                self.listen_cid = c.on

    def tick(self) -> None:
        self.w.tick()
        now = self.now
        for e in self.w.board.fxo.events():
            if e.port == 1:
                self.port.line_event(now, e.kind, e.value)
        tdm = self.w.board.tdm
        audio = alaw_decode(tdm.read(80)[tdm.channel(port=1)].copy()).reshape(1, -1)
        if self.listen_cid:
            for ev in self.cid_rx.process(audio.astype(np.int16)):
                self.port.dsp_event(now, ev)
        d = self.port.next_deadline()
        if d is not None and d <= now:
            self.port.handle_timers(now)
        self._apply(self.port.commands())
        self.events += self.port.events()

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.w.period)):
            self.tick()


@pytest.fixture
def rundir():
    path = tempfile.mkdtemp(prefix="cbx")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("clear", ["battery", "polarity"])
def test_ring_callerid_answer_and_clear(rundir: str, clear: str) -> None:
    t = FxoE2E(rundir, answer_rings=2)
    try:
        t.run(0.5)
        fsk = CallerIdSender("bell202").signal(CID)
        t.co.ring(t.now, callerid=fsk)
        t.run(7.0)
        assert t.events == [Ringing(1, None), CallerIdReceived(CID), Ringing(2, CID), Answered(incoming=True)]
        t.events.clear()
        assert t.co.state == "connected" and t.drv.status().offhook
        t.run(2.0)
        assert t.events == []  # the exchange's reversal on our answer is not a clear
        if clear == "battery":
            t.co.set_battery(t.now, False)
        else:
            t.co.far_clear(t.now)
        t.run(1.5)
        assert t.events[0] == Disconnected(clear)
        assert not t.drv.status().offhook
    finally:
        t.w.close()
