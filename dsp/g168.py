"""G.168 test equipment: composite source signal, hybrid echo path model, level meter.

These are the signal sources and measuring devices ITU-T G.168 section 6.4 uses to test an echo canceller
(the canceller itself is dsp.echo). Pure computation: coefficient tables (G.168 Annex D) are passed in by
the caller, who reads them from the conformance data.

- ``css(seconds, level_dbm0)``: a composite source signal in the manner of G.168 / P.501: a voiced
  (harmonic, speech-like spectrum) burst of 48.62 ms, a pseudo-noise burst of 200 ms, a pause of
  101.38 ms; the next 350 ms period repeats it with inverted sign. The level is the power of the active
  (non-pause) parts.
- ``EchoPath``: echo = pure delay + Annex D impulse response scaled to a given ERL (measured on the
  response's power gain), optionally through A-law on every digital/analogue crossing as spandsp's
  echo_tests.c models it.
- ``level_dbm0``: the G.168 6.4.1.2.1 level measuring device (single-pole power estimate, 35 ms time
  constant), for whole signals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.signal as ss

from dsp import g711
from dsp.levels import DBM0_MEAN_SQUARE, SAMPLE_RATE, dbm0_to_mean_square

__all__ = ["css", "hoth_noise", "white_noise", "tone_pair", "EchoPath", "level_dbm0", "CSS_PERIOD"]

_VOICED = 389  # 48.62 ms
_NOISE = 1600  # 200 ms
_PAUSE = 811  # 101.38 ms
CSS_PERIOD = _VOICED + _NOISE + _PAUSE  # 350 ms


def _css_period(rng: np.random.Generator) -> np.ndarray:
    n = np.arange(_VOICED)
    f0 = 125.0
    voiced = np.zeros(_VOICED)
    for k in range(1, int(3400 / f0) + 1):
        fk = k * f0
        # speech-like long-term spectrum: flat to 500 Hz, then about -9 dB/octave
        amp = 1.0 if fk <= 500 else (500.0 / fk) ** 1.5
        voiced += amp * np.cos(2 * np.pi * fk * n / SAMPLE_RATE + rng.uniform(0, 2 * np.pi))
    voiced *= np.hanning(_VOICED) ** 0.25
    b, a = ss.butter(4, [300.0, 3400.0], btype="bandpass", fs=SAMPLE_RATE)
    noise = ss.lfilter(b, a, rng.standard_normal(_NOISE + 400))[400:]
    voiced /= np.sqrt(np.mean(voiced**2))
    noise /= np.sqrt(np.mean(noise**2))
    return np.concatenate([voiced, noise, np.zeros(_PAUSE)])


def css(seconds: float, level_dbm0: float, seed: int = 1) -> npt.NDArray[np.int16]:
    """Composite source signal of `seconds` at `level_dbm0` (power of the active parts), int16."""
    rng = np.random.default_rng(seed)
    period = _css_period(rng)
    two = np.concatenate([period, -period])
    n = int(round(seconds * SAMPLE_RATE))
    sig = np.resize(two, n)
    active_ms = (_VOICED + _NOISE) / CSS_PERIOD
    gain = np.sqrt(dbm0_to_mean_square(level_dbm0) / (np.mean(period**2) / active_ms))
    return np.clip(np.rint(sig * gain), -32768, 32767).astype(np.int16)


def white_noise(seconds: float, level_dbm0: float, seed: int = 2) -> npt.NDArray[np.int16]:
    """Gaussian white noise at `level_dbm0`, int16."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(round(seconds * SAMPLE_RATE))) * np.sqrt(dbm0_to_mean_square(level_dbm0))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def hoth_noise(seconds: float, level_dbm0: float, seed: int = 3) -> npt.NDArray[np.int16]:
    """Low-pass (Hoth-like, first order) noise at `level_dbm0`, int16."""
    rng = np.random.default_rng(seed)
    x = ss.lfilter([0.375], [1.0, -0.625], rng.standard_normal(int(round(seconds * SAMPLE_RATE))))
    x *= np.sqrt(dbm0_to_mean_square(level_dbm0) / np.mean(x**2))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def tone_pair(seconds: float, f1: float, l1: float, f2: float, l2: float) -> npt.NDArray[np.int16]:
    """Sum of two sines (levels in dBm0 each; f2 = 0 for a single tone), int16."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    x = np.sqrt(2 * dbm0_to_mean_square(l1)) * np.sin(2 * np.pi * f1 * t)
    if f2:
        x += np.sqrt(2 * dbm0_to_mean_square(l2)) * np.sin(2 * np.pi * f2 * t)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


class EchoPath:
    """Hybrid echo path: pure delay, then an Annex D response at the wanted ERL; optional A-law.

    ``run(rout, sgen)`` returns Sin = codec(codec(echo(codec(rout))) + codec(sgen)) for 1-D or
    (channels, n) int16 signals (the codec is A-law when ``alaw``, else identity), keeping state between
    calls. ``rout`` is what the canceller sent to the line (its ``far``).
    """

    def __init__(self, coeffs: npt.ArrayLike, gain: float, erl_db: float, delay: int, alaw: bool) -> None:
        h = np.asarray(coeffs, np.float64) * float(gain)
        # ERL measured as G.168 does, with the test signal: CSS in, echo power out
        ref = css(2.8, -10.0).astype(np.float64)
        gain_css = np.mean(ss.lfilter(h, [1.0], ref) ** 2) / np.mean(ref**2)
        h *= 10.0 ** (-erl_db / 20.0) / np.sqrt(gain_css)
        self.h = np.concatenate([np.zeros(int(delay)), h])
        self.alaw = bool(alaw)
        self._zi: np.ndarray | None = None

    def _codec(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
        return g711.alaw_decode(g711.alaw_encode(x)) if self.alaw else x

    def run(self, rout: npt.ArrayLike, sgen: npt.ArrayLike) -> npt.NDArray[np.int16]:
        r = self._codec(np.asarray(rout)).astype(np.float64)
        if self._zi is None:
            self._zi = np.zeros(r.shape[:-1] + (len(self.h) - 1,))
        echo, self._zi = ss.lfilter(self.h, [1.0], r, axis=-1, zi=self._zi)
        s = self._codec(np.asarray(sgen)).astype(np.float64)
        return self._codec(echo + s)

    def echo_only(self, rout: npt.ArrayLike) -> npt.NDArray[np.int16]:
        """Echo of `rout` alone (for ERLE references), not advancing the running state."""
        r = self._codec(np.asarray(rout)).astype(np.float64)
        return self._codec(ss.lfilter(self.h, [1.0], r, axis=-1))


def level_dbm0(x: npt.ArrayLike, tau_s: float = 0.035) -> npt.NDArray[np.float64]:
    """G.168 6.4.1.2.1 level meter: single-pole mean-square estimate, returns dBm0 per sample."""
    a = np.exp(-1.0 / (SAMPLE_RATE * tau_s))
    s = np.asarray(x, np.float64)
    p = ss.lfilter([1.0 - a], [1.0, -a], s * s, axis=-1)
    return 10.0 * np.log10(np.maximum(p, 1e-12) / DBM0_MEAN_SQUARE)


# ---------------------------------------------------------------------------------------------------
# G.168 test procedures, framed as spandsp's echo_tests.c frames them, run on many channels at once:
# every channel of one canceller gets its own echo path (model, ERL, delay) and Rin level.


class Bench:
    """A canceller and one echo path per channel; runs Rin/Sgen through both and keeps the signals."""

    def __init__(self, ec: Any, paths: list[EchoPath]) -> None:
        self.ec = ec
        self.paths = paths
        self.rin: list[np.ndarray] = []
        self.sin: list[np.ndarray] = []
        self.sout: list[np.ndarray] = []
        self.sgen: list[np.ndarray] = []

    def run(self, rin: np.ndarray, sgen: np.ndarray, chunk: int = 8000) -> np.ndarray:
        """Feed Rin (far) and Sgen (near talker), both (channels, n) int16; returns this segment's Sout."""
        sin = np.stack([p.run(rin[i], sgen[i]) for i, p in enumerate(self.paths)])
        out = np.concatenate(
            [
                self.ec.process(sin[:, i : i + chunk], rin[:, i : i + chunk])
                for i in range(0, sin.shape[1], chunk)
            ],
            axis=1,
        )
        self.rin.append(rin)
        self.sin.append(sin)
        self.sout.append(out)
        self.sgen.append(sgen)
        return out

    def set_path(self, paths: list[EchoPath]) -> None:
        self.paths = paths

    def adaptation(self, on: bool) -> None:
        for i in range(self.ec.channels):
            self.ec.set_adaptation(i, on)

    def nlp(self, on: bool) -> None:
        for i in range(self.ec.channels):
            self.ec.set_nlp(i, on)


