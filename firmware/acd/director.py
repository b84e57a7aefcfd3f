"""The ACD in the box: runs queue calls of the call manager through the ACD decision core.

Call control hands a call to a queue (`CallManager.enter_queue`); when the queue is the ACD's, this
director takes it: the caller hears music on hold, the ACD's actions become call-control operations
(ring an agent's extension, connect, drop the other rings, say position and wait, offer the message /
callback options, send the caller on when they leave), and line events go back to the ACD (agent
answered or did not, caller pressed a key, either side hung up, the agent held or transferred the call).
The ACD is ticked from the box's clock.

Callbacks: when a kept place (`<callid>-cb`) reaches an agent, the box calls the agent first (a call of
its own, `CallManager.originate_call`, its CDR linked to the original call by linkedid), and once the agent
answers dials the customer out through the outbound trunk group (`ring_external`: the number presented per
trunk; the queue's `callback_permission` or the dialplan's default class checked first, as for the box's
own call). Customer answers: bridged, CONNECT. No answer / busy / congestion: CALLBACKFAILED, the agent is
free and the callback is tried again `callback_retry` s later, `callback_attempts` times in all.

Durability: the queue-log lines that end a call (COMPLETE*, ABANDON, transfers, a failed callback) are
collected, not committed, and handed to call control with `call_ending`, which commits them in the CDR's
transaction (firmware.acd.queuelog.LogWrites).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from firmware.acd.config import DESTINATION_KINDS
from firmware.acd.core import (
    Acd,
    Action,
    AgentPaused,
    Announce,
    Connect,
    Leave,
    Moved,
    OfferOptions,
    Ring,
    StickyOffer,
    StopRing,
)
from firmware.acd.queuelog import LogWrites
from firmware.ivr.say import say_queue_position, say_wait_time

if TYPE_CHECKING:
    from firmware.acd.voicemail import Voicemail
    from firmware.calls.endpoint import Endpoint
    from firmware.calls.manager import Call, CallManager

RING_GRACE = 1.0  # the ACD's own ring timeout governs; the manager's ring timer is only a backstop
PERMISSION_ORDER = ("internal", "local", "long_distance", "international")
CALLBACK_REASONS = {
    17: "busy",
    18: "noanswer",
    19: "noanswer",
    21: "rejected",
    34: "congestion",
    42: "congestion",
}


class _QueueKeys:
    """Stands in for an IVR session while the caller waits, so the manager hands it the caller's keys
    and the end of each announcement (its `digit` / `play_done` / `cancel` are what IvrSession offers)."""

    def __init__(self, director: AcdDirector, call: Call) -> None:
        self.director = director
        self.call = call

    def digit(self, digit: str) -> None:
        self.director.key(self.call, digit)

    def play_done(self, _name: object) -> None:
        self.director.mgr.moh(self.call.a)

    def cancel(self) -> None:
        pass


class AcdDirector:
    def __init__(self, mgr: CallManager, acd: Acd, tick_seconds: float = 0.25, lang: str = "cmn") -> None:
        self.mgr = mgr
        self.acd = acd
        self.lang = lang
        self.tick_seconds = tick_seconds
        self.calls: dict[str, Call] = {}  # ACD call id -> call
        self.rings: dict[tuple[str, str], Endpoint] = {}  # (call id, agent) -> the agent's ringing leg
        self._answering: dict[tuple[str, str], Endpoint] = {}  # the leg that just answered, until connected
        self.notes: list[str] = []
        self.callback_rings: dict[
            tuple[str, str], Call
        ] = {}  # (callback id, agent) -> call ringing the agent
        self.callbacks: dict[str, Call] = {}  # callback id -> the call carrying it (agent up)
        self._callback_of: dict[str, str] = {}  # call uniqueid -> callback id
        self._held: dict[str, LogWrites] = {}  # call uniqueid -> its last queue-log lines, for its CDR
        self.voicemail: Voicemail | None = None  # mailboxes (firmware.acd.voicemail), when configured
        self._stopped = False
        mgr.clock.call_later(tick_seconds, self._tick)

    def owns(self, queue: str) -> bool:
        return queue in self.acd.queues

    def stop(self) -> None:
        self._stopped = True

    # ---- from call control -------------------------------------------------------------------------

    def enter(self, call: Call, queue: str, priority: int = 0) -> None:
        mgr = self.mgr
        mgr.answer_a(call)
        call.state = "queue"
        call.queue = queue
        call.cdr.lastapp, call.cdr.lastdata = "Queue", queue
        call.ivr = _QueueKeys(self, call)
        mgr.engine.enable_detector("dtmf", call.a.channel, True)
        mgr.moh(call.a)
        self.calls[call.uniqueid] = call
        vip_agent = call.vars.get("vip_agent")
        self._run(self.acd.enter(call.uniqueid, queue, call.cdr.src, mgr.wall(), priority, vip_agent))

    def key(self, call: Call, digit: str) -> None:
        self._run(self.acd.key(call.uniqueid, digit, self.mgr.wall()))

    def call_ending(self, call: Call) -> LogWrites | None:
        """Before the call's CDR is written: how it ended in the queue log. The lines come back uncommitted;
        call control commits them in the CDR's transaction (then `committed()` writes the file)."""
        held = self._held.pop(call.uniqueid, None)
        with self.acd.log.collect() as writes:
            if call.uniqueid in self.calls:
                self.calls.pop(call.uniqueid)
                self._run(self.acd.hangup(call.uniqueid, self.mgr.wall()))
            callback = self._callback_of.pop(call.uniqueid, None)
            if callback is not None:
                self._callback_ending(call, callback)
        return held.merge(writes) if held is not None else writes

    def _collect(self, call: Call, run: Callable[[], list[Action]]) -> None:
        """Run an ACD input whose lines end `call` in the queue: they wait for the call's CDR."""
        with self.acd.log.collect() as writes:
            self._run(run())
        held = self._held.get(call.uniqueid)
        self._held[call.uniqueid] = held.merge(writes) if held is not None else writes

    def call_event(self, call: Call, what: str, target: str = "") -> None:
        """Call control's features on a queue call (CallManager._tell_acd): hold / unhold (AHT counts the
        hold), blind_transfer / attended_transfer (the queue call ends for the agent: BLINDTRANSFER /
        ATTENDEDTRANSFER, committed with the call's CDR)."""
        callid = call.uniqueid if call.uniqueid in self.calls else self._callback_of.get(call.uniqueid)
        if callid is None:
            return
        now = self.mgr.wall()
        if what == "hold":
            self._run(self.acd.hold(callid, now))
        elif what == "unhold":
            self._run(self.acd.unhold(callid, now))
        elif what in ("blind_transfer", "attended_transfer"):
            attended = what == "attended_transfer"
            self._collect(call, lambda: self.acd.transfer(callid, target, now, attended=attended))
            self.calls.pop(call.uniqueid, None)
            call.on_b_hangup = None  # the agent has gone; whoever takes the call now is no queue agent

    def feature_dial(self, call: Call, ep: Endpoint, number: str) -> bool:
        """An extension dialled a number: *97 (its own voicemail box) or *98 (any box, asked for) start the
        voicemail retrieval call. False for anything else (call control dials it as usual)."""
        from firmware.acd.voicemail import RETRIEVE_ANY, RETRIEVE_OWN, VoicemailSession

        if self.voicemail is None or number not in (RETRIEVE_OWN, RETRIEVE_ANY):
            return False
        mgr = self.mgr
        mgr.answer_a(call)
        call.state = "ivr"
        call.cdr.lastapp, call.cdr.lastdata = "VoiceMailMain", number
        mgr.engine.enable_detector("dtmf", call.a.channel, True)
        box = ep.number if number == RETRIEVE_OWN else None
        call.ivr = VoicemailSession(mgr, call, self.voicemail, box, self.lang)
        call.ivr.start()
        return True

    def message_left(self, call: Call) -> None:
        """A call ended (CallManager.on_call_end): a message it left in a mailbox changes that box."""
        box = call.vars.get("mailbox")
        if self.voicemail is not None and box:
            self.voicemail.changed(str(box))

    def feature(self, extension: str, action: str, argument: str) -> bool:
        """An agent's feature code from their phone (SIP `on_feature`): *41 log in, *42 log out,
        *43[code] pause with a reason code, *44 unpause. False when the extension is no agent of ours."""
        if extension not in self.acd.agents:
            return False
        now = self.mgr.wall()
        if action == "queue_login":
            self._run(self.acd.login(extension, now))
        elif action == "queue_logout":
            self._run(self.acd.logout(extension, now))
        elif action == "pause":
            self._run(self.acd.pause(extension, now, f"code {argument}" if argument else "pause"))
        elif action == "unpause":
            self._run(self.acd.unpause(extension, now))
        else:
            return False
        return True

    # ---- to call control ---------------------------------------------------------------------------

    def _tick(self) -> None:
        if self._stopped:
            return
        self._run(self.acd.tick(self.mgr.wall()))
        self.mgr.clock.call_later(self.tick_seconds, self._tick)

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            handler = self._handlers.get(type(action))
            if handler is not None:
                handler(self, action)

    def _ring(self, action: Ring) -> None:
        if action.callback_number is not None:
            self._ring_for_callback(action)
            return
        call = self.calls.get(action.callid)
        if call is None:
            self._run(self.acd.declined(action.callid, action.agent, self.mgr.wall()))
            return
        callid, agent = action.callid, action.agent

        def failed(_cause: int) -> None:
            self.rings.pop((callid, agent), None)
            self._run(self.acd.declined(callid, agent, self.mgr.wall()))

        leg = self.mgr.ring_extension(call, agent, action.timeout + RING_GRACE, on_fail=failed)
        if leg is None:
            failed(0)
            return
        self.rings[(callid, agent)] = leg
        leg._on_answer = lambda: self._answered(callid, agent)  # type: ignore[attr-defined]

    def _answered(self, callid: str, agent: str) -> None:
        leg = self.rings.pop((callid, agent), None)
        call = self.calls.get(callid)
        if leg is None or call is None:
            return
        actions = self.acd.answered(callid, agent, self.mgr.wall())
        if not any(isinstance(a, Connect) for a in actions):
            self.mgr._drop_leg(call, leg, 26)  # the ACD had already moved on (26: non-selected user clearing)
            return
        # call control has taken the answering leg out of the call's ringing legs already: hand it over
        self._answering[(callid, agent)] = leg
        self._run(actions)

    def _connect(self, action: Connect) -> None:
        if action.callback_number is not None:
            self._dial_customer(action.callid, action.callback_number)
            return
        call = self.calls.get(action.callid)
        leg = self._answering.pop((action.callid, action.agent), None)
        if call is None or leg is None:
            return
        call.ivr = None
        self.mgr.engine.enable_detector("dtmf", call.a.channel, False)
        self.mgr.connect(call, leg)
        callid = action.callid

        def agent_hung_up() -> None:
            self.calls.pop(callid, None)
            self._collect(call, lambda: self.acd.agent_hangup(callid, self.mgr.wall()))
            if call.survey_flow and call.survey_flow in self.mgr.flows:
                self.mgr.start_ivr(call, call.survey_flow)  # the caller rates the agent they just had
            else:
                self.mgr.end_call(call)

        call.on_b_hangup = agent_hung_up

    def _stop_ring(self, action: StopRing) -> None:
        ringing = self.callback_rings.pop((action.callid, action.agent), None)
        if ringing is not None:  # the agent did not answer a callback in time (or another agent did)
            self._callback_of.pop(ringing.uniqueid, None)
            self.mgr.end_call(ringing, 26 if action.callid in self.callbacks else 19, disposition="NO ANSWER")
            return
        leg = self.rings.pop((action.callid, action.agent), None)
        call = self.calls.get(action.callid)
        if leg is not None and call is not None and leg in call.ringing:
            call.ringing.remove(leg)
            self.mgr._drop_leg(call, leg, 26)

    # ---- callbacks ---------------------------------------------------------------------------------

    def _ring_for_callback(self, action: Ring) -> None:
        """A kept place reached an agent: the box calls the agent first (their phone shows the customer's
        number), in a call of its own linked to the original call."""
        callback, agent, number = action.callid, action.agent, action.callback_number or ""
        caller = self.acd.callers.get(callback)
        queue = caller.queue if caller is not None else ""
        origin = callback.removesuffix("-cb")
        call = self.mgr.originate_call(agent, number, "Callback", number, linkedid=origin)
        if call is None:
            self._run(self.acd.declined(callback, agent, self.mgr.wall()))
            return
        call.queue = queue
        call.state = "ringing"
        call.cdr.lastapp, call.cdr.lastdata = "Queue", f"{queue},callback"
        call.cdr.userfield = f"callback:{origin}"
        self.callback_rings[(callback, agent)] = call
        self._callback_of[call.uniqueid] = callback
        call.a._on_answer = lambda: self._callback_agent_answered(callback, agent)  # type: ignore[attr-defined]

    def _callback_agent_answered(self, callback: str, agent: str) -> None:
        call = self.callback_rings.pop((callback, agent), None)
        if call is None:
            return
        actions = self.acd.answered(callback, agent, self.mgr.wall())
        if not any(isinstance(a, Connect) for a in actions):  # too late: another agent has it
            self._callback_of.pop(call.uniqueid, None)
            self.mgr.end_call(call, 26, disposition="NO ANSWER")
            return
        self.callbacks[callback] = call
        self._run(actions)

    def _dial_customer(self, callback: str, number: str) -> None:
        call = self.callbacks.get(callback)
        caller = self.acd.callers.get(callback)
        if call is None or caller is None:
            return
        config = self.acd.queues[caller.queue].config
        plan = self.mgr.plan
        kind = plan.classify(number)
        allowed = config.callback_permission or plan.outbound.get("default_permission", "local")
        if kind not in PERMISSION_ORDER or PERMISSION_ORDER.index(kind) > PERMISSION_ORDER.index(allowed):
            self._callback_failed(callback, f"denied:{kind}", 52, "FAILED", final=True)
            return
        call.cdr.lastapp, call.cdr.lastdata = "Dial", f"TRUNK/{number}"
        leg = self.mgr.ring_external(
            call, number, config.callback_ring, on_fail=lambda cause: self._customer_failed(callback, cause)
        )
        if leg is None:
            self._callback_failed(callback, "congestion", 34, "CONGESTION")
            return
        leg._on_answer = lambda: self._customer_answered(callback, leg)  # type: ignore[attr-defined]

    def _customer_failed(self, callback: str, cause: int) -> None:
        from firmware.calls.endpoint import disposition_for

        self._callback_failed(
            callback, CALLBACK_REASONS.get(cause, f"cause{cause}"), cause, disposition_for(cause)
        )

    def _callback_failed(
        self, callback: str, reason: str, cause: int, disposition: str, final: bool = False
    ) -> None:
        call = self.callbacks.pop(callback, None)
        if call is None:
            return
        self._callback_of.pop(call.uniqueid, None)
        self._collect(call, lambda: self.acd.callback_failed(callback, self.mgr.wall(), reason, final))
        self.mgr.end_call(call, cause, disposition=disposition)

    def _customer_answered(self, callback: str, leg: Endpoint) -> None:
        call = self.callbacks.get(callback)
        if call is None:
            return
        mgr = self.mgr
        mgr.connect(call, leg)
        call.cdr.answer = mgr.wall()
        call.cdr.disposition = "ANSWERED"
        self._run(self.acd.callback_answered(callback, mgr.wall(), bridged=call.uniqueid))

        def customer_hung_up() -> None:
            if self.callbacks.pop(callback, None) is not None:
                self._callback_of.pop(call.uniqueid, None)
                self._collect(call, lambda: self.acd.hangup(callback, mgr.wall()))
            mgr.end_call(call)

        call.on_b_hangup = customer_hung_up

    def _callback_ending(self, call: Call, callback: str) -> None:
        """The call carrying a callback ends (inside call_ending): the agent hung up or declined."""
        now = self.mgr.wall()
        for key, ringing in list(self.callback_rings.items()):
            if ringing is call:  # the agent's phone refused or hung up before answering
                del self.callback_rings[key]
                self._run(self.acd.declined(callback, key[1], now))
        if self.callbacks.get(callback) is call:
            del self.callbacks[callback]
            caller = self.acd.callers.get(callback)
            if (
                caller is not None and caller.state == "dialing"
            ):  # the agent gave up before the customer answered
                self._run(self.acd.callback_failed(callback, now, "agenthangup"))
            else:
                self._run(self.acd.agent_hangup(callback, now))

    def _say(self, call: Call, fragments: list[str]) -> None:
        prompts = self.mgr.prompts
        if prompts is None:
            return
        buffers = [b for b in (prompts.buffer(name, self.lang) for name in fragments) if b is not None]
        if buffers:
            self.mgr.engine.play(call.a.channel, buffers, loop=False, replace=True)

    def _announce(self, action: Announce) -> None:
        call = self.calls.get(action.callid)
        if call is None:
            return
        words = say_queue_position(action.position, self.lang)
        if action.estimated_wait:
            words += say_wait_time(action.estimated_wait, self.lang)
        self._say(call, words)

    def _offer(self, action: OfferOptions) -> None:
        call = self.calls.get(action.callid)
        if call is not None:
            self._say(call, ["queue_options"])

    def _sticky(self, action: StickyOffer) -> None:
        call = self.calls.get(action.callid)
        if call is not None:
            from firmware.ivr.say import say_digits

            self._say(call, ["sticky_agent_is", *say_digits(action.agent), "sticky_choice"])

    def _leave(self, action: Leave) -> None:
        call = self.calls.pop(action.callid, None)
        if call is None:
            return
        call.ivr = None
        if action.reason == "callback":
            self._say(call, ["callback_registered"])
            self.mgr.later(call, 4.0, lambda: self.mgr.end_call(call))
            return
        if action.destination.startswith("voicemail:"):
            call.vars["mailbox"] = action.destination.partition(":")[2]  # the voicemail flow files it there
        self.mgr.route_to(call, _destination(action.destination), f"queue {action.reason}")

    def _moved(self, action: Moved) -> None:
        call = self.calls.get(action.callid)
        if call is not None:
            call.queue = action.queue
            call.cdr.lastdata = action.queue

    def _paused(self, action: AgentPaused) -> None:
        self.notes.append(f"agent {action.agent} paused ({action.reason})")

    _handlers: dict[type, Callable[[AcdDirector, Any], None]] = {
        Ring: _ring,
        StopRing: _stop_ring,
        Connect: _connect,
        Announce: _announce,
        OfferOptions: _offer,
        StickyOffer: _sticky,
        Leave: _leave,
        Moved: _moved,
        AgentPaused: _paused,
    }


def _destination(text: str) -> Any:
    """An ACD overflow (queue:X, flow:X, extension:X, external:N, voicemail:BOX, hangup) as the dialplan's
    Dest. Call control has no mailbox of its own yet: voicemail goes to the flow named "voicemail" (a
    record-message flow), when one is loaded."""
    from firmware.calls.dialplan import Dest

    kind, _, target = text.partition(":")
    if kind in DESTINATION_KINDS:
        return Dest(kind, target)
    if kind == "voicemail":
        return Dest("flow", "voicemail")
    return Dest("hangup")
