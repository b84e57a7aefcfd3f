"""Queue and agent configuration: YAML in, validated dataclasses out, every error with file, line and field.

A queues file looks like this (every key but `queues` and a queue's `members` has a default):

    queues:
      service:
        strategy: leastrecent          # ringall leastrecent fewestcalls random rrmemory linear wrandom
        members: {"8001": 0, "8002": 0, "8003": 1}   # agent -> penalty (skill level, 0 = best)
        penalty_steps: [{after: 30, max_penalty: 1}] # penalty-1 agents join after 30 s of waiting
        ring_timeout: 15
        retry: 5
        wrapup: 10                     # (default 0, as Asterisk's wrapuptime)
        autopause: 3                   # pause an agent after 3 offers in a row not answered (0 = never)
        joinempty: [unavailable]       # refuse callers when no member is logged in
        leavewhenempty: [unavailable]
        max_wait: 300                  # then overflow
        overflow: "queue:sales"       # queue:X flow:X extension:X external:N voicemail:BOX callback hangup
        max_len: 50
        announce_frequency: 30         # position and estimated wait every 30 s (0 = never)
        offer_frequency: 60            # "press 1 for a message, 2 to be called back" every 60 s
        service_level: 20              # seconds, for the SL figures
        sticky_days: 7                 # offer the last agent a caller spoke to within 7 days (0 = off)
        weight: 0                      # higher-weight queues get shared agents first
        callback_attempts: 3           # a callback the customer does not answer is tried 3 times in all,
        callback_retry: 120            # 120 s apart, each ringing the customer 30 s,
        callback_ring: 30
        callback_permission: local     # within this outbound class (default: the dialplan's default)

The same settings sit in the dialplan's `queues:` entries, beside the call-control ones (see
`acd_config_from_dialplan`): there `agents` names the members, `ring_seconds` the ring timeout and
`timeout_dest` (a dialplan destination) the overflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from firmware.config import ConfigError, YamlDocument, load_yaml, parse_yaml, validate

__all__ = ["AcdConfig", "ConfigError", "PenaltyStep", "QueueConfig", "load_acd_config", "parse_acd_config"]

STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom")
# Member conditions that make a queue count as empty for joinempty / leavewhenempty (Asterisk's names).
EMPTY_CONDITIONS = ("unavailable", "paused", "inuse", "ringing", "wrapup", "penalty")


@dataclass(frozen=True)
class PenaltyStep:
    after: float  # seconds the caller has waited
    max_penalty: int  # members up to this penalty may now be offered the call


@dataclass(frozen=True)
class QueueConfig:
    name: str
    members: dict[str, int]
    strategy: str = "leastrecent"
    penalty_steps: tuple[PenaltyStep, ...] = ()
    ring_timeout: float = 15.0
    retry: float = 5.0
    wrapup: float = 0.0  # Asterisk's default wrapuptime
    autopause: int = 3
    joinempty: tuple[str, ...] = ()
    leavewhenempty: tuple[str, ...] = ()
    max_wait: float = 0.0  # 0 = no limit
    overflow: str = "hangup"
    max_len: int = 0  # 0 = no limit
    announce_frequency: float = 30.0
    offer_frequency: float = 0.0
    service_level: float = 20.0
    sticky_days: float = 0.0
    sticky_wait: float = 30.0  # how long a caller who asked for their last agent waits for that agent
    weight: int = 0
    voicemail: str = ""
    callback_attempts: int = 3  # customer not answering / busy: try this many times in all, then give up
    callback_retry: float = 120.0  # seconds between attempts (the callback keeps its place meanwhile)
    callback_ring: float = 30.0  # ring the customer this long
    callback_permission: str = ""  # outbound class a callback may dial ("" = the dialplan's default)

    @property
    def overflow_kind(self) -> str:
        return self.overflow.split(":", 1)[0]

    @property
    def overflow_target(self) -> str:
        return self.overflow.split(":", 1)[1] if ":" in self.overflow else ""

    def base_max_penalty(self) -> int:
        """Penalty allowed from the first second: the lowest (best) penalty among the members."""
        return self._penalty_range[0]

    @cached_property
    def _penalty_range(self) -> tuple[int, int]:
        # The routing hot path asks for these for every caller it considers; members never change.
        return min(self.members.values(), default=0), max(self.members.values(), default=0)

    @cached_property
    def member_set(self) -> frozenset[str]:
        return frozenset(self.members)

    def max_penalty_after(self, waited: float) -> int:
        """Highest member penalty that may be offered a caller who has waited this long.

        Without penalty steps every member may be offered (lower penalties first, as Asterisk does);
        with them, the best-skilled members alone until the first step's wait, and so on."""
        if not self.penalty_steps:
            return self._penalty_range[1]
        allowed = self.base_max_penalty()
        for step in self.penalty_steps:
            if waited >= step.after:
                allowed = max(allowed, step.max_penalty)
        return allowed


@dataclass
class AcdConfig:
    queues: dict[str, QueueConfig] = field(default_factory=dict)


