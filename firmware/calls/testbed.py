"""A whole box in one process on a virtual clock: engine + in-process lines + call control.

Tests use it, and so can the demo until the board and SIP join: `Testbed.pstn` is a span of trunk lines
(callers dial in with `call_in`), `Testbed.fxo` analog lines, `Testbed.phones` the extensions (agents'
phones: `phones.add_phone("1001", PhoneBehaviour(answer_after=2))`). Time moves with `run(seconds)`.
"""

from __future__ import annotations

from pathlib import Path

from board.clock import VirtualClock
from firmware.calls.loopback import LoopLeg, LoopNetwork
from firmware.calls.manager import Call, CallManager
from firmware.calls.setup import close_box, open_box
from firmware.engine import MediaEngine
from firmware.engine.ports import LoopPort


class Testbed:
    def __init__(
        self,
        data_dir: str | Path,
        start_epoch: float,
        config_dir: str | Path | None = None,
        prompt_dirs: list[str | Path] | None = None,
        trunk_lines: int = 30,
        fxo_lines: int = 4,
        extensions: int = 24,
        inband: bool = True,
        detector_slots: int = 8,
        tick_ms: int = 10,
    ) -> None:
        self.clock = VirtualClock(start=start_epoch)
        channels = trunk_lines + fxo_lines + extensions
        self.port = LoopPort(channels)
        self.engine = MediaEngine(
            self.port,
            tick_ms=tick_ms,
            trunk_channels=range(trunk_lines + fxo_lines),
            detector_slots=detector_slots,
        )
        self.mgr: CallManager = open_box(
            self.engine, self.clock, data_dir, config_dir, threaded_recorder=False, prompt_dirs=prompt_dirs
        )
        self.pstn = LoopNetwork(self.port, self.clock, 0, trunk_lines, "DAHDI/1", "trunk", "span1", inband)
        self.fxo = LoopNetwork(self.port, self.clock, trunk_lines, fxo_lines, "FXO/1", "fxo", "fxo", inband)
        first_ext = trunk_lines + fxo_lines
        self.phones = LoopNetwork(self.port, self.clock, first_ext, extensions, "SIP", "local", None, inband)
        self.mgr.trunks = {"span1": self.pstn, "span2": self.pstn, "fxo": self.fxo}
        self.mgr.extension_lines = self.phones
        self.engine.attach(self.clock)

    def run(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def call_in(
        self, caller: str, dnis: str = "95588", name: str | None = None, fxo: bool = False
    ) -> LoopLeg:
        net = self.fxo if fxo else self.pstn
        leg = net.call_in(self.mgr, caller, dnis, name)
        assert leg is not None, "no free line"
        return leg

    def call_of(self, leg: LoopLeg) -> Call | None:
        return self.mgr.call_of(leg)

    def close(self) -> None:
        close_box(self.mgr)
