"""MFC/R2 settings from the dialplan's `r2:` section: validation (file:line: field in every error) and the
settings reaching the span's R2 stack through `callbox run`'s path (Appliance with a config directory): with
`max_dnis` configured the box ends the called number at its last digit instead of after 3 s of silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from board.clock import VirtualClock
from firmware.calls.dialplan import loads_dialplan
from firmware.calls.setup import DEFAULT_DIALPLAN
from firmware.config import ConfigError
from firmware.signalling.r2 import CHINA, CHINA_CD11, ITU
from tests.calls.test_r2 import MONDAY_10AM, cas_board

BASE = "timezone: Asia/Shanghai\n"


def test_r2_section_builds_a_config_per_span() -> None:
    plan = loads_dialplan(
        BASE
        + "r2:\n"
        + "  1: {variant: china, max_dnis: 5, max_ani: 11, category: 1, kd: 3}\n"
        + "  2: {variant: itu, get_ani: false, t_digit: 2.5}\n"
        + "  3: {variant: china_cd11}\n"
        + "  4:\n"
    )
    assert set(plan.r2) == {1, 2, 3, 4}
    one = plan.r2[1]
    assert one.variant is CHINA and one.max_dnis == 5 and one.max_ani == 11 and one.kd == 3
    assert plan.r2[2].variant is ITU and plan.r2[2].get_ani is False and plan.r2[2].t_digit == 2.5
    assert plan.r2[3].variant is CHINA_CD11
    assert plan.r2[4].variant is CHINA and plan.r2[4].max_dnis == 0  # empty entry: the defaults
    assert loads_dialplan(BASE).r2 == {}


@pytest.mark.parametrize(
    ("body", "line", "field", "words"),
    [
        ("r2:\n  1: {max_dnis: -1}\n", 3, "r2.1.max_dnis", "minimum"),
        ("r2:\n  1:\n    variant: japan\n", 4, "r2.1.variant", "japan"),
        ("r2:\n  1:\n    category: 16\n", 4, "r2.1.category", "maximum"),
        ("r2:\n  1:\n    t_digit: 0\n", 4, "r2.1.t_digit", "0"),
        ("r2:\n  1:\n    hunt: up\n", 4, "r2.1.hunt", "unknown field"),
        ("r2:\n  1: {max_dnis: 5}\n  x: {max_dnis: 4}\n", 4, "r2.x", "span number"),
        ("r2:\n  0: {}\n", 3, "r2.0", "span number"),
        ("r2: [1, 2]\n", 2, "r2", "object"),
    ],
)
def test_r2_section_errors_name_file_line_and_field(body: str, line: int, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        loads_dialplan(BASE + body, file="dialplan.yaml")
    e = exc.value
    assert (e.file, e.line, e.field) == ("dialplan.yaml", line, field), str(e)
    assert words in e.message, str(e)


def _time_to_answer(tmp_path: Path, prompt_dir: Path, r2_section: str) -> float:
    """Line time from the exchange's seizure until the box's IVR answered the R2 call (config dir only)."""
    from firmware.calls.appliance import Appliance
    from tools.linesim.r2exchange import R2Exchange
    from tools.linesim.world import World

    config = tmp_path / "config"
    config.mkdir(parents=True)
    (config / "dialplan.yaml").write_text(DEFAULT_DIALPLAN.read_text(encoding="utf-8") + r2_section)
    clock = VirtualClock(start=MONDAY_10AM)
    w = World(cas_board(), tmp_path / "run", clock=clock)
    app = Appliance(
        w.board, tmp_path / "data", config, clock=clock, prompt_dirs=[prompt_dir], extension_rows=4
    )
    ex = R2Exchange(w, 0, answer_after=1.0)
    w.on_tick.append(ex.tick)
    w.on_tick.append(app.on_tick)
    w.attach()
    try:
        clock.advance(3.0)
        call = ex.call_in("13812345678", "95588")
        assert call is not None
        t0 = clock.now()
        while call.state != "up" and clock.now() - t0 < 12.0:
            clock.advance(0.1)
        assert call.state == "up", ex.errors
        span, trunk, _drv = app.r2[1]
        (leg,) = trunk.legs.values()
        assert app.mgr.call_of(leg).cdr.dst == "95588"
        return clock.now() - t0
    finally:
        w.close()
        app.close()


def test_max_dnis_from_the_config_removes_the_end_of_number_wait(tmp_path: Path, prompt_dir: Path) -> None:
    configured = _time_to_answer(tmp_path / "a", prompt_dir, "r2:\n  1: {max_dnis: 5, category: 1}\n")
    by_silence = _time_to_answer(tmp_path / "b", prompt_dir, "")
    # the same compelled sequence either way; without max_dnis the box waits t_digit (3 s) of silence
    print(f"R2 call in to answer: max_dnis=5 {configured:.2f} s, end by silence {by_silence:.2f} s")
    assert configured < 5.0, configured
    assert 2.5 < by_silence - configured < 3.6, (configured, by_silence)
