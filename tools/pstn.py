"""The telephone network on the far side of the box's lines: exchanges, CO lines and the callers in them.

`callbox pstn --data DIR` is this network as a program of its own: it connects to the line sockets that
`callbox run --board sim --data DIR` creates under DIR/run/ (docs/virtual-lines.md) and, in real time (it
is the line clock), plays

- the **ISDN PRI network side** on every E1 span (`PriExchange`: `firmware.signalling.pri.PriSpan` in the
  network role on the D-channel of an exchange framer, `tools.linesim.e1`); other span signalling (MFC/R2)
  plugs in per span by configuration (`--span 2=r2`, `SPAN_EXCHANGES`);
- the **analog CO lines** on every FXO port (`CoExchange` over `tools.linesim.co.CoLine`): China ring
  cadence, Bell 202 caller ID in the first ring gap, polarity reversal on answer and clear, dial tone and
  busy for calls the box places;
- **callers** (`tools.callers.SimulatedCallers`) arriving as a Poisson process with caller IDs on both: they
  listen, press a menu key (in-band DTMF), wait, abandon or talk for a random time;
- their **speech** (`SpeechSource`: talk spurts of the G.168 composite source signal, a speech-like synthetic)
  which, like every sound of theirs, reaches the box through a **G.168 Annex D hybrid** (`HybridBank`, using
  `dsp.g168.EchoPath`): what the box sends comes back as echo, so its echo canceller has real work.

It survives the box restarting (a lost socket is a pulled cable: calls on it are cleared, the exchange
reconnects every second and brings the D-channel up again) and the box survives it restarting (it is a
pulled cable to the box too).

The same exchanges run in-process on a `tools.linesim.world.World` in virtual time (`Pstn.on_world`), which
is how the tests and `callbox demo --inprocess` use them.

Line interface for `tools.callers`: `call_in(caller, dnis)` returns a leg with `state` ("dialling", "up",
"down"), `press(digits)`, `far_hangup()`, `start_talking()` and `hears_person()`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import re
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from board.clock import Clock, RealClock
from dsp import g168
from dsp.callerid import CallerId, CallerIdSender
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import dbm0_to_rms
from firmware.engine.tones import dtmf_buffer
from firmware.signalling import events as ev
from firmware.signalling.pri import PriSpan
from firmware.signalling.q931.state import Party
from tools.g168_report import load_models
from tools.linesim.co import CLEARED, CONNECTED, IDLE, RINGING, SEIZED, CoLine, CoLineEnd
from tools.linesim.e1 import ExchangeE1, ExchangeE1End

B_CHANNELS = tuple(range(1, 16)) + tuple(range(17, 32))  # E1 timeslots carrying calls (16 is the D-channel)
ALAW_SILENCE = 0xD5
SAMPLE_RATE = 8000
HYBRID_NAMES = ("d2", "d5", "d8", "d9")  # four Annex D responses, spread over the lines
QUIET_DBM0 = -45.0  # below this a caller hears "nothing"
PERSON_QUIET_S = 1.5  # after the queue's sound, this long a quiet line means someone picked up and listens

# span signalling -> "module:Class" of its exchange; an MFC/R2 exchange registers here ("r2": "tools.r2x:...")
SPAN_EXCHANGES: dict[str, str] = {
    "pri": "tools.pstn:PriExchange",
    "r2": "tools.linesim.r2pstn:PstnR2Exchange",
}


# ================================================================================================ audio
def load_hybrids(path: str | Path | None = None) -> dict[str, Any] | None:
    """The G.168 Annex D hybrid responses (conformance data beside the repository), or None if absent."""
    try:
        return dict(load_models() if path is None else load_models(Path(path)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class HybridBank:
    """The 2-wire/4-wire hybrids of `rows` lines: `run(rout, sgen)` = what the line returns toward the box:
    the talker's signal plus the echo of what the box sent (`rout`, (rows, n) int16). Lines are spread over
    a few Annex D responses, each at its own ERL (6-15 dB) and bulk delay; state carries between blocks
    (`dsp.g168.EchoPath`). With no models the lines return the talker's signal alone (`enabled` False)."""

    def __init__(self, rows: int, models: dict[str, Any] | None, alaw: bool, seed: int = 1) -> None:
        self.rows = rows
        self.enabled = bool(models)
        self.groups: list[tuple[np.ndarray, g168.EchoPath]] = []
        if not models:
            return
        rng = random.Random(seed)
        names = [n for n in HYBRID_NAMES if n in models] or sorted(models)
        for k, name in enumerate(names):
            members = np.arange(k, rows, len(names))
            if members.size == 0:
                continue
            m = models[name]
            erl = rng.choice((6.0, 9.0, 12.0, 15.0))
            delay = rng.randrange(0, 40)  # up to 5 ms of line before the hybrid
            self.groups.append((members, g168.EchoPath(m["coeffs"], m["gain"], erl, delay, alaw)))

    def run(self, rout: np.ndarray, sgen: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return sgen
        out = np.empty_like(sgen)
        for members, path in self.groups:
            out[members] = path.run(rout[members], sgen[members])
        return out


def speech_loop(seconds: float = 30.0, level_dbm0: float = -18.0, seed: int = 7) -> np.ndarray:
    """A caller's voice: talk spurts (Brady's on/off model: about 1.2 s on, 0.9 s off, exponential) of the
    G.168 composite source signal (voiced bursts with a speech spectrum, noise bursts, pauses), int16."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    source = g168.css(seconds, level_dbm0, seed=seed).astype(np.float64)[:n]
    gate = np.zeros(n)
    t = 0
    on = bool(rng.integers(0, 2))
    while t < n:
        length = int(rng.exponential(1.2 if on else 0.9) * SAMPLE_RATE) + 400
        if on:
            gate[t : t + length] = 1.0
        t += length
        on = not on
    ramp = np.ones(80) / 80  # 10 ms attack/decay
    gate = np.convolve(gate, ramp, mode="same")
    return np.clip(np.rint(source * gate), -32768, 32767).astype(np.int16)


class SpeechSource:
    """Speech for many talkers at once: each reads the shared loop from its own offset."""

    def __init__(self, seconds: float = 30.0, level_dbm0: float = -18.0, seed: int = 7) -> None:
        self.loop = speech_loop(seconds, level_dbm0, seed)

    def take(self, offsets: np.ndarray, n: int) -> np.ndarray:
        idx = (offsets[:, None] + np.arange(n)[None, :]) % self.loop.size
        return self.loop[idx]


def _power_dbm0(block: np.ndarray) -> np.ndarray:
    """Mean power of each row, dBm0 (int16 G.711 scale)."""
    ms = np.mean(block.astype(np.float64) ** 2, axis=-1)
    return 10.0 * np.log10(np.maximum(ms, 1e-9) / dbm0_to_rms(0.0) ** 2)


# ================================================================================================ legs
class CallerLeg:
    """One caller's end of a call: what they press and say, what they hear, whether it is up or down."""

    def __init__(self, caller: str, offset: int) -> None:
        self.caller = caller
        self.state = "dialling"  # dialling | up | down
        self.cause: int | None = None
        self.talking = False
        self.speech_offset = offset
        self._dtmf = np.zeros(0, dtype=np.int16)
        self.pressed = False
        self.heard_sound_after_press = False
        self.quiet_for = 0.0

    def press(self, digits: str) -> None:
        """The caller presses keys: DTMF audio on their line, as a telephone sends it."""
        if self.state != "down":
            self._dtmf = np.concatenate([self._dtmf, dtmf_buffer(digits)])
            self.pressed = True
            self.heard_sound_after_press = False
            self.quiet_for = 0.0

    def start_talking(self) -> None:
        self.talking = True

    def far_hangup(self) -> None:  # pragma: no cover - each line kind clears its own way
        raise NotImplementedError

    def hears_person(self) -> bool:
        """The caller's judgement, from the sound alone: after the key they heard the box (prompt, music,
        announcements); a line that then goes quiet for a while is someone who picked up and listens."""
        return self.state == "up" and self.heard_sound_after_press and self.quiet_for >= PERSON_QUIET_S

    def heard(self, dbm0: float, seconds: float) -> None:
        if not self.pressed or self._dtmf.size:
            return
        if dbm0 > QUIET_DBM0:
            self.heard_sound_after_press = True
            self.quiet_for = 0.0
        else:
            self.quiet_for += seconds

    def next_audio(self, n: int) -> np.ndarray | None:
        """Pending DTMF for the next n samples (None when there is none)."""
        if not self._dtmf.size:
            return None
        out = np.zeros(n, dtype=np.int16)
        take = min(n, self._dtmf.size)
        out[:take] = self._dtmf[:take]
        self._dtmf = self._dtmf[take:]
        return out


class PriCall(CallerLeg):
    def __init__(self, exchange: PriExchange, call_id: int, timeslot: int, caller: str, offset: int) -> None:
        super().__init__(caller, offset)
        self.exchange = exchange
        self.call_id = call_id
        self.timeslot = timeslot
        self.from_box = False  # the box placed this call (a subscriber answers it)

    def far_hangup(self) -> None:
        if self.state != "down":
            self.exchange.stack.hangup(self.call_id, self.exchange.now)


class CoCall(CallerLeg):
    def __init__(self, exchange: CoExchange, index: int, caller: str, offset: int) -> None:
        super().__init__(caller, offset)
        self.exchange = exchange
        self.index = index

    @property
    def line(self) -> CoLine:
        return self.exchange.lines[self.index]

    def far_hangup(self) -> None:
        if self.state == "down":
            return
        now = self.exchange.now
        if self.line.state == RINGING:
            self.line.stop_ringing(now)  # gave up before the box answered
        else:
            self.line.far_clear(now)  # polarity back to normal: the box hears the clear
        self.exchange.gone(self, 16)


# ================================================================================================ exchanges
class SpanExchange(Protocol):
    """What the network needs of a span's exchange (PRI here; an R2 exchange offers the same)."""

    framing: str  # "ccs" or "cas": how the span's far-end framer is set up
    link_up: bool

    def call_in(self, caller: str, dnis: str) -> CallerLeg | None: ...

    def heard(self, voice: np.ndarray) -> None: ...

    def tick(self, now: float) -> None: ...

    def line_lost(self, now: float) -> None: ...

    def line_back(self, now: float) -> None: ...

    def status(self) -> dict[str, Any]: ...


class _Heard:
    """What the box sent on some lines, block by block, handed out n samples at a time (silence if late)."""

    def __init__(self, rows: int, silence: int, dtype: type, keep: int = 4) -> None:
        self.rows = rows
        self.silence = silence
        self.dtype = dtype
        self.blocks: deque[np.ndarray] = deque()
        self.keep = keep
        self.pending = 0

    def add(self, block: np.ndarray) -> None:
        self.blocks.append(np.array(block, dtype=self.dtype))
        self.pending += block.shape[-1]
        while self.pending > self.keep * 80 * 4 and len(self.blocks) > 1:  # far behind: drop the oldest
            self.pending -= self.blocks.popleft().shape[-1]

    def take(self, n: int) -> np.ndarray:
        out = np.full((self.rows, n), self.silence, dtype=self.dtype)
        got = 0
        while got < n and self.blocks:
            b = self.blocks[0]
            k = min(n - got, b.shape[-1])
            out[:, got : got + k] = b[:, :k]
            got += k
            if k == b.shape[-1]:
                self.blocks.popleft()
            else:
                self.blocks[0] = b[:, k:]
        self.pending -= got
        return out


class PriExchange:
    """The exchange's ISDN PRI network side on one span, and its subscribers' B-channels.

    Callers get a free B-channel (`call_in`); calls the box places are answered by a subscriber after a
    few seconds (or busy), who talks and hangs up. The exchange offers calls only once the D-channel is up
    and the box has had time to RESTART its B-channels (it answers RESTART as a network does)."""

    framing = "ccs"

    def __init__(
        self,
        far_end: ExchangeE1,
        n: int = 80,
        name: str = "span1",
        hybrids: dict[str, Any] | None = None,
        speech: SpeechSource | None = None,
        seed: int = 1,
    ) -> None:
        self.far_end = far_end
        self.n = n
        self.name = name
        self.stack = PriSpan(Party.NETWORK, name=f"{name}-network")
        self.hybrid = HybridBank(len(B_CHANNELS), hybrids, alaw=True, seed=seed)
        self.speech = speech or SpeechSource()
        self.random = random.Random(seed)
        self.calls: dict[int, PriCall] = {}
        self.by_timeslot: dict[int, PriCall] = {}
        self.link_up = False
        self.ready_at: float | None = None  # calls are offered from then on (after the box's RESTART)
        self.started = False
        self.now = 0.0
        self._heard = _Heard(32, ALAW_SILENCE, np.uint8)
        self._out: list[bytes] = []
        self._later: list[tuple[float, int, str]] = []  # (when, call_id, what) for the box's calls
        self.placed = 0
        self.refused = 0
        self.restarts = 0  # RESTARTs received from the box
        self.box_calls = 0  # calls the box placed toward the network
        self.rows = np.array(B_CHANNELS)

    # ---- the callers' side ----------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.link_up and self.ready_at is not None and self.now >= self.ready_at

    def call_in(self, caller: str, dnis: str) -> PriCall | None:
        if not self.ready:
            return None
        free = [ts for ts in B_CHANNELS if ts not in self.by_timeslot and self.stack.owner.get(ts) is None]
        if not free:
            return None
        timeslot = free[0]
        call_id = self.stack.place_call(dnis, self.now, calling=caller, channel=timeslot)
        call = PriCall(self, call_id, timeslot, caller, self.random.randrange(self.speech.loop.size))
        self.calls[call_id] = call
        self.by_timeslot[timeslot] = call
        self.placed += 1
        return call

    def active(self) -> int:
        return len(self.calls)

    # ---- the line ---------------------------------------------------------------------------------
    def heard(self, voice: np.ndarray) -> None:
        """(32, k) A-law: what the box sent in the timeslots (call from the far end's receive hook)."""
        self._heard.add(voice)

    def line_lost(self, now: float) -> None:
        """Cable pulled (the box went away): every call on the span is cleared."""
        self.now = now
        self.stack.alarm(now)
        self._events(now)
        self.ready_at = None

    def line_back(self, now: float) -> None:
        self.now = now
        self.stack.start(now)
        self.started = True

    def tick(self, now: float) -> None:
        self.now = now
        if not self.started:
            self.line_back(now)
        for frame in self.far_end.dchan_recv():
            self.stack.receive_frame(frame, now)
        deadline = self.stack.next_deadline()
        if deadline is not None and deadline <= now:
            self.stack.handle_timers(now)
        self._events(now)
        self._due(now)
        self._out += self.stack.frames_to_send()
        while self._out and self.far_end.dchan_send(self._out[0]):
            self._out.pop(0)
        self._audio()

    def _audio(self) -> None:
        n = self.n
        rx = self._heard.take(n)[self.rows]  # (30, n) A-law from the box
        rout = alaw_decode(rx)
        sgen = np.zeros((len(B_CHANNELS), n), dtype=np.int16)
        for call in self.by_timeslot.values():
            row = B_CHANNELS.index(call.timeslot)
            call.heard(float(_power_dbm0(rout[row])), n / SAMPLE_RATE)
            dtmf = call.next_audio(n)
            if dtmf is not None:
                sgen[row] = dtmf
            elif call.talking and call.state == "up":
                sgen[row] = self.speech.take(np.array([call.speech_offset]), n)[0]
                call.speech_offset += n
        line = self.hybrid.run(rout, sgen)
        block = np.full((32, n), ALAW_SILENCE, dtype=np.uint8)
        block[self.rows] = alaw_encode(line)
        self.far_end.set_voice(block)

    def _events(self, now: float) -> None:
        for event in self.stack.events():
            self._event(event, now)

    def _event(self, event: object, now: float) -> None:
        if isinstance(event, ev.LinkUp):
            self.link_up = True
            self.ready_at = now + 2.0  # the box restarts its B-channels when its D-channel comes up
        elif isinstance(event, ev.LinkDown):
            self.link_up = False
            self.ready_at = None
        elif isinstance(event, ev.ChannelsRestarted):
            self.restarts += 1
            if len(event.channels) > 1 and self.ready_at is not None:
                self.ready_at = min(self.ready_at, now)  # every B-channel idle: calls may come
        elif isinstance(event, ev.IncomingCall):
            self._box_call(event, now)
        elif isinstance(event, ev.Connected):
            call = self.calls.get(event.call_id)
            if call is not None:
                call.state = "up"
        elif isinstance(event, ev.Disconnected):
            self.stack.hangup(event.call_id, now, event.cause)  # the box cleared: release the call
        elif isinstance(event, ev.Released):
            call = self.calls.pop(event.call_id, None)
            if call is not None:
                call.state, call.cause = "down", event.cause
                if self.by_timeslot.get(call.timeslot) is call:
                    self.by_timeslot.pop(call.timeslot, None)
                if event.cause == 34:
                    self.refused += 1

    # ---- calls the box places: a subscriber on the network answers ---------------------------------
    def _box_call(self, event: ev.IncomingCall, now: float) -> None:
        self.box_calls += 1
        ts = event.channel
        if ts is None or ts in self.by_timeslot:
            self.stack.hangup(event.call_id, now, 44)  # requested circuit not available
            return
        called = event.called.digits if event.called is not None else ""
        call = PriCall(self, event.call_id, ts, called, self.random.randrange(self.speech.loop.size))
        call.from_box = True
        self.calls[event.call_id] = call
        self.by_timeslot[ts] = call
        self.stack.proceeding(event.call_id, now)
        if self.random.random() < 0.1:
            self._later.append((now + 1.0, event.call_id, "busy"))
            return
        self.stack.alert(event.call_id, now, inband=False)
        self._later.append((now + self.random.uniform(2.0, 6.0), event.call_id, "answer"))

    def _due(self, now: float) -> None:
        if not self._later:
            return
        due = [item for item in self._later if item[0] <= now]
        self._later = [item for item in self._later if item[0] > now]
        for _when, call_id, what in due:
            call = self.calls.get(call_id)
            if call is None or call.state == "down":
                continue
            if what == "busy":
                self.stack.hangup(call_id, now, 17)  # user busy
            elif what == "answer":
                self.stack.answer(call_id, now)
                call.state = "up"
                call.talking = True
                self._later.append((now + self.random.uniform(10.0, 60.0), call_id, "hangup"))
            elif what == "hangup":
                self.stack.hangup(call_id, now)

    def status(self) -> dict[str, Any]:
        return {
            "link": self.link_up,
            "calls": len(self.calls),
            "placed": self.placed,
            "box_calls": self.box_calls,
            "restarts": self.restarts,
        }


class CoExchange:
    """The exchange's line cards for a box's analog lines: callers ring in with Bell 202 caller ID (China
    cadence, `CoLine`); calls the box places get dial tone, then (after its digits) ringback and a
    subscriber who answers with a polarity reversal, or busy tone."""

    def __init__(
        self,
        lines: list[CoLine],
        n: int = 80,
        hybrids: dict[str, Any] | None = None,
        speech: SpeechSource | None = None,
        seed: int = 2,
    ) -> None:
        self.lines = lines
        self.n = n
        self.hybrid = HybridBank(len(lines), hybrids, alaw=False, seed=seed)
        self.speech = speech or SpeechSource()
        self.random = random.Random(seed)
        self.cid = CallerIdSender("bell202")
        self.legs: dict[int, CoCall] = {}
        self.connected = [True] * len(lines)
        self.now = 0.0
        self._heard = _Heard(len(lines), 0, np.int16)
        self._seized_at: dict[int, float] = {}
        self._answer_at: dict[int, float] = {}
        self.placed = 0
        self.box_calls = 0

    # ---- the callers' side ------------------------------------------------------------------------
    def call_in(self, caller: str, dnis: str) -> CoCall | None:
        for i, line in enumerate(self.lines):
            if self.connected[i] and line.state == IDLE and i not in self.legs and not line.box_offhook:
                signal_ = self.cid.signal(CallerId(number=caller, when=time.strftime("%m%d%H%M")))
                line.ring(self.now, callerid=signal_)
                leg = CoCall(self, i, caller, self.random.randrange(self.speech.loop.size))
                self.legs[i] = leg
                self.placed += 1
                return leg
        return None

    def active(self) -> int:
        return len(self.legs)

    def gone(self, leg: CoCall, cause: int) -> None:
        leg.state, leg.cause = "down", cause
        if self.legs.get(leg.index) is leg:
            del self.legs[leg.index]

    def line_lost(self, i: int, now: float) -> None:
        self.connected[i] = False
        line = self.lines[i]
        leg = self.legs.get(i)
        if leg is not None:
            self.gone(leg, 41)
        line.stop_ringing(now)
        line.state, line.reversed, line.box_offhook, line.tone = IDLE, False, False, None

    def line_back(self, i: int) -> None:
        self.connected[i] = True

    # ---- every tick -------------------------------------------------------------------------------
    def heard(self, i: int, audio: np.ndarray) -> None:
        """Audio the box sent on line i (int16)."""
        block = np.zeros((len(self.lines), audio.size), dtype=np.int16)
        block[i] = audio
        self._heard.add(block)

    def tick(self, now: float) -> None:
        self.now = now
        n = self.n
        rout = self._take_heard(n)
        sgen = np.zeros((len(self.lines), n), dtype=np.int16)
        for i, line in enumerate(self.lines):
            leg = self.legs.get(i)
            if leg is None:
                self._box_side(i, line, now)
                continue
            if leg.state == "dialling" and line.state == CONNECTED:
                leg.state = "up"  # the box answered (ring trip)
            elif line.state in (IDLE, CLEARED) and leg.state == "up":
                self.gone(leg, 16)  # the box hung up
                continue
            if leg.state != "up":
                continue
            leg.heard(float(_power_dbm0(rout[i])), n / SAMPLE_RATE)
            dtmf = leg.next_audio(n)
            if dtmf is not None:
                sgen[i] = dtmf
            elif leg.talking:
                sgen[i] = self.speech.take(np.array([leg.speech_offset]), n)[0]
                leg.speech_offset += n
        line_audio = self.hybrid.run(rout, sgen)
        for i, line in enumerate(self.lines):
            if line.box_offhook and line.state in (CONNECTED, SEIZED):
                line.send_audio(line_audio[i])

    def _take_heard(self, n: int) -> np.ndarray:
        for i, line in enumerate(self.lines):
            while line.received:
                self.heard(i, line.received.popleft())
        return self._heard.take(n)

    def _box_side(self, i: int, line: CoLine, now: float) -> None:
        """A call the box placed on line i: dial tone (CoLine), digits, then answer or busy."""
        if line.state == SEIZED:
            if i not in self._seized_at:
                self._seized_at[i] = now
                self.box_calls += 1
            elif i not in self._answer_at and now - self._seized_at[i] > 3.0:
                # the box's digits are in: ring the subscriber
                line.play_tone(now, "ringback")
                busy = self.random.random() < 0.1
                self._answer_at[i] = now + (1.0 if busy else self.random.uniform(2.0, 6.0))
                if busy:
                    self._answer_at[i] = -self._answer_at[i]
            elif i in self._answer_at and now >= abs(self._answer_at[i]):
                if self._answer_at[i] < 0:
                    line.play_tone(now, "busy")
                    self._answer_at[i] = float("inf")
                else:
                    line.far_answer(now)
                    self._answer_at[i] = now + self.random.uniform(10.0, 60.0)
        elif line.state == CONNECTED and i in self._answer_at and now >= self._answer_at[i]:
            line.far_clear(now)
        elif line.state == IDLE:
            self._seized_at.pop(i, None)
            self._answer_at.pop(i, None)

    def status(self) -> dict[str, Any]:
        return {"lines": [line.state for line in self.lines], "calls": len(self.legs), "placed": self.placed}


def load_exchange(kind: str) -> type:
    """The exchange class for a span signalling kind (`SPAN_EXCHANGES`)."""
    if kind not in SPAN_EXCHANGES:
        known = ", ".join(sorted(SPAN_EXCHANGES))
        raise ValueError(f"unknown span signalling {kind!r} (known: {known})")
    module, _, attr = SPAN_EXCHANGES[kind].partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


# ================================================================================================ network
class Pstn:
    """The exchanges as one network. PRI callers go out on the first span that is ready with a free
    B-channel; FXO callers on the first idle CO line."""

    def __init__(self, exchanges: list[Any], co: CoExchange | None = None) -> None:
        self.exchanges = exchanges
        self.co = co

    def call_in(self, caller: str, dnis: str) -> CallerLeg | None:
        for exchange in self.exchanges:
            call = exchange.call_in(caller, dnis)
            if call is not None:
                return call  # type: ignore[no-any-return]
        return None

    def active(self) -> int:
        return sum(e.active() for e in self.exchanges) + (self.co.active() if self.co else 0)

    @classmethod
    def on_world(
        cls, world: Any, hybrids: dict[str, Any] | None = None, seed: int = 1
    ) -> tuple[Pstn, FxoLines]:
        """Exchanges on every line of a `tools.linesim.world.World` (virtual time): ticked by the world."""
        speech = SpeechSource()
        exchanges = []
        for i, end in enumerate(world.e1):
            ex = PriExchange(end.ex, world.n, f"span{i + 1}", hybrids, speech, seed + i)
            end.on_receive = lambda framer, k, ex=ex: ex.heard(framer.voice(k))
            world.on_tick.append(ex.tick)
            exchanges.append(ex)
        co = CoExchange([c.line for c in world.co], world.n, hybrids, speech, seed + 100)
        world.on_tick.append(co.tick)
        return cls(exchanges, co), FxoLines(co)


class FxoLines:
    """The CO lines as a `CallerLines` for a second caller population."""

    def __init__(self, co: CoExchange) -> None:
        self.co = co

    def call_in(self, caller: str, dnis: str) -> CallerLeg | None:
        return self.co.call_in(caller, dnis)


# ================================================================================================ the program
class SpanEnd:
    """One span's socket and exchange in real time: reconnects while the box is away."""

    def __init__(self, path: Path, exchange: Any) -> None:
        self.path = path
        self.exchange = exchange
        self.end = ExchangeE1End(str(path), exchange.far_end)
        self.end.on_receive = lambda framer, k: exchange.heard(framer.voice(k))
        self.retry_at = 0.0
        self.connects = 0

    def pump(self, now: float, n: int) -> None:
        if self.end.sock is None and now >= self.retry_at:
            try:
                self.end.connect()
                self.connects += 1
                self.exchange.line_back(now)
            except OSError:
                self.end.sock = None
                self.retry_at = now + 1.0
        was = self.end.sock is not None
        self.end.pump(n)
        if was and self.end.sock is None:  # the box went away
            self.exchange.line_lost(now)
            self.retry_at = now + 1.0
        self.exchange.tick(now)


class CoEnd:
    def __init__(self, path: Path, co: CoExchange, index: int) -> None:
        self.path = path
        self.co = co
        self.index = index
        self.end = CoLineEnd(str(path), co.lines[index])
        self.retry_at = 0.0
        self.connects = 0
        co.connected[index] = False

    def pump(self, now: float, n: int) -> None:
        if self.end.sock is None and now >= self.retry_at:
            try:
                self.end.connect()
                self.connects += 1
                self.co.line_back(self.index)
            except OSError:
                self.end.sock = None
                self.retry_at = now + 1.0
        was = self.end.sock is not None
        self.end.pump(now, n)
        if was and self.end.sock is None:
            self.co.line_lost(self.index, now)
            self.retry_at = now + 1.0


def _number(p: Path) -> int:
    m = re.search(r"(\d+)\.sock$", p.name)
    return int(m.group(1)) if m else 0


def parse_spans(items: list[str]) -> dict[int, str]:
    """`--span 2=r2` options -> {span: kind}."""
    out: dict[int, str] = {}
    for item in items:
        span, sep, kind = item.partition("=")
        if not sep or not span.isdigit():
            raise ValueError(f"--span wants SPAN=KIND (e.g. 2=r2), not {item!r}")
        load_exchange(kind)
        out[int(span)] = kind
    return out


class PstnProgram:
    """`callbox pstn`: the network on a run directory's sockets, stepped in real time by `step(now)`."""

    def __init__(
        self,
        rundir: Path,
        clock: Clock,
        rate: float,
        fxo_rate: float,
        seed: int = 1,
        spans: int = 2,
        fxo: int = 4,
        kinds: dict[int, str] | None = None,
        hybrids: dict[str, Any] | None = None,
        n: int = 80,
        patience: float = 150.0,
        talk: tuple[float, float] = (45.0, 240.0),
        dnis: str = "95588",
        think: tuple[float, float] = (6.0, 12.0),
    ) -> None:
        from tools.callers import CallerProfile, SimulatedCallers

        self.clock = clock
        self.n = n
        speech = SpeechSource()
        kinds = kinds or {}
        self.spans: list[SpanEnd] = []
        for s in range(1, spans + 1):
            cls = load_exchange(kinds.get(s, "pri"))
            framer = ExchangeE1(cas=getattr(cls, "framing", "ccs") == "cas")
            exchange = cls(framer, n, f"span{s}", hybrids, speech, seed + s)
            self.spans.append(SpanEnd(rundir / f"e1-span{s}.sock", exchange))
        self.co = CoExchange([CoLine() for _ in range(fxo)], n, hybrids, speech, seed + 100)
        self.cos = [CoEnd(rundir / f"fxo-port{p}.sock", self.co, p - 1) for p in range(1, fxo + 1)]
        self.pstn = Pstn([s.exchange for s in self.spans], self.co)

        def person(leg: Any) -> bool:
            return bool(leg.hears_person())

        self.callers = SimulatedCallers(
            clock, self.pstn, person, CallerProfile(calls_per_hour=rate, dnis=dnis, think=think,
                                                    patience_mean=patience, talk=talk), seed=seed,
        )  # fmt: skip
        self.fxo_callers = SimulatedCallers(
            clock, FxoLines(self.co), person, CallerProfile(calls_per_hour=fxo_rate, dnis="", think=think,
                                                            patience_mean=patience, talk=talk), seed=seed + 1,
        )  # fmt: skip
        self.ticks = 0
        self.started = clock.now()

    def start(self) -> None:
        self.callers.start()
        self.fxo_callers.start()

    def step(self, now: float) -> None:
        for span in self.spans:
            span.pump(now, self.n)
        for co in self.cos:
            co.pump(now, self.n)
        self.co.tick(now)
        self.clock.run_due()
        self.ticks += 1

    def hang_up_all(self) -> None:
        for callers in (self.callers, self.fxo_callers):
            callers.stop()
            for leg in list(callers.active):
                leg.far_hangup()

    def close(self) -> None:
        for span in self.spans:
            span.end.close()
        for co in self.cos:
            co.end.close()

    def status(self) -> dict[str, Any]:
        pri, fxo = self.callers.stats, self.fxo_callers.stats
        return {
            "t": round(self.clock.now() - self.started, 2),
            "spans": {s.path.name: {**s.exchange.status(), "connects": s.connects} for s in self.spans},
            "fxo": self.co.status(),
            "pri_callers": vars(pri),
            "fxo_callers": vars(fxo),
            "active": self.pstn.active(),
        }


def status_line(st: dict[str, Any]) -> str:
    spans = " ".join(f"{k.split('.')[0]}:{'up' if v['link'] else 'down'}" for k, v in st["spans"].items())
    pri, fxo = st["pri_callers"], st["fxo_callers"]
    return (
        f"t={st['t']:.0f} {spans} fxo:{','.join(st['fxo']['lines'])} active {st['active']} | "
        f"PRI callers {pri['offered']} offered, {pri['no_line']} no line, {pri['talked']} talked, "
        f"{pri['abandoned']} gave up | FXO callers {fxo['offered']} offered, {fxo['no_line']} no line, "
        f"{fxo['talked']} talked, {fxo['abandoned']} gave up"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="the box's data directory (sockets in DATA/run)")
    parser.add_argument("--rundir", default=None, help="line sockets directory (default DATA/run)")
    parser.add_argument("--rate", type=float, default=600.0, help="PRI callers per hour (Poisson)")
    parser.add_argument("--fxo-rate", type=float, default=60.0, help="FXO callers per hour (Poisson)")
    parser.add_argument("--spans", type=int, default=2, help="E1 spans to serve (e1-span1.sock ...)")
    parser.add_argument("--fxo", type=int, default=4, help="CO lines to serve (fxo-port1.sock ...)")
    parser.add_argument(
        "--span", action="append", default=[], metavar="N=KIND",
        help=f"span N's signalling (default pri; known: {', '.join(sorted(SPAN_EXCHANGES))})",
    )  # fmt: skip
    parser.add_argument("--patience", type=float, default=150.0, help="callers' mean patience, s")
    parser.add_argument("--talk", type=float, nargs=2, default=(45.0, 240.0), help="talk time range, s")
    parser.add_argument(
        "--think", type=float, nargs=2, default=(6.0, 12.0), help="seconds from answer to the menu key"
    )
    parser.add_argument(
        "--hybrids", default=None, help="G.168 hybrid models JSON (default: conformance data)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    parser.add_argument("--status", type=float, default=5.0, help="seconds between status lines (0: none)")
    parser.add_argument("--json", action="store_true", help="status lines as JSON (for the demo's view)")


def run(args: argparse.Namespace) -> int:
    rundir = Path(args.rundir) if args.rundir else Path(args.data) / "run"
    try:
        kinds = parse_spans(args.span)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.rate < 0 or args.fxo_rate < 0 or args.spans < 0 or args.fxo < 0:
        print("error: rates and line counts must be >= 0", file=sys.stderr)
        return 2
    hybrids = load_hybrids(args.hybrids)
    if hybrids is None:
        print("warning: no G.168 hybrid models found: lines return no echo", file=sys.stderr)
    clock = RealClock()
    prog = PstnProgram(
        rundir, clock, args.rate, args.fxo_rate, args.seed, args.spans, args.fxo, kinds, hybrids,
        patience=args.patience, talk=tuple(args.talk), think=tuple(args.think),
    )  # fmt: skip
    stop = {"now": False}

    def on_signal(*_: object) -> None:
        stop["now"] = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    print(f"callbox pstn: {len(prog.spans)} E1 spans and {len(prog.cos)} CO lines in {rundir}", flush=True)
    period = prog.n / SAMPLE_RATE
    start = clock.now()
    k = 0
    next_status = start + args.status if args.status > 0 else float("inf")
    prog.start()
    try:
        while not stop["now"] and (not args.seconds or k * period < args.seconds):
            now = start + k * period
            late = clock.now() - now
            if late > 0.5:  # the host stalled: skip the lost time rather than race to catch up
                skipped = int(late / period)
                k += skipped
                now = start + k * period
            clock.sleep_until(now)
            prog.step(now)
            k += 1
            if now >= next_status:
                st = prog.status()
                print(json.dumps(st) if args.json else status_line(st), flush=True)
                next_status = now + args.status
        prog.hang_up_all()  # callers hang up, the box clears and logs the calls
        for _ in range(int(0.5 / period)):
            now = start + k * period
            clock.sleep_until(now)
            prog.step(now)
            k += 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        prog.close()
    st = prog.status()
    print(json.dumps(st) if args.json else status_line(st), flush=True)
    return 0
