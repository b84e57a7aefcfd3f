"""Caller ID (dsp.callerid): Bell 202 / V.23 FSK (SDMF, MDMF) and DTMF CLIP, receiver and sender.

CI part: every message kind in every standard at -14..-40 dBm0, the representative SNR points (10 and 8 dB),
A-law, split invariance, onset, checksum fuzzing, bad input. The full SNR sweep is in test_callerid_snr.py
(slow); the peers (minimodem, multimon-ng, spandsp) in test_callerid_interop.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import g711
from dsp.callerid import (
    CallerId,
    CallerIdReceiver,
    CallerIdSender,
    build_mdmf,
    build_sdmf,
    dtmf_clip_string,
    parse_dtmf_clip,
    parse_message,
)
from dsp.events import Event
from tools.bench.dsp_callerid import decode_rate

FULL = CallerId(number="13812345678", name="ZHANG SAN", when="11230701")
PRIVATE = CallerId(when="11230702", absence="private")
UNAVAILABLE = CallerId(when="11230703", absence="unavailable")
NUMBER_ONLY = CallerId(number="075512345678", when="01010000")
NAME_ONLY = CallerId(name="LI SI", when="12312359", absence="private")

# (standard, format, caller ID, what the receiver must report)
CASES = [
    ("bell202", "mdmf", FULL, FULL),
    ("bell202", "mdmf", PRIVATE, PRIVATE),
    ("bell202", "mdmf", UNAVAILABLE, UNAVAILABLE),
    ("bell202", "mdmf", NAME_ONLY, NAME_ONLY),
    ("bell202", "sdmf", NUMBER_ONLY, NUMBER_ONLY),
    ("bell202", "sdmf", PRIVATE, PRIVATE),
    ("bell202", "sdmf", UNAVAILABLE, UNAVAILABLE),
    ("v23", "mdmf", FULL, FULL),
    ("v23", "mdmf", PRIVATE, PRIVATE),
    ("v23", "mdmf", UNAVAILABLE, UNAVAILABLE),
    ("v23", "mdmf", NAME_ONLY, NAME_ONLY),
    ("v23", "sdmf", NUMBER_ONLY, NUMBER_ONLY),  # China sends SDMF over V.23 tones too
    ("v23", "sdmf", PRIVATE, PRIVATE),
    ("dtmf", "mdmf", CallerId(number="13812345678"), CallerId(number="13812345678")),
    ("dtmf", "mdmf", CallerId(absence="private"), CallerId(absence="private")),
    ("dtmf", "mdmf", CallerId(absence="unavailable"), CallerId(absence="unavailable")),
]


def run(rx: CallerIdReceiver, x: np.ndarray, block: int = 80) -> list[Event]:
    events = []
    for k in range(0, x.shape[1], block):
        events += rx.process(x[:, k : k + block])
    return events


def place(signals: list[np.ndarray], offsets: list[int], tail: int = 2000) -> np.ndarray:
    n = max(o + len(s) for s, o in zip(signals, offsets, strict=True)) + tail
    x = np.zeros((len(signals), n), dtype=np.int16)
    for i, (s, o) in enumerate(zip(signals, offsets, strict=True)):
        x[i, o : o + len(s)] = s
    return x


@pytest.mark.parametrize("standard", ["bell202", "v23", "dtmf"])
@pytest.mark.parametrize("level", [-14.0, -25.0, -40.0])
def test_every_message_kind_at_every_level(standard: str, level: float) -> None:
    cases = [c for c in CASES if c[0] == standard]
    sender = CallerIdSender(standard, level_dbm0=level)
    offsets = [137 * i + 11 for i in range(len(cases))]
    x = place([sender.signal(cid, fmt) for _, fmt, cid, _ in cases], offsets)
    rx = CallerIdReceiver(len(cases), standard)
    events = run(rx, x)
    assert sorted(e.channel for e in events) == list(range(len(cases)))
    for e in events:
        assert e.kind == "callerid"
        assert e.value == cases[e.channel][3]
        # FSK: to the sample; DTMF: as dsp.dtmf reports the first digit's onset (within 5 ms).
        assert abs(e.sample - offsets[e.channel]) <= (40 if standard == "dtmf" else 4), (
            e,
            offsets[e.channel],
        )


@pytest.mark.parametrize("standard", ["bell202", "v23", "dtmf"])
def test_through_alaw(standard: str) -> None:
    cases = [c for c in CASES if c[0] == standard]
    for level in (-14.0, -40.0):
        sender = CallerIdSender(standard, level_dbm0=level)
        x = place([sender.signal(cid, fmt) for _, fmt, cid, _ in cases], [300] * len(cases))
        y = g711.alaw_decode(g711.alaw_encode(x))
        events = run(CallerIdReceiver(len(cases), standard), y)
        assert {e.channel: e.value for e in events} == {i: c[3] for i, c in enumerate(cases)}


@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_representative_snr_points(standard: str) -> None:
    # 10 dB: every message; 8 dB: at least 95 % (spandsp: about 95 % at 10 dB). White noise over 0-4 kHz.
    right, wrong = decode_rate(standard, 10.0, -30.0, 200, seed=10)
    assert (right, wrong) == (200, 0)
    right, wrong = decode_rate(standard, 8.0, -40.0, 200, seed=8)
    assert right >= 190 and wrong == 0


def test_split_invariance_any_block_sizes() -> None:
    sender = CallerIdSender("bell202", level_dbm0=-20.0)
    sigs = [sender.signal(FULL), sender.signal(PRIVATE, "sdmf"), sender.signal(UNAVAILABLE)]
    x = place(sigs, [5, 333, 1999])
    x = np.concatenate([x, place(sigs[::-1], [70, 10, 400])], axis=1)  # two messages per channel
    reference = run(CallerIdReceiver(3), x, block=x.shape[1])
    assert len(reference) == 6
    rng = np.random.default_rng(3)
    for _ in range(3):
        rx = CallerIdReceiver(3)
        events, k = [], 0
        while k < x.shape[1]:
            n = int(rng.integers(1, 300))
            events += rx.process(x[:, k : k + n])
            k += n
        assert events == reference
    for block in (1, 7, 80, 160, 1000):
        assert run(CallerIdReceiver(3), x, block) == reference


def test_reset_restarts_the_sample_count_and_forgets_a_message() -> None:
    sender = CallerIdSender("v23", level_dbm0=-20.0)
    sig = sender.signal(FULL)
    rx = CallerIdReceiver(2, "v23")
    x = place([sig, sig], [100, 100])
    half = 4200  # inside the message data (seizure 2000 + mark 1200 samples after 100)
    rx.process(x[:, :half])
    rx.reset(0)  # channel 0 loses the message in progress; channel 1 is untouched
    events = rx.process(x[:, half:])
    assert [(e.channel, e.value) for e in events] == [(1, FULL)]
    later = rx.process(place([sig, np.zeros(0, np.int16)], [50, 0]))
    assert [e.channel for e in later] == [0]
    assert abs(later[0].sample - (x.shape[1] - half + 50)) <= 2  # counted from the reset


def test_silence_noise_and_speechlike_input_give_no_event() -> None:
    rng = np.random.default_rng(5)
    n = 8000 * 5
    x = np.zeros((4, n), dtype=np.int16)
    x[1] = np.clip(rng.standard_normal(n) * 3000, -32768, 32767).astype(np.int16)
    t = np.arange(n) / 8000
    x[2] = (8000 * np.sin(2 * np.pi * 1700 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.int16)
    x[3] = np.where(rng.random(n) < 0.5, 32767, -32768).astype(np.int16)  # clipped garbage
    for standard in ("bell202", "v23"):
        assert run(CallerIdReceiver(4, standard), x) == []


def test_clipping_and_garbage_on_one_channel_do_not_touch_another() -> None:
    sender = CallerIdSender("bell202", level_dbm0=-14.0)
    sig = sender.signal(FULL)
    alone = run(CallerIdReceiver(1), place([sig], [400]))
    rng = np.random.default_rng(9)
    garbage = np.where(rng.random(sig.size + 2400) < 0.5, 32767, -32768).astype(np.int16)
    loud = np.clip(sig.astype(np.int32) * 40, -32768, 32767).astype(np.int16)  # hard-clipped FSK
    x = place([garbage, sig, loud], [0, 400, 400])
    events = run(CallerIdReceiver(3), x)
    assert [(e.value, e.sample) for e in events if e.channel == 1] == [(alone[0].value, alone[0].sample)]
    assert [e.value for e in events if e.channel == 2] == [FULL]  # a clipped FSK signal still decodes
    assert not [e for e in events if e.channel == 0]


@pytest.mark.parametrize("baud", [1188.0, 1212.0])
@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_sender_clock_one_percent_off(standard: str, baud: float) -> None:
    sender = CallerIdSender(standard, level_dbm0=-30.0, baud=baud)
    x = place([sender.signal(FULL), sender.signal(NUMBER_ONLY, "sdmf")], [100, 2000])
    assert [e.value for e in sorted(run(CallerIdReceiver(2, standard), x), key=lambda e: e.channel)] == [
        FULL,
        NUMBER_ONLY,
    ]


@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_tone_frequency_error_and_twist(standard: str) -> None:
    # GR-30 / EN 300 659 senders: tones within 1 % (Bell 202 +-12/22 Hz), mark/space levels up to 6 dB apart.
    senders = [
        CallerIdSender(standard, level_dbm0=-30.0, freq_error=0.01),
        CallerIdSender(standard, level_dbm0=-30.0, freq_error=-0.01),
        CallerIdSender(standard, level_dbm0=-30.0, twist_db=6.0),
        CallerIdSender(standard, level_dbm0=-30.0, twist_db=-6.0),
        CallerIdSender(standard, level_dbm0=-4.0),  # loud end of GR-30's receiver range
    ]
    x = place([s.signal(FULL) for s in senders], [100] * len(senders))
    events = run(CallerIdReceiver(len(senders), standard), x)
    assert sorted((e.channel, e.value) for e in events) == [(i, FULL) for i in range(len(senders))]


def test_short_preamble_as_spandsp_sends_it() -> None:
    # No channel seizure and a short mark (ETSI allows CLIP without seizure during a call).
    sender = CallerIdSender("v23", level_dbm0=-20.0, seizure_bits=0, mark_bits=55)
    assert [e.value for e in run(CallerIdReceiver(1, "v23"), place([sender.signal(FULL)], [10]))] == [FULL]


# ------------------------------------------------------------------------------------------ checksum fuzz
def _corrupted_signals(frames: list[bytes], standard: str) -> np.ndarray:
    sender = CallerIdSender(standard, level_dbm0=-20.0)
    return place([sender.modulate(f) for f in frames], [100] * len(frames))


@settings(max_examples=15, deadline=None)
@given(
    number=st.text("0123456789", min_size=1, max_size=20),
    name=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30),
    positions=st.lists(st.integers(0, 10_000), min_size=6, max_size=6),
    deltas=st.lists(st.integers(1, 255), min_size=6, max_size=6),
)
def test_a_corrupted_frame_never_gives_an_event(
    number: str, name: str, positions: list, deltas: list
) -> None:
    good = build_mdmf(CallerId(number=number, name=name, when="11230701"))
    frames = []
    for pos, delta in zip(positions, deltas, strict=True):
        bad = bytearray(good)
        bad[pos % len(bad)] = (bad[pos % len(bad)] + delta) % 256  # any one byte wrong, checksum included
        frames.append(bytes(bad))
    frames[0] = good[:-1] + bytes([(good[-1] + deltas[0]) % 256])  # the checksum byte itself
    x = _corrupted_signals(frames + [good], "bell202")
    events = run(CallerIdReceiver(len(frames) + 1), x)
    assert [(e.channel, e.value) for e in events] == [
        (len(frames), CallerId(number=number, name=name, when="11230701"))
    ]


def test_every_wrong_checksum_value_is_rejected() -> None:
    good = build_sdmf(NUMBER_ONLY)
    frames = [good[:-1] + bytes([v]) for v in range(256) if v != good[-1]]
    for standard in ("bell202", "v23"):
        assert run(CallerIdReceiver(len(frames), standard), _corrupted_signals(frames, standard)) == []


# ------------------------------------------------------------------------------------------ message layer
def test_message_bytes_follow_gr30() -> None:
    sdmf = build_sdmf(CallerId(number="5551234", when="01020304"))
    assert sdmf[:2] == bytes([0x04, 15]) and sdmf[2:-1] == b"010203045551234"
    assert sum(sdmf) % 256 == 0
    mdmf = build_mdmf(CallerId(number="123", name="AB", when="01020304", absence=None))
    assert mdmf[:-1] == bytes([0x80, 19, 1, 8]) + b"01020304" + bytes([2, 3]) + b"123" + bytes([7, 2]) + b"AB"
    withheld = build_mdmf(CallerId(absence="private"))
    assert withheld[:-1] == bytes([0x80, 6, 4, 1]) + b"P" + bytes([8, 1]) + b"P"
    assert parse_message(sdmf[:-1]) == CallerId(number="5551234", when="01020304")
    assert parse_message(build_sdmf(CallerId(absence="unavailable", when="01020304"))[:-1]) == CallerId(
        when="01020304", absence="unavailable"
    )


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x80\x05\x02\x04123", b"\x05\x02ab", b"\x80\x03\x02\x05123", b"\x80\x03\x04\x01X",
     b"\x04\x0a1399000012", b"\x80\x03\x02\x011"[:-1]],
)  # fmt: skip
def test_malformed_messages_parse_to_nothing(data: bytes) -> None:
    assert parse_message(data) is None


def test_dtmf_strings() -> None:
    assert dtmf_clip_string(CallerId(number="123")) == "A123C"
    assert dtmf_clip_string(CallerId(absence="private")) == "D1C"
    assert dtmf_clip_string(CallerId(absence="unavailable"), "#") == "D3#"
    assert parse_dtmf_clip("A0755123#") == CallerId(number="0755123")
    assert parse_dtmf_clip("D2C") == CallerId(absence="unavailable")
    assert parse_dtmf_clip("B10C") == CallerId(absence="private")
    assert parse_dtmf_clip("B00C") == CallerId(absence="unavailable")
    for bad in ("AC", "A12", "D9C", "C123C", "A1*2C", "B11C"):
        assert parse_dtmf_clip(bad) is None


def test_dtmf_digits_too_slow_are_not_one_string() -> None:
    sender = CallerIdSender("dtmf", level_dbm0=-14.0, dtmf_off_ms=1200.0)
    x = place([sender.signal(CallerId(number="123"))], [0])
    assert run(CallerIdReceiver(1, "dtmf"), x) == []


# ------------------------------------------------------------------------------------------ bad input
def test_bad_blocks_raise_value_error() -> None:
    rx = CallerIdReceiver(2)
    with pytest.raises(ValueError, match="int16"):
        rx.process(np.zeros((2, 80), dtype=np.float32))
    with pytest.raises(ValueError, match="shaped"):
        rx.process(np.zeros((3, 80), dtype=np.int16))
    with pytest.raises(ValueError, match="shaped"):
        rx.process(np.zeros(80, dtype=np.int16))
    with pytest.raises(ValueError, match="shaped"):
        rx.process(np.zeros((2, 0), dtype=np.int16))
    with pytest.raises(ValueError):
        rx.reset(2)
    with pytest.raises(ValueError, match="standard"):
        CallerIdReceiver(1, "bell103")
    with pytest.raises(ValueError):
        CallerIdReceiver(0)
    assert rx.process(np.zeros((2, 80), dtype=np.int16)) == []  # still usable


def test_sender_rejects_what_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="date"):
        build_sdmf(CallerId(number="1"))
    with pytest.raises(ValueError, match="8 digits"):
        build_mdmf(CallerId(number="1", when="1323"))
    with pytest.raises(ValueError, match="digits"):
        build_mdmf(CallerId(number="12a"))
    with pytest.raises(ValueError, match="absence"):
        build_mdmf(CallerId(absence="secret"))
    with pytest.raises(ValueError, match="empty"):
        build_mdmf(CallerId())
    with pytest.raises(ValueError, match="255"):
        build_mdmf(CallerId(name="X" * 300))
    with pytest.raises(ValueError):
        CallerIdSender("dtmf").signal(CallerId(number="12#"))
    with pytest.raises(ValueError):
        CallerIdSender("bell202", level_dbm0=10.0)
