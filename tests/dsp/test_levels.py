"""dBm0 helpers: 0 dBm0 is a sine of peak 22,785 (G.711)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp import levels


def test_reference_points():
    assert levels.dbm0_to_amplitude(0.0) == pytest.approx(22785.0)
    assert levels.dbm0_to_amplitude(3.14) == pytest.approx(32767, rel=2e-3)  # A-law overload
    assert levels.dbm0_to_rms(0.0) == pytest.approx(22785.0 / math.sqrt(2))
    assert levels.dbm0_to_mean_square(-10.0) == pytest.approx(22785.0**2 / 2 / 10)
    assert levels.amplitude_to_dbm0(22785.0) == pytest.approx(0.0)
    assert levels.amplitude_to_dbm0(2278.5) == pytest.approx(-20.0)
    assert levels.rms_to_dbm0(levels.dbm0_to_rms(-37.5)) == pytest.approx(-37.5)
    assert levels.mean_square_to_dbm0(levels.dbm0_to_mean_square(-3.0)) == pytest.approx(-3.0)
    assert levels.amplitude_to_dbm0(0.0) == levels.SILENCE_DBM0
    assert levels.ms_to_samples(10) == 80 and levels.ms_to_samples(0.125) == 1


def test_vectorised_forms():
    d = np.array([-40.0, -25.0, -10.0])
    amp = levels.dbm0_to_amplitude(d)
    assert amp.shape == (3,)
    np.testing.assert_allclose(levels.amplitude_to_dbm0(amp), d)
    assert isinstance(levels.dbm0_to_amplitude(-10.0), float)


@pytest.mark.parametrize("dbm0", [0.0, -13.0, -30.0, -45.0])
def test_power_of_sine_per_channel(dbm0):
    n = np.arange(8000)
    amp = levels.dbm0_to_amplitude(dbm0)
    x = np.stack(
        [
            amp * np.sin(2 * np.pi * 697 * n / 8000),
            amp * np.sin(2 * np.pi * 1633 * n / 8000 + 1),
            np.zeros(8000),
        ]
    )
    p = levels.power_dbm0(x)
    assert p.shape == (3,)
    assert p[0] == pytest.approx(dbm0, abs=0.01)
    assert p[1] == pytest.approx(dbm0, abs=0.01)
    assert p[2] == levels.SILENCE_DBM0
    # int16 input is measured the same way
    assert levels.power_dbm0(np.round(x[:2]).astype(np.int16))[0] == pytest.approx(
        dbm0, abs=0.05 if dbm0 > -40 else 0.2
    )


def test_power_of_empty_block_is_an_error():
    with pytest.raises(ValueError):
        levels.power_dbm0(np.zeros((2, 0)))
