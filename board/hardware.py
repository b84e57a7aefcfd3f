"""The board on real cards, with the same surface as the simulated one: `e1`, `fxo`, `tdm`, `step()`,
`run_realtime()`, `stop()`, `close()`. `open_board(desc, rundir)` picks the backend from the description.

On hardware the cards' DMA runs on its own (line clock or the card oscillator); `step()` waits until the
DMA has moved one more tick of frames, so the engine's tick is paced by the card, as the simulated board's
is paced by its caller. This path is real code over drivers/regio_spidev.c but is not exercised on this
machine (no cards): opening a board whose devices are missing fails with the device in the error.
"""

from __future__ import annotations

import threading
from pathlib import Path

from board.clock import RealClock
from board.description import BoardDescription
from board.sim.board import SimBoard
from drivers.e1 import FRAME, E1Card
from drivers.fxo import FxoCard
from drivers.hw import open_e1, open_fxo
from drivers.tdm import TdmPort

DMA_HEADER = 4096  # docs/hardware.md: rings start at offset 4096


class HardwareBoard:
    def __init__(self, desc: BoardDescription, tick_frames: int = 80, ring_ticks: int = 16) -> None:
        self.desc = desc
        self.tick_frames = tick_frames
        ring = tick_frames * ring_ticks
        self.e1: E1Card | None = None
        self.fxo: FxoCard | None = None
        for card in desc.cards:
            if card.kind == "e1":
                size = DMA_HEADER + 2 * len(card.spans) * FRAME * ring
                self.e1 = open_e1(card.spidev, card.dma or None, size if card.dma else 0, card.speed_hz)
                for cfg, span in zip(card.spans, self.e1.spans, strict=False):
                    span.configure(
                        cas=cfg.framing == "cas",
                        crc4=cfg.crc4,
                        hdb3=cfg.linecode == "hdb3",
                        line_timing=cfg.timing == "line",
                    )
                if card.dma:
                    self.e1.start_dma(ring)
            else:
                size = DMA_HEADER + 2 * card.ports * ring
                self.fxo = open_fxo(card.spidev, card.dma or None, size if card.dma else 0, card.speed_hz)
                if card.dma:
                    self.fxo.start_dma(ring)
        self.tdm = TdmPort(self.e1, self.fxo)
        self.frames = 0
        self.steps = 0
        self._stop = threading.Event()
        self._clock = RealClock()

    @property
    def period(self) -> float:
        return self.tick_frames / 8000

    def _count(self) -> int:
        if self.e1 is not None:
            return self.e1.count()
        return self.fxo.count() if self.fxo is not None else 0

    def step(self, n: int | None = None) -> None:
        """Wait until the cards' DMA has moved n more frames (default one tick)."""
        n = self.tick_frames if n is None else n
        target = self.frames + n
        clk = self._clock
        deadline = clk.now() + 10 * n / 8000  # a DMA that stopped must not hang the box
        while self._count() < target and clk.now() < deadline and not self._stop.is_set():
            clk.sleep_until(clk.now() + 0.0005)
        self.frames = max(target, self._count())
        self.steps += 1

    def run_realtime(self, clock: RealClock | None = None, timing_span: int | None = None) -> None:
        while not self._stop.is_set():
            self.step()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        for card in (self.e1, self.fxo):
            if card is not None and card.ring:
                card.stop_dma()
        self.e1 = self.fxo = None


def open_board(desc: BoardDescription, rundir: str | Path, tick_frames: int = 80) -> SimBoard | HardwareBoard:
    """The board the description names: the simulated cards (lines as sockets in rundir) or real ones."""
    if desc.backend == "hardware":
        return HardwareBoard(desc, tick_frames=tick_frames)
    return SimBoard(desc, rundir, tick_frames=tick_frames)
