"""pytest-benchmark versions of bench_silence.py: ``python -m pytest bench/test_bench_silence.py --benchmark-enable``.

Each pair (ours, anchor) is one benchmark group; with the project's default ``--benchmark-disable`` the
functions still run once, so the equality checks hold as tests.
"""
from __future__ import annotations

import os
import sys

import librosa
import numpy as np
import pytest

import chadsp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_silence import audio, numpy_split  # noqa: E402

TOP_DB = 60


@pytest.fixture(scope="module")
def y():
    return audio(240)


@pytest.fixture(scope="module")
def expected(y):
    return librosa.effects.split(y, top_db=TOP_DB)


@pytest.mark.benchmark(group="split_by_silence, 4 min @16 kHz")
def test_split_by_silence(benchmark, y, expected):
    assert np.array_equal(benchmark(chadsp.split_by_silence, y, TOP_DB), expected)


@pytest.mark.benchmark(group="split_by_silence, 4 min @16 kHz")
def test_split_librosa(benchmark, y, expected):
    assert np.array_equal(benchmark(librosa.effects.split, y, top_db=TOP_DB), expected)


@pytest.mark.benchmark(group="split_by_silence, 4 min @16 kHz")
def test_split_numpy(benchmark, y, expected):
    assert np.array_equal(benchmark(numpy_split, y, TOP_DB), expected)


def librosa_rms_db(y):
    return librosa.amplitude_to_db(librosa.feature.rms(y=y)[0], ref=np.max, top_db=None)


@pytest.mark.benchmark(group="rms_db, 4 min @16 kHz")
def test_rms_db(benchmark, y):
    np.testing.assert_allclose(benchmark(chadsp.rms_db, y), librosa_rms_db(y), atol=1e-3, rtol=0)


@pytest.mark.benchmark(group="rms_db, 4 min @16 kHz")
def test_rms_db_librosa(benchmark, y):
    np.testing.assert_allclose(benchmark(librosa_rms_db, y), chadsp.rms_db(y), atol=1e-3, rtol=0)
