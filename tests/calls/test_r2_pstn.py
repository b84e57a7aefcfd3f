"""tools.pstn's network with an MFC/R2 span (`--span 1=r2`, tools.linesim.r2pstn) against the box on the
simulated board, in virtual time: a caller of the network reaches the box's IVR over compelled R2 MF on a
CAS span, presses a key (in-band DTMF through the G.168 hybrid) and hangs up; one CDR."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from board.clock import VirtualClock
from board.description import BoardDescription, Card, PanelPins, SpanConfig
from firmware.signalling.r2 import Line, R2Config
from tools import pstn

MONDAY_10AM = calendar.timegm((2026, 11, 23, 2, 0, 0))


def cas_board() -> BoardDescription:
    return BoardDescription(
        name="sim-r2",
        backend="sim",
        cards=(Card(slot=1, kind="e1", spans=(SpanConfig(span=1, framing="cas"),)),),
        panel=PanelPins(),
        source="<code>",
    )


@pytest.fixture
def r2_network(tmp_path: Path, prompt_dir: Path, conformance_dir: Path):
    from firmware.calls.appliance import Appliance
    from tools.linesim.world import World

    clock = VirtualClock(start=MONDAY_10AM)
    w = World(cas_board(), tmp_path / "run", clock=clock)
    app = Appliance(
        w.board, tmp_path / "data", clock=clock, prompt_dirs=[prompt_dir], extension_rows=8,
        r2_config={1: R2Config(max_dnis=5)},
    )  # fmt: skip
    hybrids = pstn.load_hybrids(conformance_dir / "g168" / "hybrid_models.json")
    assert hybrids is not None
    cls = pstn.load_exchange("r2")  # as `callbox pstn --span 1=r2` builds it
    framer = w.e1[0].ex
    assert cls.framing == "cas"  # the world made span 1 CAS from the board description
    ex = cls(framer, w.n, "span1", hybrids, pstn.SpeechSource(seconds=10.0), 3)
    w.e1[0].on_receive = lambda f, k: ex.heard(f.voice(k))  # as tools.pstn.SpanEnd does
    w.on_tick.append(ex.tick)
    w.on_tick.append(app.on_tick)
    w.attach()
    yield w, app, pstn.Pstn([ex]), ex, clock
    w.close()
    app.close()


def test_pstn_caller_over_r2_reaches_the_ivr_presses_a_key_and_hangs_up(r2_network) -> None:
    w, app, network, ex, clock = r2_network
    clock.advance(3.0)
    span, trunk, _drv = app.r2[1]
    assert ex.link_up and ex.status()["link"] and len(span.free_channels()) == 30
    leg = network.call_in("13812345678", "95588")
    assert isinstance(leg, pstn.CallerLeg) and leg.state == "dialling" and leg.channel == 30
    clock.advance(5.0)  # compelled MF: DNIS, KA, ANI, KD, B-1; then the IVR answers
    assert leg.state == "up", (ex.errors, span.channels[30])
    (bleg,) = trunk.legs.values()
    call = app.mgr.call_of(bleg)
    assert call.state == "ivr" and call.cdr.src == "13812345678" and call.cdr.dst == "95588"
    assert call.cdr.channel == "DAHDI/1-30"
    clock.advance(8.0)  # the welcome prompt plays
    leg.press("1")  # DTMF on the caller's line, through the hybrid, into the box's detector
    clock.advance(3.0)
    assert call.queue == "service" and call.state in ("queue", "ringing", "up")
    assert leg.heard_sound_after_press  # the caller heard the box (announcement / music) after the key
    leg.far_hangup()  # clear forward
    clock.advance(1.0)
    assert leg.state == "down" and not app.mgr.calls and not ex.calls
    (cdr,) = app.mgr.store.cdrs()
    assert cdr.disposition == "ANSWERED" and cdr.dcontext == "from-span1" and cdr.src == "13812345678"
    assert span.channels[30].line is Line.IDLE and not ex.errors and trunk.errors == 0
