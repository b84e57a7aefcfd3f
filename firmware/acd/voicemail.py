"""Voicemail boxes: PINs (stored hashed), new/old messages, retrieval by phone, message-waiting hooks.

Messages are what the `voicemail` flow records when a queue overflows to `voicemail:BOX` (recordings of
kind "message", filed under the mailbox in their `extension` field). This module adds:

- `voicemail.yaml` in the configuration directory: the mailboxes and their PINs, hashed (PBKDF2-SHA256,
  `callbox`-style `pbkdf2_sha256$iterations$salt$hash`; `hash_pin("1234")` makes one):

      mailboxes:
        "1001": {pin: "pbkdf2_sha256$20000$5f1c...$9a0b..."}

- `Voicemail`: messages per box, new until listened to, then old; saved or deleted (file and index row);
  `listeners` (mailbox, new, old) are told whenever a box changes, e.g. firmware.sip.mwi.MwiNotifier.update
  so the extension's phones light their message lamp;
- `VoicemailSession`: the retrieval call an extension reaches with *97 (its own box) or *98 (any box):
  mailbox (for *98) and PIN, three wrong PINs hang up; "you have N new and M old messages" in Mandarin or
  English; each message played, then 1 replay, 2 next, 7 delete, 9 save, # end. A key pressed while a
  message plays stops it and counts as the choice.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import wave
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.config import ConfigError, load_yaml, validate
from firmware.ivr.executor import IvrSession, _Digits, _Play
from firmware.ivr.flow import Flow

RETRIEVE_OWN = "*97"
RETRIEVE_ANY = "*98"
PIN_TRIES = 3
ITERATIONS = 20000

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "mailboxes": {
            "type": "object",
            "propertyNames": {"pattern": "^[0-9]{1,8}$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["pin"],
                "properties": {
                    "pin": {"type": "string", "pattern": r"^pbkdf2_sha256\$[0-9]+\$[0-9a-f]+\$[0-9a-f]{64}$"}
                },
            },
        }
    },
}

STATE_SCHEMA = "CREATE TABLE IF NOT EXISTS vm_state (recording INTEGER PRIMARY KEY, state TEXT NOT NULL)"


def hash_pin(pin: str, salt: str | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        _, iterations, salt, digest = stored.split("$")
        mine = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(iterations)).hex()
    except ValueError:
        return False
    return hmac.compare_digest(mine, digest)


def load_mailboxes(config_dir: str | Path | None) -> dict[str, str]:
    """Mailbox -> hashed PIN from CONFIG/voicemail.yaml (none without the file); ConfigError with file,
    line and field on a mistake."""
    if config_dir is None or not (Path(config_dir) / "voicemail.yaml").exists():
        return {}
    doc = load_yaml(Path(config_dir) / "voicemail.yaml")
    if doc.data is None:
        raise ConfigError(doc.file, None, "mailboxes", "the file is empty")
    validate(doc, SCHEMA)
    return {str(box): str(entry["pin"]) for box, entry in (doc.data.get("mailboxes") or {}).items()}


@dataclass(frozen=True)
class Message:
    id: int
    path: str
    number: str
    started: float
    state: str  # new | old


class Voicemail:
    def __init__(self, conn: sqlite3.Connection, mailboxes: dict[str, str]) -> None:
        self.conn = conn
        self.conn.execute(STATE_SCHEMA)
        self.conn.commit()
        self.mailboxes = mailboxes
        self.listeners: list[Callable[[str, int, int], None]] = []

    def messages(self, box: str) -> list[Message]:
        """The box's messages, new ones first, each group oldest first."""
        rows = self.conn.execute(
            "SELECT r.id, r.path, r.number, r.started, COALESCE(s.state, 'new') FROM recordings r"
            " LEFT JOIN vm_state s ON s.recording = r.id WHERE r.kind = 'message' AND r.extension = ?"
            " ORDER BY r.started, r.id",
            (box,),
        ).fetchall()
        found = [Message(int(r[0]), str(r[1]), str(r[2] or ""), float(r[3] or 0), str(r[4])) for r in rows]
        return [m for m in found if m.state == "new"] + [m for m in found if m.state == "old"]

    def counts(self, box: str) -> tuple[int, int]:
        messages = self.messages(box)
        new = sum(m.state == "new" for m in messages)
        return new, len(messages) - new

    def changed(self, box: str) -> None:
        new, old = self.counts(box)
        for listener in list(self.listeners):
            listener(box, new, old)

    def mark_old(self, box: str, message: Message) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO vm_state(recording, state) VALUES (?, 'old')", (message.id,)
        )
        self.conn.commit()
        if message.state == "new":
            self.changed(box)

    def delete(self, box: str, message: Message) -> None:
        self.conn.execute("DELETE FROM recordings WHERE id = ?", (message.id,))
        self.conn.execute("DELETE FROM vm_state WHERE recording = ?", (message.id,))
        self.conn.commit()
        Path(message.path).unlink(missing_ok=True)
        self.changed(box)

    def audio(self, message: Message) -> np.ndarray:
        """The message's samples (the caller's side of a two-channel recording), int16 at 8 kHz."""
        with wave.open(message.path, "rb") as w:
            channels = w.getnchannels()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return pcm.reshape(-1, channels)[:, 0].copy() if channels > 1 else pcm.copy()


