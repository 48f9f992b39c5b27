"""pytest-benchmark cases of chadsp.dtw (run with ``--benchmark-enable``; by default each runs once, as a test).

    PYTHONPATH=. python -m pytest bench/test_bench_dtw.py --benchmark-enable
"""
from __future__ import annotations

import numpy as np
import pytest

import chadsp

try:
    from bench.bench_dtw import BAND, dtaidistance_rerank, make_case
except ImportError:  # bench/ itself on sys.path
    from bench_dtw import BAND, dtaidistance_rerank, make_case


@pytest.fixture(scope="module")
def case_1d():
    return make_case(500, 1)


@pytest.fixture(scope="module")
def case_128():
    return make_case(100, 128, seed=1, normalise=True)


def test_dtw_rerank_1d(benchmark, case_1d):
    q, data, offsets = case_1d
    out = benchmark(chadsp.dtw_rerank, q, (data, offsets), band=BAND)
    np.testing.assert_allclose(out, dtaidistance_rerank(q, data, offsets, BAND, ndim=False)(), rtol=1e-4)


def test_dtaidistance_rerank_1d(benchmark, case_1d):
    q, data, offsets = case_1d
    out = benchmark(dtaidistance_rerank(q, data, offsets, BAND, ndim=False))
    assert out.shape == (offsets.size - 1,)


def test_dtw_rerank_128_cosine(benchmark, case_128):
    q, data, offsets = case_128
    out = benchmark(chadsp.dtw_rerank, q, (data, offsets), band=BAND, metric="cosine")
    assert out.shape == (offsets.size - 1,) and np.isfinite(out).all()


def test_subsequence_dtw_1d(benchmark):
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.standard_normal(8000)).astype(np.float32)
    cost, start, end = benchmark(chadsp.subsequence_dtw, t[3000:3250], t)
    assert (cost, start, end) == (0.0, 3000, 3250)
