"""The FXO line socket protocol (docs/virtual-lines.md, "FXO lines"): encode and decode, nothing else.

Both ends use this module: the simulated board (box side, `board/sim/board.py`) and the CO line far end
(`tools/linesim/co.py`). Every message is a 12-octet little-endian header and `n` audio samples:

    offset  size  field
    0       1     kind      0x4C 'L' line state + audio, far end -> box
                            0x48 'H' hook state + audio, box -> far end
    1       1     version   1
    2       2     flags     L: bit 0 RING (ringing voltage on during this block)
                            H: bit 0 OFFHOOK (loop closed)
    4       2     dc        L: tip-ring DC voltage, signed, 0.1 V (-480 = battery -48 V normal polarity,
                               +480 = reversed, 0 = no battery)
                            H: loop current, signed, 0.1 mA (0 when on hook)
    6       2     ring_v    L: ringing voltage, 0.1 V rms (750 = 75 V); H: 0
    8       2     ring_hz   L: ringing frequency, 0.1 Hz (250 = 25 Hz); H: 0
    10      2     n         audio samples that follow (0..8000); the block lasts n / 8000 s
    12      2n    audio     int16 little-endian linear PCM, 8000 Hz; +/-32767 = A-law overload (+3.14 dBm0)

The header is a fixed 12-octet record decoded with `struct` (not `construct`): it is read 1600 times a
second per board in the benchmark and `struct.unpack_from` costs a fraction of a microsecond.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

KIND_LINE = 0x4C  # 'L'
KIND_HOOK = 0x48  # 'H'
VERSION = 1
FLAG_RING = 0x0001
FLAG_OFFHOOK = 0x0001
HEADER = struct.Struct("<BBHhHHH")
HEADER_SIZE = HEADER.size  # 12
MAX_SAMPLES = 8000
SAMPLE_RATE = 8000
MAX_MESSAGE = HEADER_SIZE + 2 * MAX_SAMPLES
# 0 dBm0 sine peak on the int16 scale: 3.14 dB below full scale (the A-law overload point).
DBM0_PEAK = 32768 * 10 ** (-3.14 / 20)

_EMPTY = np.zeros(0, dtype="<i2")


class FxoProtocolError(ValueError):
    """A message that does not follow docs/virtual-lines.md (the peer's fault); the reader drops it."""


@dataclass(frozen=True)
class LineState:
    """What the CO applies to the line (far end -> box)."""

    dc_volts: float = 0.0  # tip-ring DC; -48 normal battery, +48 reversed, 0 none
    ringing: bool = False
    ring_vrms: float = 0.0
    ring_hz: float = 0.0

    @property
    def battery(self) -> bool:
        return abs(self.dc_volts) >= 1.0


NO_LINE = LineState()


@dataclass(frozen=True)
class HookState:
    """What the box does to the line (box -> far end)."""

    offhook: bool = False
    loop_ma: float = 0.0


def _deci(value: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, round(value * 10)))


def encode_line(state: LineState, audio: np.ndarray | None = None) -> bytes:
    samples = _EMPTY if audio is None else np.asarray(audio, dtype="<i2")
    if samples.size > MAX_SAMPLES:
        raise ValueError(f"at most {MAX_SAMPLES} samples per message, got {samples.size}")
    header = HEADER.pack(
        KIND_LINE,
        VERSION,
        FLAG_RING if state.ringing else 0,
        _deci(state.dc_volts, -32768, 32767),
        _deci(state.ring_vrms, 0, 65535) if state.ringing else 0,
        _deci(state.ring_hz, 0, 65535) if state.ringing else 0,
        samples.size,
    )
    return header + samples.tobytes()


def encode_hook(state: HookState, audio: np.ndarray | None = None) -> bytes:
    samples = _EMPTY if audio is None else np.asarray(audio, dtype="<i2")
    if samples.size > MAX_SAMPLES:
        raise ValueError(f"at most {MAX_SAMPLES} samples per message, got {samples.size}")
    header = HEADER.pack(
        KIND_HOOK,
        VERSION,
        FLAG_OFFHOOK if state.offhook else 0,
        _deci(state.loop_ma, -32768, 32767),
        0,
        0,
        samples.size,
    )
    return header + samples.tobytes()


def parse_header(message: bytes, kind: int) -> tuple[int, int, int, int, int]:
    """Check a message's header and length; (flags, dc, ring_v, ring_hz, n) as raw integers.
    The board's hot path uses this directly (no objects, no numpy); decode_* build on it."""
    if len(message) < HEADER_SIZE:
        raise FxoProtocolError(f"message of {len(message)} octets is shorter than the 12-octet header")
    got_kind, version, flags, dc, ring_v, ring_hz, n = HEADER.unpack_from(message)
    if got_kind != kind:
        raise FxoProtocolError(f"message kind 0x{got_kind:02x}, expected 0x{kind:02x}")
    if version != VERSION:
        raise FxoProtocolError(f"protocol version {version}, expected {VERSION}")
    if n > MAX_SAMPLES:
        raise FxoProtocolError(f"{n} samples in one message, at most {MAX_SAMPLES}")
    if len(message) != HEADER_SIZE + 2 * n:
        raise FxoProtocolError(f"message of {len(message)} octets, header says {HEADER_SIZE + 2 * n}")
    return flags, dc, ring_v, ring_hz, n


def _split(message: bytes, kind: int) -> tuple[int, int, int, int, np.ndarray]:
    flags, dc, ring_v, ring_hz, n = parse_header(message, kind)
    audio = np.frombuffer(message, dtype="<i2", count=n, offset=HEADER_SIZE)
    return flags, dc, ring_v, ring_hz, audio


def decode_line(message: bytes) -> tuple[LineState, np.ndarray]:
    flags, dc, ring_v, ring_hz, audio = _split(message, KIND_LINE)
    ringing = bool(flags & FLAG_RING)
    state = LineState(
        dc_volts=dc / 10,
        ringing=ringing,
        ring_vrms=ring_v / 10 if ringing else 0.0,
        ring_hz=ring_hz / 10 if ringing else 0.0,
    )
    return state, audio


def decode_hook(message: bytes) -> tuple[HookState, np.ndarray]:
    flags, dc, _ring_v, _ring_hz, audio = _split(message, KIND_HOOK)
    return HookState(offhook=bool(flags & FLAG_OFFHOOK), loop_ma=dc / 10), audio
