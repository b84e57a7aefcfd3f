"""CO line far end logic (sans I/O) and the FXO socket message format."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from board.sim.fxoline import (
    FxoProtocolError,
    HookState,
    LineState,
    decode_hook,
    decode_line,
    encode_hook,
    encode_line,
)
from tools.linesim.co import CLEARED, CONNECTED, IDLE, CoLine


def test_messages_round_trip():
    audio = np.arange(-40, 40, dtype=np.int16) * 400
    state = LineState(dc_volts=-48.0, ringing=True, ring_vrms=75.0, ring_hz=25.0)
    got, a = decode_line(encode_line(state, audio))
    assert got == state and np.array_equal(a, audio)
    hook, a = decode_hook(encode_hook(HookState(offhook=True, loop_ma=23.5), audio[:3]))
    assert hook == HookState(True, 23.5) and np.array_equal(a, audio[:3])
    # A hook message is not a line message, short/long/garbage messages are refused with the reason.
    for bad, why in [
        (encode_hook(HookState()), "kind"),
        (b"\x4c\x01", "shorter"),
        (encode_line(state, audio)[:-1], "header says"),
        (bytes([0x4C, 9]) + bytes(10), "version"),
        (b"\xff" * 40, "kind"),
    ]:
        with pytest.raises(FxoProtocolError, match=why):
            decode_line(bad)


def _run(line: CoLine, t0: float, t1: float, block: int = 80) -> list[tuple[float, LineState, np.ndarray]]:
    out = []
    for i in range(round((t1 - t0) * 8000 / block)):
        t = t0 + i * block / 8000
        state, audio = line.block(t, block)
        out.append((t, state, audio))
    return out


def test_china_cadence_and_callerid_slot():
    line = CoLine()
    fsk = (np.sin(np.arange(1, 8001) * 0.3) * 8000).astype(np.int16)  # 1 s of "FSK"
    line.ring(0.0, callerid=fsk)
    blocks = _run(line, 0.0, 10.0)
    ring = np.array([s.ringing for _, s, _ in blocks])
    t = np.array([b[0] for b in blocks])
    assert ring[(t < 1.0)].all() and not ring[(t >= 1.0) & (t < 5.0)].any()
    assert ring[(t >= 5.0) & (t < 6.0)].all() and not ring[(t >= 6.0) & (t < 10.0)].any()
    assert all(s.dc_volts == -48.0 for _, s, _ in blocks)
    audio = np.concatenate([a for _, _, a in blocks])
    nz = np.flatnonzero(audio)
    assert nz[0] == 1.5 * 8000 and np.array_equal(audio[12000:20000], fsk)
    kinds = [(e.kind, round(e.time, 3)) for e in line.events]
    assert kinds[:4] == [("ring_on", 0.0), ("ring_off", 1.0), ("callerid", 1.5), ("ring_on", 5.0)]


def test_answer_reverses_polarity_and_clear_restores_it():
    line = CoLine()
    line.ring(0.0)
    _run(line, 0.0, 0.5)
    line.hook(0.5, HookState(offhook=True), np.zeros(80, np.int16))
    assert line.state == CONNECTED
    st = line.line_state(0.6)
    assert not st.ringing and st.dc_volts == 48.0
    line.far_clear(3.0)
    assert line.state == CLEARED and line.line_state(3.0).dc_volts == -48.0
    line.hook(3.2, HookState(offhook=False), np.zeros(0, np.int16))
    assert line.state == IDLE
    assert [e.kind for e in line.events] == ["ring_on", "answered", "far_clear"]


def test_battery_loss_and_false_ring_burst():
    line = CoLine()
    line.set_battery(1.0, False)
    assert line.line_state(1.0) == LineState() and not line.line_state(1.0).battery
    line.set_battery(2.0, True)
    line.ring_burst(2.0, 0.1)
    assert line.line_state(2.05).ringing and not line.line_state(2.2).ringing


def test_callerid_must_fit_between_rings():
    with pytest.raises(ValueError):
        CoLine().ring(0.0, callerid=np.zeros(8000 * 4, np.int16))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_protocol_error(data):
    for decode in (decode_line, decode_hook):
        try:
            decode(data)
        except FxoProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    dc=st.integers(-3276, 3276),
    ringing=st.booleans(),
    ring_v=st.integers(0, 6553),
    ring_hz=st.integers(0, 6553),
    audio=st.lists(st.integers(-32768, 32767), max_size=300),
)
def test_line_messages_round_trip(dc, ringing, ring_v, ring_hz, audio):
    state = LineState(dc_volts=dc / 10, ringing=ringing, ring_vrms=ring_v / 10, ring_hz=ring_hz / 10)
    got, a = decode_line(encode_line(state, np.array(audio, np.int16)))
    assert got.dc_volts == dc / 10 and got.ringing == ringing
    assert (got.ring_vrms, got.ring_hz) == ((ring_v / 10, ring_hz / 10) if ringing else (0.0, 0.0))
    assert a.tolist() == audio
