"""Talk-off: false DTMF digits and false call-progress tones on the speech/music corpus (tools/corpus.py),
ours beside spandsp's dtmf_rx on the same samples. CI runs a 3-minute slice; `slow` runs 30 minutes."""

from __future__ import annotations

import collections

import pytest
from conftest import as_channels

from dsp import g711
from dsp.cpt import CallProgressDetector
from dsp.dtmf import DtmfDetector


def _ours_dtmf(x):
    events = DtmfDetector(10).process(as_channels(x, 10))
    return collections.Counter(str(e.value) for e in events)


def _spandsp_dtmf(x):
    from tools.bench.ref_spandsp import SpandspDtmf

    rx = SpandspDtmf(1)
    try:
        return collections.Counter(rx.process_channel(0, x))
    finally:
        rx.close()


def _check(x, label):
    ours = _ours_dtmf(x)
    ref = _spandsp_dtmf(x)
    minutes = x.size / 8000 / 60
    print(
        f"{label} ({minutes:.0f} min): ours {sum(ours.values())} false digits {dict(ours)}; "
        f"spandsp {sum(ref.values())} {dict(ref)}"
    )
    assert sum(ours.values()) <= sum(ref.values())
    return ours, ref


@pytest.mark.interop
def test_dtmf_talkoff_short_slice(talkoff_short):
    ours, _ = _check(talkoff_short, "linear")
    assert sum(ours.values()) == 0


@pytest.mark.interop
def test_dtmf_talkoff_short_slice_through_alaw(talkoff_short):
    x = g711.alaw_decode(g711.alaw_encode(talkoff_short))
    ours, _ = _check(x, "A-law")
    assert sum(ours.values()) == 0


@pytest.mark.slow
@pytest.mark.interop
def test_dtmf_talkoff_30_minutes(talkoff_full):
    assert talkoff_full.size >= 30 * 60 * 8000
    _check(talkoff_full, "linear")
    _check(g711.alaw_decode(g711.alaw_encode(talkoff_full)), "A-law")


def test_no_false_call_progress_tone_short_slice(talkoff_short):
    assert CallProgressDetector(10).process(as_channels(talkoff_short, 10)) == []


@pytest.mark.slow
def test_no_false_call_progress_tone_30_minutes(talkoff_full):
    assert CallProgressDetector(30).process(as_channels(talkoff_full, 30)) == []
