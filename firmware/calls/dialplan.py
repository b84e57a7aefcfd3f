"""Routing configuration (dialplan.yaml): inbound routes, calendars, blacklist, VIP, extensions, queues,
trunk groups and outbound permissions. Loaded and fully checked before it replaces the running one.

    plan = load_dialplan("dialplan.yaml")      # ConfigError with file:line: field on any problem
    dest = plan.route_inbound(trunk, dnis, caller, when)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from firmware.acd.config import QUEUE_SCHEMA as _ACD_QUEUE_SCHEMA
from firmware.config import ConfigError, YamlDocument, load_yaml, loads_yaml
from firmware.signalling.r2 import CONFIG_SCHEMA as _R2_SCHEMA
from firmware.signalling.r2 import R2Config, configs_from_yaml

# The ACD's queue settings, less those the dialplan names its own way (agents, ring_seconds, timeout_dest).
ACD_QUEUE_PROPERTIES = {
    key: value
    for key, value in _ACD_QUEUE_SCHEMA["properties"].items()
    if key not in ("members", "ring_timeout")
}

PERMISSION_ORDER = ("internal", "local", "long_distance", "international")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DEST_PROPS = {
    "flow": {"type": "string"},
    "queue": {"type": "string"},
    "extension": {"type": ["string", "integer"]},
    "external": {"type": ["string", "integer"]},
    "hangup": {"type": "boolean"},
    "priority": {"type": "integer", "minimum": 0, "maximum": 100},
}
DEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _DEST_PROPS,
    "additionalProperties": False,
    "minProperties": 1,
}
_NUM = {"type": ["string", "integer"]}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "timezone": {"type": "string"},
        "ring_seconds": {"type": "number", "minimum": 1, "maximum": 300},
        "recording_retention_days": {"type": "number", "minimum": 1},
        "moh": {"type": "string"},
        "calendars": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "hours": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["days", "from", "to"],
                            "properties": {
                                "days": {"type": "string"},
                                "from": {"type": "string", "pattern": r"^\d\d:\d\d$"},
                                "to": {"type": "string", "pattern": r"^\d\d:\d\d$"},
                            },
                        },
                    },
                    "holidays": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "blacklist": {"type": "array", "items": _NUM},
        "vip": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["caller"],
                "properties": {
                    "caller": _NUM,
                    "queue": {"type": "string"},
                    "agent": _NUM,
                    "priority": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            },
        },
        "routes": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    **_DEST_PROPS,
                    "trunk": {"type": "string"},
                    "dnis": _NUM,
                    "caller": _NUM,
                    "calendar": {"type": "string"},
                    "closed": DEST_SCHEMA,
                    "holiday": DEST_SCHEMA,
                },
            },
        },
        "operator": DEST_SCHEMA,
        "extensions": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "permission": {"enum": list(PERMISSION_ORDER)},
                    "pickup_group": {"type": "integer"},
                    "follow_me": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["number"],
                        "properties": {"number": _NUM, "after": {"type": "number", "minimum": 1}},
                    },
                    "trunk_group": {"type": "string"},
                    "record": {"type": "boolean"},  # this extension's calls recorded (or never)
                },
            },
        },
        # calls on these trunks recorded (true) or not (false) unless the extension or queue says otherwise
        "record_trunks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "queues": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["agents"],
                "properties": {
                    # The ACD's own settings (strategy, penalties, wrap-up, announcements ...) sit beside
                    # call control's in the same entry: one place configures a queue (docs/acd.md).
                    **ACD_QUEUE_PROPERTIES,
                    "agents": {
                        "oneOf": [
                            {"type": "array", "items": _NUM, "minItems": 1},
                            {  # agent -> penalty (skill level, 0 = best)
                                "type": "object",
                                "minProperties": 1,
                                "additionalProperties": {"type": "integer", "minimum": 0},
                            },
                        ]
                    },
                    "ring_seconds": {"type": "number", "minimum": 1},
                    "max_wait": {"type": "number", "minimum": 1},
                    "moh": {"type": "string"},
                    "timeout_dest": DEST_SCHEMA,
                    "survey": {"type": "string"},
                    "record": {"type": "number", "minimum": 0, "maximum": 100},
                },
            },
        },
        "trunk_groups": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["trunks"],
                "properties": {
                    "trunks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "present": {"type": "object", "additionalProperties": _NUM},
                    "present_default": _NUM,
                },
            },
        },
        # MFC/R2 settings per CAS span (span number -> variant, max_dnis, max_ani, category ...): docs/r2.md
        "r2": _R2_SCHEMA,
        "outbound": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "trunk_group": {"type": "string"},
                "international_prefix": {"type": "string"},
                "long_distance_prefix": {"type": "string"},
                "emergency": {"type": "array", "items": _NUM},
                "default_permission": {"enum": list(PERMISSION_ORDER)},
            },
        },
    },
}


@dataclass(frozen=True)
class Dest:
    kind: str  # flow | queue | extension | external | hangup | agent
    target: str = ""
    priority: int = 0


def dest_from(d: dict[str, Any]) -> Dest:
    for kind in ("flow", "queue", "extension", "external"):
        if kind in d:
            return Dest(kind, str(d[kind]), int(d.get("priority", 0)))
    return Dest("hangup")


def _matcher(pattern: str | int) -> re.Pattern[str]:
    p = str(pattern)
    return re.compile(p if p.startswith("^") else "^" + re.escape(p) + "$")


def _days(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.lower().replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            i, j = DAYS.index(a), DAYS.index(b)
            out.update(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        else:
            out.add(DAYS.index(part))
    return out


@dataclass
class Calendar:
    hours: list[tuple[set[int], time, time]]
    holidays: list[tuple[date, date]]

    def is_holiday(self, when: datetime) -> bool:
        d = when.date()
        return any(a <= d <= b for a, b in self.holidays)

    def is_open(self, when: datetime) -> bool:
        if self.is_holiday(when):
            return False
        t = when.time()
        return any(when.weekday() in days and a <= t < b for days, a, b in self.hours)


@dataclass
class Route:
    trunk: str | None
    dnis: re.Pattern[str] | None
    caller: re.Pattern[str] | None
    dest: Dest
    calendar: str | None = None
    closed: Dest | None = None
    holiday: Dest | None = None


@dataclass
class Dialplan:
    timezone: ZoneInfo
    ring_seconds: float = 20.0
    record_trunks: dict[str, bool] = field(default_factory=dict)
    recording_retention_days: float = 90.0  # recordings older than this are deleted, file and index row
    moh: str = "moh"
    calendars: dict[str, Calendar] = field(default_factory=dict)
    blacklist: list[re.Pattern[str]] = field(default_factory=list)
    vip: list[tuple[re.Pattern[str], Dest]] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    operator: Dest = field(default_factory=lambda: Dest("hangup"))
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    trunk_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbound: dict[str, Any] = field(default_factory=dict)
    r2: dict[int, R2Config] = field(default_factory=dict)  # per CAS span (the `r2:` section)
    source: str = ""

    def local_time(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, self.timezone)

    def blacklisted(self, caller: str) -> bool:
        return any(p.match(caller or "") for p in self.blacklist)

    def vip_dest(self, caller: str) -> Dest | None:
        for p, d in self.vip:
            if p.match(caller or ""):
                return d
        return None

    def route_inbound(self, trunk: str | None, dnis: str, caller: str, epoch: float) -> tuple[Dest, str]:
        """Destination and why ("route N", "route N closed", "route N holiday", "no route")."""
        when = self.local_time(epoch)
        for i, r in enumerate(self.routes):
            if r.trunk is not None and r.trunk != trunk:
                continue
            if r.dnis is not None and not r.dnis.match(dnis or ""):
                continue
            if r.caller is not None and not r.caller.match(caller or ""):
                continue
            if r.calendar is not None:
                cal = self.calendars[r.calendar]
                if cal.is_holiday(when) and r.holiday is not None:
                    return r.holiday, f"route {i} holiday"
                if not cal.is_open(when) and r.closed is not None:
                    return r.closed, f"route {i} closed"
            return r.dest, f"route {i}"
        return Dest("hangup"), "no route"

    def classify(self, number: str) -> str:
        """internal / local / long_distance / international by the number's shape."""
        if number in self.extensions:
            return "internal"
        intl = self.outbound.get("international_prefix", "00")
        ld = self.outbound.get("long_distance_prefix", "0")
        if number.startswith(intl):
            return "international"
        if number.startswith(ld):
            return "long_distance"
        return "local"

    def permitted(self, extension: str, number: str) -> tuple[bool, str]:
        cls = self.classify(number)
        if number in [str(x) for x in self.outbound.get("emergency", ["110", "119", "120", "122"])]:
            return True, cls
        ext = self.extensions.get(extension, {})
        allowed = ext.get("permission", self.outbound.get("default_permission", "local"))
        return PERMISSION_ORDER.index(cls) <= PERMISSION_ORDER.index(allowed), cls


