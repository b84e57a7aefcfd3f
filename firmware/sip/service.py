"""The SIP side of the box assembled: core + media hub + sockets + call-control glue.

svc = SipService(directory, RealClock(), host="127.0.0.1", port=5060, control=call_manager)
await svc.start()
svc.port        # SIP port (UDP and TCP), e.g. when 0 asked for an ephemeral one
svc.line        # SipLine: the Originator for extensions; SipEndpoint legs
svc.media_port  # SipMediaPort: the engine reads/writes the SIP rows through it
svc.start_media_pump(fn)   # only when no engine drives the rows: fn(rx (legs,80) int16) -> tx
await svc.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import numpy as np

from board.clock import Clock
from firmware.calls.endpoint import CallControl

from .core import CoreConfig, SipCore
from .endpoint import SipLine, SipMediaPort
from .extensions import Directory
from .rtp import TICK, MediaHub
from .transport import MediaSockets, SipServer

log = logging.getLogger(__name__)


class SipService:
    def __init__(
        self,
        directory: Directory,
        clock: Clock,
        host: str = "127.0.0.1",
        port: int = 5060,
        advertise: str | None = None,
        max_legs: int = 256,
        rtp_ports: tuple[int, int] | None = None,
        control: CallControl | None = None,
        channel_base: int = 0,
        config: CoreConfig | None = None,
        rate: float = 200.0,
        burst: float = 400.0,
    ) -> None:
        self.clock = clock
        self.hub = MediaHub(max_legs)
        self.media = MediaSockets(self.hub, clock, host, rtp_ports, on_dtmf=self._on_dtmf)
        cfg = config or CoreConfig()
        cfg.host = advertise or (host if host not in ("0.0.0.0", "") else "127.0.0.1")
        cfg.port = port
        self.core = SipCore(directory, self.hub, cfg, self.media.open, self.media.close, clock.now())
        self.server = SipServer(self.core, clock, host, port, rate=rate, burst=burst)
        self.line = SipLine(
            self.core, control, clock, channel_base, flush=self.server.flush, defer=self._soon
        )
        self.server.on_event = self.line.handle
        self.media_port = SipMediaPort(self.hub, clock, self.media.send)
        self._pump: asyncio.Task | None = None

    @property
    def port(self) -> int:
        return self.core.config.port

    async def start(self) -> None:
        self.media.attach(asyncio.get_running_loop())
        await self.server.start()
        assert self.server.udp_port is not None
        self.core.config.port = self.server.udp_port

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.server.stop()
        self.media.close_all()

    def _soon(self, fn: Callable[[], None]) -> None:
        try:
            asyncio.get_running_loop().call_soon(fn)
        except RuntimeError:  # no loop running (not started yet): the next flush delivers it
            pass

    def _on_dtmf(self, leg: int, events: list) -> None:
        self.core.media_events(leg, events)
        self.server.flush()

    def start_media_pump(self, fn: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """Run the legs' media every 10 ms on the asyncio loop (when no engine does): `fn` gets the
        received tick (legs, 80) int16 and returns what to send (default: silence)."""

        async def pump() -> None:
            next_at = self.clock.now()
            silence = np.zeros((self.hub.max_legs, TICK), np.int16)
            while True:
                next_at += TICK / 8000
                delay = next_at - self.clock.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.2:
                    next_at = self.clock.now()  # fell far behind (loaded machine): do not burst
                rx = self.hub.pull(self.clock.now())
                tx = fn(rx) if fn is not None else silence
                self.media.send(self.hub.push_tx(tx, self.clock.now()))

        self._pump = asyncio.ensure_future(pump())
