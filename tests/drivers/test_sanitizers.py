"""The C model and drivers under AddressSanitizer + UBSan: a separate build of the extension
(`drivers._callbox_asan`, built in place when missing or older than the C sources), run in a subprocess
with libasan preloaded (the Python interpreter itself is not instrumented)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from drivers import build_ffi

ROOT = Path(__file__).resolve().parents[2]


def _asan_module() -> Path | None:
    found = sorted((ROOT / "drivers").glob("_callbox_asan*.so"))
    return found[0] if found else None


def _stale(module: Path | None) -> bool:
    if module is None:
        return True
    newest = max(p.stat().st_mtime for p in [*build_ffi.sources(), *build_ffi.headers()])
    return module.stat().st_mtime < newest


def test_board_under_address_sanitizer_and_ubsan():
    gcc = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    libasan = gcc.stdout.strip()
    if not os.path.exists(libasan):
        pytest.fail("libasan not found (gcc's sanitizer runtime is part of build-essential)")
    module = _asan_module()
    if _stale(module):
        build = subprocess.run(
            [sys.executable, str(ROOT / "drivers" / "build_ffi.py"), "--asan"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    env = dict(
        os.environ,
        CALLBOX_ASAN="1",
        LD_PRELOAD=libasan,
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
        PYTHONPATH=str(ROOT),
    )
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "drivers" / "sanitizer_scenario.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = run.stdout[-3000:] + run.stderr[-6000:]
    assert "AddressSanitizer" not in run.stderr and "runtime error" not in run.stderr, report
    assert run.returncode == 0 and run.stdout.strip().endswith("OK"), report
