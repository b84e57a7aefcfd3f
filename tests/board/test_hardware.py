"""The hardware backend as far as this machine can take it: the description's device fields, and opening a
board whose SPI devices are missing fails with the device named (no cards here)."""

from __future__ import annotations

import pytest

from board.description import BoardConfigError, parse_board
from board.hardware import open_board
from board.sim.board import SimBoard
from drivers._lib import DriverError

HW = """\
name: hw
backend: hardware
slots:
  - slot: 1
    card: e1
    spidev: /dev/spidev7.0
    dma: /dev/uio7
    spans:
      - span: 1
  - slot: 2
    card: fxo
    spidev: /dev/spidev7.1
    ports: 4
"""


def test_hardware_fields():
    d = parse_board(HW, "hw.yaml")
    assert d.backend == "hardware"
    assert [(c.spidev, c.dma) for c in d.cards] == [("/dev/spidev7.0", "/dev/uio7"), ("/dev/spidev7.1", "")]


def test_hardware_needs_spidev_and_device_paths():
    with pytest.raises(BoardConfigError) as info:
        parse_board(HW.replace("    spidev: /dev/spidev7.1\n", ""), "hw.yaml")
    assert info.value.line == 10 and "missing field 'spidev'" in info.value.reason
    with pytest.raises(BoardConfigError) as info:
        parse_board(HW.replace("dma: /dev/uio7", "dma: uio7"), "hw.yaml")
    assert info.value.line == 7 and "expected a path under /dev/" in info.value.reason


def test_opening_missing_cards_names_the_device(tmp_path):
    with pytest.raises(DriverError) as info:
        open_board(parse_board(HW, "hw.yaml"), tmp_path)
    assert "/dev/spidev7.0" in str(info.value)


def test_sim_backend_opens_the_simulated_board(tmp_path):
    board = open_board(parse_board(HW.replace("backend: hardware", "backend: sim"), "s.yaml"), tmp_path)
    try:
        assert isinstance(board, SimBoard) and board.e1.nspans == 1 and board.fxo.nports == 4
    finally:
        board.close()
