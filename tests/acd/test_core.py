"""ACD behaviours in virtual time: strategies, skills, priority, wrap-up, auto-pause, empty rules, overflow,
max length, sticky agent, callback, announcements — each checked in the actions and in the queue log."""

from __future__ import annotations

import pytest

from firmware.acd.core import (
    AgentPaused,
    AgentState,
    Announce,
    Connect,
    Leave,
    Moved,
    OfferOptions,
    Ring,
    StickyOffer,
    StopRing,
)


def queue_yaml(
    strategy: str = "leastrecent", members: str = '{"8001": 0, "8002": 0, "8003": 0}', **extra: object
) -> str:
    settings = "".join(f"    {key}: {value}\n" for key, value in extra.items())
    return f"queues:\n  service:\n    strategy: {strategy}\n    members: {members}\n{settings}"


def rings(actions: list[object]) -> list[str]:
    return [a.agent for a in actions if isinstance(a, Ring)]


def login_all(h, *agents: str) -> None:
    for agent in agents:
        h.run(h.acd.login(agent, h.now))


def serve(h, callid: str, number: str = "13800000000") -> str:
    """Enter a caller, answer with the first agent rung, return that agent."""
    actions = h.run(h.acd.enter(callid, "service", number, h.now))
    agent = rings(actions)[0]
    h.run(h.acd.answered(callid, agent, h.now))
    return agent


