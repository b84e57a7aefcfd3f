"""MFC/R2 end to end through the simulated board, in virtual time: the R2 exchange (tools.linesim.r2exchange)
on span 1's socket with TS16 CAS, the board's framer model and C driver, the media engine carrying the MF
signals both ways (dsp.r2mf in the engine's detector pool), the box's R2 stack and call control with the
IVR (in-band DTMF) and an agent extension; and an extension dialling out over R2."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from board.clock import VirtualClock
from board.description import BoardDescription, Card, PanelPins, SpanConfig
from firmware.calls.loopback import PhoneBehaviour
from firmware.signalling.r2 import Line, R2Config

MONDAY_10AM = calendar.timegm((2026, 11, 23, 2, 0, 0))


def cas_board() -> BoardDescription:
    span = SpanConfig(span=1, framing="cas")
    return BoardDescription(
        name="sim-r2",
        backend="sim",
        cards=(Card(slot=1, kind="e1", spans=(span,)),),
        panel=PanelPins(),
        source="<code>",
    )


@pytest.fixture
def r2_world(tmp_path: Path, prompt_dir: Path):
    from firmware.calls.appliance import Appliance
    from tools.linesim.r2exchange import R2Exchange
    from tools.linesim.world import World

    decisions: dict[str, str] = {}
    clock = VirtualClock(start=MONDAY_10AM)
    w = World(cas_board(), tmp_path / "run", clock=clock)
    app = Appliance(
        w.board,
        tmp_path / "data",
        clock=clock,
        prompt_dirs=[prompt_dir],
        extension_rows=8,
        r2_config={1: R2Config(max_dnis=5)},
    )
    ex = R2Exchange(
        w, 0, dnis_digits=8, decide=lambda dnis, ani: decisions.get(dnis, "answer"), answer_after=1.0
    )
    w.on_tick.append(ex.tick)
    w.on_tick.append(app.on_tick)
    w.attach()
    yield w, app, ex, clock, decisions
    w.close()
    app.close()


def test_r2_caller_through_the_board_into_the_ivr_and_to_an_agent(r2_world) -> None:
    w, app, ex, clock, _ = r2_world
    clock.advance(3.0)
    span, trunk, _drv = app.r2[1]
    assert ex.link_up and span.started and len(span.free_channels()) == 30
    app.extensions.add_phone("1001", PhoneBehaviour(answer_after=2.0))
    call = ex.call_in("13812345678", "95588")
    assert call is not None and call.channel == 30
    clock.advance(5.0)  # 17 compelled cycles (DNIS, KA, ANI, end of ANI, KD, B-1) of ~0.18 s each
    # DNIS, KA, ANI and KD went by compelled MF through the B-channel; B-1, then the IVR answered
    assert call.state == "up", (ex.errors, span.channels[30])
    (leg,) = trunk.legs.values()
    mcall = app.mgr.call_of(leg)
    assert mcall.state == "ivr" and mcall.cdr.channel == "DAHDI/1-30"
    assert mcall.cdr.src == "13812345678" and mcall.cdr.dst == "95588"
    clock.advance(11.0)
    call.press("1")
    clock.advance(4.0)
    assert mcall.queue == "service" and mcall.b is not None and mcall.b.number == "1001"
    call.far_hangup()  # clear forward
    clock.advance(1.0)
    assert call.state == "down" and not app.mgr.calls
    cdr = app.mgr.store.cdrs()[0]
    assert cdr.disposition == "ANSWERED" and cdr.dcontext == "from-span1"
    assert span.channels[30].line is Line.IDLE and not ex.errors and trunk.errors == 0


def test_r2_extension_dials_out_answered_then_busy(r2_world) -> None:
    w, app, ex, clock, decisions = r2_world
    clock.advance(3.0)
    span, trunk, _drv = app.r2[1]
    ext = app.extensions.call_in(app.mgr, "1001", "62345678")
    clock.advance(8.0)  # register signalling (no I-15 in China: the exchange ends the number at 8 digits)
    (rc,) = ex.received.values()
    assert rc.dnis == "62345678" and rc.channel == 1 and rc.state == "up"
    assert rc.ani.isdigit()  # the presented number went as ANI after A-6/KA
    out_call = app.mgr.call_of(ext)
    assert out_call.state == "up" and out_call.b.name == "DAHDI/1-1"
    ex.hangup_received(rc.call_id)  # the called party hangs up: clear-back, the box clears forward
    clock.advance(1.0)
    assert rc.state == "down" and span.channels[1].line is Line.IDLE
    cdr = app.mgr.store.cdrs()[-1]
    assert cdr.dst == "62345678" and cdr.disposition == "ANSWERED"

    decisions["62999999"] = "busy"
    app.extensions.call_in(app.mgr, "1001", "62999999")
    clock.advance(6.0)
    busy = [r for r in ex.received.values() if r.dnis == "62999999"]
    assert busy and busy[0].state == "refused"
    clock.advance(5.0)
    cdr = app.mgr.store.cdrs()[-1]
    assert cdr.dst == "62999999" and cdr.disposition == "BUSY"
    assert not trunk.legs and span.channels[1].line is Line.IDLE


def test_r2_trunk_refuses_with_group_b_when_admit_says_so(r2_world) -> None:
    w, app, ex, clock, _ = r2_world
    clock.advance(3.0)
    span, trunk, _drv = app.r2[1]
    trunk.admit = lambda dnis, ani: 17 if ani == "13900000000" else None
    call = ex.call_in("13900000000", "95588")
    clock.advance(5.0)
    assert call.state == "down" and call.cause == 17  # B-2 "subscriber busy" reached the exchange
    assert not app.mgr.calls and not trunk.legs
    clock.advance(0.5)
    assert span.channels[call.channel].line is Line.IDLE and not ex.errors


def test_r2_glare_through_the_board_the_network_keeps_its_call(r2_world) -> None:
    """Both ends seize channel 1 in the same instant (the box for an extension's call out, the exchange for
    a caller): the seizures cross on TS16; the exchange has priority, so the box gives its own call up
    (cause 44) and takes the exchange's as incoming, which reaches the IVR; nothing is left over."""
    from tools.linesim.r2exchange import R2Call

    w, app, ex, clock, _ = r2_world
    clock.advance(3.0)
    span, trunk, _drv = app.r2[1]
    ext = app.extensions.call_in(app.mgr, "1001", "62345678")  # the box hunts up: channel 1
    ours = app.mgr.call_of(ext)
    cid = ex.stack.place_call("95588", ex.now, ani="13812345678", channel=1)
    theirs = ex.calls[cid] = R2Call(ex, cid, 1, "13812345678", "95588")
    ex._flush()
    clock.advance(6.0)
    assert theirs.state == "up", (ex.errors, span.channels[1])
    assert ours not in app.mgr.calls.values()
    (leg,) = trunk.legs.values()
    incoming = app.mgr.call_of(leg)
    assert incoming.state == "ivr" and incoming.cdr.dst == "95588" and incoming.cdr.channel == "DAHDI/1-1"
    theirs.far_hangup()
    clock.advance(2.0)
    assert theirs.state == "down" and not app.mgr.calls and not trunk.legs
    assert span.channels[1].line is Line.IDLE and not ex.errors and trunk.errors == 0
    cdrs = app.mgr.store.cdrs()
    # each call released and written once: ours lost the glare (cause 44), the exchange saw no call of ours
    assert sorted((c.dst, c.disposition, c.cause) for c in cdrs) == [
        ("62345678", "FAILED", 44),
        ("95588", "ANSWERED", 16),
    ]
    assert not ex.received


