"""Talk-off corpus: speech and music that must not trigger DTMF or call-progress detectors.

The Bellcore talk-off tapes are not obtainable, so we build our own from what Debian ships:

- speech from espeak-ng, English (several accents) and Mandarin (`cmn`, spoken from pinyin syllables
  with their tones), several voices/variants, speeds and pitches; English text comes from the license
  texts in /usr/share/common-licenses, Mandarin from random common syllables;
- "mixed" passages where two talkers overlap (cross-talk on a line);
- synthetic music-like sequences: melodies and chords of notes (one to six partials each, so some are
  pure tones like a whistle or flute, with vibrato and attack/decay) on the equal-tempered scale, which
  puts several notes within 1-2 % of DTMF frequencies (F5 + F#6 is key 3 within 0.2 %).

Everything is resampled to 8 kHz, set to realistic line levels (-30 to -10 dBm0) and cached under a data
directory (default ~/.cache/callbox/talkoff, or $CALLBOX_DATA/talkoff) as one int16 .npy per minute
plus a manifest, so tests reuse it. Deterministic for a given seed.

    .venv/bin/python -m tools.corpus --minutes 30          # build (or reuse) the full corpus
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from dsp.levels import SAMPLE_RATE, dbm0_to_rms, power_dbm0

__all__ = ["default_dir", "build", "load"]

MINUTE = 60 * SAMPLE_RATE
VERSION = 2  # bump when the generator changes: a cached corpus of another version is rebuilt
ENGLISH_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc"]
MANDARIN_VOICES = ["cmn-latn-pinyin", "cmn"]
VARIANTS = ["", "+m1", "+m3", "+m5", "+f1", "+f2", "+f3", "+f4", "+klatt", "+croak", "+whisper"]
_PINYIN = (
    "ni hao wo shi zhong guo ren de le ma ne ba a ta men zhe na li shang xia lai qu dian hua hao ma "
    "qing wen you mei zai jia gong si ke hu fu wu yi er san si wu liu qi ba jiu shi bai qian wan yuan "
    "zhang wang li zhao chen yang huang zhou wu xu sun hu zhu gao lin he guo ma luo liang song zheng "
    "xie han tang feng yu dong xiao cheng cao yuan deng xu fu shen zeng peng lu su jiang cai jia ding "
    "wei xue ye yan pan du dai xia zhong tian ren jiang fan fang shi yao tan liao zou xiong jin lu hao "
    "kong bai cui kang mao qiu qin jiang shi gu hou shao meng long wan duan lei qian tang yin li yi chang "
    "wu qiao he lai gong wen pang fan lan yin shi tao hong zhai an yan ni yuan jiu hui lou ya hang"
).split()


def default_dir() -> Path:
    base = os.environ.get("CALLBOX_DATA")
    return (Path(base) if base else Path.home() / ".cache" / "callbox") / "talkoff"


def _english_text() -> list[str]:
    words: list[str] = []
    lic = Path("/usr/share/common-licenses")
    for name in ("GPL-3", "Apache-2.0", "LGPL-2.1", "MPL-2.0", "Artistic", "GFDL-1.3"):
        f = lic / name
        if f.is_file():
            words += re.findall(r"[A-Za-z][A-Za-z']*|[0-9]+", f.read_text(errors="ignore"))
    if not words:
        words = (
            "the quick brown fox jumps over the lazy dog please hold the line your call is important".split()
        )
    return words


def _espeak(text: str, voice: str, speed: int, pitch: int, tmp: Path) -> np.ndarray:
    out = tmp / "say.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with wave.open(str(out), "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    g = math.gcd(SAMPLE_RATE, rate)
    return resample_poly(data, SAMPLE_RATE // g, rate // g)


def _set_level(x: np.ndarray, dbm0: float) -> np.ndarray:
    active = x[np.abs(x) > 0.02 * (np.abs(x).max() + 1e-9)]
    if active.size == 0:
        return x
    return x * (dbm0_to_rms(dbm0) / math.sqrt(np.mean(active * active)))


def _speech(rng: np.random.Generator, words: list[str], tmp: Path) -> tuple[np.ndarray, str]:
    if rng.random() < 0.5:
        voice = str(rng.choice(MANDARIN_VOICES)) + str(rng.choice(VARIANTS))
        syl = rng.choice(_PINYIN, size=int(rng.integers(15, 60)))
        text = " ".join(f"{s}{rng.integers(1, 5)}" for s in syl)
        if voice.startswith("cmn+") or voice == "cmn":
            text = " ".join(str(s) for s in syl)  # the cmn voice reads latin as English-ish pinyin
    else:
        voice = str(rng.choice(ENGLISH_VOICES)) + str(rng.choice(VARIANTS))
        start = int(rng.integers(0, max(1, len(words) - 80)))
        text = " ".join(words[start : start + int(rng.integers(15, 70))])
    speed = int(rng.integers(110, 260))
    pitch = int(rng.integers(15, 90))
    return _espeak(text, voice, speed, pitch, tmp), f"{voice} s{speed} p{pitch}"


def _music(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Melody + chords of harmonic notes with vibrato, on the equal-tempered scale."""
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    t_total = 0
    while t_total < n:
        dur = int(rng.uniform(0.08, 0.8) * SAMPLE_RATE)
        dur = min(dur, n - t_total)
        t = np.arange(dur) / SAMPLE_RATE
        env = np.minimum(1.0, t / 0.01) * np.exp(-t * rng.uniform(0.5, 6.0))
        for _ in range(int(rng.integers(1, 4))):  # notes sounding together
            midi = int(rng.integers(55, 96))
            f0 = 440.0 * 2.0 ** ((midi - 69) / 12.0)
            vib = 1.0 + rng.uniform(0, 0.006) * np.sin(2 * math.pi * rng.uniform(4, 7) * t)
            phase = 2 * math.pi * np.cumsum(f0 * vib) / SAMPLE_RATE
            partials = int(rng.integers(1, 7))  # 1 = a pure tone (whistle, flute, synth): the hard case
            decay = rng.uniform(0.3, 0.8)
            for h in range(1, partials + 1):
                if f0 * h < 3800:
                    out[t_total : t_total + dur] += (decay ** (h - 1)) * env * np.sin(h * phase)
        t_total += dur
    return out


