"""The MFC/R2 stack (firmware.signalling.r2) with events and time alone: two R2Spans back to back (the box and
the network), a wire that carries ABCD bits with a small delay and MF signals with a receiver's recognition
and release delays (only to a receiver listening in that direction). Inbound, outbound, refusals, timers,
glare, clearing from either side, blocking, alarms and malformed input."""

from __future__ import annotations

import heapq
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.signalling import r2

CAS_DELAY = 0.004  # two CAS multiframes of debounce
MF_ON = 0.035  # recognition time of the MF receiver
MF_OFF = 0.025  # release time


class Wire:
    def __init__(self, box_cfg: r2.R2Config | None = None, net_cfg: r2.R2Config | None = None) -> None:
        self.box = r2.R2Span(box_cfg or r2.R2Config(), "box")
        self.net = r2.R2Span(net_cfg or r2.R2Config(glare_priority=True, hunt="down"), "net")
        self.now = 0.0
        self.q: list = []
        self.seq = itertools.count()
        self.listen = {id(self.box): {}, id(self.net): {}}
        self.playing = {id(self.box): {}, id(self.net): {}}
        self.ev = {"box": [], "net": []}
        self.tx = {"box": {}, "net": {}}
        self.cut = False
        self.box.start(0.0)
        self.net.start(0.0)
        self.pump()

    def peer(self, span: r2.R2Span) -> r2.R2Span:
        return self.net if span is self.box else self.box

    def at(self, t: float, fn) -> None:
        heapq.heappush(self.q, (t, next(self.seq), fn))

    def pump(self) -> None:
        for span in (self.box, self.net):
            for c in span.commands():
                other = self.peer(span)
                if isinstance(c, r2.SetAbcd):
                    self.tx[span.name][c.channel] = c.abcd
                    if not self.cut:
                        self.at(
                            self.now + CAS_DELAY,
                            lambda o=other, c=c: o.line_signal(c.channel, c.abcd, self.now),
                        )
                elif isinstance(c, r2.DetectMf):
                    self.listen[id(span)][c.channel] = c.direction
                elif isinstance(c, r2.PlayMf):
                    self.playing[id(span)][c.channel] = (c.direction, c.signal)
                    self._mf(other, c)
            self.ev[span.name] += span.events()
            span.check_invariants()

    def _mf(self, receiver: r2.R2Span, c: r2.PlayMf) -> None:
        def deliver(signal: int) -> None:
            if self.listen[id(receiver)].get(c.channel) == c.direction:
                receiver.mf(c.channel, signal, self.now)

        if c.signal is None:
            self.at(self.now + MF_OFF, lambda: deliver(0))
        else:
            self.at(self.now + MF_ON, lambda s=c.signal: deliver(s))

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            deadlines = [d for d in (self.box.next_deadline(), self.net.next_deadline()) if d is not None]
            t_q = self.q[0][0] if self.q else None
            t = min([x for x in [t_q, *deadlines] if x is not None], default=None)
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            while self.q and self.q[0][0] <= self.now:
                heapq.heappop(self.q)[2]()
                self.pump()
            for span in (self.box, self.net):
                d = span.next_deadline()
                if d is not None and d <= self.now:
                    span.handle_timers(self.now)
            self.pump()
        self.now = end

    def of(self, who: str, kind: type) -> list:
        return [e for e in self.ev[who] if isinstance(e, kind)]


def net_accepts(w: Wire, charge: bool = True, answer: bool = False):
    """Network side: accept (and maybe answer) every incoming call as soon as it is offered."""
    done = set()

    def hook() -> None:
        for e in w.of("net", r2.IncomingCall):
            if e.call_id not in done:
                done.add(e.call_id)
                w.net.accept(e.call_id, w.now, charge)
                if answer:
                    w.net.answer(e.call_id, w.now)
                w.pump()

    return hook


def run_with(w: Wire, seconds: float, hook, step: float = 0.01) -> None:
    for _ in range(int(seconds / step)):
        w.run(step)
        hook()


