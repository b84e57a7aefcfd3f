"""Assembling call control: what `callbox run`, the demo and the tests call.

    box = open_box(engine, clock, data_dir, config_dir=None)   # CallManager with store, flows, prompts
    reload_config(box, config_dir)                             # all-or-nothing; ConfigError keeps the old

A config directory holds `dialplan.yaml` and `flows/*.yaml`; without one the defaults shipped in
firmware/calls/default and firmware/ivr/flows are used. Prompts: `DATA/prompts/custom` (admins'
recordings) over `DATA/prompts/generated` (built with `callbox prompts build`, or on first start).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from board.clock import Clock
from firmware.calls.dialplan import Dialplan, load_dialplan
from firmware.calls.manager import CallManager
from firmware.engine import MediaEngine
from firmware.engine.record import RecordingWriter
from firmware.ivr.flow import Flow, load_flows
from firmware.prompts import PromptLibrary, build
from firmware.storage import Store

DEFAULT_DIALPLAN = Path(__file__).with_name("default") / "dialplan.yaml"
DEFAULT_FLOWS = Path(__file__).resolve().parent.parent / "ivr" / "flows"


def load_config(config_dir: str | Path | None) -> tuple[Dialplan, dict[str, Flow]]:
    """Load and check a whole configuration; raises ConfigError (file:line: field: message)."""
    if config_dir is None:
        dialplan_path, flows_dir = DEFAULT_DIALPLAN, DEFAULT_FLOWS
    else:
        d = Path(config_dir)
        dialplan_path = d / "dialplan.yaml" if (d / "dialplan.yaml").exists() else DEFAULT_DIALPLAN
        flows_dir = d / "flows" if (d / "flows").is_dir() else DEFAULT_FLOWS
    # queues named by flows are checked against the dialplan, flows named by routes against the flows
    import yaml

    raw = yaml.safe_load(dialplan_path.read_text(encoding="utf-8")) if dialplan_path.exists() else {}
    queues = set((raw or {}).get("queues", {}) or {}) if isinstance(raw, dict) else set()
    flows = load_flows(flows_dir, queues)
    plan = load_dialplan(dialplan_path, set(flows))
    return plan, flows


def open_box(
    engine: MediaEngine,
    clock: Clock,
    data_dir: str | Path,
    config_dir: str | Path | None = None,
    epoch_offset: float = 0.0,
    threaded_recorder: bool = True,
    prompt_dirs: list[str | Path] | None = None,
    build_prompts: bool = True,
    engine_events: str = "listener",
) -> CallManager:
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    plan, flows = load_config(config_dir)
    store = Store(data / "callbox.db")
    recorder = RecordingWriter(threaded=threaded_recorder)
    if prompt_dirs is None:
        generated = data / "prompts" / "generated"
        if build_prompts:
            build(generated)
        prompt_dirs = [data / "prompts" / "custom", generated]
    prompts = PromptLibrary(prompt_dirs)
    prompts.engine = engine
    mgr = CallManager(engine, store, clock, plan, epoch_offset, data, recorder, prompts, engine_events)
    recorder.on_alarm = mgr.alarm
    mgr.flows = dict(flows)
    return mgr


def reload_config(mgr: CallManager, config_dir: str | Path | None) -> None:
    """Swap in a new configuration; on any error the running one stays and ConfigError is raised."""
    plan, flows = load_config(config_dir)
    mgr.set_plan(plan)
    mgr.flows = dict(flows)


def close_box(mgr: CallManager) -> Any:
    if mgr.recorder is not None:
        mgr.recorder.stop()
    mgr.store.close()
