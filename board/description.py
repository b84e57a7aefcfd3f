"""The board description: which cards sit in which slots, how many spans and ports they carry.

A small YAML file under `board/boards/` (or anywhere, given by path). It is parsed into PyYAML's node tree
first, so every error names the file, the line and the reason (`BoardConfigError`), e.g.

    board/boards/bad.yaml:7: slot 2: unknown card 'e3' (known: e1, fxo)

Shape of the file (every field is checked, unknown fields are errors too):

    name: callbox-sim            # free text
    backend: sim                 # sim (the C board model) | hardware (spidev)
    slots:
      - slot: 1                  # 1..4, each at most once
        card: e1                 # e1 | fxo
        spans:                   # 1..8 spans on the board in total, numbered 1..8
          - span: 1
            framing: ccs         # ccs (D-channel on TS16) | cas (ABCD bits on TS16)
            crc4: true
            linecode: hdb3       # hdb3 | ami
            timing: line         # line (recover the far end's clock) | internal
      - slot: 2
        card: fxo
        ports: 4                 # 4..8
        spidev: /dev/spidev0.1   # hardware backend only (required there): SPI device of the card
        dma: /dev/uio1           #   and its DMA area (UIO); speed_hz: SPI clock (default 10 MHz)
    panel:                       # optional: GPIO lines of the front panel (BCM numbers / gpiochip lines)
      chip: /dev/gpiochip0
      leds: {power: 5, run: 6, alarm: 13}
      span_leds: [[16, 20], [19, 26]]   # [red, green] per span, in span order
      fxo_leds: [21, 12, 7, 8]          # one per port, in port order
      buttons: {select: 17, back: 27}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_SLOTS = 4
MAX_SPANS = 8
FXO_PORTS = (4, 8)
CARDS = ("e1", "fxo")
BOARDS_DIR = Path(__file__).resolve().parent / "boards"


class BoardConfigError(ValueError):
    """A board description that cannot be used; `str()` is `file:line: reason`."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class SpanConfig:
    span: int  # 1..8, board-wide
    framing: str = "ccs"
    crc4: bool = True
    linecode: str = "hdb3"
    timing: str = "line"


@dataclass(frozen=True)
class Card:
    slot: int
    kind: str  # "e1" | "fxo"
    spans: tuple[SpanConfig, ...] = ()
    ports: int = 0
    spidev: str = ""  # hardware backend: the card's SPI device (/dev/spidevB.C)
    dma: str = ""  # hardware backend: the card's DMA area (/dev/uioN)
    speed_hz: int = 10_000_000


@dataclass(frozen=True)
class PanelPins:
    chip: str = "/dev/gpiochip0"
    leds: dict[str, int] = field(default_factory=dict)
    span_leds: tuple[tuple[int, int], ...] = ()
    fxo_leds: tuple[int, ...] = ()
    buttons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BoardDescription:
    name: str
    backend: str
    cards: tuple[Card, ...]
    panel: PanelPins
    source: str = "<string>"

    @property
    def spans(self) -> tuple[SpanConfig, ...]:
        return tuple(sorted((s for c in self.cards for s in c.spans), key=lambda s: s.span))

    @property
    def span_count(self) -> int:
        return len(self.spans)

    @property
    def port_count(self) -> int:
        return sum(c.ports for c in self.cards)


class _Checker:
    """Walks the YAML node tree; every complaint carries the node's line."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, node: yaml.Node | None, reason: str) -> BoardConfigError:
        line = node.start_mark.line + 1 if node is not None else 1
        return BoardConfigError(self.file, line, reason)

    def mapping(self, node: yaml.Node, what: str, allowed: dict[str, bool]) -> dict[str, yaml.Node]:
        """A mapping with the keys in `allowed` (value: required?); unknown or duplicate keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what}: expected a mapping")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                raise self.fail(key_node, f"{what}: unknown field {key!r} (allowed: {', '.join(allowed)})")
            if key in out:
                raise self.fail(key_node, f"{what}: field {key!r} given twice")
            out[key] = value_node
        for key, required in allowed.items():
            if required and key not in out:
                raise self.fail(node, f"{what}: missing field {key!r}")
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what}: expected a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what}: expected a single value")
        return _construct(node)

    def integer(self, node: yaml.Node, what: str, lo: int, hi: int) -> int:
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, f"{what}: expected an integer, got {node.value!r}")
        if not lo <= value <= hi:
            raise self.fail(node, f"{what}: {value} out of range {lo}..{hi}")
        return value

    def string(self, node: yaml.Node, what: str, choices: tuple[str, ...] | None = None) -> str:
        value = self.scalar(node, what)
        if not isinstance(value, str):
            raise self.fail(node, f"{what}: expected text, got {node.value!r}")
        if choices is not None and value not in choices:
            raise self.fail(node, f"{what}: {value!r} is not one of {', '.join(choices)}")
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            raise self.fail(node, f"{what}: expected true or false, got {node.value!r}")
        return value


