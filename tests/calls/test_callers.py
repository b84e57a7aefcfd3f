"""Simulated callers (tools.callers) against the box in virtual time: what the callers did and what the
box recorded must agree, call for call."""

from __future__ import annotations

import pytest

from firmware.calls.loopback import PhoneBehaviour
from tools.callers import CallerProfile, SimulatedCallers


class _Lines:
    def __init__(self, bed) -> None:
        self.bed = bed

    def call_in(self, caller: str, dnis: str):
        return self.bed.pstn.call_in(self.bed.mgr, caller, dnis, None)


def run_callers(bed, seconds: float, profile: CallerProfile, seed: int) -> SimulatedCallers:
    for agent in ("1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009"):
        bed.phones.add_phone(agent, PhoneBehaviour(answer_after=2.0))
    # the operator (key 0) is not staffed here: those callers wait, give up, or the box clears them

    def connected(leg) -> bool:
        call = bed.call_of(leg)
        return call is not None and call.b is not None and call.state == "up"

    callers = SimulatedCallers(bed.clock, lines=_Lines(bed), connected=connected, profile=profile, seed=seed)
    callers.start()
    bed.run(seconds)
    callers.stop()
    bed.run(profile.talk[1] + profile.patience_mean * 5)  # let every call end
    return callers


def check_agreement(bed, callers: SimulatedCallers) -> None:
    stats = callers.stats
    assert not callers.active
    inbound = [c for c in bed.mgr.store.cdrs() if c.dcontext.startswith("from-")]
    assert len(inbound) == stats.offered - stats.no_line
    assert len([c for c in inbound if c.dstchannel.startswith("SIP")]) == stats.talked
    assert not bed.mgr.calls  # nothing left stuck


def test_minutes_of_callers_match_the_cdrs(make_bed) -> None:
    bed = make_bed(trunk_lines=8, fxo_lines=0, extensions=10, tick_ms=20)
    profile = CallerProfile(calls_per_hour=600, patience_mean=20, talk=(10, 40), think=(6, 8))
    callers = run_callers(bed, 240, profile, seed=3)
    assert callers.stats.offered > 25 and callers.stats.talked > 5 and callers.stats.abandoned > 0
    check_agreement(bed, callers)


@pytest.mark.slow
def test_an_hour_of_callers_matches_the_cdrs(make_bed) -> None:
    bed = make_bed()
    profile = CallerProfile(calls_per_hour=360, patience_mean=90)
    callers = run_callers(bed, 3600, profile, seed=4)
    assert callers.stats.offered > 250 and callers.stats.talked > 100
    check_agreement(bed, callers)
