"""The SIP side of the box assembled: core + media hub + sockets + call-control glue.

svc = SipService(directory, RealClock(), host="127.0.0.1", port=5060, control=call_manager)
await svc.start()
svc.port        # SIP port (UDP and TCP), e.g. when 0 asked for an ephemeral one
svc.line        # SipLine: the Originator for extensions; SipEndpoint legs
svc.media_port  # SipMediaPort: the engine reads/writes the SIP rows through it
svc.start_media_pump(fn)   # only when no engine drives the rows: fn(rx (legs,80) int16) -> tx
await svc.stop()

The appliance's extension side (`callbox run`): `BoxSip` runs the service on an asyncio loop that the
control thread steps (one non-blocking pass per control-loop step), so SIP, call control and the clock's
timers share one thread; the engine's tick thread only reads and writes the SIP rows (`SipMediaPort`).

    sip = BoxSip(load_directory(config_dir), clock, host="0.0.0.0", port=5060, max_legs=64)
    app = Appliance(board, data, config_dir, clock=clock, realtime=True,
                    extension_port=sip.media_port, make_extension_lines=sip.extension_lines)
    sip.start(); app.pollers.append(sip.poll); app.start(); ...; app.stop(); sip.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        self.media_port = SipMediaPort(self.hub, clock, self._send_media, ahead=self._ahead)
        self._pump: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        return self.core.config.port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.media.attach(self._loop)
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
        # the service's own loop, also when call control acts between two of its passes (BoxSip)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon(fn)
            return
        try:
            asyncio.get_running_loop().call_soon(fn)
        except RuntimeError:  # no loop running (not started yet): the next flush delivers it
            pass

    def _send_media(self, packets: list[tuple[int, bytes]]) -> None:
        """The engine's packets go out from the service's loop (its thread), so the tick thread pays for
        packetising only, not for the sendto system calls; without a loop they go at once."""
        if not packets:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.media.send, packets)
                return
            except RuntimeError:  # closed meanwhile
                pass
        self.media.send(packets)

    def _ahead(self, fn: Callable[[], None]) -> bool:
        """Run `fn` soon on the service's loop (from the tick thread): the media port's work ahead."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:  # closed meanwhile
            return False
        return True

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


DEFAULT_EXTENSIONS = Path(__file__).with_name("default") / "extensions.yaml"


def extensions_path(config_dir: str | Path | None) -> Path:
    """`CONFIG/extensions.yaml` when the configuration has one, else the default (11 extensions, 1000-1010,
    password pw<number>: firmware/sip/default/extensions.yaml)."""
    if config_dir is not None and (Path(config_dir) / "extensions.yaml").exists():
        return Path(config_dir) / "extensions.yaml"
    return DEFAULT_EXTENSIONS


class BoxSip:
    """The appliance's SIP extensions, stepped by the control thread; see the module docstring."""

    def __init__(
        self,
        directory: Directory,
        clock: Clock,
        host: str = "0.0.0.0",
        port: int = 5060,
        advertise: str | None = None,
        max_legs: int = 64,
        rtp_ports: tuple[int, int] | None = None,
        config: CoreConfig | None = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.service = SipService(
            directory, clock, host, port, advertise, max_legs, rtp_ports, control=None, config=config
        )
        self.started = False
        self.mwi: Any = None  # firmware.sip.mwi.MwiNotifier once call control has voicemail boxes

    @property
    def media_port(self) -> SipMediaPort:
        return self.service.media_port

    @property
    def line(self) -> SipLine:
        return self.service.line

    @property
    def port(self) -> int:
        return self.service.port

    def extension_lines(self, control: Any, clock: Clock, channel_base: int) -> SipLine:
        """The Appliance's `make_extension_lines`: SIP leg k is engine row channel_base + k; events go to
        call control (feature codes to its `feature`, the ACD's log-in and pause)."""
        line = self.service.line
        line.control = control
        line.channel_base = channel_base
        line.on_feature = getattr(control, "feature", None)
        # holds (re-INVITE) and transfers (REFER) go to call control; the ACD counts them (AHT, transfers)
        line.on_hold = getattr(control, "phone_hold", None)
        line.on_transfer = getattr(control, "transfer", None)
        voicemail = getattr(getattr(control, "acd", None), "voicemail", None)
        if voicemail is not None:  # message-waiting lamps: RFC 3842 NOTIFY on every mailbox change
            from .mwi import MwiNotifier

            self.mwi = MwiNotifier(self.service.core, clock.now, self.service.server.flush)
            voicemail.listeners.append(self.mwi.update)
            line.on_registration = self.mwi.on_registration(line.on_registration)
        return line

    def start(self) -> None:
        """Bind the SIP (UDP + TCP) sockets; raises OSError when the address is taken."""
        self.loop.run_until_complete(self.service.start())
        self.started = True

    def poll(self) -> None:
        """One non-blocking pass of the loop: datagrams, TCP streams, SIP timers, deferred sends."""
        if not self.started:
            return
        self.loop.stop()
        self.loop.run_forever()  # stop() first: one pass with a zero-timeout select, then return

    def status(self) -> dict[str, Any]:
        now = self.service.clock.now()
        registrar = self.service.core.registrar
        directory = self.service.core.directory
        registered = sorted(n for n in directory.extensions if registrar.contacts(n, now))
        return {"port": self.port, "registered": registered, "legs": len(self.service.hub.legs)}

    def close(self) -> None:
        if self.started:
            for ep in list(self.service.line.endpoints.values()):
                ep.hangup()
            self.poll()
            self.loop.run_until_complete(self.service.stop())
            self.started = False
        self.loop.close()
