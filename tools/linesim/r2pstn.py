"""The MFC/R2 exchange as a span of `tools.pstn`'s network: `callbox pstn --span N=r2`.

`PstnR2Exchange(far_end, n, name, hybrids, speech, seed)` is `tools.linesim.r2exchange.R2Exchange` built the
way `tools.pstn` builds its span exchanges (the `SpanExchange` protocol, `SPAN_EXCHANGES["r2"]`): on a CAS
far-end framer (`ExchangeE1(cas=True)`), its received B-channels handed in by the far end's receive hook
(`heard`). Its callers are `tools.pstn.CallerLeg`s (`R2CallerLeg`) like the PRI exchange's: once the box has
answered (compelled register signalling done, answer signal on the CAS bits), what they press (in-band
DTMF) and say (`SpeechSource`), and the echo of what the box sends, reach the box through the
`HybridBank`; what the box sends is what they hear. While the register signalling runs the channel carries
the exchange's MF signals only (the registers are 4-wire: no hybrid, no echo).

Calls the box places are answered after `answer_after` s by a subscriber who talks and hangs up 10-60 s
later (clear-back), as on the PRI exchange.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from dsp.g711 import ALAW_DECODE_TABLE, alaw_encode
from firmware.signalling import r2 as sig
from tools.linesim.r2exchange import TIMESLOT, R2Exchange
from tools.pstn import ALAW_SILENCE, SAMPLE_RATE, CallerLeg, HybridBank, SpeechSource, _Heard, _power_dbm0

CHANNELS = tuple(range(1, 31))
ROWS = np.array([TIMESLOT[c] for c in CHANNELS])  # E1 timeslot of each CAS channel


class R2CallerLeg(CallerLeg):
    """A caller of the network on an R2 channel."""

    def __init__(self, exchange: PstnR2Exchange, call_id: int, channel: int, caller: str, dnis: str,
                 offset: int) -> None:  # fmt: skip
        super().__init__(caller, offset)
        self.exchange = exchange
        self.call_id = call_id
        self.channel = channel
        self.dnis = dnis

    def far_hangup(self) -> None:
        """Clear forward (or, before answer, the caller gives up)."""
        if self.state != "down":
            self.exchange.stack.hangup(self.call_id, self.exchange.now)
            self.exchange.pump()


class PstnR2Exchange(R2Exchange):
    """An R2 span of `tools.pstn`'s network (see the module doc)."""

    framing = "cas"

    def __init__(
        self,
        far_end: Any,
        n: int = 80,
        name: str = "span1",
        hybrids: dict[str, Any] | None = None,
        speech: SpeechSource | None = None,
        seed: int = 1,
        dnis_digits: int = 0,
        config: sig.R2Config | None = None,
    ) -> None:
        self.far_end = far_end  # tools.pstn.SpanEnd connects this framer to the span's socket
        self._setup(far_end, n, f"{name}-r2network", dnis_digits, config, None, 0.0, False)
        self.random = random.Random(seed)
        self.answer_after = self.random.uniform(2.0, 6.0)
        self.hybrid = HybridBank(len(CHANNELS), hybrids, alaw=True, seed=seed)
        self.speech_source = speech or SpeechSource()
        self._heard = _Heard(32, ALAW_SILENCE, np.uint8)
        self._hangup_at: dict[int, float] = {}  # received (box-placed) call -> when the subscriber clears
        self._talk_offset: dict[int, int] = {}  # received call -> the subscriber's place in the speech loop
        self.box_calls = 0

    # ---- the callers' side ---------------------------------------------------------------------------
    def call_in(self, caller: str, dnis: str) -> R2CallerLeg | None:  # type: ignore[override]
        """A caller dials `dnis` over the span: the exchange seizes a free channel (from 30 down) and
        sends the number by compelled MF. None when the span is down or every channel is busy."""
        if not self.link_up or not self.stack.free_channels():
            return None
        call_id = self.stack.place_call(dnis, self.now, ani=caller)
        chan = self.stack.channel_of(call_id)
        if chan is None:
            return None
        leg = R2CallerLeg(
            self, call_id, chan, caller, dnis, self.random.randrange(self.speech_source.loop.size)
        )
        self.calls[call_id] = leg  # type: ignore[assignment]
        self.placed += 1
        self.pump()
        return leg

    def pump(self) -> None:
        """Hand the stack's commands to the line and take its events now (after a caller's action)."""
        self._drain(self.now)

    # ---- the line ------------------------------------------------------------------------------------
    def heard(self, voice: np.ndarray) -> None:
        """(32, k) A-law the box sent: the MF receiver, and what the callers hear."""
        super().heard(voice)
        self._heard.add(voice)

    def tick(self, now: float) -> None:
        super().tick(now)
        for call_id, when in list(self._hangup_at.items()):
            rc = self.received.get(call_id)
            if rc is None or rc.state != "up":
                self._hangup_at.pop(call_id)
            elif now >= when:
                self._hangup_at.pop(call_id)
                self.hangup_received(call_id)

    def _event(self, e: object, now: float) -> None:
        if isinstance(e, sig.IncomingCall):
            self.box_calls += 1
            self.answer_after = self.random.uniform(2.0, 6.0)
        super()._event(e, now)

    def _answer_due(self, now: float) -> None:
        ringing = [rc for rc in self.received.values() if rc.state == "ringing"]
        super()._answer_due(now)
        for rc in ringing:
            if rc.state == "up":
                self._hangup_at[rc.call_id] = now + self.random.uniform(10.0, 60.0)

    def _voice_block(self) -> np.ndarray:
        """The MF signals (R2Exchange), and on every answered channel the caller's line through its
        hybrid: DTMF, speech and the echo of what the box sends."""
        block = super()._voice_block()
        n = self.n
        rout = ALAW_DECODE_TABLE[self._heard.take(n)[ROWS]]  # (30, n) int16 from the box
        sgen = np.zeros((len(CHANNELS), n), dtype=np.int16)
        up: list[int] = []
        for leg in self.calls.values():
            if leg.state != "up" or leg.channel in self.tone:
                continue
            row = leg.channel - 1
            up.append(row)
            leg.heard(float(_power_dbm0(rout[row])), n / SAMPLE_RATE)
            dtmf = leg.next_audio(n)
            if dtmf is not None:
                sgen[row] = dtmf
            elif leg.talking:
                sgen[row] = self.speech_source.take(np.array([leg.speech_offset]), n)[0]
                leg.speech_offset += n
        for rc in self.received.values():
            if rc.state == "up" and rc.channel not in self.tone:
                row = rc.channel - 1
                up.append(row)
                offset = self._talk_offset.setdefault(
                    rc.call_id, self.random.randrange(self.speech_source.loop.size)
                )
                sgen[row] = self.speech_source.take(np.array([offset]), n)[0]
                self._talk_offset[rc.call_id] = offset + n
        line = self.hybrid.run(rout, sgen)
        if up:
            rows = np.array(up)
            block[ROWS[rows]] = alaw_encode(line[rows])
        return block

    def status(self) -> dict[str, Any]:
        return {**super().status(), "box_calls": self.box_calls}