def build(directory: Path | None = None, minutes: float = 30.0, seed: int = 2024) -> Path:
    """Build (or extend) the corpus to at least `minutes`; returns its directory."""
    directory = Path(directory) if directory else default_dir()
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if manifest.get("version") != VERSION or manifest.get("seed") != seed:
        # another generator version or seed: start again (only our own minute files are removed)
        for f in manifest.get("files", []):
            (directory / f["file"]).unlink(missing_ok=True)
        manifest = {"version": VERSION, "seed": seed, "files": []}
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt install espeak-ng)")
    words = _english_text()
    need = int(math.ceil(minutes))
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for index in range(len(manifest["files"]), need):
            rng = np.random.default_rng([seed, index])
            minute = np.zeros(MINUTE)
            pos = 0
            labels = []
            while pos < MINUTE:
                kind = rng.random()
                if kind < 0.6:
                    seg, label = _speech(rng, words, tmp)
                    seg = _set_level(seg, rng.uniform(-30, -10))
                elif kind < 0.78:
                    a, la = _speech(rng, words, tmp)
                    b, lb = _speech(rng, words, tmp)
                    m = max(a.size, b.size)
                    seg = np.zeros(m)
                    seg[: a.size] += _set_level(a, rng.uniform(-25, -10))
                    seg[: b.size] += _set_level(b, rng.uniform(-30, -15))
                    label = f"mix[{la} | {lb}]"
                else:
                    seg = _set_level(_music(rng, rng.uniform(3, 12)), rng.uniform(-28, -10))
                    label = "music"
                gap = int(rng.uniform(0.05, 0.6) * SAMPLE_RATE)
                seg = np.concatenate([seg, rng.normal(0, dbm0_to_rms(-65), gap)])
                take = min(seg.size, MINUTE - pos)
                minute[pos : pos + take] = seg[:take]
                pos += take
                labels.append(label)
            pcm = np.clip(np.round(minute), -32768, 32767).astype(np.int16)
            name = f"minute-{index:03d}.npy"
            np.save(directory / name, pcm)
            manifest["files"].append(
                {"file": name, "segments": labels, "dbm0": round(float(power_dbm0(pcm)), 1)}
            )
            manifest_path.write_text(json.dumps(manifest, indent=1))
    return directory


def load(minutes: float, directory: Path | None = None, seed: int = 2024) -> np.ndarray:
    """The first `minutes` of the corpus as int16 (built on demand)."""
    directory = build(directory, minutes, seed)
    manifest = json.loads((directory / "manifest.json").read_text())
    n = int(math.ceil(minutes))
    parts = [np.load(directory / f["file"]) for f in manifest["files"][:n]]
    return np.concatenate(parts)[: int(minutes * MINUTE)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args(argv)
    d = build(args.dir, args.minutes, args.seed)
    manifest = json.loads((d / "manifest.json").read_text())
    segs = [s for f in manifest["files"] for s in f["segments"]]
    print(
        f"{d}: {len(manifest['files'])} minutes, {len(segs)} segments "
        f"({sum(s == 'music' for s in segs)} music, {sum(s.startswith('mix') for s in segs)} two-talker, "
        f"{sum(s.startswith('cmn') for s in segs)} Mandarin)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
