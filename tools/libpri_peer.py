"""Debian's libpri (a real Q.921/Q.931 implementation no one here wrote) as a sans-I/O peer, through cffi.

libpri runs without DAHDI: `pri_new_cb()` takes read/write callbacks, and every frame it writes carries 2
dummy FCS octets (it expects 2 on every frame it reads). `LibpriPeer` hands frames in with
`receive(frame)` and collects what libpri writes in `frames_to_send()`, both without FCS, so it plugs into
the same loop as our `PriSpan`. libpri's timers are absolute `gettimeofday` times: `run_timers()` runs the
due ones; `fire_next_timer()` runs the next one at once, so a test never waits for libpri's clock.

The cffi extension (API mode, against /usr/include/libpri.h) is compiled once into build/libpri_peer/.
It is loaded with RTLD_DEEPBIND (see C_SOURCE), which AddressSanitizer refuses: do not import this module
in a process running under ASan's LD_PRELOAD.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILD_DIR = Path(__file__).resolve().parent.parent / "build" / "libpri_peer"
MODULE = "_callbox_libpri"

CDEF = """
struct pri;
typedef struct q931_call q931_call;
struct pri_sr;
struct timeval { long tv_sec; long tv_usec; ...; };

typedef struct pri_event_generic { int e; ...; } pri_event_generic;
typedef struct pri_event_restart { int e; int channel; ...; } pri_event_restart;
typedef struct pri_event_ring {
    int e; int channel; int callingpres; int callingplan; char callingnum[256]; char callingname[256];
    int calledplan; char callednum[256]; int flexible; int cref; int ctype; int layer1; int complete;
    q931_call *call; ...;
} pri_event_ring;
typedef struct pri_event_hangup {
    int e; int channel; int cause; int cref; q931_call *call; ...;
} pri_event_hangup;
typedef struct pri_event_ringing {
    int e; int channel; int cref; int progress; int progressmask; q931_call *call; ...;
} pri_event_ringing;
typedef struct pri_event_answer {
    int e; int channel; int cref; int progress; int progressmask; q931_call *call; ...;
} pri_event_answer;
typedef struct pri_event_restart_ack { int e; int channel; ...; } pri_event_restart_ack;
typedef struct pri_event_proceeding { int e; int channel; int cref; int progress; int progressmask; int cause;
    q931_call *call; ...; } pri_event_proceeding;
typedef struct pri_event_setup_ack { int e; int channel; q931_call *call; ...; } pri_event_setup_ack;
typedef struct pri_event_keypad_digit { int e; int channel; q931_call *call; char digits[64]; ...; }
    pri_event_keypad_digit;
typedef union {
    int e;
    pri_event_generic gen;
    pri_event_restart restart;
    pri_event_ring ring;
    pri_event_hangup hangup;
    pri_event_ringing ringing;
    pri_event_answer answer;
    pri_event_restart_ack restartack;
    pri_event_proceeding proceeding;
    pri_event_setup_ack setup_ack;
    pri_event_keypad_digit digit;
    ...;
} pri_event;

typedef int (*pri_io_cb)(struct pri *pri, void *buf, int buflen);
extern "Python" int _py_read(struct pri *pri, void *buf, int buflen);
extern "Python" int _py_write(struct pri *pri, void *buf, int buflen);
extern "Python" void _py_message(struct pri *pri, char *text);

struct pri *pri_new_cb(int fd, int nodetype, int switchtype, pri_io_cb io_read, pri_io_cb io_write,
                       void *userdata);
