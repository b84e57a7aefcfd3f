"""A card's TDM DMA rings as numpy views, shared by the E1 and FXO cards: rx (line -> host) and tx
(host -> line), each (rows, ring) uint8 A-law, indexed by the card's DMA count."""

from __future__ import annotations

from typing import Any

import numpy as np

from drivers._lib import ffi


class DmaRings:
    ring: int = 0
    _rx: np.ndarray | None = None
    _tx: np.ndarray | None = None

    def count(self) -> int:
        """Ring positions (frames or samples) the DMA has moved since it started."""
        raise NotImplementedError

    def _map_rings(self, rx: Any, tx: Any, rows: int, ring: int) -> None:
        """Views on the DMA area the driver reported (no copy)."""
        self.ring = ring
        size = rows * ring
        self._rx = np.frombuffer(ffi.buffer(rx, size), dtype=np.uint8).reshape(rows, ring)
        self._tx = np.frombuffer(ffi.buffer(tx, size), dtype=np.uint8).reshape(rows, ring)

    def rx_block(self, n: int, end: int | None = None) -> np.ndarray:
        """The last n positions received (ending at `end`, default the DMA count) as (rows, n) uint8;
        a view on the ring unless the block wraps (then a copy)."""
        assert self._rx is not None, "DMA not started"
        return _ring_slice(self._rx, (self.count() if end is None else end) - n, n)

    def tx_block(self, n: int, start: int | None = None) -> np.ndarray:
        """The n positions the card sends next (from `start`, default the DMA count) as a writable (rows, n)
        view; write into it (or use write_tx if the block wraps the ring)."""
        assert self._tx is not None, "DMA not started"
        s = (self.count() if start is None else start) % self.ring
        if s + n > self.ring:
            raise ValueError("block wraps the ring: use a ring that is a multiple of the tick, or write_tx")
        return self._tx[:, s : s + n]

    def write_tx(self, block: np.ndarray, start: int | None = None) -> None:
        assert self._tx is not None, "DMA not started"
        _ring_write(self._tx, self.count() if start is None else start, block)


def _ring_slice(ring: np.ndarray, start: int, n: int) -> np.ndarray:
    size = ring.shape[1]
    s = start % size
    if s + n <= size:
        return ring[:, s : s + n]
    return np.concatenate([ring[:, s:], ring[:, : n - (size - s)]], axis=1)


def _ring_write(ring: np.ndarray, start: int, block: np.ndarray) -> None:
    size = ring.shape[1]
    n = block.shape[1]
    s = start % size
    first = min(n, size - s)
    ring[:, s : s + first] = block[:, :first]
    if first < n:
        ring[:, : n - first] = block[:, first:]
