"""Run in a subprocess under AddressSanitizer/UBSan (tests/drivers/test_sanitizers.py): a short, busy life
of the simulated board through the cffi bindings, touching every C entry point the Python side uses, with
bad far ends. Prints OK at the end; any memory error or undefined behaviour aborts the process first."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile

import numpy as np

from board.description import simple_board
from drivers import e1
from drivers._lib import DriverError
from tools.linesim.world import World


def main() -> int:
    rundir = tempfile.mkdtemp(prefix="cbs")
    try:
        ports = 4 if "--no-fxo" not in sys.argv else 0
        w = World(simple_board(2, ports), rundir)
        span, ex = w.board.e1.span(1), w.e1[0].ex
        w.run(0.3)
        for p in (b"\x7e" * 300, b"\x7d\xff" * 50, b"\x00\x00"):
            span.dchan_send(p)
            ex.dchan_send(p)
        try:
            span.dchan_send(b"x" * 400)  # too long: refused by the driver, no overflow
            raise AssertionError("a 400-octet D-channel frame was accepted")
        except DriverError:
            pass
        w.run(0.5)
        assert ex.dchan_recv()[:3] == [b"\x7e" * 300, b"\x7d\xff" * 50, b"\x00\x00"]
        span.dchan_recv()
        span.cas_set_all(np.arange(1, 31, dtype=np.uint8) % 15 + 1)
        span.cas_get_all()
        for loops in (e1.LOOP_LOCAL, e1.LOOP_NETWORK_LINE, e1.LOOP_NETWORK_PAYLOAD, 0):
            span.loopback(loops)
            span.prbs(True, True)
            span.inject(e1.INJECT_BIT | e1.INJECT_CRC | e1.INJECT_FAS)
            w.run(0.1)
            span.prbs_result()
        span.prbs(False, False)
        ex.send_alarms(ais=True)
        w.run(0.2)
        ex.send_alarms(rai=True)
        w.run(0.2)
        ex.send_alarms()
        w.e1[1].send_raw(bytes(range(256)) * 3 + b"\x01")  # partial frames
        w.e1[1].transform = lambda d: np.random.default_rng(0).integers(0, 256, len(d), np.uint8).tobytes()
        w.run(0.2)
        w.e1[1].send_raw(bytes(32 * 1100))  # oversize
        w.e1[1].close()
        w.run(0.2)
        extra = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        extra.connect(w.board.socket_path("e1", 1))
        extra.close()
        tdm = w.board.tdm
        tdm.write(np.full((tdm.channels, 80), 0x55, np.uint8))
        tdm.read(80)
        if ports:
            fxo = w.board.fxo
            w.co[0].line.ring(w.tick_time(w.ticks))
            w.co[1].line.ring_burst(w.tick_time(w.ticks), 0.05)
            w.run(1.5)
            fxo.port(1).hook(True)
            fxo.port(2).set_gain(12.0, -15.0)
            w.co[0].line.send_audio((np.sin(np.arange(4000)) * 32767).astype(np.int16))
            w.run(0.5)
            w.co[2].sock.send(b"\x4c\x01" + bytes(10) + b"\xff\xff")  # lies about its length
            w.co[3].close()
            w.run(0.3)
            fxo.events()
            for p in fxo.ports:
                p.status()
                p.gain()
        w.close()
        print("OK")
        return 0
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
