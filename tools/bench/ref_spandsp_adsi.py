"""spandsp's caller ID receiver (adsi_rx) through cffi, as the yardstick for dsp.callerid.

Debian's libspandsp (libspandsp-dev) is opened at run time (cffi ABI mode: nothing to compile). One
adsi_rx_state_t per channel; messages arrive through the put_msg callback (negative lengths are status
reports and are ignored). Used by tools/bench/dsp_callerid.py and the interop tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CDEF = """
typedef struct adsi_rx_state_s adsi_rx_state_t;
typedef void (*put_msg_func_t)(void *user_data, const uint8_t *msg, int len);
adsi_rx_state_t *adsi_rx_init(adsi_rx_state_t *s, int standard, put_msg_func_t put_msg, void *user_data);
int adsi_rx_free(adsi_rx_state_t *s);
int adsi_rx(adsi_rx_state_t *s, const int16_t amp[], int len);
typedef struct adsi_tx_state_s adsi_tx_state_t;
adsi_tx_state_t *adsi_tx_init(adsi_tx_state_t *s, int standard);
int adsi_tx_put_message(adsi_tx_state_t *s, const uint8_t *msg, int len);
int adsi_tx(adsi_tx_state_t *s, int16_t amp[], int max_len);
int adsi_tx_free(adsi_tx_state_t *s);
"""

# spandsp/adsi.h
STANDARD = {"bell202": 1, "v23": 2, "dtmf": 5}  # ADSI_STANDARD_CLASS, _CLIP, _CLIP_DTMF

_loaded: tuple[Any, Any] | None = None


def load() -> tuple[Any, Any]:
    """(ffi, lib) for libspandsp; raises OSError if the library is not installed."""
    global _loaded
    if _loaded is None:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        last: OSError | None = None
        for name in ("libspandsp.so.2", "libspandsp.so", "spandsp"):
            try:
                lib = ffi.dlopen(name)
                break
            except OSError as exc:
                last = exc
        else:
            raise OSError(f"libspandsp not found (install libspandsp-dev): {last}")
        _loaded = (ffi, lib)
    return _loaded


_LOOP_SRC = """
#include <stdint.h>
#include <spandsp.h>
void run_blocks(void **states, int channels, const int16_t *x, int n, int block)
{
    for (int start = 0; start + block <= n; start += block)
        for (int ch = 0; ch < channels; ch++)
            adsi_rx((adsi_rx_state_t *) states[ch], x + (long) ch * n + start, block);
}
"""
_loop: Any = None


def _compiled_loop() -> Any:
    """A tiny C loop over blocks and channels calling adsi_rx, built once with cffi (needs a C compiler)."""
    global _loop
    if _loop is None:
        import importlib.util
        import sys
        import tempfile

        import cffi

        ffi = cffi.FFI()
        ffi.cdef("void run_blocks(void **states, int channels, const int16_t *x, int n, int block);")
        ffi.set_source(
            "_callbox_adsi_loop",
            _LOOP_SRC,
            libraries=["spandsp"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations"],
        )
        tmp = tempfile.mkdtemp(prefix="callbox-adsi-")
        path = ffi.compile(tmpdir=tmp, verbose=False)
        spec = importlib.util.spec_from_file_location("_callbox_adsi_loop", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["_callbox_adsi_loop"] = mod
        spec.loader.exec_module(mod)
        _loop = mod
    return _loop


class SpandspAdsiRx:
    """`channels` independent spandsp adsi_rx receivers; messages kept per channel as raw bytes."""

    def __init__(self, channels: int, standard: str = "bell202") -> None:
        if standard not in STANDARD:
            raise ValueError(f"unknown standard {standard!r}")
        self.ffi, self.lib = load()
        self.messages: list[list[bytes]] = [[] for _ in range(channels)]
        self._handles = [self.ffi.new_handle(m) for m in self.messages]
        self._cb = self.ffi.callback("void(void *, const uint8_t *, int)", self._put_msg)
        self._states = []
        for h in self._handles:
            st = self.lib.adsi_rx_init(self.ffi.NULL, STANDARD[standard], self._cb, h)
            if st == self.ffi.NULL:
                raise RuntimeError("adsi_rx_init failed")
            self._states.append(st)

    def _put_msg(self, user: Any, msg: Any, length: int) -> None:
        if length > 0:
            self.ffi.from_handle(user).append(bytes(self.ffi.buffer(msg, length)))

    def process(self, block: np.ndarray) -> None:
        """Feed a (channels, n) int16 block, one adsi_rx call per channel."""
        x = np.ascontiguousarray(block, dtype=np.int16)
        n = x.shape[1]
        ptr = self.ffi.cast("int16_t *", x.ctypes.data)
        rx, states = self.lib.adsi_rx, self._states
        for ch, st in enumerate(states):
            rx(st, ptr + ch * n, n)

    def run_blocks(self, x: np.ndarray, block: int) -> None:
        """Feed (channels, n) int16 as consecutive blocks of `block` samples, channel after channel per block,
        in one compiled C loop (no Python per call), the way a C application would drive spandsp."""
        loop = _compiled_loop()
        x = np.ascontiguousarray(x, dtype=np.int16)
        states = self.ffi.new("adsi_rx_state_t *[]", self._states)
        loop.lib.run_blocks(
            loop.ffi.cast("void **", states),
            len(self._states),
            loop.ffi.cast("const int16_t *", x.ctypes.data),
            x.shape[1],
            block,
        )

    def close(self) -> None:
        for st in self._states:
            self.lib.adsi_rx_free(st)
        self._states = []

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def spandsp_adsi_tx(message: bytes, standard: str = "bell202", max_samples: int = 80000) -> np.ndarray:
    """The signal spandsp's adsi_tx makes for one message (FSK: type, length, body without checksum;
    DTMF: the digit string), int16 at 8 kHz."""
    ffi, lib = load()
    tx = lib.adsi_tx_init(ffi.NULL, STANDARD[standard])
    if tx == ffi.NULL:
        raise RuntimeError("adsi_tx_init failed")
    try:
        if lib.adsi_tx_put_message(tx, message, len(message)) <= 0:
            raise ValueError("adsi_tx_put_message refused the message")
        buf = np.zeros(max_samples, dtype=np.int16)
        n = lib.adsi_tx(tx, ffi.cast("int16_t *", buf.ctypes.data), max_samples)
        return buf[:n].copy()
    finally:
        lib.adsi_tx_free(tx)
