"""The telephone network of tools.pstn against the box on the simulated board, in virtual time: FXO callers
(China ring, Bell 202 caller ID, answer, IVR, queue), RESTART of every B-channel whenever a span's D-channel
comes up, the G.168 hybrid echo the callers' lines return, and bad --span settings."""

from __future__ import annotations

import calendar
from pathlib import Path

import numpy as np
import pytest

from board.clock import VirtualClock
from dsp.g711 import alaw_decode
from tools import pstn

MONDAY_10AM = calendar.timegm((2026, 11, 23, 2, 0, 0))  # office hours in Asia/Shanghai


@pytest.fixture
def box(tmp_path: Path, prompt_dir: Path, conformance_dir: Path):
    from board.description import simple_board
    from firmware.calls.appliance import Appliance
    from tools.linesim.world import World

    clock = VirtualClock(start=MONDAY_10AM)
    w = World(simple_board(1, 2), tmp_path / "run", clock=clock)  # 1 PRI span, 2 CO lines
    app = Appliance(w.board, tmp_path / "data", clock=clock, prompt_dirs=[prompt_dir], extension_rows=8)
    hybrids = pstn.load_hybrids(conformance_dir / "g168" / "hybrid_models.json")
    assert hybrids is not None
    network, fxo = pstn.Pstn.on_world(w, hybrids, seed=3)
    w.on_tick.append(app.on_tick)
    w.attach()
    yield w, app, network, fxo, clock
    w.close()
    app.close()


def test_fxo_caller_rings_with_caller_id_reaches_the_ivr_and_a_queue(box) -> None:
    w, app, network, fxo, clock = box
    app.extensions.add_phone("1001", __import__("firmware.calls.loopback", fromlist=["x"]).PhoneBehaviour())
    clock.advance(1.0)
    leg = fxo.call_in("13812345678", "")
    assert leg is not None and leg.state == "dialling"
    line = network.co.lines[leg.index]
    clock.advance(3.0)  # first ring (1 s), caller ID in the gap, the box answers
    kinds = [e.kind for e in line.events]
    assert kinds[:3] == ["ring_on", "ring_off", "callerid"] and "answered" in kinds
    assert leg.state == "up"
    call = next(iter(app.mgr.calls.values()))
    assert call.cdr.src == "13812345678" and call.cdr.dcontext == "from-fxo" and call.state == "ivr"
    clock.advance(8.0)  # the welcome prompt plays
    leg.press("1")
    clock.advance(3.0)
    assert call.state in ("queue", "ringing", "up") and call.queue == "service"
    leg.far_hangup()  # polarity back to normal: the box clears and logs the call
    clock.advance(3.0)
    assert leg.state == "down" and not app.mgr.calls
    (cdr,) = app.mgr.store.cdrs()
    assert cdr.disposition == "ANSWERED" and cdr.channel == "DAHDI/fxo-1" and cdr.lastapp in ("Queue", "IVR")
    assert line.state == "idle" and not line.box_offhook


@pytest.mark.slow
def test_fxo_line_busy_while_in_use_and_a_caller_who_gives_up_while_ringing(box) -> None:
    w, app, network, fxo, clock = box
    clock.advance(1.0)
    legs = [fxo.call_in(f"1370000000{i}", "") for i in range(3)]
    assert legs[0] and legs[1] and legs[2] is None  # two CO lines: the third caller finds no line
    legs[0].far_hangup()  # gives up during the first ring
    clock.advance(0.5)
    again = fxo.call_in("13700000009", "")  # the line is free again
    clock.advance(4.0)
    assert legs[0].state == "down" and legs[1].state == "up" and again is not None and again.state == "up"
    assert len(app.mgr.calls) == 2  # the one who hung up early never reached call control
    legs[1].far_hangup()
    again.far_hangup()
    clock.advance(2.0)
    assert not app.mgr.calls and app.mgr.store.cdr_count() == 2


