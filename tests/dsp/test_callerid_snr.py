"""Caller ID decode rate against SNR, 1 dB steps from 20 dB down (slow: `./box test --all`).

White Gaussian noise over the whole 0-4 kHz band at SNR below the signal's power; 200 random messages per
step at each level. Criteria of issue 3: 100 % at >= 10 dB, >= 95 % at 8 dB, and never a wrong caller ID.
The same table with spandsp beside it: `python -m tools.bench.dsp_callerid --snr [--standard v23]`.
"""

from __future__ import annotations

import pytest

from tools.bench.dsp_callerid import decode_rate

pytestmark = pytest.mark.slow

TRIALS = 200


@pytest.mark.parametrize("fmt", ["mdmf", "sdmf"])
@pytest.mark.parametrize("level", [-14.0, -40.0])
@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_fsk_decode_rate_against_snr(standard: str, level: float, fmt: str) -> None:
    table = {}
    for snr in range(20, 5, -1):
        right, wrong = decode_rate(standard, snr, level, TRIALS, seed=1000 + snr, fmt=fmt)
        table[snr] = right / TRIALS
        assert wrong == 0, f"{wrong} wrong caller IDs at {snr} dB"
    print(f"{standard} {fmt} {level} dBm0: " + " ".join(f"{s}dB={100 * r:.1f}%" for s, r in table.items()))
    assert all(table[s] == 1.0 for s in range(10, 21)), table
    assert table[8] >= 0.95, table


@pytest.mark.parametrize("level", [-14.0, -30.0])
def test_dtmf_decode_rate_against_snr(level: float) -> None:
    # DTMF SNR is against the power of both tones while a digit sounds.
    for snr in range(20, 9, -2):
        right, wrong = decode_rate("dtmf", snr, level, 100, seed=2000 + snr)
        assert (right, wrong) == (100, 0), (snr, right, wrong)


@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_fsk_through_alaw_with_noise(standard: str) -> None:
    for level in (-14.0, -40.0):
        right, wrong = decode_rate(standard, 10.0, level, TRIALS, seed=7, codec="alaw")
        assert (right, wrong) == (TRIALS, 0)
