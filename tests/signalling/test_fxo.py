"""FXO line supervision with events alone (driver line events, DSP events, a fake time)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.callerid import CallerId
from dsp.events import Event
from firmware.signalling.fxo import (
    Answered,
    CallerIdReceived,
    Detect,
    DialFailed,
    Disconnected,
    FxoConfig,
    FxoPort,
    FxoState,
    Hook,
    Idle,
    PlayDigits,
    Progress,
    Ringing,
    RingingStopped,
)

CID = CallerId(number="13800138000", name="ZHANG", when="11230701")


class Line:
    """Drives a port through time: events at given times, timers in between."""

    def __init__(self, **cfg) -> None:
        self.port = FxoPort(FxoConfig(**cfg))
        self.now = 0.0
        self.events: list = []
        self.cmds: list = self.port.commands()

    def until(self, t: float) -> None:
        while True:
            d = self.port.next_deadline()
            if d is None or d > t:
                break
            self.now = max(self.now, d)
            self.port.handle_timers(self.now)
            self._collect()
        self.now = max(self.now, t)
        self._collect()

    def _collect(self) -> None:
        self.events += self.port.events()
        self.cmds += self.port.commands()

    def line(self, t: float, kind: str, value: int = 0) -> None:
        self.until(t)
        self.port.line_event(self.now, kind, value)
        self._collect()

    def dsp(self, t: float, kind: str, value) -> None:
        self.until(t)
        self.port.dsp_event(self.now, Event(0, kind, value, 0))
        self._collect()

    def ring(self, t: float, on_s: float = 1.0) -> None:
        self.line(t, "ring_start")
        self.line(t + on_s, "ring_stop")

    def china_rings(self, n: int, start: float = 0.0) -> float:
        for k in range(n):
            self.ring(start + 5.0 * k)
        return start + 5.0 * n

    def take(self) -> list:
        out, self.events = self.events, []
        return out

    def hooks(self) -> list[bool]:
        return [c.offhook for c in self.cmds if isinstance(c, Hook)]


def test_incoming_fsk_callerid_between_rings_answer_on_second() -> None:
    ln = Line(answer_rings=2)
    assert Detect("callerid", True) in ln.cmds
    ln.ring(0.0)
    ln.dsp(2.0, "callerid", CID)  # Bell 202 in the first silent interval
    ln.ring(5.0)
    assert ln.take() == [Ringing(1, None), CallerIdReceived(CID), Ringing(2, CID), Answered(incoming=True)]
    assert ln.port.state is FxoState.CONNECTED and ln.hooks() == [True]
    assert Detect("cpt", True) in ln.cmds and Detect("callerid", False) in ln.cmds


def test_incoming_dtmf_clip_before_first_ring() -> None:
    ln = Line(answer_rings=1, callerid="dtmf")
    ln.dsp(0.0, "callerid", CallerId(number="01088886666"))
    ln.ring(0.8)
    assert ln.take() == [
        CallerIdReceived(CallerId(number="01088886666")),
        Ringing(1, CallerId(number="01088886666")),
        Answered(incoming=True),
    ]


def test_stale_clip_and_late_callerid_ignored() -> None:
    ln = Line(answer_rings=3)
    ln.dsp(0.0, "callerid", CID)
    ln.ring(20.0)  # 20 s later: that caller ID belonged to nothing
    ln.ring(25.0)
    ln.dsp(27.0, "callerid", CID)  # after the second ring: too late for this call
    ln.ring(30.0)
    got = ln.take()
    assert got == [Ringing(1, None), Ringing(2, None), Ringing(3, None), Answered(incoming=True)]


def test_withheld_number() -> None:
    ln = Line(answer_rings=2)
    withheld = CallerId(absence="private")
    ln.ring(0.0)
    ln.dsp(2.0, "callerid", withheld)
    ln.ring(5.0)
    assert Ringing(2, withheld) in ln.take()


def test_short_ring_bursts_ignored() -> None:
    ln = Line(answer_rings=1)
    for t in (0.0, 1.0, 2.0):
        ln.ring(t, on_s=0.1)  # below the 0.2 s ring debounce
    ln.until(5.0)
    assert ln.take() == [] and ln.port.state is FxoState.IDLE
    ln.ring(6.0, on_s=0.3)
    assert ln.take() == [Ringing(1, None), Answered(incoming=True)]


def test_caller_gives_up() -> None:
    ln = Line(answer_rings=5)
    ln.china_rings(2)
    ln.until(30.0)
    got = ln.take()
    assert got == [Ringing(1, None), Ringing(2, None), RingingStopped(2)]
    assert ln.port.state is FxoState.IDLE and ln.hooks() == []


def test_call_control_answers_when_answer_rings_is_zero() -> None:
    ln = Line(answer_rings=0)
    ln.china_rings(4)
    assert [type(e) for e in ln.take()] == [Ringing] * 4
    ln.port.answer(ln.now)
    ln._collect()
    assert ln.take() == [Answered(incoming=True)] and ln.hooks() == [True]
    with pytest.raises(ValueError):
        ln.port.answer(ln.now)


@pytest.mark.parametrize(
    "how,event,reason",
    [
        ("battery", ("line", "battery_lost", 0), "battery"),
        ("polarity", ("line", "polarity", 1), "polarity"),
        ("busy tone", ("dsp", "tone", "busy"), "busy"),
        ("congestion tone", ("dsp", "tone", "congestion"), "congestion"),
    ],
)
def test_disconnect_supervision(how: str, event: tuple, reason: str) -> None:
    ln = Line(answer_rings=1)
    ln.ring(0.0)
    ln.take()
    src, kind, value = event
    (ln.line if src == "line" else ln.dsp)(60.0, kind, value)
    assert ln.take() == [Disconnected(reason)]
    assert ln.hooks() == [True, False] and ln.port.state is FxoState.GUARD
    ln.line(60.5, "battery_restored")
    ln.until(62.0)
    assert ln.take() == [Idle()] and ln.port.state is FxoState.IDLE


def test_disabled_method_ignored_but_never_stuck_off_hook() -> None:
    ln = Line(answer_rings=1, disconnect=frozenset({"tone"}), max_call_s=600.0)
    ln.ring(0.0)
    ln.line(10.0, "polarity", 1)
    ln.line(11.0, "battery_lost")
    assert ln.port.state is FxoState.CONNECTED
    ln.until(700.0)
    assert Disconnected("max duration") in ln.take()
    assert ln.hooks() == [True, False]


def test_outgoing_with_dial_tone_answered_by_polarity() -> None:
    ln = Line()
    ln.port.dial(0.0, "95588")
    ln._collect()
    assert ln.hooks() == [True]
    ln.dsp(0.4, "tone", "dial")
    assert PlayDigits("95588", 100, 100) in ln.cmds
    ln.until(1.5)  # 5 digits x 200 ms
    assert ln.port.state is FxoState.AWAIT_ANSWER
    ln.dsp(3.0, "tone", "ringback")
    ln.line(9.0, "polarity", 1)
    assert ln.take() == [Progress("ringback"), Answered(incoming=False)]
    ln.port.hangup(20.0)
    ln._collect()
    assert ln.take() == [Disconnected("local")] and ln.hooks() == [True, False]


def test_outgoing_far_end_clears_by_polarity_back() -> None:
    ln = Line()
    ln.port.dial(0.0, "1")
    ln.dsp(0.2, "tone", "dial")
    ln.line(2.0, "polarity", 1)
    ln.line(30.0, "polarity", 0)
    assert ln.take() == [Answered(incoming=False), Disconnected("polarity")]


def test_outgoing_busy() -> None:
    ln = Line()
    ln.port.dial(0.0, "12345")
    ln.dsp(0.3, "tone", "dial")
    ln.dsp(3.0, "tone", "busy")
    assert ln.take() == [DialFailed("busy")] and ln.hooks() == [True, False]


def test_no_dial_tone() -> None:
    ln = Line()
    ln.port.dial(0.0, "123")
    ln.until(5.0)
    assert ln.take() == [DialFailed("no dial tone"), Idle()] and ln.hooks() == [True, False]
    ln2 = Line(dial_without_dial_tone=True, answer_on="dialled")
    ln2.port.dial(0.0, "123")
    ln2.until(5.0)
    assert PlayDigits("123", 100, 100) in ln2.cmds
    assert ln2.take() == [Answered(incoming=False)]


def test_answered_after_dialling_then_busy_tone_disconnects() -> None:
    ln = Line(answer_on="dialled", dtmf_on_ms=80, dtmf_off_ms=80)
    ln.port.dial(0.0, "8001")
    ln.dsp(0.5, "tone", "dial")
    assert PlayDigits("8001", 80, 80) in ln.cmds
    ln.until(1.2)
    assert ln.take() == [Answered(incoming=False)]
    ln.dsp(40.0, "tone", "busy")
    assert ln.take() == [Disconnected("busy")]


def test_no_answer_timeout() -> None:
    ln = Line(answer_timeout_s=30.0)
    ln.port.dial(0.0, "1")
    ln.dsp(0.1, "tone", "dial")
    ln.until(40.0)
    assert ln.take() == [DialFailed("no answer"), Idle()] and ln.hooks() == [True, False]


def test_dial_refused_without_battery_or_when_busy() -> None:
    ln = Line()
    ln.line(0.0, "battery_lost")
    ln.port.dial(0.0, "1")
    assert ln.port.events() == [DialFailed("no battery")] and ln.port.state is FxoState.IDLE
    ln.line(1.0, "battery_restored")
    ln.port.dial(1.0, "1")
    with pytest.raises(ValueError):
        ln.port.dial(1.0, "2")
    with pytest.raises(ValueError):
        FxoPort().dial(0.0, "12x")


@pytest.mark.parametrize(
    "bad",
    [
        {"callerid": "fsk"},
        {"answer_on": "voice"},
        {"disconnect": frozenset({"magic"})},
        {"dtmf_on_ms": 30},
        {"answer_rings": -1},
        {"rx_gain_db": 20.0},
    ],
)
def test_bad_config(bad: dict) -> None:
    with pytest.raises(ValueError):
        FxoConfig(**bad)


inputs = st.lists(
    st.tuples(
        st.floats(0, 20),
        st.sampled_from(
            [
                ("line", "ring_start", 0),
                ("line", "ring_stop", 0),
                ("line", "battery_lost", 0),
                ("line", "battery_restored", 0),
                ("line", "polarity", 0),
                ("line", "polarity", 1),
                ("line", "bogus", 0),
                ("dsp", "tone", "dial"),
                ("dsp", "tone", "busy"),
                ("dsp", "tone", "ringback"),
                ("dsp", "callerid", CID),
                ("cmd", "dial", "123"),
                ("cmd", "answer", None),
                ("cmd", "hangup", None),
            ]
        ),
    ),
    max_size=50,
)


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_never_stuck_off_hook(script) -> None:
    port = FxoPort(FxoConfig(answer_rings=2, max_call_s=3600.0))
    now = 0.0
    hook = False
    for dt, (src, kind, value) in script:
        now += dt
        d = port.next_deadline()
        while d is not None and d <= now:
            port.handle_timers(d)
            d = port.next_deadline()
        try:
            if src == "line":
                port.line_event(now, kind, value)
            elif src == "dsp":
                port.dsp_event(now, Event(0, kind, value, 0))
            elif kind == "dial":
                port.dial(now, value)
            elif kind == "answer":
                port.answer(now)
            else:
                port.hangup(now)
        except ValueError:
            pass  # a command the state does not allow: refused, nothing changed
        for c in port.commands():
            if isinstance(c, Hook):
                assert c.offhook != hook  # hook commands alternate
                hook = c.offhook
        assert hook == port.offhook
        if port.offhook:
            assert port.deadline is not None  # every off-hook state has a way out
        port.events()
    # Left alone, the line always goes back on hook and idle.
    t = now
    for _ in range(100):
        d = port.next_deadline()
        if d is None:
            break
        t = max(t, d)
        port.handle_timers(t)
    for c in port.commands():
        if isinstance(c, Hook):
            hook = c.offhook
    assert not port.offhook and not hook


def test_reversal_on_our_own_answer_is_not_a_clear() -> None:
    ln = Line(answer_rings=1)
    ln.ring(0.0)
    ln.line(0.5, "polarity", 1)  # the exchange confirms our answer
    assert ln.port.state is FxoState.CONNECTED
    ln.line(40.0, "polarity", 0)  # and reverses back when the caller hangs up
    assert ln.take() == [Ringing(1, None), Answered(incoming=True), Disconnected("polarity")]
