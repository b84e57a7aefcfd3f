"""SIP extensions (agents' and staff's phones) and agent feature codes, loaded from YAML.

    realm: callbox                      # digest realm; HA1s below are computed with it
    feature_codes:                      # optional; these are the defaults
      queue_login: "*41"                # *41 = all my queues, *41<queue> = that queue
      queue_logout: "*42"
      pause: "*43"                      # *43<reason code>
      unpause: "*44"
      pickup: "*8"                      # *8 = group pickup, *8<ext> = directed pickup
    extensions:
      - number: "1001"
        name: Alice
        ha1: {MD5: 0123...ef, SHA-256: 0123...ef}   # H(number:realm:password); never the password
        permissions: national           # the engine's outbound classes
        voicemail: "1001"
        follow_me: "013800138000"
        max_contacts: 5
        digest_algorithms: [SHA-256, MD5]  # optional: challenge order for a phone that does RFC 8760;
                                        # default: the box's (MD5 only, see firmware.sip.core.CoreConfig)

`python -m firmware.sip.extensions NUMBER PASSWORD [REALM]` prints the ha1 mapping to paste in.
Errors carry file, line and field (firmware.config).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.config import ConfigError, YamlDocument, load_yaml, loads_yaml

from .auth import ALGORITHMS, make_ha1_set

PERMISSION_CLASSES = ("internal", "local", "national", "international")

DEFAULT_FEATURE_CODES: dict[str, str] = {
    "queue_login": "*41",
    "queue_logout": "*42",
    "pause": "*43",
    "unpause": "*44",
    "pickup": "*8",
}

_HEX64 = {"type": "string", "pattern": "^[0-9a-fA-F]{32}([0-9a-fA-F]{32})?$"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["extensions"],
    "properties": {
        "realm": {"type": "string", "minLength": 1, "pattern": '^[^"\\\\]+$'},
        "feature_codes": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                name: {"type": "string", "pattern": "^[*#0-9]{1,6}$"} for name in DEFAULT_FEATURE_CODES
            },
        },
        "extensions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["number", "ha1"],
                "properties": {
                    "number": {"type": "string", "pattern": "^[0-9]{2,8}$"},
                    "name": {"type": "string"},
                    "ha1": {
                        "type": "object",
                        "additionalProperties": False,
                        "minProperties": 1,
                        "properties": {alg: _HEX64 for alg in ALGORITHMS},
                    },
                    "permissions": {"enum": list(PERMISSION_CLASSES)},
                    "voicemail": {"type": ["string", "null"]},
                    "follow_me": {"type": ["string", "null"], "pattern": "^[0-9+]{1,20}$"},
                    "max_contacts": {"type": "integer", "minimum": 1, "maximum": 20},
                    "digest_algorithms": {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": True,
                        "items": {"enum": list(ALGORITHMS)},
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Extension:
    number: str
    name: str = ""
    ha1: dict[str, str] = field(default_factory=dict)  # algorithm -> HA1 (hex)
    permissions: str = "internal"
    voicemail: str | None = None
    follow_me: str | None = None
    max_contacts: int = 5
    digest_algorithms: tuple[str, ...] | None = None  # challenge order for this phone; None: the box's


@dataclass(frozen=True)
class FeatureRequest:
    """A dialled feature code: action is one of DEFAULT_FEATURE_CODES' keys, argument the digits after."""

    action: str
    argument: str


@dataclass
class Directory:
    realm: str = "callbox"
    extensions: dict[str, Extension] = field(default_factory=dict)
    feature_codes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FEATURE_CODES))

    def get(self, number: str) -> Extension | None:
        return self.extensions.get(number)

    def feature(self, dialled: str) -> FeatureRequest | None:
        """Which feature code `dialled` is, longest code first (so `*8` does not shadow `*81`)."""
        for action, code in sorted(self.feature_codes.items(), key=lambda kv: -len(kv[1])):
            if dialled.startswith(code):
                arg = dialled[len(code) :]
                if arg and not arg.isdigit():
                    return None
                return FeatureRequest(action, arg)
        return None

    @classmethod
    def from_document(cls, doc: YamlDocument) -> Directory:
        data = doc.data
        realm = data.get("realm", "callbox")
        codes = dict(DEFAULT_FEATURE_CODES)
        codes.update(data.get("feature_codes") or {})
        seen_codes: dict[str, str] = {}
        for action, code in codes.items():
            if code in seen_codes:
                raise doc.error(("feature_codes", action), f"same code as {seen_codes[code]}")
            seen_codes[code] = action
        exts: dict[str, Extension] = {}
        for i, item in enumerate(data["extensions"]):
            number = item["number"]
            if number in exts:
                raise doc.error(("extensions", i, "number"), f"extension {number} defined twice")
            exts[number] = Extension(
                number=number,
                name=item.get("name", ""),
                ha1={k.upper(): v.lower() for k, v in item["ha1"].items()},
                permissions=item.get("permissions", "internal"),
                voicemail=item.get("voicemail"),
                follow_me=item.get("follow_me"),
                max_contacts=item.get("max_contacts", 5),
                digest_algorithms=tuple(item["digest_algorithms"]) if "digest_algorithms" in item else None,
            )
        return cls(realm, exts, codes)

    @classmethod
    def load(cls, path: str | Path) -> Directory:
        return cls.from_document(load_yaml(path, SCHEMA))

    @classmethod
    def loads(cls, text: str, file: str = "<string>") -> Directory:
        return cls.from_document(loads_yaml(text, SCHEMA, file))

    @classmethod
    def with_passwords(cls, realm: str, entries: dict[str, str], **common: Any) -> Directory:
        """A directory built from number -> password (tests, tools); only HA1s are kept."""
        exts = {n: Extension(n, ha1=make_ha1_set(n, realm, pw), **common) for n, pw in entries.items()}
        return cls(realm, exts)


__all__ = ["ConfigError", "Directory", "Extension", "FeatureRequest", "SCHEMA"]


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m firmware.sip.extensions NUMBER PASSWORD [REALM]", file=sys.stderr)
        return 2
    realm = argv[2] if len(argv) == 3 else "callbox"
    for alg, value in make_ha1_set(argv[0], realm, argv[1]).items():
        print(f"{alg}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
