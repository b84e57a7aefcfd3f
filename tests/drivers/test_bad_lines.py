"""Far ends that misbehave: partial frames, garbage, silence, disconnects mid-stream, a second far end.
Each must end in alarms and counters on the box, never a crash or a hang."""

from __future__ import annotations

import socket

import numpy as np

from drivers import e1
from dsp.g711 import alaw_decode
from tests.drivers.test_e1_line import counters, in_sync, raw, run_until


def test_partial_frames_are_dropped_and_counted(make_world):
    w = make_world()
    end = w.e1[0]
    run_until(w, lambda: in_sync(w), 0.5)
    before = counters(w).runt_octets
    for size in (1, 31, 33, 100):
        end.send_raw(bytes(size))
        w.tick()
    c = counters(w)
    # 1 and 31 octets are all runt; 33 and 100 give 1 and 3 whole frames plus 1 and 4 runt octets.
    assert c.runt_octets - before == 1 + 31 + 1 + 4
    w.run(0.5)
    assert in_sync(w) or raw(w) & e1.LOF  # a few stray frames may cost alignment, never the process
    run_until(w, lambda: in_sync(w), 0.5)


def test_garbage_raises_lof_and_counts_fas_errors(make_world):
    w = make_world()
    end = w.e1[0]
    run_until(w, lambda: in_sync(w), 0.5)
    rng = np.random.default_rng(1)
    end.transform = lambda data: rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
    lof = 0
    for _ in range(300):
        w.tick()
        lof += bool(raw(w) & e1.LOF)
    # Random data imitates FAS now and then, but never a CRC-4 multiframe: G.706 4.2 keeps LOF up.
    assert lof == 300
    assert w.board.e1.span(1).status().debounced & e1.DB_RED  # red after 2.5 s
    assert counters(w).fas_errors > 0
    end.transform = None
    run_until(w, lambda: in_sync(w), 0.5)


def test_a_silent_far_end_is_los(make_world):
    w = make_world(connect=False)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(w.board.socket_path("e1", 1))  # plugged in, but sends nothing
    try:
        w.run(3.0)
        assert raw(w) & e1.LOS
        assert w.board.e1.span(1).status().debounced & e1.DB_RED
        assert w.board.connected("e1", 1)
    finally:
        sock.close()


def test_disconnect_mid_stream_and_oversize_and_second_far_end(make_world):
    w = make_world(spans=2)
    run_until(w, lambda: in_sync(w, 1) and in_sync(w, 2), 0.5)
    # Half a message's worth, then gone.
    w.e1[0].send_raw(w.e1[0].ex.transmit(40)[:700])
    w.e1[0].close()
    run_until(w, lambda: bool(raw(w, 1) & e1.LOS), 0.1)
    assert in_sync(w, 2)  # the other span does not care
    # A second far end on span 2 is refused; the first keeps working.
    extra = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    extra.connect(w.board.socket_path("e1", 2))
    w.run(0.1)
    assert extra.recv(10) == b""  # closed by the box
    extra.close()
    assert w.board.line_counters("e1", 2).refused == 1
    # An oversize message (more than 1024 frames) is truncated by the socket and counted.
    w.e1[1].send_raw(bytes(32 * 1100))
    w.run(0.2)
    assert w.board.line_counters("e1", 2).oversize == 1
    run_until(w, lambda: in_sync(w, 2), 0.5)
    # Plugging span 1 back brings it back.
    w.e1[0].connect()
    run_until(w, lambda: in_sync(w, 1), 0.5)


def test_the_box_survives_a_far_end_that_does_not_read(make_world):
    w = make_world()
    end = w.e1[0]
    end.receive = lambda: None  # never reads: the socket buffer fills
    w.run(5.0)
    assert w.board.line_counters("e1", 1).tx_dropped > 0
    assert in_sync(w)  # the box still receives and frames


def test_fxo_audio_flood_is_bounded(make_world):
    w = make_world(spans=0, ports=4)
    w.co[0].line.dial_tone = False  # silence after the flood must be silence: no dial tone on this line
    w.board.fxo.port(1).hook(True)
    w.run(0.2)
    co = w.co[0]
    for _ in range(200):  # 4 blocks of audio for every tick: the box keeps at most 40 ms waiting
        co.line.send_audio(np.full(320, 1000, np.int16))
        co.send_block(w.tick_time(w.ticks), 320)
        w.tick()
    co.line._tx = np.zeros(0, np.int16)
    w.run(0.06)  # 40 ms backlog drains within a few ticks: then silence
    got = alaw_decode(w.board.tdm.read(80)[w.board.tdm.channel(port=1)].copy())
    assert np.abs(got).max() < 50


def test_seeded_garbage_storm_on_every_line(make_world):
    """FoundationDB-style: one seed drives a storm of random messages, sizes and disconnects on all lines;
    the board keeps stepping, and once the storm stops every line comes back."""
    from board.sim.fxoline import LineState, encode_line

    w = make_world(spans=2, ports=4)
    rng = np.random.default_rng(20261123)
    w.run(0.3)
    for _ in range(200):
        for end in [*w.e1, *w.co]:
            if end.sock is None:
                if rng.random() < 0.2:
                    end.connect()
                continue
            r = rng.random()
            try:
                if r < 0.3:
                    end.sock.send(rng.integers(0, 256, int(rng.integers(1, 5000)), np.uint8).tobytes())
                elif r < 0.35:
                    end.sock.send(bytes(int(rng.integers(1, 40))))
                elif r < 0.4 and end in w.co:
                    n = int(rng.integers(0, 400))
                    state = LineState(
                        dc_volts=float(rng.integers(-2000, 2000)) / 10,
                        ringing=bool(rng.random() < 0.5),
                        ring_vrms=float(rng.integers(0, 6000)) / 10,
                        ring_hz=float(rng.integers(0, 900)) / 10,
                    )
                    end.sock.send(encode_line(state, rng.integers(-32768, 32767, n).astype(np.int16)))
                elif r < 0.43:
                    end.close()
            except (BlockingIOError, OSError):
                pass
        w.tick()
        w.board.e1.span(1).dchan_recv()
        w.board.fxo.events()
    for end in [*w.e1, *w.co]:
        if end.sock is None:
            end.connect()
    w.run(2.0)
    assert in_sync(w, 1) and in_sync(w, 2)
    assert all(p.status().battery for p in w.board.fxo.ports)
    assert sum(w.board.line_counters("fxo", p).bad_messages for p in range(1, 5)) > 0
    assert counters(w).runt_octets > 0