_NUMBER = {"type": "number", "minimum": 0}
QUEUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["members"],
    "properties": {
        "members": {
            "oneOf": [
                {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
                {"type": "array", "minItems": 1, "items": {"type": ["string", "integer"]}},
            ]
        },
        "strategy": {"enum": list(STRATEGIES)},
        "penalty_steps": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["after", "max_penalty"],
                "properties": {"after": _NUMBER, "max_penalty": {"type": "integer", "minimum": 0}},
            },
        },
        "ring_timeout": {"type": "number", "exclusiveMinimum": 0},
        "retry": _NUMBER,
        "wrapup": _NUMBER,
        "autopause": {"type": "integer", "minimum": 0},
        "joinempty": {"type": "array", "items": {"enum": list(EMPTY_CONDITIONS)}},
        "leavewhenempty": {"type": "array", "items": {"enum": list(EMPTY_CONDITIONS)}},
        "max_wait": _NUMBER,
        "overflow": {
            "type": "string",
            "pattern": r"^((queue|voicemail|flow|extension|external):.+|callback|hangup)$",
        },
        "max_len": {"type": "integer", "minimum": 0},
        "announce_frequency": _NUMBER,
        "offer_frequency": _NUMBER,
        "service_level": _NUMBER,
        "sticky_days": _NUMBER,
        "sticky_wait": _NUMBER,
        "weight": {"type": "integer"},
        "voicemail": {"type": ["string", "integer"]},
        "callback_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
        "callback_retry": _NUMBER,
        "callback_ring": {"type": "number", "minimum": 5, "maximum": 300},
        "callback_permission": {"enum": ["internal", "local", "long_distance", "international"]},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["queues"],
    "properties": {"queues": {"type": "object", "minProperties": 1, "additionalProperties": QUEUE_SCHEMA}},
}


def _queue(name: str, fields: dict[str, Any]) -> QueueConfig:
    members_field = fields["members"]
    if isinstance(members_field, list):  # a plain list of agents: all at penalty 0
        members = {str(agent): 0 for agent in members_field}
    else:
        members = {str(agent): int(penalty) for agent, penalty in members_field.items()}
    settings = {key: value for key, value in fields.items() if key not in ("members", "penalty_steps")}
    for key in ("joinempty", "leavewhenempty"):
        if key in settings:
            settings[key] = tuple(settings[key])
    if "voicemail" in settings:
        settings["voicemail"] = str(settings["voicemail"])
    steps = sorted(
        (
            PenaltyStep(float(step["after"]), int(step["max_penalty"]))
            for step in fields.get("penalty_steps", [])
        ),
        key=lambda step: step.after,
    )
    return QueueConfig(name=str(name), members=members, penalty_steps=tuple(steps), **settings)


def acd_config(doc: YamlDocument) -> AcdConfig:
    """A validated document to an AcdConfig; raises ConfigError (file, line, field) on any problem."""
    if doc.data is None:
        raise ConfigError(doc.file, None, "queues", "the file is empty")
    validate(doc, SCHEMA)
    queues = {str(name): _queue(name, fields) for name, fields in doc.data["queues"].items()}
    for queue in queues.values():
        if queue.overflow_kind == "queue" and queue.overflow_target not in queues:
            raise doc.error(
                ("queues", queue.name, "overflow"), f"overflow to unknown queue '{queue.overflow_target}'"
            )
    return AcdConfig(queues)


def parse_acd_config(text: str, path: str = "<queues>") -> AcdConfig:
    return acd_config(parse_yaml(text, path))


def load_acd_config(path: Path) -> AcdConfig:
    return acd_config(load_yaml(path))


# Dialplan queue keys that mean an ACD setting, and the call-control keys the ACD leaves alone.
DIALPLAN_NAMES = {"agents": "members", "ring_seconds": "ring_timeout"}
CALL_CONTROL_KEYS = ("moh", "survey", "record", "timeout_dest")
DESTINATION_KINDS = ("queue", "flow", "extension", "external")


def overflow_from_destination(destination: dict[str, Any]) -> str:
    """A dialplan destination ({queue: sales}, {flow: x}, {hangup: true} ...) as an ACD overflow."""
    for kind in DESTINATION_KINDS:
        if kind in destination:
            return f"{kind}:{destination[kind]}"
    return "hangup"


def acd_config_from_dialplan(doc: YamlDocument) -> AcdConfig:
    """The ACD's queues from the dialplan document's `queues:` section (one place to configure a queue).

    Each entry is checked against the ACD's queue schema once the call-control keys are set aside and the
    dialplan's names are mapped, so an error still points at the dialplan's file, line and field."""
    queues_data = (doc.data or {}).get("queues") or {}
    translated: dict[str, Any] = {}
    for name, entry in queues_data.items():
        fields = {
            DIALPLAN_NAMES.get(key, key): value
            for key, value in entry.items()
            if key not in CALL_CONTROL_KEYS
        }
        if "timeout_dest" in entry and "overflow" not in fields:
            fields["overflow"] = overflow_from_destination(entry["timeout_dest"])
        translated[name] = fields
    translated_doc = YamlDocument(doc.file, {"queues": translated}, _renamed_marks(doc))
    if not translated:
        return AcdConfig({})
    return acd_config(translated_doc)


def _renamed_marks(doc: YamlDocument) -> dict[tuple[Any, ...], int]:
    """Line marks of the dialplan, re-keyed to the ACD's field names so errors keep their lines."""
    marks: dict[tuple[Any, ...], int] = {}
    for path, line in doc.marks.items():
        if len(path) >= 3 and path[0] == "queues":
            path = (*path[:2], DIALPLAN_NAMES.get(path[2], path[2]), *path[3:])
        marks[path] = line
    return marks