def mean_level(x: np.ndarray, start_s: float = 0.0, stop_s: float | None = None) -> np.ndarray:
    """Power in dBm0 per channel of x[:, start:stop] (seconds)."""
    a = int(start_s * SAMPLE_RATE)
    b = x.shape[-1] if stop_s is None else int(stop_s * SAMPLE_RATE)
    s = x[..., a:b].astype(np.float64)
    return 10.0 * np.log10(np.maximum(np.mean(s * s, axis=-1), 1e-3) / DBM0_MEAN_SQUARE)


def erle_db(
    sin: np.ndarray, sout: np.ndarray, start_s: float, span_s: float = CSS_PERIOD * 2 / 8000
) -> np.ndarray:
    """ERLE per channel over [start, start + span) seconds (default: one CSS double period, 0.7 s)."""
    return mean_level(sin, start_s, start_s + span_s) - mean_level(sout, start_s, start_s + span_s)


@dataclass(frozen=True)
class Case:
    """One channel's test condition: Annex D model, ERL, pure delay (samples), Rin level, A-law or not."""

    model: str
    coeffs: tuple[float, ...]
    gain: float
    erl: float = 6.0
    delay: int = 0
    level: float = -10.0
    alaw: bool = True

    def path(self) -> EchoPath:
        return EchoPath(self.coeffs, self.gain, self.erl, self.delay, self.alaw)


