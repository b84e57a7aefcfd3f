"""The one check every DSP object makes of a block it is given."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def check_block(block: npt.ArrayLike, channels: int, name: str = "block") -> np.ndarray:
    """An int16 numpy array shaped (channels, n >= 1), or a ValueError that says what is wrong."""
    if not isinstance(block, np.ndarray) or block.dtype != np.int16:
        got = block.dtype if isinstance(block, np.ndarray) else type(block).__name__
        raise ValueError(f"{name} must be an int16 numpy array shaped ({channels}, n), got {got}")
    if block.ndim != 2 or block.shape[0] != channels or block.shape[1] < 1:
        raise ValueError(f"{name} must be shaped ({channels}, n >= 1), got {block.shape}")
    return block
