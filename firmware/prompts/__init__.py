"""Prompts: texts in the repo, rendered at build time with espeak-ng, stored as 8 kHz WAV, replaceable.

    callbox prompts build --out DIR [--lang cmn,en] [--only name,...]
        renders firmware/prompts/texts.yaml into DIR/<lang>/<name>.wav (plus DIR/moh.wav, generated music)

    lib = PromptLibrary([custom_dir, generated_dir], default_lang="cmn")
    lib.get("welcome", "en")  -> int16 samples (custom recordings win over generated ones)
    lib.buffer("welcome", "en", engine) -> engine Buffer (registered once)

Admins replace a prompt by putting their own recording (any rate, mono or stereo, 16-bit WAV) as
<custom>/<lang>/<name>.wav; it is resampled to 8 kHz on load.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.signal import resample_poly

TEXTS = Path(__file__).with_name("texts.yaml")
LANGS = ("cmn", "en")
VOICES = {"cmn": "cmn", "en": "en-us"}


def texts() -> dict[str, dict[str, str]]:
    return yaml.safe_load(TEXTS.read_text(encoding="utf-8"))["prompts"]


def read_wav(path: str | Path) -> np.ndarray:
    """Any 16-bit PCM WAV -> int16 mono at 8 kHz."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate, chans = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    if chans > 1:
        data = data.reshape(-1, chans).mean(axis=1)
    if rate != 8000:
        from math import gcd

        g = gcd(8000, rate)
        data = resample_poly(data, 8000 // g, rate // g)
    return np.clip(np.round(data), -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, pcm: np.ndarray, rate: int = 8000) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def speak(text: str, lang: str, speed: int = 150) -> np.ndarray:
    """espeak-ng -> int16 at 8 kHz, normalised to about -16 dBm0 RMS."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            ["espeak-ng", "-v", VOICES.get(lang, lang), "-s", str(speed), "-w", tmp.name, text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        pcm = read_wav(tmp.name).astype(np.float64)
    rms = np.sqrt(np.mean(pcm**2)) if len(pcm) else 0.0
    if rms > 0:
        pcm *= 2600.0 / rms
    return np.clip(np.round(pcm), -32768, 32767).astype(np.int16)


def music(seconds: float = 20.0) -> np.ndarray:
    """Music on hold: a soft arpeggio (generated, so the box ships no third-party audio)."""
    rate = 8000
    notes = [261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 293.66, 349.23, 440.0, 349.23, 293.66, 246.94]
    step = 0.4
    out = np.zeros(int(seconds * rate))
    t = np.arange(int(step * rate * 2)) / rate
    env = np.exp(-3.0 * t)
    for i in range(int(seconds / step)):
        f = notes[i % len(notes)]
        tone = (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)) * env
        a = int(i * step * rate)
        b = min(len(out), a + len(tone))
        out[a:b] += tone[: b - a]
    out *= 4000 / np.max(np.abs(out))
    return out.astype(np.int16)


def build(out: str | Path, langs: Sequence[str] = LANGS, only: Iterable[str] | None = None) -> list[Path]:
    """Render prompt texts to WAV; skips files that are newer than texts.yaml (idempotent)."""
    out = Path(out)
    wanted = set(only) if only else None
    written = []
    src_mtime = TEXTS.stat().st_mtime
    for name, by_lang in texts().items():
        if wanted is not None and name not in wanted:
            continue
        for lang in langs:
            text = by_lang.get(lang, "")
            if not text:
                continue
            path = out / lang / f"{name}.wav"
            if path.exists() and path.stat().st_mtime >= src_mtime:
                continue
            write_wav(path, speak(text, lang))
            written.append(path)
    moh = out / "moh.wav"
    if (wanted is None or "moh" in wanted) and not moh.exists():
        write_wav(moh, music())
        written.append(moh)
    return written


class PromptLibrary:
    """Prompt lookup over directories in priority order (custom recordings first, generated last)."""

    def __init__(self, dirs: Sequence[str | Path], default_lang: str = "cmn") -> None:
        self.dirs = [Path(d) for d in dirs]
        self.default_lang = default_lang
        self._cache: dict[tuple[str, str], np.ndarray | None] = {}
        self._buffers: dict[tuple[str, str], Any] = {}
        self.engine: Any = None

    def path(self, name: str, lang: str | None = None) -> Path | None:
        lang = lang or self.default_lang
        for d in self.dirs:
            for p in (d / lang / f"{name}.wav", d / f"{name}.wav"):
                if p.is_file():
                    return p
        return None

    def get(self, name: str, lang: str | None = None) -> np.ndarray | None:
        key = (name, lang or self.default_lang)
        if key not in self._cache:
            p = self.path(*key)
            try:
                self._cache[key] = read_wav(p) if p is not None else None
            except (OSError, ValueError, EOFError, wave.Error):
                self._cache[key] = None
        return self._cache[key]

    def seconds(self, name: str, lang: str | None = None) -> float | None:
        pcm = self.get(name, lang)
        return None if pcm is None else len(pcm) / 8000

    def buffer(self, name: str, lang: str | None = None, engine: Any = None) -> Any:
        eng = engine or self.engine
        key = (name, lang or self.default_lang)
        if key not in self._buffers:
            pcm = self.get(*key)
            if pcm is None or eng is None:
                return None
            self._buffers[key] = eng.add_buffer(f"prompt/{key[1]}/{name}", pcm)
        return self._buffers[key]

    def reload(self) -> None:
        """Forget cached audio (after an admin replaced a recording)."""
        self._cache.clear()
        self._buffers.clear()
