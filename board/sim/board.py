"""The simulated board in Python: the C card models, their drivers, and the line sockets (the cables).

`SimBoard(desc, rundir)` creates the C E1 and FXO card models (board/sim/sim_e1.h, sim_fxo.h), opens the
real C drivers on them (drivers.e1 / drivers.fxo, through the simulator regio backend), configures the
spans from the board description, starts the TDM DMA and listens on one Unix socket per span and port
(docs/virtual-lines.md). `step()` is one tick of the board:

    accept/drop far ends -> line messages in -> card oscillator advances n frames (DMA moves them)
    -> line messages out

The board never reads the time itself. Whoever drives it decides: in tests and simulation a VirtualClock
(`attach(clock)` puts a step on the clock every tick, so far ends, board and engine share one timeline);
in real time `run_realtime()` paces the steps on a RealClock (the local oscillator), or on the frames
arriving from the far end of a line-timed span (the line clock), falling back to the oscillator when the
line goes quiet.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import selectors
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from board.clock import Clock, RealClock
from board.description import BoardDescription
from board.sim.fxoline import (
    FLAG_OFFHOOK,
    FLAG_RING,
    HEADER,
    HEADER_SIZE,
    KIND_HOOK,
    KIND_LINE,
    MAX_MESSAGE,
    VERSION,
    FxoProtocolError,
    parse_header,
)
from drivers._lib import ffi, lib
from drivers.e1 import FRAME, E1Card
from drivers.tdm import TdmPort

if TYPE_CHECKING:
    from drivers.fxo import FxoCard

SAMPLE_RATE = 8000
E1_MAX_MESSAGE = 1024 * FRAME
_E1, _FXO = 0, 1
FXO_AUDIO_BACKLOG = 320  # 40 ms of line audio queued toward the DAA at most (docs/virtual-lines.md)


@dataclass
class LineCounters:
    """What the socket pump itself counts (the cards count the rest)."""

    connects: int = 0
    disconnects: int = 0
    refused: int = 0  # second far end while one is connected
    bad_messages: int = 0  # FXO messages that break the protocol
    oversize: int = 0  # E1 messages over 1024 frames (truncated by the socket)
    tx_dropped: int = 0  # messages the far end did not read in time


class _Line:
    """One listening socket and its (at most one) far end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(str(path))
        self.listener.listen(2)
        self.listener.setblocking(False)
        self.peer: socket.socket | None = None
        self.peer_fd = -1  # the peer's fd while the board polls it
        self.counters = LineCounters()

    def accept(self) -> bool:
        """Take pending connections; True if a new far end was plugged in."""
        plugged = False
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return plugged
            except OSError:
                return plugged
            if self.peer is None:
                conn.setblocking(False)
                self.peer = conn
                self.counters.connects += 1
                plugged = True
            else:
                conn.close()
                self.counters.refused += 1

    def drop(self) -> None:
        if self.peer is not None:
            with contextlib.suppress(OSError):
                self.peer.close()
            self.peer = None
            self.counters.disconnects += 1

    def recv_all(self, limit: int) -> list[bytes]:
        """Every message waiting (non-blocking); a closed or failed peer is dropped (cable pulled)."""
        out: list[bytes] = []
        peer = self.peer
        while peer is not None:
            try:
                msg = peer.recv(limit)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.drop()
                break
            if not msg:
                self.drop()
                break
            out.append(msg)
        return out

    def send(self, msg: bytes) -> None:
        if self.peer is None:
            return
        try:
            self.peer.send(msg)
        except (BlockingIOError, InterruptedError):
            self.counters.tx_dropped += 1
        except OSError as exc:
            if exc.errno in (errno.ENOBUFS, errno.EAGAIN):
                self.counters.tx_dropped += 1
            else:
                self.drop()

    def close(self) -> None:
        self.drop()
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class SimBoard:
    """The simulated board: C card models + C drivers + line sockets; one `step()` per tick."""

    def __init__(
        self,
        desc: BoardDescription,
        rundir: str | Path,
        tick_frames: int = 80,
        ring_ticks: int = 16,
    ) -> None:
        self.desc = desc
        self.tick_frames = tick_frames
        self._stop = threading.Event()
        self.rundir = Path(rundir)
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.frames = 0  # card oscillator frames (samples) since start
        self.steps = 0
        ring = tick_frames * ring_ticks
        if ring > 4096:
            raise ValueError(f"DMA ring of {ring} frames is over 4096: lower ring_ticks")
        self._e1sim = None
        self._fxosim = None
        self.e1: E1Card | None = None
        self.fxo: FxoCard | None = None
        self.e1_lines: list[_Line] = []
        self.fxo_lines: list[_Line] = []
        try:
            if desc.span_count:
                sim = lib.sim_e1_new(desc.span_count)
                if sim == ffi.NULL:
                    raise ValueError(f"the E1 card model takes 1..8 spans, not {desc.span_count}")
                self._e1sim = ffi.gc(sim, lib.sim_e1_free)
                self.e1 = E1Card(lib.sim_e1_regio(self._e1sim), keepalive=self._e1sim)
                for cfg, span in zip(desc.spans, self.e1.spans, strict=True):
                    span.configure(
                        cas=cfg.framing == "cas",
                        crc4=cfg.crc4,
                        hdb3=cfg.linecode == "hdb3",
                        line_timing=cfg.timing == "line",
                    )
                self.e1.start_dma(ring)
                self.e1_lines = [_Line(self.rundir / f"e1-span{i + 1}.sock") for i in range(desc.span_count)]
            if desc.port_count:
                from drivers.fxo import FxoCard  # only boards with FXO ports need the FXO driver

                sim = lib.sim_fxo_new(desc.port_count)
                if sim == ffi.NULL:
                    raise ValueError(f"the FXO card model takes 1..8 ports, not {desc.port_count}")
                self._fxosim = ffi.gc(sim, lib.sim_fxo_free)
                self.fxo = FxoCard(lib.sim_fxo_regio(self._fxosim), keepalive=self._fxosim)
                for port in self.fxo.ports:
                    port.monitor(True)
                self.fxo.start_dma(ring)
                self.fxo_lines = [
                    _Line(self.rundir / f"fxo-port{i + 1}.sock") for i in range(desc.port_count)
                ]
        except BaseException:
            self.close()
            raise
        self.tdm = TdmPort(self.e1, self.fxo)
        self._e1_out = ffi.new("uint8_t[]", E1_MAX_MESSAGE)
        self._e1_out_mv = ffi.buffer(self._e1_out)
        if self.fxo is not None:
            self._line = ffi.new("struct sim_fxo_line *")
            self._line_state = ffi.new("struct sim_fxo_line_state *")
        self._pcm = np.zeros(tick_frames, dtype="<i2")
        self._pcm_ptr = ffi.cast("int16_t *", ffi.from_buffer(self._pcm))
        self._fxo_backlog = [0] * desc.port_count
        self._poll = select.poll()
        self._fds: dict[int, tuple[_Line, int, int]] = {}
        for kind, lines in ((_E1, self.e1_lines), (_FXO, self.fxo_lines)):
            for i, line in enumerate(lines):
                self._fds[line.listener.fileno()] = (line, kind, i)
                self._poll.register(line.listener, select.POLLIN)

    # ---- one tick -----------------------------------------------------------------------------
    def step(self, n: int | None = None) -> None:
        """Advance the board by n frames (default one tick): lines in, card time, lines out."""
        n = self.tick_frames if n is None else n
        e1sim, fxosim = self._e1sim, self._fxosim
        # One poll() for every listener and far end: only lines with something to say cost a syscall.
        for fd, _events in self._poll.poll(0):
            entry = self._fds.get(fd)
            if entry is None:
                continue
            line, kind, i = entry
            if fd == line.listener.fileno():
                if line.accept() and line.peer is not None:
                    self._watch(line, kind, i)
                    self._read(line, kind, i, n)
            else:
                self._read(line, kind, i, n)
        if e1sim is not None:
            lib.sim_e1_tick(e1sim, n)
        if fxosim is not None:
            lib.sim_fxo_tick(fxosim, n)
        self.frames += n
        self.steps += 1
        out = self._e1_out
        for i, line in enumerate(self.e1_lines):
            got = lib.sim_e1_line_tx(e1sim, i, out, 1024)
            while got > 0:
                if line.peer is not None:
                    line.send(self._e1_out_mv[: got * FRAME])
                    if line.peer is None:
                        self._forget(line, _E1, i)
                got = lib.sim_e1_line_tx(e1sim, i, out, 1024) if got == 1024 else 0
        if fxosim is not None:
            if self._pcm.size != n:
                self._pcm = np.zeros(n, dtype="<i2")
                self._pcm_ptr = ffi.cast("int16_t *", ffi.from_buffer(self._pcm))
            st = self._line_state
            pcm = ffi.buffer(self._pcm_ptr, 2 * n)
            for i, line in enumerate(self.fxo_lines):
                self._fxo_backlog[i] = max(0, self._fxo_backlog[i] - n)
                got = max(0, lib.sim_fxo_line_audio_out(fxosim, i, self._pcm_ptr, n))
                lib.sim_fxo_line_get(fxosim, i, st)
                if line.peer is not None:
                    flags = FLAG_OFFHOOK if st.offhook else 0
                    header = HEADER.pack(KIND_HOOK, VERSION, flags, min(32767, st.loop_ma * 10), 0, 0, got)
                    line.send(header + pcm[: 2 * got])
                    if line.peer is None:
                        self._forget(line, _FXO, i)

    def _watch(self, line: _Line, kind: int, i: int) -> None:
        assert line.peer is not None
        fd = line.peer.fileno()
        line.peer_fd = fd
        self._fds[fd] = (line, kind, i)
        self._poll.register(fd, select.POLLIN)

    def _read(self, line: _Line, kind: int, i: int, n: int) -> None:
        """Every message a far end sent since the last step; a closed connection is a pulled cable."""
        msgs = line.recv_all(E1_MAX_MESSAGE + 1 if kind == _E1 else MAX_MESSAGE + 1)
        if kind == _E1:
            for msg in msgs:
                if len(msg) > E1_MAX_MESSAGE:
                    line.counters.oversize += 1
                # Whole frames are taken, a trailing partial frame is dropped and counted by the card.
                lib.sim_e1_line_rx(self._e1sim, i, msg, len(msg))
        else:
            for msg in msgs:
                self._fxo_message(line, i, msg, n)
        if line.peer is None and line.peer_fd >= 0:
            self._forget(line, kind, i)

    def _forget(self, line: _Line, kind: int, i: int) -> None:
        """The far end is gone (closed, or failed a send): stop polling it; FXO loses battery."""
        with contextlib.suppress(KeyError, ValueError):
            self._poll.unregister(line.peer_fd)
        self._fds.pop(line.peer_fd, None)
        line.peer_fd = -1
        if kind == _FXO:
            self._unplug_fxo(i)

    def _fxo_message(self, line: _Line, i: int, msg: bytes, n: int) -> None:
        try:
            flags, dc, ring_v, ring_hz, samples = parse_header(msg, KIND_LINE)
        except FxoProtocolError:
            line.counters.bad_messages += 1
            return
        ln = self._line
        ringing = flags & FLAG_RING
        ln.battery_mv = abs(dc) * 100  # 0.1 V -> mV
        ln.reversed = 1 if dc > 0 else 0
        ln.ring_vrms = (ring_v + 5) // 10 if ringing else 0
        ln.ring_hz = (ring_hz + 5) // 10 if ringing else 0
        lib.sim_fxo_line_set(self._fxosim, i, ln)
        room = FXO_AUDIO_BACKLOG + n - self._fxo_backlog[i]
        if samples and room > 0:
            take = min(room, samples)
            # The samples sit in the message itself: hand C a pointer past the header (no copy).
            ptr = ffi.cast("int16_t *", ffi.from_buffer(msg)) + HEADER_SIZE // 2
            got = lib.sim_fxo_line_audio_in(self._fxosim, i, ptr, take)
            self._fxo_backlog[i] += max(got, 0)

    def _unplug_fxo(self, i: int) -> None:
        """Far end gone: no battery, no ringing (a pulled cable)."""
        ln = self._line
        ln.battery_mv = ln.reversed = ln.ring_vrms = ln.ring_hz = 0
        lib.sim_fxo_line_set(self._fxosim, i, ln)

    # ---- time -----------------------------------------------------------------------------------
    @property
    def period(self) -> float:
        return self.tick_frames / SAMPLE_RATE

    def attach(self, clock: Clock, start: float | None = None) -> None:
        """Put one step per tick on the clock's timers (VirtualClock: the tests' and simulation's way)."""
        first = clock.now() if start is None else start

        def fire(k: int) -> None:
            self.step()
            if not self._stop.is_set():
                clock.call_at(first + (k + 1) * self.period, lambda: fire(k + 1))

        clock.call_at(first, lambda: fire(0))

    def run_realtime(self, clock: RealClock | None = None, timing_span: int | None = None) -> None:
        """Step in real time until `stop()`: on the local oscillator (clock), or, with `timing_span`, on the
        frames that span's far end sends (its line clock), falling back to the oscillator after 2 ticks of
        silence."""
        clk = clock or RealClock()
        deadline = clk.now()
        sel = selectors.DefaultSelector()
        try:
            while not self._stop.is_set():
                peer = self.e1_lines[timing_span - 1].peer if timing_span else None
                if peer is not None:
                    sel.register(peer, selectors.EVENT_READ)
                    sel.select(timeout=max(0.0, deadline + self.period - clk.now()))
                    sel.unregister(peer)
                    deadline = clk.now()
                else:
                    clk.sleep_until(deadline)
                self.step()
                deadline += self.period
                if clk.now() - deadline > 5 * self.period:
                    deadline = clk.now()
        finally:
            sel.close()

    def stop(self) -> None:
        self._stop.set()

    # ---- state ----------------------------------------------------------------------------------
    def socket_path(self, kind: str, number: int) -> str:
        if kind == "e1":
            return str(self.rundir / f"e1-span{number}.sock")
        return str(self.rundir / f"fxo-port{number}.sock")

    def line_counters(self, kind: str, number: int) -> LineCounters:
        return (self.e1_lines if kind == "e1" else self.fxo_lines)[number - 1].counters

    def connected(self, kind: str, number: int) -> bool:
        return (self.e1_lines if kind == "e1" else self.fxo_lines)[number - 1].peer is not None

    def close(self) -> None:
        self._stop.set()
        for line in [*self.e1_lines, *self.fxo_lines]:
            line.close()
        self.e1_lines, self.fxo_lines = [], []

    def __enter__(self) -> SimBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_rundir(data: str | Path) -> Path:
    """<data>/run, created."""
    path = Path(data) / "run"
    os.makedirs(path, exist_ok=True)
    return path