# ---- inbound: the network calls the box ---------------------------------------------------------------
def test_inbound_call_dnis_ani_category_answer_and_clear_forward() -> None:
    w = Wire(box_cfg=r2.R2Config(max_dnis=5))
    call = w.net.place_call("95588", 0.0, ani="13812345678")
    w.pump()
    w.run(5.0)
    (inc,) = w.of("box", r2.IncomingCall)
    assert (inc.dnis, inc.ani, inc.category, inc.kd) == ("95588", "13812345678", 1, 3)
    assert inc.channel == 30  # the network hunts from the top
    w.box.accept(inc.call_id, w.now)
    w.pump()
    w.run(1.0)
    assert w.of("box", r2.Accepted) == [r2.Accepted(inc.call_id, True)]
    assert w.of("net", r2.Accepted) == [r2.Accepted(call, True)]
    w.box.answer(inc.call_id, w.now)
    w.pump()
    w.run(0.1)
    assert w.of("net", r2.Answered) == [r2.Answered(call)]
    assert w.tx["box"][30] == 0b0101 and w.tx["net"][30] == 0b0001
    w.net.hangup(call, w.now)  # the caller hangs up: clear forward
    w.pump()
    w.run(0.1)
    assert w.of("box", r2.Released) == [r2.Released(inc.call_id, 16)]
    assert w.of("net", r2.Released) == [r2.Released(call, 16)]
    assert w.tx["box"][30] == w.tx["net"][30] == 0b1001
    assert w.box.channels[30].line is r2.Line.IDLE and w.net.channels[30].line is r2.Line.IDLE


def test_dnis_ended_by_silence_with_pulsed_a3() -> None:
    w = Wire()  # max_dnis 0: the number ends after t_digit of silence
    w.net.place_call("12345", 0.0, ani="02161234567")
    w.pump()
    w.run(10.0)
    (inc,) = w.of("box", r2.IncomingCall)
    assert inc.dnis == "12345" and inc.ani == "02161234567"


def test_answer_while_offered_and_clear_back_from_the_box() -> None:
    w = Wire(box_cfg=r2.R2Config(max_dnis=4))
    call = w.net.place_call("1000", 0.0, ani="555")
    w.pump()
    w.run(3.0)
    (inc,) = w.of("box", r2.IncomingCall)
    w.box.answer(inc.call_id, w.now)  # accepts first, answers once the B signal's cycle is over
    w.pump()
    w.run(1.0)
    assert w.of("net", r2.Answered) == [r2.Answered(call)]
    w.box.hangup(inc.call_id, w.now)  # clear back; the network releases with clear forward
    w.pump()
    w.run(1.0)
    assert w.of("box", r2.Released) == [r2.Released(inc.call_id, 16)]
    assert w.of("net", r2.Released) == [r2.Released(call, 16)]
    assert all(c.line is r2.Line.IDLE for c in w.box.channels.values())


@pytest.mark.parametrize(
    ("cause", "expect"), [(17, 17), (1, 1), (27, 27), (42, 42), (34, 42)]
)  # busy, unallocated, out of order, congestion (and anything else -> congestion)
def test_inbound_refused_with_group_b(cause: int, expect: int) -> None:
    w = Wire(box_cfg=r2.R2Config(max_dnis=3))
    call = w.net.place_call("123", 0.0)
    w.pump()
    w.run(3.0)
    (inc,) = w.of("box", r2.IncomingCall)
    w.box.reject(inc.call_id, w.now, cause)
    w.pump()
    w.run(1.0)
    assert w.of("box", r2.Released) == [r2.Released(inc.call_id, cause)]
    assert w.of("net", r2.Released) == [r2.Released(call, expect)]
    assert w.box.channels[inc.channel].line is r2.Line.IDLE


def test_call_control_silent_gets_congestion() -> None:
    w = Wire(box_cfg=r2.R2Config(max_dnis=3))
    call = w.net.place_call("123", 0.0)
    w.pump()
    w.run(10.0)
    (inc,) = w.of("box", r2.IncomingCall)
    assert w.of("box", r2.Released) == [r2.Released(inc.call_id, 42)]
    assert w.of("net", r2.Released) == [r2.Released(call, 42)]


