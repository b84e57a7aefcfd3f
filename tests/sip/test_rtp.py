"""RTP media: packets, the jitter buffer under a hostile network, PLC, drift, RFC 4733, RTCP."""

from __future__ import annotations

import heapq

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
    """A seeded network between a G.711 sender (its own clock: `drift_ppm`) and the hub: one-way delay
    `base` plus a jitter profile, Gilbert-Elliott burst loss, duplicates, talk spurts (DTX).

    jitter: "none" | ("uniform", max_s) | ("spikes", rate per packet, height_s, floor jitter_s)
    """

    def __init__(
        self,
        seed=1,
        jitter=("uniform", 0.03),
        loss=(0.0, 1.0),  # (P good->bad, P bad->good) per packet
        dup=0.0,
        drift_ppm=0.0,
        base=0.03,
        dtx=None,  # (talk_s, silence_s)
        ts0=2**32 - 3 * 8000,  # the timestamp wraps after 3 s
    ):
        self.rng = np.random.default_rng(seed)
        self.jitter, self.loss, self.dup, self.base, self.dtx = jitter, loss, dup, base, dtx
        self.period = 0.02 / (1 + drift_ppm * 1e-6)  # a fast sender clock sends more often
        self.ts0 = ts0
        self.queue: list[tuple[float, int, bytes]] = []  # a heap by arrival
        self.sent = 0
        self.bad = False
        self.spike = 0.0
        self.lost = 0
        self.arrivals: list[tuple[float, int]] = []  # (arrival, ts) of first copies, for RFC 3550 checks

    def send_time(self, ts):
        """When the sender sampled timestamp `ts` (unwrapped, relative to ts0)."""
        return ts / 160 * self.period

    def talking(self, k):
        if self.dtx is None:
            return True
        talk, silence = self.dtx
        return (k * 0.02) % (talk + silence) < talk

    def _delay(self):
        kind = self.jitter[0] if isinstance(self.jitter, tuple) else self.jitter
        if kind == "none":
            return 0.0
        if kind == "uniform":
            return self.rng.uniform(0, self.jitter[1])
        _, rate, height, floor = self.jitter
        self.spike = max(self.spike - 0.02, 0.0)  # the queue drains: packets bunch up behind a spike
        if self.rng.random() < rate:
            self.spike = height
        return self.spike + self.rng.uniform(0, floor)

    def send_until(self, now, signal, ssrc=0x1234, pt=8):
        while self.sent * self.period <= now:
            k = self.sent
            self.sent += 1
            samples = signal[k * 160 : (k + 1) * 160]
            delay = self._delay()
            if not self.talking(k):
                continue
            self.bad = self.rng.random() < (1 - self.loss[1] if self.bad else self.loss[0])
            if self.bad:
                self.lost += 1
                continue
            payload = (g711.alaw_encode(samples) if pt == 8 else g711.ulaw_encode(samples)).tobytes()
            pkt = build_rtp(pt, k & 0xFFFF, (self.ts0 + k * 160) & 0xFFFFFFFF, ssrc, payload)
            arrival = k * self.period + self.base + delay
            heapq.heappush(self.queue, (arrival, k, pkt))
            self.arrivals.append((arrival, k * 160))
            if self.rng.random() < self.dup:
                heapq.heappush(self.queue, (arrival + self.rng.uniform(0, 0.04), k, pkt))

    def due(self, now):
        """Packets arrived by `now`, in arrival order (so jitter reorders them)."""
        ready = []
        while self.queue and self.queue[0][0] <= now:
            ready.append(heapq.heappop(self.queue))
        return ready


