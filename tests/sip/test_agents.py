"""tools.sipagents against the box's SIP service over real UDP (no engine: the service's own media pump):
digest registration, log-in and break codes reaching call control, a call answered after ringing with audio
both ways, the agent ending the call when its talk time runs out, a call cancelled while ringing, and
un-registration on stop."""

from __future__ import annotations

import asyncio

from board.clock import RealClock
from firmware.calls.endpoint import Cause, Endpoint
from firmware.sip.core import CoreConfig
from firmware.sip.extensions import Directory
from firmware.sip.service import SipService
from tools.sipagents import AgentProfile, SipAgents, parse_agents

from .doubles import AnsweringDouble, dominant_frequency, rms_dbfs


class Control(AnsweringDouble):
    """Records the call-control events; feature codes are answered by the box itself."""

    def incoming(self, ep: Endpoint, caller: str, called: str, caller_name: str | None = None) -> None:
        self.events.append(("incoming", caller, called, caller_name))
        ep.hangup(Cause.UNALLOCATED)


async def until(cond, timeout: float) -> bool:  # noqa: ANN001
    for _ in range(int(timeout / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


def test_parse_agents():
    assert parse_agents("1001-1003,1010", "pw{ext}") == {
        "1001": "pw1001",
        "1002": "pw1002",
        "1003": "pw1003",
        "1010": "pw1010",
    }


def test_agents_register_log_in_answer_talk_break_and_unregister():
    async def main() -> dict:
        control = Control(tone_hz=1000.0)
        directory = Directory.with_passwords("callbox", {"1001": "pw1001", "1002": "pw1002"})
        svc = SipService(directory, RealClock(), "127.0.0.1", 0, control=control,
                         config=CoreConfig(qualify_interval=0))  # fmt: skip
        features: list = []
        svc.line.on_feature = lambda ext, action, arg: features.append((ext, action, arg))
        await svc.start()
        svc.start_media_pump(control.media)
        profile = AgentProfile(answer_after=(0.4, 0.4), talk=(1.5, 1.5), breaks_every=None, tone_hz=400.0)
        agents = SipAgents(("127.0.0.1", svc.port), {"1001": "pw1001", "1002": "pw1002"}, profile)
        await agents.start(stagger=0.0)
        out: dict = {}
        try:
            assert await agents.wait_ready(10), agents.status()
            now = svc.clock.now()
            out["registered"] = sorted(n for n in ("1001", "1002") if svc.core.registrar.contacts(n, now))
            a1 = agents.agents["1001"]
            # a queue call to 1001: ringing, answered after 0.4 s, then the agent hangs up after 1.5 s
            ep = svc.line.originate("1001", "13800138000", "Queue call", control)
            assert ep is not None
            assert await until(lambda: ep.up, 5), a1.stats
            await asyncio.sleep(1.0)
            out["box_heard"] = control.audio(ep.leg)[-4000:]
            out["agent_heard"] = a1.heard_pcm()[-4000:]
            assert await until(lambda: ep.state == "down", 5), a1.stats
            out["ep_stats"] = ep.stats
            # a call cancelled while ringing
            profile.answer_after = (5.0, 5.0)
            ep2 = svc.line.originate("1001", "13800138001", "", control)
            assert ep2 is not None
            assert await until(lambda: a1.state == "ringing", 5)
            ep2.hangup(Cause.NORMAL)
            assert await until(lambda: a1.state == "idle", 5), a1.state
            # a coded break on 1002
            await agents.agents["1002"].take_break("3", 0.2)
            out["features"] = list(features)
            out["a1"] = a1.stats
        finally:
            await agents.stop()
        now = svc.clock.now()
        out["after_stop"] = sorted(n for n in ("1001", "1002") if svc.core.registrar.contacts(n, now))
        await svc.stop()
        return out

    out = asyncio.run(main())
    assert out["registered"] == ["1001", "1002"]
    assert out["after_stop"] == []  # un-registered (Expires: 0)
    assert ("1001", "queue_login", "") in out["features"] and ("1002", "queue_login", "") in out["features"]
    assert ("1002", "pause", "3") in out["features"] and ("1002", "unpause", "") in out["features"]
    heard = out["box_heard"]
    assert abs(dominant_frequency(heard) - 400.0) < 15 and rms_dbfs(heard) > -30
    back = out["agent_heard"]
    assert abs(dominant_frequency(back) - 1000.0) < 15 and rms_dbfs(back) > -30
    a1 = out["a1"]
    assert a1.calls_offered == 2 and a1.calls_answered == 1 and a1.hung_up_by_agent == 1
    assert out["ep_stats"] is not None and out["ep_stats"].packets_received > 40
