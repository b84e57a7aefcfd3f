"""The exchange side of an analog CO line: battery, China ring cadence, caller ID slot, polarity, audio.

`CoLine` is the line card logic alone (sans I/O): asked for the next block (`block(now, n)`) it says what
the line carries for those n samples (DC voltage, ringing, audio); told what the box does (`hook(now,
state, audio)`) it answers the call on ring trip, reverses polarity, records the box's audio. Time comes
only from the `now` arguments. `CoLineEnd` connects it to a box's FXO socket (docs/virtual-lines.md).

China (YD/T 1258 usage): battery -48 V, ringing 75 V rms 25 Hz, cadence 1 s on / 4 s off, caller ID (FSK)
sent in the silent interval after the first ring; polarity reversal when the called party answers and
again when the call is cleared.
"""

from __future__ import annotations

import socket
from collections import deque
from dataclasses import dataclass

import numpy as np

from board.sim.fxoline import (
    MAX_MESSAGE,
    SAMPLE_RATE,
    FxoProtocolError,
    HookState,
    LineState,
    decode_hook,
    encode_line,
)

IDLE = "idle"
RINGING = "ringing"
CONNECTED = "connected"  # box answered (ring trip) or far party answered a box-originated call
SEIZED = "seized"  # box went off hook from idle (outgoing call), far party not yet answered
CLEARED = "cleared"  # far party hung up; waiting for the box to go on hook


@dataclass(frozen=True)
class CoEvent:
    time: float
    kind: (
        str  # ring_on, ring_off, callerid, answered, seized, far_answer, far_clear, box_clear, protocol_error
    )
    detail: str = ""


