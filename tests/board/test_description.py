"""Board description YAML: good files load, bad ones are rejected with file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from board.description import BOARDS_DIR, BoardConfigError, load_board, parse_board

GOOD = """\
name: t
slots:
  - slot: 1
    card: e1
    spans:
      - span: 1
      - span: 2
        framing: cas
  - slot: 2
    card: fxo
    ports: 4
"""


def test_shipped_boards_load():
    for path in sorted(BOARDS_DIR.glob("*.yaml")):
        desc = load_board(path)
        assert desc.span_count >= 1 and desc.port_count >= 4


def test_good_board_fields():
    d = parse_board(GOOD, "g.yaml")
    assert d.span_count == 2 and d.port_count == 4
    assert d.spans[1].framing == "cas" and d.spans[0].framing == "ccs" and d.spans[0].crc4


def _error(text: str, tmp_path: Path) -> BoardConfigError:
    path = tmp_path / "board.yaml"
    path.write_text(text)
    with pytest.raises(BoardConfigError) as info:
        load_board(path)
    err = info.value
    assert err.file == str(path)
    assert str(err).startswith(f"{path}:{err.line}: ")
    return err


def test_unknown_card(tmp_path):
    err = _error(GOOD.replace("card: fxo", "card: e3"), tmp_path)
    assert err.line == 10 and "unknown card 'e3'" in err.reason


def test_span_out_of_range(tmp_path):
    err = _error(GOOD.replace("span: 2", "span: 9"), tmp_path)
    assert err.line == 7 and "9 out of range 1..8" in err.reason


def test_missing_field(tmp_path):
    err = _error(GOOD.replace("    ports: 4\n", ""), tmp_path)
    assert err.line == 9 and "missing field 'ports'" in err.reason


def test_missing_top_field(tmp_path):
    err = _error(GOOD.replace("name: t\n", ""), tmp_path)
    assert err.line == 1 and "missing field 'name'" in err.reason


def test_unknown_field_and_bad_value(tmp_path):
    err = _error(GOOD.replace("framing: cas", "framming: cas"), tmp_path)
    assert err.line == 8 and "unknown field 'framming'" in err.reason
    err = _error(GOOD.replace("framing: cas", "framing: r2"), tmp_path)
    assert err.line == 8 and "'r2' is not one of ccs, cas" in err.reason
    err = _error(GOOD.replace("ports: 4", "ports: four"), tmp_path)
    assert err.line == 11 and "expected an integer" in err.reason


def test_duplicate_span_and_slot(tmp_path):
    err = _error(GOOD.replace("span: 2", "span: 1"), tmp_path)
    assert err.line == 7 and "span 1 is defined twice" in err.reason
    err = _error(GOOD.replace("slot: 2", "slot: 1"), tmp_path)
    assert err.line == 9 and "slot 1 is already used" in err.reason


def test_gap_in_spans(tmp_path):
    err = _error(GOOD.replace("span: 2", "span: 3"), tmp_path)
    assert "missing span 2" in err.reason


def test_not_yaml_and_empty(tmp_path):
    err = _error("name: [unclosed\nslots: x\n", tmp_path)
    assert "not valid YAML" in err.reason and err.line >= 1
    err = _error("", tmp_path)
    assert "empty" in err.reason
    err = _error("- just\n- a list\n", tmp_path)
    assert "expected a mapping" in err.reason


def test_panel_pins_checked(tmp_path):
    text = GOOD + "panel:\n  leds: {power: 5, run: 5}\n"
    err = _error(text, tmp_path)
    assert err.line == 13 and "pin 5 of led run is already used by led power" in err.reason
    err = _error(GOOD + "panel:\n  span_leds: [[1, 2]]\n", tmp_path)
    assert "1 span LEDs for 2 spans" in err.reason


def test_unreadable_file(tmp_path):
    with pytest.raises(BoardConfigError) as info:
        load_board(tmp_path / "nope.yaml")
    assert "cannot read" in info.value.reason
