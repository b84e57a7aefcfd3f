"""The one check every DSP object makes of a block it is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

T = TypeVar("T")


def check_block(block: npt.ArrayLike, channels: int, name: str = "block") -> np.ndarray:
    """An int16 numpy array shaped (channels, n >= 1), or a ValueError that says what is wrong."""
    if not isinstance(block, np.ndarray) or block.dtype != np.int16:
        got = block.dtype if isinstance(block, np.ndarray) else type(block).__name__
        raise ValueError(f"{name} must be an int16 numpy array shaped ({channels}, n), got {got}")
    if block.ndim != 2 or block.shape[0] != channels or block.shape[1] < 1:
        raise ValueError(f"{name} must be shaped ({channels}, n >= 1), got {block.shape}")
    return block


def check_channel(channel: object, channels: int) -> int:
    """`channel` as an int row index in 0..channels-1, or a ValueError that says what is wrong."""
    if not isinstance(channel, int | np.integer) or not 0 <= channel < channels:
        raise ValueError(f"channel must be an int in 0..{channels - 1}, got {channel!r}")
    return int(channel)


class SubBlocks:
    """Whole sub-blocks of `size` samples out of any split of the input, for all channels at once.

    The remainder waits for the next call, so a detector sees the same sub-blocks however its input is cut
    (split invariance). `max_run` bounds how many samples are handed over at once (scratch memory)."""

    def __init__(self, channels: int, size: int, max_run: int | None = None) -> None:
        if max_run is not None and max_run % size:
            raise ValueError(f"max_run {max_run} must be a whole number of {size}-sample sub-blocks")
        self.size = size
        self.max_run = max_run
        self.pending = np.zeros((channels, size), dtype=np.int16)
        self.fill = 0  # samples waiting in `pending` (the same for every channel)

    def clear(self, channel: int) -> None:
        self.pending[channel] = 0

    def feed(self, x: np.ndarray, run: Callable[[np.ndarray], list[T]]) -> list[T]:
        """Hand every whole sub-block of (what waited +) `x` to `run`, in order; keep the rest."""
        out: list[T] = []
        if self.fill:
            take = min(self.size - self.fill, x.shape[1])
            self.pending[:, self.fill : self.fill + take] = x[:, :take]
            self.fill += take
            x = x[:, take:]
            if self.fill == self.size:
                self.fill = 0
                out += run(self.pending)
        whole = (x.shape[1] // self.size) * self.size
        step = self.max_run or whole or 1
        for start in range(0, whole, step):
            out += run(x[:, start : min(whole, start + step)])
        rest = x.shape[1] - whole
        if rest:
            self.pending[:, :rest] = x[:, whole:]
            self.fill = rest
        return out