def test_r2_trunk_fuzz_random_line_signals_and_mf_through_the_board(r2_world) -> None:
    """Seeded chaos on the far end of the cable: random ABCD patterns in TS16 and random MF signals (both
    directions) in the B-channels of channels 1-5 for 4 s of line time, while two real callers come in on
    channels 30 and 29; then the line goes idle. Nothing raises, the box's stack reports the garbage, both
    real calls reach the IVR, and every call is released and written to the CDR exactly once, with no
    channel or leg left over."""
    import random

    w, app, ex, clock, _ = r2_world
    clock.advance(3.0)
    span, trunk, _drv = app.r2[1]
    rng = random.Random(7)
    real = [ex.call_in("13812345678", "95588"), ex.call_in("13900000001", "95588")]
    assert all(c is not None for c in real)
    chans = [1, 2, 3, 4, 5]
    t_end = clock.now() + 4.0
    while clock.now() < t_end:
        what = rng.random()
        if what < 0.45:
            ex.ex.cas_set(rng.choice(chans), rng.randrange(16))
        elif what < 0.85:
            ex.tone[rng.choice(chans)] = (rng.choice("FB"), rng.randrange(1, 16))
        else:
            ex.tone.pop(rng.choice(chans), None)
        clock.advance(rng.choice([0.01, 0.03, 0.06]))
    for c in chans:
        ex.tone.pop(c, None)
        ex.ex.cas_set(c, 0b1001)  # idle
    clock.advance(3.0)
    assert [c.state for c in real] == ["up", "up"], (ex.errors, [span.channels[c].line for c in (29, 30)])
    for c in real:
        c.far_hangup()
    clock.advance(15.0)  # every timer of whatever the garbage started has run out
    assert not trunk.legs and not app.mgr.calls
    assert all(ch.line is Line.IDLE for ch in span.channels.values()), {
        c: ch.line for c, ch in span.channels.items() if ch.line is not Line.IDLE
    }
    cdrs = app.mgr.store.cdrs()
    assert sorted((c.src, c.disposition) for c in cdrs) == [
        ("13812345678", "ANSWERED"),
        ("13900000001", "ANSWERED"),
    ]  # each real call written once; the garbage made no call
    assert trunk.errors > 0  # the garbage was seen and reported, not silently taken
