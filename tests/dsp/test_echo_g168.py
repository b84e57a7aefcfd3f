"""ITU-T G.168 tests 2A-9 on the Annex D hybrid models, through A-law both ways (dsp.g168 procedures).

CI runs a representative subset (four channels: four models, delays up to 900 samples, Rin 0 to -30
dBm0, in one canceller); the full matrix is marked slow and also printed by `python -m tools.g168_report`.
Tests we do not pass yet are xfail with the measured shortfall in the reason (see docs/echo.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsp import g168
from dsp.echo import EchoCanceller


@pytest.fixture(scope="module")
def models(conformance_dir):
    return json.loads((conformance_dir / "g168" / "hybrid_models.json").read_text())["models"]


def _case(models, name, **kw):
    m = models[name]
    return g168.Case(name, tuple(m["coeffs"]), m["gain"], **kw)


@pytest.fixture(scope="module")
def cases(models):
    spec = [("d2", 0, 0.0), ("d5", 300, -10.0), ("d8", 900, -30.0), ("d9", 500, -20.0)]
    return [_case(models, m, delay=d, level=lv) for m, d, lv in spec]


@pytest.fixture(scope="module")
def alt(models):
    spec = [("d4", 100, 0.0), ("d6", 0, -10.0), ("d3", 200, -30.0), ("d7", 800, -20.0)]
    return [_case(models, m, delay=d, level=lv) for m, d, lv in spec]


def make(n: int) -> EchoCanceller:
    return EchoCanceller(n, tail_ms=128)


def test_css_level_and_shape():
    x = g168.css(3.5, -10.0)
    active = np.abs(x) > 0
    assert g168.CSS_PERIOD == 2800
    ms = np.mean(x.astype(float) ** 2) / (1989 / 2800)
    assert abs(10 * np.log10(ms / (22785.0**2 / 2)) + 10.0) < 0.2
    assert 0.6 < active.mean() < 0.8  # pauses are there


def test_echo_path_erl(models):
    p = _case(models, "d5", erl=6.0, delay=0, alaw=False).path()
    x = g168.css(2.8, -10.0)
    e = p.echo_only(x)
    assert abs(g168.mean_level(x) - g168.mean_level(e) - 6.0) < 0.5


def test_2a_convergence_with_nlp(cases, alt):
    r = g168.test_2a(make, cases, alt)
    assert r["pass"].all(), r


def test_2b_convergence_without_nlp(cases, alt):
    r = g168.test_2b(make, cases, alt)
    assert r["pass"].all(), r


@pytest.mark.xfail(
    reason="residual after 5 s with -40 dBm0 noise is -33 to -39 dBm0, not below -40", strict=False
)
def test_2c_convergence_with_background_noise(cases):
    r = g168.test_2c(make, cases)
    assert r["pass"].all(), r


@pytest.mark.xfail(
    reason="at Rin 0 dBm0 the residual after weak double talk ends about 1 dB above the near-end level",
    strict=False,
)
def test_3a_double_talk_low_level(cases):
    r = g168.test_3a(make, cases)
    assert r["pass"].all(), r


def test_3b_a_double_talk_does_not_diverge(cases):
    r = g168.test_3b(make, cases, near_rel=0.0)
    assert r["pass"].all(), r


def test_3b_b_double_talk_low_level(cases):
    r = g168.test_3b(make, cases, near_rel=-15.0)
    assert r["pass"].all(), r


@pytest.mark.xfail(
    reason="3C: after double talk from reset, combined loss is 14-17 dB on 2 of 4 channels, not 20",
    strict=False,
)
def test_3c_conversation(cases):
    r = g168.test_3c(make, cases)
    assert r["pass"].all(), r


def test_4_leak_rate(cases):
    r = g168.test_4(make, cases, silence_s=20.0)
    assert r["pass"].all(), r


def test_5_infinite_return_loss_does_not_inject(cases):
    r = g168.test_5(make, cases)
    assert r["pass"].all(), r


def test_6_narrowband_no_divergence(cases):
    r = g168.test_6(make, cases, tone_s=2.0)
    assert r["pass"].all(), r


def test_7_stability(cases):
    r = g168.test_7(make, cases, seconds=20.0)
    # never louder than the echo on every channel (no divergence)
    assert (r["max_growth"] <= 0.0).all(), r


@pytest.mark.xfail(
    reason="7: the d5 channel (300-sample delay) cancels the tone pair by only 12.7 dB in the last 10 s, "
    "not 20 (the same alone; the old 4-channel pass came from a constraint rotation shared between channels)",
    strict=False,
)
def test_7_stability_cancels_the_tone_pair(cases):
    r = g168.test_7(make, cases, seconds=20.0)
    assert r["pass"].all(), r


def test_9_comfort_noise(cases):
    r = g168.test_9(make, cases, quiet_s=6.0)
    assert r["pass"].all(), r


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_full_matrix(models):
    """All eight models x Rin 0..-30 dBm0 x delays up to the tail x linear/A-law (192 channels): the tests
    that pass there (2C, 3A, 3B(b), 3C are short on some channels: see the report)."""
    from tools.g168_report import matrix

    cs, alts = matrix(models)
    assert g168.test_2a(make, cs, alts)["pass"].all()
    assert g168.test_2b(make, cs, alts)["pass"].all()
    assert g168.test_3b(make, cs, 0.0)["pass"].all()
    assert g168.test_4(make, cs)["pass"].all()
    assert g168.test_5(make, cs)["pass"].all()
    assert g168.test_6(make, cs)["pass"].all()
    # stability: never louder than the echo (some paths give a tone echo above the 3 dB double-talk
    # margin, so the model is not trained on it; that is not divergence)
    assert (g168.test_7(make, cs)["max_growth"] <= 0.0).all()
    assert g168.test_9(make, cs)["pass"].all()
