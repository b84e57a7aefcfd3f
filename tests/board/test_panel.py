"""Front panel: LED semantics of DESIGN.md on gpiozero's MockFactory, buttons debounced on the clock."""

from __future__ import annotations

import pytest

from board.description import load_board, simple_board
from board.panel import (
    LONG_PRESS_S,
    GpiozeroPins,
    Panel,
    PanelStatus,
    span_led_state,
)


@pytest.fixture
def panel():
    pins = GpiozeroPins(mock=True)
    p = Panel(load_board("sim-2e1-4fxo"), pins)
    yield p, pins.factory
    p.close()


def _state(factory, pin: int) -> bool:
    return bool(factory.pin(pin).state)


def _span(factory, panel: Panel, i: int) -> tuple[bool, bool]:
    red, green = panel.span_pins[i]
    return _state(factory, red), _state(factory, green)


def test_span_led_colours(panel):
    p, f = panel
    cases = {
        (False, False, False, False, False): ((False, True), (False, True)),  # green in sync
        (True, False, False, False, False): ((True, False), (True, False)),  # red LOS
        (False, True, False, False, False): ((True, False), (True, False)),  # red LOF
        (False, False, False, True, False): ((True, True), (True, True)),  # amber RAI
        (False, False, True, False, False): ((True, True), (False, False)),  # blinking amber AIS
        (False, False, False, False, True): ((False, True), (False, False)),  # blinking green loopback
    }
    for flags, (lit, dark) in cases.items():
        state = span_led_state(*flags)
        p.update(10.25, PanelStatus(spans=[state, "off"]))  # blink phase on
        assert _span(f, p, 0) == lit, (flags, state)
        assert _span(f, p, 1) == (False, False)
        p.update(10.75, PanelStatus(spans=[state, "off"]))  # blink phase off
        assert _span(f, p, 0) == dark, (flags, state)


def test_power_run_alarm_fxo(panel):
    p, f = panel
    p.update(0.1, PanelStatus(running=True, fxo=["offhook", "ringing", "idle", "idle"], alarm=True))
    assert _state(f, 5) and _state(f, 6) and _state(f, 13)
    assert [_state(f, x) for x in p.fxo_pins] == [True, True, False, False]
    p.update(0.6, PanelStatus(running=True, fxo=["offhook", "ringing", "idle", "idle"], alarm=False))
    assert _state(f, 5) and not _state(f, 6) and not _state(f, 13)
    assert [_state(f, x) for x in p.fxo_pins] == [True, False, False, False]


def test_buttons_press_and_long_press(panel):
    p, f = panel
    pin = f.pin(17)
    t = 0.0
    assert p.poll(t) == []
    pin.drive_low()  # pressed (active low)
    t += 0.01
    assert p.poll(t) == []
    pin.drive_high()  # a 10 ms bounce: ignored
    t += 0.05
    assert p.poll(t) == []
    pin.drive_low()
    for _ in range(10):
        t += 0.01
        assert p.poll(t) == []
    pin.drive_high()
    events = []
    for _ in range(5):
        t += 0.01
        events += p.poll(t)
    assert [(e.name, e.kind) for e in events] == [("select", "press")]
    pin.drive_low()
    held_at = t
    events = []
    while t < 20:
        t += 0.1
        events += p.poll(t)
    assert [(e.name, e.kind) for e in events] == [("select", "long_press")]
    assert held_at + LONG_PRESS_S <= events[0].time <= held_at + LONG_PRESS_S + 0.2
    pin.drive_high()
    for _ in range(5):
        t += 0.01
        assert p.poll(t) == []  # a long press is not also a press


def test_default_pins_for_boards_without_panel():
    pins = GpiozeroPins(mock=True)
    p = Panel(simple_board(8, 8), pins)
    assert len(p.span_leds) == 8 and len(p.fxo_leds) == 8
    all_pins = [*p.led_pins.values(), *[x for pr in p.span_pins for x in pr], *p.fxo_pins]
    assert len(set(all_pins)) == len(all_pins)
    p.close()
