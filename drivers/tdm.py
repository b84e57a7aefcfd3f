"""All voice channels of a board's cards as one `(channels, samples)` block per tick: the media engine's
port onto the lines (it satisfies firmware.engine's MediaPort: `channels`, `read(n)`, `write(codes)`).

Channel numbering (`TdmPort.channel(...)`): E1 span s (from 1) channel c (1..30) is row (s-1)*30 + c-1;
FXO port p (from 1) follows all spans: row spans*30 + p-1.

`read(n)` gathers the last n frames of the voice timeslots and FXO samples from the DMA rings into one
array (one numpy `take` per card: TS0/TS16 are not voice); `write(codes)` scatters the engine's block into
the transmit rings at the frames the cards send next. For zero-copy access to every timeslot use
`E1Card.rx_block` / `tx_block` (views `(spans*32, n)` on the ring) directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from drivers.e1 import FRAME, VOICE_TS

if TYPE_CHECKING:
    from drivers.e1 import E1Card
    from drivers.fxo import FxoCard


class TdmPort:
    def __init__(self, e1: E1Card | None, fxo: FxoCard | None) -> None:
        self.e1 = e1
        self.fxo = fxo
        self.spans = e1.nspans if e1 is not None else 0
        self.ports = fxo.nports if fxo is not None else 0
        self.e1_channels = self.spans * len(VOICE_TS)
        self.channels = self.e1_channels + self.ports
        # Rows of the (spans*32, n) ring view that are voice channels, in channel order.
        self._rows = (np.arange(self.spans)[:, None] * FRAME + VOICE_TS[None, :]).ravel()
        self._out = np.empty((self.channels, 0), dtype=np.uint8)

    def channel(self, span: int | None = None, chan: int | None = None, port: int | None = None) -> int:
        """Row of E1 span `span` channel `chan` (1..30), or of FXO port `port`."""
        if port is not None:
            if not 1 <= port <= self.ports:
                raise ValueError(f"no FXO port {port}")
            return self.e1_channels + port - 1
        if span is None or chan is None or not 1 <= span <= self.spans or not 1 <= chan <= 30:
            raise ValueError(f"no E1 channel span={span} chan={chan}")
        return (span - 1) * 30 + chan - 1

    def describe(self, row: int) -> str:
        if row < self.e1_channels:
            return f"span {row // 30 + 1} ch {row % 30 + 1}"
        return f"fxo {row - self.e1_channels + 1}"

    def read(self, n: int) -> np.ndarray:
        """(channels, n) uint8 A-law: the last n samples every channel received (reused buffer)."""
        if self._out.shape[1] != n:
            self._out = np.empty((self.channels, n), dtype=np.uint8)
        if self.e1 is not None:
            np.take(self.e1.rx_block(n), self._rows, axis=0, out=self._out[: self.e1_channels])
        if self.fxo is not None:
            self._out[self.e1_channels :] = self.fxo.rx_block(n)
        return self._out

    def write(self, codes: np.ndarray) -> None:
        """(channels, n) uint8 A-law to send in the next n frames/samples."""
        n = codes.shape[1]
        if self.e1 is not None:
            ring = self.e1._tx
            assert ring is not None, "DMA not started"
            size = ring.shape[1]
            s = self.e1.count() % size
            first = min(n, size - s)
            ring[self._rows, s : s + first] = codes[: self.e1_channels, :first]
            if first < n:
                ring[self._rows, : n - first] = codes[: self.e1_channels, first:]
        if self.fxo is not None:
            self.fxo.write_tx(codes[self.e1_channels :])
