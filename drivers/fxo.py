"""The FXO card from Python: ports with hook, gain, on-hook monitor, line status and timestamped events.
A thin layer over drivers/fxodrv.h. Ports are numbered from 1 here (the C driver counts from 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers._lib import DriverError, check, ffi, lib
from drivers._ring import DmaRings

SAMPLE_RATE = 8000
EVENT_NAMES = {
    lib.FXEV_RING_START: "ring_start",
    lib.FXEV_RING_STOP: "ring_stop",
    lib.FXEV_BATTERY_LOST: "battery_lost",
    lib.FXEV_BATTERY_RESTORED: "battery_restored",
    lib.FXEV_POLARITY: "polarity",
    lib.FXEV_HOOK: "hook",
    lib.FXEV_RING_REJECT: "ring_reject",
}


@dataclass(frozen=True)
class FxoEvent:
    port: int  # from 1
    kind: str  # ring_start, ring_stop, battery_lost, battery_restored, polarity, hook, ring_reject
    value: int  # polarity: 1 reversed / 0 normal; hook: 1 off / 0 on; ring_reject: burst length in ms
    timestamp: int  # the card's 8 kHz sample counter when it was detected

    @property
    def seconds(self) -> float:
        """Card time of the event in seconds (sample counter / 8000)."""
        return self.timestamp / SAMPLE_RATE


@dataclass(frozen=True)
class PortStatus:
    line_volts: float  # tip-ring DC voltage (negative = normal polarity)
    loop_ma: int
    offhook: bool
    ringing: bool
    battery: bool
    reversed: bool
    ring_raw: bool


class Port:
    def __init__(self, card: FxoCard, number: int) -> None:
        self.card = card
        self.number = number
        self._i = number - 1
        self._d = card._d
        self._st = ffi.new("struct fxo_port_status *")
        self._g = ffi.new("int[2]")

    def _ok(self, rc: int, what: str) -> int:
        return check(rc, f"port {self.number}: {what}")

    def hook(self, offhook: bool) -> None:
        self._ok(lib.fxodrv_hook(self._d, self._i, int(offhook)), "hook")

    def monitor(self, on: bool) -> None:
        """On-hook line monitor: receive audio while on hook (caller ID between rings)."""
        self._ok(lib.fxodrv_monitor(self._d, self._i, int(on)), "monitor")

    def set_gain(self, rx_db: float, tx_db: float) -> None:
        """Hardware gains in dB, -15.0 .. +12.0 in 0.1 dB steps (line->host rx, host->line tx)."""
        self._ok(lib.fxodrv_set_gain(self._d, self._i, round(rx_db * 10), round(tx_db * 10)), "gain")

    def gain(self) -> tuple[float, float]:
        self._ok(lib.fxodrv_get_gain(self._d, self._i, self._g, self._g + 1), "gain")
        return self._g[0] / 10, self._g[1] / 10

    def ring_params(self, confirm_ms: int = 150, timeout_ms: int = 128, threshold_v: int = 40) -> None:
        self._ok(lib.fxodrv_ring_params(self._d, self._i, confirm_ms, timeout_ms, threshold_v), "ring params")

    def status(self) -> PortStatus:
        self._ok(lib.fxodrv_status(self._d, self._i, self._st), "status")
        s = self._st
        return PortStatus(
            line_volts=s.line_dv / 10,
            loop_ma=int(s.loop_ma),
            offhook=bool(s.offhook),
            ringing=bool(s.ringing),
            battery=bool(s.battery),
            reversed=bool(s.reversed),
            ring_raw=bool(s.ring_raw),
        )


class FxoCard(DmaRings):
    """The FXO card behind a regio (`const struct regio *`)."""

    def __init__(self, regio: Any, keepalive: object = None) -> None:
        self._keepalive = keepalive
        err = ffi.new("int *")
        d = lib.fxodrv_open(regio, err)
        if d == ffi.NULL:
            check(err[0] if err[0] < 0 else -19, "fxo card open")
        self._d = ffi.gc(d, lib.fxodrv_close)
        self.nports = check(lib.fxodrv_nports(self._d), "nports")
        self.ports = [Port(self, i + 1) for i in range(self.nports)]
        self._ev = ffi.new("struct fxo_event[64]")

    def port(self, number: int) -> Port:
        if not 1 <= number <= self.nports:
            raise DriverError(22, f"no port {number} (card has {self.nports})")
        return self.ports[number - 1]

    def events(self) -> list[FxoEvent]:
        """Every event since the last call, oldest first."""
        out: list[FxoEvent] = []
        while True:
            n = check(lib.fxodrv_events(self._d, self._ev, 64), "events")
            for i in range(n):
                e = self._ev[i]
                kind = EVENT_NAMES.get(e.type, f"type{e.type}")
                out.append(
                    FxoEvent(port=e.port + 1, kind=kind, value=int(e.value), timestamp=int(e.timestamp))
                )
            if n < 64:
                return out

    def samples(self) -> int:
        """The card's 8 kHz sample counter (event timestamps are on it)."""
        return int(lib.fxodrv_samples(self._d))

    def start_dma(self, ring_samples: int) -> None:
        check(lib.fxodrv_dma_start(self._d, ring_samples), "dma start")
        info = ffi.new("struct fxo_dma_info *")
        check(lib.fxodrv_dma_info(self._d, info), "dma info")
        self._map_rings(info.rx, info.tx, int(info.nports), int(info.ring_samples))  # a row per port

    def stop_dma(self) -> None:
        check(lib.fxodrv_dma_stop(self._d), "dma stop")

    def count(self) -> int:
        return int(lib.fxodrv_dma_count(self._d))
