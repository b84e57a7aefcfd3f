"""E1 spans end to end: the box's C framer model and C driver (through cffi) against an exchange-side framer,
over the real span sockets, in virtual time. Each test names the behaviour of the issue it checks."""

from __future__ import annotations

import numpy as np
import pytest

from drivers import e1
from tests.drivers.hdlc_ref import hdlc_decode
from tools.linesim.e1 import FRAME

SECOND = 100  # ticks of 10 ms


def raw(w, span=1):
    return w.board.e1.span(span).status().raw


def db(w, span=1):
    return w.board.e1.span(span).status().debounced


def counters(w, span=1):
    return w.board.e1.span(span).counters()


def run_until(w, predicate, limit_s: float) -> float:
    """Tick until predicate() holds; returns the virtual seconds it took (fails after limit_s)."""
    for k in range(round(limit_s / w.period)):
        if predicate():
            return k * w.period
        w.tick()
    raise AssertionError(f"condition not reached in {limit_s} s")


def in_sync(w, span=1) -> bool:
    return not raw(w, span) & (e1.LOS | e1.LOF | e1.AIS | e1.LMFA)


# ---- alignment ------------------------------------------------------------------------------------------
def test_cold_start_frame_and_multiframe_alignment(make_world):
    w = make_world(spans=2)
    assert raw(w) & e1.LOS or raw(w) & e1.LOF  # nothing received yet
    t = run_until(w, lambda: in_sync(w, 1) and in_sync(w, 2), 0.5)
    assert t <= 0.1  # FAS in a few frames, CRC-4 multiframe within 8 ms (G.706)
    ex = w.e1[0].ex
    run_until(w, lambda: not ex.status() & (e1.LOS | e1.LOF | e1.LMFA), 0.5)  # far end aligned too
    w.run(1.0)
    c = counters(w)
    assert c.fas_errors == 0 and c.crc_errors == 0 and c.rx_slips == 0
    assert c.rx_frames >= 8000 and c.tx_frames >= 8000


@pytest.mark.parametrize("bits", [1, 8, 13, 100, 255])
def test_realignment_after_a_shift(make_world, bits):
    w = make_world(tick_frames=2)  # 250 us ticks: the loss and regain of alignment take a few frames
    run_until(w, lambda: in_sync(w), 0.5)
    w.run(0.05)
    before = counters(w).fas_errors
    w.e1[0].shift(bits)
    t_lost = run_until(w, lambda: bool(raw(w) & e1.LOF), 0.01)
    assert t_lost <= 0.002  # 3 bad FAS words in a row: 6 frames (+ the elastic store's delay)
    t = run_until(w, lambda: in_sync(w), 0.1)
    assert t <= 0.01  # G.706: FAS, NFAS bit 2, FAS again
    assert counters(w).fas_errors >= before + 3
    w.run(0.5)
    assert in_sync(w)


def corrupt_fas(data: bytes) -> bytes:
    """Flip the last bit of every FAS word (TS0 of even frames: x0011011) in whole frames."""
    a = np.frombuffer(data, np.uint8).reshape(-1, FRAME).copy()
    fas = (a[:, 0] & 0x7F) == 0x1B
    a[fas, 0] ^= 0x01
    return a.tobytes()


def test_lof_after_corrupted_fas_and_recovery(make_world):
    w = make_world()
    run_until(w, lambda: in_sync(w), 0.5)
    w.e1[0].transform = corrupt_fas
    run_until(w, lambda: bool(raw(w) & e1.LOF), 0.05)
    w.run(3.0)
    assert db(w) & e1.DB_RED  # red alarm after 2.5 s of LOF
    assert w.e1[0].ex.status() & e1.RAI  # box sends RAI back while it cannot frame
    w.e1[0].transform = None
    run_until(w, lambda: in_sync(w), 0.2)
    w.run(4.0)
    assert db(w) & e1.DB_RED  # still red: recovery takes 5 s
    w.run(1.5)
    assert not db(w) & e1.DB_RED


def test_crc4_errors_counted_and_reported_back_as_e_bits(make_world):
    w = make_world()
    ex = w.e1[0].ex
    run_until(w, lambda: in_sync(w) and not ex.status() & (e1.LOF | e1.LMFA), 0.5)
    w.run(0.5)
    box0, far0 = counters(w).crc_errors, ex.counters()["febe"]
    n = 7
    for _ in range(n):
        ex.inject(crc=True)
        w.run(0.05)
    w.run(0.1)
    assert counters(w).crc_errors - box0 == n
    assert ex.counters()["febe"] - far0 == n
    assert counters(w).fas_errors == 0


