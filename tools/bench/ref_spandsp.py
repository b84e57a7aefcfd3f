"""spandsp (Debian libspandsp-dev) through cffi ABI mode: the reference DTMF receiver and tone detector.

Used by the benchmark (`tools/bench/dsp.py`) and by the conformance/talk-off comparisons in the tests.
Only the public API of the installed shared library is called; nothing of spandsp is shipped.
"""

from __future__ import annotations

from typing import Any

import cffi
import numpy as np

_CDEF = """
typedef struct dtmf_rx_state_s dtmf_rx_state_t;
typedef void (*digits_rx_callback_t)(void *user_data, const char *digits, int len);
dtmf_rx_state_t *dtmf_rx_init(dtmf_rx_state_t *s, digits_rx_callback_t callback, void *user_data);
void dtmf_rx_parms(dtmf_rx_state_t *s, int filter_dialtone, float twist, float reverse_twist,
                   float threshold);
int dtmf_rx(dtmf_rx_state_t *s, const int16_t amp[], int samples);
size_t dtmf_rx_get(dtmf_rx_state_t *s, char *digits, int max);
int dtmf_rx_free(dtmf_rx_state_t *s);

typedef struct super_tone_rx_descriptor_s super_tone_rx_descriptor_t;
typedef struct super_tone_rx_state_s super_tone_rx_state_t;
typedef void (*tone_report_func_t)(void *user_data, int code, int level, int delay);
super_tone_rx_descriptor_t *super_tone_rx_make_descriptor(super_tone_rx_descriptor_t *desc);
int super_tone_rx_add_tone(super_tone_rx_descriptor_t *desc);
int super_tone_rx_add_element(super_tone_rx_descriptor_t *desc, int tone, int f1, int f2, int min, int max);
super_tone_rx_state_t *super_tone_rx_init(super_tone_rx_state_t *s, super_tone_rx_descriptor_t *desc,
                                          tone_report_func_t callback, void *user_data);
int super_tone_rx(super_tone_rx_state_t *super, const int16_t amp[], int samples);
int super_tone_rx_free(super_tone_rx_state_t *s);
"""

_ffi: Any = None
_lib: Any = None
_loop: Any = None

_LOOP_SRC = """
#include <stdint.h>
#include <spandsp.h>
/* Feed (channels, n) int16 samples block by block, every channel per block, the way a C application
   drives spandsp; drains dtmf_rx's digit queue after each block and returns the number of digits. */
long run_dtmf(void **states, int channels, const int16_t *x, int n, int block)
{
    char buf[129];
    long digits = 0;
    for (int start = 0; start + block <= n; start += block)
        for (int ch = 0; ch < channels; ch++)
        {
            dtmf_rx((dtmf_rx_state_t *) states[ch], x + (long) ch * n + start, block);
            digits += (long) dtmf_rx_get((dtmf_rx_state_t *) states[ch], buf, 128);
        }
    return digits;
}
void run_tone(void **states, int channels, const int16_t *x, int n, int block)
{
    for (int start = 0; start + block <= n; start += block)
        for (int ch = 0; ch < channels; ch++)
            super_tone_rx((super_tone_rx_state_t *) states[ch], x + (long) ch * n + start, block);
}
"""


class SpandspMissing(RuntimeError):
    """libspandsp is not installed (Debian package libspandsp-dev / libspandsp2)."""


def load() -> tuple[Any, Any]:
    """(ffi, lib) for libspandsp; raises SpandspMissing if the library is absent."""
    global _ffi, _lib
    if _lib is None:
        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        lib = None
        for name in ("libspandsp.so.2", "libspandsp.so", "spandsp"):
            try:
                lib = ffi.dlopen(name)
                break
            except OSError:
                continue
        if lib is None:
            raise SpandspMissing("libspandsp not found (apt install libspandsp-dev)")
        _ffi, _lib = ffi, lib
    return _ffi, _lib


