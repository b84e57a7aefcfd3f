"""FXO supervision end to end against the simulated CO line: the exchange rings with China's cadence and
sends Bell 202 caller ID after the first ring; the board's DAA model and C driver turn the line into
events and A-law audio; dsp.callerid decodes the FSK; FxoPort answers, and the exchange clears each way."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
import pytest

from dsp.callerid import CallerId, CallerIdReceiver, CallerIdSender
from dsp.cpt import CallProgressDetector
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
    SetGain,
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
        self.cid_rx = CallerIdReceiver(1, cfg.get("callerid", "bell202"))
        self.listen_cid = False
        self.cpt = CallProgressDetector(1, "cn")
        self.listen_cpt = False
        self.events: list = []
        self._apply(self.port.commands())

    @property
    def now(self) -> float:
        return self.w.tick_time(self.w.ticks)

    def _apply(self, cmds: list) -> None:
        for c in cmds:
            if isinstance(c, Hook):
                self.drv.hook(c.offhook)
            elif isinstance(c, SetGain):
                self.drv.set_gain(c.rx_db, c.tx_db)
            elif isinstance(c, Detect) and c.what == "callerid":
                self.listen_cid = c.on
            elif isinstance(c, Detect) and c.what == "cpt":
                if c.on and not self.listen_cpt:
                    self.cpt.reset(0)
                self.listen_cpt = c.on

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
        if self.listen_cpt:
            for ev in self.cpt.process(audio.astype(np.int16)):
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
    t = FxoE2E(rundir, answer_rings=2, rx_gain_db=-3.0)
    try:
        t.run(0.5)
        assert t.drv.gain() == (-3.0, 0.0)
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


def test_outgoing_call_digits_reach_the_exchange_answer_by_polarity(rundir: str) -> None:
    """Seize, dial (after the dial-tone wait: dsp has no call-progress detector yet, so the port is set to
    dial without it), DTMF at Q.23 timing played into the line, the exchange hears the digits (dsp.dtmf),
    answers with a polarity reversal; the box hangs up."""
    from dsp.dtmf import DtmfDetector
    from dsp.g711 import alaw_encode
    from dsp.tones import dtmf_sequence, to_int16
    from firmware.signalling.fxo import PlayDigits

    t = FxoE2E(rundir, dial_without_dial_tone=True, dial_tone_s=0.5, dtmf_on_ms=80, dtmf_off_ms=80)
    tdm = t.w.board.tdm
    ch = tdm.channel(port=1)
    pending = np.zeros(0, np.int16)
    orig_apply = t._apply

    def apply(cmds: list) -> None:
        nonlocal pending
        for c in cmds:
            if isinstance(c, PlayDigits):
                pending = to_int16(dtmf_sequence(c.digits, c.on_ms, c.off_ms, level_dbm0=-8.0))
        orig_apply(cmds)

    t._apply = apply
    orig_tick = t.tick

    def tick() -> None:
        nonlocal pending
        block = np.full((tdm.channels, 80), 0xD5, np.uint8)
        if pending.size:
            chunk = np.zeros(80, np.int16)
            take = pending[:80]
            chunk[: take.size] = take
            pending = pending[80:]
            block[ch] = alaw_encode(chunk)
        tdm.write(block)
        orig_tick()

    t.tick = tick
    try:
        t.run(0.5)
        t.port.dial(t.now, "95588")
        t._apply(t.port.commands())
        t.run(3.0)
        assert t.co.state == "seized"
        heard = [str(e.value) for e in DtmfDetector(1).process(t.co.received_audio().reshape(1, -1))]
        assert "".join(heard) == "95588"
        t.co.far_answer(t.now)
        t.run(0.5)
        assert t.events == [Answered(incoming=False)]
        t.port.hangup(t.now)
        t._apply(t.port.commands())
        t.run(0.5)
        assert t.events[-1] == Disconnected("local") and t.co.state == "idle"
    finally:
        t.w.close()


def test_outgoing_with_dial_tone_heard_on_the_line_then_busy(rundir: str) -> None:
    """The exchange plays dial tone when the box seizes the line; dsp.cpt hears it and the port dials;
    the exchange then plays busy: the call fails as busy and the port goes back on hook."""
    from firmware.signalling.fxo import DialFailed, PlayDigits

    t = FxoE2E(rundir, dtmf_on_ms=80, dtmf_off_ms=80)
    played: list = []
    apply = t._apply
    t._apply = lambda cmds: (played.extend(c for c in cmds if isinstance(c, PlayDigits)), apply(cmds))[1]
    try:
        t.run(0.5)
        t.port.dial(t.now, "95588")
        t._apply(t.port.commands())
        t.run(2.5)  # dial tone must be confirmed (1.5 s continuous) before digits go out
        assert played == [PlayDigits("95588", 80, 80)]
        assert t.co.tone == "dial"
        t.co.play_tone(t.now, "busy")
        t.run(3.0)
        assert DialFailed("busy") in t.events
        assert not t.drv.status().offhook and t.co.state == "idle"
    finally:
        t.w.close()


def test_no_dial_tone_on_the_line(rundir: str) -> None:
    from firmware.signalling.fxo import DialFailed

    t = FxoE2E(rundir)
    t.co.dial_tone = False  # a dead line: battery, but the exchange plays nothing
    try:
        t.run(0.5)
        t.port.dial(t.now, "123")
        t._apply(t.port.commands())
        t.run(6.0)
        assert DialFailed("no dial tone") in t.events
        assert not t.drv.status().offhook
    finally:
        t.w.close()


def test_far_end_clears_by_busy_tone(rundir: str) -> None:
    """An incoming call answered; the far party hangs up and the exchange, keeping the polarity, plays
    busy tone: disconnect supervision by tone clears the call and the port hangs up."""
    t = FxoE2E(rundir, answer_rings=1)
    try:
        t.run(0.5)
        t.co.ring(t.now)
        t.run(2.5)
        assert Answered(incoming=True) in t.events and t.co.state == "connected"
        t.events.clear()
        t.run(2.0)
        t.co.far_clear_with_tone(t.now, "busy")
        t.run(4.0)
        assert t.events and t.events[0] == Disconnected("busy")
        assert not t.drv.status().offhook
    finally:
        t.w.close()


def test_dtmf_caller_id_before_the_first_ring(rundir: str) -> None:
    """Where the exchange sends DTMF caller ID (A<number>C) before ringing, the on-hook monitor hears it,
    dsp.callerid decodes it, and the ring carries the number."""
    clip = CallerId(number="01088886666", name=None, when=None, absence=None)
    t = FxoE2E(rundir, answer_rings=1, callerid="dtmf")
    try:
        t.run(0.5)
        t.co.send_audio(CallerIdSender("dtmf").signal(clip))
        t.run(1.5)
        t.co.ring(t.now)
        t.run(2.0)
        assert t.events[:3] == [CallerIdReceived(clip), Ringing(1, clip), Answered(incoming=True)]
    finally:
        t.w.close()
