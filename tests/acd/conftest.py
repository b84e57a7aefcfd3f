from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from firmware.acd.config import parse_acd_config
from firmware.acd.core import Acd
from firmware.acd.queuelog import QueueLog


class AcdHarness:
    """An ACD on a fresh SQLite store and queue_log file, driven in virtual time."""

    def __init__(self, tmp_path: Path, yaml_text: str, seed: int = 1) -> None:
        self.conn = sqlite3.connect(tmp_path / "callbox.db")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.log_path = tmp_path / "queue_log"
        self.log = QueueLog(self.conn, self.log_path, fsync=False)
        self.acd = Acd(parse_acd_config(yaml_text, "queues.yaml"), self.log, seed=seed)
        self.now = 1_700_000_000.0
        self.actions: list[object] = []

    def run(self, actions: list[object]) -> list[object]:
        self.actions += actions
        return actions

    def advance(self, seconds: float, step: float = 0.5) -> list[object]:
        out: list[object] = []
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = min(end, self.now + step)
            out += self.acd.tick(self.now)
        return self.run(out)

    def lines(self) -> list[list[str]]:
        return [line.split("|") for line in self.log_path.read_text().splitlines()]

    def events(self, event: str) -> list[list[str]]:
        return [fields for fields in self.lines() if fields[4] == event]


@pytest.fixture
def make_acd(tmp_path: Path) -> Callable[..., AcdHarness]:
    def factory(yaml_text: str, seed: int = 1) -> AcdHarness:
        return AcdHarness(tmp_path, yaml_text, seed)

    return factory
