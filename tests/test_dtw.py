"""chadsp.dtw: banded_dtw, dtw_rerank, subsequence_dtw against the numpy references and dtaidistance."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st

import chadsp
import reference as ref  # tests/reference.py (pytest puts tests/ on sys.path)

pytestmark = [pytest.mark.asan, pytest.mark.usefixtures("chadsp_backend")]   # C and numba

METRICS = ["euclidean", "cosine"]


def _seq(rng, n, d, metric, layout="c32"):
    """n frames of dimension d (1: a 1-D array); cosine rows L2-normalised; in the given memory layout."""
    a = rng.standard_normal((n, d))
    if metric == "cosine":
        a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    if layout == "c32":
        a = a.astype(np.float32)
    elif layout == "f64":
        pass  # float64, converted by chadsp
    elif layout == "strided":  # non-contiguous float32 view
        big = np.zeros((n, 2 * d), dtype=np.float32)
        big[:, ::2] = a
        a = big[:, ::2]
    return a[:, 0] if d == 1 and layout != "strided" else a


def _close(got, want, scale=1.0):
    assert np.isfinite(got)
    assert abs(got - want) <= 2e-5 * max(abs(want), 1.0) * scale, (got, want)


sizes = st.integers(1, 22)
bands = st.one_of(st.none(), st.integers(0, 3), st.integers(20, 60))  # 20..60: wider than both inputs
dims = st.sampled_from([1, 2, 128])
layouts = st.sampled_from(["c32", "f64", "strided"])


@given(n=sizes, m=sizes, d=dims, band=bands, metric=st.sampled_from(METRICS), layout=layouts,
       seed=st.integers(0, 2**32 - 1))
def test_banded_dtw_matches_reference(n, m, d, band, metric, layout, seed):
    rng = np.random.default_rng(seed)
    x, y = _seq(rng, n, d, metric, layout), _seq(rng, m, d, metric, layout)
    want = ref.banded_dtw(np.asarray(x, np.float32), np.asarray(y, np.float32), band, metric)
    got = chadsp.banded_dtw(x, y, band=band, metric=metric)
    _close(got, want, scale=max(1.0, np.sqrt(d)))
    assert got == chadsp.dtw_rerank(x, [y], band=band, metric=metric)[0]   # one code path, same value


def test_banded_dtw_special_cases():
    x = np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32)
    y = np.array([1.0, 1.0, 5.0, 3.0], dtype=np.float32)
    assert chadsp.banded_dtw(x, y, band=0) == pytest.approx(np.linalg.norm(x - y), rel=1e-6)  # band 0: Euclidean
    assert chadsp.banded_dtw(x, x) == 0.0
    assert chadsp.banded_dtw([2.0], [5.0]) == pytest.approx(3.0)                   # length 1
    assert chadsp.banded_dtw([1.0], [1.0, 2.0, 4.0]) == pytest.approx(np.sqrt(0 + 1 + 9))
    # a warped copy costs nothing with a band wide enough for the warp, and something with band 0
    z = np.repeat(x, [1, 3, 1, 1])
    assert chadsp.banded_dtw(x, z, band=0) == 0.0     # the length difference widens the band by 2
    a = np.array([0, 1, 2, 3, 3, 3, 2, 1], dtype=np.float32)   # same length, b lingers on 1, a on 3:
    b = np.array([0, 1, 1, 1, 2, 3, 2, 1], dtype=np.float32)   # the warp reaches |i - j| = 2
    assert chadsp.banded_dtw(a, b, band=1) > 0.0
    assert chadsp.banded_dtw(a, b, band=2) == 0.0
    # cosine: path sum of 1 - dot, no root
    e = np.eye(3, dtype=np.float32)
    assert chadsp.banded_dtw(e, e, metric="cosine") == pytest.approx(0.0, abs=1e-6)
    assert chadsp.banded_dtw(e[:1], e[1:2], metric="cosine") == pytest.approx(1.0)


@given(n=st.integers(1, 30), m=st.integers(1, 30), band=st.one_of(st.none(), st.integers(0, 40)),
       seed=st.integers(0, 2**32 - 1))
def test_banded_dtw_equals_dtaidistance(n, m, band, seed):
    from dtaidistance import dtw, dtw_ndim
    rng = np.random.default_rng(seed)
    window = None if band is None else band + 1   # dtaidistance: |i - j| < window (+ the length difference)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(m).astype(np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    got = chadsp.banded_dtw(x, y, band=band)
    _close(got, dtw.distance(x64, y64, window=window))                              # Python path (use_c=False)
    _close(got, dtw.distance(x64, y64, window=window, use_c=True, use_pruning=True))  # its C path, pruned
    xd, yd = rng.standard_normal((n, 5)).astype(np.float32), rng.standard_normal((m, 5)).astype(np.float32)
    got = chadsp.banded_dtw(xd, yd, band=band)
    _close(got, dtw_ndim.distance(xd.astype(np.float64), yd.astype(np.float64), window=window))
    _close(got, dtw_ndim.distance_fast(xd.astype(np.float64), yd.astype(np.float64), window=window))


@given(n=st.integers(1, 20), lens=st.lists(st.integers(0, 30), min_size=0, max_size=40), d=dims, band=bands,
       metric=st.sampled_from(METRICS), seed=st.integers(0, 2**32 - 1))
def test_dtw_rerank_matches_banded_dtw(n, lens, d, band, metric, seed):
    rng = np.random.default_rng(seed)
    q = _seq(rng, n, d, metric)
    cands = [_seq(rng, t, d, metric) for t in lens]
    got = chadsp.dtw_rerank(q, cands, band=band, metric=metric)
    assert got.dtype == np.float32 and got.shape == (len(lens),)
    for c, g in zip(cands, got):
        if len(c) == 0:
            assert g == np.inf                                  # empty candidate: no alignment
        else:
            assert g == chadsp.banded_dtw(q, c, band=band, metric=metric)   # bit for bit, lanes or not
    if lens:
        data = np.concatenate([np.asarray(c, np.float32).reshape(len(c), d) for c in cands])
        offsets = np.r_[0, np.cumsum(lens)]
        np.testing.assert_array_equal(chadsp.dtw_rerank(q, (data, offsets), band=band, metric=metric, threads=1), got)


def test_dtw_rerank_many_against_reference():
    rng = np.random.default_rng(7)
    q = rng.standard_normal(12).astype(np.float32)
    cands = [rng.standard_normal(t).astype(np.float32) for t in rng.integers(1, 40, 70)]
    got = chadsp.dtw_rerank(q, cands, band=3, threads=2)
    want = [ref.banded_dtw(q, c, 3) for c in cands]
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5)
    np.testing.assert_array_equal(got, chadsp.dtw_rerank(q, cands, band=3, threads=1))
    assert chadsp.dtw_rerank(q, []).shape == (0,)


def test_dtw_rerank_packed_in_place_bad_values_are_refused():
    # the packed float32 form is used in place (no copy), and still checked before the kernel runs
    offsets = np.array([0, 2, 4], dtype=np.int64)
    for bad in (np.nan, np.inf, -np.inf):
        data = np.array([[1.0], [bad], [3.0], [2.0]], dtype=np.float32)
        with pytest.raises(ValueError, match="candidates data must be finite"):
            chadsp.dtw_rerank(np.ones(2, np.float32), (data, offsets))
    data = np.array([[1.0], [1e30], [3.0], [2.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="overflow"):
        chadsp.dtw_rerank(np.ones(2, np.float32), (data, offsets))

def test_defaults_do_not_drift():
    p_b = inspect.signature(chadsp.banded_dtw).parameters
    for f in (chadsp.dtw_rerank, chadsp.subsequence_dtw):
        p = inspect.signature(f).parameters
        for name in ("band", "metric"):
            assert p[name].default == p_b[name].default, (f.__name__, name)
    rng = np.random.default_rng(3)
    q, c = rng.standard_normal(30), rng.standard_normal(45)
    assert chadsp.dtw_rerank(q, [c])[0] == chadsp.banded_dtw(q, c)


@given(n=st.integers(1, 8), m=st.integers(1, 24), d=st.sampled_from([1, 3]), metric=st.sampled_from(METRICS),
       seed=st.integers(0, 2**32 - 1))
def test_subsequence_dtw_free_matches_reference_and_brute_force(n, m, d, metric, seed):
    rng = np.random.default_rng(seed)
    q, t = _seq(rng, n, d, metric), _seq(rng, m, d, metric)
    cost, start, end = chadsp.subsequence_dtw(q, t, metric=metric)
    want = ref.subsequence_dtw(q.astype(np.float32), t.astype(np.float32), None, metric)
    _close(cost, want[0])
    brute = min(ref.banded_dtw(q, t[s:e], None, metric) for s in range(m) for e in range(s + 1, m + 1))
    _close(cost, brute)
    assert 0 <= start < end <= m
    _close(chadsp.banded_dtw(q, t[start:end], metric=metric), cost)   # the reported segment has that cost


@given(n=st.integers(1, 8), extra=st.integers(-3, 16), band=st.integers(0, 5), d=st.sampled_from([1, 128]),
       metric=st.sampled_from(METRICS), seed=st.integers(0, 2**32 - 1))
def test_subsequence_dtw_banded_matches_reference(n, extra, band, d, metric, seed):
    m = max(1, n + extra, n - band)
    rng = np.random.default_rng(seed)
    q, t = _seq(rng, n, d, metric, "f64"), _seq(rng, m, d, metric, "f64")
    cost, start, end = chadsp.subsequence_dtw(q, t, band=band, metric=metric)
    want = ref.subsequence_dtw(q.astype(np.float32), t.astype(np.float32), band, metric)
    _close(cost, want[0], scale=max(1.0, np.sqrt(d)))
    assert 0 <= start < end <= m and abs((end - 1 - start) - (n - 1)) <= band


def test_subsequence_dtw_planted_and_wide_band():
    t = np.sin(np.linspace(0, 20, 400)).astype(np.float32)
    assert chadsp.subsequence_dtw(t[100:160], t) == (0.0, 100, 160)
    assert chadsp.subsequence_dtw(t[100:160], t, band=0) == (0.0, 100, 160)
    warped = np.repeat(t[200:240], 2)                        # half speed: needs a wide band
    c_free = chadsp.subsequence_dtw(warped, t)
    assert c_free[0] == 0.0 and (c_free[1], c_free[2]) == (200, 240)
    assert chadsp.subsequence_dtw(warped, t, band=5)[0] > 0.0
    c_wide = chadsp.subsequence_dtw(warped, t, band=1000)
    assert c_wide[0] == pytest.approx(c_free[0], abs=1e-6)
    # a query longer than the target is allowed without a band (vertical steps absorb it)
    cost, start, end = chadsp.subsequence_dtw(t[:50], t[:20])
    assert (start, end) == (0, 20) and cost == pytest.approx(chadsp.banded_dtw(t[:50], t[:20]), rel=1e-6)


def test_subsequence_dtw_threads_agree():
    rng = np.random.default_rng(11)
    q, t = rng.standard_normal((20, 4)), rng.standard_normal((300, 4))
    assert chadsp.subsequence_dtw(q, t, band=4, threads=1) == chadsp.subsequence_dtw(q, t, band=4, threads=2)


# ----------------------------------------------------------------------------------------------------
# bad input: a clear error before any C runs
# ----------------------------------------------------------------------------------------------------
GOOD = np.arange(5, dtype=np.float32)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: chadsp.banded_dtw([], GOOD), ValueError, "x must have at least one frame"),
    (lambda: chadsp.banded_dtw(GOOD, np.zeros((0, 1))), ValueError, "y must have at least one frame"),
    (lambda: chadsp.banded_dtw(GOOD, GOOD, band=-1), ValueError, "band must be >= 0"),
    (lambda: chadsp.banded_dtw(GOOD, GOOD, band=1.5), TypeError, "band must be an integer"),
    (lambda: chadsp.banded_dtw(GOOD, GOOD, band=True), TypeError, "band must be an integer"),
    (lambda: chadsp.banded_dtw(GOOD, GOOD, metric="manhattan"), ValueError, "metric must be one of"),
    (lambda: chadsp.banded_dtw(GOOD, GOOD, metric=None), TypeError, "metric must be a str"),
    (lambda: chadsp.banded_dtw([1.0, np.nan], GOOD), ValueError, "x must be finite"),
    (lambda: chadsp.banded_dtw(GOOD, [1.0, np.inf]), ValueError, "y must be finite"),
    (lambda: chadsp.banded_dtw(np.zeros((2, 2, 2)), GOOD), ValueError, "x must be 1-D"),
    (lambda: chadsp.banded_dtw(np.zeros((3, 2)), np.zeros((3, 4))), ValueError, "same feature dimension"),
    (lambda: chadsp.banded_dtw(GOOD.astype(complex), GOOD), TypeError, "complex"),
    (lambda: chadsp.banded_dtw(GOOD > 1, GOOD), TypeError, "bool"),
    (lambda: chadsp.banded_dtw(np.array([object()]), GOOD), TypeError, "object"),
    (lambda: chadsp.banded_dtw("abc", GOOD), TypeError, "x must be a numpy array"),
    (lambda: chadsp.banded_dtw([1e20], GOOD), ValueError, "overflow"),
    (lambda: chadsp.dtw_rerank([], [GOOD]), ValueError, "query must have at least one frame"),
    (lambda: chadsp.dtw_rerank(GOOD, [GOOD], threads=-1), ValueError, "threads must be >= 0"),
    (lambda: chadsp.dtw_rerank(GOOD, [GOOD], threads=2.0), TypeError, "threads must be an integer"),
    (lambda: chadsp.dtw_rerank(GOOD, [GOOD], band=-2), ValueError, "band must be >= 0"),
    (lambda: chadsp.dtw_rerank(GOOD, [GOOD, [np.nan]]), ValueError, r"candidates\[1\] must be finite"),
    (lambda: chadsp.dtw_rerank(GOOD, [np.zeros((3, 2))]), ValueError, "feature dimension 2"),
    (lambda: chadsp.dtw_rerank(GOOD, [GOOD * 1e20]), ValueError, "overflow"),
    (lambda: chadsp.dtw_rerank(GOOD, np.zeros((4, 1))), TypeError, "a single array"),
    (lambda: chadsp.dtw_rerank(GOOD, 5), TypeError, "list of"),
    (lambda: chadsp.dtw_rerank(GOOD, (GOOD.reshape(-1, 1), np.array([0, 3, 2]))), ValueError, "non-decreasing"),
    (lambda: chadsp.dtw_rerank(GOOD, (GOOD.reshape(-1, 1), np.array([0, 9]))), ValueError, "within"),
    (lambda: chadsp.dtw_rerank(GOOD, (GOOD.reshape(-1, 1), np.array([0.0, 2.0]))), TypeError, "offsets must be integers"),
    (lambda: chadsp.dtw_rerank(GOOD, (GOOD.reshape(-1, 1), np.array([[0, 2]]))), ValueError, "offsets must be 1-D"),
    (lambda: chadsp.subsequence_dtw([], GOOD), ValueError, "query must have at least one frame"),
    (lambda: chadsp.subsequence_dtw(GOOD, []), ValueError, "target must have at least one frame"),
    (lambda: chadsp.subsequence_dtw(GOOD, GOOD, band=-1), ValueError, "band must be >= 0"),
    (lambda: chadsp.subsequence_dtw(GOOD, GOOD[:2], band=1), ValueError, "fewer than len"),
    (lambda: chadsp.subsequence_dtw(GOOD, GOOD, metric="dot"), ValueError, "metric must be one of"),
    (lambda: chadsp.subsequence_dtw(np.zeros((3, 2)), GOOD), ValueError, "same feature dimension"),
    (lambda: chadsp.subsequence_dtw(GOOD, [np.nan, 1.0]), ValueError, "target must be finite"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
