"""Real time: the engine on its own thread, call control on the control loop (engine events by queue)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from board.clock import RealClock
from firmware.calls.loopback import LoopNetwork
from firmware.calls.runtime import ControlLoop
from firmware.calls.setup import close_box, open_box
from firmware.engine import MediaEngine
from firmware.engine.ports import LoopPort


@pytest.mark.slow
def test_call_through_threads(tmp_path: Path, prompt_dir: Path) -> None:
    clock = RealClock()
    port = LoopPort(8)
    engine = MediaEngine(port, trunk_channels=range(4), detector_slots=4)
    mgr = open_box(engine, clock, tmp_path, prompt_dirs=[prompt_dir], epoch_offset=time.time() - clock.now(),
                   engine_events="queue")  # fmt: skip
    net = LoopNetwork(port, clock, 0, 4, "DAHDI/1", "trunk", "span1", inband=True)
    engine.start_thread(clock)
    stop = threading.Event()
    loop = ControlLoop(mgr, clock)
    worker = threading.Thread(target=loop.run, args=(stop,))
    worker.start()
    try:
        box = {}

        def call_in() -> None:
            box["leg"] = net.call_in(mgr, "13812345678", "95588")

        mgr.clock.call_later(0, call_in)  # everything that touches call control runs on the loop's thread
        deadline = time.monotonic() + 5
        while "leg" not in box or box["leg"].state != "up":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        leg = box["leg"]
        mgr.clock.call_later(0, lambda: leg.press("*"))  # in-band DTMF: detected on the tick thread
        deadline = time.monotonic() + 20
        while mgr.call_of(leg) is None or mgr.call_of(leg).vars.get("language") != "en":
            assert time.monotonic() < deadline, mgr.log[-3:]
            time.sleep(0.01)
        mgr.clock.call_later(0, leg.far_hangup)
        deadline = time.monotonic() + 5
        while mgr.store.cdr_count() == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert mgr.store.cdrs()[0].disposition == "ANSWERED"
        assert engine.stats.summary()["ticks"] > 10
    finally:
        stop.set()
        worker.join()
        engine.stop()
        close_box(mgr)
