"""pytest-benchmark of chadsp's correlation functions (small sizes; bench_correlation.py has the full cases).

Run: ``PYTHONPATH=$PWD python -m pytest bench/test_bench_correlation.py --benchmark-only``.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import chadsp
from bench_correlation import numpy_rerank, packed_candidates

pytest.importorskip("pytest_benchmark")


@pytest.fixture(scope="module")
def packed():
    return packed_candidates(300)


@pytest.fixture(scope="module")
def seqs():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((2000, 128), dtype=np.float32)
    return t[700:740].copy(), t


@pytest.mark.parametrize("tq", [10, 29, 64])
def test_rerank_packed(benchmark, packed, tq):
    data, offsets = packed
    q = data[offsets[5] + 50: offsets[5] + 50 + tq].copy()
    scores, lags = benchmark(chadsp.rerank, q, (data, offsets))
    assert int(np.argmax(scores)) == 5 and lags[5] == 50


def test_rerank_packed_numpy_anchor(benchmark, packed):
    data, offsets = packed
    q = data[offsets[5] + 50: offsets[5] + 79].copy()
    scores, _ = benchmark(numpy_rerank, q, data, offsets)
    assert int(np.argmax(scores)) == 5


def test_xcorr_128d(benchmark, seqs):
    q, t = seqs
    c = benchmark(chadsp.xcorr, q, t)
    assert int(np.argmax(c)) == 700


def test_xcorr_128d_fftconvolve_anchor(benchmark, seqs):
    q, t = seqs
    c = benchmark(lambda: scipy.signal.fftconvolve(t, q[::-1], mode="valid", axes=0).sum(axis=1))
    assert c.shape == (1961,)


def test_xcorr_1d(benchmark):
    rng = np.random.default_rng(1)
    t = rng.standard_normal(16000 * 20).astype(np.float32)
    q = t[80000:128000].copy()
    c = benchmark(chadsp.xcorr, q, t)
    assert int(np.argmax(c)) == 80000


def test_find_peaks(benchmark):
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.standard_normal(200_000))
    p = benchmark(chadsp.find_peaks, x, None, 100)
    np.testing.assert_array_equal(p, scipy.signal.find_peaks(x, distance=100)[0])


def test_xcorr_match(benchmark, seqs):
    q, t = seqs
    m = benchmark(chadsp.xcorr_match, q, t)
    assert m["lag"][0] == 700 and m["relevant"][0]
