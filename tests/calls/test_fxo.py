"""An FXO line into call control: ringing, Bell 202 caller ID decoded by the engine's detector, the IVR
answering, in-band DTMF, the CO clearing by battery loss; and a call out over the line."""

from __future__ import annotations

from dsp.callerid import CallerId, CallerIdSender
from firmware.calls.fxo import FxoLines
from firmware.calls.loopback import PhoneBehaviour
from firmware.engine.tones import dtmf_buffer, tone
from firmware.signalling.fxo import FxoConfig, FxoPort


def test_fxo_call_in_with_caller_id_and_out(make_bed) -> None:
    bed = make_bed(trunk_lines=30, fxo_lines=4)
    if not bed.engine.has("callerid"):
        import pytest

        pytest.skip("dsp.callerid not available")
    # without dsp.cpt (call-progress detection) the ports dial blind after the dial-tone wait
    blind = not bed.engine.has("tone")
    ports = [
        FxoPort(FxoConfig(answer_rings=0, dial_without_dial_tone=blind), f"fxo{i + 1}") for i in range(4)
    ]
    lines = FxoLines(ports, 30, bed.mgr, bed.engine, bed.clock, dnis="02161234567")
    bed.mgr.trunks["fxo"] = lines
    bed.mgr.media_watchers.append(lines.on_media_event)

    def tick() -> None:
        lines.pump(bed.clock.now())
        bed.clock.call_later(0.01, tick)

    tick()
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=2.0))
    port, row, now = ports[0], 30, bed.clock.now
    # China ringing: 1 s on, 4 s off; caller ID FSK in the first silence
    port.line_event(now(), "ring_start")
    bed.run(1.0)
    port.line_event(now(), "ring_stop")
    bed.run(0.5)
    bed.port.send(row, CallerIdSender("bell202").signal(CallerId(number="13812345678", name="ZHANG")))
    bed.run(1.5)
    leg = lines.legs.get(0)
    assert leg is not None and leg.state == "up"  # offered after caller ID, answered by the IVR
    assert (0, True) in lines.hook_commands
    call = bed.mgr.call_of(leg)
    assert call.cdr.src == "13812345678" and call.cdr.clid == '"ZHANG" <13812345678>'
    assert call.cdr.dst == "02161234567" and call.state == "ivr"
    bed.run(10.0)
    bed.port.send(row, dtmf_buffer("1"))
    bed.run(4.0)
    assert call.b is not None and call.b.number == "1001"
    port.line_event(now(), "battery_lost")  # the caller hung up: the CO drops battery
    bed.run(0.2)
    assert not bed.mgr.calls and (0, False) in lines.hook_commands
    port.line_event(now(), "battery_restored")
    assert bed.mgr.store.cdrs()[0].disposition == "ANSWERED"
    bed.run(2.0)  # guard time

    # out: extension 1002 dials over the FXO group (trunk group of the extension)
    bed.mgr.plan.extensions["1002"]["trunk_group"] = "fxo_only"
    bed.mgr.plan.trunk_groups["fxo_only"] = {"trunks": ["fxo"], "present_default": "02161234567"}
    ext = bed.phones.call_in(bed.mgr, "1002", "62345678")
    bed.run(0.1)
    out_port = next(p for p in ports if p.offhook)
    i = ports.index(out_port)
    import numpy as np

    bed.port.send(30 + i, np.tile(tone("dial"), 3)[:20000])  # the CO's dial tone -> the port dials
    bed.run(4.0 if blind else 1.0)
    bed.run(3.0)  # DTMF digits played into the line at Q.23 timing
    out_port.line_event(now(), "polarity", 1)  # the far end answered: polarity reversal
    bed.run(0.2)
    out_call = bed.mgr.call_of(ext)
    assert out_call is not None, (out_port.state, bed.mgr.log[-4:], blind)
    assert out_call is not None and out_call.b is not None and out_call.b.name == f"DAHDI/fxo-{i + 1}"
    ext.far_hangup()
    bed.run(0.2)
    assert not out_port.offhook
    assert bed.mgr.store.cdrs()[-1].disposition == "ANSWERED"