def _rin(cases: list[Case], seconds: float, rel_db: float = 0.0, seed: int = 1) -> np.ndarray:
    return np.stack([css(seconds, c.level + rel_db, seed=seed) for c in cases])


def _zeros(cases: list[Case], seconds: float) -> np.ndarray:
    return np.zeros((len(cases), int(round(seconds * SAMPLE_RATE))), np.int16)


def _bench(make_ec: Callable[[int], Any], cases: list[Case], nlp: bool) -> Bench:
    b = Bench(make_ec(len(cases)), [c.path() for c in cases])
    b.nlp(nlp)
    return b


# Pass criteria (our reading of G.168 clause 6.4.2; spandsp's echo_tests.c frames the procedures but
# leaves most verdicts open). Levels are dBm0; "combined loss" is Lrin - Lres (ERL + ERLE).
LRET_MAX = -65.0  # test 2A: returned echo with NLP after 1 s
COMBINED_1S = 20.0  # tests 2B/2C/3: combined loss one second after convergence starts
ERLE_10S = 25.0  # test 2B: steady-state ERLE after 10 s (linear part alone, through A-law)
DIVERGE_DB = 10.0  # tests 3B/6: ERLE may drop at most this much after double talk / tones
CN_TOL = 2.0  # test 9: comfort noise level within this many dB of the background


