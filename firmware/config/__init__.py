"""YAML configuration loading with file, line and field in every error (a small helper every area may use).

    doc = load_yaml(path, schema)           # parse + JSON-Schema validation, raises ConfigError
    doc.data                                # plain dicts/lists/scalars
    doc.line(("nodes", "main", "options"))  # 1-based line of any node, for your own semantic checks
    raise doc.error(("nodes", "x"), "goes to unknown node 'y'")

Schema validation uses `jsonschema` (Draft 2020-12); the line of each error comes from PyYAML's node marks,
kept for every mapping key and value while the document is built. Nothing here touches running state: a
caller loads and checks a whole new configuration first and only swaps it in when that succeeded, so a
broken file leaves the running configuration in force.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

Path_ = tuple[Any, ...]


class ConfigError(ValueError):
    """A configuration problem at file:line in field `field` (dotted path)."""

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {field or '<top>'}: {message}")


def field_name(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


@dataclass
class YamlDocument:
    file: str
    data: Any
    marks: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Iterable[Any]) -> int | None:
        """Line of the deepest node on `path` that has a mark (1-based)."""
        p = tuple(path)
        while True:
            if p in self.marks:
                return self.marks[p]
            if not p:
                return None
            p = p[:-1]

    def error(self, path: Iterable[Any], message: str) -> ConfigError:
        p = tuple(path)
        return ConfigError(self.file, self.line(p), field_name(p), message)


class _Builder:
    def __init__(self) -> None:
        self.loader = yaml.SafeLoader("")
        self.marks: dict[Path_, int] = {}

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.marks.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.build_scalar_key(key_node)
                self.marks[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def build_scalar_key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise yaml.MarkedYAMLError(
                problem="mapping keys must be plain values", problem_mark=node.start_mark
            )
        key = self.loader.construct_object(node)
        # Menu digits and numbers written bare (1:, 0:) are strings to us: "0" and 0 are the same key.
        return str(key) if isinstance(key, int | float) and not isinstance(key, bool) else key


def parse_yaml(text: str, file: str = "<string>") -> YamlDocument:
    """Parse YAML text keeping a line for every node; syntax errors become ConfigError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(file, line, "", f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, "", f"YAML: {exc}") from None
    if node is None:
        return YamlDocument(file, None, {(): 1})
    builder = _Builder()
    try:
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(file, mark.line + 1 if mark else None, "", str(exc.problem)) from None
    return YamlDocument(file, data, builder.marks)


_UNEXPECTED = re.compile(r"\('([^']+)' was unexpected\)|'([^']+)' (?:was|were) unexpected")


def validate(doc: YamlDocument, schema: Mapping[str, Any]) -> None:
    """Validate against a JSON Schema; the first error (by position in the file) is raised."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(doc.data))
    if not errors:
        return
    found: list[ConfigError] = []
    for err in errors:
        # Prefer the most specific sub-error of a oneOf/anyOf (the branch that got furthest).
        best = jsonschema.exceptions.best_match([err])
        path = tuple(best.absolute_path)
        message = best.message
        m = _UNEXPECTED.search(message)
        if m and best.validator == "additionalProperties":
            key = m.group(1) or m.group(2)
            path = (*path, key)
            message = f"unknown field '{key}'"
        found.append(doc.error(path, message))
    found.sort(key=lambda e: e.line or 0)
    raise found[0]


def load_yaml(path: str | Path, schema: Mapping[str, Any] | None = None) -> YamlDocument:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), None, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), None, "", f"not UTF-8 text: {exc.reason}") from None
    doc = parse_yaml(text, str(p))
    if schema is not None:
        validate(doc, schema)
    return doc


def loads_yaml(text: str, schema: Mapping[str, Any] | None = None, file: str = "<string>") -> YamlDocument:
    doc = parse_yaml(text, file)
    if schema is not None:
        validate(doc, schema)
    return doc
