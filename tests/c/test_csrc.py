"""Builds the C test programs of tests/csrc with -Werror under AddressSanitizer/UBSan and runs them.

Each program exercises the board models (board/sim) and the drivers (drivers/) directly in C and prints one
line per test case; a failed CHECK prints its file, line and values and makes the program exit non-zero.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CFLAGS = [
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-fno-omit-frame-pointer",
    "-g",
    "-O1",
]
INCLUDES = [f"-I{ROOT / d}" for d in ("drivers", "board/sim", "tests/csrc")]

FRAMER = ["board/sim/e1framer.c"]
E1CARD = [*FRAMER, "board/sim/sim_e1.c", "drivers/regio.c", "drivers/e1drv.c"]
FXOCARD = ["board/sim/sim_fxo.c", "board/sim/g711.c", "drivers/regio.c", "drivers/fxodrv.c"]
# test program -> the sources it links (and extra link flags)
PROGRAMS: dict[str, tuple[list[str], list[str]]] = {
    "test_e1framer": (FRAMER, []),
    "test_e1card": (E1CARD, []),
    "test_fxocard": (FXOCARD, []),
    # the codec model against spandsp's G.711 (libspandsp-dev, installed by ./box)
    "test_g711": (["board/sim/g711.c"], ["-lspandsp"]),
}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required for the C tests (build-essential)")
    return tmp_path_factory.mktemp("csrc")


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_c_program(name: str, build_dir: Path) -> None:
    sources, ldflags = PROGRAMS[name]
    exe = build_dir / name
    cmd = [
        "gcc",
        *CFLAGS,
        *INCLUDES,
        str(ROOT / "tests" / "csrc" / f"{name}.c"),
        *(str(ROOT / s) for s in sources),
        "-o",
        str(exe),
        *ldflags,
        "-lm",
    ]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{build.stderr}"
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    print(run.stdout)
    assert run.returncode == 0, f"{name} failed:\n{run.stdout}\n{run.stderr}"
    assert "0 failed" in run.stdout