# ---- alarms ---------------------------------------------------------------------------------------------
def test_ais_raised_after_debounce_and_cleared(make_world):
    w = make_world()
    run_until(w, lambda: in_sync(w), 0.5)
    w.run(0.2)
    w.e1[0].ex.send_alarms(ais=True)
    run_until(w, lambda: bool(raw(w) & e1.AIS), 0.1)
    w.run(2.0)
    assert not db(w) & e1.DB_BLUE
    w.run(0.7)
    assert db(w) & e1.DB_BLUE and not db(w) & e1.DB_RED
    w.e1[0].ex.send_alarms()
    run_until(w, lambda: in_sync(w), 0.2)
    w.run(4.5)
    assert db(w) & e1.DB_BLUE
    w.run(1.0)
    assert not db(w) & e1.DB_BLUE


def test_rai_raised_after_debounce_and_cleared(make_world):
    w = make_world()
    run_until(w, lambda: in_sync(w), 0.5)
    w.run(0.2)
    w.e1[0].ex.send_alarms(rai=True)
    run_until(w, lambda: bool(raw(w) & e1.RAI), 0.05)
    w.run(0.3)
    assert not db(w) & e1.DB_YELLOW
    w.run(0.3)
    assert db(w) & e1.DB_YELLOW
    w.e1[0].ex.send_alarms()
    run_until(w, lambda: not raw(w) & e1.RAI, 0.05)
    w.run(4.5)
    assert db(w) & e1.DB_YELLOW
    w.run(1.0)
    assert not db(w) & e1.DB_YELLOW


def test_los_when_the_cable_is_pulled_and_cleared_when_plugged_back(make_world):
    w = make_world()
    run_until(w, lambda: in_sync(w), 0.5)
    w.run(0.2)
    w.e1[0].close()  # cable pulled: socket closed
    run_until(w, lambda: bool(raw(w) & e1.LOS), 0.05)
    w.run(2.0)
    assert not db(w) & e1.DB_RED
    w.run(0.7)
    assert db(w) & e1.DB_RED
    assert w.board.line_counters("e1", 1).disconnects == 1
    w.e1[0].connect()  # plugged back
    run_until(w, lambda: in_sync(w), 0.2)
    w.run(4.5)
    assert db(w) & e1.DB_RED
    w.run(1.0)
    assert not db(w) & (e1.DB_RED | e1.DB_BLUE | e1.DB_YELLOW)


# ---- slips ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("timing", ["internal", "line"])
@pytest.mark.parametrize("ppm", [5000, -5000])
def test_slips_when_clocks_differ(make_world, ppm, timing):
    w = make_world(timing=timing)
    w.e1[0].ppm = ppm
    run_until(w, lambda: in_sync(w), 0.5)
    w.run(20.0)  # 20 s x 5000 ppm = 800 frames of drift through a 256-frame elastic store
    drift = abs(w.e1[0].sent_frames - w.board.frames)
    c = counters(w)
    # Controlled slips of one frame each: once the store's margin (under half of 256 frames) is used up, every
    # frame of drift is one slip.
    assert drift - 140 <= c.rx_slips <= drift - 60
    if timing == "internal":
        assert c.tx_slips == 0  # the box sends on its own clock: nothing to slip on the way out
    else:
        assert drift - 140 <= c.tx_slips <= drift - 60  # tx follows the line, the DMA the oscillator
    assert in_sync(w)  # controlled slips keep the framing


def test_no_slips_when_clocks_agree(make_world):
    w = make_world()
    w.run(20.0)
    assert counters(w).rx_slips == 0 and counters(w).tx_slips == 0


# ---- D-channel ------------------------------------------------------------------------------------------
PAYLOADS = [
    b"\x7e" * 40,
    b"\x7d" * 40,
    b"\xff" * 40,
    b"\x7e\x7d\xff\x00" * 30,
    bytes(range(256))[:200],
    b"\x00\x00",  # the shortest legal frame: 2 octets + FCS = 32 bits
    b"\x02\x01\x7f",  # a Q.921 SABME
]


