"""cffi build (API mode) of the C drivers and the C board model: the `drivers._callbox` extension.

Built at install (`pip install -e .` through setup.py's `cffi_modules`), or in place during development:

    .venv/bin/python drivers/build_ffi.py          # drivers/_callbox*.so
    .venv/bin/python drivers/build_ffi.py --asan   # drivers/_callbox_asan*.so (AddressSanitizer + UBSan)

The cdef is the C engineer's public headers (`drivers/*.h`, `board/sim/*.h`) with the preprocessor lines
taken out, so the Python side sees exactly the C API, with no second copy to keep in step. The sources are
every `drivers/*.c` and `board/sim/*.c`, compiled with `-Wall -Wextra -Werror -O2`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
HEADER_DIRS = (ROOT / "drivers", ROOT / "board" / "sim")
MODULE = "drivers._callbox"
ASAN_MODULE = "drivers._callbox_asan"
WARNINGS = ["-Wall", "-Wextra", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
# Glue of our own, compiled with the sources: one call per tick moves the whole DMA of a board.
GLUE_CDEF = ""


def headers() -> list[Path]:
    """Public headers in a stable order: register maps and regio first (others refer to them)."""
    found = [p for d in HEADER_DIRS for p in sorted(d.glob("*.h"))]

    def rank(p: Path) -> tuple[int, str]:
        name = p.name
        if name == "regio.h":
            return (0, name)
        if name.endswith("regs.h"):
            return (1, name)
        return (2 if p.parent.name == "drivers" else 3, name)

    return sorted(found, key=rank)


def sources() -> list[Path]:
    return [p for d in HEADER_DIRS for p in sorted(d.glob("*.c")) if not p.name.startswith("_")]


_PREPROCESSOR = re.compile(r"^\s*#.*?(?:\\\n.*?)*$", re.MULTILINE)


def cdef_text() -> str:
    """The headers as cffi's cdef reads them: no #include / #ifndef / #define guards."""
    parts = []
    for h in headers():
        text = _PREPROCESSOR.sub("", h.read_text())
        parts.append(f"/* {h.relative_to(ROOT)} */\n{text}")
    return "\n".join(parts) + GLUE_CDEF


def make_builder(asan: bool = False, absolute: bool = False) -> FFI:
    """The FFI builder; `absolute` paths for building in place (setup.py wants them relative)."""

    def path(p: Path) -> str:
        return str(p) if absolute else str(p.relative_to(ROOT))

    ffi = FFI()
    ffi.cdef(cdef_text())
    includes = "\n".join(f'#include "{h.name}"' for h in headers())
    compile_args = [*WARNINGS, "-O1" if asan else "-O2", "-std=gnu11"]
    link_args: list[str] = []
    if asan:
        compile_args += SANITIZE
        link_args += SANITIZE
    ffi.set_source(
        ASAN_MODULE if asan else MODULE,
        includes,
        sources=[path(p) for p in sources()],
        include_dirs=[path(d) for d in HEADER_DIRS],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    return ffi


# setup.py: cffi_modules=["drivers/build_ffi.py:ffibuilder"]; the relative paths above are resolved from
# the repository root, where setup.py runs.
ffibuilder = make_builder()


def build_in_place(asan: bool = False, verbose: bool = False) -> Path:
    """Compile the extension into drivers/ (development; tests of the sanitizer build)."""
    tmp = ROOT / "build" / ("cffi-asan" if asan else "cffi")
    tmp.mkdir(parents=True, exist_ok=True)
    out = make_builder(asan, absolute=True).compile(tmpdir=str(tmp), verbose=verbose)
    # Name it as setuptools does (cffi's C code is built for the stable ABI), and remove any other build of
    # the same module that Python would import first (a `.cpython-311-...so` shadows an `.abi3.so`).
    # The rename is atomic, so a process importing the module meanwhile sees the old build or the new one.
    stem = (ASAN_MODULE if asan else MODULE).rsplit(".", 1)[1]
    target = ROOT / "drivers" / f"{stem}.abi3.so"
    Path(out).replace(target)
    for old in (ROOT / "drivers").glob(f"{stem}.*so"):
        if old != target:
            old.unlink()
    return target


def main(argv: list[str]) -> int:
    asan = "--asan" in argv
    print(build_in_place(asan=asan, verbose="-v" in argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