def test_caller_rings_available_agent_and_log_tells_the_whole_call(make_acd):
    h = make_acd(queue_yaml(wrapup=0))
    login_all(h, "8001")
    actions = h.run(h.acd.enter("c1", "service", "13812345678", h.now))
    assert actions == [Ring("c1", "8001", 15.0)]
    assert h.acd.agents["8001"].state is AgentState.RINGING
    h.now += 4
    assert Connect("c1", "8001") in h.run(h.acd.answered("c1", "8001", h.now))
    h.now += 60
    h.run(h.acd.agent_hangup("c1", h.now))
    assert h.acd.agents["8001"].state is AgentState.AVAILABLE
    events = [f[4] for f in h.lines()]
    assert events == ["AGENTLOGIN", "ADDMEMBER", "ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    enter, connect, complete = h.events("ENTERQUEUE")[0], h.events("CONNECT")[0], h.events("COMPLETEAGENT")[0]
    assert enter[1:6] == ["c1", "service", "NONE", "ENTERQUEUE", ""] and enter[6] == "13812345678"
    assert connect[3] == "SIP/8001" and connect[5] == "4" and connect[7] == "4"  # holdtime, ringtime
    assert complete[5:8] == ["4", "60", "1"]  # holdtime | calltime | origposition


@pytest.mark.parametrize(
    "strategy", ["leastrecent", "fewestcalls", "linear", "rrmemory", "random", "wrandom"]
)
def test_single_ring_strategies_ring_exactly_one_available_agent(make_acd, strategy):
    h = make_acd(queue_yaml(strategy, wrapup=0))
    login_all(h, "8001", "8002", "8003")
    assert len(rings(h.run(h.acd.enter("c1", "service", "1", h.now)))) == 1


def test_ringall_rings_every_best_skilled_agent_and_stops_the_others(make_acd):
    h = make_acd(queue_yaml("ringall", '{"8001": 0, "8002": 0, "8003": 1}'))
    login_all(h, "8001", "8002", "8003")
    actions = h.run(h.acd.enter("c1", "service", "1", h.now))
    assert sorted(rings(actions)) == ["8001", "8002"]  # the penalty-1 agent is not rung
    answered = h.run(h.acd.answered("c1", "8002", h.now + 2))
    assert StopRing("c1", "8001") in answered
    assert h.acd.agents["8001"].state is AgentState.AVAILABLE


def test_leastrecent_offers_the_agent_idle_longest(make_acd):
    h = make_acd(queue_yaml("leastrecent", wrapup=0))
    login_all(h, "8001", "8002", "8003")
    order = []
    for n in range(3):
        agent = serve(h, f"c{n}")
        h.now += 10
        h.run(h.acd.agent_hangup(f"c{n}", h.now))
        order.append(agent)
    assert sorted(order) == ["8001", "8002", "8003"]  # each took one before anybody took a second
    assert serve(h, "c9") == order[0]  # the one whose call ended longest ago


def test_fewestcalls_offers_the_agent_with_fewest_calls(make_acd):
    h = make_acd(queue_yaml("fewestcalls", wrapup=0))
    login_all(h, "8001", "8002")
    assert serve(h, "c1") == "8001"
    h.run(h.acd.agent_hangup("c1", h.now + 5))
    h.now += 5
    assert serve(h, "c2") == "8002"


def test_linear_always_starts_from_the_first_member(make_acd):
    h = make_acd(queue_yaml("linear", wrapup=0))
    login_all(h, "8003", "8002", "8001")
    for n in range(3):
        assert serve(h, f"c{n}") == "8001"
        h.now += 5
        h.run(h.acd.agent_hangup(f"c{n}", h.now))


def test_rrmemory_goes_round_from_where_it_left_off(make_acd):
    h = make_acd(queue_yaml("rrmemory", wrapup=0))
    login_all(h, "8001", "8002", "8003")
    taken = []
    for n in range(4):
        taken.append(serve(h, f"c{n}"))
        h.now += 5
        h.run(h.acd.agent_hangup(f"c{n}", h.now))
    assert taken == ["8001", "8002", "8003", "8001"]


def test_wrandom_uses_penalty_as_weight(make_acd):
    h = make_acd(queue_yaml("wrandom", '{"8001": 0, "8002": 9}', wrapup=0), seed=5)
    login_all(h, "8001", "8002")
    counts = {"8001": 0, "8002": 0}
    for n in range(200):
        counts[serve(h, f"c{n}")] += 1
        h.run(h.acd.agent_hangup(f"c{n}", h.now))
    assert counts["8001"] > 3 * counts["8002"] > 0


def test_penalty_members_join_after_the_configured_wait(make_acd):
    h = make_acd(
        queue_yaml("leastrecent", '{"8001": 0, "8002": 1}', penalty_steps="[{after: 30, max_penalty: 1}]")
    )
    login_all(h, "8002")  # only the less-skilled agent is free
    h.run(h.acd.login("8001", h.now))
    h.run(h.acd.pause("8001", h.now, "lunch"))
    assert rings(h.run(h.acd.enter("c1", "service", "1", h.now))) == []
    assert rings(h.advance(29)) == []
    assert rings(h.advance(1.5)) == ["8002"]


def test_vip_priority_goes_first(make_acd):
    h = make_acd(queue_yaml(wrapup=0))
    login_all(h, "8001")
    h.run(h.acd.pause("8001", h.now))
    h.run(h.acd.enter("normal", "service", "1", h.now))
    h.now += 5
    h.run(h.acd.enter("vip", "service", "2", h.now, priority=10))
    assert h.acd.queues["service"].position(h.acd.callers["vip"]) == 1
    assert [a.callid for a in h.run(h.acd.unpause("8001", h.now)) if isinstance(a, Ring)] == ["vip"]


def test_vip_to_named_agent_waits_for_that_agent(make_acd):
    h = make_acd(queue_yaml(wrapup=0))
    login_all(h, "8001", "8002")
    h.run(h.acd.pause("8002", h.now))
    assert rings(h.run(h.acd.enter("c1", "service", "1", h.now, vip_agent="8002"))) == []
    assert rings(h.run(h.acd.unpause("8002", h.now + 3))) == ["8002"]


def test_wrap_up_keeps_the_agent_from_calls_until_it_ends(make_acd):
    h = make_acd(queue_yaml(wrapup=20))
    login_all(h, "8001")
    serve(h, "c1")
    h.run(h.acd.hangup("c1", h.now + 30))  # the caller hangs up: COMPLETECALLER
    h.now += 30
    assert h.acd.agents["8001"].state is AgentState.WRAP_UP
    assert rings(h.run(h.acd.enter("c2", "service", "2", h.now))) == []
    assert rings(h.advance(19)) == []
    assert rings(h.advance(1.5)) == ["8001"]
    assert h.events("COMPLETECALLER")[0][6] == "30"


def test_ring_timeout_retry_and_autopause(make_acd):
    h = make_acd(queue_yaml(ring_timeout=10, retry=5, autopause=2))
    login_all(h, "8001")
    h.run(h.acd.enter("c1", "service", "1", h.now))
    assert rings(h.advance(10)) == []  # rung at 0, times out at 10: back-off for 5 s
    assert h.events("RINGNOANSWER")[0][5] == "10000"
    again = h.advance(5.5)
    assert rings(again) == ["8001"]
    paused = h.advance(10.5)
    assert AgentPaused("8001", "autopause") in paused
    assert h.acd.agents["8001"].state is AgentState.PAUSED
    assert h.events("PAUSE")[-1][5] == "autopause"


def test_joinempty_refuses_and_leavewhenempty_removes(make_acd):
    h = make_acd(
        queue_yaml(
            joinempty="[unavailable]", leavewhenempty="[unavailable, paused]", overflow='"voicemail:100"'
        )
    )
    assert h.run(h.acd.enter("c1", "service", "1", h.now)) == [Leave("c1", "joinempty", "voicemail:100")]
    assert h.events("JOINEMPTY")[0][1] == "c1"
    login_all(h, "8001")
    h.run(h.acd.pause("8001", h.now))
    # joinempty counts only logged-out members, so a paused member lets the caller in; leavewhenempty
    # (paused too) finds the queue empty at once and sends them on
    assert h.run(h.acd.enter("c2", "service", "2", h.now)) == [Leave("c2", "empty", "voicemail:100")]
    assert [f[4] for f in h.lines() if f[1] == "c2"] == ["ENTERQUEUE", "EXITEMPTY"]
    assert h.events("EXITEMPTY")[0][5:8] == ["1", "1", "0"]
    # a waiting caller leaves when the last available member pauses
    h.run(h.acd.unpause("8001", h.now))
    h.run(h.acd.enter("c3", "service", "3", h.now))  # rings 8001
    h.run(h.acd.hangup("c3", h.now))
    h.run(h.acd.enter("c4", "service", "4", h.now))
    h.run(h.acd.answered("c4", "8001", h.now))
    h.run(h.acd.enter("c5", "service", "5", h.now))
    assert h.acd.callers["c5"].state == "waiting"  # 8001 is on a call: "inuse" is not a leave condition
    assert Leave("c5", "empty", "voicemail:100") in h.run(h.acd.pause("8001", h.now + 1))


def test_max_wait_overflows_to_another_queue(make_acd):
    text = queue_yaml(max_wait=60, overflow='"queue:backup"') + '  backup:\n    members: ["8009"]\n'
    h = make_acd(text)
    login_all(h, "8001", "8009")
    h.run(h.acd.pause("8001", h.now))
    h.run(h.acd.pause("8009", h.now))
    h.run(h.acd.enter("c1", "service", "1", h.now))
    out = h.advance(60.5)
    assert Moved("c1", "backup") in out
    assert h.events("EXITWITHTIMEOUT")[0][2] == "service"
    assert [f[2] for f in h.events("ENTERQUEUE")] == ["service", "backup"]
    assert rings(h.run(h.acd.unpause("8009", h.now))) == ["8009"]


def test_max_length_refuses_with_full(make_acd):
    h = make_acd(queue_yaml(max_len=1))
    h.run(h.acd.enter("c1", "service", "1", h.now))
    assert h.run(h.acd.enter("c2", "service", "2", h.now)) == [Leave("c2", "full", "hangup")]
    assert h.events("FULL")[0][1] == "c2"


def test_position_and_wait_announcements(make_acd):
    h = make_acd(queue_yaml(announce_frequency=30, wrapup=0))
    login_all(h, "8001")
    serve(h, "warm")  # teach the queue a hold time: answered at once -> 0 s, then a 40 s wait
    h.run(h.acd.enter("c1", "service", "1", h.now))
    h.run(h.acd.enter("c2", "service", "2", h.now))
    h.now += 40
    h.run(h.acd.agent_hangup("warm", h.now))  # 8001 takes c1 after 40 s
    h.run(h.acd.answered("c1", "8001", h.now))
    announcements = [a for a in h.advance(30) if isinstance(a, Announce)]
    # c2 is first in line now. Asterisk's average from 0 over samples 0 s then 40 s: (3*0 + 0)/4 = 0, then
    # (3*0 + 40)/4 = 10 s; c2 has waited 70 s, so the estimate (average less time waited) is 0
    assert announcements == [Announce("c2", 1, 0.0)]
    assert h.acd.queues["service"].avg_holdtime == pytest.approx(10.0)


def test_announcement_cadence(make_acd):
    h = make_acd(queue_yaml(announce_frequency=20))
    h.run(h.acd.enter("c1", "service", "1", h.now))
    times = []
    start = h.now
    for _ in range(130):
        h.now += 0.5
        if any(isinstance(a, Announce) for a in h.acd.tick(h.now)):
            times.append(h.now - start)
    assert times == [20.0, 40.0, 60.0]


def test_abandon_while_ringing_cancels_the_ring(make_acd):
    h = make_acd(queue_yaml())
    login_all(h, "8001")
    h.run(h.acd.enter("c1", "service", "1", h.now))
    out = h.run(h.acd.hangup("c1", h.now + 3))
    assert StopRing("c1", "8001") in out
    assert h.acd.agents["8001"].state is AgentState.AVAILABLE
    assert h.events("RINGCANCELED")[0][5] == "3000"
    assert h.events("ABANDON")[0][5:8] == ["1", "1", "3"]
    assert not h.acd.callers


def test_periodic_offer_voicemail_and_callback_keeping_place(make_acd):
    h = make_acd(queue_yaml(offer_frequency=60, wrapup=0, voicemail="200"))
    login_all(h, "8001")
    h.run(h.acd.pause("8001", h.now))
    h.run(h.acd.enter("c1", "service", "111", h.now))
    h.now += 10
    h.run(h.acd.enter("c2", "service", "222", h.now))
    h.now += 10
    h.run(h.acd.enter("c3", "service", "333", h.now))
    offers = [a for a in h.advance(45) if isinstance(a, OfferOptions)]  # t = 65: only c1 (due at 60)
    assert [o.callid for o in offers] == ["c1"]
    assert h.run(h.acd.key("c1", "2", h.now)) == [Leave("c1", "callback", "callback", "c1-cb")]
    h.run(h.acd.hangup("c1", h.now))  # the caller hangs up, the callback keeps its place
    h.advance(20)
    assert h.run(h.acd.key("c2", "1", h.now)) == [Leave("c2", "voicemail", "voicemail:200")]
    assert [f[5] for f in h.events("EXITWITHKEY")] == ["2", "1"]
    ring = [a for a in h.run(h.acd.unpause("8001", h.now)) if isinstance(a, Ring)]
    assert ring == [Ring("c1-cb", "8001", 15.0, callback_number="111")]  # ahead of c3: it kept its place
    assert h.run(h.acd.answered("c1-cb", "8001", h.now)) == [Connect("c1-cb", "8001", "111")]
    assert h.acd.agents["8001"].state is AgentState.ON_CALL  # busy while the customer is dialled
    assert [f[4] for f in h.lines() if f[1] == "c1-cb"] == ["ENTERQUEUE"]  # no CONNECT before they answer
    h.run(h.acd.callback_answered("c1-cb", h.now + 6, bridged="1700000085.7"))
    assert [f[4] for f in h.lines() if f[1] == "c1"] == ["ENTERQUEUE", "EXITWITHKEY"]
    assert [f[4:7] for f in h.lines() if f[1] == "c1-cb"] == [
        ["ENTERQUEUE", "callback", "111"],
        ["CONNECT", "91", "1700000085.7"],  # holdtime counts from the caller's first entry: their place
    ]


def test_callback_no_answer_is_retried_per_policy_then_given_up(make_acd):
    h = make_acd(queue_yaml(overflow="callback", max_wait=30, callback_attempts=2, callback_retry=60))
    login_all(h, "8001")
    h.run(h.acd.pause("8001", h.now))
    h.run(h.acd.enter("c1", "service", "13812345678", h.now))
    out = h.advance(31)  # max wait: overflow to a callback that keeps the place
    assert Leave("c1", "callback", "callback", "c1-cb") in out
    ring = rings(h.run(h.acd.unpause("8001", h.now)))
    assert ring == ["8001"]
    h.run(h.acd.answered("c1-cb", "8001", h.now + 2))
    h.now += 32
    h.run(h.acd.callback_failed("c1-cb", h.now, "noanswer"))
    assert h.acd.agents["8001"].state is AgentState.AVAILABLE  # free for other callers meanwhile
    assert rings(h.advance(59)) == []  # the retry interval
    ring = rings(h.advance(2))
    assert ring == ["8001"]
    h.run(h.acd.answered("c1-cb", "8001", h.now))
    h.run(h.acd.callback_failed("c1-cb", h.now + 5, "busy"))
    assert "c1-cb" not in h.acd.callers and rings(h.advance(200)) == []  # given up after 2 attempts
    story = [(f[3], f[4], *f[5:8]) for f in h.lines() if f[1] == "c1-cb"]
    assert story == [
        ("NONE", "ENTERQUEUE", "callback", "13812345678"),
        ("SIP/8001", "CALLBACKFAILED", "13812345678", "1", "noanswer"),
        ("SIP/8001", "CALLBACKFAILED", "13812345678", "2", "busy"),
        ("NONE", "EXITWITHTIMEOUT", "1", "1", "129"),  # since the first entry
    ]


def test_no_callback_for_a_caller_without_a_number(make_acd):
    h = make_acd(queue_yaml(offer_frequency=30, overflow="callback", max_wait=60))
    h.run(h.acd.enter("anon", "service", "", h.now))
    assert h.run(h.acd.key("anon", "2", h.now)) == []  # nobody to call back: the offer's 2 does nothing
    assert Leave("anon", "timeout", "hangup") in h.advance(61)


def test_hold_and_transfers_are_logged_like_asterisk(make_acd):
    h = make_acd(queue_yaml(wrapup=0))
    login_all(h, "8001", "8002")
    for callid in ("b1", "a1"):
        agent = serve(h, callid)
        h.run(h.acd.hold(callid, h.now + 10))
        h.run(h.acd.unhold(callid, h.now + 40))
        h.run(h.acd.hold(callid, h.now + 50))  # still on hold when transferred: UNHOLD first
        h.run(h.acd.transfer(callid, "1009", h.now + 60, attended=callid == "a1"))
        assert h.acd.agents[agent].state is AgentState.AVAILABLE
    lines = [f[4:] for f in h.lines() if f[1] == "b1"]
    assert lines == [
        ["ENTERQUEUE", "", "13800000000"],
        ["CONNECT", "0", "b1-8001", "0"],
        ["HOLD"],
        ["UNHOLD", "30"],
        ["HOLD"],
        ["UNHOLD", "10"],
        ["BLINDTRANSFER", "1009", "callbox", "0", "60", "1"],
    ]
    assert [f[4:] for f in h.lines() if f[1] == "a1"][-1] == [
        "ATTENDEDTRANSFER",
        "BRIDGE",
        "1009",
        "0",
        "60",
        "1",
    ]


def test_sticky_agent_offer_accept_and_decline(make_acd):
    h = make_acd(queue_yaml(sticky_days=7, wrapup=0))
    login_all(h, "8001", "8002")
    h.run(h.acd.pause("8001", h.now))
    serve(h, "first", number="13900000000")  # talks to 8002
    h.now += 100
    h.run(h.acd.agent_hangup("first", h.now))
    h.run(h.acd.unpause("8001", h.now))
    h.run(h.acd.pause("8002", h.now))
    out = h.run(h.acd.enter("again", "service", "13900000000", h.now))
    assert out == [StickyOffer("again", "8002")]  # nothing rings while the caller decides
    h.run(h.acd.key("again", "*", h.now + 2))
    h.now += 2
    assert rings(h.advance(10)) == []  # waits for 8002 although 8001 is free
    assert rings(h.run(h.acd.unpause("8002", h.now))) == ["8002"]
    h.run(h.acd.answered("again", "8002", h.now))
    h.run(h.acd.agent_hangup("again", h.now + 5))
    h.now += 5
    h.run(h.acd.pause("8002", h.now))
    h.run(h.acd.enter("third", "service", "13900000000", h.now))
    assert rings(h.run(h.acd.key("third", "#", h.now))) == ["8001"]


def test_sticky_offer_times_out_to_normal_routing(make_acd):
    h = make_acd(queue_yaml(sticky_days=7, wrapup=0))
    login_all(h, "8001", "8002")
    h.run(h.acd.pause("8001", h.now))
    serve(h, "first", number="555")
    h.run(h.acd.agent_hangup("first", h.now + 1))
    h.run(h.acd.unpause("8001", h.now + 1))
    h.run(h.acd.pause("8002", h.now + 1))
    h.now += 1
    assert h.run(h.acd.enter("again", "service", "555", h.now)) == [StickyOffer("again", "8002")]
    assert rings(h.advance(10.5)) == ["8001"]


def test_agent_logged_in_twice_and_hangup_in_wrapup_leave_nothing_stuck(make_acd):
    h = make_acd(queue_yaml(wrapup=10))
    login_all(h, "8001")
    assert h.acd.login("8001", h.now) == []
    assert len(h.events("AGENTLOGIN")) == 1
    serve(h, "c1")
    h.run(h.acd.agent_hangup("c1", h.now + 5))
    assert h.acd.agent_hangup("c1", h.now + 6) == []  # hangs up again during wrap-up
    h.now += 5
    h.advance(11)
    assert h.acd.agents["8001"].state is AgentState.AVAILABLE


def test_logout_during_a_call_waits_for_the_call_to_end(make_acd):
    h = make_acd(queue_yaml(wrapup=0))
    login_all(h, "8001")
    serve(h, "c1")
    assert h.acd.logout("8001", h.now + 1) == []
    assert h.acd.agents["8001"].state is AgentState.ON_CALL
    h.run(h.acd.agent_hangup("c1", h.now + 30))
    assert h.acd.agents["8001"].state is AgentState.LOGGED_OUT
    assert [f[4] for f in h.lines()][-3:] == ["COMPLETEAGENT", "REMOVEMEMBER", "AGENTLOGOFF"]


def test_restore_rebuilds_agent_states_from_the_log(make_acd, tmp_path):
    from firmware.acd.config import parse_acd_config
    from firmware.acd.core import Acd

    h = make_acd(queue_yaml(wrapup=0))
    login_all(h, "8001", "8002", "8003")
    h.run(h.acd.pause("8002", h.now, "training"))
    h.run(h.acd.logout("8003", h.now))
    h.run(h.acd.enter("c1", "service", "1", h.now))  # 8001 is ringing when the box dies
    fresh = Acd(parse_acd_config(queue_yaml(wrapup=0)), h.log)
    fresh.restore(h.log.entries(), h.now + 1)
    states = {name: agent.state for name, agent in fresh.agents.items()}
    assert states == {"8001": AgentState.AVAILABLE, "8002": AgentState.PAUSED, "8003": AgentState.LOGGED_OUT}
    assert fresh.agents["8002"].pause_reason == "training"