class CoLine:
    """One analog line as the exchange sees it. All times in seconds on the caller's clock."""

    def __init__(
        self,
        battery_v: float = 48.0,
        ring_vrms: float = 75.0,
        ring_hz: float = 25.0,
        cadence: tuple[float, float] = (1.0, 4.0),
        callerid_delay: float = 0.5,
        dial_tone: bool = True,
        tone_level_dbm0: float = -10.0,
    ) -> None:
        self.dial_tone = dial_tone  # dial tone when the box seizes the line (China: 450 Hz, continuous)
        self.tone_level_dbm0 = tone_level_dbm0
        self.tone: str | None = None  # the call-progress tone the exchange plays now (China plan)
        self._tone_start = 0.0
        self._tone_cache: dict[str, np.ndarray] = {}
        self.battery_v = battery_v
        self.ring_vrms = ring_vrms
        self.ring_hz = ring_hz
        self.cadence = cadence
        self.callerid_delay = callerid_delay
        self.state = IDLE
        self.battery_on = True
        self.reversed = False
        self.box_offhook = False
        self.events: list[CoEvent] = []
        self.received: deque[np.ndarray] = deque(maxlen=1000)  # the box's audio, newest last
        self._tx = np.zeros(0, dtype=np.int16)  # audio queued toward the box
        self._ring_start = 0.0
        self._ring_limit: int | None = None
        self._ring_was_on = False
        self._callerid: np.ndarray | None = None
        self._callerid_at = 0.0
        self._callerid_pos = 0
        self._burst_from = 0.0
        self._burst_until: float | None = None

    # ---- what the exchange (or a test) does -------------------------------------------------------
    def ring(self, now: float, callerid: np.ndarray | None = None, rings: int | None = None) -> None:
        """Start ringing with the cadence; `callerid` (int16 samples at 8 kHz, e.g. from
        dsp.callerid.CallerIdSender) is sent `callerid_delay` after the first ring ends."""
        if callerid is not None:
            samples = np.asarray(callerid, dtype=np.int16)
            if self.callerid_delay + samples.size / SAMPLE_RATE > self.cadence[1]:
                raise ValueError("caller ID does not fit in the silent interval after the first ring")
            self._callerid = samples
        else:
            self._callerid = None
        self.state = RINGING
        self._ring_start = now
        self._ring_limit = rings
        self._ring_was_on = False
        self._callerid_at = now + self.cadence[0] + self.callerid_delay
        self._callerid_pos = 0

    def ring_burst(self, now: float, seconds: float) -> None:
        """A single short burst of ringing voltage (what a false ring looks like: line test, lightning)."""
        self._burst_from = now
        self._burst_until = now + seconds

    def stop_ringing(self, now: float) -> None:
        if self.state == RINGING:
            self.state = IDLE
            self._log(now, "ring_off", "cancelled")
        self._callerid = None

    def far_answer(self, now: float) -> None:
        """The far party answers a call the box placed: polarity reversal."""
        if self.state == SEIZED:
            self.state = CONNECTED
            self.reversed = True
            self.tone = None
            self._log(now, "far_answer")

    def far_clear(self, now: float) -> None:
        """The far party hangs up: polarity back to normal (the reversal on clear)."""
        if self.state in (CONNECTED, SEIZED):
            self.state = CLEARED
            self.reversed = False
            self._log(now, "far_clear")

    def play_tone(self, now: float, tone: str | None) -> None:
        """The exchange plays a call-progress tone toward the box ("dial", "busy", "congestion",
        "ringback", as China's plan in dsp.tones cadences them), or stops it (None)."""
        self.tone = tone
        self._tone_start = now
        self._log(now, "tone", tone or "off")

    def far_clear_with_tone(self, now: float, tone: str = "busy") -> None:
        """The far party hangs up and the exchange, like many Chinese CO lines, leaves the polarity as it
        is and plays busy tone until the box hangs up (disconnect supervision by tone)."""
        if self.state in (CONNECTED, SEIZED):
            self._log(now, "far_clear", f"by {tone} tone")
            self.play_tone(now, tone)

    def _tone_samples(self, now: float, n: int) -> np.ndarray:
        from dsp.tones import PLANS, cadence, to_int16

        assert self.tone is not None
        loop = self._tone_cache.get(self.tone)
        if loop is None:
            # whole cadence periods (a continuous tone: one second), so the loop repeats seamlessly
            period = sum(PLANS["cn"][self.tone].pattern) or 1.0
            loop = to_int16(cadence("cn", self.tone, period * 2, level_dbm0=self.tone_level_dbm0))
            self._tone_cache[self.tone] = loop
        start = round((now - self._tone_start) * SAMPLE_RATE) % loop.size
        return np.take(loop, np.arange(start, start + n), mode="wrap")

    def set_battery(self, now: float, on: bool) -> None:
        self.battery_on = on
        self._log(now, "battery", "on" if on else "off")

    def send_audio(self, samples: np.ndarray) -> None:
        """Queue audio toward the box (int16, 8 kHz); it is sent whatever the call state."""
        self._tx = np.concatenate([self._tx, np.asarray(samples, dtype=np.int16)])

    # ---- the line toward the box ------------------------------------------------------------------
    def ringing_at(self, now: float) -> bool:
        if self._burst_until is not None:
            if self._burst_from <= now < self._burst_until:
                return True
            if now >= self._burst_until:
                self._burst_until = None
        if self.state != RINGING:
            return False
        on, off = self.cadence
        elapsed = now - self._ring_start
        count = int(elapsed // (on + off))
        if self._ring_limit is not None and count >= self._ring_limit:
            return False
        return elapsed - count * (on + off) < on

    def line_state(self, now: float) -> LineState:
        if not self.battery_on:
            return LineState()
        dc = self.battery_v if self.reversed else -self.battery_v
        if self.ringing_at(now):
            return LineState(dc_volts=dc, ringing=True, ring_vrms=self.ring_vrms, ring_hz=self.ring_hz)
        return LineState(dc_volts=dc)

    def block(self, now: float, n: int) -> tuple[LineState, np.ndarray]:
        """What the line carries for the n samples starting at `now`."""
        state = self.line_state(now)
        if state.ringing != self._ring_was_on:
            self._ring_was_on = state.ringing
            self._log(now, "ring_on" if state.ringing else "ring_off")
        audio = np.zeros(n, dtype=np.int16)
        start = 0 if self._callerid_pos else max(0, round((self._callerid_at - now) * SAMPLE_RATE))
        if self._callerid is not None and start < n:
            chunk = self._callerid[self._callerid_pos : self._callerid_pos + n - start]
            audio[start : start + chunk.size] = chunk
            if self._callerid_pos == 0:
                self._log(now + start / SAMPLE_RATE, "callerid", f"{self._callerid.size} samples")
            self._callerid_pos += chunk.size
            if self._callerid_pos >= self._callerid.size:
                self._callerid = None
        if self.tone is not None and self.box_offhook:
            audio = np.clip(audio.astype(np.int32) + self._tone_samples(now, n), -32768, 32767).astype(
                np.int16
            )
        if self._tx.size:
            take = min(n, self._tx.size)
            audio[:take] = np.clip(audio[:take].astype(np.int32) + self._tx[:take], -32768, 32767)
            self._tx = self._tx[take:]
        return state, audio

    def hook(self, now: float, state: HookState, audio: np.ndarray) -> None:
        """The box's side of the line for one of its blocks."""
        if audio.size:
            self.received.append(np.array(audio, dtype=np.int16))
        if state.offhook == self.box_offhook:
            return
        self.box_offhook = state.offhook
        if state.offhook:
            if self.state == RINGING:  # ring trip: answer, stop ringing, reverse polarity
                self.state = CONNECTED
                self.reversed = True
                self._callerid = None
                self._log(now, "answered")
            elif self.state == IDLE:
                self.state = SEIZED
                self._log(now, "seized")
                if self.dial_tone:
                    self.play_tone(now, "dial")
        else:
            if self.state in (CONNECTED, SEIZED):
                self.reversed = False
                self._log(now, "box_clear")
            self.state = IDLE
            self.tone = None

    def received_audio(self) -> np.ndarray:
        return np.concatenate(list(self.received)) if self.received else np.zeros(0, dtype=np.int16)

    def _log(self, now: float, kind: str, detail: str = "") -> None:
        self.events.append(CoEvent(now, kind, detail))


class CoLineEnd:
    """A CoLine connected to a box's FXO socket. `pump(now, n)` sends one block and reads the box's."""

    def __init__(self, path: str, line: CoLine | None = None) -> None:
        self.path = path
        self.line = line if line is not None else CoLine()
        self.sock: socket.socket | None = None
        self.bad_messages = 0

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(self.path)
        sock.setblocking(False)
        self.sock = sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def pump(self, now: float, n: int) -> None:
        """Send the line's next n samples, then take whatever the box has sent."""
        self.send_block(now, n)
        self.receive(now)

    def send_block(self, now: float, n: int) -> None:
        if self.sock is None:
            return
        state, audio = self.line.block(now, n)
        try:
            self.sock.send(encode_line(state, audio))
        except BlockingIOError:
            pass  # the box is not reading: this block is lost, like audio on a congested path
        except OSError:
            self.close()

    def receive(self, now: float) -> None:
        while self.sock is not None:
            try:
                message = self.sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                self.close()
                return
            if not message:
                self.close()
                return
            try:
                hook, audio = decode_hook(message)
            except FxoProtocolError as exc:
                self.bad_messages += 1
                self.line._log(now, "protocol_error", str(exc))
                continue
            self.line.hook(now, hook, audio)
