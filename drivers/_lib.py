"""The compiled cffi extension (drivers/build_ffi.py): `ffi` and `lib`.

`CALLBOX_ASAN=1` in the environment picks the AddressSanitizer/UBSan build (`drivers._callbox_asan`), which
needs libasan preloaded (`LD_PRELOAD=$(gcc -print-file-name=libasan.so)`); the sanitizer test does that in
a subprocess.
"""

from __future__ import annotations

import errno
import importlib
import os
from typing import Any

_name = "drivers._callbox_asan" if os.environ.get("CALLBOX_ASAN") == "1" else "drivers._callbox"
try:
    _ext: Any = importlib.import_module(_name)
except ImportError as exc:  # pragma: no cover - depends on the build state
    raise ImportError(
        f"{_name} is not built or is out of date ({exc}): run `./box setup` (or `.venv/bin/python "
        f"drivers/build_ffi.py{' --asan' if 'asan' in _name else ''}` to build it in place)"
    ) from exc

ffi: Any = _ext.ffi
lib: Any = _ext.lib


class DriverError(OSError):
    """A driver call returned a negative errno."""


def check(rc: int, what: str) -> int:
    """Pass a non-negative return value through; raise DriverError for a negative errno."""
    if rc < 0:
        code = -rc
        raise DriverError(code, f"{what}: {os.strerror(code)} ({errno.errorcode.get(code, code)})")
    return rc
