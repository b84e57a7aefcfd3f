"""Runs one caller through an IVR flow.

Each node is a generator that yields what it waits for (`_Play`, `_Digits`, `_Record`, `_Sleep`) and gets
the outcome sent back when the engine or a timer delivers it, so a node reads top to bottom like the
behaviour it implements. Inputs: `digit(d)` (in-band from the engine's DTMF detector or out-of-band from
signalling), `play_done(token)`, timers on the shared clock; `cancel()` when the caller hangs up.

Nothing can get stuck: every wait has a timeout or ends with the call; menus and collects have bounded
retries; a flow that loops without waiting for the caller is cut after MAX_STEPS nodes; the digit buffer is
bounded, so a caller pressing keys for ever costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from firmware.calls.dialplan import Dest, _days
from firmware.engine.tones import beep
from firmware.ivr.flow import Flow
from firmware.ivr.say import fragments

MAX_STEPS = 500
MAX_BUFFERED_DIGITS = 32
_VAR = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


@dataclass
class _Play:
    items: list[Any]
    barge: bool = True


@dataclass
class _Digits:
    max_digits: int
    first_timeout: float
    inter_timeout: float
    terminator: str = ""
    options: tuple[str, ...] = ()  # a menu: stop as soon as the buffer is a complete, unambiguous option


@dataclass
class _Record:
    max_seconds: float


@dataclass
class _Sleep:
    seconds: float


class _Hangup(Exception):
    pass


class IvrSession:
    def __init__(self, mgr: Any, call: Any, flow: Flow) -> None:
        self.mgr = mgr
        self.call = call
        self.flow = flow
        self.lang = str(call.vars.get("language", flow.language))
        self.buffer = ""
        self.gen: Generator[Any, Any, None] | None = None
        self.waiting: Any = None
        self.token = 0
        self.timer: Any = None
        self.steps = 0
        self.history: list[str] = []  # nodes visited (tests, console)
        self.done = False
        self._rec: Any = None
        self._executing = False

    # ------------------------------------------------------------------ inputs
    def start(self) -> None:
        self.gen = self._run()
        self._advance(None)

    def digit(self, d: str) -> None:
        if self.done:
            return
        if len(self.buffer) < MAX_BUFFERED_DIGITS:
            self.buffer += d
        w = self.waiting
        if isinstance(w, _Play) and w.barge:
            self.mgr.engine.stop_play(self.call.a.channel)
            self._resume(None)
        elif isinstance(w, _Digits):
            self._check_digits()
        elif isinstance(w, _Record) and d == "#":
            self._resume("#")

    def play_done(self, token: Any) -> None:
        if isinstance(self.waiting, _Play) and token == ("ivr", id(self), self.token):
            self._resume(None)

    def cancel(self) -> None:
        self.done = True
        self._cancel_timer()
        if self._rec is not None:
            self.mgr.engine.record(self.call.a.channel, None)
            self._rec = None
        if self.gen is not None and not self._executing:
            self.gen.close()
        self.gen = None

    # ------------------------------------------------------------------ machinery
    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _set_timer(self, seconds: float, result: Any) -> None:
        self._cancel_timer()
        self.timer = self.mgr.later(self.call, seconds, lambda: self._resume(result))

    def _resume(self, value: Any) -> None:
        if self.done or self.waiting is None:
            return
        self._cancel_timer()
        self.waiting = None
        self._advance(value)

    def _advance(self, value: Any) -> None:
        gen = self.gen
        if gen is None:
            return
        self._executing = True
        try:
            op = gen.send(value)
        except StopIteration:
            self.done = True
            self.gen = None
            return
        finally:
            self._executing = False
        if self.done or self.gen is None:  # the node ended the call or left the IVR while running
            gen.close()
            return
        self.waiting = op
        if isinstance(op, _Play):
            self.token += 1
            bufs = self._buffers(op.items)
            if op.barge and self.buffer:
                self._resume(None)  # keys already pressed: skip the prompt
                return
            self.mgr.engine.play(self.call.a.channel, bufs, replace=True, token=("ivr", id(self), self.token))
        elif isinstance(op, _Digits):
            self._set_timer(op.first_timeout if not self.buffer else op.inter_timeout, "timeout")
            self._check_digits()
        elif isinstance(op, _Record):
            self._set_timer(op.max_seconds, "max")
        elif isinstance(op, _Sleep):
            self._set_timer(op.seconds, None)

    def _check_digits(self) -> None:
        w = self.waiting
        if not isinstance(w, _Digits) or not self.buffer:
            return
        if w.terminator and w.terminator in self.buffer:
            self._resume("terminator")
            return
        if len(self.buffer) >= w.max_digits:
            self._resume("complete")
            return
        if (
            w.options
            and self.buffer in w.options
            and not any(o != self.buffer and o.startswith(self.buffer) for o in w.options)
        ):
            self._resume("complete")
            return
        self._set_timer(w.inter_timeout, "timeout")

    def _take(self, max_digits: int, terminator: str = "") -> str:
        got = self.buffer
        if terminator and terminator in got:
            got, _, rest = got.partition(terminator)
            self.buffer = rest
            return got
        got, self.buffer = got[:max_digits], got[max_digits:]
        return got

    # ------------------------------------------------------------------ values and prompts
    def value(self, text: Any) -> str:
        def sub(m: re.Match[str]) -> str:
            return str(self.call.vars.get(m.group(1), ""))

        return _VAR.sub(sub, str(text))

    def _buffers(self, items: list[Any]) -> list[Any]:
        lib = self.mgr.prompts
        if lib is None:
            return []
        out = []
        for item in items:
            if isinstance(item, str):
                names, lang = [item], self.lang
            elif "say" in item:
                lang = item.get("lang", self.lang)
                try:
                    names = fragments(item["say"], self.value(item["value"]), lang)
                except (ValueError, TypeError):
                    names = []
            elif isinstance(item, dict) and "beep" in item:
                out.append(self.mgr.engine.add_buffer("tone/beep", beep()))
                continue
            else:
                names, lang = [item["prompt"]], item.get("lang", self.lang)
            for name in names:
                buf = lib.buffer(name, lang, self.mgr.engine)
                if buf is not None:
                    out.append(buf)
        return out

    # ------------------------------------------------------------------ the flow
    def _run(self) -> Generator[Any, Any, None]:
        name: str | None = self.flow.start
        while name is not None:
            self.steps += 1
            if self.steps > MAX_STEPS:
                self.mgr.note(self.call, f"IVR {self.flow.name}: more than {MAX_STEPS} steps, hanging up")
                self.mgr.end_call(self.call)
                return
            self.history.append(name)
            self.call.vars["ivr_node"] = name
            node = self.flow.nodes[name]
            handler = getattr(self, f"_node_{node['type']}")
            name = yield from handler(node)

    def _prompts(self, node: dict[str, Any]) -> Generator[Any, Any, None]:
        if node.get("prompts"):
            yield _Play(list(node["prompts"]))

    def _node_play(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        if node.get("prompts"):
            yield _Play(list(node["prompts"]), barge=False)
        return node["next"]

    def _operator_node(self, node: dict[str, Any]) -> str | None:
        if not node.get("operator", True):
            return None
        return self.flow.operator

    def _node_menu(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        options = {str(k): v for k, v in node["options"].items()}
        operator = self._operator_node(node)
        keys = tuple(options) + (("0",) if operator and "0" not in options else ())
        max_len = max(len(k) for k in keys)
        for _attempt in range(int(node.get("retries", 3)) + 1):
            yield _Play(list(node.get("prompts", [])))
            reason = yield _Digits(max_len, float(node.get("timeout", 10)), float(node.get("inter_digit", 5)),
                                   "", keys)  # fmt: skip
            digits = self._take(max_len)
            if reason == "timeout" and not digits:
                self.mgr.note(self.call, f"menu {self.call.vars['ivr_node']}: no input")
                if node.get("timeout_prompt"):
                    yield _Play([node["timeout_prompt"]], barge=True)
                continue
            if digits in options:
                self.call.vars["menu_choice"] = digits
                return options[digits]
            if digits == "0" and operator:
                self.call.vars["menu_choice"] = "0"
                return operator
            self.mgr.note(self.call, f"menu {self.call.vars['ivr_node']}: invalid {digits!r}")
            self.buffer = ""
            if node.get("invalid_prompt"):
                yield _Play([node["invalid_prompt"]], barge=True)
        return node.get("fallback") or operator or self._hangup_node()

    def _hangup_node(self) -> str | None:
        self.mgr.end_call(self.call)
        return None

    def _node_collect(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        lo, hi = int(node.get("min", 1)), int(node.get("max", 20))
        term = node.get("terminator", "#")
        for _attempt in range(int(node.get("retries", 2)) + 1):
            yield _Play(list(node.get("prompts", [])))
            timeout, inter = float(node.get("timeout", 10)), float(node.get("inter_digit", 5))
            yield _Digits(hi + (1 if term else 0), timeout, inter, term)
            digits = self._take(hi, term)
            self.buffer = ""
            if lo <= len(digits) <= hi and digits.isdigit():
                self.call.vars[node["var"]] = digits
                return node["next"]
            if node.get("invalid_prompt"):
                yield _Play([node["invalid_prompt"]], barge=True)
        if node.get("fallback"):
            return node["fallback"]
        self.call.vars[node["var"]] = ""
        return node["next"]

    def _node_lookup(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        default = "${caller}" if node["by"] == "number" else "${account}"
        key = self.value(node.get("value", default))
        rec = self.mgr.store.lookup_customer(node["by"], key) if key else None
        for k in [k for k in self.call.vars if k.startswith("customer.")]:
            del self.call.vars[k]
        if rec is None:
            return node["missing"]
        for k, v in rec.items():
            self.call.vars[f"customer.{k}"] = v
        return node["found"]
        yield  # a generator like the others

    def _node_record(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        items = list(node.get("prompts", []))
        if node.get("beep", True):
            items.append({"beep": True})
        yield _Play(items, barge=False)
        self.buffer = ""
        mgr = self.mgr
        path = None
        if mgr.recorder is not None and mgr.data_dir is not None:
            n = sum(1 for k in self.call.vars if k.startswith("recording"))
            path = mgr.data_dir / "messages" / f"{self.call.uniqueid}-{n}.wav"
            # the mailbox (a queue's voicemail:BOX overflow) and the caller: how the message is found again
            fields = {"number": self.call.cdr.src, "extension": str(self.call.vars.get("mailbox", ""))}
            if self.call.queue:
                fields["queue"] = self.call.queue
            rec_id = mgr.store.add_recording(self.call.uniqueid, str(path), "message", mgr.wall(), **fields)

            def done(rec: Any) -> None:
                mgr.store.finish_recording(rec_id, rec.seconds, rec.error is None, rec.error or "")

            self._rec = mgr.recorder.open(path, done)
            mgr.engine.record(self.call.a.channel, self._rec)
        else:
            mgr.alarm("ivr", f"{self.call.uniqueid}: no recorder configured; message not recorded")
        yield _Record(float(node.get("max_seconds", 60)))
        if self._rec is not None:
            mgr.engine.record(self.call.a.channel, None)
            self._rec = None
        self.buffer = ""
        if path is not None:
            self.call.vars[node.get("var", "recording")] = str(path)
        return node["next"]

    def _goto(self, dest: Dest) -> Generator[Any, Any, str | None]:
        self.done = True
        self.mgr.route_to(self.call, dest, f"ivr {self.flow.name}")
        return None
        yield

    def _node_queue(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        yield from self._prompts_nobarge(node)
        prio = int(node.get("priority", 10 if self.call.vars.get("vip") else 0))
        return (yield from self._goto(Dest("queue", node["queue"], prio)))

    def _prompts_nobarge(self, node: dict[str, Any]) -> Generator[Any, Any, None]:
        if node.get("prompts"):
            yield _Play(list(node["prompts"]), barge=False)

    def _node_extension(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        yield from self._prompts_nobarge(node)
        return (yield from self._goto(Dest("extension", self.value(node["extension"]))))

    def _node_external(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        yield from self._prompts_nobarge(node)
        return (yield from self._goto(Dest("external", self.value(node["number"]))))

    def _node_flow(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        yield from self._prompts_nobarge(node)
        return (yield from self._goto(Dest("flow", node["flow"])))

    def _node_set(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        value = self.value(node["value"]) if isinstance(node["value"], str) else node["value"]
        self.call.vars[node["var"]] = value
        if node["var"] == "language" and value in ("cmn", "en"):
            self.lang = str(value)
        return node["next"]
        yield

    def _when(self, cond: dict[str, Any]) -> bool:
        plan = self.mgr.plan
        now: datetime = plan.local_time(self.mgr.wall())
        if "time" in cond:
            a, b = (time.fromisoformat(t) for t in cond["time"].split("-"))
            t = now.time()
            if not (a <= t < b if a <= b else (t >= a or t < b)):
                return False
        if "days" in cond and now.weekday() not in _days(cond["days"]):
            return False
        if "calendar_open" in cond:
            cal = plan.calendars.get(cond["calendar_open"])
            if cal is None or not cal.is_open(now):
                return False
        if "holiday" in cond:
            cal = plan.calendars.get(cond["holiday"])
            if cal is None or not cal.is_holiday(now):
                return False
        if "caller" in cond:
            p = str(cond["caller"])
            caller = str(self.call.vars.get("caller", ""))
            if not (re.match(p, caller) if p.startswith("^") else caller == p):
                return False
        if "var" in cond:
            v = self.call.vars.get(cond["var"])
            if "exists" in cond and (v not in (None, "")) != cond["exists"]:
                return False
            if "equals" in cond and str(v) != str(cond["equals"]):
                return False
            if "matches" in cond and not re.search(cond["matches"], str(v or "")):
                return False
        return True

    def _node_condition(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        for case in node["cases"]:
            if self._when(case["when"]):
                return case["next"]
        return node.get("else") or self._hangup_node()
        yield

    def _node_hangup(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        yield from self._prompts_nobarge(node)
        self.done = True
        self.mgr.end_call(self.call)
        return None

    def _node_survey(self, node: dict[str, Any]) -> Generator[Any, Any, str | None]:
        """Score 1-10 by key: one digit 1-9, or "10" (1 then 0); a lone 1 is 1 after the inter-digit wait."""
        for _attempt in range(int(node.get("retries", 1)) + 1):
            yield _Play(list(node.get("prompts", ["survey"])))
            scores = tuple(str(n) for n in range(1, 11))
            yield _Digits(2, float(node.get("timeout", 10)), 3.0, "#", scores)
            digits = self._take(2, "#")
            self.buffer = ""
            if digits.isdigit() and 1 <= int(digits) <= 10:
                self.call.cdr.survey = int(digits)
                self.mgr.note(self.call, f"survey score {digits}")
                if node.get("thanks_prompt", "survey_thanks"):
                    yield _Play([node.get("thanks_prompt", "survey_thanks")], barge=False)
                return node["next"]
            if node.get("invalid_prompt"):
                yield _Play([node["invalid_prompt"]], barge=True)
        return node["next"]