def test_2a(make_ec: Callable[[int], Any], cases: list[Case], alt: list[Case]) -> dict[str, np.ndarray]:
    """2A: convergence (a) and reconvergence (b, model changed) with NLP on: Lret <= -65 dBm0 after 1 s."""
    b = _bench(make_ec, cases, nlp=True)
    b.run(_zeros(cases, 0.2), _zeros(cases, 0.2))
    out_a = b.run(_rin(cases, 10.0), _zeros(cases, 10.0))
    b.set_path([c.path() for c in alt])
    out_b = b.run(_rin(cases, 10.0), _zeros(cases, 10.0))
    lret_a = level_dbm0(out_a)[:, SAMPLE_RATE:].max(axis=1)
    lret_b = level_dbm0(out_b)[:, SAMPLE_RATE:].max(axis=1)
    return {"lret_a": lret_a, "lret_b": lret_b, "pass": (lret_a <= LRET_MAX) & (lret_b <= LRET_MAX)}


def test_2b(make_ec: Callable[[int], Any], cases: list[Case], alt: list[Case]) -> dict[str, np.ndarray]:
    """2B: NLP off; combined loss >= 20 dB at 1 s, ERLE >= 25 dB at 10 s; again after a model change."""
    b = _bench(make_ec, cases, nlp=False)
    rin = _rin(cases, 10.0)
    res = {}
    for tag, paths in (("a", None), ("b", [c.path() for c in alt])):
        if paths is not None:
            b.set_path(paths)
        out = b.run(rin, _zeros(cases, 10.0))
        sin = b.sin[-1]
        res[f"erle1_{tag}"] = erle_db(sin, out, 1.0)
        res[f"erle10_{tag}"] = erle_db(sin, out, 9.3)
        res[f"comb1_{tag}"] = mean_level(rin, 1.0, 1.7) - mean_level(out, 1.0, 1.7)
    res["pass"] = (
        (res["comb1_a"] >= COMBINED_1S)
        & (res["comb1_b"] >= COMBINED_1S)
        & (res["erle10_a"] >= ERLE_10S)
        & (res["erle10_b"] >= ERLE_10S)
    )
    return res


def test_2c(
    make_ec: Callable[[int], Any], cases: list[Case], noise_dbm0: float = -40.0
) -> dict[str, np.ndarray]:
    """2C: converge 5 s with Hoth noise at -40 dBm0 at the near end; frozen, the residual is below it."""
    b = _bench(make_ec, cases, nlp=False)
    b.run(_zeros(cases, 0.2), _zeros(cases, 0.2))
    noise = np.stack([hoth_noise(5.0, noise_dbm0, seed=7 + i) for i in range(len(cases))])
    b.run(_rin(cases, 5.0), noise)
    b.adaptation(False)
    out = b.run(_rin(cases, 5.0, seed=3), _zeros(cases, 5.0))
    lres = mean_level(out)
    return {"lres": lres, "noise": np.full(len(cases), noise_dbm0), "pass": lres <= noise_dbm0}


def test_3a(
    make_ec: Callable[[int], Any], cases: list[Case], near_rel: float = -20.0
) -> dict[str, np.ndarray]:
    """3A: double talk from reset with a weak near-end CSS (Rin - 20 dB); frozen, residual <= Sgen level."""
    b = _bench(make_ec, cases, nlp=False)
    b.run(_zeros(cases, 0.2), _zeros(cases, 0.2))
    b.run(_rin(cases, 5.0), _rin(cases, 5.0, near_rel, seed=5))
    b.adaptation(False)
    b.run(_rin(cases, 0.5, seed=3), _zeros(cases, 0.5))
    out = b.run(_rin(cases, 5.0, seed=4), _zeros(cases, 5.0))
    lres = mean_level(out)
    lsgen = np.array([c.level + near_rel for c in cases])
    return {"lres": lres, "lsgen": lsgen, "pass": lres <= lsgen}