void *pri_get_userdata(struct pri *pri);
void pri_set_debug(struct pri *pri, int debug);
void pri_set_message(void (*__pri_error)(struct pri *pri, char *));
void pri_set_error(void (*__pri_error)(struct pri *pri, char *));
pri_event *pri_check_event(struct pri *pri);
struct timeval *pri_schedule_next(struct pri *pri);
pri_event *pri_schedule_run(struct pri *pri);
extern long long callbox_virtual_us;
char *pri_event2str(int id);
int pri_set_timer(struct pri *pri, int timer, int value);
int pri_get_timer(struct pri *pri, int timer);
int pri_timer2idx(const char *timer_name);
void pri_set_overlapdial(struct pri *pri, int state);
void pri_set_inbanddisconnect(struct pri *pri, unsigned int enable);
q931_call *pri_new_call(struct pri *pri);
struct pri_sr *pri_sr_new(void);
void pri_sr_free(struct pri_sr *sr);
int pri_sr_set_channel(struct pri_sr *sr, int channel, int exclusive, int nonisdn);
int pri_sr_set_bearer(struct pri_sr *sr, int transmode, int userl1);
int pri_sr_set_called(struct pri_sr *sr, char *called, int calledplan, int complete);
int pri_sr_set_caller(struct pri_sr *sr, char *caller, char *callername, int callerplan, int callerpres);
int pri_setup(struct pri *pri, q931_call *call, struct pri_sr *req);
int pri_proceeding(struct pri *pri, q931_call *c, int channel, int info);
int pri_need_more_info(struct pri *pri, q931_call *call, int channel, int nonisdn);
int pri_acknowledge(struct pri *pri, q931_call *call, int channel, int info);
int pri_answer(struct pri *pri, q931_call *call, int channel, int nonisdn);
int pri_information(struct pri *pri, q931_call *call, char digit);
int pri_hangup(struct pri *pri, q931_call *call, int cause);
int pri_restart(struct pri *pri);
int pri_reset(struct pri *pri, int channel);
"""

# libpri reads time only through gettimeofday. This extension defines its own, and is loaded with
# RTLD_DEEPBIND so that libpri (loaded as its dependency) binds to it rather than to libc's: while
# callbox_virtual_us is non-zero libpri lives in virtual time, so a test fires libpri's timers at will.
C_SOURCE = r"""
#include <sys/time.h>
#include <time.h>
#include <libpri.h>
long long callbox_virtual_us = 0;
int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    if (callbox_virtual_us) {
        tv->tv_sec = callbox_virtual_us / 1000000;
        tv->tv_usec = callbox_virtual_us % 1000000;
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}
"""

VIRTUAL_EPOCH_US = 1_000_000_000 * 1_000_000  # virtual t = 0 is this far from 1970 (never 0)
NETWORK, CPE = 1, 2
SWITCH_EUROISDN_E1 = 5
TRANS_CAP_SPEECH = 0x00
LAYER_1_ALAW = 0x23

EVENT_NAMES = {
    1: "DCHAN_UP",
    2: "DCHAN_DOWN",
    3: "RESTART",
    4: "CONFIG_ERR",
    5: "RING",
    6: "HANGUP",
    7: "RINGING",
    8: "ANSWER",
    9: "HANGUP_ACK",
    10: "RESTART_ACK",
    11: "FACILITY",
    12: "INFO_RECEIVED",
    13: "PROCEEDING",
    14: "SETUP_ACK",
    15: "HANGUP_REQ",
    16: "NOTIFY",
    17: "PROGRESS",
    18: "KEYPAD_DIGIT",
    27: "CONNECT_ACK",
}

_lock = threading.Lock()
_lib: Any = None
_ffi: Any = None


def load() -> tuple[Any, Any]:
    """Build (once) and import the cffi extension; returns (ffi, lib)."""
    global _lib, _ffi
    with _lock:
        if _lib is not None:
            return _ffi, _lib
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        with open(BUILD_DIR / ".lock", "w") as lockfile:  # one builder at a time across processes
            fcntl.flock(lockfile, fcntl.LOCK_EX)
            built = sorted(BUILD_DIR.glob(MODULE + "*.so"))
            stamp = BUILD_DIR / "source.txt"
            if not built or not stamp.exists() or stamp.read_text() != CDEF + C_SOURCE:
                import cffi

                builder = cffi.FFI()
                builder.cdef(CDEF)
                builder.set_source(MODULE, C_SOURCE, libraries=["pri"])
                builder.compile(tmpdir=str(BUILD_DIR), verbose=False)
                stamp.write_text(CDEF + C_SOURCE)
                built = sorted(BUILD_DIR.glob(MODULE + "*.so"))
        spec = importlib.util.spec_from_file_location(MODULE, built[-1])
        assert spec is not None and spec.loader is not None
        flags = sys.getdlopenflags()
        sys.setdlopenflags(os.RTLD_NOW | os.RTLD_DEEPBIND)
        try:
            mod = importlib.util.module_from_spec(spec)
        finally:
            sys.setdlopenflags(flags)
        sys.modules[MODULE] = mod
        spec.loader.exec_module(mod)
        _ffi, _lib = mod.ffi, mod.lib
        _install_callbacks(_ffi)
        _lib.pri_set_message(_lib._py_message)
        _lib.pri_set_error(_lib._py_message)
        return _ffi, _lib


def _install_callbacks(ffi: Any) -> None:
    @ffi.def_extern()
    def _py_read(pri: Any, buf: Any, buflen: int) -> int:
        peer: LibpriPeer = ffi.from_handle(_lib.pri_get_userdata(pri))
        if not peer._rx:
            return 0
        frame = peer._rx.pop(0) + b"\0\0"
        n = min(len(frame), buflen)
        ffi.memmove(buf, frame[:n], n)
        return n

    @ffi.def_extern()
    def _py_write(pri: Any, buf: Any, buflen: int) -> int:
        peer: LibpriPeer = ffi.from_handle(_lib.pri_get_userdata(pri))
        peer._tx.append(bytes(ffi.buffer(buf, buflen))[:-2])
        return buflen

    @ffi.def_extern()
    def _py_message(pri: Any, text: Any) -> None:
        if pri == ffi.NULL:
            return
        peer: LibpriPeer = ffi.from_handle(_lib.pri_get_userdata(pri))
        peer.log.append(ffi.string(text).decode("latin-1", "replace"))


@dataclass
class PeerEvent:
    kind: str  # EVENT_NAMES value
    channel: int = -1
    cause: int = 0
    call: Any = None
    called: str = ""
    calling: str = ""
    calling_pres: int = 0
    complete: bool = False
    digits: str = ""
    progress_inband: bool = False


class LibpriPeer:
    """One libpri D-channel end. `network=True` plays the network side (PRI_NETWORK)."""

    def __init__(
        self, network: bool, *, debug: int = 0, overlap: bool = False, timers: dict[str, int] | None = None
    ) -> None:
        self.ffi, self.lib = load()
        self._rx: list[bytes] = []
        self._tx: list[bytes] = []
        self.log: list[str] = []
        self._handle = self.ffi.new_handle(self)
        self.pri = self.lib.pri_new_cb(
            -1,
            NETWORK if network else CPE,
            SWITCH_EUROISDN_E1,
            self.lib._py_read,
            self.lib._py_write,
            self._handle,
        )
        if self.pri == self.ffi.NULL:
            raise RuntimeError("pri_new_cb failed")
        self.lib.pri_set_debug(self.pri, debug)
        if overlap:
            self.lib.pri_set_overlapdial(self.pri, 1)
        for name, ms in (timers or {}).items():
            self.set_timer(name, ms)
        self.events: list[PeerEvent] = []
        self.busy_time = 0.0  # seconds spent inside libpri (benchmarks print it)

    # ---- frames and time ------------------------------------------------------------------------------
    # `now` is seconds on the caller's clock (a VirtualClock in tests); libpri sees the same time.
    def _at(self, now: float | None) -> None:
        self.lib.callbox_virtual_us = 0 if now is None else VIRTUAL_EPOCH_US + int(round(now * 1e6))

    def receive(self, frame: bytes, now: float | None = None) -> None:
        self._at(now)
        t0 = time.thread_time()
        self._rx.append(bytes(frame))
        e = self.lib.pri_check_event(self.pri)
        self.busy_time += time.thread_time() - t0
        self._take(e)

    def frames_to_send(self) -> list[bytes]:
        out, self._tx = self._tx, []
        return out

    def next_deadline(self) -> float | None:
        """libpri's next timer on the caller's clock (virtual time), or None."""
        tv = self.lib.pri_schedule_next(self.pri)
        if tv == self.ffi.NULL:
            return None
        return (tv.tv_sec * 1_000_000 + tv.tv_usec - VIRTUAL_EPOCH_US) / 1e6

    def handle_timers(self, now: float | None = None) -> None:
        """Run libpri's timers due at `now` (one event at most is reported per run, so loop)."""
        self._at(now)
        for _ in range(64):
            t0 = time.thread_time()
            e = self.lib.pri_schedule_run(self.pri)
            self.busy_time += time.thread_time() - t0
            if e == self.ffi.NULL:
                nxt = self.next_deadline()
                if nxt is None or now is None or nxt > now:
                    return
                continue
            self._take(e)

    def command(self, now: float | None) -> None:
        """Set libpri's time before a call command (pri_setup, pri_answer ... start timers)."""
        self._at(now)

    def set_timer(self, name: str, ms: int) -> None:
        idx = self.lib.pri_timer2idx(name.encode())
        if idx < 0 or self.lib.pri_set_timer(self.pri, idx, ms) < 0:
            raise ValueError(f"libpri has no timer {name}")

    def get_timer(self, name: str) -> int:
        return self.lib.pri_get_timer(self.pri, self.lib.pri_timer2idx(name.encode()))

    def _take(self, e: Any) -> None:
        if e == self.ffi.NULL:
            return
        kind = EVENT_NAMES.get(e.e, f"EVENT_{e.e}")
        ev = PeerEvent(kind)
        s = self.ffi.string
        if kind in ("RING", "INFO_RECEIVED"):
            r = e.ring
            ev = PeerEvent(
                kind,
                r.channel & 0xFF if r.channel >= 0 else -1,
                0,
                r.call,
                s(r.callednum).decode("latin-1"),
                s(r.callingnum).decode("latin-1"),
                r.callingpres,
                bool(r.complete),
            )
        elif kind in ("HANGUP", "HANGUP_REQ", "HANGUP_ACK"):
            h = e.hangup
            ev = PeerEvent(kind, h.channel & 0xFF if h.channel >= 0 else -1, h.cause, h.call)
        elif kind == "RINGING":
            ev = PeerEvent(
                kind,
                e.ringing.channel & 0xFF,
                0,
                e.ringing.call,
                progress_inband=bool(e.ringing.progressmask & 8),
            )
        elif kind == "ANSWER":
            ev = PeerEvent(kind, e.answer.channel & 0xFF, 0, e.answer.call)
        elif kind in ("PROCEEDING", "PROGRESS"):
            ev = PeerEvent(kind, e.proceeding.channel & 0xFF, e.proceeding.cause, e.proceeding.call)
        elif kind == "SETUP_ACK":
            ev = PeerEvent(kind, e.setup_ack.channel & 0xFF, 0, e.setup_ack.call)
        elif kind in ("RESTART", "RESTART_ACK"):
            ch = e.restart.channel
            ev = PeerEvent(kind, ch & 0xFF if ch >= 0 else -1)
        elif kind == "KEYPAD_DIGIT":
            ev = PeerEvent(kind, e.digit.channel & 0xFF, 0, e.digit.call, digits=s(e.digit.digits).decode())
        elif kind == "CONNECT_ACK":
            ev = PeerEvent(kind, -1)
        self.events.append(ev)

    # ---- calls ----------------------------------------------------------------------------------------
    def place_call(
        self,
        called: str,
        channel: int,
        *,
        exclusive: bool = True,
        calling: str = "",
        calling_pres: int = 0x03,
        complete: bool = True,
    ) -> Any:
        call = self.lib.pri_new_call(self.pri)
        sr = self.lib.pri_sr_new()
        try:
            self.lib.pri_sr_set_channel(sr, channel, int(exclusive), 0)
            self.lib.pri_sr_set_bearer(sr, TRANS_CAP_SPEECH, LAYER_1_ALAW)
            self.lib.pri_sr_set_called(sr, self.ffi.new("char[]", called.encode()), 0x21, int(complete))
            if calling:
                self.lib.pri_sr_set_caller(
                    sr, self.ffi.new("char[]", calling.encode()), self.ffi.NULL, 0x21, calling_pres
                )
            rc = self.lib.pri_setup(self.pri, call, sr)
        finally:
            self.lib.pri_sr_free(sr)
        if rc:
            raise RuntimeError(f"pri_setup failed: {rc}")
        return call

    def proceeding(self, call: Any, channel: int) -> None:
        self.lib.pri_proceeding(self.pri, call, channel, 0)

    def need_more_info(self, call: Any, channel: int) -> None:
        self.lib.pri_need_more_info(self.pri, call, channel, 0)

    def alert(self, call: Any, channel: int, inband: bool = False) -> None:
        self.lib.pri_acknowledge(self.pri, call, channel, int(inband))

    def answer(self, call: Any, channel: int) -> None:
        self.lib.pri_answer(self.pri, call, channel, 0)

    def information(self, call: Any, digits: str) -> None:
        for d in digits:
            self.lib.pri_information(self.pri, call, d.encode())

    def hangup(self, call: Any, cause: int = 16) -> None:
        self.lib.pri_hangup(self.pri, call, cause)

    def restart_interface(self) -> None:
        self.lib.pri_restart(self.pri)

    def reset_channel(self, channel: int) -> None:
        self.lib.pri_reset(self.pri, channel)

    def take(self, *kinds: str) -> list[PeerEvent]:
        """Remove and return the queued events of these kinds (all events if none given)."""
        out = [e for e in self.events if not kinds or e.kind in kinds]
        self.events = [e for e in self.events if kinds and e.kind not in kinds]
        return out
