"""Test-double call control for driving the SIP side end to end (stands where CallManager and the trunks
will be): answers, rings or refuses by dialled number, records what each leg hears, plays a tone."""

from __future__ import annotations

import asyncio

import numpy as np

from firmware.calls.endpoint import Cause, Endpoint


class AnsweringDouble:
    """5000 answers, 5001 rings forever, 5002 answers then hangs up after 0.5 s, 5003 early media then
    answers after 0.5 s; anything else is refused as unallocated (404)."""

    def __init__(self, tone_hz: float = 1000.0, amplitude: float = 8000.0) -> None:
        self.events: list[tuple] = []
        self.digits: list[str] = []
        self.heard: dict[int, list[np.ndarray]] = {}
        self.answered_legs: set[int] = set()
        self.tone_hz = tone_hz
        self.amplitude = amplitude
        self._phase = 0

    # CallControl
    def incoming(self, ep: Endpoint, caller: str, called: str, caller_name: str | None = None) -> None:
        self.events.append(("incoming", caller, called, caller_name))
        loop = asyncio.get_running_loop()
        if called == "5000":
            ep.ring()
            ep.answer()
            self.answered_legs.add(ep.leg)
        elif called == "5001":
            ep.ring()
        elif called == "5002":
            ep.ring()
            ep.answer()
            self.answered_legs.add(ep.leg)
            loop.call_later(0.5, ep.hangup)
        elif called == "5003":
            ep.progress()
            self.answered_legs.add(ep.leg)
            loop.call_later(0.5, ep.answer)
        else:
            ep.hangup(Cause.UNALLOCATED)

    def ringing(self, ep: Endpoint) -> None:
        self.events.append(("ringing", ep.name))

    def answered(self, ep: Endpoint) -> None:
        self.events.append(("answered", ep.name))
        self.answered_legs.add(ep.leg)

    def hangup(self, ep: Endpoint, cause: int) -> None:
        self.events.append(("hangup", ep.name, cause))
        self.answered_legs.discard(ep.leg)

    def dtmf(self, ep: Endpoint, digit: str) -> None:
        self.digits.append(digit)

    # media: called by SipService's pump every 10 ms
    def media(self, rx: np.ndarray) -> np.ndarray:
        tx = np.zeros_like(rx)
        t = np.arange(self._phase, self._phase + rx.shape[1])
        self._phase += rx.shape[1]
        tone = (self.amplitude * np.sin(2 * np.pi * self.tone_hz * t / 8000)).astype(np.int16)
        for leg in self.answered_legs:
            self.heard.setdefault(leg, []).append(rx[leg].copy())
            tx[leg] = tone
        return tx

    def audio(self, leg: int) -> np.ndarray:
        chunks = self.heard.get(leg, [])
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def dominant_frequency(pcm: np.ndarray, rate: int = 8000) -> float:
    x = pcm.astype(float) * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * rate / len(pcm))


def rms_dbfs(pcm: np.ndarray) -> float:
    rms = np.sqrt(np.mean(pcm.astype(float) ** 2)) if len(pcm) else 0.0
    return 20 * np.log10(max(rms, 1e-9) / 32768)
