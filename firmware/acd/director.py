"""The ACD in the box: runs queue calls of the call manager through the ACD decision core.

Call control hands a call to a queue (`CallManager.enter_queue`); when the queue is the ACD's, this
director takes it: the caller hears music on hold, the ACD's actions become call-control operations
(ring an agent's extension, connect, drop the other rings, say position and wait, offer the message /
callback options, send the caller on when they leave), and line events go back to the ACD (agent
answered or did not, caller pressed a key, either side hung up). The ACD is ticked from the box's clock.

Not joined yet (reported as such): dialling the customer back for a queued callback (the ACD offers the
callback to an agent; originating the outbound leg needs the trunk side), agent transfers and holds
reported to the ACD for AHT.
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
from firmware.ivr.say import say_queue_position, say_wait_time

if TYPE_CHECKING:
    from firmware.calls.endpoint import Endpoint
    from firmware.calls.manager import Call, CallManager

RING_GRACE = 1.0  # the ACD's own ring timeout governs; the manager's ring timer is only a backstop


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

    def call_ending(self, call: Call) -> None:
        """Before the call's CDR is written: the queue log says how it ended first."""
        if call.uniqueid in self.calls:
            self.calls.pop(call.uniqueid)
            self._run(self.acd.hangup(call.uniqueid, self.mgr.wall()))

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
        call = self.calls.get(action.callid)
        if call is None:  # a queued callback: its caller is gone, the outbound leg is not joined yet
            self.notes.append(
                f"callback {action.callid} to {action.callback_number} offered to {action.agent}"
            )
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
            self._run(self.acd.agent_hangup(callid, self.mgr.wall()))
            if call.survey_flow and call.survey_flow in self.mgr.flows:
                self.mgr.start_ivr(call, call.survey_flow)  # the caller rates the agent they just had
            else:
                self.mgr.end_call(call)

        call.on_b_hangup = agent_hung_up

    def _stop_ring(self, action: StopRing) -> None:
        leg = self.rings.pop((action.callid, action.agent), None)
        call = self.calls.get(action.callid)
        if leg is not None and call is not None and leg in call.ringing:
            call.ringing.remove(leg)
            self.mgr._drop_leg(call, leg, 26)

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