def _check_dest(
    doc: YamlDocument, path: tuple[Any, ...], d: Dest, plan: Dialplan, flows: set[str] | None
) -> None:
    if d.kind == "queue" and d.target not in plan.queues:
        raise doc.error((*path, "queue"), f"unknown queue '{d.target}'")
    if d.kind == "extension" and d.target not in plan.extensions:
        raise doc.error((*path, "extension"), f"unknown extension '{d.target}'")
    if d.kind == "flow" and flows is not None and d.target not in flows:
        raise doc.error((*path, "flow"), f"unknown IVR flow '{d.target}'")


def build_dialplan(doc: YamlDocument, flows: set[str] | None = None) -> Dialplan:
    data = doc.data or {}
    try:
        tz = ZoneInfo(data.get("timezone", "Asia/Shanghai"))
    except (ZoneInfoNotFoundError, ValueError):
        raise doc.error(("timezone",), f"unknown time zone {data.get('timezone')!r}") from None
    plan = Dialplan(timezone=tz, source=doc.file)
    plan.ring_seconds = float(data.get("ring_seconds", 20))
    plan.recording_retention_days = float(data.get("recording_retention_days", 90))
    plan.moh = data.get("moh", "moh")
    plan.extensions = {str(k): v or {} for k, v in (data.get("extensions") or {}).items()}
    plan.queues = {str(k): v for k, v in (data.get("queues") or {}).items()}
    plan.trunk_groups = data.get("trunk_groups") or {}
    plan.record_trunks = {str(k): bool(v) for k, v in (data.get("record_trunks") or {}).items()}
    plan.outbound = data.get("outbound") or {}
    plan.r2 = configs_from_yaml(doc)
    for name, cal in (data.get("calendars") or {}).items():
        hours = []
        for i, h in enumerate(cal.get("hours", [])):
            p = ("calendars", name, "hours", i)
            try:
                days = _days(h["days"])
            except ValueError:
                raise doc.error(
                    (*p, "days"), f"bad day range {h['days']!r} (use mon-fri, sat, ...)"
                ) from None
            try:
                a, b = time.fromisoformat(h["from"]), time.fromisoformat(h["to"])
            except ValueError as exc:
                raise doc.error(p, f"bad time: {exc}") from None
            hours.append((days, a, b))
        hol = []
        for i, s in enumerate(cal.get("holidays", [])):
            try:
                a_s, _, b_s = s.partition("..")
                hol.append((date.fromisoformat(a_s), date.fromisoformat(b_s or a_s)))
            except ValueError:
                raise doc.error(("calendars", name, "holidays", i), f"bad date {s!r} (YYYY-MM-DD)") from None
        plan.calendars[name] = Calendar(hours, hol)
    for i, p in enumerate(data.get("blacklist") or []):
        try:
            plan.blacklist.append(_matcher(p))
        except re.error as exc:
            raise doc.error(("blacklist", i), f"bad pattern: {exc}") from None
    for i, v in enumerate(data.get("vip") or []):
        if "agent" in v:
            d = Dest("agent", str(v["agent"]), int(v.get("priority", 10)))
            if d.target not in plan.extensions:
                raise doc.error(("vip", i, "agent"), f"unknown extension '{d.target}'")
        elif "queue" in v:
            d = Dest("queue", v["queue"], int(v.get("priority", 10)))
            _check_dest(doc, ("vip", i), d, plan, flows)
        else:
            raise doc.error(("vip", i), "a VIP entry needs 'queue' or 'agent'")
        plan.vip.append((_matcher(v["caller"]), d))
    for i, r in enumerate(data.get("routes") or []):
        p = ("routes", i)
        dest = dest_from(r)
        if dest.kind == "hangup" and not r.get("hangup"):
            raise doc.error(p, "a route needs one of flow / queue / extension / external / hangup")
        _check_dest(doc, p, dest, plan, flows)
        cal = r.get("calendar")
        if cal is not None and cal not in plan.calendars:
            raise doc.error((*p, "calendar"), f"unknown calendar '{cal}'")
        closed = dest_from(r["closed"]) if "closed" in r else None
        holiday = dest_from(r["holiday"]) if "holiday" in r else None
        for key, d in (("closed", closed), ("holiday", holiday)):
            if d is not None:
                _check_dest(doc, (*p, key), d, plan, flows)
        try:
            route = Route(
                r.get("trunk"),
                _matcher(r["dnis"]) if "dnis" in r else None,
                _matcher(r["caller"]) if "caller" in r else None,
                dest,
                cal,
                closed,
                holiday,
            )
        except re.error as exc:
            raise doc.error(p, f"bad pattern: {exc}") from None
        plan.routes.append(route)
    if "operator" in data:
        plan.operator = dest_from(data["operator"])
        _check_dest(doc, ("operator",), plan.operator, plan, flows)
    for qname, q in plan.queues.items():
        agents = q["agents"]
        # a list names agents by position, a mapping (agent -> penalty) by key: errors point at either
        located = [(a, a) for a in agents] if isinstance(agents, dict) else list(enumerate(agents))
        for where, a in located:
            if str(a) not in plan.extensions:
                raise doc.error(("queues", qname, "agents", where), f"unknown extension '{a}'")
    for ext, e in plan.extensions.items():
        tg = e.get("trunk_group")
        if tg is not None and tg not in plan.trunk_groups:
            raise doc.error(("extensions", ext, "trunk_group"), f"unknown trunk group '{tg}'")
    tg = plan.outbound.get("trunk_group")
    if tg is not None and tg not in plan.trunk_groups:
        raise doc.error(("outbound", "trunk_group"), f"unknown trunk group '{tg}'")
    return plan


def load_dialplan(path: str | Path, flows: set[str] | None = None) -> Dialplan:
    return build_dialplan(load_yaml(path, SCHEMA), flows)


def loads_dialplan(text: str, flows: set[str] | None = None, file: str = "<dialplan>") -> Dialplan:
    try:
        return build_dialplan(loads_yaml(text, SCHEMA, file), flows)
    except ConfigError:
        raise
