"""SIP and RTP on the network: asyncio UDP and TCP around the sans-I/O SipCore and MediaHub.

    server = SipServer(core, clock, host="0.0.0.0", port=5060)
    await server.start()          # binds UDP and TCP; server.udp_port / server.tcp_port say where
    server.on_event = line.handle # call-control events (firmware.sip.endpoint.SipLine)
    ...
    await server.stop()

`MediaSockets` binds a UDP socket pair per media leg, RTP on an even port and RTCP on the next (ephemeral
unless `rtp_ports` gives a range), feeds what arrives into the MediaHub and sends what the hub produces. It
latches on the address media actually comes from (symmetric RTP), so phones behind NAT get their audio.

Floods: each source address has a token bucket (`rate` messages/s, `burst`); what is over it is dropped
silently with a log line at most every few seconds per address, so one noisy phone cannot starve the
others. TCP connections are capped in number, each stream's framing errors close that connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from board.clock import Clock

from .core import Event, SipCore
from .message import RemoteProtocolError, StreamFramer
from .rtp import MediaHub, is_rtcp
from .transaction import Peer, Transmit

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    dropped: int = 0
    logged_at: float = -1e9


class RateLimiter:
    def __init__(self, rate: float = 200.0, burst: float = 400.0, max_sources: int = 65536) -> None:
        self.rate, self.burst, self.max_sources = rate, burst, max_sources
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, source: str, now: float) -> bool:
        b = self._buckets.get(source)
        if b is None:
            if len(self._buckets) >= self.max_sources:
                self._buckets.clear()
            b = self._buckets[source] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
        b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return True
        b.dropped += 1
        if now - b.logged_at > 5.0:
            log.warning("flood from %s: dropping (%d dropped so far)", source, b.dropped)
            b.logged_at = now
        return False


def _grow_receive_buffer(sock: socket.socket | None, size: int) -> None:
    """A deep UDP receive queue rides out bursts while the loop is busy (or descheduled on a loaded
    machine) instead of dropping requests that then wait for a 500 ms retransmission."""
    if sock is None:
        return
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, size)
            return
        except OSError:
            continue


class SipServer:
    def __init__(
        self,
        core: SipCore,
        clock: Clock,
        host: str = "0.0.0.0",
        port: int = 5060,
        tcp: bool = True,
        rate: float = 200.0,
        burst: float = 400.0,
        max_tcp: int = 256,
        timer_period: float = 0.02,
        receive_buffer: int = 4 << 20,
    ) -> None:
        self.receive_buffer = receive_buffer
        self.core = core
        self.clock = clock
        self.host = host
        self.port = port
        self.tcp_enabled = tcp
        self.limiter = RateLimiter(rate, burst)
        self.max_tcp = max_tcp
        self.timer_period = timer_period
        self.on_event: Callable[[Event], None] = lambda ev: None
        self.udp_port: int | None = None
        self.tcp_port: int | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.base_events.Server | None = None
        self._tcp_writers: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._timer_task: asyncio.Task | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        server = self

        class _Udp(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple) -> None:
                server._on_datagram(data, addr)

            def error_received(self, exc: Exception) -> None:
                log.debug("UDP error: %s", exc)

        transport, _ = await loop.create_datagram_endpoint(_Udp, local_addr=(self.host, self.port))
        self._udp = transport
        self.udp_port = transport.get_extra_info("sockname")[1]
        _grow_receive_buffer(transport.get_extra_info("socket"), self.receive_buffer)
        if self.tcp_enabled:
            tcp_port = self.udp_port if self.port == 0 else self.port
            try:
                self._tcp_server = await asyncio.start_server(self._on_tcp, self.host, tcp_port)
            except OSError:
                self._tcp_server = await asyncio.start_server(self._on_tcp, self.host, 0)
            self.tcp_port = self._tcp_server.sockets[0].getsockname()[1]
        self._timer_task = asyncio.ensure_future(self._timers())
        log.info("SIP listening on %s udp/%s tcp/%s", self.host, self.udp_port, self.tcp_port)

    async def stop(self) -> None:
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        if self._udp is not None:
            self._udp.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
            for w in list(self._tcp_writers.values()):
                w.close()
            await self._tcp_server.wait_closed()

    async def _timers(self) -> None:
        while True:
            await asyncio.sleep(self.timer_period)
            try:
                self.core.handle_timers(self.clock.now())
            except Exception:  # noqa: BLE001 - keep the timer loop alive whatever happens
                log.exception("SIP timer handling failed")
            self.flush()

    def _on_datagram(self, data: bytes, addr: tuple) -> None:
        now = self.clock.now()
        if not self.limiter.allow(addr[0], now):
            return
        if len(data) <= 4 and data.strip(b"\r\n\x00") == b"":
            return  # keep-alive (RFC 5626 CRLF, or a NAT ping)
        self.core.receive(data, Peer("UDP", addr[0], addr[1]), now)
        self.flush()

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = writer.get_extra_info("peername")
        key = (addr[0], addr[1])
        if len(self._tcp_writers) >= self.max_tcp:
            log.warning("TCP connection from %s refused: %d open", addr[0], len(self._tcp_writers))
            writer.close()
            return
        self._tcp_writers[key] = writer
        framer = StreamFramer()
        peer = Peer("TCP", addr[0], addr[1])
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                now = self.clock.now()
                if not self.limiter.allow(addr[0], now):
                    continue
                framer.feed(data)
                while True:
                    try:
                        msg = framer.next_message()
                    except RemoteProtocolError as exc:
                        log.info("TCP stream from %s:%d broken: %s", addr[0], addr[1], exc)
                        return
                    if msg is None:
                        break
                    self.core.receive_message(msg, peer, now)
                    self.flush()
        except (ConnectionError, OSError) as exc:
            log.debug("TCP %s:%d: %s", addr[0], addr[1], exc)
        finally:
            self._tcp_writers.pop(key, None)
            writer.close()

    def flush(self) -> None:
        for item in self.core.take():
            if isinstance(item, Transmit):
                self._send(item)
            else:
                try:
                    self.on_event(item)
                except Exception:  # noqa: BLE001 - a call-control bug must not stop SIP
                    log.exception("event handler failed for %r", item)
        # the handler may have issued commands
        if self.core.out:
            self.flush()

    def _send(self, item: Transmit) -> None:
        peer = item.peer
        if peer.transport == "UDP":
            if self._udp is not None:
                self._udp.sendto(item.data, (peer.host, peer.port))
            return
        writer = self._tcp_writers.get((peer.host, peer.port))
        if writer is None:
            log.info("no TCP connection to %s:%d for an outgoing message", peer.host, peer.port)
            return
        writer.write(item.data)


class MediaSockets:
    """One UDP socket per media leg, read by the asyncio loop; sends may come from the engine thread."""

    def __init__(
        self,
        hub: MediaHub,
        clock: Clock,
        host: str = "0.0.0.0",
        rtp_ports: tuple[int, int] | None = None,
        on_dtmf: Callable[[int, list], None] | None = None,
    ) -> None:
        self.hub = hub
        self.clock = clock
        self.host = host
        self.rtp_ports = rtp_ports
        self.on_dtmf = on_dtmf or (lambda leg, evs: None)
        self.socks: dict[int, tuple[socket.socket, socket.socket]] = {}  # leg -> (RTP, RTCP)
        self.latched: dict[int, tuple[str, int]] = {}
        self.latched_rtcp: dict[int, tuple[str, int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def open(self, leg: int) -> int:
        """Bind (or keep) the sockets of `leg`: RTP on an even port, RTCP on the next (RFC 3550 11).
        Returns the RTP port for the SDP."""
        pair = self.socks.get(leg)
        if pair is not None:
            return pair[0].getsockname()[1]
        pair = self._bind_pair(leg)
        self.socks[leg] = pair
        self.latched.pop(leg, None)
        self.latched_rtcp.pop(leg, None)
        loop = self._loop or asyncio.get_event_loop()
        for rtcp, sock in enumerate(pair):
            loop.add_reader(sock.fileno(), self._readable, leg, sock, bool(rtcp))
        return pair[0].getsockname()[1]

    def _bind_pair(self, leg: int) -> tuple[socket.socket, socket.socket]:
        if self.rtp_ports is not None:
            base, top = self.rtp_ports
            port = base - (base % 2) + 2 * leg
            if port + 1 > top:
                raise RuntimeError(f"RTP port range {base}-{top} too small for leg {leg}")
            candidates = [port]
        else:
            candidates = []
        for _ in range(64):
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                if candidates:
                    rtp.bind((self.host, candidates[0]))
                else:
                    rtp.bind((self.host, 0))
                    if rtp.getsockname()[1] % 2:
                        raise OSError("odd port")
                rtcp.bind((self.host, rtp.getsockname()[1] + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                if candidates:
                    raise
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            return rtp, rtcp
        raise RuntimeError("no free even/odd UDP port pair for RTP/RTCP")

    def close(self, leg: int) -> None:
        pair = self.socks.pop(leg, None)
        self.latched.pop(leg, None)
        self.latched_rtcp.pop(leg, None)
        if pair is None:
            return
        loop = self._loop or asyncio.get_event_loop()
        for sock in pair:
            loop.remove_reader(sock.fileno())
            sock.close()

    def _readable(self, leg: int, sock: socket.socket, rtcp: bool) -> None:
        for _ in range(64):
            try:
                data, addr = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("leg %d: %s", leg, exc)
                return
            (self.latched_rtcp if rtcp else self.latched).setdefault(leg, (addr[0], addr[1]))
            events = self.hub.receive(leg, data, self.clock.now())
            if events:
                self.on_dtmf(leg, events)

    def send(self, packets: list[tuple[int, bytes]]) -> None:
        for leg, data in packets:
            pair = self.socks.get(leg)
            st = self.hub.legs.get(leg)
            if pair is None or st is None:
                continue
            remote = st.config.remote
            if remote[1] == 9 or remote[0] in ("0.0.0.0", "::"):
                continue
            if is_rtcp(data):
                sock = pair[1]
                dest = self.latched_rtcp.get(leg) or (remote[0], remote[1] + 1)
            else:
                sock = pair[0]
                dest = self.latched.get(leg) or remote
            try:
                sock.sendto(data, dest)
            except OSError as exc:
                log.debug("leg %d: send to %s failed: %s", leg, dest, exc)

    def close_all(self) -> None:
        for leg in list(self.socks):
            self.close(leg)
