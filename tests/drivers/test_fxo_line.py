"""FXO ports end to end: the box's C DAA model and C driver (through cffi) against the CO line far end, over
the real port sockets, in virtual time."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.g711 import alaw_decode, alaw_encode

SECOND = 100


def run_collect(w, seconds: float) -> list:
    events = []
    for _ in range(round(seconds * SECOND)):
        w.tick()
        events += w.board.fxo.events()
    return events


def kinds(events, port=1, drop=("hook",)) -> list[tuple[str, float]]:
    return [(e.kind, e.seconds) for e in events if e.port == port and e.kind not in drop]


def test_ring_detection_with_the_china_cadence(make_world):
    w = make_world(spans=0, ports=4)
    w.run(0.5)  # battery settles
    w.board.fxo.events()
    w.co[0].line.ring(1.0)
    w.run(0.5)
    events = run_collect(w, 11.0)
    rings = [(k, t) for k, t in kinds(events) if k.startswith("ring")]
    assert [k for k, _ in rings] == ["ring_start", "ring_stop", "ring_start", "ring_stop", "ring_start"]
    starts = [t for k, t in rings if k == "ring_start"]
    stops = [t for k, t in rings if k == "ring_stop"]
    for want, got in zip([1.0, 6.0, 11.0], starts, strict=True):
        assert want + 0.1 <= got <= want + 0.25  # validated after the confirmation time (150 ms)
    for want, got in zip([2.0, 7.0], stops, strict=True):
        assert want <= got <= want + 0.25  # ring timeout (128 ms) after the voltage stops
    st = w.board.fxo.port(1).status()
    assert st.ringing and st.battery
    assert not any(e.port != 1 for e in events)  # the other lines stayed quiet


def test_false_ring_burst_is_rejected(make_world):
    w = make_world(spans=0, ports=4)
    w.run(0.5)
    w.board.fxo.events()
    w.co[1].line.ring_burst(w.tick_time(w.ticks), 0.06)
    events = run_collect(w, 1.5)
    k = [e.kind for e in events if e.port == 2]
    assert "ring_start" not in k
    assert "ring_reject" in k
    assert not w.board.fxo.port(2).status().ringing


def test_battery_loss_and_restore(make_world):
    w = make_world(spans=0, ports=4)
    w.run(0.5)
    assert w.board.fxo.port(1).status().battery
    assert abs(w.board.fxo.port(1).status().line_volts + 48) < 3
    w.board.fxo.events()
    w.co[0].line.set_battery(1.0, False)
    events = run_collect(w, 0.5)
    assert [k for k, _ in kinds(events)] == ["battery_lost"]
    assert not w.board.fxo.port(1).status().battery
    w.co[0].line.set_battery(1.5, True)
    events = run_collect(w, 0.5)
    assert [k for k, _ in kinds(events)] == ["battery_restored"]
    # Pulling the cable is also a battery loss.
    w.co[2].close()
    events = run_collect(w, 0.5)
    assert [k for k, _ in kinds(events, port=3)] == ["battery_lost"]


def test_answer_and_clear_reverse_polarity(make_world):
    w = make_world(spans=0, ports=4)
    w.run(0.5)
    w.board.fxo.events()
    port, co = w.board.fxo.port(1), w.co[0].line
    co.ring(0.5)
    events = run_collect(w, 0.5)
    assert "ring_start" in [k for k, _ in kinds(events)]
    port.hook(True)  # answer: ring trip at the CO, reversal
    events = run_collect(w, 0.5)
    assert co.state == "connected"
    assert ("hook", 1) in [(e.kind, e.value) for e in events if e.port == 1]
    assert ("polarity", 1) in [(e.kind, e.value) for e in events if e.port == 1]
    st = port.status()
    assert st.reversed and st.offhook and st.loop_ma > 10 and not st.ringing
    co.far_clear(w.tick_time(w.ticks))
    events = run_collect(w, 0.5)
    assert [(e.kind, e.value) for e in events if e.kind == "polarity"] == [("polarity", 0)]
    assert not port.status().reversed


def tone(amplitude: float, n: int, hz: float = 1004.0) -> np.ndarray:
    return np.round(amplitude * np.sin(2 * np.pi * hz * np.arange(n) / 8000)).astype(np.int16)


def rms_db(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return 10 * np.log10(np.mean(x * x))


@pytest.mark.parametrize("gain_db", [-15.0, -6.0, 3.5, 6.0, 12.0])
def test_rx_gain_changes_the_level_by_the_set_db(make_world, gain_db):
    w = make_world(spans=0, ports=4)
    port = w.board.fxo.port(1)
    w.co[0].line.dial_tone = False  # measure the test tone alone, not the exchange's dial tone with it
    port.hook(True)
    w.co[0].line.send_audio(tone(3000, 8000 * 30))  # about -17.6 dBm0: room for +12 dB
    w.run(0.5)

    def level() -> float:
        got = []
        for _ in range(50):
            w.tick()
            got.append(alaw_decode(w.board.tdm.read(80)[w.board.tdm.channel(port=1)].copy()))
        return rms_db(np.concatenate(got))

    port.set_gain(0.0, 0.0)
    w.run(0.1)
    ref = level()
    port.set_gain(gain_db, 0.0)
    w.run(0.1)
    assert port.gain() == (gain_db, 0.0)
    assert abs(level() - ref - gain_db) <= 0.2


@pytest.mark.parametrize("gain_db", [-9.0, 0.0, 6.0])
def test_tx_gain_and_audio_toward_the_line(make_world, gain_db):
    w = make_world(spans=0, ports=4)
    port, tdm = w.board.fxo.port(2), w.board.tdm
    port.hook(True)
    port.set_gain(0.0, gain_db)
    ch = tdm.channel(port=2)
    block = np.full((tdm.channels, 80), 0xD5, np.uint8)
    sig = tone(3000, 80 * 300)
    for k in range(300):
        block[ch] = alaw_encode(sig[k * 80 : (k + 1) * 80])
        tdm.write(block)
        w.tick()
    got = w.co[1].line.received_audio()[-8000:]
    sent = alaw_decode(alaw_encode(sig))
    assert abs(rms_db(got) - rms_db(sent) - gain_db) <= 0.2


def test_caller_id_slot_reaches_the_box_on_hook(make_world):
    w = make_world(spans=0, ports=4)
    w.run(0.5)
    fsk = tone(4000, 8000, hz=1700.0)  # stand-in for dsp.callerid's FSK: a burst in the slot
    w.co[0].line.ring(1.0, callerid=fsk)
    tdm = w.board.tdm
    rx = []
    for _ in range(6 * SECOND):
        w.tick()
        rx.append(alaw_decode(tdm.read(80)[tdm.channel(port=1)].copy()))
    rx = np.concatenate(rx)  # sample i at t = 0.5 + i / 8000 (one tick of latency)
    loud = np.flatnonzero(np.abs(rx) > 1000)
    start, end = 0.5 + loud[0] / 8000, 0.5 + loud[-1] / 8000
    assert 2.4 <= start <= 2.6 and 3.4 <= end <= 3.6  # 0.5 s after the first ring ended, 1 s long
    assert not w.board.fxo.port(1).status().offhook


def test_bad_fxo_messages_are_counted_not_fatal(make_world):
    w = make_world(spans=0, ports=4)
    w.run(0.2)
    sock = w.co[0].sock
    for junk in [b"", b"\x00", b"L" * 11, b"\x4c\x01" + bytes(10) + b"\x01", bytes(range(200))]:
        if junk:
            sock.send(junk)
        w.tick()
    assert w.board.line_counters("fxo", 1).bad_messages == 4
    w.run(0.2)
    assert w.board.fxo.port(1).status().battery  # good messages still work


def test_event_timestamps_map_onto_the_clock(make_world):
    w = make_world(spans=0, ports=4)
    w.run(1.0)
    w.board.fxo.events()
    t_lost = w.tick_time(w.ticks)
    w.co[0].line.set_battery(t_lost, False)
    events = run_collect(w, 0.5)
    lost = [e for e in events if e.kind == "battery_lost"]
    assert len(lost) == 1
    assert t_lost <= w.card_time(lost[0].timestamp) <= t_lost + 0.1  # debounce (20 ms) + one tick
