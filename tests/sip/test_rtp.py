"""RTP media: packets, the jitter buffer under a hostile network, PLC, drift, RFC 4733, RTCP."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import g711
from firmware.sip.rtp import (
    TICK,
    LegConfig,
    MediaHub,
    RtpError,
    build_rtp,
    parse_rtp,
    parse_telephone_event,
    telephone_event_payload,
)


def tone(n: int, freq: float = 1000.0, amp: float = 8000.0, start: int = 0) -> np.ndarray:
    t = np.arange(start, start + n)
    return (amp * np.sin(2 * np.pi * freq * t / 8000)).astype(np.int16)


def test_rtp_packet_roundtrip_and_errors():
    data = build_rtp(8, 65535, 2**32 - 1, 0xDEADBEEF, b"\x55" * 160, marker=True)
    pkt = parse_rtp(data)
    assert (pkt.pt, pkt.seq, pkt.ts, pkt.ssrc, pkt.marker, len(pkt.payload)) == (
        8,
        65535,
        2**32 - 1,
        0xDEADBEEF,
        True,
        160,
    )
    # CSRC + extension + padding
    ext = bytes([0x80 | 0x10 | 0x20 | 1, 8]) + data[2:12] + b"\0\0\0\1" + b"\xbe\xde\x00\x01" + b"abcd"
    ext += b"\x55" * 160 + b"\0\0\3"
    assert parse_rtp(ext).payload == b"\x55" * 160
    for bad in (b"", b"\x80" * 5, b"\x40" + data[1:], bytes([0xA0]) + data[1:12] + b"\x00"):
        with pytest.raises(RtpError):
            parse_rtp(bad)


class Network:
    """A seeded hostile network between a G.711 sender and the hub."""

    def __init__(self, seed=1, jitter=0.03, loss=0.0, dup=0.0, drift_ppm=0.0):
        self.rng = np.random.default_rng(seed)
        self.jitter, self.loss, self.dup, self.drift = jitter, loss, dup, drift_ppm * 1e-6
        self.queue: list[tuple[float, bytes]] = []
        self.sent = 0

    def send_until(self, now, signal, ssrc=0x1234, pt=8):
        period = 0.02 * (1 - self.drift)  # a fast sender clock sends more often
        while self.sent * period <= now:
            k = self.sent
            samples = signal[k * 160 : (k + 1) * 160]
            payload = (g711.alaw_encode(samples) if pt == 8 else g711.ulaw_encode(samples)).tobytes()
            pkt = build_rtp(pt, k & 0xFFFF, (1000 + k * 160) & 0xFFFFFFFF, ssrc, payload)
            self.sent += 1
            if self.rng.random() < self.loss:
                continue
            arrival = k * period + self.rng.uniform(0, self.jitter)
            self.queue.append((arrival, pkt))
            if self.rng.random() < self.dup:
                self.queue.append((arrival + self.rng.uniform(0, self.jitter), pkt))

    def due(self, now):
        ready = [q for q in self.queue if q[0] <= now]
        self.queue = [q for q in self.queue if q[0] > now]
        ready.sort(key=lambda q: q[0])  # arrival order, so jitter reorders packets
        return [p for _, p in ready]


def run(hub, leg, net, seconds, signal):
    out = []
    for n in range(int(seconds * 100)):
        now = n * 0.01
        net.send_until(now, signal)
        for pkt in net.due(now):
            hub.receive(leg, pkt, now)
        block = hub.pull(now)
        assert block.shape == (hub.max_legs, TICK) and block.dtype == np.int16
        out.append(block[leg].copy())
    return np.concatenate(out)


def best_lag(received, reference):
    ref = reference[: len(received)].astype(float)
    rec = received.astype(float)
    scores = [np.dot(rec[lag : lag + 8000], ref[:8000]) for lag in range(0, 1600)]
    return int(np.argmax(scores))


def test_reordering_jitter_and_duplicates_give_the_exact_signal():
    hub = MediaHub(4, target_ms=60)
    leg = hub.open(LegConfig(("127.0.0.1", 4000)), 0.0)
    signal = (np.random.default_rng(5).normal(0, 3000, 8000 * 12)).clip(-32768, 32767).astype(np.int16)
    net = Network(seed=2, jitter=0.045, dup=0.05)
    got = run(hub, leg, net, 10.0, signal)
    ref = g711.alaw_decode(g711.alaw_encode(signal))
    lag = best_lag(got, ref)
    seg = got[lag + 8000 : lag + 8000 * 9]
    assert np.array_equal(seg, ref[8000 : 8000 * 9])  # bit exact despite jitter, reordering, dups
    stats = hub.stats(leg)
    assert stats.duplicates > 0 and stats.packets_lost == 0
    assert stats.jitter_ms > 1.0


def test_loss_is_concealed_and_counted():
    hub = MediaHub(2)
    leg = hub.open(LegConfig(("127.0.0.1", 4000)), 0.0)
    signal = tone(8000 * 12)
    net = Network(seed=3, jitter=0.01, loss=0.05)
    got = run(hub, leg, net, 10.0, signal)
    stats = hub.stats(leg)
    assert stats.packets_lost > 10 and stats.concealed_ms > 100
    # concealment keeps the level up: no 20 ms hole of silence in the middle of the tone
    frames = got[8000:].reshape(-1, 80)
    rms = np.sqrt((frames.astype(float) ** 2).mean(axis=1))
    assert (rms > 1000).mean() > 0.97


@pytest.mark.parametrize("drift_ppm", [500.0, -500.0])
def test_clock_drift_keeps_depth_bounded(drift_ppm):
    hub = MediaHub(1, target_ms=60)
    leg = hub.open(LegConfig(("127.0.0.1", 4000)), 0.0)
    signal = tone(8000 * 40)
    net = Network(seed=4, jitter=0.02, drift_ppm=drift_ppm)
    got = run(hub, leg, net, 30.0, signal)
    assert abs(hub.depth[leg] - hub.target) < 2 * TICK
    # no long losses: after start-up the output is tone all along
    frames = got[8000:].reshape(-1, 80)
    rms = np.sqrt((frames.astype(float) ** 2).mean(axis=1))
    assert (rms > 3000).mean() > 0.995
    assert hub.stats(leg).late < 5


def test_peer_pause_and_timestamp_jump_resync():
    hub = MediaHub(1)
    leg = hub.open(LegConfig(("127.0.0.1", 4000)), 0.0)
    payload = g711.alaw_encode(tone(160)).tobytes()
    now = 0.0
    for k in range(50):
        hub.receive(leg, build_rtp(8, k, k * 160, 7, payload), now)
        hub.pull(now)
        hub.pull(now)
        now += 0.02
    silent = [hub.pull(now)[leg] for _ in range(300)]  # three seconds of nothing (hold, DTX)
    assert not np.concatenate(silent[20:]).any()  # buffered audio played, then PLC faded out
    # resumes with timestamps far behind and far ahead: both must play again
    for base in (50 * 160, 10**9):
        played = []
        for k in range(20):
            hub.receive(leg, build_rtp(8, 100 + k, base + k * 160, 7, payload), now)
            played.append(hub.pull(now)[leg].copy())
            played.append(hub.pull(now)[leg].copy())
        assert np.abs(np.concatenate(played[10:])).max() > 3000


def test_many_legs_independent():
    hub = MediaHub(8)
    legs = [
        hub.open(
            LegConfig(("127.0.0.1", 4000 + i), codec="PCMU" if i % 2 else "PCMA", pt=0 if i % 2 else 8), 0.0
        )
        for i in range(6)
    ]
    for step in range(100):
        now = step * 0.01
        if step % 2 == 0:
            for i, leg in enumerate(legs):
                if i == 3:
                    continue  # silent leg
                samples = tone(160, 300 + 100 * i, start=step * 80)
                pt = 0 if i % 2 else 8
                enc = g711.ulaw_encode(samples) if pt == 0 else g711.alaw_encode(samples)
                hub.receive(leg, build_rtp(pt, step, step * 80, 100 + i, enc.tobytes()), now)
        block = hub.pull(now)
    assert np.abs(block[legs[3]]).max() == 0
    for i in (0, 1, 2, 4, 5):
        assert np.abs(block[legs[i]]).max() > 3000
    assert not block[6:].any()


def test_transmit_packetizes_20ms_and_rtcp():
    hub = MediaHub(2, rtcp_interval=1.0)
    leg = hub.open(LegConfig(("127.0.0.1", 4000), codec="PCMA", pt=8), 0.0)
    other = MediaHub(1)
    oleg = other.open(LegConfig(("127.0.0.1", 4001)), 0.0)
    packets = []
    for n in range(300):
        tx = np.zeros((2, TICK), np.int16)
        tx[leg] = tone(TICK, start=n * TICK)
        packets += hub.push_tx(tx, n * 0.01)
    rtp = [parse_rtp(p) for _, p in packets if p[1] != 200]
    assert len(rtp) == 150 and all(len(p.payload) == 160 for p in rtp)
    assert all(
        (b.seq - a.seq) & 0xFFFF == 1 and (b.ts - a.ts) & 0xFFFFFFFF == 160
        for a, b in zip(rtp, rtp[1:], strict=False)
    )
    decoded = g711.alaw_decode(np.frombuffer(b"".join(p.payload for p in rtp), np.uint8))
    assert np.array_equal(decoded, g711.alaw_decode(g711.alaw_encode(tone(300 * TICK))))
    rtcp = [p for _, p in packets if p[1] == 200]
    assert len(rtcp) == 2
    # the peer receives our stream with one packet lost and reports it back
    for i, (_, p) in enumerate(packets):
        if i != 7:
            other.receive(oleg, p, i * 0.01)
    tx = np.zeros((1, TICK), np.int16)
    report = [p for n in range(600) for _, p in other.push_tx(tx, n * 0.01) if p[1] == 200]
    hub.receive(leg, report[0], 6.0)
    st = hub.stats(leg)
    assert st.remote_fraction_lost is not None and st.remote_fraction_lost > 0
    assert other.stats(oleg).packets_lost == 1


def test_dtmf_in_and_out():
    hub = MediaHub(2)
    leg = hub.open(LegConfig(("127.0.0.1", 4000), dtmf_pt=101), 0.0)
    events = []
    for k, (dur, end) in enumerate([(160, False), (320, False), (480, True), (480, True), (480, True)]):
        events += hub.receive(
            leg, build_rtp(101, k, 8000, 9, telephone_event_payload(5, end, dur), k == 0), k * 0.02
        )
    events += hub.receive(leg, build_rtp(101, 9, 9600, 9, telephone_event_payload(11, True, 800)), 0.3)
    assert [(e.digit, e.duration_ms) for e in events] == [("5", None), ("5", 60.0), ("#", None), ("#", 100.0)]

    assert hub.send_dtmf(leg, "7", 100)
    sent = []
    for n in range(40):
        sent += [parse_rtp(p) for _, p in hub.push_tx(np.zeros((2, TICK), np.int16), n * 0.01) if p[1] != 200]
    ev = [p for p in sent if p.pt == 101]
    parsed = [parse_telephone_event(p.payload) for p in ev]
    assert ev[0].marker and all(p.ts == ev[0].ts for p in ev)
    assert [x[1] for x in parsed].count(True) == 3 and parsed[-1][3] == 800 and parsed[0][0] == 7
    assert not MediaHub(1).send_dtmf(0, "1")


def test_garbage_datagrams_are_counted_not_raised():
    hub = MediaHub(1)
    leg = hub.open(LegConfig(("127.0.0.1", 4000)), 0.0)
    rng = np.random.default_rng(0)
    for _ in range(500):
        hub.receive(leg, rng.integers(0, 256, rng.integers(0, 300)).astype(np.uint8).tobytes(), 0.0)
    hub.pull(0.0)
    assert hub.stats(leg).packets_received >= 0
