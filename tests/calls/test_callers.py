"""Simulated callers (tools.callers) against the box in virtual time: what the callers did and what the
box recorded must agree, call for call."""

from __future__ import annotations

from firmware.calls.loopback import PhoneBehaviour
from tools.callers import CallerProfile, SimulatedCallers


def test_an_hour_of_callers_matches_the_cdrs(make_bed) -> None:
    bed = make_bed()
    for agent in ("1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009"):
        bed.phones.add_phone(agent, PhoneBehaviour(answer_after=2.0))
    # the operator (key 0) is not staffed in this test: those callers wait, give up, or the box clears them

    def connected(leg) -> bool:
        call = bed.call_of(leg)
        return call is not None and call.b is not None and call.state == "up"

    callers = SimulatedCallers(
        bed.clock,
        lines=_Lines(bed),
        connected=connected,
        profile=CallerProfile(calls_per_hour=240, patience_mean=90),
        seed=3,
    )
    callers.start()
    bed.run(3600)
    callers.stop()
    bed.run(600)  # let every call end
    stats = callers.stats
    assert stats.offered > 180  # about 240 expected in the hour
    assert stats.talked > 50 and stats.abandoned > 0
    assert not callers.active
    cdrs = bed.mgr.store.cdrs()
    inbound = [c for c in cdrs if c.dcontext.startswith("from-")]
    assert len(inbound) == stats.offered - stats.no_line
    answered_by_agent = [c for c in inbound if c.dstchannel.startswith("SIP")]
    assert len(answered_by_agent) == stats.talked
    assert not bed.mgr.calls  # nothing left stuck


class _Lines:
    def __init__(self, bed) -> None:
        self.bed = bed

    def call_in(self, caller: str, dnis: str):
        return self.bed.pstn.call_in(self.bed.mgr, caller, dnis, None)
