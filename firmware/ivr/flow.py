"""IVR flows: YAML validated against a schema (jsonschema, per node type) with file/line/field errors.

A flow file:

    name: main                 # flow name (routes and `flow` nodes refer to it)
    language: cmn              # prompt language: cmn (default) or en; a `set` of `language` switches it
    start: welcome             # first node
    operator: operator         # node that key 0 reaches from any menu (default: a node named "operator")
    nodes:
      welcome:  {type: play, prompts: [welcome], next: menu}
      menu:     {type: menu, prompts: [main_menu], options: {1: service, 2: sales}, fallback: operator}
      service:  {type: queue, queue: service}
      operator: {type: extension, extension: "1000"}

Node types and their fields are in NODE_SCHEMAS below; docs/ivr.md has the full reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from firmware.config import ConfigError, YamlDocument, load_yaml, loads_yaml

_STR = {"type": "string"}
_NUM = {"type": ["string", "integer"]}
_NODE_NAME = {"type": "string"}
PROMPT_ITEM = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["say", "value"],
            "properties": {
                "say": {"enum": ["digits", "number", "date", "queue_position", "wait_time"]},
                "value": {"type": ["string", "integer", "number"]},
                "lang": _STR,
            },
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["prompt"],
            "properties": {"prompt": _STR, "lang": _STR},
        },
    ]
}
PROMPTS = {"type": "array", "items": PROMPT_ITEM}
_COMMON = {"type": {"type": "string"}, "prompts": PROMPTS, "next": _NODE_NAME}
_SECONDS = {"type": "number", "exclusiveMinimum": 0, "maximum": 3600}


def _node(required: list[str], **props: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", *required],
        "properties": {**_COMMON, **props},
    }


CONDITION = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "time": {"type": "string", "pattern": r"^\d\d:\d\d-\d\d:\d\d$"},
        "days": _STR,
        "calendar_open": _STR,
        "holiday": _STR,
        "caller": _NUM,
        "var": _STR,
        "equals": {"type": ["string", "integer", "number", "boolean"]},
        "matches": _STR,
        "exists": {"type": "boolean"},
    },
}

NODE_SCHEMAS: dict[str, dict[str, Any]] = {
    "play": _node(["next"]),
    "menu": _node(
        ["options"],
        options={
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[0-9*#]{1,4}$"},
            "additionalProperties": _NODE_NAME,
        },
        timeout=_SECONDS,
        inter_digit=_SECONDS,
        invalid_prompt=_STR,
        timeout_prompt=_STR,
        retries={"type": "integer", "minimum": 0, "maximum": 10},
        fallback=_NODE_NAME,
        operator={"type": "boolean"},
    ),
    "collect": _node(
        ["var", "next"],
        var=_STR,
        min={"type": "integer", "minimum": 0, "maximum": 64},
        max={"type": "integer", "minimum": 1, "maximum": 64},
        terminator={"enum": ["#", "*", ""]},
        timeout=_SECONDS,
        inter_digit=_SECONDS,
        retries={"type": "integer", "minimum": 0, "maximum": 10},
        invalid_prompt=_STR,
        fallback=_NODE_NAME,
    ),
    "lookup": _node(
        ["by", "found", "missing"],
        by={"enum": ["number", "account"]},
        value=_STR,
        found=_NODE_NAME,
        missing=_NODE_NAME,
    ),  # fmt: skip
    "record": _node(["next"], max_seconds=_SECONDS, beep={"type": "boolean"}, var=_STR),
    "queue": _node(["queue"], queue=_STR, priority={"type": "integer", "minimum": 0, "maximum": 100}),
    "extension": _node(["extension"], extension=_NUM),
    "external": _node(["number"], number=_NUM),
    "flow": _node(["flow"], flow=_STR),
    "set": _node(
        ["var", "value", "next"], var=_STR, value={"type": ["string", "integer", "number", "boolean"]}
    ),
    "condition": _node(
        ["cases"],
        cases={
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["when", "next"],
                "properties": {"when": CONDITION, "next": _NODE_NAME},
            },
        },
        **{"else": _NODE_NAME},
    ),
    "hangup": _node([]),
    "survey": _node(
        ["next"],
        timeout=_SECONDS,
        retries={"type": "integer", "minimum": 0, "maximum": 5},
        invalid_prompt=_STR,
        thanks_prompt=_STR,
    ),  # fmt: skip
}

FLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "start", "nodes"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"},
        "language": {"enum": ["cmn", "en"]},
        "start": _NODE_NAME,
        "operator": _NODE_NAME,
        "description": _STR,
        "nodes": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": sorted(NODE_SCHEMAS)}},
            },
        },
    },
}

# node fields that name another node
NODE_REFS = ("next", "fallback", "found", "missing", "else")


@dataclass
class Flow:
    name: str
    start: str
    nodes: dict[str, dict[str, Any]]
    language: str = "cmn"
    operator: str | None = None
    file: str = ""
    doc: YamlDocument | None = field(default=None, repr=False)

    def targets(self, name: str) -> list[str]:
        """Nodes reachable in one step from `name`."""
        node = self.nodes[name]
        out = [node[k] for k in NODE_REFS if k in node]
        out += list((node.get("options") or {}).values())
        out += [c["next"] for c in node.get("cases", [])]
        if node["type"] == "menu" and node.get("operator", True) and self.operator:
            out.append(self.operator)
        return out


def _validate_nodes(doc: YamlDocument) -> None:
    for name, node in doc.data["nodes"].items():
        schema = NODE_SCHEMAS[node["type"]]
        errors = sorted(
            jsonschema.Draft202012Validator(schema).iter_errors(node),
            key=lambda e: doc.line(("nodes", name, *e.absolute_path)) or 0,
        )
        if errors:
            err = jsonschema.exceptions.best_match(errors)
            path = ("nodes", name, *err.absolute_path)
            msg = err.message
            if err.validator == "additionalProperties":
                extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
                if extra:
                    path, msg = (*path, extra[0]), f"unknown field '{extra[0]}' for a {node['type']} node"
            raise doc.error(path, msg)


def build_flow(doc: YamlDocument, queues: set[str] | None = None, flows: set[str] | None = None) -> Flow:
    from firmware.config import validate

    validate(doc, FLOW_SCHEMA)
    _validate_nodes(doc)
    data = doc.data
    nodes = data["nodes"]
    if data["start"] not in nodes:
        raise doc.error(("start",), f"unknown node '{data['start']}'")
    operator = data.get("operator")
    if operator is not None and operator not in nodes:
        raise doc.error(("operator",), f"unknown node '{operator}'")
    if operator is None and "operator" in nodes:
        operator = "operator"
    for name, node in nodes.items():
        for key in NODE_REFS:
            if key in node and node[key] not in nodes:
                raise doc.error(("nodes", name, key), f"unknown node '{node[key]}'")
        for digit, target in (node.get("options") or {}).items():
            if target not in nodes:
                raise doc.error(("nodes", name, "options", digit), f"unknown node '{target}'")
        for i, case in enumerate(node.get("cases", [])):
            if case["next"] not in nodes:
                raise doc.error(("nodes", name, "cases", i, "next"), f"unknown node '{case['next']}'")
        if node["type"] == "queue" and queues is not None and node["queue"] not in queues:
            raise doc.error(("nodes", name, "queue"), f"unknown queue '{node['queue']}'")
        if node["type"] == "flow" and flows is not None and node["flow"] not in flows:
            raise doc.error(("nodes", name, "flow"), f"unknown flow '{node['flow']}'")
        if node["type"] == "collect" and node.get("min", 1) > node.get("max", 20):
            raise doc.error(("nodes", name, "min"), "min is larger than max")
    return Flow(data["name"], data["start"], nodes, data.get("language", "cmn"), operator, doc.file, doc)


def load_flow(path: str | Path, queues: set[str] | None = None, flows: set[str] | None = None) -> Flow:
    return build_flow(load_yaml(path), queues, flows)


def loads_flow(text: str, queues: set[str] | None = None, file: str = "<flow>") -> Flow:
    return build_flow(loads_yaml(text, None, file), queues)


def load_flows(directory: str | Path, queues: set[str] | None = None) -> dict[str, Flow]:
    """Every *.yaml flow in a directory, all or nothing: one bad file raises and nothing is returned."""
    found: dict[str, Flow] = {}
    paths = sorted(Path(directory).glob("*.yaml"))
    docs = [load_yaml(p) for p in paths]
    names = {d.data.get("name") for d in docs if isinstance(d.data, dict)}
    for d in docs:
        f = build_flow(d, queues, {n for n in names if isinstance(n, str)})
        if f.name in found:
            raise d.error(("name",), f"flow name '{f.name}' also used by {found[f.name].file}")
        found[f.name] = f
    return found


__all__ = ["ConfigError", "Flow", "build_flow", "load_flow", "loads_flow", "load_flows"]
