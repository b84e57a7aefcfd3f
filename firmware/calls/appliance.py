"""The appliance: board -> media engine -> signalling -> call control, assembled (what `callbox run` runs).

    app = Appliance(board, data_dir, config_dir=None, clock=clock, extension_rows=24)
    # virtual time, a World (tools.linesim) stepping the board:   world.on_tick.append(app.on_tick)
    # real time:                                                  app.start(); ...; app.stop()
    app.mgr            # CallManager: calls, CDRs, status(), features
    app.engine.stats   # tick load for the status view
    app.extensions     # LoopNetwork of in-process extension phones (agents until SIP legs take these rows)

Engine rows: the board's channels in TdmPort order (span s channel c -> (s-1)*30 + c-1, FXO port p after all
spans), then `extension_rows` rows for extensions (SIP legs or in-process phones). Every E1 span with CCS
framing runs ISDN PRI (`PriSpan`, user side unless `roles` says otherwise) as trunk "span<s>"; the FXO ports
are trunk "fxo" (`FxoPort`, answered by call control). Every span with CAS framing runs MFC/R2, China variant
(`R2Span` + `R2Trunk`, firmware/calls/r2.py; `r2_config` per span) as trunk "span<s>".

Threads (real time): the tick thread steps the board and runs the engine (`BoardStepPort`); the control
thread (`ControlLoop`) polls the drivers (D-channel frames, FXO events, span alarms) under the board lock,
runs signalling and call control, and the clock's timers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from board.clock import Clock, RealClock
from firmware.calls.fxo import FxoLines
from firmware.calls.loopback import LoopNetwork
from firmware.calls.manager import CallManager
from firmware.calls.pri import PriTrunk
from firmware.calls.r2 import R2Trunk
from firmware.calls.runtime import ControlLoop
from firmware.calls.setup import close_box, open_box
from firmware.engine import MediaEngine
from firmware.engine.ports import LoopPort, StackedPort
from firmware.signalling.fxo import FxoConfig, FxoPort
from firmware.signalling.pri import PriSpan
from firmware.signalling.q931.state import Party
from firmware.signalling.r2 import R2Config, R2Span


class BoardTdmPort:
    """The board's TdmPort under the board lock; with `step=True` each read first steps the board one tick
    (real time: the tick thread drives the board, so the engine reads each frame exactly once)."""

    def __init__(self, board: Any, lock: threading.RLock, step: bool) -> None:
        self.board = board
        self.tdm = board.tdm
        self.lock = lock
        self.step = step
        self.channels = self.tdm.channels

    def read(self, n: int) -> np.ndarray:
        with self.lock:
            if self.step:
                self.board.step(n)
            return self.tdm.read(n)

    def write(self, codes: np.ndarray) -> None:
        with self.lock:
            self.tdm.write(codes)


class Appliance:
    def __init__(
        self,
        board: Any,
        data_dir: str | Path,
        config_dir: str | Path | None = None,
        clock: Clock | None = None,
        epoch_offset: float | None = None,
        tick_ms: int = 10,
        extension_rows: int = 24,
        roles: dict[int, Party] | None = None,
        fxo_dnis: str = "",
        prompt_dirs: list[str | Path] | None = None,
        realtime: bool = False,
        extension_port: Any = None,
        make_extension_lines: Any = None,
        r2_config: dict[int, R2Config] | None = None,
    ) -> None:
        """extension_port / make_extension_lines: the agents' side when it is not in-process phones, e.g.
        SIP: `extension_port=SipMediaPort(...)`, `make_extension_lines=lambda mgr, clock, base:
        SipLine(core, mgr, clock, channel_base=base)` (the returned object must be an Originator)."""
        self.board = board
        self.clock = clock or RealClock()
        self.realtime = realtime
        self.lock = threading.RLock()
        self.board_port = BoardTdmPort(board, self.lock, step=realtime)
        self.ext_port = extension_port if extension_port is not None else LoopPort(extension_rows)
        self.port = StackedPort([self.board_port, self.ext_port])
        tdm = board.tdm
        self.engine = MediaEngine(self.port, tick_ms=tick_ms, trunk_channels=range(tdm.channels))
        if epoch_offset is None:
            epoch_offset = time.time() - self.clock.now() if isinstance(self.clock, RealClock) else 0.0
        self.mgr: CallManager = open_box(
            self.engine,
            self.clock,
            data_dir,
            config_dir,
            epoch_offset=epoch_offset,
            threaded_recorder=realtime,
            prompt_dirs=prompt_dirs,
            engine_events="queue" if realtime else "listener",
        )
        # extensions: in-process phones on the rows after the board's (SIP legs will take these rows)
        self.extensions: Any = None
        if make_extension_lines is not None:
            self.mgr.extension_lines = make_extension_lines(self.mgr, self.clock, self.port.offset(1))
        else:
            self.extensions = LoopNetwork(self.ext_port, self.clock, 0, extension_rows, "SIP", "local",
                                          engine_offset=self.port.offset(1))  # fmt: skip
            self.mgr.extension_lines = self.extensions
        # PRI spans
        self.pri: dict[int, tuple[PriSpan, PriTrunk, Any, list[bytes]]] = {}
        self._aligned: dict[int, bool] = {}
        roles = roles or {}
        if board.e1 is not None:
            for cfg in board.desc.spans:
                if cfg.framing != "ccs":
                    continue
                s = cfg.span
                span = PriSpan(roles.get(s, Party.USER))
                backlog: list[bytes] = []
                first = tdm.channel(span=s, chan=1)
                trunk = PriTrunk(
                    span, f"span{s}", first, self.mgr, self.clock, span_no=s, send=backlog.append
                )
                self.pri[s] = (span, trunk, board.e1.span(s), backlog)
                self._aligned[s] = False
                self.mgr.trunks[f"span{s}"] = trunk
        # MFC/R2 spans (CAS framing)
        self.r2: dict[int, tuple[R2Span, R2Trunk, Any]] = {}
        if board.e1 is not None:
            for cfg in board.desc.spans:
                if cfg.framing != "cas":
                    continue
                s = cfg.span
                drv = board.e1.span(s)
                # the dialplan's `r2:` section, then what the caller passed (tests, tools)
                r2cfg = {**self.mgr.plan.r2, **(r2_config or {})}.get(s, R2Config())
                r2span = R2Span(r2cfg, f"span{s}")
                r2trunk = R2Trunk(r2span, f"span{s}", tdm.channel(span=s, chan=1), self.mgr, self.engine,
                                  self.clock, span_no=s, set_cas=drv.cas_set)  # fmt: skip
                self.r2[s] = (r2span, r2trunk, drv)
                self._aligned[s] = False
                self.mgr.trunks[f"span{s}"] = r2trunk
                self.mgr.media_watchers.append(r2trunk.on_media_event)
        # FXO ports
        self.fxo: FxoLines | None = None
        if board.fxo is not None and tdm.ports:
            ports = [FxoPort(FxoConfig(answer_rings=0), f"fxo{p + 1}") for p in range(tdm.ports)]
            self.fxo = FxoLines(
                ports, tdm.channel(port=1), self.mgr, self.engine, self.clock, "fxo", fxo_dnis
            )
            self.mgr.trunks["fxo"] = self.fxo
            self.mgr.media_watchers.append(self.fxo.on_media_event)
        self._stop = threading.Event()
        self._control: threading.Thread | None = None
        # more pollers for the control thread (e.g. BoxSip.poll: the SIP side's loop, one pass per step)
        self.pollers: list[Any] = []
        self.poll(self.clock.now())

    # ---- one pass over the drivers and stacks ----------------------------------------------------------
    def poll(self, now: float) -> None:
        from drivers import e1 as e1drv

        with self.lock:
            for s, (span, trunk, drv, backlog) in self.pri.items():
                # The D-channel starts once the span is in frame alignment with no red/blue alarm standing,
                # and is taken down by the debounced alarm (red/blue after 2.5 s), as DAHDI does: a raw LOS of
                # a few ms (a far end in another process that is late with a block) is not a lost span.
                st = drv.status()
                alarmed = st.debounced & (e1drv.DB_RED | e1drv.DB_BLUE)
                bad = st.raw & (e1drv.LOS | e1drv.LOF | e1drv.AIS)
                if not self._aligned[s] and not bad and not alarmed:
                    span.start(now)
                    self._aligned[s] = True
                elif self._aligned[s] and alarmed:
                    span.alarm(now)
                    self._aligned[s] = False
                for f in drv.dchan_recv():
                    span.receive_frame(f, now)
                d = span.next_deadline()
                if d is not None and d <= now:
                    span.handle_timers(now)
                trunk.pump(now)
                backlog += span.frames_to_send()
                while backlog and drv.dchan_send(backlog[0]):
                    backlog.pop(0)
            for s, (r2span, r2trunk, drv) in self.r2.items():
                bad = drv.status().raw & (e1drv.LOS | e1drv.LOF | e1drv.AIS | e1drv.LCASMFA)
                abcd, changed = drv.cas_get_all()
                if not self._aligned[s] and not bad:
                    r2span.start(now, rx={c: int(abcd[c - 1]) for c in range(1, 31)})
                    self._aligned[s] = True
                elif self._aligned[s] and bad:
                    r2span.alarm(now)
                    self._aligned[s] = False
                elif self._aligned[s]:
                    for c in range(1, 31):
                        if changed >> c & 1:
                            r2span.line_signal(c, int(abcd[c - 1]), now)
                r2trunk.pump(now)
            if self.fxo is not None:
                for e in self.board.fxo.events():
                    if 1 <= e.port <= len(self.fxo.ports):
                        self.fxo.ports[e.port - 1].line_event(now, e.kind, e.value)
                self.fxo.pump(now)
                for i, off in self.fxo.hook_commands:
                    self.board.fxo.port(i + 1).hook(off)
                self.fxo.hook_commands.clear()
                for i, rx, tx in self.fxo.gain_commands:
                    self.board.fxo.port(i + 1).set_gain(rx, tx)
                self.fxo.gain_commands.clear()

    # ---- virtual time: a World steps the board and calls this after each tick -------------------------
    def on_tick(self, now: float) -> None:
        start = time.perf_counter()
        self.engine.tick(now)
        self.engine.stats.record(time.perf_counter() - start, 0.0)  # the tick's work, for the status view
        self.poll(now)

    # ---- real time ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if not isinstance(self.clock, RealClock) or not self.realtime:
            raise ValueError("start() is for real time: Appliance(..., clock=RealClock(), realtime=True)")
        self._stop.clear()
        self.engine.start_thread(self.clock)
        loop = ControlLoop(self.mgr, self.clock, pollers=[lambda: self.poll(self.clock.now()), *self.pollers])
        self._control = threading.Thread(target=loop.run, args=(self._stop,), name="control", daemon=True)
        self._control.start()

    def stop(self) -> None:
        self._stop.set()
        if self._control is not None:
            self._control.join(timeout=5)
            self._control = None
        self.engine.stop()

    def close(self) -> None:
        self.stop()
        close_box(self.mgr)

    def status(self) -> dict[str, Any]:
        """For the console and the demo's status view."""
        out = self.mgr.status()
        out["spans"] = {
            s: {"link": trunk.link_up, "aligned": self._aligned[s], "alarms": drv.status().alarms}
            for s, (_span, trunk, drv, _b) in self.pri.items()
        }
        for s, (_r2span, r2trunk, drv) in self.r2.items():
            alarms = drv.status().alarms
            out["spans"][s] = {"link": r2trunk.link_up, "aligned": self._aligned[s], "alarms": alarms,
                               "r2": r2trunk.status()}  # fmt: skip
        if self.fxo is not None:
            out["fxo"] = [p.state.value for p in self.fxo.ports]
        return out