# ---- outbound: the box calls the network ---------------------------------------------------------------
def test_outbound_answered_and_cleared_by_the_far_end() -> None:
    w = Wire(net_cfg=r2.R2Config(glare_priority=True, hunt="down", max_dnis=8))
    call = w.box.place_call("62345678", 0.0, ani="02150001000")
    w.pump()
    run_with(w, 3.0, net_accepts(w))
    (inc,) = w.of("net", r2.IncomingCall)
    assert (inc.dnis, inc.ani, inc.channel) == ("62345678", "02150001000", 1)
    assert w.of("box", r2.Accepted) == [r2.Accepted(call, True)]
    w.net.answer(inc.call_id, w.now)
    w.pump()
    w.run(0.1)
    assert w.of("box", r2.Answered) == [r2.Answered(call)]
    w.net.hangup(inc.call_id, w.now)  # called party hangs up: clear back, the box clears forward
    w.pump()
    w.run(0.5)
    assert w.of("box", r2.Released) == [r2.Released(call, 16)]
    assert w.of("net", r2.Released) == [r2.Released(inc.call_id, 16)]
    assert w.box.channels[1].line is r2.Line.IDLE


def test_outbound_no_charge_and_ani_restricted() -> None:
    w = Wire(net_cfg=r2.R2Config(glare_priority=True, hunt="down", max_dnis=3))
    call = w.box.place_call("110", 0.0, ani="123", ani_restricted=True)
    w.pump()
    run_with(w, 3.0, net_accepts(w, charge=False))
    (inc,) = w.of("net", r2.IncomingCall)
    assert inc.ani_restricted and inc.ani == "123"
    assert w.of("box", r2.Accepted) == [r2.Accepted(call, False)]


@pytest.mark.parametrize(("cause", "expect"), [(17, 17), (42, 42), (1, 1), (27, 27)])
def test_outbound_busy_congestion_unallocated(cause: int, expect: int) -> None:
    w = Wire(net_cfg=r2.R2Config(glare_priority=True, hunt="down", max_dnis=4))
    call = w.box.place_call("8888", 0.0)
    w.pump()
    w.run(3.0)
    (inc,) = w.of("net", r2.IncomingCall)
    w.net.reject(inc.call_id, w.now, cause)
    w.pump()
    w.run(1.0)
    assert w.of("box", r2.Released) == [r2.Released(call, expect)]
    assert not w.of("box", r2.Accepted)
    assert w.box.channels[1].line is r2.Line.IDLE and w.net.channels[1].line is r2.Line.IDLE


def test_outbound_answer_timeout() -> None:
    w = Wire(box_cfg=r2.R2Config(t_answer=20.0), net_cfg=r2.R2Config(glare_priority=True, max_dnis=2))
    call = w.box.place_call("12", 0.0)
    w.pump()
    run_with(w, 2.0, net_accepts(w))
    assert w.of("box", r2.Accepted)
    w.run(30.0)
    assert w.of("box", r2.Released) == [r2.Released(call, 19)]


def test_seize_ack_timeout_when_nobody_answers_the_line() -> None:
    w = Wire()
    w.cut = True  # our ABCD never reaches the far end
    call = w.box.place_call("12", 0.0)
    w.pump()
    w.run(7.9)
    assert not w.of("box", r2.Released)
    w.run(0.2)
    assert w.of("box", r2.Released) == [r2.Released(call, 102)]
    assert any("seizure" in e.reason for e in w.of("box", r2.ProtocolError))
    assert w.box.channels[1].line is r2.Line.IDLE


