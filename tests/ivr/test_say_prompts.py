"""Saying numbers/dates from fragments; prompt library: admins' recordings replace generated prompts."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from firmware.ivr.say import fragments, say_date, say_number
from firmware.prompts import PromptLibrary, texts


def test_say_number_mandarin_and_english() -> None:
    assert say_number(0, "cmn") == ["digit_0"]
    assert say_number(15, "cmn") == ["n15"]
    assert say_number(1024, "cmn") == ["digit_1", "thousand", "digit_0", "n20", "digit_4"]
    assert say_number(10500, "cmn") == ["digit_1", "wan", "digit_0", "digit_5", "hundred"]
    assert say_number(123456, "cmn") == [
        "n12",
        "wan",
        "digit_3",
        "thousand",
        "digit_4",
        "hundred",
        "n50",
        "digit_6",
    ]
    assert say_number("1024.50", "en") == ["digit_1", "thousand", "n20", "digit_4", "point", "digit_5"]
    assert say_date("2026-11-23", "cmn") == [
        "digit_2", "digit_0", "digit_2", "digit_6", "year", "n11", "month", "n20", "digit_3", "day",
    ]  # fmt: skip
    assert fragments("queue_position", 3, "en") == ["you_are_number", "digit_3", "in_queue"]
    assert fragments("wait_time", 150, "cmn") == ["wait_about", "digit_2", "minutes"]
    assert fragments("digits", "12#", "en") == ["digit_1", "digit_2", "pound"]
    # every fragment the say functions can produce has a text to be rendered from
    known = set(texts())
    for n in (0, 7, 19, 99, 101, 1010, 20000, 123456789):
        for lang in ("cmn", "en"):
            assert set(say_number(n, lang)) <= known, (n, lang)
    assert set(say_date("2026-02-09", "en")) <= known


def test_admin_recording_replaces_generated(tmp_path: Path, prompt_dir: Path) -> None:
    custom = tmp_path / "custom" / "cmn"
    custom.mkdir(parents=True)
    t = np.arange(16000) / 16000
    stereo = (np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1) * 8000).astype(
        "<i2"
    )
    with wave.open(str(custom / "welcome.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(stereo.tobytes())
    lib = PromptLibrary([tmp_path / "custom", prompt_dir])
    pcm = lib.get("welcome", "cmn")
    assert pcm is not None and len(pcm) == 8000  # 1 s, resampled to 8 kHz, mono
    spec = np.abs(np.fft.rfft(pcm.astype(float)))
    assert abs(np.argmax(spec) * 8000 / len(pcm) - 440) < 2
    generated = lib.get("main_menu", "cmn")
    assert generated is not None and len(generated) > 8000  # espeak-ng rendering
    assert lib.get("no_such_prompt") is None