def test_hdlc_round_trip_through_both_framers(make_world):
    w = make_world()
    span, ex = w.board.e1.span(1), w.e1[0].ex
    line = []
    w.e1[0].tap = lambda data: line.append(data)
    run_until(w, lambda: in_sync(w), 0.5)
    w.run(0.1)
    got_far, got_box = [], []
    for p in PAYLOADS:  # back to back: all queued at once (FIFO permitting)
        assert span.dchan_send(p)
        assert ex.dchan_send(p[::-1])
    for _ in range(3 * SECOND):
        w.tick()
        got_far += ex.dchan_recv()
        got_box += span.dchan_recv()
    assert got_far == PAYLOADS
    assert got_box == [p[::-1] for p in PAYLOADS]
    c = counters(w)
    assert c.hdlc_rx == len(PAYLOADS) and c.hdlc_fcs_errors == 0 and c.hdlc_tx == len(PAYLOADS)
    # A frame shorter than 32 bits between flags is invalid (ISO/IEC 13239 4.6): dropped and counted.
    ex.dchan_send(b"\x00")
    w.run(0.1)
    assert span.dchan_recv() == [] and counters(w).hdlc_bad == c.hdlc_bad + 1
    # The bits on the wire follow docs/virtual-lines.md: a reference HDLC receiver finds the same frames.
    stream = np.frombuffer(b"".join(line), np.uint8).reshape(-1, FRAME)
    assert hdlc_decode(stream[:, 16]) == PAYLOADS


def test_hdlc_many_back_to_back_frames(make_world):
    w = make_world()
    span, ex = w.board.e1.span(1), w.e1[0].ex
    run_until(w, lambda: in_sync(w), 0.5)
    rng = np.random.default_rng(7)
    sent = [rng.integers(0, 256, rng.integers(1, 260)).astype(np.uint8).tobytes() for _ in range(60)]
    pending = list(sent)
    got = []
    for _ in range(20 * SECOND):
        while pending and span.dchan_send(pending[0]):
            pending.pop(0)
        w.tick()
        got += ex.dchan_recv()
        if len(got) == len(sent):
            break
    assert got == sent


# ---- CAS ------------------------------------------------------------------------------------------------
def test_cas_abcd_of_all_30_channels(make_world):
    w = make_world(framing="cas")
    span, ex = w.board.e1.span(1), w.e1[0].ex
    run_until(w, lambda: in_sync(w) and not raw(w) & e1.LCASMFA, 0.5)
    w.run(0.05)
    idle, _ = span.cas_get_all()  # what the far end sends before anyone sets the bits
    box_bits = np.array([(c * 7) % 15 + 1 for c in range(1, 31)], np.uint8)  # never 0000
    far_bits = np.array([(c * 11) % 15 + 1 for c in range(1, 31)], np.uint8)
    span.cas_set_all(box_bits)
    for c in range(1, 31):
        ex.cas_set(c, int(far_bits[c - 1]))
    w.run(0.1)
    got, changed = span.cas_get_all()
    assert np.array_equal(got, far_bits)
    assert changed == sum(1 << c for c in range(1, 31) if far_bits[c - 1] != idle[c - 1])
    assert changed != 0
    assert [ex.cas_get(c) for c in range(1, 31)] == box_bits.tolist()
    ex.cas_set(17, 0b1001)
    w.run(0.05)
    got, changed = span.cas_get_all()
    assert got[16] == 0b1001 and changed == 1 << 17


# ---- loopbacks and PRBS ---------------------------------------------------------------------------------
def test_local_loopback(make_world):
    w = make_world()
    span = w.board.e1.span(1)
    run_until(w, lambda: in_sync(w), 0.5)
    span.loopback(e1.LOOP_LOCAL)
    tdm = w.board.tdm
    pattern = (np.arange(tdm.e1_channels)[:, None] * 3 + np.arange(80)[None, :]).astype(np.uint8)
    for _ in range(30):
        tdm.write(pattern)
        w.tick()
    assert in_sync(w)
    # What we send comes back on every voice channel, delayed by the loop (elastic store): a rotation.
    got = tdm.read(80)[: tdm.e1_channels]
    assert any(np.array_equal(got, np.roll(pattern, s, axis=1)) for s in range(80))
    span.loopback(0)
    w.run(0.1)
    got = tdm.read(80)[: tdm.e1_channels]
    assert not any(np.array_equal(got, np.roll(pattern, s, axis=1)) for s in range(80))


@pytest.mark.parametrize("mode", [e1.LOOP_NETWORK_LINE, e1.LOOP_NETWORK_PAYLOAD])
def test_network_loopbacks(make_world, mode):
    w = make_world()
    ex = w.e1[0].ex
    run_until(w, lambda: in_sync(w), 0.5)
    w.board.e1.span(1).loopback(mode)
    block = np.zeros((FRAME, 80), np.uint8)
    block[1:] = (np.arange(1, FRAME)[:, None] * 5 + np.arange(80)[None, :]).astype(np.uint8)
    ex.set_voice(block)
    seen = []
    w.e1[0].on_receive = lambda ex_, k: seen.append(ex_.voice(k).copy())
    w.run(0.5)
    last = seen[-1]
    voice = [t for t in range(1, 32) if t != 16]
    # Both loops return the far end's payload; the columns may be rotated by the loop delay.
    rolled = [np.roll(block[voice], s, axis=1) for s in range(80)]
    assert any(np.array_equal(last[voice], r) for r in rolled)
    assert not ex.status() & (e1.LOS | e1.LOF)