def test_3b(make_ec: Callable[[int], Any], cases: list[Case], near_rel: float = 0.0) -> dict[str, np.ndarray]:
    """3B: converge 5 s, double talk 5 s (near CSS at Rin + near_rel dB), freeze: no divergence."""
    b = _bench(make_ec, cases, nlp=False)
    b.run(_zeros(cases, 0.2), _zeros(cases, 0.2))
    b.run(_rin(cases, 5.0), _zeros(cases, 5.0))
    before = erle_db(b.sin[-1], b.sout[-1], 4.3)
    b.run(_rin(cases, 5.0, seed=3), _rin(cases, 5.0, near_rel, seed=5))
    b.adaptation(False)
    b.run(_rin(cases, 1.0, seed=4), _zeros(cases, 1.0))
    out = b.run(_rin(cases, 5.0, seed=6), _zeros(cases, 5.0))
    after = erle_db(b.sin[-1], out, 0.0, 5.0)
    comb = mean_level(b.rin[-1]) - mean_level(out)
    ok = (after >= before - DIVERGE_DB) & (comb >= COMBINED_1S)
    return {"erle_before": before, "erle_after": after, "combined": comb, "pass": ok}


def test_3c(make_ec: Callable[[int], Any], cases: list[Case]) -> dict[str, np.ndarray]:
    """3C: simulated conversation: double talk from reset (near at -15 dB), then far alone; then loud
    double talk and near alone. Combined loss in each far-alone stretch >= 20 dB, no divergence."""
    b = _bench(make_ec, cases, nlp=False)
    b.run(_zeros(cases, 0.2), _zeros(cases, 0.2))
    b.run(_rin(cases, 5.6), _rin(cases, 5.6, -15.0, seed=5))
    out1 = b.run(_rin(cases, 1.4, seed=3), _zeros(cases, 1.4))
    comb1 = mean_level(b.rin[-1]) - mean_level(out1)
    b.run(_rin(cases, 5.0, seed=4), _zeros(cases, 5.0))
    b.run(_rin(cases, 5.6, seed=6), _rin(cases, 5.6, 0.0, seed=8))
    b.run(_zeros(cases, 5.6), _rin(cases, 5.6, 0.0, seed=9))
    out2 = b.run(_rin(cases, 1.4, seed=10), _zeros(cases, 1.4))
    comb2 = mean_level(b.rin[-1]) - mean_level(out2)
    return {"combined_1": comb1, "combined_2": comb2, "pass": (comb1 >= COMBINED_1S) & (comb2 >= COMBINED_1S)}


def test_4(
    make_ec: Callable[[int], Any], cases: list[Case], silence_s: float = 120.0
) -> dict[str, np.ndarray]:
    """4: leak rate: converge 5 s, silence (2 min): the frozen model cancels a probe CSS as well as
    before the silence (ERLE within 3 dB)."""
    b = _bench(make_ec, cases, nlp=False)
    b.run(_zeros(cases, 0.2), _zeros(cases, 0.2))
    b.run(_rin(cases, 5.0), _zeros(cases, 5.0))
    probe = _rin(cases, 2.1, seed=3)
    b.adaptation(False)
    out = b.run(probe, _zeros(cases, 2.1))
    before = erle_db(b.sin[-1], out, 0.0, 2.1)
    b.adaptation(True)
    b.run(_zeros(cases, silence_s), _zeros(cases, silence_s))
    b.adaptation(False)
    out = b.run(probe, _zeros(cases, 2.1))
    after = erle_db(b.sin[-1], out, 0.0, 2.1)
    return {"erle_before": before, "erle_after": after, "pass": after >= before - 3.0}


def test_5(make_ec: Callable[[int], Any], cases: list[Case]) -> dict[str, np.ndarray]:
    """5: infinite return loss: converge, then open the echo path; 1 s later Lres <= Lrin - 20 dB."""
    b = _bench(make_ec, cases, nlp=False)
    b.run(_rin(cases, 5.0), _zeros(cases, 5.0))
    b.set_path([Case(c.model, c.coeffs, c.gain, 200.0, c.delay, c.level, c.alaw).path() for c in cases])
    out = b.run(_rin(cases, 5.0, seed=3), _zeros(cases, 5.0))
    lres = mean_level(out, 1.0, 5.0)
    lrin = mean_level(b.rin[-1], 1.0, 5.0)
    return {"lres": lres, "lrin": lrin, "pass": lres <= lrin - COMBINED_1S}


