"""Call control: calls, bridges, routing, features, one durable CDR per call.

`CallManager` implements `CallControl` (firmware.calls.endpoint): line owners report incoming calls and
line events; the manager routes (blacklist, VIP, inbound routes with calendars), runs IVR sessions, rings
extensions and queues, bridges legs in the media engine and writes each call's CDR to the store before it
releases the call's channels.

Timing uses the shared clock (`clock.call_later`); wall-clock time for CDRs and calendars is
`clock.now() + epoch_offset` (0 for a VirtualClock started at an epoch, `time.time() - monotonic()` for the
RealClock).

Features (called by the SIP layer, agents' feature codes, the console or tests): `blind_transfer`,
`consult` + `complete_transfer` / `cancel_consult` (attended transfer), `hold` / `unhold` (music on hold),
`conference_add` (three-way), `pickup`, `dial` (outbound from an extension, with permissions), follow-me
on an unanswered extension, `listen` / `whisper` / `barge` for supervisors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from board.clock import Clock, Timer
from firmware.acd.recordings import RecordingPolicy
from firmware.calls.dialplan import Dest, Dialplan
from firmware.calls.endpoint import Cause, Endpoint, Originator, disposition_for
from firmware.engine import MediaEngine, MediaEvent
from firmware.engine.record import Recording, RecordingWriter
from firmware.engine.tones import tone
from firmware.storage import Cdr, Store


@dataclass
class Call:
    uniqueid: str
    a: Endpoint
    cdr: Cdr
    b: Endpoint | None = None  # the party A is bridged with
    state: str = "new"  # new | ivr | ringing | queue | up | held | busy | ending | ended
    vars: dict[str, Any] = field(default_factory=dict)
    ivr: Any = None  # firmware.ivr.executor.IvrSession while A is in an IVR
    ringing: list[Endpoint] = field(default_factory=list)  # outbound legs being offered the call
    hunt: QueueHunt | None = None
    consult: Endpoint | None = None  # attended transfer: the party B is consulting
    conference: list[Endpoint] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    on_ring_fail: Callable[[int], None] | None = None
    on_b_hangup: Callable[[], None] | None = None
    recording: Recording | None = None
    survey_flow: str | None = None
    queue: str | None = None

    def legs(self) -> list[Endpoint]:
        out = [self.a]
        for ep in (self.b, self.consult, *self.ringing, *self.conference):
            if ep is not None and ep not in out:
                out.append(ep)
        return out


class QueueHunt:
    """Ring a queue's agent extensions in turn (the box's own queue when no ACD takes the call)."""

    def __init__(self, mgr: CallManager, call: Call, queue: str, priority: int) -> None:
        self.mgr = mgr
        self.call = call
        self.queue = queue
        self.priority = priority
        cfg = mgr.plan.queues[queue]
        self.agents = [str(a) for a in cfg["agents"]]
        self.ring_seconds = float(cfg.get("ring_seconds", 15))
        self.max_wait = float(cfg.get("max_wait", 600))
        self.timeout_dest = cfg.get("timeout_dest")
        self.started = mgr.clock.now()
        self.next_index = 0

    def start(self) -> None:
        self.try_next()

    def try_next(self) -> None:
        mgr, call = self.mgr, self.call
        if call.state not in ("queue",):
            return
        if mgr.clock.now() - self.started >= self.max_wait:
            mgr.route_to(
                call, Dest("hangup") if not self.timeout_dest else _dest(self.timeout_dest), "queue timeout"
            )
            return
        for _ in range(len(self.agents)):
            ext = self.agents[self.next_index % len(self.agents)]
            self.next_index += 1
            if mgr.extension_busy(ext):
                continue
            leg = mgr.ring_extension(call, ext, self.ring_seconds, on_fail=lambda cause: self.try_next())
            if leg is not None:
                return
        # everybody busy: try again shortly
        mgr.later(call, 2.0, self.try_next)


def _dest(d: dict[str, Any]) -> Dest:
    from firmware.calls.dialplan import dest_from

    return dest_from(d)


class CallManager:
    def __init__(
        self,
        engine: MediaEngine,
        store: Store,
        clock: Clock,
        plan: Dialplan,
        epoch_offset: float = 0.0,
        data_dir: str | Path | None = None,
        recorder: RecordingWriter | None = None,
        prompts: Any = None,
        engine_events: str = "listener",
    ) -> None:
        """engine_events: "listener" when the engine is stepped on this thread (VirtualClock), "queue" when
        it runs on its own thread: then the control loop calls `pump()` (firmware.calls.runtime)."""
        self.engine = engine
        self.store = store
        self.clock = clock
        self.plan = plan
        self.epoch_offset = epoch_offset
        self.data_dir = Path(data_dir) if data_dir else None
        self.recorder = recorder
        self.prompts = prompts  # firmware.ivr.prompts.PromptLibrary
        self.flows: dict[str, Any] = {}  # name -> firmware.ivr.flow.Flow
        # The ACD (firmware.acd.director.AcdDirector) when one runs: it takes the queues it `owns`;
        # other queues are hunted here (ring the queue's agents in turn).
        self.acd: Any = None
        # Line owners that want the detections on their rows (FXO caller ID and call-progress tones, R2 MF):
        # each returns True when it took the event.
        self.media_watchers: list[Callable[[MediaEvent], bool]] = []
        self.trunks: dict[str, Originator] = {}
        self.extension_lines: Originator | None = None
        self.calls: dict[str, Call] = {}
        self._by_leg: dict[int, Call] = {}  # id(endpoint) -> call
        self._by_channel: dict[int, tuple[Call, Endpoint]] = {}
        self._seq = itertools.count(1)
        self.pending_cdrs: list[Cdr] = []  # written later if the store failed (alarmed)
        self._cdr_writes: dict[str, Any] = {}  # uniqueid -> queue-log writes that go with a pending CDR
        self.alarms: list[str] = []
        self.log: list[tuple[float, str, str]] = []  # (time, uniqueid, what): call events for the console
        self.on_call_end: list[Callable[[Call], None]] = []
        self._tones = {
            name: engine.add_buffer(f"tone/{name}", tone(name)) for name in ("busy", "ringback", "congestion")
        }
        if engine_events == "listener":
            engine.listeners.append(self._engine_events)

    # ------------------------------------------------------------------ helpers
    def wall(self) -> float:
        return self.clock.now() + self.epoch_offset

    def note(self, call: Call, what: str) -> None:
        self.log.append((self.clock.now(), call.uniqueid, what))

    def later(self, call: Call, delay: float, fn: Callable[[], None]) -> Timer:
        def run() -> None:
            if call.state != "ended":
                fn()

        t = self.clock.call_later(delay, run)
        call.timers.append(t)
        return t

    def _attach(self, call: Call, ep: Endpoint) -> None:
        self._by_leg[id(ep)] = call
        self._by_channel[ep.channel] = (call, ep)

    def _detach(self, ep: Endpoint) -> None:
        self._by_leg.pop(id(ep), None)
        cur = self._by_channel.get(ep.channel)
        if cur is not None and cur[1] is ep:
            del self._by_channel[ep.channel]
        self.engine.release(ep.channel)

    def move_channel(self, ep: Endpoint, channel: int) -> None:
        """A line moved a leg to another channel (PRI glare): follow it in the engine and the maps."""
        call = self.call_of(ep)
        if call is not None:
            cur = self._by_channel.get(ep.channel)
            if cur is not None and cur[1] is ep:
                del self._by_channel[ep.channel]
            self.engine.release(ep.channel)
            ep.channel = channel
            self._by_channel[channel] = (call, ep)
            if call.b is ep:
                self.engine.bridge(call.a.channel, channel)
        else:
            ep.channel = channel

    def call_of(self, ep: Endpoint) -> Call | None:
        return self._by_leg.get(id(ep))

    def extension_busy(self, ext: str) -> bool:
        return any(
            ep.number == ext for call in self.calls.values() for ep in call.legs() if ep.state != "down"
        )

    def set_plan(self, plan: Dialplan) -> None:
        """Swap in a new (already validated) dialplan; calls in progress keep going."""
        self.plan = plan

    def tone(self, ep: Endpoint, name: str) -> None:
        self.engine.play(ep.channel, [self._tones[name]], loop=True, replace=True)

    def moh(self, ep: Endpoint) -> None:
        buf = self.prompts.buffer(self.plan.moh) if self.prompts is not None else None
        self.engine.play(ep.channel, [buf or self._tones["ringback"]], loop=True, replace=True)

    # ------------------------------------------------------------------ CallControl: line events
    def _new_call(
        self, a: Endpoint, clid: str, src: str, dst: str, dcontext: str, linkedid: str = "",
        state: str = "new",
    ) -> Call:  # fmt: skip
        """A call with A leg `a` and its CDR opened now (uniqueid from the wall clock and a sequence)."""
        now = self.wall()
        uid = f"{now:.0f}.{next(self._seq)}"
        cdr = Cdr(uniqueid=uid, linkedid=linkedid or uid, clid=clid, src=src, dst=dst, start=now)
        cdr.dcontext, cdr.channel = dcontext, a.name
        call = Call(uid, a, cdr, state=state)
        self.calls[uid] = call
        self._attach(call, a)
        return call

    def incoming(self, ep: Endpoint, caller: str, called: str, caller_name: str | None = None) -> None:
        clid = f'"{caller_name}" <{caller}>' if caller_name else (f"<{caller}>" if caller else "")
        dcontext = f"from-{ep.trunk}" if ep.trunk else "from-internal"
        call = self._new_call(ep, clid, caller, called, dcontext)
        now, uid = call.cdr.start, call.uniqueid
        call.vars.update({"caller": caller, "dnis": called, "trunk": ep.trunk or "", "uniqueid": uid})
        self.note(call, f"incoming {caller} -> {called} on {ep.name}")
        if ep.kind == "local" or ep.trunk is None:
            # an extension going off-hook and dialling
            self.dial(call, ep, called)
            return
        if self.plan.blacklisted(caller):
            self.note(call, "blacklisted")
            call.cdr.lastapp, call.cdr.userfield = "Busy", "blacklist"
            self.busy(call, Cause.USER_BUSY)
            return
        vip = self.plan.vip_dest(caller)
        if vip is not None:
            self.note(call, f"VIP -> {vip.kind} {vip.target}")
            call.vars["vip"] = True
            self.route_to(call, vip, "vip")
            return
        dest, why = self.plan.route_inbound(ep.trunk, called, caller, now)
        self.note(call, f"{why} -> {dest.kind} {dest.target}")
        call.vars["route"] = why
        self.route_to(call, dest, why)

    def ringing(self, ep: Endpoint) -> None:
        call = self.call_of(ep)
        if call is None or ep not in call.ringing or call.b is not None or ep is call.a:
            return  # (consult / three-way legs: the initiator's own phone shows the ringing)
        if call.a.up:
            self.tone(call.a, "ringback")
        else:
            call.a.ring()

    def answered(self, ep: Endpoint) -> None:
        call = self.call_of(ep)
        if call is None:
            return
        ep.up = True
        if ep in call.ringing:
            call.ringing.remove(ep)
            for other in list(call.ringing):  # first to answer takes it
                self._drop_leg(call, other, Cause.NON_SELECTED)
            cb = getattr(ep, "_on_answer", None)
            if cb is not None:
                cb()
            else:
                self.connect(call, ep)

    def hangup(self, ep: Endpoint, cause: int) -> None:
        call = self.call_of(ep)
        if call is None:
            return
        ep.up = False
        self.note(call, f"{ep.name} hung up ({cause})")
        if ep is call.a:
            self.end_call(call, cause)
        elif ep in call.ringing:
            call.ringing.remove(ep)
            self._detach(ep)
            cb = getattr(ep, "_on_fail", None)
            call.vars["last_ring_cause"] = cause
            if cb is not None:
                cb(cause)
            elif not call.ringing:
                self.end_call(call, cause, disposition=disposition_for(cause))
        elif ep is call.consult:
            call.consult = None
            self._detach(ep)
            self.unhold(call)
        elif ep in call.conference:
            call.conference.remove(ep)
            self._detach(ep)
            self._regroup(call)
        elif ep is call.b:
            call.b = None
            self._detach(ep)
            self.engine.unbridge(call.a.channel)
            if call.on_b_hangup is not None:
                fn, call.on_b_hangup = call.on_b_hangup, None
                fn()
            elif call.survey_flow and call.survey_flow in self.flows:
                self.start_ivr(call, call.survey_flow)
            else:
                self.end_call(call, Cause.NORMAL)

    def dtmf(self, ep: Endpoint, digit: str) -> None:
        call = self.call_of(ep)
        if call is not None and ep is call.a and call.ivr is not None:
            call.ivr.digit(digit)
        elif call is not None and ep is call.b and ep.kind in ("trunk", "fxo") and call.state == "up":
            self._trunk_feature_digit(call, digit)

    # In-band feature codes of a trunk or FXO party who is call B (an external number an extension dialled,
    # follow-me, a transfer out): what a SIP phone does with REFER, a telephone does with keys, as in
    # Asterisk's features.conf (blindxfer `#1`): `#1` then the number and `#` (or 3 s without a key) hands
    # A over to that number, within B's permissions, and B leaves.
    trunk_feature_codes: dict[str, str] = {"blind_transfer": "#1"}  # noqa: RUF012 - read-only defaults
    FEATURE_DIGIT_TIMEOUT = 3.0

    def _trunk_feature_digit(self, call: Call, digit: str) -> None:
        typed = str(call.vars.get("feature_keys", "")) + digit
        timer = call.vars.pop("feature_timer", None)
        if timer is not None:
            timer.cancel()
        code = self.trunk_feature_codes["blind_transfer"]
        if not typed.startswith(code):
            call.vars["feature_keys"] = typed if code.startswith(typed) else ""
            return
        target = typed[len(code) :]
        if target.endswith("#"):
            self._trunk_blind_transfer(call, target[:-1])
            return
        call.vars["feature_keys"] = typed
        call.vars["feature_timer"] = self.later(
            call, self.FEATURE_DIGIT_TIMEOUT, lambda: self._trunk_blind_transfer(call, target)
        )

    def _trunk_blind_transfer(self, call: Call, target: str) -> None:
        call.vars.pop("feature_keys", None)
        call.vars.pop("feature_timer", None)
        if not target or call.b is None:
            return
        self.note(call, f"{call.b.name} pressed a blind transfer to {target}")
        if not self.blind_transfer(call, target):
            self.note(call, f"transfer to {target} refused")

    def pump(self) -> int:
        """Drain the engine's event queue (real-time mode) and dispatch; returns how many."""
        batch: list[MediaEvent] = []
        while True:
            try:
                batch.append(self.engine.events.get_nowait())
            except Exception:  # noqa: BLE001 - queue.Empty
                break
        if batch:
            self._engine_events(batch)
        return len(batch)

    def _engine_events(self, events: list[MediaEvent]) -> None:
        for ev in events:
            if ev.kind in ("tone", "callerid", "r2mf") and any(w(ev) for w in self.media_watchers):
                continue
            found = self._by_channel.get(ev.channel)
            if found is None:
                if ev.kind == "record_failed":
                    self.alarm("recording", f"channel {ev.channel}: {ev.value}")
                continue
            call, ep = found
            if ev.kind == "dtmf":
                self.dtmf(ep, str(ev.value))
            elif ev.kind == "play_done" and call.ivr is not None and ep is call.a:
                call.ivr.play_done(ev.value)
            elif ev.kind == "record_failed":
                self.alarm(
                    "recording", f"{call.uniqueid} {ep.name}: {ev.value}; recording stopped, call continues"
                )

    def alarm(self, source: str, text: str) -> None:
        self.alarms.append(f"{source}: {text}")
        try:
            self.store.alarm(source, "alarm", text, self.wall())
        except Exception:  # noqa: BLE001 - the alarm log must never take a call down
            pass

    # ------------------------------------------------------------------ routing
    def route_to(self, call: Call, dest: Dest, why: str = "") -> None:
        if call.state == "ended":
            return
        call.ivr = None
        if dest.kind == "flow":
            if dest.target not in self.flows:
                self.note(call, f"flow {dest.target} not loaded")
                self.end_call(call, Cause.NORMAL_UNSPECIFIED, disposition="FAILED")
                return
            self.answer_a(call)
            self.start_ivr(call, dest.target)
        elif dest.kind == "queue":
            self.enter_queue(call, dest.target, dest.priority)
        elif dest.kind in ("extension", "agent"):
            call.cdr.lastapp, call.cdr.lastdata = "Dial", f"EXT/{dest.target}"
            self.dial_extension(call, dest.target)
        elif dest.kind == "external":
            call.cdr.lastapp, call.cdr.lastdata = "Dial", f"TRUNK/{dest.target}"
            self.dial_external(call, dest.target, from_ext=None)
        else:
            self.end_call(call, Cause.NORMAL)

    def answer_a(self, call: Call) -> None:
        if not call.a.up:
            call.a.answer()
            call.a.up = True
            call.cdr.answer = self.wall()
            call.cdr.disposition = "ANSWERED"
            if call.a.kind in ("trunk", "fxo"):
                self.engine.enable_echo(call.a.channel, True)

    def start_ivr(self, call: Call, flow: str) -> None:
        from firmware.ivr.executor import IvrSession

        call.state = "ivr"
        call.cdr.lastapp, call.cdr.lastdata = "IVR", flow
        self.engine.enable_detector("dtmf", call.a.channel, True)
        call.ivr = IvrSession(self, call, self.flows[flow])
        call.ivr.start()

    def busy(self, call: Call, cause: int) -> None:
        """Caller hears busy tone (early media, not answered), then the call is cleared and logged BUSY."""
        call.state = "busy"
        call.a.progress()
        self.tone(call.a, "busy")
        self.later(call, 5.0, lambda: self.end_call(call, cause, disposition="BUSY"))

    def feature(self, extension: str, action: str, argument: str) -> bool:
        """An extension dialled a feature code (the SIP side reports it): queue log-in / log-out, pause with a
        reason code and unpause go to the ACD. False when nobody here takes it."""
        if self.acd is not None and action in ("queue_login", "queue_logout", "pause", "unpause"):
            return bool(self.acd.feature(extension, action, argument))
        return False

    def enter_queue(self, call: Call, queue: str, priority: int = 0) -> None:
        owned_by_acd = self.acd is not None and self.acd.owns(queue)
        if queue not in self.plan.queues and not owned_by_acd:
            self.note(call, f"queue {queue} is configured nowhere")
            self.end_call(call, Cause.NORMAL_UNSPECIFIED, disposition="FAILED")
            return
        # what call control decides for every queue call, whoever picks the agent
        cfg = self.plan.queues.get(queue, {})
        call.survey_flow = cfg.get("survey")
        rec_share = float(cfg.get("record", 0))
        if rec_share and (int(call.uniqueid.split(".")[-1]) * 37 % 100) < rec_share:
            call.vars["record"] = True
        if owned_by_acd:
            self.acd.enter(call, queue, priority)
            return
        self.answer_a(call)
        self.engine.enable_detector("dtmf", call.a.channel, False)
        call.state = "queue"
        call.queue = queue
        call.cdr.lastapp, call.cdr.lastdata = "Queue", queue
        self.moh(call.a)
        call.hunt = QueueHunt(self, call, queue, priority)
        call.hunt.start()

    def ring_extension(
        self, call: Call, ext: str, seconds: float, on_fail: Callable[[int], None] | None = None
    ) -> Endpoint | None:
        if self.extension_lines is None:
            return None
        caller = call.cdr.src
        leg = self.extension_lines.originate(ext, caller, None, self)
        if leg is None:
            return None
        leg.number = ext
        self._ring_leg(call, leg, seconds, on_fail)
        return leg

    def ring_external(
        self, call: Call, number: str, seconds: float, on_fail: Callable[[int], None] | None = None
    ) -> Endpoint | None:
        """Ring `number` out through the outbound trunk group (the number presented per trunk) as one more
        leg of `call`; like ring_extension. The caller checks permissions first (this is the box's own
        call, e.g. an ACD callback). None when no trunk has a free channel."""
        leg = self.originate_external(number, None, call)
        if leg is None:
            return None
        leg.number = number
        self._ring_leg(call, leg, seconds, on_fail)
        return leg

    def _ring_leg(
        self, call: Call, leg: Endpoint, seconds: float, on_fail: Callable[[int], None] | None
    ) -> None:
        call.ringing.append(leg)
        self._attach(call, leg)
        leg._on_fail = on_fail  # type: ignore[attr-defined]
        self.note(call, f"ringing {leg.number} on {leg.name}")

        def timeout() -> None:
            if leg in call.ringing:
                call.ringing.remove(leg)
                self._drop_leg(call, leg, Cause.NO_ANSWER, detach_only=True)
                call.vars["last_ring_cause"] = Cause.NO_ANSWER
                if on_fail is not None:
                    on_fail(Cause.NO_ANSWER)
                elif not call.ringing:
                    self.end_call(call, Cause.NO_ANSWER, disposition="NO ANSWER")

        self.later(call, seconds, timeout)

    def originate_call(
        self, ext: str, caller_id: str, caller_name: str | None, dst: str, linkedid: str = ""
    ) -> Call | None:
        """A call the box places itself (an ACD callback): extension `ext` rings first and is the call's A
        leg (its `_on_answer` / `_on_fail` hooks tell the placer); further legs join with ring_external.
        Its CDR has src `ext`, dst `dst`, and `linkedid` ties it to the call it was placed for."""
        if self.extension_lines is None:
            return None
        leg = self.extension_lines.originate(ext, caller_id, caller_name, self)
        if leg is None:
            return None
        leg.number = ext
        call = self._new_call(leg, f"<{ext}>", ext, dst, "callbox-originate", linkedid, state="ringing")
        call.ringing.append(leg)  # its answer reaches the placer through leg._on_answer
        self.note(call, f"originate: ringing {ext} on {leg.name} for {dst}")
        return call

    def dial_extension(self, call: Call, ext: str) -> None:
        call.state = "ringing"
        fm = self.plan.extensions.get(ext, {}).get("follow_me")
        seconds = float(fm.get("after", self.plan.ring_seconds)) if fm else self.plan.ring_seconds

        def failed(cause: int) -> None:
            if fm and cause in (Cause.NO_ANSWER, Cause.NO_USER_RESPONSE, Cause.USER_BUSY):
                self.note(call, f"follow-me {ext} -> {fm['number']}")
                call.cdr.lastapp, call.cdr.lastdata = "FollowMe", str(fm["number"])
                self.dial_external(call, str(fm["number"]), from_ext=ext)
            else:
                self.end_call(call, cause, disposition=disposition_for(cause))

        if self.extension_busy(ext):
            failed(Cause.USER_BUSY)
            return
        if self.ring_extension(call, ext, seconds, on_fail=failed) is None:
            self.end_call(call, Cause.NO_CIRCUIT, disposition="CONGESTION")

    def originate_external(self, number: str, from_ext: str | None, call: Call) -> Endpoint | None:
        ext_cfg = self.plan.extensions.get(from_ext or "", {})
        group_name = ext_cfg.get("trunk_group") or self.plan.outbound.get("trunk_group")
        group = self.plan.trunk_groups.get(group_name or "", {"trunks": list(self.trunks)})
        for trunk in group.get("trunks", []):
            orig = self.trunks.get(trunk)
            if orig is None:
                continue
            present = str((group.get("present") or {}).get(trunk, group.get("present_default", call.cdr.src)))
            leg = orig.originate(number, present, None, self)
            if leg is not None:
                call.vars["presented"] = present
                return leg
        return None

    def dial_external(self, call: Call, number: str, from_ext: str | None) -> None:
        call.state = "ringing"
        leg = self.originate_external(number, from_ext, call)
        if leg is None:
            self.note(call, f"no trunk channel for {number}")
            self.end_call(call, Cause.NO_CIRCUIT, disposition="CONGESTION")
            return
        call.ringing.append(leg)
        self._attach(call, leg)
        self.note(call, f"dialling {number} on {leg.name}")
        self.later(
            call, self.plan.ring_seconds * 3, lambda: leg in call.ringing and self._ring_timeout(call, leg)
        )

    def _ring_timeout(self, call: Call, leg: Endpoint) -> None:
        call.ringing.remove(leg)
        self._drop_leg(call, leg, Cause.NO_ANSWER, detach_only=True)
        if not call.ringing:
            self.end_call(call, Cause.NO_ANSWER, disposition="NO ANSWER")

    def dial(self, call: Call, ep: Endpoint, number: str) -> None:
        """An extension dialled `number`: internal, or out through a trunk group if permitted."""
        ext = ep.number
        call.cdr.src = ext
        call.cdr.clid = f"<{ext}>"
        call.cdr.dcontext = "from-internal"
        if self.acd is not None and self.acd.feature_dial(call, ep, number):
            return  # a code the ACD serves (voicemail retrieval *97 / *98)
        ok, cls = self.plan.permitted(ext, number)
        call.vars["class"] = cls
        if not ok:
            self.note(call, f"{ext} may not call {cls} number {number}")
            call.cdr.lastapp, call.cdr.userfield = "Congestion", f"denied:{cls}"
            call.state = "busy"
            self.tone(ep, "congestion")
            self.later(call, 3.0, lambda: self.end_call(call, Cause.OUTGOING_BARRED, disposition="FAILED"))
            return
        call.cdr.lastapp, call.cdr.lastdata = "Dial", number
        if cls == "internal":
            self.dial_extension(call, number)
        else:
            self.dial_external(call, number, from_ext=ext)

    # ------------------------------------------------------------------ bridging
    def connect(self, call: Call, ep: Endpoint) -> None:
        """Bridge A with `ep` (which just answered)."""
        self.answer_a(call)
        if call.ivr is not None:
            call.ivr.cancel()
            call.ivr = None
        self.engine.enable_detector("dtmf", call.a.channel, False)
        self.engine.stop_play(call.a.channel)
        call.b = ep
        call.hunt = None
        call.state = "up"
        call.cdr.dstchannel = ep.name
        if ep.kind in ("trunk", "fxo"):
            self.engine.enable_echo(ep.channel, True)
            if self.trunk_feature_codes:
                self.engine.enable_detector("dtmf", ep.channel, True)  # in-band feature codes from B
        self.engine.bridge(call.a.channel, ep.channel)
        self.note(call, f"connected {call.a.name} <-> {ep.name}")
        if self.recorder is not None and self.data_dir is not None and self._should_record(call, ep):
            self.start_recording(call)

    def _should_record(self, call: Call, ep: Endpoint) -> bool:
        """Recording per extension, then per queue (its share of calls), then per trunk: an explicit setting
        on the most specific level wins (RecordingPolicy); with none, the call is not recorded."""
        extensions = {n: bool(e["record"]) for n, e in self.plan.extensions.items() if "record" in e}
        queue_cfg = self.plan.queues.get(call.queue or "", {})
        queues = {call.queue: bool(call.vars.get("record"))} if call.queue and "record" in queue_cfg else {}
        policy = RecordingPolicy(queues=queues, extensions=extensions, trunks=self.plan.record_trunks)
        extension = next((e.number for e in (ep, call.a) if e.trunk is None and e.number), None)
        trunk = next((e.trunk for e in (call.a, ep) if e.trunk is not None), None)
        return policy.should_record(queue=call.queue, extension=extension, trunk=trunk)

    def start_recording(self, call: Call) -> None:
        assert self.recorder is not None and self.data_dir is not None
        path = self.data_dir / "recordings" / f"{call.uniqueid}.wav"
        fields = {"number": call.cdr.src, "queue": call.queue or "", "trunk": call.a.trunk or ""}
        if call.b is not None:
            fields["agent"] = getattr(call.b, "number", "") or ""
        rec_id = self.store.add_recording(call.uniqueid, str(path), "call", self.wall(), **fields)

        def done(rec: Recording) -> None:
            self.store.finish_recording(rec_id, rec.seconds, rec.error is None, rec.error or "")

        call.recording = self.recorder.open(path, done)
        self.engine.record(call.a.channel, call.recording)

    def _drop_leg(self, call: Call, ep: Endpoint, cause: int, detach_only: bool = False) -> None:
        if ep in call.ringing:
            call.ringing.remove(ep)
        ep.hangup(cause)
        self._detach(ep)

    # ------------------------------------------------------------------ features
    def hold(self, call: Call) -> None:
        """A (the caller) hears music; B is free (e.g. to consult)."""
        if call.b is None or call.state != "up":
            return
        call.state = "held"
        self.engine.unbridge(call.a.channel)
        self.moh(call.a)
        self.note(call, "hold")
        self._tell_acd(call, "hold")

    def unhold(self, call: Call) -> None:
        if call.state != "held" or call.b is None:
            return
        self.engine.stop_play(call.a.channel)
        self.engine.bridge(call.a.channel, call.b.channel)
        call.state = "up"
        self.note(call, "unhold")
        self._tell_acd(call, "unhold")

    def blind_transfer(self, call: Call, target: str) -> bool:
        """B hands A over to an extension or external number and leaves at once."""
        if call.b is None:
            return False
        b = call.b
        ok, cls = self.plan.permitted(b.number, target)
        if not ok:
            return False
        call.b = None
        self.engine.unbridge(call.a.channel)
        b.hangup(Cause.NORMAL)
        self._detach(b)
        call.cdr.lastapp, call.cdr.lastdata = "Transfer", target
        self.note(call, f"blind transfer to {target}")
        self._tell_acd(call, "blind_transfer", target)
        self.tone(call.a, "ringback")
        if cls == "internal":
            self.dial_extension(call, target)
        else:
            self.dial_external(call, target, from_ext=b.number)
        return True

    def _originate_for_b(self, call: Call, target: str) -> Endpoint | None:
        """A new leg from the call's B party to `target`, within B's permissions (consult, three-way)."""
        assert call.b is not None
        ok, cls = self.plan.permitted(call.b.number, target)
        if not ok:
            return None
        if cls == "internal":
            leg = (
                self.extension_lines.originate(target, call.b.number, None, self)
                if self.extension_lines
                else None
            )
        else:
            leg = self.originate_external(target, call.b.number, call)
        if leg is not None:
            leg.number = target
        return leg

    def consult(self, call: Call, target: str) -> Endpoint | None:
        """Attended transfer, step 1: A on hold, B rings `target` and talks to them when they answer."""
        if call.b is None or call.state != "up":
            return None
        leg = self._originate_for_b(call, target)
        if leg is None:
            return None
        self.hold(call)
        call.consult = leg
        self._attach(call, leg)
        b = call.b

        def answered() -> None:
            self.engine.bridge(b.channel, leg.channel)
            self.note(call, f"consulting {target}")

        leg._on_answer = answered  # type: ignore[attr-defined]
        call.ringing.append(leg)

        def failed(cause: int) -> None:
            call.consult = None
            self.unhold(call)

        leg._on_fail = failed  # type: ignore[attr-defined]
        return leg

    def complete_transfer(self, call: Call) -> bool:
        """Attended transfer, step 2: A is bridged with the consulted party, B leaves."""
        c = call.consult
        if c is None or not c.up or call.b is None:
            return False
        b = call.b
        call.consult = None
        self.engine.unbridge(b.channel, c.channel)
        b.hangup(Cause.NORMAL)
        self._detach(b)
        self.engine.stop_play(call.a.channel)
        call.b = c
        call.state = "up"
        call.cdr.dstchannel = c.name
        call.cdr.lastapp, call.cdr.lastdata = "Transfer", c.number
        self.engine.bridge(call.a.channel, c.channel)
        self.note(call, f"attended transfer to {c.name}")
        self._tell_acd(call, "attended_transfer", c.number)
        return True

    def _tell_acd(self, call: Call, what: str, target: str = "") -> None:
        """Holds and transfers reach the ACD (its AHT counts hold; a transfer frees the agent)."""
        if self.acd is not None:
            try:
                self.acd.call_event(call, what, target)
            except Exception as exc:  # noqa: BLE001 - the ACD must never break a call feature
                self.alarm("acd", f"{call.uniqueid} {what}: {exc}")

    def phone_hold(self, ep: Endpoint, held: bool) -> None:
        """A phone put its call on hold or took it back (SIP re-INVITE: SipLine.on_hold): the other party
        hears music on hold meanwhile. (A phone's REFER goes to `transfer`.)"""
        call = self.call_of(ep)
        if call is None or ep is not call.b:
            return
        if held:
            self.hold(call)
        else:
            self.unhold(call)

    def cancel_consult(self, call: Call) -> None:
        c = call.consult
        if c is None:
            return
        call.consult = None
        if c in call.ringing:
            call.ringing.remove(c)
        c.hangup(Cause.NORMAL)
        self._detach(c)
        self.unhold(call)

    def transfer(self, ep: Endpoint, target: str, replaces: Endpoint | None = None) -> bool:
        """A phone asked for a transfer (SIP REFER, `SipLine.on_transfer`). Blind: `ep` is the call's B
        party, A goes to `target`. Attended, as phones do it (RFC 3891 Replaces in the Refer-To): the phone
        consulted on a call of its own (`replaces`, the leg it dialled the target on); that call's far party
        becomes A's consulted party and `complete_transfer` joins them, both of the phone's legs leave."""
        call = self.call_of(ep)
        if call is None:
            return False
        if replaces is None:
            return ep is call.b and self.blind_transfer(call, target)
        other = self.call_of(replaces)
        if other is None or other is call:
            return False
        if ep is not call.b:  # the phone may REFER on either of its calls: the other one holds A then
            call, other, ep, replaces = other, call, replaces, ep
        far = other.b if replaces is other.a else None
        if call.b is not ep or far is None or not far.up:
            return False
        other.b = None
        self._by_leg.pop(id(far), None)
        call.consult = far
        self._attach(call, far)
        if not self.complete_transfer(call):
            return False
        self.note(other, f"consult call handed over to {call.uniqueid}")
        self.end_call(other, Cause.NORMAL)
        return True

    def conference_add(self, call: Call, target: str) -> Endpoint | None:
        """Three-way: ring `target`; when they answer, A, B and they all hear each other."""
        if call.b is None:
            return None
        leg = self._originate_for_b(call, target)
        if leg is None:
            return None
        self._attach(call, leg)
        call.ringing.append(leg)

        def answered() -> None:
            call.conference.append(leg)
            self._regroup(call)
            self.note(call, f"three-way with {leg.name}")

        leg._on_answer = answered  # type: ignore[attr-defined]
        leg._on_fail = lambda cause: None  # type: ignore[attr-defined]
        return leg

    def _regroup(self, call: Call) -> None:
        group = call.a.channel  # unique while the call holds that channel
        members = [ep for ep in (call.a, call.b, *call.conference) if ep is not None and ep.up]
        if len(members) >= 3:
            self.engine.unbridge(*[m.channel for m in members])
            self.engine.set_conference(group, [m.channel for m in members])
        else:
            self.engine.set_conference(group, [])
            if call.b is not None and call.a.up:
                self.engine.bridge(call.a.channel, call.b.channel)

    def pickup(self, picker: Endpoint) -> bool:
        """`picker` (an extension that is off-hook) takes a call ringing an extension of its pickup group."""
        group = self.plan.extensions.get(picker.number, {}).get("pickup_group")
        for call in list(self.calls.values()):
            for leg in list(call.ringing):
                ext_cfg = self.plan.extensions.get(leg.number, {})
                if group is not None and ext_cfg.get("pickup_group") == group and leg.number != picker.number:
                    self._drop_leg(call, leg, Cause.NON_SELECTED)
                    for other in list(call.ringing):
                        self._drop_leg(call, other, Cause.NON_SELECTED)
                    own = self.call_of(picker)
                    if own is not None and own is not call:
                        self._forget(own, picker)
                    self._attach(call, picker)
                    self.note(call, f"picked up by {picker.name}")
                    self.connect(call, picker)
                    return True
        return False

    def _forget(self, call: Call, ep: Endpoint) -> None:
        """`ep` leaves `call` for another one (pickup): the old call ends without touching `ep`."""
        self._by_leg.pop(id(ep), None)
        if call.a is ep:
            for t in call.timers:
                t.cancel()
            call.state = "ended"
            self.calls.pop(call.uniqueid, None)

    def listen(self, supervisor: Endpoint, call: Call, mode: str = "listen") -> None:
        """Supervisor monitoring: listen (hears both), whisper (+ agent hears them), barge (+ caller too)."""
        if call.b is None:
            return
        self.engine.connect(supervisor.channel, call.b.channel, 0)
        self.engine.connect(supervisor.channel, call.a.channel, 1)
        if mode in ("whisper", "barge"):
            self.engine.connect(call.b.channel, supervisor.channel, 1)
        if mode == "barge":
            self.engine.connect(call.a.channel, supervisor.channel, 1)

    # ------------------------------------------------------------------ the end of a call
    def end_call(self, call: Call, cause: int = Cause.NORMAL, disposition: str | None = None) -> None:
        if call.state == "ended":
            return
        call.state = "ended"
        for t in call.timers:
            t.cancel()
        if call.ivr is not None:
            call.ivr.cancel()
            call.ivr = None
        log_writes = None  # the call's last queue-log lines: committed in the CDR's transaction
        if self.acd is not None:
            try:
                log_writes = self.acd.call_ending(call)  # the queue log says how it ended, with the CDR
            except Exception as exc:  # noqa: BLE001 - the ACD must never keep a call from ending
                self.alarm("acd", f"{call.uniqueid}: {exc}")
        cdr = call.cdr
        cdr.cause = cause
        if cdr.answer:
            cdr.disposition = "ANSWERED"
        else:
            cdr.disposition = disposition or "NO ANSWER"
        if cdr.survey is not None:
            cdr.userfield = (cdr.userfield + ";" if cdr.userfield else "") + f"survey={cdr.survey}"
        cdr.close(self.wall())
        # 1. the record is durable before anything is released
        try:
            self.retry_pending_cdrs()
            if self.pending_cdrs:
                raise OSError("earlier CDRs are still waiting for the store")
            self._write_cdr(cdr, log_writes)
        except Exception as exc:  # noqa: BLE001 - disk trouble must not keep channels stuck
            self.pending_cdrs.append(cdr)
            if log_writes:
                self._cdr_writes[cdr.uniqueid] = log_writes
            self.alarm("cdr", f"CDR {cdr.uniqueid} not written ({exc}); kept in memory, retried every 10 s")
            if len(self.pending_cdrs) == 1:
                self._schedule_cdr_retry()
        # 2. then the legs are cleared and the channels released
        for ep in call.legs():
            if ep.state != "down":
                ep.hangup(cause if ep is call.a else Cause.NORMAL)
            self._detach(ep)
        if call.recording is not None:
            call.recording.close()
        self.calls.pop(call.uniqueid, None)
        self.note(call, f"ended {cdr.disposition} ({cause})")
        for cb in self.on_call_end:
            cb(call)

    def _schedule_cdr_retry(self) -> None:
        def retry() -> None:
            self.retry_pending_cdrs()
            if self.pending_cdrs:
                self.clock.call_later(10.0, retry)

        self.clock.call_later(10.0, retry)

    def _write_cdr(self, cdr: Cdr, log_writes: Any) -> None:
        """The CDR and the queue-log writes that end the call (firmware.acd.queuelog.LogWrites), in one
        transaction; the queue-log text file gets its lines once that has committed."""
        if not log_writes:
            self.store.write_cdr(cdr)
            return
        self.store.write_cdr(cdr, log_writes.statements)
        log_writes.committed()

    def retry_pending_cdrs(self) -> int:
        written = 0
        while self.pending_cdrs:
            cdr = self.pending_cdrs[0]
            try:
                self._write_cdr(cdr, self._cdr_writes.get(cdr.uniqueid))
            except Exception:  # noqa: BLE001
                break
            self.pending_cdrs.pop(0)
            self._cdr_writes.pop(cdr.uniqueid, None)
            written += 1
        return written

    def status(self) -> dict[str, Any]:
        return {
            "calls": len(self.calls),
            "by_state": {
                s: sum(1 for c in self.calls.values() if c.state == s)
                for s in ("ivr", "queue", "ringing", "up", "held", "busy")
            },
            "channels_in_use": len(self._by_channel),
            "tick": self.engine.stats.summary(),
            "alarms": list(self.alarms[-10:]),
        }
