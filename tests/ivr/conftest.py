from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from firmware.calls.testbed import Testbed
from firmware.prompts import build

# Monday 2026-11-23 10:00 in Asia/Shanghai (UTC+8): office hours
MONDAY_10AM = calendar.timegm((2026, 11, 23, 2, 0, 0))


@pytest.fixture(scope="session")
def prompt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("prompts")
    build(d, ["cmn"])
    return d


@pytest.fixture
def make_bed(tmp_path: Path, prompt_dir: Path):
    beds = []

    def make(start: float = MONDAY_10AM, config_dir: Path | None = None, **kw) -> Testbed:
        bed = Testbed(tmp_path / f"data{len(beds)}", start, config_dir, [prompt_dir], **kw)
        beds.append(bed)
        return bed

    yield make
    for bed in beds:
        bed.close()
