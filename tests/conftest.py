"""Fixtures every layer's tests share."""

from __future__ import annotations

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
