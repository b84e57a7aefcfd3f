"""The panel's hardware path (python-periphery character-device GPIO) against a fake gpiochip: the lines
it requests, the LED levels it writes, active-low buttons and the long press that means factory reset."""

from __future__ import annotations

import pytest

from board.description import load_board
from board.panel import LONG_PRESS_S, SPAN_RED, SPAN_SYNC, Panel, PanelStatus, PeripheryPins


class FakeGpio:
    """Stands in for periphery.GPIO on a gpiochip: records how each line was requested and written."""

    lines: dict[int, FakeGpio] = {}

    def __init__(self, path: str, line: int, direction: str, **kwargs: object) -> None:
        assert path == "/dev/gpiochip3"
        self.line, self.direction, self.kwargs = line, direction, kwargs
        self.level = direction == "high"
        self.closed = False
        FakeGpio.lines[line] = self

    def write(self, value: bool) -> None:
        assert self.direction in ("low", "high"), "write to an input line"
        self.level = bool(value)

    def read(self) -> bool:
        return self.level

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_chip(monkeypatch):
    import periphery

    FakeGpio.lines = {}
    monkeypatch.setattr(periphery, "GPIO", FakeGpio)
    return FakeGpio.lines


def test_leds_and_buttons_through_periphery(fake_chip):
    panel = Panel(load_board("sim-2e1-4fxo"), PeripheryPins("/dev/gpiochip3"))
    power = panel.led_pins["power"]
    assert fake_chip[power].direction == "low" and fake_chip[power].kwargs["label"] == "callbox"
    buttons = list(panel.button_pins.values())
    assert buttons and all(
        fake_chip[b].direction == "in" and fake_chip[b].kwargs["bias"] == "pull_up" for b in buttons
    )
    panel.update(
        0.1, PanelStatus(running=True, spans=[SPAN_SYNC, SPAN_RED], fxo=["offhook", "idle", "idle", "idle"])
    )
    assert fake_chip[power].level and fake_chip[panel.led_pins["run"]].level
    (red1, green1), (red2, green2) = panel.span_pins[:2]
    assert (fake_chip[red1].level, fake_chip[green1].level) == (False, True)
    assert (fake_chip[red2].level, fake_chip[green2].level) == (True, False)
    assert [fake_chip[p].level for p in panel.fxo_pins] == [True, False, False, False]
    # buttons are active low: pulled up when released, pressed pulls the line to 0
    for b in buttons:
        fake_chip[b].level = True
    assert panel.poll(1.0) == []
    pin = buttons[0]
    fake_chip[pin].level = False
    events = []
    t = 1.0
    while t < 1.0 + LONG_PRESS_S + 0.5:
        t += 0.05
        events += panel.poll(t)
    assert [e.kind for e in events] == ["long_press"]
    panel.close()
    assert not fake_chip[power].level and all(line.closed for line in fake_chip.values())
