"""Caller ID (on-hook data transmission) receiver and sender, for all channels at once.

Standards:
- "bell202": Bellcore GR-30-CORE CLASS, 1200 baud FSK, mark 1200 Hz / space 2200 Hz (also China, YD/T 1596).
- "v23": ETSI EN 300 659-1/-3 CLIP, 1200 baud FSK, mark 1300 Hz / space 2100 Hz.
- "dtmf": DTMF CLIP (ETSI EN 300 659-1 Annex B practice, Denmark/Netherlands/China CPE), see below.

FSK messages (both FSK standards accept both): SDMF type 0x04 (date/time MMDDHHMM + number, or 'O'/'P' in the
number field when withheld) and MDMF type 0x80 (call setup) with parameters 0x01 date/time, 0x02 number,
0x04 reason for absence of number ('O' unavailable, 'P' private), 0x07 name, 0x08 reason for absence of name.
The checksum byte makes the sum of all bytes 0 modulo 256; a message that fails it gives no event.

DTMF CLIP strings accepted (terminated by 'C' or '#'): "A<digits>" number; "D1" private (restricted);
"D2" / "D3" unavailable (international / technical reasons); "B10" private and "B00" unavailable (the
ETSI 'B' information code). Digits of one string must follow each other within DTMF_GAP_S seconds.

The demodulator, UART and message assembly are vectorised over channels (dsp._fsk); only a complete,
checksummed message reaches per-message Python here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dsp._fsk import BAUD, FskReceiver
from dsp.blocks import check_block, check_channel
from dsp.events import Event
from dsp.levels import SAMPLE_RATE, dbm0_to_amplitude

__all__ = [
    "STANDARDS",
    "CallerId",
    "CallerIdReceiver",
    "CallerIdSender",
    "build_mdmf",
    "build_sdmf",
    "dtmf_clip_string",
    "parse_dtmf_clip",
    "parse_message",
]

# standard -> (mark Hz, space Hz) for the FSK ones
_FSK_TONES = {"bell202": (1200.0, 2200.0), "v23": (1300.0, 2100.0)}
STANDARDS = ("bell202", "v23", "dtmf")

SDMF = 0x04
MDMF = 0x80
P_DATETIME = 0x01
P_NUMBER = 0x02
P_ABSENCE = 0x04
P_NAME = 0x07
P_NAME_ABSENCE = 0x08

_ABSENCE_CODE = {"unavailable": "O", "private": "P"}
_ABSENCE_NAME = {"O": "unavailable", "P": "private"}

DTMF_GAP_S = 1.0  # longest pause between two digits of one DTMF CLIP string
_DTMF_MAX_DIGITS = 32


@dataclass(frozen=True)
class CallerId:
    number: str | None = None
    name: str | None = None
    when: str | None = None  # "MMDDHHMM" as sent
    absence: str | None = None  # "private" / "unavailable" when the number is withheld


# ---------------------------------------------------------------------------------------------- messages
def _checksum(body: bytes) -> int:
    return (-sum(body)) & 0xFF


def _param(ptype: int, value: bytes) -> bytes:
    if len(value) > 255:
        raise ValueError(f"caller ID parameter 0x{ptype:02x} of {len(value)} bytes is longer than 255")
    return bytes([ptype, len(value)]) + value


def _frame(kind: int, body: bytes) -> bytes:
    if len(body) > 255:
        raise ValueError(f"caller ID message body of {len(body)} bytes is longer than 255")
    head = bytes([kind, len(body)]) + body
    return head + bytes([_checksum(head)])


def _text(field: str, what: str) -> bytes:
    try:
        data = field.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"caller ID {what} {field!r} is not Latin-1 text") from exc
    if any(b < 0x20 or b == 0x7F for b in data):
        raise ValueError(f"caller ID {what} {field!r} has control characters")
    return data


def _number(number: str) -> bytes:
    if any(ch not in _NUMBER_CHARS for ch in number):
        raise ValueError(f"caller ID number {number!r} may hold only digits, '*', '#' and '+'")
    return number.encode("ascii")


def _check_when(when: str) -> bytes:
    if not _valid_when(when):
        raise ValueError(f"caller ID date/time must be 8 digits MMDDHHMM, not {when!r}")
    return when.encode("ascii")


def _check_absence(absence: str) -> str:
    if absence not in _ABSENCE_CODE:
        raise ValueError(f"caller ID absence must be 'private' or 'unavailable', not {absence!r}")
    return _ABSENCE_CODE[absence]


def build_sdmf(cid: CallerId) -> bytes:
    """SDMF (0x04) frame with checksum: date/time then the number, or 'O'/'P' when withheld."""
    if cid.when is None:
        raise ValueError("an SDMF caller ID message needs a date/time")
    if cid.absence is not None:
        number = _check_absence(cid.absence).encode("ascii")
    elif cid.number:
        number = _number(cid.number)
    else:
        raise ValueError("an SDMF caller ID message needs a number or a reason for its absence")
    return _frame(SDMF, _check_when(cid.when) + number)


def build_mdmf(cid: CallerId) -> bytes:
    """MDMF / ETSI call setup (0x80) frame with checksum."""
    body = b""
    if cid.when is not None:
        body += bytes([P_DATETIME, 8]) + _check_when(cid.when)
    if cid.number:
        num = _number(cid.number)
        body += _param(P_NUMBER, num)
    if cid.absence is not None:
        code = _check_absence(cid.absence).encode("ascii")
        body += bytes([P_ABSENCE, 1]) + code
        if cid.name is None:
            body += bytes([P_NAME_ABSENCE, 1]) + code
    if cid.name:
        name = _text(cid.name, "name")
        body += _param(P_NAME, name)
    if not body:
        raise ValueError("an empty caller ID: give a number, name, date/time or reason for absence")
    return _frame(MDMF, body)


def parse_message(data: bytes) -> CallerId | None:
    """CallerId from a frame without its checksum (type, length, body); None if malformed or empty."""
    if len(data) < 2 or data[1] != len(data) - 2:
        return None
    kind, body = data[0], bytes(data[2:])
    number = name = when = absence = None
    if kind == SDMF:
        if len(body) < 9:
            return None
        when, rest = body[:8].decode("latin-1"), body[8:].decode("latin-1")
        if rest in _ABSENCE_NAME:
            absence = _ABSENCE_NAME[rest]
        else:
            number = rest
    elif kind == MDMF:
        i = 0
        while i < len(body):
            if i + 2 > len(body):
                return None
            ptype, plen = body[i], body[i + 1]
            value = body[i + 2 : i + 2 + plen]
            if len(value) != plen:
                return None
            text = value.decode("latin-1")
            if ptype == P_DATETIME:
                when = text
            elif ptype == P_NUMBER:
                number = text
            elif ptype == P_ABSENCE:
                if text not in _ABSENCE_NAME:
                    return None
                absence = _ABSENCE_NAME[text]
            elif ptype == P_NAME:
                name = text
            i += 2 + plen  # other parameters (name absence, call type, ...) are skipped
    else:
        return None
    if number is None and name is None and when is None and absence is None:
        return None
    # Plausibility on top of the checksum: an 8-bit sum lets 1 in 256 corrupted frames through.
    if when is not None and not _valid_when(when):
        return None
    if number is not None and _NUMBER.fullmatch(number) is None:
        return None
    if name is not None and _CONTROL.search(name) is not None:
        return None
    return CallerId(number=number, name=name, when=when, absence=absence)


_NUMBER_CHARS = frozenset("0123456789*#+")
_NUMBER = re.compile(r"[0-9*#+]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _valid_when(when: str) -> bool:
    if len(when) != 8 or not when.isdigit():
        return False
    month, day, hour, minute = int(when[:2]), int(when[2:4]), int(when[4:6]), int(when[6:])
    return 1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59


def dtmf_clip_string(cid: CallerId, terminator: str = "C") -> str:
    """The DTMF CLIP string for cid: A<number>C, or D1C (private) / D3C (unavailable)."""
    if terminator not in ("C", "#"):
        raise ValueError(f"DTMF CLIP terminator must be 'C' or '#', not {terminator!r}")
    if cid.absence is not None:
        code = {"private": "1", "unavailable": "3"}.get(cid.absence)
        if code is None:
            raise ValueError(f"caller ID absence must be 'private' or 'unavailable', not {cid.absence!r}")
        return "D" + code + terminator
    if not cid.number or not cid.number.isdigit() or not cid.number.isascii():
        raise ValueError(f"DTMF CLIP carries a number of digits 0-9 only, not {cid.number!r}")
    return "A" + cid.number + terminator


def parse_dtmf_clip(digits: str) -> CallerId | None:
    """CallerId from a whole DTMF CLIP string (start code .. terminator), None if not one we accept."""
    if len(digits) < 3 or digits[-1] not in "C#":
        return None
    start, body = digits[0], digits[1:-1]
    if not body.isdigit():
        return None
    if start == "A":
        return CallerId(number=body)
    if start == "D" and body in ("1", "2", "3"):
        return CallerId(absence="private" if body == "1" else "unavailable")
    if start == "B" and body in ("00", "10"):
        return CallerId(absence="private" if body == "10" else "unavailable")
    return None


# ---------------------------------------------------------------------------------------------- receiver
def _check_standard(standard: str) -> None:
    if standard not in STANDARDS:
        raise ValueError(f"unknown caller ID standard {standard!r}; choose one of {', '.join(STANDARDS)}")


class CallerIdReceiver:
    """Caller ID receiver for `channels` lines; process((channels, n) int16) -> events "callerid"."""

    def __init__(self, channels: int, standard: str = "bell202") -> None:
        if not isinstance(channels, int | np.integer) or isinstance(channels, bool) or channels < 1:
            raise ValueError(f"channels must be a positive integer, not {channels!r}")
        _check_standard(standard)
        self.channels = int(channels)
        self.standard = standard
        self._origin = np.zeros(self.channels, dtype=np.int64)  # absolute sample of each channel's zero
        self._t = 0  # absolute samples processed
        if standard == "dtmf":
            from dsp.dtmf import DtmfDetector

            self._dtmf: Any = DtmfDetector(self.channels)
            self._fsk: FskReceiver | None = None
            self._digits: list[str] = [""] * self.channels
            self._digit_start = np.zeros(self.channels, dtype=np.int64)
            self._digit_last = np.zeros(self.channels, dtype=np.int64)
        else:
            mark, space = _FSK_TONES[standard]
            self._fsk = FskReceiver(self.channels, mark, space)

    def reset(self, channel: int) -> None:
        """Forget channel's state (call it when the line's call ends); its sample count restarts at 0."""
        ch = check_channel(channel, self.channels)
        if self._fsk is not None:
            self._fsk.reset(ch)
            self._origin[ch] = self._fsk_time()
        else:
            self._dtmf.reset(ch)
            self._digits[ch] = ""
            self._origin[ch] = 0  # the DTMF detector counts from its own reset

    def _fsk_time(self) -> int:
        return self._t

    def process(self, block: npt.ArrayLike) -> list[Event]:
        x = check_block(block, self.channels, "caller ID block")
        if self._fsk is None:
            return self._process_dtmf(x)
        messages = self._fsk.process(x)
        self._t += x.shape[1]
        events = []
        for m in messages:
            cid = parse_message(m.data)
            if cid is not None:
                sample = max(m.onset - int(self._origin[m.channel]), 0)
                events.append(Event(m.channel, "callerid", cid, sample))
        return events

    def _process_dtmf(self, x: np.ndarray) -> list[Event]:
        events = []
        gap = int(DTMF_GAP_S * SAMPLE_RATE)
        for ev in self._dtmf.process(x):
            ch, digit, at = ev.channel, str(ev.value), int(ev.sample)
            have = self._digits[ch]
            if have and at - self._digit_last[ch] > gap:
                have = ""  # too slow: not one string
            self._digit_last[ch] = at
            if not have:
                if digit in "ABD":
                    self._digits[ch] = digit
                    self._digit_start[ch] = at
                continue
            have += digit
            if digit in "C#":
                self._digits[ch] = ""
                cid = parse_dtmf_clip(have)
                if cid is not None:
                    events.append(Event(ch, "callerid", cid, int(self._digit_start[ch])))
            elif len(have) > _DTMF_MAX_DIGITS:
                self._digits[ch] = ""
            else:
                self._digits[ch] = have
        return events


# ---------------------------------------------------------------------------------------------- sender
class CallerIdSender:
    """Builds the caller ID signal (int16 at 8 kHz) a central office sends, for the line simulator.

    FSK: channel seizure (alternating bits, starting with space), mark, the frame (8-N-1, LSB first),
    then a few trailing mark bits. DTMF: the CLIP string with dsp.tones digits.
    """

    def __init__(
        self,
        standard: str = "bell202",
        level_dbm0: float = -13.0,
        seizure_bits: int = 300,
        mark_bits: int = 180,
        trailer_bits: int = 8,
        dtmf_on_ms: float = 70.0,
        dtmf_off_ms: float = 70.0,
        baud: float = BAUD,
        freq_error: float = 0.0,
        twist_db: float = 0.0,
    ) -> None:
        _check_standard(standard)
        if not -60.0 <= level_dbm0 <= 3.0:
            raise ValueError(f"caller ID level {level_dbm0} dBm0 out of range -60..+3")
        for what, v in (
            ("seizure_bits", seizure_bits),
            ("mark_bits", mark_bits),
            ("trailer_bits", trailer_bits),
        ):
            if v < 0:
                raise ValueError(f"{what} must be >= 0")
        self.standard = standard
        self.level_dbm0 = level_dbm0
        self.seizure_bits = seizure_bits
        self.mark_bits = mark_bits
        self.trailer_bits = trailer_bits
        self.dtmf_on_ms = dtmf_on_ms
        self.dtmf_off_ms = dtmf_off_ms
        if not BAUD * 0.95 <= baud <= BAUD * 1.05:
            raise ValueError(f"caller ID baud rate {baud} too far from {BAUD}")
        self.baud = float(baud)
        if abs(freq_error) > 0.05 or abs(twist_db) > 20.0:
            raise ValueError("caller ID freq_error must be within 5 % and twist_db within 20 dB")
        self.freq_error = float(freq_error)  # fractional error of both tones (GR-30 allows 1 %)
        self.twist_db = float(twist_db)  # space level minus mark level, dB

    def frame(self, cid: CallerId, fmt: str = "mdmf") -> bytes:
        """The data message with its checksum ("sdmf" or "mdmf")."""
        if fmt == "sdmf":
            return build_sdmf(cid)
        if fmt == "mdmf":
            return build_mdmf(cid)
        raise ValueError(f"caller ID format must be 'sdmf' or 'mdmf', not {fmt!r}")

    def signal(self, cid: CallerId, fmt: str = "mdmf") -> np.ndarray:
        """The whole signal for cid, int16 at 8 kHz."""
        if self.standard == "dtmf":
            return self._dtmf_signal(dtmf_clip_string(cid))
        return self.modulate(self.frame(cid, fmt))

    def bits(self, data: bytes) -> np.ndarray:
        """Line bits (1 = mark) for data: seizure, mark, 8-N-1 characters, trailer."""
        seizure = np.arange(self.seizure_bits) % 2  # 0101... starting with space
        chars = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8)[:, None], axis=1, bitorder="little")
        framed = np.concatenate(
            [np.zeros((len(data), 1), np.uint8), chars, np.ones((len(data), 1), np.uint8)], axis=1
        ).ravel()
        return np.concatenate([seizure, np.ones(self.mark_bits), framed, np.ones(self.trailer_bits)]).astype(
            np.uint8
        )

    def modulate(self, data: bytes) -> np.ndarray:
        """Phase-continuous FSK of bits(data) at the sender's level."""
        mark, space = _FSK_TONES[self.standard]
        bits = self.bits(data)
        n = int(np.ceil(len(bits) * SAMPLE_RATE / self.baud))
        which = bits[np.minimum((np.arange(n) * self.baud // SAMPLE_RATE).astype(np.int64), len(bits) - 1)]
        freq = np.where(which == 1, mark, space) * (1.0 + self.freq_error)
        phase = 2.0 * np.pi * np.cumsum(freq) / SAMPLE_RATE
        amp = float(dbm0_to_amplitude(self.level_dbm0))
        amp = np.where(which == 1, amp, amp * 10.0 ** (self.twist_db / 20.0))
        return np.clip(np.round(amp * np.sin(phase - phase[0])), -32768, 32767).astype(np.int16)

    def _dtmf_signal(self, digits: str) -> np.ndarray:
        from dsp import tones

        x = tones.dtmf_sequence(
            digits, on_ms=self.dtmf_on_ms, off_ms=self.dtmf_off_ms, level_dbm0=self.level_dbm0
        )
        return tones.to_int16(x)
