"""Media engine: switching, players, recorders, stats, virtual and real-time stepping."""

from __future__ import annotations

import os
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from board.clock import VirtualClock
from firmware.engine import MediaEngine
from firmware.engine.ports import LoopPort, SyntheticPort
from firmware.engine.record import RecordingWriter
from firmware.engine.tones import sine_mix, tone


def tone_on(port: LoopPort, ch: int, f: float, seconds: float = 0.1) -> np.ndarray:
    x = sine_mix((f,), -10, seconds)
    port.send(ch, x)
    return x


def dominant(audio: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(audio.astype(float)))
    return float(np.argmax(spec) * 8000 / len(audio))


def make(channels: int = 8, tick_ms: int = 10) -> tuple[MediaEngine, LoopPort]:
    port = LoopPort(channels)
    return MediaEngine(port, tick_ms=tick_ms), port


def run(engine: MediaEngine, ticks: int) -> None:
    for _ in range(ticks):
        engine.tick()


def test_bad_tick_rejected() -> None:
    with pytest.raises(ValueError):
        MediaEngine(LoopPort(2), tick_ms=7)


@pytest.mark.parametrize("tick_ms", [5, 10, 20])
def test_bridge_carries_audio_both_ways(tick_ms: int) -> None:
    eng, port = make(tick_ms=tick_ms)
    eng.bridge(1, 5)
    run(eng, 1)
    for ch in (1, 5):
        port.capture(ch)
    tone_on(port, 1, 1000, 0.2)
    tone_on(port, 5, 400, 0.2)
    run(eng, 200 // tick_ms)
    to5, to1 = port.heard(5), port.heard(1)
    assert abs(dominant(to5) - 1000) < 20 and abs(dominant(to1) - 400) < 20
    # A-law round trip through the switch: the gathered row is the decoded input, re-encoded
    assert np.abs(to5).max() > 5000
    eng.unbridge(1)
    run(eng, 1)
    tone_on(port, 1, 1000, 0.1)
    run(eng, 100 // tick_ms)
    assert np.abs(port.heard(5)).max() < 16 and np.abs(port.heard(1)).max() < 16


def test_conference_hears_others_not_self() -> None:
    eng, port = make()
    eng.set_conference(7, [0, 2, 3])
    run(eng, 1)
    for ch in (0, 2, 3):
        port.capture(ch)
    tone_on(port, 0, 500)
    tone_on(port, 2, 1500)
    run(eng, 10)
    a, b, c = port.heard(0), port.heard(2), port.heard(3)
    assert abs(dominant(a) - 1500) < 20 and abs(dominant(b) - 500) < 20
    spec = np.abs(np.fft.rfft(c.astype(float)))
    assert spec[50] > 0.3 * spec.max() and spec[150] > 0.3 * spec.max()  # 500 and 1500 Hz both heard


def test_listen_whisper_barge() -> None:
    eng, port = make()
    caller, agent, sup = 0, 1, 2
    eng.bridge(caller, agent)
    eng.connect(sup, agent, 0)
    eng.connect(sup, caller, 1)  # listen: both directions
    run(eng, 1)
    for ch in (caller, agent, sup):
        port.capture(ch)
    tone_on(port, caller, 500)
    tone_on(port, agent, 1500)
    tone_on(port, sup, 3000)
    run(eng, 10)
    s = np.abs(np.fft.rfft(port.heard(sup).astype(float)))
    assert s[50] > 1e5 and s[150] > 1e5
    assert np.abs(np.fft.rfft(port.heard(agent).astype(float)))[300] < 1e4  # agent does not hear sup
    eng.connect(agent, sup, 1)  # whisper
    run(eng, 1)
    port.heard(agent), port.heard(caller)
    tone_on(port, caller, 500)
    tone_on(port, sup, 3000)
    run(eng, 10)
    assert np.abs(np.fft.rfft(port.heard(agent).astype(float)))[300] > 1e5
    assert np.abs(np.fft.rfft(port.heard(caller).astype(float)))[300] < 1e4  # caller does not
    eng.connect(caller, sup, 1)  # barge
    run(eng, 1)
    port.heard(caller)
    tone_on(port, sup, 3000)
    run(eng, 10)
    assert np.abs(np.fft.rfft(port.heard(caller).astype(float)))[300] > 1e5


def test_player_sequence_loop_and_done_event() -> None:
    eng, port = make()
    a = eng.add_buffer("a", sine_mix((600,), -10, 0.105))
    b = eng.add_buffer("b", sine_mix((1200,), -10, 0.05))
    port.capture(3)
    eng.play(3, [a, b], token="menu")
    events = []
    for _ in range(20):
        events += eng.tick()
    done = [e for e in events if e.kind == "play_done"]
    assert len(done) == 1 and done[0].channel == 3 and done[0].value == "menu"
    heard = port.heard(3)
    assert abs(dominant(heard[:800]) - 600) < 20 and np.abs(heard[-200:]).max() < 16
    assert abs(dominant(heard[960:1280]) - 1200) < 30
    busy = eng.add_buffer("busy", tone("busy"))
    eng.play(4, [busy], loop=True)
    port.capture(4)
    run(eng, 300)  # 3 s: loops, never done
    h = port.heard(4)
    on = np.abs(h.astype(float)).reshape(-1, 80).max(axis=1) > 1000
    # 0.35 s on / 0.35 s off cadence -> 35-tick runs
    changes = np.flatnonzero(np.diff(on.astype(int))) + 1
    runs = np.diff(changes)
    assert len(runs) >= 6 and set(runs.tolist()) <= {34, 35, 36}
    assert not eng.tick() or all(e.kind != "play_done" for e in eng.tick())


def test_hold_music_replaces_and_mute() -> None:
    eng, port = make()
    eng.bridge(0, 1)
    moh = eng.add_buffer("moh", sine_mix((700,), -12, 1.0))
    eng.play(0, [moh], loop=True, replace=True)
    eng.mute(0, True)  # held party's voice goes nowhere
    run(eng, 1)
    port.capture(0), port.capture(1)
    tone_on(port, 1, 1500)
    tone_on(port, 0, 300)
    run(eng, 10)
    assert abs(dominant(port.heard(0)) - 700) < 20
    assert np.abs(port.heard(1)).max() < 16


def test_recorder_taps_both_directions(tmp_path: Path) -> None:
    eng, port = make()
    writer = RecordingWriter(threaded=False)
    eng.bridge(0, 1)
    rec = writer.open(tmp_path / "r.wav")
    eng.record(0, rec)
    run(eng, 1)
    tone_on(port, 0, 500, 1.5)
    tone_on(port, 1, 1500, 1.5)
    run(eng, 150)
    eng.record(0, None)
    run(eng, 1)
    with wave.open(str(tmp_path / "r.wav")) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 8000
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    assert len(data) >= 1.4 * 8000
    assert abs(dominant(data[1000:9000, 0]) - 500) < 20 and abs(dominant(data[1000:9000, 1]) - 1500) < 20


def test_full_disk_stops_recording_not_the_call(tmp_path: Path) -> None:
    alarms = []
    writer = RecordingWriter(threaded=True, on_alarm=lambda src, text: alarms.append(text))
    eng, port = make()
    eng.bridge(0, 1)
    target = tmp_path / "full.wav"
    os.symlink("/dev/full", target)  # every write fails with ENOSPC, as on a full disk
    eng.record(0, writer.open(target))
    run(eng, 1)
    port.capture(1)
    events = []
    for _ in range(300):
        tone_on(port, 0, 800, 0.01)
        events += eng.tick()
        if any(e.kind == "record_failed" for e in events):
            break
        writer.flush()
    failed = [e for e in events if e.kind == "record_failed"]
    assert failed and failed[0].value == "disk full" and alarms
    assert not eng.rec_active[0]
    tone_on(port, 0, 800, 0.2)
    run(eng, 20)
    assert abs(dominant(port.heard(1)[-1200:]) - 800) < 20  # the call goes on
    writer.stop()


def test_virtual_clock_steps_ticks() -> None:
    clock = VirtualClock(start=100.0)
    eng, _ = make()
    eng.attach(clock)
    clock.advance(1.0)
    assert eng.tick_count == 101  # ticks at 100.00, 100.01, ..., 101.00
    s = eng.stats.summary()
    assert s["ticks"] == 101 and s["late"] == 0 and s["p999_ms"] >= s["median_ms"] > 0


def test_realtime_thread_runs_and_counts() -> None:
    eng = MediaEngine(SyntheticPort(32), tick_ms=10)
    eng.start_thread()
    time.sleep(0.3)
    eng.stop()
    s = eng.stats.summary()
    assert 15 <= s["ticks"] <= 40
    assert s["median_ms"] < 10


def test_dtmf_pool_banks_follow_the_channels_that_need_them() -> None:
    from firmware.engine.tones import dtmf_buffer

    port = LoopPort(100)
    eng = MediaEngine(port, detector_slots=100, detector_bank=32)
    if not eng.has("dtmf"):
        pytest.skip("dsp.dtmf not available")
    pool = eng.pools["dtmf"]
    assert len(pool.banks) == 4 and pool.bank_size == 32
    for ch in (5, 70, 99):
        eng.enable_detector("dtmf", ch, True)
    run(eng, 1)
    assert pool.bank_active.tolist() == [3, 0, 0, 0]  # packed into the first bank
    port.send(70, dtmf_buffer("7"))
    port.send(99, dtmf_buffer("#"))
    port.send(6, dtmf_buffer("1"))  # not enabled: not detected
    events = []
    for _ in range(30):
        events += eng.tick()
    got = sorted((e.channel, e.value) for e in events if e.kind == "dtmf")
    assert got == [(70, "7"), (99, "#")]
    eng.enable_detector("dtmf", 70, False)
    eng.enable_detector("dtmf", 99, False)
    eng.enable_detector("dtmf", 5, False)
    run(eng, 1)
    assert pool.active == 0 and not pool.bank_active.any()


def test_echo_canceller_on_trunk_rows_in_a_call() -> None:
    from dsp.g711 import ALAW_DECODE_TABLE, ALAW_ENCODE_TABLE

    port = LoopPort(40)
    eng = MediaEngine(port, trunk_channels=range(38))
    if not eng.has("echo"):
        pytest.skip("dsp.echo not available")
    delay = 64  # 8 ms hybrid
    history = np.zeros(delay, dtype=np.float64)

    def hybrid(block: np.ndarray) -> None:  # channel 0's line returns what we sent it, -10 dB, 8 ms late
        nonlocal history
        sent = (
            ALAW_DECODE_TABLE[port.last_tx[0]].astype(np.float64)
            if port.last_tx.shape[1] > 1
            else np.zeros(80)
        )
        stream = np.concatenate([history, sent])
        echo = stream[: len(sent)] * 0.316
        history = stream[len(sent) :]
        block[0] = ALAW_ENCODE_TABLE[np.round(echo).astype(np.int16).view(np.uint16)]

    port.mixin.append(hybrid)
    eng.bridge(0, 39)  # trunk 0 <-> extension 39
    port.capture(39)
    rng = np.random.default_rng(5)

    def talk(seconds: float, echo_on: bool) -> float:
        eng.enable_echo(0, echo_on)
        voice = np.clip(rng.standard_normal(int(seconds * 8000)) * 3000, -32768, 32767).astype(np.int16)
        port.send(39, voice)
        port.heard(39)
        run(eng, int(seconds * 100))
        back = port.heard(39)[-8000:].astype(float)
        return 10 * np.log10(np.mean(voice[-8000:].astype(float) ** 2) / max(np.mean(back**2), 1.0))

    loss_off = talk(2.0, False)
    loss_on = talk(4.0, True)
    assert 8 < loss_off < 12  # the hybrid's 10 dB
    assert loss_on > loss_off + 15  # ERLE
    ec = eng.echo
    assert ec.active == 1 and ec.bank_active.sum() == 1
    eng.release(0)
    run(eng, 1)
    assert ec.active == 0 and not eng.echo_enabled.any()


def test_echo_banks_are_phase_staggered() -> None:
    eng = MediaEngine(LoopPort(70), trunk_channels=range(64), echo_bank=32)
    if not eng.has("echo"):
        pytest.skip("dsp.echo not available")
    eng.enable_echo(0, True)
    eng.enable_echo(40, True)
    for ch in range(1, 33):  # fill bank 0 so the next channel lands in bank 1
        eng.enable_echo(ch, True)
    run(eng, 3)
    pool = eng.echo
    assert pool.bank_active.tolist() == [32, 2]
    if pool.phases > 1:
        pos = [b._pos for b in pool.banks]
        assert pos[0] != pos[1]  # block boundaries on different ticks
