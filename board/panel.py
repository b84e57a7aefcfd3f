"""Front panel LEDs and buttons (DESIGN.md "Admin surfaces").

Two small interfaces, `OutputPin.set(on)` and `InputPin.read() -> pressed`, with two back ends:
- `GpiozeroPins`: gpiozero devices; in simulation on gpiozero's MockFactory (tests drive and read the
  mock pins), on a Raspberry Pi on its native factories.
- `PeripheryPins`: python-periphery's character-device GPIO (`/dev/gpiochipN` lines), the hardware path on
  any Linux board (gpiozero's real pin factories only work on a Raspberry Pi).

Nothing here blinks on its own thread: `Panel.update(now, status)` sets every LED from the status and the
clock's time (blinking = 1 Hz, 50 % duty, phase from `now`), and `Panel.poll(now)` debounces the buttons and
reports presses and long presses, so the panel replays exactly in virtual time.

LED semantics: power on while running; run blinks as a heartbeat while the media tick runs, off when it
stalls; per E1 span a red/green pair: green in sync, red LOS/LOF, amber (both) RAI, blinking
amber AIS, blinking green loopback, off when the span is not configured; one LED per FXO port lit while
the line is in use (off hook) and blinking while it rings; alarm lit while any alarm is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from board.description import BoardDescription

if TYPE_CHECKING:
    from drivers.e1 import E1Card
    from drivers.fxo import FxoCard

BLINK_HZ = 1.0
DEBOUNCE_S = 0.03
LONG_PRESS_S = 5.0


class OutputPin(Protocol):
    def set(self, on: bool) -> None: ...


class InputPin(Protocol):
    def read(self) -> bool: ...  # True = pressed


class PinFactory(Protocol):
    def output(self, pin: int) -> OutputPin: ...

    def input(self, pin: int) -> InputPin: ...

    def close(self) -> None: ...


class _GpiozeroOut:
    def __init__(self, device: object) -> None:
        self.device = device

    def set(self, on: bool) -> None:
        self.device.value = 1 if on else 0  # type: ignore[attr-defined]


class _GpiozeroIn:
    def __init__(self, device: object) -> None:
        self.device = device

    def read(self) -> bool:
        return bool(self.device.is_active)  # type: ignore[attr-defined]


class GpiozeroPins:
    """gpiozero devices; `mock=True` (simulation) puts them on a MockFactory kept in `self.factory`."""

    def __init__(self, mock: bool = True) -> None:
        from gpiozero.pins.mock import MockFactory

        self.factory = MockFactory() if mock else None
        self._devices: list[object] = []

    def output(self, pin: int) -> OutputPin:
        from gpiozero import LED

        led = LED(pin, pin_factory=self.factory)
        self._devices.append(led)
        return _GpiozeroOut(led)

    def input(self, pin: int) -> InputPin:
        from gpiozero import DigitalInputDevice

        # Buttons pull the line to ground: pull-up on, active low.
        dev = DigitalInputDevice(pin, pull_up=True, pin_factory=self.factory)
        self._devices.append(dev)
        return _GpiozeroIn(dev)

    def close(self) -> None:
        for dev in self._devices:
            dev.close()  # type: ignore[attr-defined]
        self._devices.clear()
        if self.factory is not None:
            self.factory.reset()


class _PeripheryOut:
    def __init__(self, gpio: object) -> None:
        self.gpio = gpio

    def set(self, on: bool) -> None:
        self.gpio.write(on)  # type: ignore[attr-defined]


class _PeripheryIn:
    def __init__(self, gpio: object) -> None:
        self.gpio = gpio

    def read(self) -> bool:
        return not self.gpio.read()  # type: ignore[attr-defined]  # active low


class PeripheryPins:
    """GPIO character device lines through python-periphery (hardware path, any Linux board)."""

    def __init__(self, chip: str = "/dev/gpiochip0") -> None:
        self.chip = chip
        self._gpios: list[object] = []

    def output(self, pin: int) -> OutputPin:
        from periphery import GPIO

        gpio = GPIO(self.chip, pin, "low", label="callbox")
        self._gpios.append(gpio)
        return _PeripheryOut(gpio)

    def input(self, pin: int) -> InputPin:
        from periphery import GPIO

        gpio = GPIO(self.chip, pin, "in", bias="pull_up", label="callbox")
        self._gpios.append(gpio)
        return _PeripheryIn(gpio)

    def close(self) -> None:
        for gpio in self._gpios:
            gpio.close()  # type: ignore[attr-defined]
        self._gpios.clear()


# Span LED states (what the span LED shows), most severe first when several alarms are up.
SPAN_OFF = "off"
SPAN_SYNC = "sync"  # green
SPAN_RED = "red"  # LOS / LOF
SPAN_AIS = "ais"  # blinking amber
SPAN_RAI = "rai"  # amber
SPAN_LOOPBACK = "loopback"  # blinking green


def span_led_state(los: bool, lof: bool, ais: bool, rai: bool, loopback: bool) -> str:
    if ais:
        return SPAN_AIS
    if los or lof:
        return SPAN_RED
    if rai:
        return SPAN_RAI
    if loopback:
        return SPAN_LOOPBACK
    return SPAN_SYNC


@dataclass
class PanelStatus:
    running: bool = True
    spans: list[str] = field(default_factory=list)  # one SPAN_* per span, in span order
    fxo: list[str] = field(default_factory=list)  # per port: "idle" | "ringing" | "offhook"
    alarm: bool = False


def status_from_cards(e1card: E1Card | None, fxocard: FxoCard | None, running: bool = True) -> PanelStatus:
    """What the panel shows for the cards as the drivers see them now (one status read per span/port)."""
    from drivers import e1  # the drivers' extension is only needed by a panel that shows cards

    spans = []
    if e1card is not None:
        for span in e1card.spans:
            st = span.status()
            los, lof, ais, rai = st.has(e1.LOS), st.has(e1.LOF), st.has(e1.AIS), st.has(e1.RAI)
            spans.append(span_led_state(los, lof, ais, rai, bool(span.loops)))
    ports = []
    if fxocard is not None:
        for port in fxocard.ports:
            ps = port.status()
            ports.append("offhook" if ps.offhook else "ringing" if ps.ringing else "idle")
    return PanelStatus(running=running, spans=spans, fxo=ports, alarm=any(s != SPAN_SYNC for s in spans))


@dataclass(frozen=True)
class ButtonEvent:
    time: float
    name: str
    kind: str  # "press" (released before LONG_PRESS_S) | "long_press" (held LONG_PRESS_S: factory reset)


@dataclass
class _Button:
    pin: InputPin
    stable: bool = False
    candidate: bool = False
    since: float = 0.0
    pressed_at: float = 0.0
    long_sent: bool = False


class Panel:
    """The front panel of one board: LEDs set from a PanelStatus, buttons polled on the clock."""

    def __init__(self, desc: BoardDescription, pins: PinFactory) -> None:
        self.pins = pins
        p = desc.panel
        n_spans, n_ports = desc.span_count, desc.port_count
        # Pins the description leaves out get numbers after the highest one it uses (simulation boards).
        used = [
            *p.leds.values(),
            *[x for pair in p.span_leds for x in pair],
            *p.fxo_leds,
            *p.buttons.values(),
        ]
        spare = iter(range(max(used, default=-1) + 1, 10_000))
        leds = {name: p.leds[name] if name in p.leds else next(spare) for name in ("power", "run", "alarm")}
        span_pins = list(p.span_leds) or [(next(spare), next(spare)) for _ in range(n_spans)]
        fxo_pins = list(p.fxo_leds) or [next(spare) for _ in range(n_ports)]
        self.led_pins = {**leds}
        self.power = pins.output(leds["power"])
        self.run = pins.output(leds["run"])
        self.alarm = pins.output(leds["alarm"])
        self.span_pins = span_pins
        self.span_leds = [(pins.output(r), pins.output(g)) for r, g in span_pins]
        self.fxo_pins = fxo_pins
        self.fxo_leds = [pins.output(x) for x in fxo_pins]
        self.button_pins = dict(p.buttons)
        self.buttons = {name: _Button(pins.input(pin)) for name, pin in p.buttons.items()}

    @staticmethod
    def blink_on(now: float) -> bool:
        return (now * BLINK_HZ) % 1.0 < 0.5

    def update(self, now: float, status: PanelStatus) -> None:
        blink = self.blink_on(now)
        self.power.set(True)
        self.run.set(status.running and blink)
        self.alarm.set(status.alarm)
        for i, (red, green) in enumerate(self.span_leds):
            state = status.spans[i] if i < len(status.spans) else SPAN_OFF
            r, g = {
                SPAN_OFF: (False, False),
                SPAN_SYNC: (False, True),
                SPAN_RED: (True, False),
                SPAN_RAI: (True, True),
                SPAN_AIS: (blink, blink),
                SPAN_LOOPBACK: (False, blink),
            }[state]
            red.set(r)
            green.set(g)
        for i, led in enumerate(self.fxo_leds):
            use = status.fxo[i] if i < len(status.fxo) else "idle"
            led.set(use == "offhook" or (use == "ringing" and blink))

    def poll(self, now: float) -> list[ButtonEvent]:
        """Debounce every button (DEBOUNCE_S) and report presses and long presses."""
        events: list[ButtonEvent] = []
        for name, b in self.buttons.items():
            level = b.pin.read()
            if level != b.candidate:
                b.candidate, b.since = level, now
            if b.candidate != b.stable and now - b.since >= DEBOUNCE_S:
                b.stable = b.candidate
                if b.stable:
                    b.pressed_at, b.long_sent = b.since, False
                elif not b.long_sent:
                    events.append(ButtonEvent(now, name, "press"))
            if b.stable and not b.long_sent and now - b.pressed_at >= LONG_PRESS_S:
                b.long_sent = True
                events.append(ButtonEvent(now, name, "long_press"))
        return events

    def close(self) -> None:
        for led in (self.power, self.run, self.alarm, *[x for pair in self.span_leds for x in pair]):
            led.set(False)
        for led in self.fxo_leds:
            led.set(False)
        self.pins.close()
