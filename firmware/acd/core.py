"""The ACD decision core, sans-I/O: what happened + the time in, actions out, queue log written.

Call control owns the calls; this module owns who waits where, which agent is offered which caller, and
what the queue log says about it. Every input is a method taking `now` (seconds, the box's clock);
every method returns the actions call control must carry out. `tick(now)` runs the timed behaviours
(ring timeouts, wrap-up ends, announcements, periodic offers, penalty steps, max wait, leave-when-empty)
and routes waiting callers to agents.

Agent state is derived, never stored twice: logged in or not, paused or not, and what the agent is doing
(idle, ringing, on a call, wrapping up). Its public names are Asterisk's and mod_callcenter's:
logged-out / available / paused / ringing / on-call / wrap-up.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Concatenate, ParamSpec, TypeVar

from firmware.acd.config import AcdConfig, QueueConfig
from firmware.acd.queuelog import QueueLog, QueueLogEntry

STICKY_ANSWER_TIMEOUT = 10.0  # a caller who says nothing to the sticky-agent offer is routed normally


class AgentState(StrEnum):
    LOGGED_OUT = "logged-out"
    AVAILABLE = "available"
    PAUSED = "paused"
    RINGING = "ringing"
    ON_CALL = "on-call"
    WRAP_UP = "wrap-up"


class Activity(StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    ON_CALL = "on-call"
    WRAP_UP = "wrap-up"


# ---- actions for call control -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ring:
    """Offer caller `callid` to `agent` (ring the agent's extension) for at most `timeout` seconds."""

    callid: str
    agent: str
    timeout: float
    callback_number: str | None = None  # a callback: the agent is offered a call back to this number


@dataclass(frozen=True)
class StopRing:
    callid: str
    agent: str


@dataclass(frozen=True)
class Connect:
    """The agent answered: bridge them. For a callback: dial `callback_number` and bridge it with the agent,
    then tell the ACD `callback_answered` (or `callback_failed`: no answer, busy, refused)."""

    callid: str
    agent: str
    callback_number: str | None = None


@dataclass(frozen=True)
class Announce:
    """Tell the caller their position and the estimated wait (None when there is no estimate yet)."""

    callid: str
    position: int
    estimated_wait: float | None


@dataclass(frozen=True)
class OfferOptions:
    """Periodic offer: 1 = leave a message, 2 = be called back keeping your place."""

    callid: str


@dataclass(frozen=True)
class StickyOffer:
    """'The agent you last spoke to is <agent>; press * to connect, # for another.'"""

    callid: str
    agent: str


@dataclass(frozen=True)
class Moved:
    """The caller overflowed into another queue (still waiting, nothing to do but keep the music on)."""

    callid: str
    queue: str


@dataclass(frozen=True)
class Leave:
    """The caller leaves the ACD: go to `destination` (queue:X, voicemail:BOX, flow:NAME, callback, hangup).

    reason: timeout | empty | joinempty | full | voicemail | callback."""

    callid: str
    reason: str
    destination: str
    callback_callid: str | None = None  # a callback was queued in the caller's place under this id


@dataclass(frozen=True)
class AgentPaused:
    agent: str
    reason: str


# Events that end a queue call for its agent (restart reads the agent's last call end from them).
COMPLETIONS = ("COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER")

Action = Ring | StopRing | Connect | Announce | OfferOptions | StickyOffer | Moved | Leave | AgentPaused


# ---- state ------------------------------------------------------------------------------------------


@dataclass
class Agent:
    name: str
    channel: str
    logged_in: bool = False
    paused: bool = False
    pause_reason: str = ""
    activity: Activity = Activity.IDLE
    queues: set[str] = field(default_factory=set)
    login_time: float = 0.0
    last_call_end: float = 0.0  # 0 = never had a call (leastrecent offers them first)
    calls_taken: dict[str, int] = field(default_factory=dict)
    missed_in_row: int = 0
    wrapup_until: float = 0.0
    callid: str | None = None
    logout_after_call: bool = False
    wrapup_callid: str | None = None
    wrapup_started: float = 0.0

    @property
    def state(self) -> AgentState:
        if not self.logged_in:
            return AgentState.LOGGED_OUT
        if self.activity is not Activity.IDLE:
            return AgentState(self.activity.value)
        return AgentState.PAUSED if self.paused else AgentState.AVAILABLE


@dataclass
class Caller:
    callid: str
    queue: str
    number: str
    priority: int
    entered: float  # when it joined this queue (kept across a callback: the caller keeps their place)
    seq: int
    orig_position: int
    state: str = "waiting"  # waiting | ringing | dialing (a callback: agent up, customer ringing) | connected
    ringing: dict[str, float] = field(default_factory=dict)  # agent -> ring start
    ring_deadline: float = 0.0
    retry_after: dict[str, float] = field(default_factory=dict)  # agent -> not before
    next_announce: float = 0.0
    next_offer: float = 0.0
    vip_agent: str | None = None
    sticky_agent: str | None = None
    sticky_state: str | None = None  # offered | accepted | None
    sticky_until: float = 0.0
    callback: bool = False
    callback_attempts: int = 0
    agent_ring_time: float = 0.0  # a callback: how long the agent's phone rang before they answered
    not_before: float = 0.0
    max_wait_at: float = float("inf")
    agent: str | None = None
    connected_at: float = 0.0
    hold_time: float = 0.0  # time waiting in the queue before an agent answered (Asterisk's "holdtime")
    on_hold_since: float | None = None  # the agent put the caller on hold (music) during the call
    on_hold_total: float = 0.0

    def order_key(self) -> tuple[int, float, int]:
        return (-self.priority, self.entered, self.seq)


@dataclass
class QueueState:
    config: QueueConfig
    waiting: list[Caller] = field(default_factory=list)  # ordered by Caller.order_key()
    keys: list[tuple[int, float, int]] = field(default_factory=list)
    avg_holdtime: float = 0.0  # Asterisk's exponential average: new = (3 * old + sample) / 4
    rr_last: int = -1  # rrmemory: index of the member rung last
    member_index: dict[str, int] = field(default_factory=dict)  # agent -> position in the member list
    answered: int = 0

    def position(self, caller: Caller) -> int:
        return bisect.bisect_left(self.keys, caller.order_key()) + 1

    def insert(self, caller: Caller) -> None:
        key = caller.order_key()
        index = bisect.bisect_left(self.keys, key)
        self.keys.insert(index, key)
        self.waiting.insert(index, caller)

    def remove(self, caller: Caller) -> int:
        """Remove the caller; returns the position they had."""
        index = bisect.bisect_left(self.keys, caller.order_key())
        del self.keys[index]
        del self.waiting[index]
        return index + 1


STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS acd_agent_state (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, agent TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', callid TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS acd_agent_state_time ON acd_agent_state(time);
CREATE TABLE IF NOT EXISTS acd_last_agent (number TEXT PRIMARY KEY, agent TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS acd_calls (
    callid TEXT PRIMARY KEY, queue TEXT NOT NULL, agent TEXT NOT NULL, number TEXT NOT NULL,
    entered REAL NOT NULL, connected REAL NOT NULL, ended REAL NOT NULL,
    hold REAL NOT NULL DEFAULT 0, wrapup REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS acd_calls_ended ON acd_calls(ended);
"""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_transaction(method: Callable[Concatenate[Acd, _P], _R]) -> Callable[Concatenate[Acd, _P], _R]:
    """Everything one input changes (queue log lines, agent states, call rows) commits together, once."""

    @functools.wraps(method)
    def wrapper(self: Acd, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.log.batch():
            return method(self, *args, **kwargs)

    return wrapper


class AcdError(ValueError):
    """Call control asked for something the ACD cannot do (unknown queue, agent or call)."""


class Acd:
    def __init__(self, config: AcdConfig, log: QueueLog, seed: int = 0, channel_prefix: str = "SIP/") -> None:
        self.log = log
        self.conn: sqlite3.Connection = log.conn
        self.conn.executescript(STATE_SCHEMA)
        self.random = random.Random(seed)
        self.channel_prefix = channel_prefix
        self.queues: dict[str, QueueState] = {}
        self.agents: dict[str, Agent] = {}
        self.callers: dict[str, Caller] = {}
        self._seq = itertools.count()
        self.evaluations = 0  # waiting callers considered against their queue's free agents
        self.decisions = 0  # routing decisions taken: agent(s) chosen and offered a caller
        self._last_state: dict[str, AgentState] = {}
        self._free: set[str] = set()  # agents available right now, kept as states change
        self._timers: list[tuple[float, int, str, str]] = []  # (when, order, kind, caller or agent)
        self._timer_seq = itertools.count()
        self._route_due = True  # something changed that may let a waiting caller reach an agent
        self._check_empty = True  # an agent changed state: a leave-when-empty queue may be empty now
        self._queue_order: list[QueueState] = []  # higher weight first
        self.apply_config(config)

    # ---- configuration ---------------------------------------------------------------------------------

    def apply_config(self, config: AcdConfig) -> None:
        """Take a new configuration; waiting callers and agents stay as they are."""
        for name, queue_config in config.queues.items():
            if name in self.queues:
                self.queues[name].config = queue_config
            else:
                self.queues[name] = QueueState(queue_config)
            self.queues[name].member_index = {agent: i for i, agent in enumerate(queue_config.members)}
            for member in queue_config.members:
                self._agent(member, create=True)
        for name in list(self.queues):
            if name not in config.queues and not self.queues[name].waiting:
                del self.queues[name]
        self._queue_order = sorted(self.queues.values(), key=lambda q: -q.config.weight)

    def _agent(self, name: str, create: bool = False) -> Agent:
        agent = self.agents.get(name)
        if agent is None:
            if not create:
                raise AcdError(f"unknown agent {name!r}")
            agent = self.agents[name] = Agent(name, f"{self.channel_prefix}{name}")
            self._last_state[name] = agent.state
        return agent

    def _queue(self, name: str) -> QueueState:
        queue = self.queues.get(name)
        if queue is None:
            raise AcdError(f"unknown queue {name!r}")
        return queue

    def _caller(self, callid: str) -> Caller | None:
        return self.callers.get(callid)

    # ---- agents ----------------------------------------------------------------------------------------

    @_one_transaction
    def login(self, agent_name: str, now: float, queues: list[str] | None = None) -> list[Action]:
        """Log an agent in to `queues` (default: every queue that lists them as a member)."""
        agent = self._agent(agent_name)
        member_of = [q for q, state in self.queues.items() if agent_name in state.config.members]
        wanted = member_of if queues is None else queues
        for name in wanted:
            if agent_name not in self._queue(name).config.members:
                raise AcdError(f"agent {agent_name} is not a member of queue {name}")
        if agent.logged_in and set(wanted) <= agent.queues:
            return []  # logged in twice: nothing changes, and the log says nothing that did not happen
        if not agent.logged_in:
            agent.logged_in = True
            agent.login_time = now
            agent.logout_after_call = False
            self.log.write(now, "NONE", "NONE", agent.channel, "AGENTLOGIN", agent.channel)
        for name in wanted:
            if name not in agent.queues:
                agent.queues.add(name)
                self.log.write(now, "NONE", name, agent.channel, "ADDMEMBER")
        self._state_changed(agent, now)
        return self.tick(now)

    @_one_transaction
    def logout(self, agent_name: str, now: float) -> list[Action]:
        agent = self._agent(agent_name)
        if not agent.logged_in:
            return []
        if agent.activity in (Activity.ON_CALL, Activity.WRAP_UP):
            agent.logout_after_call = True  # the call in progress finishes first
            if agent.activity is Activity.WRAP_UP:
                return self._finish_logout(agent, now)
            return []
        actions: list[Action] = []
        if agent.activity is Activity.RINGING and agent.callid is not None:
            actions += self._cancel_ring(agent, now, "RINGCANCELED")
        return actions + self._finish_logout(agent, now)

    def _end_wrapup(self, agent: Agent, when: float) -> None:
        if agent.wrapup_callid is not None:
            self.log.execute(
                "UPDATE acd_calls SET wrapup = ? WHERE callid = ?",
                (when - agent.wrapup_started, agent.wrapup_callid),
            )
            agent.wrapup_callid = None

    def _finish_logout(self, agent: Agent, now: float) -> list[Action]:
        if agent.activity is Activity.WRAP_UP:
            self._end_wrapup(agent, now)
        for name in sorted(agent.queues):
            self.log.write(now, "NONE", name, agent.channel, "REMOVEMEMBER")
        self.log.write(
            now, "NONE", "NONE", agent.channel, "AGENTLOGOFF", agent.channel, int(now - agent.login_time)
        )
        agent.queues.clear()
        agent.logged_in = False
        agent.paused = False
        agent.pause_reason = ""
        agent.activity = Activity.IDLE
        agent.callid = None
        agent.logout_after_call = False
        self._state_changed(agent, now)
        return self.tick(now)

    @_one_transaction
    def pause(self, agent_name: str, now: float, reason: str = "") -> list[Action]:
        agent = self._agent(agent_name)
        if not agent.logged_in or (agent.paused and agent.pause_reason == reason):
            return []
        agent.paused, agent.pause_reason = True, reason
        for name in sorted(agent.queues):
            self.log.write(now, "NONE", name, agent.channel, "PAUSE", reason)
        self._state_changed(agent, now, reason)
        return self.tick(now)

    @_one_transaction
    def unpause(self, agent_name: str, now: float, reason: str = "") -> list[Action]:
        agent = self._agent(agent_name)
        if not agent.logged_in or not agent.paused:
            return []
        agent.paused, agent.pause_reason = False, ""
        agent.missed_in_row = 0
        for name in sorted(agent.queues):
            self.log.write(now, "NONE", name, agent.channel, "UNPAUSE", reason)
        self._state_changed(agent, now, reason)
        return self.tick(now)

    def _state_changed(self, agent: Agent, now: float, reason: str = "") -> None:
        state = agent.state
        if state is AgentState.AVAILABLE:
            self._free.add(agent.name)
            self._route_due = True  # only a newly free agent can take a waiting caller
        else:
            self._free.discard(agent.name)
        self._check_empty = True
        if self._last_state.get(agent.name) != state:
            self._last_state[agent.name] = state
            self.log.execute(
                "INSERT INTO acd_agent_state(time, agent, state, reason, callid) VALUES (?,?,?,?,?)",
                (now, agent.name, state.value, reason or agent.pause_reason, agent.callid or ""),
            )

    # ---- callers ---------------------------------------------------------------------------------------

    @_one_transaction
    def enter(
        self,
        callid: str,
        queue_name: str,
        number: str,
        now: float,
        priority: int = 0,
        vip_agent: str | None = None,
    ) -> list[Action]:
        """A caller joins a queue (VIP: a higher priority, or a named agent)."""
        if callid in self.callers:
            raise AcdError(f"call {callid} is already in queue {self.callers[callid].queue}")
        queue = self._queue(queue_name)
        config = queue.config
        if config.max_len and len(queue.waiting) >= config.max_len:
            self.log.write(now, callid, queue_name, "NONE", "FULL")
            return [Leave(callid, "full", config.overflow)]
        if config.joinempty and self._is_empty(queue, config.joinempty):
            self.log.write(now, callid, queue_name, "NONE", "JOINEMPTY")
            return [Leave(callid, "joinempty", config.overflow)]
        caller = Caller(callid, queue_name, number, priority, now, next(self._seq), 0, vip_agent=vip_agent)
        self._join(queue, caller, now)
        self.log.write(now, callid, queue_name, "NONE", "ENTERQUEUE", "", number)
        actions: list[Action] = []
        sticky = self._sticky_candidate(config, number, now)
        if sticky is not None and vip_agent is None:
            caller.sticky_agent, caller.sticky_state = sticky, "offered"
            caller.sticky_until = now + STICKY_ANSWER_TIMEOUT
            self._at(caller.sticky_until, "sticky", callid)
            actions.append(StickyOffer(callid, sticky))
        return actions + self.tick(now)

    def _join(self, queue: QueueState, caller: Caller, now: float) -> None:
        queue.insert(caller)
        caller.orig_position = queue.position(caller)
        config = queue.config
        caller.next_announce = now + config.announce_frequency if config.announce_frequency else float("inf")
        caller.next_offer = now + config.offer_frequency if config.offer_frequency else float("inf")
        caller.max_wait_at = now + config.max_wait if config.max_wait else float("inf")
        for when, kind in (
            (caller.next_announce, "announce"),
            (caller.next_offer, "offer"),
            (caller.max_wait_at, "maxwait"),
        ):
            if when != float("inf"):
                self._at(when, kind, caller.callid)
        for step in config.penalty_steps:
            self._at(now + step.after, "route", caller.callid)
        self.callers[caller.callid] = caller
        self._route_due = self._check_empty = True

    def _sticky_candidate(self, config: QueueConfig, number: str, now: float) -> str | None:
        if config.sticky_days <= 0 or not number:
            return None
        row = self.conn.execute(
            "SELECT agent, time FROM acd_last_agent WHERE number = ?", (number,)
        ).fetchone()
        if row is None or now - row[1] > config.sticky_days * 86400:
            return None
        agent = self.agents.get(row[0])
        if agent is None or agent.name not in config.members or config.name not in agent.queues:
            return None
        return agent.name

    @_one_transaction
    def key(self, callid: str, digit: str, now: float) -> list[Action]:
        """A key the waiting caller pressed (answers to the sticky offer and the periodic offer)."""
        caller = self._caller(callid)
        if caller is None or caller.state == "connected":
            return []
        queue = self._queue(caller.queue)
        if caller.sticky_state == "offered" and digit in "*#":
            if digit == "*":
                caller.sticky_state = "accepted"
                caller.sticky_until = now + queue.config.sticky_wait
                self._at(caller.sticky_until, "sticky", callid)
            else:
                caller.sticky_state = None
            self._route_due = True
            return self.tick(now)
        if queue.config.offer_frequency and digit == "1":
            return self._exit_with_key(
                caller,
                queue,
                "1",
                now,
                "voicemail",
                f"voicemail:{queue.config.voicemail or queue.config.name}",
            )
        if queue.config.offer_frequency and digit == "2" and caller.number:  # no number: nobody to call
            actions = self._exit_with_key(caller, queue, "2", now, "callback", "callback", keep_place=True)
            return actions
        return []

    def _exit_with_key(
        self,
        caller: Caller,
        queue: QueueState,
        digit: str,
        now: float,
        reason: str,
        destination: str,
        keep_place: bool = False,
    ) -> list[Action]:
        actions = self._stop_ringing(caller, now)
        position = queue.position(caller)
        self.log.write(
            now,
            caller.callid,
            queue.config.name,
            "NONE",
            "EXITWITHKEY",
            digit,
            position,
            caller.orig_position,
            int(now - caller.entered),
        )
        callid = caller.callid
        if keep_place:
            return actions + [Leave(callid, reason, destination, self._make_callback(caller, now))]
        self._forget(caller, queue)
        return actions + [Leave(callid, reason, destination)]

    def _make_callback(self, caller: Caller, now: float) -> str:
        """The caller hangs up but keeps their place: an agent will be offered a call back to them.

        The callback is a queue call of its own (`<callid>-cb`, its own ENTERQUEUE with url "callback"), so
        the log stays what reporting tools expect: the caller's call ended with its EXIT line, and the
        callback is entered, connected and completed like any call. It keeps the caller's place in line."""
        del self.callers[caller.callid]
        caller.callid = f"{caller.callid}-cb"
        self.callers[caller.callid] = caller
        caller.callback = True
        caller.state = "waiting"
        caller.next_announce = caller.next_offer = caller.max_wait_at = float("inf")
        caller.sticky_state = None
        caller.retry_after.clear()
        self.log.write(now, caller.callid, caller.queue, "NONE", "ENTERQUEUE", "callback", caller.number)
        self._route_due = True
        return caller.callid

    @_one_transaction
    def hangup(self, callid: str, now: float) -> list[Action]:
        """The caller hung up (waiting, ringing an agent, or talking to one)."""
        caller = self._caller(callid)
        if caller is None:
            return []
        queue = self._queue(caller.queue)
        if caller.state == "connected":
            return self._complete(caller, queue, now, "COMPLETECALLER")
        if caller.callback:
            return []  # the original leg of a callback is gone already; the callback stays queued
        actions = self._stop_ringing(caller, now)
        position = queue.position(caller)
        self.log.write(
            now,
            callid,
            queue.config.name,
            "NONE",
            "ABANDON",
            position,
            caller.orig_position,
            int(now - caller.entered),
        )
        self._forget(caller, queue)
        return actions + self.tick(now)

    @_one_transaction
    def agent_hangup(self, callid: str, now: float) -> list[Action]:
        """The agent ended the call."""
        caller = self._caller(callid)
        if caller is None or caller.state != "connected":
            return []  # e.g. an agent hanging up during wrap-up: no call, nothing to do
        return self._complete(caller, self._queue(caller.queue), now, "COMPLETEAGENT")

    @_one_transaction
    def transfer(
        self, callid: str, target: str, now: float, context: str = "callbox", attended: bool = False
    ) -> list[Action]:
        """The agent transferred the caller away: the queue call ends for the agent. Logged as Asterisk 12+
        does: BLINDTRANSFER(extension|context|holdtime|calltime|origposition), or for an attended transfer
        ATTENDEDTRANSFER(BRIDGE|target|holdtime|calltime|origposition)."""
        caller = self._caller(callid)
        if caller is None or caller.state != "connected":
            return []
        queue = self._queue(caller.queue)
        channel = self._agent(caller.agent or "").channel
        self._end_hold(caller, channel, now)
        event, first, second = (
            ("ATTENDEDTRANSFER", "BRIDGE", target) if attended else ("BLINDTRANSFER", target, context)
        )
        self.log.write(
            now,
            callid,
            queue.config.name,
            channel,
            event,
            first,
            second,
            int(caller.hold_time),
            round(now - caller.connected_at),
            caller.orig_position,
        )
        return self._release_agent_after_call(caller, queue, now)

    def _end_hold(self, caller: Caller, channel: str, now: float) -> None:
        if caller.on_hold_since is not None:
            held = now - caller.on_hold_since
            caller.on_hold_total += held
            caller.on_hold_since = None
            self.log.write(now, caller.callid, caller.queue, channel, "UNHOLD", int(round(held)))

    def _complete(self, caller: Caller, queue: QueueState, now: float, event: str) -> list[Action]:
        agent = self._agent(caller.agent or "")
        self._end_hold(caller, agent.channel, now)
        self.log.write(
            now,
            caller.callid,
            queue.config.name,
            agent.channel,
            event,
            int(caller.hold_time),
            round(now - caller.connected_at),
            caller.orig_position,
        )
        return self._release_agent_after_call(caller, queue, now)

    @_one_transaction
    def hold(self, callid: str, now: float) -> list[Action]:
        """The agent put the caller on hold (counted in AHT as hold): HOLD, and UNHOLD(duration) after."""
        caller = self._caller(callid)
        if caller is not None and caller.state == "connected" and caller.on_hold_since is None:
            caller.on_hold_since = now
            self.log.write(now, callid, caller.queue, self._agent(caller.agent or "").channel, "HOLD")
        return []

    @_one_transaction
    def unhold(self, callid: str, now: float) -> list[Action]:
        caller = self._caller(callid)
        if caller is not None and caller.state == "connected":
            self._end_hold(caller, self._agent(caller.agent or "").channel, now)
        return []

    def _release_agent_after_call(self, caller: Caller, queue: QueueState, now: float) -> list[Action]:
        agent = self._agent(caller.agent or "")
        del self.callers[caller.callid]
        self.log.execute(
            "INSERT OR REPLACE INTO acd_calls"
            "(callid, queue, agent, number, entered, connected, ended, hold, wrapup)"
            " VALUES (?,?,?,?,?,?,?,?,0)",
            (
                caller.callid,
                queue.config.name,
                agent.name,
                caller.number,
                caller.entered,
                caller.connected_at,
                now,
                caller.on_hold_total,
            ),
        )
        agent.last_call_end = now
        agent.callid = None
        if queue.config.wrapup > 0:
            agent.activity = Activity.WRAP_UP
            agent.wrapup_until = now + queue.config.wrapup
            self._at(agent.wrapup_until, "wrapup", agent.name)
            agent.wrapup_callid, agent.wrapup_started = caller.callid, now
        else:
            agent.activity = Activity.IDLE
        self._state_changed(agent, now)
        if agent.logout_after_call and agent.activity is Activity.IDLE:
            return self._finish_logout(agent, now)
        return self.tick(now)

    def _forget(self, caller: Caller, queue: QueueState) -> None:
        queue.remove(caller)
        self.callers.pop(caller.callid, None)

    # ---- offers to agents ------------------------------------------------------------------------------

    @_one_transaction
    def answered(self, callid: str, agent_name: str, now: float) -> list[Action]:
        """The agent picked up the offer."""
        caller = self._caller(callid)
        agent = self._agent(agent_name)
        if caller is None or caller.state != "ringing" or agent_name not in caller.ringing:
            return []  # too late: the caller hung up or another agent took it
        queue = self._queue(caller.queue)
        ring_started = caller.ringing.pop(agent_name)
        actions: list[Action] = [StopRing(callid, other) for other in caller.ringing]
        for other in list(caller.ringing):
            self._agent_idle(self._agent(other), now)
        caller.ringing.clear()
        queue.remove(caller)
        caller.agent = agent_name
        agent.activity = Activity.ON_CALL
        agent.callid = callid
        agent.missed_in_row = 0
        if caller.callback:  # the agent is up: now the customer is dialled (CONNECT once they answer)
            caller.state = "dialing"
            caller.agent_ring_time = now - ring_started
            self._state_changed(agent, now)
            return actions + [Connect(callid, agent_name, caller.number)] + self.tick(now)
        caller.state = "connected"
        caller.connected_at = now
        caller.hold_time = now - caller.entered
        queue.avg_holdtime = (3 * queue.avg_holdtime + caller.hold_time) / 4  # app_queue's recalc_holdtime
        self._connected(caller, queue, agent, now, f"{callid}-{agent_name}", now - ring_started)
        self._state_changed(agent, now)
        return actions + [Connect(callid, agent_name)] + self.tick(now)

    def _connected(
        self, caller: Caller, queue: QueueState, agent: Agent, now: float, bridged: str, ring_time: float
    ) -> None:
        queue.answered += 1
        agent.calls_taken[queue.config.name] = agent.calls_taken.get(queue.config.name, 0) + 1
        self.log.write(
            now,
            caller.callid,
            queue.config.name,
            agent.channel,
            "CONNECT",
            int(caller.hold_time),
            bridged,
            int(ring_time),
        )
        if caller.number:
            self.log.execute(
                "INSERT OR REPLACE INTO acd_last_agent(number, agent, time) VALUES (?,?,?)",
                (caller.number, agent.name, now),
            )

    @_one_transaction
    def callback_answered(self, callid: str, now: float, bridged: str = "") -> list[Action]:
        """The customer answered the call back: agent and customer are bridged. CONNECT's holdtime is the
        time since the caller first queued (they kept their place); `bridged` is the uniqueid of the call
        that carries the callback (its CDR), so the queue log and the CDR point at each other."""
        caller = self._caller(callid)
        if caller is None or caller.state != "dialing" or not caller.callback:
            return []
        queue = self._queue(caller.queue)
        agent = self._agent(caller.agent or "")
        caller.state = "connected"
        caller.connected_at = now
        caller.hold_time = now - caller.entered
        queue.avg_holdtime = (3 * queue.avg_holdtime + caller.hold_time) / 4
        self._connected(
            caller, queue, agent, now, bridged or f"{callid}-{agent.name}", caller.agent_ring_time
        )
        return self.tick(now)

    @_one_transaction
    def declined(self, callid: str, agent_name: str, now: float) -> list[Action]:
        """The agent's phone refused the offer (busy, declined, unreachable): like a ring with no answer."""
        caller = self._caller(callid)
        if caller is None or agent_name not in caller.ringing:
            return []
        return self._ring_no_answer(caller, self._agent(agent_name), now)

    @_one_transaction
    def callback_failed(
        self, callid: str, now: float, reason: str = "noanswer", final: bool = False
    ) -> list[Action]:
        """The call back to the customer failed (no answer, busy, congestion, not permitted, the agent hung
        up first): CALLBACKFAILED(number|attempt|reason). The agent is free again; the callback waits
        `callback_retry` seconds (keeping its place) and is tried again, `callback_attempts` times in all
        (`final`: no retry, e.g. a number the box may not dial). Then it gives up: EXITWITHTIMEOUT."""
        caller = self._caller(callid)
        if caller is None or caller.state != "dialing" or not caller.callback:
            return []
        queue = self._queue(caller.queue)
        config = queue.config
        agent = self._agent(caller.agent or "")
        caller.callback_attempts += 1
        self.log.write(
            now,
            callid,
            config.name,
            agent.channel,
            "CALLBACKFAILED",
            caller.number,
            caller.callback_attempts,
            reason,
        )
        agent.activity, agent.callid = Activity.IDLE, None
        self._state_changed(agent, now)
        caller.agent = None
        if final or caller.callback_attempts >= config.callback_attempts:
            self.log.write(
                now,
                callid,
                config.name,
                "NONE",
                "EXITWITHTIMEOUT",
                1,
                caller.orig_position,
                int(now - caller.entered),
            )
            del self.callers[callid]
            return (self._finish_logout(agent, now) if agent.logout_after_call else []) + self.tick(now)
        caller.state = "waiting"
        caller.retry_after.clear()
        caller.not_before = now + config.callback_retry
        self._at(caller.not_before, "route", callid)
        queue.insert(caller)
        return (self._finish_logout(agent, now) if agent.logout_after_call else []) + self.tick(now)

    def _agent_idle(self, agent: Agent, now: float) -> None:
        agent.activity = Activity.IDLE
        agent.callid = None
        self._state_changed(agent, now)

    def _stop_ringing(self, caller: Caller, now: float) -> list[Action]:
        actions: list[Action] = []
        for agent_name, started in list(caller.ringing.items()):
            agent = self._agent(agent_name)
            self.log.write(
                now, caller.callid, caller.queue, agent.channel, "RINGCANCELED", int((now - started) * 1000)
            )
            actions.append(StopRing(caller.callid, agent_name))
            self._agent_idle(agent, now)
        caller.ringing.clear()
        if caller.state == "ringing":
            caller.state = "waiting"
        return actions

    def _cancel_ring(self, agent: Agent, now: float, event: str) -> list[Action]:
        caller = self._caller(agent.callid or "")
        if caller is None or agent.name not in caller.ringing:
            return []
        started = caller.ringing.pop(agent.name)
        self.log.write(now, caller.callid, caller.queue, agent.channel, event, int((now - started) * 1000))
        self._agent_idle(agent, now)
        if not caller.ringing:
            caller.state = "waiting"
        return [StopRing(caller.callid, agent.name)]

    def _ring_no_answer(self, caller: Caller, agent: Agent, now: float) -> list[Action]:
        queue = self._queue(caller.queue)
        started = caller.ringing.pop(agent.name)
        self.log.write(
            now, caller.callid, caller.queue, agent.channel, "RINGNOANSWER", int((now - started) * 1000)
        )
        caller.retry_after[agent.name] = now + queue.config.retry
        self._at(caller.retry_after[agent.name], "route", caller.callid)
        actions: list[Action] = [StopRing(caller.callid, agent.name)]
        self._agent_idle(agent, now)
        agent.missed_in_row += 1
        if not caller.ringing:
            caller.state = "waiting"
        limit = queue.config.autopause
        if limit and agent.missed_in_row >= limit and not agent.paused:
            agent.paused, agent.pause_reason = True, "autopause"
            for name in sorted(agent.queues):
                self.log.write(now, "NONE", name, agent.channel, "PAUSE", "autopause")
            self._state_changed(agent, now, "autopause")
            actions.append(AgentPaused(agent.name, "autopause"))
        return actions

    # ---- time ------------------------------------------------------------------------------------------

    def _at(self, when: float, kind: str, key: str) -> None:
        """Schedule a timer. Timers are never cancelled: each checks, when it fires, that what it was set
        for still holds (the same deadline on the same caller or agent), so stale ones do nothing."""
        heapq.heappush(self._timers, (when, next(self._timer_seq), kind, key))

    @_one_transaction
    def tick(self, now: float) -> list[Action]:
        """Run what is due at `now` (ring timeouts, wrap-up ends, announcements, offers, max wait, penalty
        steps, retry back-off), send callers out of queues left empty, then route if anything changed."""
        actions: list[Action] = []
        while self._timers and self._timers[0][0] <= now:
            when, _, kind, key = heapq.heappop(self._timers)
            actions += self._fire(kind, key, when, now)
        if self._check_empty:
            self._check_empty = False
            actions += self._leave_empty_queues(now)
        if self._route_due:
            self._route_due = False
            actions += self._route(now)
        return actions

    def _fire(self, kind: str, key: str, when: float, now: float) -> list[Action]:
        if kind == "route":  # time alone made a caller eligible for more agents
            self._route_due = True
            return []
        if kind == "wrapup":
            agent = self.agents.get(key)
            if agent is None or agent.activity is not Activity.WRAP_UP or agent.wrapup_until != when:
                return []
            agent.activity = Activity.IDLE
            self._end_wrapup(agent, when)
            self._state_changed(agent, now)
            return self._finish_logout(agent, now) if agent.logout_after_call else []
        caller = self.callers.get(key)
        if caller is None or caller.state == "connected":
            return []
        queue = self.queues[caller.queue]
        config = queue.config
        if kind == "ring" and caller.state == "ringing" and caller.ring_deadline == when:
            actions: list[Action] = []
            for agent_name in list(caller.ringing):
                actions += self._ring_no_answer(caller, self._agent(agent_name), now)
            return actions
        if kind == "maxwait" and caller.max_wait_at == when and not caller.callback:
            if caller.state == "ringing":  # Asterisk checks the timeout between ring attempts
                caller.max_wait_at = caller.ring_deadline
                self._at(caller.max_wait_at, "maxwait", caller.callid)
                return []
            return self._timeout(caller, queue, now)
        if kind == "sticky" and caller.sticky_state is not None and caller.sticky_until == when:
            caller.sticky_state = None
            self._route_due = True
        elif kind == "announce" and caller.next_announce == when:
            caller.next_announce = now + config.announce_frequency
            self._at(caller.next_announce, "announce", caller.callid)
            if caller.state == "waiting":
                return [Announce(caller.callid, queue.position(caller), self.estimated_wait(caller, now))]
        elif kind == "offer" and caller.next_offer == when:
            caller.next_offer = now + config.offer_frequency
            self._at(caller.next_offer, "offer", caller.callid)
            if caller.state == "waiting":
                return [OfferOptions(caller.callid)]
        return []

    def _leave_empty_queues(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for queue in self.queues.values():
            config = queue.config
            if not (config.leavewhenempty and queue.waiting and self._is_empty(queue, config.leavewhenempty)):
                continue
            for caller in [c for c in queue.waiting if c.state == "waiting" and not c.callback]:
                self.log.write(
                    now,
                    caller.callid,
                    config.name,
                    "NONE",
                    "EXITEMPTY",
                    queue.position(caller),
                    caller.orig_position,
                    int(now - caller.entered),
                )
                self._forget(caller, queue)
                actions.append(Leave(caller.callid, "empty", config.overflow))
        return actions

    def _timeout(self, caller: Caller, queue: QueueState, now: float) -> list[Action]:
        config = queue.config
        self.log.write(
            now,
            caller.callid,
            config.name,
            "NONE",
            "EXITWITHTIMEOUT",
            queue.position(caller),
            caller.orig_position,
            int(now - caller.entered),
        )
        if config.overflow_kind == "callback" and caller.number:
            callid = caller.callid
            return [Leave(callid, "callback", "callback", self._make_callback(caller, now))]
        self._forget(caller, queue)
        if config.overflow_kind == "callback":  # a caller without a number cannot be called back
            return [Leave(caller.callid, "timeout", "hangup")]
        if config.overflow_kind == "queue" and config.overflow_target in self.queues:
            target = self.queues[config.overflow_target]
            moved = Caller(
                caller.callid,
                target.config.name,
                caller.number,
                caller.priority,
                now,
                next(self._seq),
                0,
                vip_agent=caller.vip_agent,
            )
            self._join(target, moved, now)
            self.log.write(now, caller.callid, target.config.name, "NONE", "ENTERQUEUE", "", caller.number)
            return [Moved(caller.callid, target.config.name)]
        return [Leave(caller.callid, "timeout", config.overflow)]

    def estimated_wait(self, caller: Caller, now: float) -> float | None:
        """Asterisk's estimate: the queue's exponential average hold time less what the caller has waited."""
        queue = self._queue(caller.queue)
        if not queue.answered:
            return None
        return max(0.0, queue.avg_holdtime - (now - caller.entered))

    def _is_empty(self, queue: QueueState, conditions: tuple[str, ...]) -> bool:
        """True when no member is left once members matching any condition are discounted (Asterisk's
        joinempty / leavewhenempty). A logged-out member never counts ("unavailable" is always implied)."""
        base = queue.config.base_max_penalty()
        discounted_activity = {
            Activity.ON_CALL: "inuse" in conditions,
            Activity.RINGING: "ringing" in conditions,
            Activity.WRAP_UP: "wrapup" in conditions,
            Activity.IDLE: False,
        }
        for name, penalty in queue.config.members.items():
            agent = self.agents[name]
            if not agent.logged_in or queue.config.name not in agent.queues:
                continue
            if ("paused" in conditions and agent.paused) or discounted_activity[agent.activity]:
                continue
            if "penalty" in conditions and penalty > base:
                continue
            return False
        return True

    # ---- routing ---------------------------------------------------------------------------------------

    def _route(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if not self._free:
            return actions
        # only queues one of the free agents is logged in to can route anybody
        reachable = {name for agent in self._free for name in self.agents[agent].queues}
        for queue in self._queue_order:
            if queue.config.name not in reachable:
                continue
            queue_free = self._free & queue.config.member_set
            if not queue_free:
                continue  # nobody of this queue is free: its callers need not be looked at
            # Callers without their own limits (a named agent, the sticky agent, retry back-off) differ only
            # in how long they have waited, i.e. in the highest penalty they may be offered: once one finds
            # nobody up to penalty p, no later such caller allowed up to p can find anybody either.
            nobody_up_to = -1
            for caller in list(queue.waiting):
                if not queue_free:
                    break
                if caller.state != "waiting" or caller.sticky_state == "offered" or now < caller.not_before:
                    continue
                max_penalty = queue.config.max_penalty_after(now - caller.entered)
                plain = caller.vip_agent is None and caller.sticky_state is None and not caller.retry_after
                if plain and max_penalty <= nobody_up_to:
                    continue
                self.evaluations += 1
                chosen = self._choose(queue, caller, queue_free, now, max_penalty)
                if not chosen:
                    if plain:
                        nobody_up_to = max(nobody_up_to, max_penalty)
                    continue
                self.decisions += 1
                caller.state = "ringing"
                caller.ring_deadline = now + queue.config.ring_timeout
                self._at(caller.ring_deadline, "ring", caller.callid)
                for agent_name in chosen:
                    queue_free.discard(agent_name)
                    agent = self.agents[agent_name]
                    agent.activity = Activity.RINGING
                    agent.callid = caller.callid
                    caller.ringing[agent_name] = now
                    self._state_changed(agent, now)
                    callback_number = caller.number if caller.callback else None
                    actions.append(
                        Ring(caller.callid, agent_name, queue.config.ring_timeout, callback_number)
                    )
        return actions

    def _choose(
        self, queue: QueueState, caller: Caller, free: set[str], now: float, max_penalty: int
    ) -> list[str]:
        config = queue.config
        if caller.vip_agent is not None:
            only = caller.vip_agent
        elif caller.sticky_state == "accepted" and caller.sticky_agent is not None:
            only = caller.sticky_agent
        else:
            only = None
        candidates: list[tuple[int, str, int]] = []  # (penalty, agent, member index)
        for name in free:
            penalty = config.members[name]
            if only is not None and name != only:
                continue
            if config.name not in self.agents[name].queues:
                continue
            if only is None and penalty > max_penalty:
                continue
            if now < caller.retry_after.get(name, 0.0):
                continue
            candidates.append((penalty, name, queue.member_index[name]))
        # Sets iterate in hash order, which changes between runs: order by member index so a seed replays.
        candidates.sort(key=lambda c: c[2])
        if not candidates:
            return []
        strategy = config.strategy
        if strategy == "ringall":
            best = min(penalty for penalty, _, _ in candidates)
            return [name for penalty, name, _ in candidates if penalty == best]
        if (
            strategy == "wrandom"
        ):  # Asterisk: the penalty is a weight, a random metric below (1 + penalty) * 1000
            return [min(candidates, key=lambda c: self.random.randrange((1 + c[0]) * 1000))[1]]
        if strategy == "random":
            best = min(penalty for penalty, _, _ in candidates)
            return [self.random.choice([name for penalty, name, _ in candidates if penalty == best])]
        if strategy == "linear":
            return [min(candidates, key=lambda c: (c[0], c[2]))[1]]
        if strategy == "rrmemory":
            count = len(config.members)
            pick = min(candidates, key=lambda c: (c[0], (c[2] - queue.rr_last - 1) % count))
            queue.rr_last = pick[2]
            return [pick[1]]
        if strategy == "fewestcalls":
            return [
                min(
                    candidates, key=lambda c: (c[0], self.agents[c[1]].calls_taken.get(config.name, 0), c[2])
                )[1]
            ]
        # leastrecent: the agent whose last call ended longest ago (never = first)
        return [min(candidates, key=lambda c: (c[0], self.agents[c[1]].last_call_end, c[2]))[1]]

    # ---- restart ---------------------------------------------------------------------------------------

    @_one_transaction
    def restore(self, entries: list[QueueLogEntry], now: float) -> None:
        """Rebuild agents' log-in and pause state from the queue log after a restart.

        Calls that were up when the box stopped are gone with it, so nobody comes back ringing, on a call
        or wrapping up: they come back logged in (to the queues they had) and paused as they were."""
        channel_to_agent = {agent.channel: agent for agent in self.agents.values()}
        for entry in entries:
            agent = channel_to_agent.get(entry.agent)
            if agent is None:
                continue
            if entry.event == "AGENTLOGIN":
                agent.logged_in, agent.login_time = True, entry.time
            elif entry.event == "AGENTLOGOFF":
                agent.logged_in, agent.paused, agent.pause_reason = False, False, ""
                agent.queues.clear()
            elif entry.event == "ADDMEMBER" and entry.queue in self.queues:
                agent.queues.add(entry.queue)
            elif entry.event == "REMOVEMEMBER":
                agent.queues.discard(entry.queue)
            elif entry.event == "PAUSE":
                agent.paused, agent.pause_reason = True, entry.field("reason")
            elif entry.event == "UNPAUSE":
                agent.paused, agent.pause_reason = False, ""
            elif entry.event in COMPLETIONS:
                agent.last_call_end = entry.time
        for agent in self.agents.values():
            agent.activity, agent.callid = Activity.IDLE, None
            self._state_changed(agent, now, "restart")

    # ---- views -----------------------------------------------------------------------------------------

    def queue_summary(self, now: float) -> list[dict[str, object]]:
        rows = []
        for name, queue in self.queues.items():
            waiting = [c for c in queue.waiting if not c.callback]
            members = [self.agents[m] for m in queue.config.members]
            rows.append(
                {
                    "queue": name,
                    "waiting": len(waiting),
                    "callbacks": len(queue.waiting) - len(waiting),
                    "longest_wait": max((now - c.entered for c in waiting), default=0.0),
                    "available": sum(
                        1 for a in members if a.state is AgentState.AVAILABLE and name in a.queues
                    ),
                    "logged_in": sum(1 for a in members if a.logged_in and name in a.queues),
                    "avg_holdtime": queue.avg_holdtime,
                }
            )
        return rows
