"""Assembling call control: what `callbox run`, the demo and the tests call.

    box = open_box(engine, clock, data_dir, config_dir=None)   # CallManager with store, flows, prompts
    reload_config(box, config_dir)                             # all-or-nothing; ConfigError keeps the old

A config directory holds `dialplan.yaml` and `flows/*.yaml`; without one the defaults shipped in
firmware/calls/default and firmware/ivr/flows are used. Prompts: `DATA/prompts/custom` (admins'
recordings) over `DATA/prompts/generated` (built with `callbox prompts build`, or on first start).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from board.clock import Clock
from firmware.acd.config import AcdConfig, acd_config_from_dialplan
from firmware.acd.core import Acd
from firmware.acd.director import AcdDirector
from firmware.acd.queuelog import QueueLog
from firmware.acd.recordings import RecordingIndex
from firmware.acd.voicemail import Voicemail, load_mailboxes
from firmware.calls.dialplan import Dialplan, load_dialplan
from firmware.calls.manager import CallManager
from firmware.config import load_yaml
from firmware.engine import MediaEngine
from firmware.engine.record import RecordingWriter
from firmware.ivr.flow import Flow, load_flows
from firmware.prompts import PromptLibrary, build
from firmware.storage import Store

DEFAULT_DIALPLAN = Path(__file__).with_name("default") / "dialplan.yaml"
DEFAULT_FLOWS = Path(__file__).resolve().parent.parent / "ivr" / "flows"


def _config_paths(config_dir: str | Path | None) -> tuple[Path, Path]:
    if config_dir is None:
        return DEFAULT_DIALPLAN, DEFAULT_FLOWS
    d = Path(config_dir)
    dialplan_path = d / "dialplan.yaml" if (d / "dialplan.yaml").exists() else DEFAULT_DIALPLAN
    flows_dir = d / "flows" if (d / "flows").is_dir() else DEFAULT_FLOWS
    return dialplan_path, flows_dir


def load_acd(config_dir: str | Path | None) -> AcdConfig:
    """The ACD's queues, from the dialplan's queue entries (errors point at the dialplan's lines)."""
    return acd_config_from_dialplan(load_yaml(_config_paths(config_dir)[0]))


def load_config(config_dir: str | Path | None) -> tuple[Dialplan, dict[str, Flow]]:
    """Load and check a whole configuration; raises ConfigError (file:line: field: message)."""
    dialplan_path, flows_dir = _config_paths(config_dir)
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
    director = start_acd(mgr, load_acd(config_dir), data)
    director.voicemail = Voicemail(director.acd.conn, load_mailboxes(config_dir))
    mgr.on_call_end.append(director.message_left)  # a message left lights the box's lamp
    return mgr


def start_acd(mgr: CallManager, config: AcdConfig, data: Path) -> AcdDirector:
    """The ACD takes the dialplan's queues: queue log in DATA/queue_log and the box's database.

    On a first start every agent a queue lists is logged in (like Asterisk's static members; *42 logs
    one out); after a restart each agent comes back as the queue log left them."""
    conn = sqlite3.connect(data / "callbox.db", check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    log = QueueLog(conn, data / "queue_log")
    log.on_alarm = mgr.alarm  # a full disk or database: the log waits in memory, the calls go on
    acd = Acd(config, log)
    now = mgr.wall()
    history = log.entries()
    if history:
        acd.restore(history, now)
    else:
        for agent in sorted(acd.agents):
            acd.login(agent, now)
    mgr.acd = AcdDirector(mgr, acd)
    _schedule_recording_purge(mgr, RecordingIndex(conn, data / "recordings"))
    return mgr.acd


PURGE_EVERY_S = 3600.0


def _schedule_recording_purge(mgr: CallManager, index: RecordingIndex) -> None:
    """Recordings past the dialplan's retention go, file and index row, hourly (and once at start)."""

    def purge() -> None:
        try:
            gone = index.purge(mgr.wall(), mgr.plan.recording_retention_days)
            if gone:
                mgr.alarms.append(
                    f"recordings: {gone} past {mgr.plan.recording_retention_days:g} days purged"
                )
        except (OSError, sqlite3.Error) as error:  # a purge that fails tries again next hour
            mgr.alarm("recordings", f"retention purge failed: {error}")
        mgr.clock.call_later(PURGE_EVERY_S, purge)

    purge()


def reload_config(mgr: CallManager, config_dir: str | Path | None) -> None:
    """Swap in a new configuration; on any error the running one stays and ConfigError is raised."""
    plan, flows = load_config(config_dir)
    acd_config = load_acd(config_dir)
    mailboxes = load_mailboxes(config_dir)
    mgr.set_plan(plan)
    mgr.flows = dict(flows)
    if mgr.acd is not None:
        mgr.acd.acd.apply_config(acd_config)
        if mgr.acd.voicemail is not None:
            mgr.acd.voicemail.mailboxes = mailboxes


def close_box(mgr: CallManager) -> Any:
    if mgr.acd is not None:
        mgr.acd.stop()
        mgr.acd.acd.log.close()
        mgr.acd.acd.conn.close()
    if mgr.recorder is not None:
        mgr.recorder.stop()
    mgr.store.close()
