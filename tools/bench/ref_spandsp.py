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
int super_tone_rx_add_element(super_tone_rx_descriptor_t *desc, int f1, int f2, int min, int max);
super_tone_rx_state_t *super_tone_rx_init(super_tone_rx_state_t *s, super_tone_rx_descriptor_t *desc,
                                          tone_report_func_t callback, void *user_data);
int super_tone_rx(super_tone_rx_state_t *super, const int16_t amp[], int samples);
int super_tone_rx_free(super_tone_rx_state_t *s);
"""

_ffi: Any = None
_lib: Any = None


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

    def close(self) -> None:
        for s in self.states:
            self.lib.dtmf_rx_free(s)
        self.states = []


class SpandspToneRx:
    """One spandsp super_tone_rx per channel, loaded with a plan's cadences (ms min/max per element)."""

    def __init__(self, tones: dict[str, list[tuple[int, int, int, int]]], channels: int = 1) -> None:
        """`tones`: name -> elements (f1, f2, min_ms, max_ms); f1 = 0 is silence, max 0 = unbounded."""
        self.ffi, self.lib = load()
        self.names = list(tones)
        self.desc = self.lib.super_tone_rx_make_descriptor(self.ffi.NULL)
        for name in self.names:
            self.lib.super_tone_rx_add_tone(self.desc)
            for f1, f2, lo, hi in tones[name]:
                self.lib.super_tone_rx_add_element(self.desc, f1, f2, lo, hi)
        self.reports: list[tuple[int, str]] = []

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

    def close(self) -> None:
        for s in self.states:
            self.lib.super_tone_rx_free(s)
        self.states = []
