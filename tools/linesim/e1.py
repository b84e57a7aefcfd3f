"""The exchange side of an E1 line: a framer in network role (the C model of board/sim/e1framer.h through
cffi) plugged into a box's span socket (docs/virtual-lines.md).

`ExchangeE1` is the framer and its payload: voice timeslots to send and received, D-channel frames in and
out (for the signalling stacks), CAS ABCD bits, alarms and errors to inject (AIS, RAI, CRC-4 and FAS
errors), a clock offset (ppm) so the box's elastic store slips. `ExchangeE1End` connects it to the
socket: `pump()` sends one tick of frames and takes what the box sent. Pulling the cable is `close()`.
"""

from __future__ import annotations

import socket
from typing import Any

import numpy as np

from drivers._lib import ffi, lib

FRAME = 32
MAX_FRAMES = 1024


class ExchangeE1:
    """An E1 framer on the network side. Voice is A-law, timeslot-major like the box's DMA view."""

    def __init__(self, cas: bool = False, crc4: bool = True, max_frames: int = MAX_FRAMES) -> None:
        f = lib.e1f_new()
        if f == ffi.NULL:
            raise MemoryError("e1f_new")
        self.f = ffi.gc(f, lib.e1f_free)
        cfg = ffi.new("struct e1f_config *")
        cfg.cas, cfg.crc4, cfg.hdb3, cfg.auto_rai = int(cas), int(crc4), 1, 1
        lib.e1f_configure(self.f, cfg)
        self.max_frames = max_frames
        # Payload to send: frames x 32 (TS0/TS16 ignored by the framer); idle = A-law silence 0xD5.
        self.tx_payload = np.full((max_frames, FRAME), 0xD5, dtype=np.uint8)
        self.rx_payload = np.full((max_frames, FRAME), 0xFF, dtype=np.uint8)
        self._tx_line = np.zeros((max_frames, FRAME), dtype=np.uint8)
        self._tx_ptr = ffi.cast("uint8_t *", ffi.from_buffer(self.tx_payload))
        self._rx_ptr = ffi.cast("uint8_t *", ffi.from_buffer(self.rx_payload))
        self._line_ptr = ffi.cast("uint8_t *", ffi.from_buffer(self._tx_line))
        self._buf = ffi.new("uint8_t[512]")
        self._cnt = ffi.new("struct e1_counters *")
        self.alarms = 0

    # ---- line side ---------------------------------------------------------------------------------
    def transmit(self, n: int) -> bytes:
        """n line frames carrying tx_payload[:n]."""
        n = min(n, self.max_frames)
        lib.e1f_tx(self.f, self._tx_ptr, self._line_ptr, n)
        return self._tx_line[:n].tobytes()

    def receive(self, data: bytes) -> int:
        """Line frames from the box; rx_payload[:k] gets the aligned frames. Returns k frames."""
        n = min(len(data) // FRAME, self.max_frames)
        if n == 0:
            return 0
        lib.e1f_rx(self.f, data, self._rx_ptr, n)
        return n

    def idle(self, n: int) -> None:
        """n frame times with nothing received."""
        lib.e1f_idle(self.f, n)

    # ---- payload -----------------------------------------------------------------------------------
    def set_voice(self, block: np.ndarray) -> None:
        """block (32, n) uint8: the timeslots of the next n frames (rows 0 and 16 are ignored)."""
        n = block.shape[1]
        self.tx_payload[:n] = block.T

    def voice(self, n: int) -> np.ndarray:
        """(32, n) view of the last received payload (call right after receive)."""
        return self.rx_payload[:n].T

    # ---- maintenance and alarms --------------------------------------------------------------------
    def send_alarms(self, ais: bool = False, rai: bool = False) -> None:
        self.alarms = (lib.E1TXA_AIS if ais else 0) | (lib.E1TXA_RAI if rai else 0)
        lib.e1f_tx_alarms(self.f, self.alarms)

    def inject(self, crc: bool = False, fas: bool = False, bit: bool = False) -> None:
        what = (lib.E1INJ_CRC if crc else 0) | (lib.E1INJ_FAS if fas else 0) | (lib.E1INJ_BIT if bit else 0)
        lib.e1f_inject(self.f, what)

    def prbs(self, tx: bool, rx: bool, tsmask: int = 0xFFFEFFFE) -> None:
        lib.e1f_prbs(self.f, int(tx), int(rx), tsmask)

    def prbs_result(self) -> tuple[bool, int]:
        return bool(lib.e1f_prbs_sync(self.f)), int(lib.e1f_prbs_errors(self.f))

    def status(self) -> int:
        return int(lib.e1f_status_raw(self.f))

    def debounced(self) -> int:
        return int(lib.e1f_status(self.f))

    def counters(self) -> dict[str, int]:
        lib.e1f_counters(self.f, self._cnt)
        return {name: int(getattr(self._cnt, name)) for name, _ in ffi.typeof("struct e1_counters").fields}

    # ---- D-channel and CAS -------------------------------------------------------------------------
    def dchan_send(self, frame: bytes) -> bool:
        return lib.e1f_hdlc_send(self.f, frame, len(frame)) == 0

    def dchan_recv(self) -> list[bytes]:
        out = []
        while (n := lib.e1f_hdlc_recv(self.f, self._buf, 512)) > 0:
            out.append(ffi.buffer(self._buf, n)[:])
        return out

    def cas_set(self, chan: int, abcd: int) -> None:
        lib.e1f_cas_tx(self.f, chan, abcd)

    def cas_get(self, chan: int) -> int:
        return int(lib.e1f_cas_rx(self.f, chan))


class ExchangeE1End:
    """An ExchangeE1 on a box's span socket, clocked by whoever calls `pump` (ppm = its clock offset)."""

    def __init__(self, path: str, exchange: ExchangeE1 | None = None, ppm: float = 0.0) -> None:
        self.path = path
        self.ex = exchange if exchange is not None else ExchangeE1()
        self.ppm = ppm
        self.sock: socket.socket | None = None
        self._frac = 0.0
        self.sent_frames = 0
        self.received_frames = 0
        self.dropped_sends = 0
        self.on_receive: Any = None  # callable(exchange, nframes) after each received message
        self.tap: Any = None  # callable(bytes): every message the box sent, raw (tests decode the line)
        self.transform: Any = None  # callable(bytes) -> bytes: what goes on the wire (fault injection)
        self._shift_bits = 0
        self._carry = np.zeros(0, dtype=np.uint8)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(self.path)
        sock.setblocking(False)
        self.sock = sock

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def close(self) -> None:
        """Pull the cable."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def frames_for(self, n: int) -> int:
        """How many frames this far end's clock makes while the box's makes n."""
        self._frac += n * (1.0 + self.ppm * 1e-6)
        k = int(self._frac)
        self._frac -= k
        return k

    def send_frames(self, k: int) -> None:
        if self.sock is None:
            return
        data = self.ex.transmit(k)
        if self._shift_bits or self._carry.size:
            data = self._shifted(data)
        if self.transform is not None:
            data = self.transform(data)
        try:
            self.sock.send(data)
            self.sent_frames += k
        except BlockingIOError:
            self.dropped_sends += 1
        except OSError:
            self.close()

    def shift(self, bits: int) -> None:
        """Delay the line signal by `bits` bits from now on (a framing shift the box must re-align to)."""
        self._shift_bits += bits

    def _shifted(self, data: bytes) -> bytes:
        if self._shift_bits:
            self._carry = np.concatenate([np.zeros(self._shift_bits, np.uint8), self._carry])
            self._shift_bits = 0
        bits = np.concatenate([self._carry, np.unpackbits(np.frombuffer(data, np.uint8))])
        n = len(data) * 8
        self._carry = bits[n:]
        return np.packbits(bits[:n]).tobytes()

    def send_raw(self, data: bytes) -> None:
        """Anything at all on the wire (partial frames, garbage): bad-input tests."""
        if self.sock is not None:
            self.sock.send(data)

    def pump(self, n: int) -> None:
        """One tick: send this far end's frames for n box frames, then take the box's."""
        self.send_frames(self.frames_for(n))
        self.receive()

    def receive(self) -> None:
        while self.sock is not None:
            try:
                data = self.sock.recv(MAX_FRAMES * FRAME)
            except BlockingIOError:
                return
            except OSError:
                self.close()
                return
            if not data:
                self.close()
                return
            if self.tap is not None:
                self.tap(data)
            k = self.ex.receive(data)
            self.received_frames += k
            if self.on_receive is not None:
                self.on_receive(self.ex, k)
