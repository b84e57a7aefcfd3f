"""Media ports that are not the board: far ends attached in-process, and the benchmark's synthetic load.

`LoopPort` is the simplest real line: every channel has a far end in this process that can send audio into
the box (`send`) and hears what the box sends (`heard`). Test-double endpoints and, until SIP exists, the
demo's agents use it. `SyntheticPort` feeds every channel speech-like A-law from a pre-computed bank at
no per-channel cost, for the engine benchmark.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from dsp.g711 import ALAW_DECODE_TABLE, ALAW_ENCODE_TABLE

SILENCE = int(ALAW_ENCODE_TABLE[0])


class LoopPort:
    """channels far ends in-process: queued audio in, captured audio out (only where capture is on)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._pending: dict[int, deque[np.ndarray]] = {}
        self._capture: dict[int, list[np.ndarray]] = {}
        self.last_tx = np.full((channels, 1), SILENCE, dtype=np.uint8)
        self.mixin: list = []  # callables (block uint8 (channels, n)) -> None, e.g. a board hybrid model

    def send(self, channel: int, pcm: np.ndarray) -> None:
        """Queue int16 audio from the far end of `channel` towards the box."""
        codes = ALAW_ENCODE_TABLE[np.asarray(pcm, dtype=np.int16).view(np.uint16)]
        self._pending.setdefault(channel, deque()).append(codes)

    def pending(self, channel: int) -> int:
        return sum(len(c) for c in self._pending.get(channel, ()))

    def capture(self, channel: int, on: bool = True) -> None:
        if on:
            self._capture.setdefault(channel, [])
        else:
            self._capture.pop(channel, None)

    def heard(self, channel: int, clear: bool = True) -> np.ndarray:
        """int16 audio the box sent to `channel` since capture began (or the last call)."""
        chunks = self._capture.get(channel, [])
        audio = ALAW_DECODE_TABLE[np.concatenate(chunks)] if chunks else np.zeros(0, dtype=np.int16)
        if clear and channel in self._capture:
            self._capture[channel] = []
        return audio

    def read(self, n: int) -> np.ndarray:
        block = np.full((self.channels, n), SILENCE, dtype=np.uint8)
        for ch in [c for c, q in self._pending.items() if q]:
            q = self._pending[ch]
            filled = 0
            while q and filled < n:
                head = q[0]
                take = min(n - filled, len(head))
                block[ch, filled : filled + take] = head[:take]
                filled += take
                if take == len(head):
                    q.popleft()
                else:
                    q[0] = head[take:]
        for mix in self.mixin:
            mix(block)
        return block

    def write(self, codes: np.ndarray) -> None:
        self.last_tx = codes.copy()  # the engine reuses its buffer
        for ch, chunks in self._capture.items():
            chunks.append(codes[ch].copy())


class SyntheticPort:
    """Speech-like load on every channel: band-limited noise bursts with syllable-rate gating, A-law."""

    def __init__(self, channels: int, seconds: float = 7.0, seed: int = 1) -> None:
        self.channels = channels
        rng = np.random.default_rng(seed)
        n = int(seconds * 8000)
        noise = rng.standard_normal(n)
        # crude vocal-tract colouring: two-pole resonance, then syllable envelope (~4 Hz) with pauses
        from scipy.signal import lfilter

        voiced = lfilter([1.0], [1.0, -1.3, 0.6], noise)
        env = np.clip(np.sin(2 * np.pi * 4.0 * np.arange(n) / 8000) + 0.3, 0, None)
        env *= np.repeat(rng.random(n // 4000 + 1) > 0.35, 4000)[:n]
        pcm = np.clip(voiced / np.std(voiced) * 3000 * env, -32768, 32767).astype(np.int16)
        self.bank = ALAW_ENCODE_TABLE[pcm.view(np.uint16)]
        self.offsets = rng.integers(0, n, channels)
        self.pos = 0
        self.written = 0

    def read(self, n: int) -> np.ndarray:
        idx = (self.offsets[:, None] + self.pos + np.arange(n)) % len(self.bank)
        self.pos += n
        return self.bank[idx]

    def write(self, codes: np.ndarray) -> None:
        self.written += codes.shape[1]


class StackedPort:
    """Several ports as one channel array: rows of the first, then the second's, ... (e.g. the board's
    E1/FXO channels followed by rows for SIP legs or in-process agents)."""

    def __init__(self, ports: list) -> None:
        self.ports = ports
        self.offsets = []
        total = 0
        for p in ports:
            self.offsets.append(total)
            total += int(p.channels)
        self.channels = total
        self._block: np.ndarray | None = None

    def offset(self, index: int) -> int:
        return self.offsets[index]

    def read(self, n: int) -> np.ndarray:
        if self._block is None or self._block.shape[1] != n:
            self._block = np.empty((self.channels, n), dtype=np.uint8)
        for p, off in zip(self.ports, self.offsets, strict=True):
            self._block[off : off + p.channels] = p.read(n)
        return self._block

    def write(self, codes: np.ndarray) -> None:
        for p, off in zip(self.ports, self.offsets, strict=True):
            p.write(codes[off : off + p.channels])
