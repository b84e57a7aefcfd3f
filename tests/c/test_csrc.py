"""Builds the C test programs of tests/csrc with -Werror under AddressSanitizer/UBSan and runs them.

Each program exercises the board models (board/sim) and the drivers (drivers/) directly in C and prints one
line per test case; a failed CHECK prints its file, line and values and makes the program exit non-zero.
Every source is compiled once (in parallel) and the objects are shared by the programs that link them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
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
# what both cards share: the SPI front end and common block of the models, the drivers' common part
CARD = ["board/sim/spi_slave.c", "board/sim/sim_card.c", "drivers/regio.c", "drivers/card.c"]
E1CARD = [*FRAMER, *CARD, "board/sim/sim_e1.c", "drivers/e1drv.c"]
FXOCARD = [*CARD, "board/sim/sim_fxo.c", "board/sim/g711.c", "drivers/fxodrv.c"]
# test program -> the sources it links (and extra link flags)
PROGRAMS: dict[str, tuple[list[str], list[str]]] = {
    "test_e1framer": (FRAMER, []),
    "test_e1card": (E1CARD, []),
    "test_fxocard": (FXOCARD, []),
    # seeded fault storms on a line; `test_chaos FIRST_SEED N` replays or widens (12 seeds here)
    "test_chaos": (E1CARD, []),
    "test_fxochaos": (FXOCARD, []),
    # the codec model against spandsp's G.711 (libspandsp-dev, installed by ./box)
    "test_g711": (["board/sim/g711.c"], ["-lspandsp"]),
    # the spidev backend against a fake spidev: the syscalls are intercepted at link time
    "test_spidev": (
        [*E1CARD, "drivers/regio_spidev.c"],
        ["-Wl,--wrap=open,--wrap=ioctl,--wrap=mmap,--wrap=munmap,--wrap=close"],
    ),
}


def _object(build: Path, source: str) -> Path:
    return build / (source.replace("/", "_") + ".o")


def _compile(build: Path, source: str) -> str | None:
    cmd = ["gcc", *CFLAGS, *INCLUDES, "-c", str(ROOT / source), "-o", str(_object(build, source))]
    res = subprocess.run(cmd, capture_output=True, text=True)
    return None if res.returncode == 0 else f"{' '.join(cmd)}\n{res.stderr}"


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required for the C tests (build-essential)")
    build = tmp_path_factory.mktemp("csrc")
    sources = {s for srcs, _ in PROGRAMS.values() for s in srcs}
    sources |= {f"tests/csrc/{p}.c" for p in PROGRAMS}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        errors = [e for e in pool.map(lambda s: _compile(build, s), sorted(sources)) if e]
    assert not errors, "compile failed:\n" + "\n".join(errors)
    return build


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_c_program(name: str, objects: Path) -> None:
    sources, ldflags = PROGRAMS[name]
    exe = objects / name
    objs = [str(_object(objects, s)) for s in [f"tests/csrc/{name}.c", *sources]]
    cmd = ["gcc", *CFLAGS, *objs, "-o", str(exe), *ldflags, "-lm"]
    link = subprocess.run(cmd, capture_output=True, text=True)
    assert link.returncode == 0, f"link failed:\n{' '.join(cmd)}\n{link.stderr}"
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    print(run.stdout)
    assert run.returncode == 0, f"{name} failed:\n{run.stdout}\n{run.stderr}"
    assert "0 failed" in run.stdout


def test_bench_models_builds_and_runs(tmp_path: Path) -> None:
    """The C-only benchmark of the board models (tests/csrc/bench_models.c) stays buildable and sane."""
    exe = tmp_path / "bench_models"
    srcs = list(dict.fromkeys(["tests/csrc/bench_models.c", *E1CARD, *FXOCARD]))
    cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", *INCLUDES, *(str(ROOT / s) for s in srcs), "-lm"]
    build = subprocess.run([*cmd, "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe), "1"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "raw status 0x00, crc errors 0, hdlc rx 10 tx 10, slips 0/0" in run.stdout


@pytest.mark.slow
def test_chaos_soak(objects: Path) -> None:
    """300 more seeded fault storms under ASan/UBSan (each failing seed is printed and replays exactly)."""
    sources, ldflags = PROGRAMS["test_chaos"]
    exe = objects / "test_chaos_soak"
    objs = [str(_object(objects, s)) for s in ["tests/csrc/test_chaos.c", *sources]]
    cmd = ["gcc", *CFLAGS, *objs, "-o", str(exe), *ldflags, "-lm"]
    link = subprocess.run(cmd, capture_output=True, text=True)
    assert link.returncode == 0, link.stderr
    run = subprocess.run([str(exe), "1000", "300"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "300 of 300 seeds recovered" in run.stdout