def compiled_loop() -> Any:
    """The C loops above, built once with cffi API mode (needs a C compiler and libspandsp-dev)."""
    global _loop
    if _loop is None:
        import importlib.util
        import sys
        import tempfile

        ffi = cffi.FFI()
        ffi.cdef(
            "long run_dtmf(void **states, int channels, const int16_t *x, int n, int block);"
            "void run_tone(void **states, int channels, const int16_t *x, int n, int block);"
        )
        ffi.set_source(
            "_callbox_spandsp_loop",
            _LOOP_SRC,
            libraries=["spandsp"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations"],
        )
        path = ffi.compile(tmpdir=tempfile.mkdtemp(prefix="callbox-spandsp-"), verbose=False)
        spec = importlib.util.spec_from_file_location("_callbox_spandsp_loop", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["_callbox_spandsp_loop"] = mod
        spec.loader.exec_module(mod)
        _loop = mod
    return _loop


def _run_compiled(kind: str, states: list[Any], x: np.ndarray, block: int) -> int:
    loop = compiled_loop()
    ffi, _ = load()
    x = np.ascontiguousarray(x, dtype=np.int16)
    arr = ffi.new("void *[]", states)
    fn = loop.lib.run_dtmf if kind == "dtmf" else loop.lib.run_tone
    out = fn(
        loop.ffi.cast("void **", loop.ffi.cast("uintptr_t", int(ffi.cast("uintptr_t", arr)))),
        len(states),
        loop.ffi.cast("const int16_t *", x.ctypes.data),
        x.shape[1],
        block,
    )
    return int(out or 0)


class SpandspDtmf:
    """One spandsp dtmf_rx per channel (default parameters, as dtmf_rx_tests.c runs it)."""

    def __init__(self, channels: int = 1) -> None:
        self.ffi, self.lib = load()
        self.states = [
            self.lib.dtmf_rx_init(self.ffi.NULL, self.ffi.NULL, self.ffi.NULL) for _ in range(channels)
        ]
        self._buf = self.ffi.new("char[]", 129)

    def process_channel(self, ch: int, samples: np.ndarray) -> str:
        """Feed int16 samples of one channel; return the digits it reported."""
        x = np.ascontiguousarray(samples, dtype=np.int16)
        out = []
        # spandsp queues at most 128 digits: feed a second at a time and drain the queue after each
        for start in range(0, len(x), 8000):
            part = x[start : start + 8000]
            self.lib.dtmf_rx(self.states[ch], self.ffi.from_buffer("int16_t[]", part), len(part))
            while n := self.lib.dtmf_rx_get(self.states[ch], self._buf, 128):
                out.append(self.ffi.string(self._buf, n).decode())
        return "".join(out)

    def process(self, block: np.ndarray) -> list[str]:
        """(channels, n) int16 -> digits per channel."""
        return [self.process_channel(ch, block[ch]) for ch in range(len(self.states))]

    def run_blocks(self, x: np.ndarray, block: int) -> int:
        """(channels, n) int16 fed in `block`-sample blocks from a compiled C loop; returns digits found."""
        return _run_compiled("dtmf", self.states, x, block)

    def close(self) -> None:
        for s in self.states:
            self.lib.dtmf_rx_free(s)
        self.states = []


def spandsp_cadences(plan: str = "cn", jitter: float = 0.15) -> dict[str, list[tuple[int, int, int, int]]]:
    """A plan's tones (dsp.tones.PLANS) as super_tone_rx elements: (f1, f2, min_ms, max_ms)."""
    from dsp.tones import PLANS

    out: dict[str, list[tuple[int, int, int, int]]] = {}
    for name, cad in PLANS[plan].items():
        f1 = int(cad.freqs[0])
        f2 = int(cad.freqs[1]) if len(cad.freqs) > 1 else 0
        if not cad.pattern:
            out[name] = [(f1, f2, 1500, 0)]  # continuous: confirmed after 1.5 s, no maximum
            continue
        elems = []
        for k, period in enumerate(cad.pattern):
            lo, hi = int(period * 1000 * (1 - jitter)) - 20, int(period * 1000 * (1 + jitter)) + 20
            elems.append((f1, f2, lo, hi) if k % 2 == 0 else (0, 0, lo, hi))
        out[name] = elems * 2 if len(elems) == 2 and cad.pattern[0] < 0.5 else elems
    return out


class SpandspToneRx:
    """One spandsp super_tone_rx per channel, loaded with a plan's cadences (ms min/max per element)."""

    def __init__(self, tones: dict[str, list[tuple[int, int, int, int]]], channels: int = 1) -> None:
        """`tones`: name -> elements (f1, f2, min_ms, max_ms); f1 = 0 is silence, max 0 = unbounded."""
        self.ffi, self.lib = load()
        self.names = list(tones)
        self.desc = self.lib.super_tone_rx_make_descriptor(self.ffi.NULL)
        for name in self.names:
            tone = self.lib.super_tone_rx_add_tone(self.desc)
            for f1, f2, lo, hi in tones[name]:
                self.lib.super_tone_rx_add_element(self.desc, tone, f1, f2, lo, hi)
        self.reports: list[tuple[int, str]] = []  # (channel, tone name) at each tone confirmation

        @self.ffi.callback("void(void *, int, int, int)")
        def _report(user_data: Any, code: int, level: int, delay: int) -> None:
            ch = int(self.ffi.cast("intptr_t", user_data))
            if 0 <= code < len(self.names):
                self.reports.append((ch, self.names[code]))

        self._cb = _report
        self.states = [
            self.lib.super_tone_rx_init(self.ffi.NULL, self.desc, _report, self.ffi.cast("void *", ch))
            for ch in range(channels)
        ]

    def process(self, block: np.ndarray) -> None:
        for ch, s in enumerate(self.states):
            x = np.ascontiguousarray(block[ch], dtype=np.int16)
            self.lib.super_tone_rx(s, self.ffi.from_buffer("int16_t[]", x), len(x))

    def run_blocks(self, x: np.ndarray, block: int) -> None:
        """(channels, n) int16 fed in `block`-sample blocks from a compiled C loop (reports via callback)."""
        _run_compiled("tone", self.states, x, block)

    def close(self) -> None:
        for s in self.states:
            self.lib.super_tone_rx_free(s)
        self.states = []