class VoicemailSession(IvrSession):
    """The retrieval call (VoiceMailMain): runs on IvrSession's waits, prompts and timers."""

    def __init__(self, mgr: Any, call: Any, voicemail: Voicemail, box: str | None, lang: str = "cmn") -> None:
        super().__init__(mgr, call, Flow("voicemail_main", "", {}, lang))
        self.vm = voicemail
        self.box = box  # None: ask for it (*98)
        self.outcome = ""  # for tests and the console: done | wrong_pin | no_mailbox

    def _buffers(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, Message):
                try:
                    out.append(self.mgr.engine.add_buffer(f"vm/{item.id}", self.vm.audio(item)))
                except (OSError, wave.Error, EOFError) as error:  # a message file lost or cut short
                    self.mgr.alarm("voicemail", f"message {item.id}: {error}")
            else:
                out += super()._buffers([item])
        return out

    def _ask(self, prompt: str, max_digits: int) -> Generator[Any, Any, str]:
        yield _Play([prompt])
        yield _Digits(max_digits + 1, 10.0, 5.0, "#")
        got = self._take(max_digits, "#")
        self.buffer = ""
        return got

    def _bye(self, outcome: str) -> Generator[Any, Any, None]:
        self.outcome = outcome
        yield _Play(["goodbye"], barge=False)
        self.done = True
        self.mgr.end_call(self.call)

    def _run(self) -> Generator[Any, Any, None]:
        vm, box = self.vm, self.box
        for _attempt in range(PIN_TRIES):
            if self.box is None:
                box = yield from self._ask("vm_mailbox", 8)
            pin = yield from self._ask("vm_enter_pin", 12)
            if box in vm.mailboxes and check_pin(pin, vm.mailboxes[box]):
                break
            self.mgr.note(self.call, f"voicemail: wrong mailbox or PIN for {box!r}")
            yield _Play(["vm_wrong_pin"], barge=False)
        else:
            yield from self._bye("wrong_pin")
            return
        assert box is not None
        messages = vm.messages(box)
        new = sum(m.state == "new" for m in messages)
        yield _Play(
            [
                "vm_you_have",
                {"say": "number", "value": new},
                "vm_new_messages",
                {"say": "number", "value": len(messages) - new},
                "vm_old_messages",
            ]
        )
        index = 0
        while index < len(messages):
            message = messages[index]
            self.buffer = ""
            yield _Play([message])
            if message.state == "new":
                vm.mark_old(box, message)
            yield _Play(["vm_options"])
            yield _Digits(1, 10.0, 5.0, "", ("1", "2", "7", "9", "#"))
            choice = self._take(1)
            self.buffer = ""
            if choice == "1":
                continue
            if choice == "7":
                vm.delete(box, message)
                yield _Play(["vm_deleted"], barge=False)
            elif choice == "9":
                yield _Play(["vm_saved"], barge=False)
            elif choice == "#":
                break
            index += 1  # 2, 7, 9 or no key: the next message
        yield _Play(["vm_no_more"], barge=False)
        yield from self._bye("done")


__all__ = [
    "Message",
    "RETRIEVE_ANY",
    "RETRIEVE_OWN",
    "Voicemail",
    "VoicemailSession",
    "check_pin",
    "hash_pin",
    "load_mailboxes",
]
