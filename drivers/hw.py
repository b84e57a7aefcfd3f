"""The cards on real hardware: the spidev register backend (drivers/regio_spidev.c) opened from Python.

    card = open_e1(spidev="/dev/spidev0.0", dma_dev="/dev/uio0", dma_size=...)

gives the same `E1Card` (or `FxoCard`) as the simulated board does, so everything above the drivers runs
unchanged. Not exercised on this machine (no cards); opening a missing device fails with a DriverError.
"""

from __future__ import annotations

from typing import Any

from drivers._lib import check, ffi, lib
from drivers.e1 import E1Card
from drivers.fxo import FxoCard


class SpidevRegio:
    """One card's register access over spidev (+ its DMA area from a UIO/char device); closed when freed."""

    def __init__(
        self, spidev: str, speed_hz: int = 10_000_000, dma_dev: str | None = None, dma_size: int = 0
    ) -> None:
        io = ffi.new("struct regio *")
        dev = ffi.new("char[]", spidev.encode())
        dma = ffi.new("char[]", dma_dev.encode()) if dma_dev else ffi.NULL
        check(lib.regio_spidev_open(io, dev, speed_hz, dma, dma_size), f"open {spidev}")
        self.io: Any = ffi.gc(io, lib.regio_close)
        self.spidev = spidev

    def close(self) -> None:
        if self.io is not None:
            lib.regio_close(ffi.gc(self.io, None))
            self.io = None


def open_e1(spidev: str, dma_dev: str | None = None, dma_size: int = 0, speed_hz: int = 10_000_000) -> E1Card:
    regio = SpidevRegio(spidev, speed_hz, dma_dev, dma_size)
    return E1Card(regio.io, keepalive=regio)


def open_fxo(
    spidev: str, dma_dev: str | None = None, dma_size: int = 0, speed_hz: int = 10_000_000
) -> FxoCard:
    regio = SpidevRegio(spidev, speed_hz, dma_dev, dma_size)
    return FxoCard(regio.io, keepalive=regio)