def test_t1_no_backward_signal() -> None:
    w = Wire()
    call = w.box.place_call("12", 0.0)
    w.pump()
    w.listen[id(w.net)][1] = None  # the network's MF receiver is deaf
    w.net.commands()
    orig = w.net.mf
    w.net.mf = lambda *a: None  # noqa: ARG005
    w.run(20.0)
    w.net.mf = orig
    assert w.of("box", r2.Released) == [r2.Released(call, 102)]
    assert any("T1" in e.reason for e in w.of("box", r2.ProtocolError))


def test_incoming_mf_cycle_timeout() -> None:
    w = Wire()
    w.box.line_signal(5, 0b0001, 0.0)  # a seizure and then no MF at all
    w.box.commands()
    w.box.handle_timers(4.9)
    assert w.box.channels[5].line is r2.Line.IN_MF
    w.box.handle_timers(5.1)
    assert w.box.channels[5].line is r2.Line.IN_CLEARING
    assert any("cycle" in e.reason for e in w.box.events() if isinstance(e, r2.ProtocolError))
    w.box.line_signal(5, 0b1001, 6.0)  # clear forward
    assert w.box.channels[5].line is r2.Line.IDLE


def test_no_free_channel_and_bad_numbers() -> None:
    w = Wire()
    for c in range(1, 31):
        w.box.block(c, 0.0)
    call = w.box.place_call("123", 0.0)
    assert w.box.events()[-1] == r2.Released(call, 34)
    with pytest.raises(ValueError):
        w.box.place_call("12a", 0.0)
    with pytest.raises(ValueError):
        w.box.place_call("", 0.0)
    with pytest.raises(ValueError):
        w.box.place_call("1" * 31, 0.0)
    with pytest.raises(r2.LocalProtocolError):
        w.box.accept(999, 0.0)
    w.box.hangup(999, 0.0)  # always safe


# ---- glare, blocking, alarm --------------------------------------------------------------------------
def test_glare_the_network_keeps_its_call() -> None:
    w = Wire(
        box_cfg=r2.R2Config(max_dnis=3),
        net_cfg=r2.R2Config(glare_priority=True, hunt="down", max_dnis=3),
    )
    ours = w.box.place_call("111", 0.0, channel=7)
    theirs = w.net.place_call("222", 0.0, channel=7)
    w.pump()
    w.run(3.0)
    assert w.of("box", r2.Released) == [r2.Released(ours, 44)]
    (inc,) = w.of("box", r2.IncomingCall)
    assert inc.channel == 7 and inc.dnis == "222"
    w.box.answer(inc.call_id, w.now)
    w.pump()
    w.run(1.0)
    assert w.of("net", r2.Answered) == [r2.Answered(theirs)]


def test_blocking_both_ways() -> None:
    w = Wire()
    w.net.block(1, 0.0)
    w.pump()
    w.run(0.1)
    assert r2.Blocked(1, remote=True, blocked=True) in w.ev["box"]
    assert 1 not in w.box.free_channels()
    call = w.box.place_call("12", w.now)
    w.pump()
    assert w.box.calls[call] == 2  # hunted past the blocked channel
    w.net.unblock(1, w.now)
    w.pump()
    w.run(0.1)
    assert r2.Blocked(1, remote=True, blocked=False) in w.ev["box"]
    # a seizure on a channel we block is ignored
    w.box.block(3, w.now)
    w.pump()
    w.box.line_signal(3, 0b0001, w.now)
    assert w.box.channels[3].line is r2.Line.BLOCKED


def test_alarm_clears_every_call_and_start_brings_channels_back() -> None:
    w = Wire(box_cfg=r2.R2Config(max_dnis=3))
    w.net.place_call("123", 0.0)
    w.pump()
    w.run(3.0)
    (inc,) = w.of("box", r2.IncomingCall)
    w.box.answer(inc.call_id, w.now)
    w.pump()
    w.run(0.5)
    w.box.alarm(w.now)
    w.pump()
    assert r2.Released(inc.call_id, 41) in w.ev["box"]
    assert all(c.line is r2.Line.ALARM for c in w.box.channels.values())
    assert w.box.place_call("1", w.now) in [e.call_id for e in w.box.events() if isinstance(e, r2.Released)]
    w.box.start(w.now, rx={c: 0b1001 for c in range(1, 31)})
    assert all(c.line is r2.Line.IDLE for c in w.box.channels.values())


