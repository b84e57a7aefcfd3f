"""The E1 card from Python: spans, their voice timeslots per tick, D-channel, CAS, alarms, counters,
maintenance, PRBS. A thin layer over drivers/e1drv.h; works the same on the board model and on hardware.

Spans are numbered from 1 here (as on the front panel and in the board description); the C driver
counts from 0. CAS channels are 1..30 (channel c = TS c for c <= 15, TS c+1 above).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from drivers._lib import DriverError, check, ffi, lib
from drivers._ring import DmaRings

FRAME = 32
# Timeslots that carry voice: TS1..15 and TS17..31 (TS0 framing, TS16 signalling).
VOICE_TS = np.array([*range(1, 16), *range(17, 32)], dtype=np.intp)

# Status bits (drivers/e1regs.h), raw and debounced.
LOS, AIS, LOF, LMFA, RAI, LCASMFA, DMFA, PRBSSYNC = (
    int(getattr(lib, n))
    for n in (
        "E1ST_LOS",
        "E1ST_AIS",
        "E1ST_LOF",
        "E1ST_LMFA",
        "E1ST_RAI",
        "E1ST_LCASMFA",
        "E1ST_DMFA",
        "E1ST_PRBSSYNC",
    )
)
DB_LOS, DB_AIS, DB_LOF, DB_RAI, DB_RED, DB_BLUE, DB_YELLOW = (
    int(getattr(lib, n))
    for n in ("E1DB_LOS", "E1DB_AIS", "E1DB_LOF", "E1DB_RAI", "E1DB_RED", "E1DB_BLUE", "E1DB_YELLOW")
)
LOOP_LOCAL, LOOP_NETWORK_LINE, LOOP_NETWORK_PAYLOAD = lib.E1MAINT_LLB, lib.E1MAINT_RLB, lib.E1MAINT_PLB
INJECT_FAS, INJECT_CRC, INJECT_BIT = lib.E1INJ_FAS, lib.E1INJ_CRC, lib.E1INJ_BIT
TX_RAI, TX_AIS, TX_DMFA = lib.E1TXA_RAI, lib.E1TXA_AIS, lib.E1TXA_DMFA

_RAW_NAMES = {LOS: "LOS", AIS: "AIS", LOF: "LOF", LMFA: "LMFA", RAI: "RAI", LCASMFA: "LCASMFA", DMFA: "DMFA"}
_DB_NAMES = {DB_RED: "RED", DB_BLUE: "BLUE", DB_YELLOW: "YELLOW"}


@dataclass(frozen=True)
class SpanStatus:
    raw: int  # E1ST_* bits, instantaneous
    debounced: int  # E1DB_* bits, incl. RED/BLUE/YELLOW
    sa_rx: int

    @property
    def alarms(self) -> list[str]:
        """Debounced alarms (RED, BLUE, YELLOW) then raw conditions (LOS, AIS, LOF, ...)."""
        out = [name for bit, name in _DB_NAMES.items() if self.debounced & bit]
        out += [name for bit, name in _RAW_NAMES.items() if self.raw & bit]
        return out

    @property
    def in_sync(self) -> bool:
        return not self.raw & (LOS | AIS | LOF)

    def has(self, bit: int) -> bool:
        return bool(self.raw & bit)


@dataclass(frozen=True)
class SpanCounters:
    fas_errors: int
    crc_errors: int
    febe: int
    code_violations: int
    rx_slips: int
    tx_slips: int
    errored_seconds: int
    prbs_errors: int
    hdlc_rx: int
    hdlc_fcs_errors: int
    hdlc_aborts: int
    hdlc_bad: int
    hdlc_tx: int
    rx_frames: int
    tx_frames: int
    runt_octets: int
    severely_errored_seconds: int

    @classmethod
    def from_c(cls, c: Any) -> SpanCounters:
        return cls(**{f.name: int(getattr(c, f.name)) for f in fields(cls)})


class Span:
    """One E1 span of a card (number from 1)."""

    def __init__(self, card: E1Card, number: int) -> None:
        self.card = card
        self.number = number
        self._i = number - 1
        self._d = card._d
        self._st = ffi.new("struct e1_span_status *")
        self._cnt = ffi.new("struct e1_counters *")
        self._buf = ffi.new("uint8_t[]", 512)
        self._abcd = ffi.new("uint8_t[31]")
        self._changed = ffi.new("uint32_t *")
        self._prbs_sync = ffi.new("int *")
        self._prbs_err = ffi.new("uint32_t *")
        self.loops = 0  # maintenance loopbacks set through this object (the panel blinks green for them)

    def _ok(self, rc: int, what: str) -> int:
        return check(rc, f"span {self.number}: {what}")

    # ---- configuration -------------------------------------------------------------------------
    def configure(
        self,
        cas: bool = False,
        crc4: bool = True,
        hdb3: bool = True,
        line_timing: bool = True,
        auto_rai: bool = True,
        los_window: int = 0,
    ) -> None:
        cfg = ffi.new("struct e1_span_config *")
        cfg.cas, cfg.crc4, cfg.hdb3 = int(cas), int(crc4), int(hdb3)
        cfg.line_timing, cfg.auto_rai, cfg.ts16_clear = int(line_timing), int(auto_rai), 0
        cfg.los_window = los_window
        self._ok(lib.e1drv_span_config(self._d, self._i, cfg), "config")
        self._ok(lib.e1drv_span_enable(self._d, self._i, 1), "enable")

    def disable(self) -> None:
        self._ok(lib.e1drv_span_enable(self._d, self._i, 0), "disable")

    # ---- state ---------------------------------------------------------------------------------
    def status(self) -> SpanStatus:
        self._ok(lib.e1drv_span_status(self._d, self._i, self._st), "status")
        return SpanStatus(raw=self._st.raw, debounced=self._st.debounced, sa_rx=self._st.sa_rx)

    def counters(self) -> SpanCounters:
        self._ok(lib.e1drv_span_counters(self._d, self._i, self._cnt), "counters")
        return SpanCounters.from_c(self._cnt)

    # ---- maintenance ---------------------------------------------------------------------------
    def loopback(self, loops: int) -> None:
        """LOOP_LOCAL | LOOP_NETWORK_LINE | LOOP_NETWORK_PAYLOAD bits; 0 = none."""
        self._ok(lib.e1drv_loopback(self._d, self._i, loops), "loopback")
        self.loops = loops

    def inject(self, what: int) -> None:
        """One single error: INJECT_FAS | INJECT_CRC | INJECT_BIT."""
        self._ok(lib.e1drv_inject(self._d, self._i, what), "inject")

    def send_alarms(self, alarms: int) -> None:
        """TX_RAI | TX_AIS | TX_DMFA bits sent continuously; 0 = none."""
        self._ok(lib.e1drv_tx_alarms(self._d, self._i, alarms), "tx alarms")

    def prbs(self, tx: bool, rx: bool, tsmask: int = 0) -> None:
        """PRBS 2^15-1 (O.151) generator and/or checker on the timeslots of tsmask (0 = TS1..31)."""
        self._ok(lib.e1drv_prbs(self._d, self._i, int(tx), int(rx), tsmask), "prbs")

    def prbs_result(self) -> tuple[bool, int]:
        """(checker in sync, bit errors counted since the checker was started)."""
        self._ok(lib.e1drv_prbs_result(self._d, self._i, self._prbs_sync, self._prbs_err), "prbs result")
        return bool(self._prbs_sync[0]), int(self._prbs_err[0])

    # ---- D-channel -----------------------------------------------------------------------------
    def dchan_send(self, frame: bytes) -> bool:
        """Queue one HDLC frame (FCS added by the card); False if the TX FIFO is full."""
        rc = lib.e1drv_dchan_send(self._d, self._i, frame, len(frame))
        if rc == -11:  # EAGAIN
            return False
        self._ok(rc, "dchan send")
        return True

    def dchan_recv(self) -> list[bytes]:
        """Every good frame received since the last call (FCS checked and stripped), oldest first."""
        out: list[bytes] = []
        while True:
            rc = lib.e1drv_dchan_recv(self._d, self._i, self._buf, len(self._buf))
            if rc == 0:
                return out
            self._ok(rc, "dchan recv")
            out.append(ffi.buffer(self._buf, rc)[:])

    def dchan_tx_free(self) -> int:
        return self._ok(lib.e1drv_dchan_tx_free(self._d, self._i), "dchan tx free")

    # ---- CAS -----------------------------------------------------------------------------------
    def cas_set(self, chan: int, abcd: int) -> None:
        self._ok(lib.e1drv_cas_set(self._d, self._i, chan, abcd), f"cas set {chan}")

    def cas_set_all(self, abcd: np.ndarray) -> None:
        """abcd: 30 values for channels 1..30."""
        a = np.zeros(31, dtype=np.uint8)
        a[1:] = np.asarray(abcd, dtype=np.uint8)
        self._ok(lib.e1drv_cas_set_all(self._d, self._i, ffi.from_buffer(a)), "cas set all")

    def cas_get_all(self) -> tuple[np.ndarray, int]:
        """(ABCD of channels 1..30 as uint8[30], bitmap of channels changed since the last call (bit c))."""
        self._ok(lib.e1drv_cas_get_all(self._d, self._i, self._abcd, self._changed), "cas get all")
        return np.frombuffer(ffi.buffer(self._abcd), dtype=np.uint8)[1:].copy(), int(self._changed[0])


class E1Card(DmaRings):
    """The E1 card behind a regio (a `const struct regio *` from the board model or the spidev backend)."""

    def __init__(self, regio: Any, keepalive: object = None) -> None:
        self._keepalive = keepalive  # whatever owns the regio must outlive the driver
        err = ffi.new("int *")
        d = lib.e1drv_open(regio, err)
        if d == ffi.NULL:
            check(err[0] if err[0] < 0 else -19, "e1 card open")
        self._d = ffi.gc(d, lib.e1drv_close)
        self.nspans = check(lib.e1drv_nspans(self._d), "nspans")
        self.spans = [Span(self, i + 1) for i in range(self.nspans)]

    def span(self, number: int) -> Span:
        if not 1 <= number <= self.nspans:
            raise DriverError(22, f"no span {number} (card has {self.nspans})")
        return self.spans[number - 1]

    def start_dma(self, ring_frames: int) -> None:
        """Start the TDM DMA with a ring of ring_frames frames (a multiple of the tick, <= 4096)."""
        check(lib.e1drv_dma_start(self._d, ring_frames), "dma start")
        info = ffi.new("struct e1_dma_info *")
        check(lib.e1drv_dma_info(self._d, info), "dma info")
        # rows: span s, timeslot t is row s*32+t (all 32 timeslots of every span)
        self._map_rings(info.rx, info.tx, int(info.nspans) * FRAME, int(info.ring_frames))

    def stop_dma(self) -> None:
        check(lib.e1drv_dma_stop(self._d), "dma stop")

    def count(self) -> int:
        """Frames the DMA has moved since it started."""
        return int(lib.e1drv_dma_count(self._d))
