"""A callback end to end through the register-level simulated board, in virtual time: the network is
tools.pstn's PRI exchange on the E1 socket line. A PRI caller reaches the service queue (in-band DTMF 1),
is offered a callback, presses 2 and hangs up; later an agent frees; the box calls the agent, then dials
the customer out over the PRI through the board; the exchange's subscriber answers, they talk, the
subscriber hangs up. The two CDRs (linked by linkedid) and the queue log tell the same story."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from board.clock import VirtualClock
from firmware.acd.core import AgentState
from firmware.acd.queuelog import parse_line
from firmware.calls.loopback import PhoneBehaviour
from tools import pstn

MONDAY_10AM = calendar.timegm((2026, 11, 23, 2, 0, 0))  # office hours in Asia/Shanghai
CUSTOMER = "13812345678"
SEED = 38  # for this seed the exchange's subscriber answers (no 10 % busy) and talks ~13 s; checked below


def _config(tmp_path: Path) -> Path:
    from firmware.calls.setup import DEFAULT_DIALPLAN

    text = DEFAULT_DIALPLAN.read_text(encoding="utf-8")
    old = "max_wait: 600, survey: survey, record: 10}"
    assert old in text
    text = text.replace(old, "max_wait: 600, record: 0, offer_frequency: 10}")
    config = tmp_path / "config"
    config.mkdir()
    (config / "dialplan.yaml").write_text(text, encoding="utf-8")
    return config


@pytest.fixture
def box(tmp_path: Path, prompt_dir: Path):
    from board.description import simple_board
    from firmware.calls.appliance import Appliance
    from tools.linesim.world import World

    clock = VirtualClock(start=MONDAY_10AM)
    w = World(simple_board(1, 0), tmp_path / "run", clock=clock)  # one PRI span on its E1 socket
    app = Appliance(
        w.board,
        tmp_path / "data",
        config_dir=_config(tmp_path),
        clock=clock,
        prompt_dirs=[prompt_dir],
        extension_rows=8,
    )
    network, _ = pstn.Pstn.on_world(w, None, seed=SEED)  # no hybrid echo: not what this test is about
    w.on_tick.append(app.on_tick)
    w.attach()
    yield w, app, network, clock
    w.close()
    app.close()


class Watch:
    """Notes, from the network's side, when each of the exchange's calls changed state (observes only)."""

    def __init__(self, exchange: pstn.PriExchange, clock: VirtualClock) -> None:
        self.exchange = exchange
        self.clock = clock
        self.seen: dict[int, pstn.PriCall] = {}
        self.changes: dict[int, list[tuple[str, float]]] = {}

    def __call__(self, now: float) -> None:
        for call_id, call in self.exchange.calls.items():
            self.seen.setdefault(call_id, call)
        for call_id, call in self.seen.items():
            log = self.changes.setdefault(call_id, [])
            if not log or log[-1][0] != call.state:
                log.append((call.state, self.clock.now()))

    def when(self, call: pstn.PriCall, state: str) -> float:
        return next(t for s, t in self.changes[call.call_id] if s == state)


def test_callback_through_the_board_to_the_pri_exchange(box) -> None:
    w, app, network, clock = box
    mgr = app.mgr
    director = mgr.acd
    exchange: pstn.PriExchange = network.exchanges[0]
    watch = Watch(exchange, clock)
    w.on_tick.append(watch)
    app.extensions.add_phone("1001", PhoneBehaviour(answer_after=2.0))
    for agent in ("1001", "1002", "1003", "1004"):
        director.feature(agent, "pause", "1")
    clock.advance(4.0)  # D-channel up, RESTART acknowledged
    assert exchange.ready

    # the customer calls in over the PRI and asks, by in-band DTMF, for a callback
    leg = network.call_in(CUSTOMER, "95588")
    assert leg is not None
    clock.advance(10.5)  # the welcome prompt
    [call] = mgr.calls.values()
    assert call.state == "ivr" and call.cdr.src == CUSTOMER
    leg.press("1")  # the service queue
    clock.advance(13.0)  # the offer comes after 10 s in the queue
    assert call.state == "queue" and call.queue == "service"
    leg.press("2")  # call me back, keeping my place
    clock.advance(2.0)
    original = call.uniqueid
    assert f"{original}-cb" in director.acd.callers
    leg.far_hangup()
    clock.advance(2.0)
    assert leg.state == "down" and not mgr.calls

    # nobody is free for a while: the callback waits in the caller's place, the box dials nothing
    clock.advance(5.0)
    assert exchange.box_calls == 0 and f"{original}-cb" in director.acd.callers
    director.feature("1001", "unpause", "")  # an agent frees up
    freed = clock.now()
    clock.advance(2.5)  # the box rings the agent, who answers after 2 s; then it dials out on the PRI
    assert exchange.box_calls == 1
    [out] = [c for c in watch.seen.values() if c.from_box]
    assert out.caller == CUSTOMER  # the number the box dialled, as the exchange received it
    clock.advance(6.5)  # the subscriber answers after 2-6 s (this seed: no busy draw)
    assert out.state == "up", "the exchange's subscriber did not answer (busy draw for this seed?)"
    [callback] = mgr.calls.values()
    assert callback.state == "up" and callback.b is not None and callback.b.name.startswith("DAHDI/1-")
    assert director.acd.agents["1001"].state is AgentState.ON_CALL
    for _ in range(60):  # they talk; the subscriber hangs up after 10-60 s
        clock.advance(1.0)
        if out.state == "down":
            break
    clock.advance(1.0)
    assert out.state == "down" and not mgr.calls
    assert director.acd.agents["1001"].state is AgentState.AVAILABLE
    answered, cleared = watch.when(out, "up"), watch.when(out, "down")
    assert freed < answered < cleared
    print(f"agent freed +{answered - freed:.2f} s: customer answered; talked {cleared - answered:.2f} s")

    # the CDRs: the original call and the callback leg, linked
    cdrs = {cdr.uniqueid: cdr for cdr in mgr.store.cdrs()}
    assert set(cdrs) == {original, callback.uniqueid}
    first, back = cdrs[original], cdrs[callback.uniqueid]
    assert first.src == CUSTOMER and first.linkedid == original and first.disposition == "ANSWERED"
    assert first.channel.startswith("DAHDI/1-")
    assert back.linkedid == original and back.userfield == f"callback:{original}"
    assert back.src == "1001" and back.dst == CUSTOMER and back.disposition == "ANSWERED"
    assert back.channel.startswith("SIP/1001") and back.dstchannel.startswith("DAHDI/1-")
    assert back.answer == pytest.approx(answered, abs=0.1)  # the box saw CONNECT when the network sent it
    assert back.billsec == pytest.approx(cleared - answered, abs=1.0)

    # the queue log: the original caller left with the key; the callback entered, connected, completed
    log = [parse_line(line) for line in (mgr.data_dir / "queue_log").read_text().splitlines()]
    assert [e.event for e in log if e.callid == original] == ["ENTERQUEUE", "EXITWITHKEY"]
    story = [e for e in log if e.callid == f"{original}-cb"]
    assert [e.event for e in story] == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"]
    enter, connect, complete = story
    assert enter.field("url") == "callback" and enter.field("callerid") == CUSTOMER
    assert connect.agent == "SIP/1001" and connect.field("bridgedchanneluniqueid") == back.uniqueid
    assert connect.time == pytest.approx(back.answer, abs=1.0)
    assert int(connect.field("holdtime")) == pytest.approx(back.answer - first.start - 10.5, abs=1)
    assert int(complete.field("calltime")) == pytest.approx(back.billsec, abs=1)
    db = director.acd.conn  # the file and the database agree
    rows = db.execute("SELECT event FROM queue_log WHERE callid = ? ORDER BY rowid", (f"{original}-cb",))
    assert [r[0] for r in rows] == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"]