TONES_6 = ((697.0, 1209.0), (770.0, 1336.0), (852.0, 1477.0), (941.0, 1633.0), (1000.0, 0.0), (2000.0, 0.0))


def test_6(make_ec: Callable[[int], Any], cases: list[Case], tone_s: float = 5.0) -> dict[str, np.ndarray]:
    """6: non-divergence on narrow-band signals: converged, then tones 5 s each; frozen ERLE holds."""
    b = _bench(make_ec, cases, nlp=False)
    b.run(_rin(cases, 5.0), _zeros(cases, 5.0))
    before = erle_db(b.sin[-1], b.sout[-1], 4.3)
    for f1, f2 in TONES_6:
        t = tone_pair(tone_s, f1, -11.0, f2, -9.0)
        b.run(np.repeat(t[None], len(cases), axis=0), _zeros(cases, tone_s))
    b.adaptation(False)
    out = b.run(_rin(cases, 5.0, seed=3), _zeros(cases, 5.0))
    after = erle_db(b.sin[-1], out, 0.0, 5.0)
    return {"erle_before": before, "erle_after": after, "pass": after >= before - DIVERGE_DB}


def test_7(make_ec: Callable[[int], Any], cases: list[Case], seconds: float = 120.0) -> dict[str, np.ndarray]:
    """7: stability: a tone pair into an unconverged canceller for 2 min: Sout never above Sin after
    0.5 s, and the last 10 s cancelled by >= 20 dB."""
    b = _bench(make_ec, cases, nlp=False)
    t = tone_pair(seconds, TONES_6[0][0], -11.0, TONES_6[0][1], -9.0)
    out = b.run(np.repeat(t[None], len(cases), axis=0), _zeros(cases, seconds))
    sin = b.sin[-1]
    growth = (level_dbm0(out) - level_dbm0(sin))[:, SAMPLE_RATE // 2 :].max(axis=1)
    last = erle_db(sin, out, seconds - 10.0, 10.0)
    return {"max_growth": growth, "erle_last": last, "pass": (growth <= 0.0) & (last >= 20.0)}


def test_9(make_ec: Callable[[int], Any], cases: list[Case], quiet_s: float = 30.0) -> dict[str, np.ndarray]:
    """9: comfort noise: near background -45 dBm0, then NLP active under Rin noise: Sout within +-2 dB of
    it; background down to -55 dBm0: the comfort noise follows."""
    b = _bench(make_ec, cases, nlp=True)
    b.run(_rin(cases, 5.0), _zeros(cases, 5.0))
    n = len(cases)
    res = {}
    for tag, lvl, secs in (("45", -45.0, quiet_s), ("55", -55.0, quiet_s / 3)):
        nq = int(round(secs * SAMPLE_RATE))
        bg = np.stack([white_noise(2.0 + nq / SAMPLE_RATE, lvl, seed=20 + i) for i in range(n)])
        b.run(np.zeros((n, nq), np.int16), bg[:, :nq])
        rin = np.stack([white_noise(2.0, -10.0, seed=40 + i) for i in range(n)])
        out = b.run(rin, bg[:, nq:])
        res[f"cn_{tag}"] = mean_level(out, 0.5, 2.0)
        res[f"bg_{tag}"] = mean_level(bg[:, nq:], 0.5, 2.0)
    res["pass"] = (np.abs(res["cn_45"] - res["bg_45"]) <= CN_TOL) & (
        np.abs(res["cn_55"] - res["bg_55"]) <= CN_TOL
    )
    return res