def test_every_span_restarts_its_b_channels_when_the_d_channel_comes_up(box) -> None:
    w, app, network, fxo, clock = box
    clock.advance(4.0)
    for s, (span, trunk, _drv, _b) in app.pri.items():
        assert trunk.link_up and trunk.restarts == 1 and trunk.restarted is True, s
        assert not span.maintenance  # acknowledged: every B-channel idle and in service
    assert [e.restarts for e in network.exchanges] == [1]  # the network saw RESTART and acknowledged
    # a call stands on span 1; the cable is pulled (as when the box or the exchange dies) and put back
    leg = network.call_in("13812345678", "95588")
    assert leg is not None
    clock.advance(2.0)
    assert leg.state == "up" and len(app.mgr.calls) == 1
    end = w.e1[0]
    end.close()
    network.exchanges[0].line_lost(clock.now())
    clock.advance(3.0)  # red alarm after 2.5 s without signal: the box clears the span
    assert leg.state == "down" and not app.mgr.calls  # the box cleared it and wrote its CDR
    assert app.mgr.store.cdr_count() == 1
    end.connect()
    network.exchanges[0].line_back(clock.now())
    clock.advance(8.0)  # the red alarm clears 5 s after the signal returns, then the D-channel comes up
    span, trunk = app.pri[1][0], app.pri[1][1]
    assert trunk.link_up and trunk.restarts == 2 and trunk.restarted is True and not span.maintenance
    assert network.exchanges[0].restarts == 2
    assert all(call is None for call in span.owner.values())
    leg2 = network.call_in("13812345679", "95588")  # calls flow again
    clock.advance(2.0)
    assert leg2 is not None and leg2.state == "up"


def test_callers_lines_return_echo_of_what_the_box_sends(conformance_dir: Path) -> None:
    """The hybrid returns the box's signal at the ERL the model was given (6-15 dB), delayed, plus the
    talker: an echo canceller has something to cancel, and only what came from the box is echoed."""
    from dsp import g168

    hybrids = pstn.load_hybrids(conformance_dir / "g168" / "hybrid_models.json")
    bank = pstn.HybridBank(30, hybrids, alaw=True, seed=1)
    far = np.tile(g168.css(4.0, -15.0), (30, 1))
    quiet = np.zeros_like(far)
    echo = np.concatenate(
        [bank.run(far[:, k : k + 80], quiet[:, k : k + 80]) for k in range(0, far.shape[1], 80)], axis=1
    )
    erl = 10 * np.log10(
        np.mean(far[:, 8000:].astype(float) ** 2, axis=1) / np.mean(echo[:, 8000:].astype(float) ** 2, axis=1)
    )
    assert np.all(erl > 4.0) and np.all(erl < 17.0)
    none = pstn.HybridBank(30, None, alaw=True)
    silence = quiet[:, :80]
    assert not none.enabled and none.run(far[:, :80], silence) is silence


def test_speech_is_speech_like_and_dtmf_free() -> None:
    """The callers' voice: talk spurts and pauses at a speech level, and no DTMF in it (talk-off)."""
    from dsp.dtmf import DtmfDetector

    source = pstn.SpeechSource(seconds=20.0)
    x = source.loop
    blocks = x[: x.size // 80 * 80].reshape(-1, 80).astype(float)
    active = 10 * np.log10(np.maximum(np.mean(blocks**2, axis=1), 1e-9))
    share = np.mean(active > 10 * np.log10(np.mean(blocks**2)) - 15)
    assert 0.3 < share < 0.8  # talk spurts and silences
    det = DtmfDetector(1)
    events = det.process(x[None, :])
    assert not [e for e in events if e.kind == "dtmf"]


def test_bad_span_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="SPAN=KIND"):
        pstn.parse_spans(["two=pri"])
    with pytest.raises(ValueError, match="unknown span signalling 'xx'"):
        pstn.parse_spans(["2=xx"])
    assert pstn.parse_spans(["1=pri"]) == {1: "pri"}


def test_heard_voice_is_handed_out_in_blocks() -> None:
    heard = pstn._Heard(32, 0xD5, np.uint8)
    heard.add(np.full((32, 120), 7, np.uint8))
    first, second = heard.take(80), heard.take(80)
    assert (first == 7).all() and (second[:, :40] == 7).all() and (second[:, 40:] == 0xD5).all()
    assert alaw_decode(second[:, 40:]).max() < 16
