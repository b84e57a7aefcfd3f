"""The hardware path from Python: opening a card on a spidev that is not there fails cleanly."""

from __future__ import annotations

import errno

import pytest

from drivers._lib import DriverError
from drivers.hw import open_e1, open_fxo


def test_missing_spidev_is_a_clean_error(tmp_path):
    with pytest.raises(DriverError) as info:
        open_e1(str(tmp_path / "spidev9.9"))
    assert info.value.errno == errno.ENOENT
    with pytest.raises(DriverError):
        open_fxo(str(tmp_path / "spidev9.9"), dma_dev=str(tmp_path / "uio9"), dma_size=65536)


def test_a_file_that_is_not_a_spidev_is_refused(tmp_path):
    fake = tmp_path / "notspi"
    fake.write_bytes(b"\0" * 64)
    with pytest.raises(DriverError):
        open_e1(str(fake))
