"""The asyncio transport: UDP and TCP on 127.0.0.1 ephemeral ports, keep-alives, floods from one address."""

from __future__ import annotations

import asyncio
import logging
import socket

from board.clock import RealClock
from firmware.sip.core import CoreConfig
from firmware.sip.extensions import Directory
from firmware.sip.message import Headers, Request, StreamFramer, parse_datagram
from firmware.sip.service import SipService


def options(port: int, transport: str = "UDP", n: int = 1) -> bytes:
    h = Headers()
    h.add("Via", f"SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bKt{n};rport")
    h.add("From", f"<sip:1001@box>;tag=t{n}")
    h.add("To", "<sip:box>")
    h.add("Call-ID", f"opt-{n}-{port}")
    h.add("CSeq", "1 OPTIONS")
    return Request("OPTIONS", "sip:box", h).encode()


def service(**kw) -> SipService:
    d = Directory.with_passwords("callbox", {"1001": "pw"})
    return SipService(d, RealClock(), "127.0.0.1", 0, config=CoreConfig(qualify_interval=0), **kw)


def test_udp_and_tcp_options():
    async def main():
        svc = service()
        await svc.start()
        loop = asyncio.get_running_loop()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.setblocking(False)
        udp.sendto(b"\r\n\r\n", ("127.0.0.1", svc.port))  # keep-alive: ignored
        udp.sendto(options(udp.getsockname()[1]), ("127.0.0.1", svc.port))
        data = await asyncio.wait_for(loop.sock_recv(udp, 65535), 5)
        assert parse_datagram(data).status == 200
        reader, writer = await asyncio.open_connection("127.0.0.1", svc.server.tcp_port)
        port = writer.get_extra_info("sockname")[1]
        msg = options(port, "TCP", 2)
        writer.write(b"\r\n\r\n" + msg[:30])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(msg[30:] + options(port, "TCP", 3))
        framer = StreamFramer()
        got = []
        while len(got) < 2:
            framer.feed(await asyncio.wait_for(reader.read(65535), 5))
            while (m := framer.next_message()) is not None:
                got.append(m)
        assert [m.status for m in got] == [200, 200]
        writer.write(b"NOT SIP AT ALL\r\n\r\n")  # a broken stream is closed, the server lives on
        await writer.drain()
        assert await asyncio.wait_for(reader.read(100), 5) == b""
        udp.sendto(options(udp.getsockname()[1], n=4), ("127.0.0.1", svc.port))
        assert parse_datagram(await asyncio.wait_for(loop.sock_recv(udp, 65535), 5)).status == 200
        udp.close()
        writer.close()
        await svc.stop()

    asyncio.run(main())


def test_flood_from_one_address_does_not_starve_another(caplog):
    caplog.set_level(logging.WARNING)

    async def main():
        svc = service(rate=50.0, burst=50.0)
        await svc.start()
        loop = asyncio.get_running_loop()
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flood.bind(("127.0.0.2", 0))
        for i in range(2000):
            flood.sendto(options(flood.getsockname()[1], n=i), ("127.0.0.1", svc.port))
        good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        good.bind(("127.0.0.1", 0))
        good.setblocking(False)
        await asyncio.sleep(0.3)
        good.sendto(options(good.getsockname()[1], n=99999), ("127.0.0.1", svc.port))
        data = await asyncio.wait_for(loop.sock_recv(good, 65535), 5)
        assert parse_datagram(data).status == 200
        answered = 0
        flood.setblocking(False)
        while True:
            try:
                flood.recv(65535)
                answered += 1
            except BlockingIOError:
                break
        flood.close()
        good.close()
        await svc.stop()
        return answered

    answered = asyncio.run(main())
    assert 40 <= answered <= 120  # the burst, plus the refill while it lasted; the rest dropped
    assert "flood from 127.0.0.2" in caplog.text
