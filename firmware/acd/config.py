"""Queue and agent configuration: YAML in, validated dataclasses out, every error with file, line and field.

A queues file looks like this (every key but `queues` and a queue's `members` has a default):

    queues:
      service:
        strategy: leastrecent          # ringall leastrecent fewestcalls random rrmemory linear wrandom
        members: {"8001": 0, "8002": 0, "8003": 1}   # agent -> penalty (skill level, 0 = best)
        penalty_steps: [{after: 30, max_penalty: 1}] # penalty-1 agents join after 30 s of waiting
        ring_timeout: 15
        retry: 5
        wrapup: 10
        autopause: 3                   # pause an agent after 3 offers in a row not answered (0 = never)
        joinempty: [unavailable]       # refuse callers when no member is logged in
        leavewhenempty: [unavailable]
        max_wait: 300                  # then overflow
        overflow: "queue:sales"       # queue:NAME | voicemail:BOX | callback | flow:NAME | hangup
        max_len: 50
        announce_frequency: 30         # position and estimated wait every 30 s (0 = never)
        offer_frequency: 60            # "press 1 for a message, 2 to be called back" every 60 s
        service_level: 20              # seconds, for the SL figures
        sticky_days: 7                 # offer the last agent a caller spoke to within 7 days (0 = off)
        weight: 0                      # higher-weight queues get shared agents first
        record: false
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom")
# Member conditions that make a queue count as empty for joinempty / leavewhenempty (Asterisk's names).
EMPTY_CONDITIONS = ("unavailable", "paused", "inuse", "ringing", "wrapup", "penalty")
OVERFLOW_KINDS = ("queue", "voicemail", "callback", "flow", "hangup")


class ConfigError(ValueError):
    """A configuration error, located: `file:line: field: reason`."""

    def __init__(self, path: str, line: int | None, field_name: str, reason: str) -> None:
        self.path, self.line, self.field_name, self.reason = path, line, field_name, reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {field_name}: {reason}")


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
    wrapup: float = 10.0
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
    record: bool = False
    voicemail: str = ""

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


def _compose(text: str, path: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark is not None else None
        raise ConfigError(path, line, "yaml", str(error.problem or error)) from None
    except yaml.YAMLError as error:  # e.g. ReaderError: a control character, located by offset only
        line = text.count("\n", 0, getattr(error, "position", 0)) + 1
        raise ConfigError(path, line, "yaml", str(error).splitlines()[0]) from None


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _mapping(node: yaml.Node, path: str, where: str) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(path, _line(node), where, "must be a mapping")
    result: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(path, _line(key_node), where, "keys must be plain names")
        if key_node.value in result:
            raise ConfigError(path, _line(key_node), f"{where}.{key_node.value}", "given twice")
        result[key_node.value] = value_node
    return result


def _scalar(node: yaml.Node, path: str, where: str) -> object:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(path, _line(node), where, "must be a single value")
    return yaml.safe_load(yaml.serialize(node))


def _number(node: yaml.Node, path: str, where: str, minimum: float = 0.0) -> float:
    value = _scalar(node, path, where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, _line(node), where, f"must be a number, not {value!r}")
    if value < minimum:
        raise ConfigError(path, _line(node), where, f"must be at least {minimum:g}, not {value}")
    return float(value)


def _integer(node: yaml.Node, path: str, where: str, minimum: int = 0) -> int:
    value = _number(node, path, where, minimum)
    if value != int(value):
        raise ConfigError(path, _line(node), where, f"must be a whole number, not {value}")
    return int(value)


def _word_list(node: yaml.Node, path: str, where: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(node, yaml.ScalarNode):
        items = [n for n in str(_scalar(node, path, where) or "").replace(",", " ").split() if n]
    elif isinstance(node, yaml.SequenceNode):
        items = [str(_scalar(item, path, where)) for item in node.value]
    else:
        raise ConfigError(path, _line(node), where, "must be a list")
    for item in items:
        if item not in allowed:
            raise ConfigError(
                path, _line(node), where, f"unknown condition {item!r} (known: {', '.join(allowed)})"
            )
    return tuple(items)


_NUMBER_FIELDS = (
    "ring_timeout",
    "retry",
    "wrapup",
    "max_wait",
    "announce_frequency",
    "offer_frequency",
    "service_level",
    "sticky_days",
    "sticky_wait",
)
_INTEGER_FIELDS = ("autopause", "max_len", "weight")
_KNOWN_FIELDS = {
    "members",
    "strategy",
    "penalty_steps",
    "joinempty",
    "leavewhenempty",
    "overflow",
    "record",
    "voicemail",
    *_NUMBER_FIELDS,
    *_INTEGER_FIELDS,
}


def _queue(name: str, node: yaml.Node, path: str) -> QueueConfig:
    where = f"queues.{name}"
    fields = _mapping(node, path, where)
    for key, value_node in fields.items():
        if key not in _KNOWN_FIELDS:
            raise ConfigError(path, _line(value_node), f"{where}.{key}", "unknown setting")
    if "members" not in fields:
        raise ConfigError(path, _line(node), f"{where}.members", "missing (agent -> penalty)")
    members: dict[str, int] = {}
    members_node = fields["members"]
    if isinstance(members_node, yaml.SequenceNode):  # a plain list of agents: all penalty 0
        for item in members_node.value:
            members[str(_scalar(item, path, f"{where}.members"))] = 0
    else:
        for agent, penalty_node in _mapping(members_node, path, f"{where}.members").items():
            members[agent] = _integer(penalty_node, path, f"{where}.members.{agent}")
    kwargs: dict[str, object] = {"name": name, "members": members}
    for key in _NUMBER_FIELDS:
        if key in fields:
            kwargs[key] = _number(fields[key], path, f"{where}.{key}")
    for key in _INTEGER_FIELDS:
        if key in fields:
            kwargs[key] = _integer(
                fields[key], path, f"{where}.{key}", minimum=-1000 if key == "weight" else 0
            )
    if "strategy" in fields:
        strategy = str(_scalar(fields["strategy"], path, f"{where}.strategy"))
        if strategy not in STRATEGIES:
            raise ConfigError(
                path,
                _line(fields["strategy"]),
                f"{where}.strategy",
                f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})",
            )
        kwargs["strategy"] = strategy
    for key in ("joinempty", "leavewhenempty"):
        if key in fields:
            kwargs[key] = _word_list(fields[key], path, f"{where}.{key}", EMPTY_CONDITIONS)
    if "overflow" in fields:
        overflow = str(_scalar(fields["overflow"], path, f"{where}.overflow"))
        kind = overflow.split(":", 1)[0]
        if kind not in OVERFLOW_KINDS or (kind in ("queue", "voicemail", "flow") and ":" not in overflow):
            raise ConfigError(
                path,
                _line(fields["overflow"]),
                f"{where}.overflow",
                f"{overflow!r} is not one of queue:NAME, voicemail:BOX, flow:NAME, callback, hangup",
            )
        kwargs["overflow"] = overflow
    if "record" in fields:
        record = _scalar(fields["record"], path, f"{where}.record")
        if not isinstance(record, bool):
            raise ConfigError(path, _line(fields["record"]), f"{where}.record", "must be true or false")
        kwargs["record"] = record
    if "voicemail" in fields:
        kwargs["voicemail"] = str(_scalar(fields["voicemail"], path, f"{where}.voicemail"))
    if "penalty_steps" in fields:
        steps_node = fields["penalty_steps"]
        if not isinstance(steps_node, yaml.SequenceNode):
            raise ConfigError(path, _line(steps_node), f"{where}.penalty_steps", "must be a list")
        steps = []
        for index, step_node in enumerate(steps_node.value):
            step_where = f"{where}.penalty_steps[{index}]"
            step = _mapping(step_node, path, step_where)
            for required in ("after", "max_penalty"):
                if required not in step:
                    raise ConfigError(path, _line(step_node), f"{step_where}.{required}", "missing")
            steps.append(
                PenaltyStep(
                    _number(step["after"], path, f"{step_where}.after"),
                    _integer(step["max_penalty"], path, f"{step_where}.max_penalty"),
                )
            )
        kwargs["penalty_steps"] = tuple(sorted(steps, key=lambda s: s.after))
    return QueueConfig(**kwargs)  # type: ignore[arg-type]


def parse_acd_config(text: str, path: str = "<queues>") -> AcdConfig:
    root = _compose(text, path)
    if root is None:
        raise ConfigError(path, None, "queues", "the file is empty")
    top = _mapping(root, path, "top level")
    for key, node in top.items():
        if key != "queues":
            raise ConfigError(path, _line(node), key, "unknown section (expected: queues)")
    if "queues" not in top:
        raise ConfigError(path, _line(root), "queues", "missing")
    queues = {
        name: _queue(name, node, path) for name, node in _mapping(top["queues"], path, "queues").items()
    }
    for queue in queues.values():
        if queue.overflow_kind == "queue" and queue.overflow_target not in queues:
            line = _line(_mapping(_mapping(top["queues"], path, "queues")[queue.name], path, "")["overflow"])
            raise ConfigError(
                path,
                line,
                f"queues.{queue.name}.overflow",
                f"overflow to unknown queue {queue.overflow_target!r}",
            )
    return AcdConfig(queues)


def load_acd_config(path: Path) -> AcdConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), None, "file", error.strerror or str(error)) from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "file", "not UTF-8 text") from None
    return parse_acd_config(text, str(path))