# ---- malformed and unexpected input ----------------------------------------------------------------------
def test_unexpected_abcd_clears_with_a_protocol_error() -> None:
    w = Wire(net_cfg=r2.R2Config(glare_priority=True, max_dnis=4))
    call = w.box.place_call("1234", 0.0)
    w.pump()
    w.run(0.5)  # in register signalling now
    assert w.box.channels[1].line is r2.Line.OUT_MF
    w.box.line_signal(1, 0b1001, w.now)  # the far end drops to idle mid-register: not allowed
    w.pump()
    assert w.of("box", r2.Released) == [r2.Released(call, 111)]
    assert w.of("box", r2.ProtocolError)
    # idle channel receiving "answer": faulty until it shows idle again
    w.box.line_signal(9, 0b0101, w.now)
    assert w.box.channels[9].line is r2.Line.FAULT and 9 not in w.box.free_channels()
    w.box.line_signal(9, 0b1001, w.now)
    assert w.box.channels[9].line is r2.Line.IDLE


def test_out_of_sequence_mf_clears_with_a_protocol_error() -> None:
    w = Wire()
    w.box.line_signal(4, 0b0001, 0.0)
    w.box.mf(4, 12, 0.1)  # I-12 is not a called digit
    ev = w.box.events()
    assert any(isinstance(e, r2.ProtocolError) for e in ev)
    assert w.box.channels[4].line is r2.Line.IN_CLEARING
    assert not any(isinstance(e, r2.Released) for e in ev)  # call control never knew this call


def test_garbage_never_raises() -> None:
    span = r2.R2Span()
    span.start(0.0)
    span.line_signal(0, 0b0001, 0.0)
    span.line_signal(31, 0b0001, 0.0)
    span.line_signal(1, 99, 0.0)
    span.line_signal(1, -1, 0.0)
    span.mf(1, 3, 0.0)
    span.mf(1, 77, 0.0)
    span.mf(99, 1, 0.0)
    assert all(isinstance(e, r2.ProtocolError) for e in span.events())
    span.check_invariants()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["abcd", "mf", "timer", "place", "hangup", "accept", "answer"]),
            st.integers(1, 30),
            st.integers(-2, 17),
            st.floats(0.0, 20.0),
        ),
        max_size=60,
    )
)
def test_fuzz_random_line_and_mf_never_raise(steps) -> None:
    span = r2.R2Span(r2.R2Config(max_dnis=3))
    span.start(0.0)
    now = 0.0
    calls: list[int] = []
    released: list[int] = []
    for kind, chan, value, dt in steps:
        now += dt
        if kind == "abcd":
            span.line_signal(chan, value, now)
        elif kind == "mf":
            span.mf(chan, value, now)
        elif kind == "timer":
            span.handle_timers(now)
        elif kind == "place":
            calls.append(span.place_call("123", now))
        else:
            for e in span.events():
                if isinstance(e, r2.IncomingCall):
                    calls.append(e.call_id)
                if isinstance(e, r2.Released):
                    released.append(e.call_id)
            if calls:
                cid = calls[value % len(calls)]
                try:
                    getattr(span, kind)(cid, now)
                except r2.LocalProtocolError:
                    pass
        span.check_invariants()
    # left alone, every call state before answer times out (nothing stays half set up)
    for _ in range(10):
        now += 100.0
        span.handle_timers(now)
    pending = {r2.Line.OUT_SEIZED, r2.Line.OUT_MF, r2.Line.OUT_ACCEPTED, r2.Line.IN_MF, r2.Line.IN_OFFERED,
               r2.Line.IN_ACCEPTED}  # fmt: skip
    assert not [c for c in span.channels.values() if c.line in pending]
    released += [e.call_id for e in span.events() if isinstance(e, r2.Released)]
    assert len(released) == len(set(released))  # never released twice