def _construct(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _span(ck: _Checker, node: yaml.Node, what: str) -> SpanConfig:
    f = ck.mapping(
        node, what, {"span": True, "framing": False, "crc4": False, "linecode": False, "timing": False}
    )
    number = ck.integer(f["span"], f"{what}: span", 1, MAX_SPANS)
    kw: dict[str, Any] = {"span": number}
    if "framing" in f:
        kw["framing"] = ck.string(f["framing"], f"span {number}: framing", ("ccs", "cas"))
    if "crc4" in f:
        kw["crc4"] = ck.boolean(f["crc4"], f"span {number}: crc4")
    if "linecode" in f:
        kw["linecode"] = ck.string(f["linecode"], f"span {number}: linecode", ("hdb3", "ami"))
    if "timing" in f:
        kw["timing"] = ck.string(f["timing"], f"span {number}: timing", ("line", "internal"))
    return SpanConfig(**kw)


def _card(ck: _Checker, node: yaml.Node, index: int) -> tuple[Card, dict[str, yaml.Node]]:
    what = f"slots[{index}]"
    if not isinstance(node, yaml.MappingNode):
        raise ck.fail(node, f"{what}: expected a mapping")
    keys = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    if "card" not in keys:
        raise ck.fail(node, f"{what}: missing field 'card'")
    kind_node = keys["card"]
    kind = ck.scalar(kind_node, f"{what}: card")
    if kind not in CARDS:
        raise ck.fail(kind_node, f"{what}: unknown card {kind!r} (known: {', '.join(CARDS)})")
    hw = {"spidev": False, "dma": False, "speed_hz": False}
    if kind == "e1":
        f = ck.mapping(node, what, {"slot": True, "card": True, "spans": True, **hw})
    else:
        f = ck.mapping(node, what, {"slot": True, "card": True, "ports": True, **hw})
    slot = ck.integer(f["slot"], f"{what}: slot", 1, MAX_SLOTS)
    io: dict[str, Any] = {}
    for key in ("spidev", "dma"):
        if key in f:
            io[key] = ck.string(f[key], f"slot {slot}: {key}")
            if not io[key].startswith("/dev/"):
                raise ck.fail(f[key], f"slot {slot}: {key}: expected a path under /dev/, got {io[key]!r}")
    if "speed_hz" in f:
        io["speed_hz"] = ck.integer(f["speed_hz"], f"slot {slot}: speed_hz", 100_000, 50_000_000)
    if kind == "e1":
        span_nodes = ck.sequence(f["spans"], f"slot {slot}: spans")
        if not span_nodes:
            raise ck.fail(f["spans"], f"slot {slot}: an e1 card needs at least one span")
        spans = tuple(_span(ck, n, f"slot {slot}: spans[{i}]") for i, n in enumerate(span_nodes))
        return Card(slot=slot, kind=kind, spans=spans, **io), f
    ports = ck.integer(f["ports"], f"slot {slot}: ports", *FXO_PORTS)
    return Card(slot=slot, kind=kind, ports=ports, **io), f


def _pin_list(ck: _Checker, node: yaml.Node, what: str) -> list[tuple[int, yaml.Node]]:
    return [(ck.integer(n, what, 0, 1023), n) for n in ck.sequence(node, what)]


def _panel(ck: _Checker, node: yaml.Node) -> PanelPins:
    f = ck.mapping(
        node, "panel", {"chip": False, "leds": False, "span_leds": False, "fxo_leds": False, "buttons": False}
    )
    used: dict[int, str] = {}

    def claim(pin: int, pin_node: yaml.Node, name: str) -> int:
        if pin in used:
            raise ck.fail(pin_node, f"panel: pin {pin} of {name} is already used by {used[pin]}")
        used[pin] = name
        return pin

    chip = ck.string(f["chip"], "panel: chip") if "chip" in f else PanelPins.chip
    leds: dict[str, int] = {}
    if "leds" in f:
        lf = ck.mapping(f["leds"], "panel: leds", {"power": False, "run": False, "alarm": False})
        leds = {k: claim(ck.integer(v, f"panel: leds: {k}", 0, 1023), v, f"led {k}") for k, v in lf.items()}
    span_leds: list[tuple[int, int]] = []
    if "span_leds" in f:
        for i, pair in enumerate(ck.sequence(f["span_leds"], "panel: span_leds")):
            pins = _pin_list(ck, pair, f"panel: span_leds[{i}]")
            if len(pins) != 2:
                raise ck.fail(pair, f"panel: span_leds[{i}]: expected [red, green]")
            red = claim(pins[0][0], pins[0][1], f"span {i + 1} red")
            green = claim(pins[1][0], pins[1][1], f"span {i + 1} green")
            span_leds.append((red, green))
    fxo_leds: list[int] = []
    if "fxo_leds" in f:
        for i, (pin, pin_node) in enumerate(_pin_list(ck, f["fxo_leds"], "panel: fxo_leds")):
            fxo_leds.append(claim(pin, pin_node, f"fxo port {i + 1}"))
    buttons: dict[str, int] = {}
    if "buttons" in f:
        bnode = f["buttons"]
        if not isinstance(bnode, yaml.MappingNode):
            raise ck.fail(bnode, "panel: buttons: expected a mapping")
        for k, v in bnode.value:
            name = ck.string(k, "panel: buttons: name")
            buttons[name] = claim(ck.integer(v, f"panel: buttons: {name}", 0, 1023), v, f"button {name}")
    return PanelPins(
        chip=chip, leds=leds, span_leds=tuple(span_leds), fxo_leds=tuple(fxo_leds), buttons=buttons
    )


def parse_board(text: str, source: str = "<string>") -> BoardDescription:
    """Parse and validate a board description; raises BoardConfigError with file, line and reason."""
    ck = _Checker(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise BoardConfigError(source, line, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise BoardConfigError(source, 1, f"not valid YAML: {exc}") from None
    if root is None:
        raise BoardConfigError(source, 1, "empty board description")
    f = ck.mapping(root, "board", {"name": True, "backend": False, "slots": True, "panel": False})
    name = ck.string(f["name"], "name")
    backend = ck.string(f["backend"], "backend", ("sim", "hardware")) if "backend" in f else "sim"
    cards: list[Card] = []
    slots_seen: dict[int, int] = {}
    spans_seen: dict[int, int] = {}
    for i, card_node in enumerate(ck.sequence(f["slots"], "slots")):
        card, fields = _card(ck, card_node, i)
        if card.slot in slots_seen:
            raise ck.fail(fields["slot"], f"slot {card.slot} is already used (line {slots_seen[card.slot]})")
        slots_seen[card.slot] = fields["slot"].start_mark.line + 1
        if card.kind == "e1":
            span_nodes = fields["spans"].value
            for span, span_node in zip(card.spans, span_nodes, strict=True):
                if span.span in spans_seen:
                    first = spans_seen[span.span]
                    raise ck.fail(span_node, f"span {span.span} is defined twice (first at line {first})")
                spans_seen[span.span] = span_node.start_mark.line + 1
        if backend == "hardware" and not card.spidev:
            raise ck.fail(card_node, f"slot {card.slot}: missing field 'spidev' (hardware backend)")
        cards.append(card)
    if not cards:
        raise ck.fail(f["slots"], "slots: the board has no cards")
    if len(spans_seen) > MAX_SPANS:
        raise ck.fail(f["slots"], f"slots: {len(spans_seen)} spans, the board takes at most {MAX_SPANS}")
    if spans_seen and sorted(spans_seen) != list(range(1, len(spans_seen) + 1)):
        missing = sorted(set(range(1, max(spans_seen) + 1)) - set(spans_seen))
        raise ck.fail(f["slots"], f"spans must be numbered 1..N without gaps; missing span {missing[0]}")
    if sum(1 for c in cards if c.kind == "fxo") > 1:
        raise ck.fail(f["slots"], "slots: at most one fxo card per board")
    panel = _panel(ck, f["panel"]) if "panel" in f else PanelPins()
    desc = BoardDescription(name=name, backend=backend, cards=tuple(cards), panel=panel, source=source)
    if panel.span_leds and len(panel.span_leds) != desc.span_count:
        raise ck.fail(f["panel"], f"panel: {len(panel.span_leds)} span LEDs for {desc.span_count} spans")
    if panel.fxo_leds and len(panel.fxo_leds) != desc.port_count:
        raise ck.fail(f["panel"], f"panel: {len(panel.fxo_leds)} FXO LEDs for {desc.port_count} ports")
    return desc


def load_board(path: str | Path) -> BoardDescription:
    """Load a board description from a file path, or by name from board/boards/ (`sim-2e1-4fxo`)."""
    p = Path(path)
    if not p.exists() and not p.suffix and (BOARDS_DIR / f"{p}.yaml").exists():
        p = BOARDS_DIR / f"{p}.yaml"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise BoardConfigError(str(p), 0, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise BoardConfigError(str(p), 1, f"not UTF-8 text: {exc.reason}") from None
    return parse_board(text, str(p))


def simple_board(spans: int, ports: int, name: str = "sim", timing: str = "line") -> BoardDescription:
    """A board built in code (benchmarks, tests): one E1 card with `spans`, one FXO card with `ports`."""
    cards: list[Card] = []
    if spans:
        cards.append(
            Card(slot=1, kind="e1", spans=tuple(SpanConfig(span=i + 1, timing=timing) for i in range(spans)))
        )
    if ports:
        cards.append(Card(slot=2, kind="fxo", ports=ports))
    return BoardDescription(name=name, backend="sim", cards=tuple(cards), panel=PanelPins(), source="<code>")