class Run:
    """Play `seconds` of a tone through one leg per network, all legs in one hub; record what each leg
    played and, per tick, the playout delay added beyond the network's base delay."""

    def __init__(self, nets, seconds, freq=437.0, amp=10000.0, hub=None):
        self.hub = hub or MediaHub(len(nets))
        self.nets = nets
        self.legs = [self.hub.open(LegConfig(("127.0.0.1", 4000 + 2 * i)), 0.0) for i in range(len(nets))]
        n = int(seconds * 8000) + 8000
        self.signal = tone(n, freq, amp)
        self.played = [[] for _ in nets]
        self.added = [[] for _ in nets]  # ms, per tick, ticks that played packet audio
        self.talk_ticks = [0] * len(nets)  # after the first 2 s, ticks while the sender talked
        self.talk_concealed = [0] * len(nets)  # samples concealed in those
        ticks = int(seconds * 100)
        for t in range(ticks):
            now = t * 0.01
            for net, leg in zip(nets, self.legs, strict=True):
                net.send_until(now, self.signal)
                for arrival, _, pkt in net.due(now):
                    self.hub.receive(leg, pkt, arrival)
            read = self.hub.read_ts.copy()
            started = self.hub.started.copy()
            concealed = self.hub.concealed.copy()
            block = self.hub.pull(now)
            assert block.shape == (self.hub.max_legs, TICK) and block.dtype == np.int16
            for k, (net, leg) in enumerate(zip(nets, self.legs, strict=True)):
                self.played[k].append(block[leg].copy())
                ts = (int(read[leg]) - net.ts0) % 2**32
                if started[leg] and self.hub.concealed[leg] == concealed[leg]:
                    self.added[k].append((now - net.send_time(ts) - net.base) * 1000)
                if started[leg] and t >= 200 and net.talking(ts // 160):
                    self.talk_ticks[k] += 1
                    self.talk_concealed[k] += int(self.hub.concealed[leg] - concealed[leg])
        self.played = [np.concatenate(p) for p in self.played]

    def report(self, k, skip_s=2.0):
        hub, leg = self.hub, self.legs[k]
        st = hub.stats(leg)
        added = np.array(self.added[k][int(skip_s * 100) :])
        out = self.played[k]
        return {
            "added_median_ms": float(np.median(added)),
            "added_p95_ms": float(np.percentile(added, 95)),
            "added_max_ms": float(added.max()),
            "concealed_pct": 100.0 * self.talk_concealed[k] / (TICK * self.talk_ticks[k]),
            "underruns": st.underruns,
            "underrun_events": underrun_events(out, hub, leg),
            "phase_jumps": phase_jumps(out[int(skip_s * 8000) :], 437.0),
            "stats": st,
        }


def underrun_events(out, hub, leg):
    return int(hub.dry_spells[leg])


def phase_jumps(out, freq, threshold=0.3):
    """Discontinuities of a tone: jumps of its instantaneous phase (Hilbert) where it is loud."""
    from scipy.signal import hilbert

    z = hilbert(out.astype(float))
    n = np.arange(len(out))
    phase = np.unwrap(np.angle(z)) - 2 * np.pi * freq * n / 8000
    loud = np.abs(z) > 0.5 * np.abs(z).max()
    d = np.abs(np.diff(phase))
    ok = loud[1:] & loud[:-1]
    ok[:400] = ok[-400:] = False  # the transform's edges
    jumps = (d > threshold) & ok
    return int((jumps[1:] & ~jumps[:-1]).sum())


def rfc3550_jitter_ms(arrivals):
    """RFC 3550 A.8 computed independently from the simulated arrivals, in arrival order."""
    j, last = 0.0, None
    for arrival, ts in sorted(arrivals):
        transit = arrival * 8000 - ts
        if last is not None:
            j += (abs(transit - last) - j) / 16
        last = transit
    return j / 8


PROFILES = {
    "clean": {"jitter": "none"},
    "jitter 0-20 ms": {"jitter": ("uniform", 0.02)},
    "jitter 0-60 ms (reorders)": {"jitter": ("uniform", 0.06)},
    "spikes 150 ms": {"jitter": ("spikes", 0.004, 0.15, 0.005)},
    "burst loss 6 %": {"jitter": ("uniform", 0.01), "loss": (0.02, 0.3)},
    "reorder + 5 % dups": {"jitter": ("uniform", 0.04), "dup": 0.05},
    "drift +100 ppm": {"jitter": ("uniform", 0.02), "drift_ppm": 100.0},
    "drift -100 ppm": {"jitter": ("uniform", 0.02), "drift_ppm": -100.0},
    "drift -1000 ppm": {"jitter": ("uniform", 0.02), "drift_ppm": -1000.0},
    "talk spurts (DTX)": {"jitter": ("uniform", 0.03), "dtx": (1.5, 0.5)},
}


@pytest.fixture(scope="module")
def profile_run():
    nets = [Network(seed=10 + i, **kw) for i, kw in enumerate(PROFILES.values())]
    return Run(nets, 60.0)


def result(profile_run, name):
    return profile_run.report(list(PROFILES).index(name))


def test_clean_network_gets_the_minimum_delay_and_plays_every_sample(profile_run):
    r = result(profile_run, "clean")
    assert r["concealed_pct"] == 0 and r["underruns"] == 0
    assert r["added_median_ms"] < 35  # 20 ms floor + the 20 ms packet + tick phase
    assert r["phase_jumps"] == 0


@pytest.mark.parametrize(
    "name, max_median_ms",
    [("jitter 0-20 ms", 60), ("jitter 0-60 ms (reorders)", 110), ("reorder + 5 % dups", 90)],
)
def test_delay_follows_the_jitter_with_few_losses(profile_run, name, max_median_ms):
    r = result(profile_run, name)
    jitter = PROFILES[name]["jitter"][1] * 1000
    assert jitter * 0.8 < r["added_median_ms"] < max_median_ms, r
    assert r["concealed_pct"] < 1.0 and r["underrun_events"] < 10, r
    assert r["phase_jumps"] < 30, r  # a minute of tone: time-scale changes do not click


def test_more_jitter_more_delay(profile_run):
    d = [
        result(profile_run, n)["added_median_ms"]
        for n in ("clean", "jitter 0-20 ms", "jitter 0-60 ms (reorders)")
    ]
    assert d[0] < d[1] < d[2]


def test_delay_spikes_grow_the_buffer_fast_and_it_stays_bounded(profile_run):
    r = result(profile_run, "spikes 150 ms")
    assert r["added_max_ms"] <= 200 + 30 + 20  # max_ms + packet + tick
    assert r["concealed_pct"] < 5 and r["underrun_events"] < 20, r


def test_burst_loss_is_concealed_without_a_storm_of_underruns(profile_run):
    r = result(profile_run, "burst loss 6 %")
    net = profile_run.nets[list(PROFILES).index("burst loss 6 %")]
    st = r["stats"]
    assert st.packets_lost >= net.lost * 0.9  # the figure RTCP reports is right
    assert 3 < r["concealed_pct"] < 12, r
    assert r["added_median_ms"] < 60, r
    # concealment keeps a tone a tone: the level holds through short losses
    frames = profile_run.played[list(PROFILES).index("burst loss 6 %")][16000:].reshape(-1, 80)
    rms = np.sqrt((frames.astype(float) ** 2).mean(axis=1))
    assert (rms > 0.5 * 10000 / np.sqrt(2)).mean() > 0.95


@pytest.mark.parametrize("name", ["drift +100 ppm", "drift -100 ppm", "drift -1000 ppm"])
def test_clock_drift_is_absorbed(profile_run, name):
    r = result(profile_run, name)
    k = list(PROFILES).index(name)
    added = np.array(profile_run.added[k])
    # the delay does not creep: the last 10 s are no later than the 10 s after start-up
    assert abs(np.median(added[-1000:]) - np.median(added[200:1200])) < 15, r
    assert r["concealed_pct"] < 1.0 and r["phase_jumps"] < 40, r


def test_talk_spurts_start_at_the_measured_delay(profile_run):
    r = result(profile_run, "talk spurts (DTX)")
    assert r["added_median_ms"] < 80, r
    assert r["underrun_events"] < 60  # one per silence at most


def test_rtcp_jitter_and_loss_figures_match_an_independent_count(profile_run):
    for k, name in enumerate(PROFILES):
        net, st = profile_run.nets[k], profile_run.hub.stats(profile_run.legs[k])
        want = rfc3550_jitter_ms(net.arrivals)
        if name == "clean":
            assert st.jitter_ms < 0.1
            continue
        if "DTX" in name:
            continue  # silences are gaps in sequence numbers too: not losses
        assert abs(st.jitter_ms - want) < 0.15 * want + 0.2, (name, st.jitter_ms, want)
        assert st.packets_lost == net.lost, name


def test_reordering_and_duplicates_keep_the_signal_exact():
    """Noise through a jittery network: between the buffer's own adjustments, what plays is the sent
    signal sample for sample (reordered packets in place, duplicates ignored)."""
    hub = MediaHub(4)
    leg = hub.open(LegConfig(("127.0.0.1", 4000)), 0.0)
    signal = (np.random.default_rng(5).normal(0, 3000, 8000 * 22)).clip(-32768, 32767).astype(np.int16)
    net = Network(seed=2, jitter=("uniform", 0.045), dup=0.05)
    got = []
    for n in range(2000):
        now = n * 0.01
        net.send_until(now, signal)
        for arrival, _, pkt in net.due(now):
            hub.receive(leg, pkt, arrival)
        before = int(hub.read_ts[leg])
        block = hub.pull(now)[leg].copy()
        if n > 300 and int(hub.read_ts[leg]) - before == TICK:
            got.append(((before - net.ts0) % 2**32, block))
    ref = g711.alaw_decode(g711.alaw_encode(signal))
    exact = [np.array_equal(b, ref[ts : ts + TICK]) for ts, b in got]
    assert len(got) > 1400 and np.mean(exact) > 0.99
    st = hub.stats(leg)
    assert st.duplicates > 0 and st.packets_lost == 0 and st.jitter_ms > 1.0


def test_many_packets_per_tick_after_a_stall_stay_within_max_delay():
    hub = MediaHub(1, max_ms=200)
    leg = hub.open(LegConfig(("127.0.0.1", 4000)), 0.0)
    payload = g711.alaw_encode(tone(160)).tobytes()
    k = 0
    for n in range(600):
        now = n * 0.01
        if n % 2 == 0 and not 200 <= n < 260:  # 600 ms of nothing, then it all arrives at once
            for j in range(k, n // 2 + 1):
                hub.receive(leg, build_rtp(8, j, j * 160, 7, payload), now)
            k = n // 2 + 1
        elif n == 260:
            pass
        hub.pull(now)
        ahead = int(hub.newest[leg] - hub.read_ts[leg])
        assert ahead <= 200 * 8 + 5 * TICK
    st = hub.stats(leg)
    assert st.dropped_ms > 0 and st.buffer_ms <= 200 and st.underruns == 1


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


def test_media_port_pulls_ahead_in_order_and_falls_back_inline():
    """SipMediaPort with `ahead`: the frames the tick gets are the jitter buffer's frames in order, whether
    the SIP thread prepared them or the tick had to pull inline; writes are sent in order from there."""
    from board.clock import VirtualClock
    from firmware.sip.endpoint import SipMediaPort

    def run(ahead_mode):
        hub = MediaHub(2)
        leg = hub.open(LegConfig(("127.0.0.1", 4000)), 0.0)
        queued, sent = [], []

        def schedule(fn):
            queued.append(fn)
            return True

        port = SipMediaPort(hub, VirtualClock(), sent.extend, ahead=schedule if ahead_mode else None)
        signal = tone(160 * 40, 700.0, 8000.0)
        heard = []
        for n in range(60):
            if n % 2 == 0 and n < 80:
                payload = g711.alaw_encode(signal[n * 80 : n * 80 + 160]).tobytes()
                hub.receive(leg, build_rtp(8, n // 2, n * 80, 7, payload), 0.0)
            heard.append(port.read(TICK)[leg].copy())
            port.write(np.full((2, TICK), 0xD5, np.uint8))
            if ahead_mode != "starved" or n % 3 == 0:  # "starved": the SIP loop misses two ticks of three
                while queued:
                    queued.pop(0)()
        return np.concatenate(heard), port, sent

    inline, port0, sent0 = run(None)
    assert port0.ahead_hits == 0 and port0.inline_pulls == 60
    played = g711.alaw_decode(inline)
    assert np.abs(played).max() > 4000  # the tone came through
    for mode in ("ahead", "starved"):
        heard, port, sent = run(mode)
        assert port.ahead_hits > 0 and port.inline_pulls > 0
        # the pulled-ahead frame of tick n is computed before tick n's packet arrives: the leg starts one
        # tick later at most, and then plays the same audio, in order
        a = g711.alaw_decode(heard)
        start0 = int(np.flatnonzero(np.abs(played) > 100)[0])
        start = int(np.flatnonzero(np.abs(a) > 100)[0])
        assert 0 <= start - start0 <= TICK
        n = 20 * TICK
        assert np.array_equal(a[start : start + n], played[start0 : start0 + n])
        seqs = [int.from_bytes(pkt[2:4], "big") for _, pkt in sent if pkt[1] & 0x7F == 8]
        assert len(seqs) >= 25 and all(
            (b - a_) & 0xFFFF == 1 for a_, b in zip(seqs[:-1], seqs[1:], strict=True)
        )


def media_cost(module, legs=240, seconds=5.0):
    """Share of one core for `legs` calls' media through `module`.MediaHub (the RTP part of
    tools/bench/sip.py: a packet in every 20 ms per leg, pull + push_tx every 10 ms)."""
    import time

    hub = module.MediaHub(legs)
    for leg in range(legs):
        hub.open(module.LegConfig(("127.0.0.1", 9000 + 2 * leg)), 0.0)
    payload = g711.alaw_encode(tone(160, 1000.0, 6000.0)).tobytes()
    tx = np.zeros((legs, TICK), np.int16)
    cpu0 = time.process_time()
    for n in range(int(seconds * 100)):
        now = n * 0.01
        if n % 2 == 0:
            for leg in range(legs):
                hub.receive(leg, module.build_rtp(8, n // 2, n * 80, 1000 + leg, payload), now)
        hub.pull(now)
        hub.push_tx(tx, now)
    return (time.process_time() - cpu0) / seconds


def compare_cost(revision, runs=5):
    """This rtp.py against the one at git `revision` (e.g. 9bb9ae9, the fixed 60 ms buffer), in turn."""
    import importlib.util
    import statistics
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import firmware.sip.rtp as current

    src = subprocess.run(
        ["git", "show", f"{revision}:firmware/sip/rtp.py"], capture_output=True, check=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "rtp_reference.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("rtp_reference", path)
    ref = importlib.util.module_from_spec(spec)
    sys.modules["rtp_reference"] = ref
    spec.loader.exec_module(ref)
    a, b = [], []
    for _ in range(runs):
        a.append(media_cost(ref))
        b.append(media_cost(current))
    print(f"240 legs, share of one core: rtp.py@{revision} " + " ".join(f"{x:.1%}" for x in a))
    print("                             this rtp.py " + " ".join(f"{x:.1%}" for x in b))
    ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
    print(
        f"median {statistics.median(a):.1%} -> {statistics.median(b):.1%}, ratio (median of runs) {ratio:.2f}"
    )


def tick_cost(ahead, legs=240, seconds=5.0):
    """Tick-thread time per 10 ms tick of the SIP rows (`SipMediaPort.read` + `write`) for `legs` calls
    (a packet in every 20 ms per leg, 0-30 ms jitter): with `ahead`, the work the port hands to the SIP
    thread (the next tick's pull, packetising) runs between ticks, outside the timed part, as the SIP
    loop would run it. -> (median, p99) in ms."""
    import time

    from board.clock import VirtualClock
    from firmware.sip.endpoint import SipMediaPort

    clock = VirtualClock()
    hub = MediaHub(legs)
    for leg in range(legs):
        hub.open(LegConfig(("127.0.0.1", 9000 + 2 * leg)), 0.0)
    queued = []
    sent = []

    def schedule(fn):
        queued.append(fn)
        return True

    port = SipMediaPort(hub, clock, sent.extend, ahead=schedule if ahead else None)
    rng = np.random.default_rng(3)
    payloads = [g711.alaw_encode(tone(160, 300.0 + 3 * leg, 6000.0)).tobytes() for leg in range(legs)]
    arrivals = []  # (arrival, leg, packet)
    codes = g711.alaw_encode(tone(legs * TICK, 500.0, 4000.0).reshape(legs, TICK))
    cost = []
    for n in range(int(seconds * 100)):
        now = n * 0.01
        if n % 2 == 0:
            for leg in range(legs):
                pkt = build_rtp(8, n // 2, n * 80, 1000 + leg, payloads[leg])
                arrivals.append((now + rng.uniform(0, 0.03), leg, pkt))
            arrivals.sort(key=lambda a: a[0])
        k = 0
        while k < len(arrivals) and arrivals[k][0] <= now:
            hub.receive(arrivals[k][1], arrivals[k][2], arrivals[k][0])
            k += 1
        del arrivals[:k]
        clock.advance(0.01)
        t0 = time.perf_counter()
        port.read(TICK)
        port.write(codes)
        cost.append(time.perf_counter() - t0)
        while queued:  # the SIP loop's turn
            queued.pop(0)()
        sent.clear()
    ms = np.array(cost[100:]) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 99))


def compare_tick(runs=5):
    """The tick thread's share of the SIP rows: everything inline against the work pulled ahead."""
    inline, ahead = [], []
    for _ in range(runs):
        inline.append(tick_cost(False))
        ahead.append(tick_cost(True))
    med = [float(np.median([r[0] for r in x])) for x in (inline, ahead)]
    p99 = [float(np.median([r[1] for r in x])) for x in (inline, ahead)]
    print(f"240 legs, tick-thread time of the SIP rows per 10 ms tick ({runs} runs each, medians):")
    print(f"  inline (pull + push_tx on the tick): median {med[0]:.3f} ms, p99 {p99[0]:.3f} ms")
    print(f"  ahead (SIP thread pulls the next tick): median {med[1]:.3f} ms, p99 {p99[1]:.3f} ms")
    print(f"  ratio ahead/inline: median {med[1] / med[0]:.3f}, p99 {p99[1] / p99[0]:.3f}")


def main() -> None:
    """Print the jitter-buffer table: `python -m tests.sip.test_rtp [--against REVISION]` (the latter
    also compares the media cost with rtp.py at that git revision); `--tick` prints only the tick
    thread's cost of the SIP rows, inline against ahead (`SipMediaPort`)."""
    import sys
    import time

    if "--against" in sys.argv:
        compare_cost(sys.argv[sys.argv.index("--against") + 1])
    if "--tick" in sys.argv:
        compare_tick()
        return

    nets = [Network(seed=10 + i, **kw) for i, kw in enumerate(PROFILES.values())]
    t0 = time.process_time()
    run = Run(nets, 60.0)
    print(f"60 s per profile, one hub, one leg per profile ({time.process_time() - t0:.1f} s CPU)")
    print(
        f"{'profile':<28}{'added delay median / p95 / max ms':>36}{'concealed %':>13}{'underruns':>11}"
        f"{'tone phase jumps':>18}{'RTCP jitter ms':>16}{'lost':>6}{'late':>6}{'dups':>6}"
    )
    for k, name in enumerate(PROFILES):
        r = run.report(k)
        st = r["stats"]
        delays = f"{r['added_median_ms']:.0f} / {r['added_p95_ms']:.0f} / {r['added_max_ms']:.0f}"
        print(
            f"{name:<28}{delays:>36}{r['concealed_pct']:>13.2f}{r['underrun_events']:>11}"
            f"{r['phase_jumps']:>18}{st.jitter_ms:>16.1f}{st.packets_lost:>6}{st.late:>6}{st.duplicates:>6}"
        )


if __name__ == "__main__":
    main()
