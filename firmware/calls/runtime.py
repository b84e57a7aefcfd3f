"""The control plane's loop in real time: the engine ticks on its own thread, this loop runs everything else.

    engine = MediaEngine(port, ...)
    mgr = open_box(engine, clock, data_dir, config_dir, epoch_offset=time.time() - clock.now(),
                   engine_events="queue")
    engine.start_thread(clock)
    loop = ControlLoop(mgr, clock, pollers=[board_pump, signalling_pump])
    loop.run(stop_event)            # or loop.step() from another loop

Each step: pollers (line owners feeding signalling events into call control), engine events (`mgr.pump()`),
then timers that are due (`clock.run_due()`). All call-control state is touched from this one thread.

While the engine ticks on its real-time thread, the loop steps right after each tick (it waits on
`engine.ticked`, at most two tick periods): call control then runs in the tick's idle time, and is mostly done
when the next tick starts, instead of holding the GIL at random moments inside ticks (numpy hands the GIL
over inside every large operation; each time the control thread takes it the tick waits up to the switch
interval to get it back). A step that outlasts the idle time is still preempted as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from board.clock import RealClock
from firmware.calls.manager import CallManager


class ControlLoop:
    def __init__(
        self,
        mgr: CallManager,
        clock: RealClock,
        pollers: Sequence[Callable[[], object]] = (),
        idle: float = 0.005,
    ) -> None:
        self.mgr = mgr
        self.clock = clock
        self.pollers = list(pollers)
        self.idle = idle
        self.steps = 0

    def step(self) -> None:
        for poll in self.pollers:
            poll()
        self.mgr.pump()
        self.clock.run_due()
        self.steps += 1

    def run(self, stop: threading.Event) -> None:
        engine = getattr(self.mgr, "engine", None)
        while not stop.is_set():
            self.step()
            if engine is not None and engine.running:
                engine.ticked.wait(2 * engine.period)  # timers run on tick boundaries (10 ms)
                engine.ticked.clear()
                continue
            deadline = self.clock.next_deadline()
            wait = self.idle if deadline is None else min(self.idle, max(0.0, deadline - self.clock.now()))
            stop.wait(wait)