@pytest.mark.parametrize("n_errors", [0, 1, 5, 23])
def test_prbs_over_local_loopback_counts_injected_errors_exactly(make_world, n_errors):
    w = make_world()
    span = w.board.e1.span(1)
    run_until(w, lambda: in_sync(w), 0.5)
    span.loopback(e1.LOOP_LOCAL)
    span.prbs(tx=True, rx=True)
    run_until(w, lambda: span.prbs_result()[0], 0.5)
    w.run(0.2)
    assert span.prbs_result() == (True, 0)
    for _ in range(n_errors):
        span.inject(e1.INJECT_BIT)
        w.run(0.03)
    w.run(0.2)
    assert span.prbs_result() == (True, n_errors)


def test_prbs_from_the_far_end_over_the_network_loopback(make_world):
    w = make_world()
    ex = w.e1[0].ex
    run_until(w, lambda: in_sync(w), 0.5)
    w.board.e1.span(1).loopback(e1.LOOP_NETWORK_LINE)
    ex.prbs(tx=True, rx=True)
    run_until(w, lambda: ex.prbs_result()[0], 0.5)
    w.run(0.2)
    base = ex.prbs_result()[1]
    for _ in range(9):
        ex.inject(bit=True)
        w.run(0.03)
    w.run(0.2)
    assert ex.prbs_result() == (True, base + 9)


# ---- the engine's port: channel numbering ---------------------------------------------------------------
def test_tdm_port_channel_numbering_reaches_the_right_timeslots(make_world):
    w = make_world(spans=2, ports=4)
    tdm = w.board.tdm
    assert tdm.channels == 2 * 30 + 4
    assert tdm.channel(span=1, chan=15) == 14 and tdm.channel(span=1, chan=16) == 15
    assert tdm.channel(span=2, chan=1) == 30 and tdm.channel(port=1) == 60
    assert tdm.describe(45) == "span 2 ch 16" and tdm.describe(63) == "fxo 4"
    run_until(w, lambda: in_sync(w, 1) and in_sync(w, 2), 0.5)
    out = np.full((tdm.channels, 80), 0xD5, np.uint8)
    out[tdm.channel(span=2, chan=16)] = 0x2A  # channel 16 is timeslot 17
    out[tdm.channel(span=1, chan=1)] = 0x3C
    seen = {}
    w.e1[1].on_receive = lambda ex, k: seen.__setitem__(2, ex.voice(k).copy())
    w.e1[0].on_receive = lambda ex, k: seen.__setitem__(1, ex.voice(k).copy())
    for _ in range(5):
        tdm.write(out)
        w.tick()
    assert (seen[2][17] == 0x2A).all() and (seen[2][16] != 0x2A).all() and (seen[1][1] == 0x3C).all()
    # and the other way: the far end's TS17 of span 2 arrives on channel 16 of span 2
    block = np.full((32, 80), 0xD5, np.uint8)
    block[17] = 0x66
    w.e1[1].ex.set_voice(block)
    w.run(0.05)
    got = tdm.read(80)
    assert (got[tdm.channel(span=2, chan=16)] == 0x66).all()
    assert not (got[tdm.channel(span=2, chan=15)] == 0x66).any()


# ---- timing ---------------------------------------------------------------------------------------------
def test_line_timing_sends_one_frame_per_frame_received(make_world):
    w = make_world(timing="line")
    w.e1[0].ppm = 3000  # the far end's clock is fast: the box follows it on the line
    w.run(5.0)
    end = w.e1[0]
    assert end.sent_frames > w.board.frames + 100  # the far end sent more than the box's oscillator made
    assert abs(end.received_frames - end.sent_frames) <= 1  # one frame back for each frame in
    c = counters(w)
    assert c.tx_frames == c.rx_frames


def test_internal_timing_sends_at_the_oscillator_rate(make_world):
    w = make_world(timing="internal")
    w.e1[0].ppm = 3000
    w.run(5.0)
    end = w.e1[0]
    assert end.received_frames == w.board.frames  # 8000 a second of the box's clock, whatever arrives
    assert end.sent_frames > end.received_frames + 100
    run_until(w, lambda: in_sync(w), 0.1)
