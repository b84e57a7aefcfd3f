"""Events the detectors report (the public contract of the DSP layer, issue 3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    channel: int  # row of the block
    kind: str  # "dtmf" | "tone" | "callerid"
    value: object  # "0".."9","*","#","A".."D" | "dial","busy","ringback","congestion" | CallerId
    # Where the signal began, counted in samples from the first sample that channel processed since the
    # detector was made or reset(channel).
    sample: int
