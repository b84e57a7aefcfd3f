"""Fixtures every layer's tests share."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Standards data lives beside the project (../shared/conformance), never copied in.
CONFORMANCE_DIR = REPO_ROOT.parent / "shared" / "conformance"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE_DIR.is_dir():
        pytest.fail(f"conformance data not found at {CONFORMANCE_DIR} (shared/ must sit beside the repo)")
    return CONFORMANCE_DIR


# Monday 2026-11-23 10:00 in Asia/Shanghai (UTC+8): office hours
MONDAY_10AM = calendar.timegm((2026, 11, 23, 2, 0, 0))


@pytest.fixture(scope="session")
def prompt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The voice prompts, built once per test session (espeak-ng, Mandarin and English)."""
    from firmware.prompts import build

    d = tmp_path_factory.mktemp("prompts")
    build(d, ["cmn", "en"])
    return d


@pytest.fixture
def make_bed(tmp_path: Path, prompt_dir: Path):
    """A whole box in one process on a virtual clock (firmware.calls.testbed), closed after the test."""
    from firmware.calls.testbed import Testbed

    beds = []

    def make(start: float = MONDAY_10AM, config_dir: Path | None = None, **kw) -> Testbed:
        bed = Testbed(tmp_path / f"data{len(beds)}", start, config_dir, [prompt_dir], **kw)
        beds.append(bed)
        return bed

    yield make
    for bed in beds:
        bed.close()
