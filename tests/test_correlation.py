"""chadsp correlation: xcorr, find_peaks, xcorr_match, max_pearson, rerank vs tests/reference.py and scipy."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, strategies as st

import chadsp
import reference as ref

pytestmark = [pytest.mark.asan, pytest.mark.usefixtures("chadsp_backend")]   # C and numba

TOL = 1e-4


# ------------------------------------------------------------------ strategies
@st.composite
def seq(draw, t_min=0, t_max=40, d=None, const_block=True):
    """A (T, D) float32 array of small integers (blocks are either constant or well conditioned),
    sometimes with a constant run of rows."""
    t = draw(st.integers(t_min, t_max))
    d = draw(st.sampled_from([1, 2, 3, 16, 17, 33])) if d is None else d
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(t, d)).astype(np.float32)
    if const_block and t > 1 and draw(st.booleans()):
        a = draw(st.integers(0, t - 1))
        b = draw(st.integers(a + 1, t))
        x[a:b] = draw(st.sampled_from([0.0, 1.0, -2.5]))
    return x


@st.composite
def query_target(draw, allow_longer=False):
    d = draw(st.sampled_from([1, 2, 3, 16, 17, 33]))
    t = draw(seq(t_min=1, t_max=60, d=d))
    tq_max = 30 if allow_longer else min(len(t), 30)
    q = draw(seq(t_min=1, t_max=max(tq_max, 1), d=d))
    if draw(st.booleans()) and len(q) <= len(t):            # plant the query (plus noise-free copy)
        l0 = draw(st.integers(0, len(t) - len(q)))
        t[l0:l0 + len(q)] = q
    return q, t


def _lag_ok(curve: np.ndarray, lag: int, score: float) -> bool:
    return abs(curve[lag] - score) <= TOL and curve[lag] >= curve.max() - TOL


# ------------------------------------------------------------------ xcorr
@given(query_target(), st.sampled_from(["auto", "direct", "fft"]))
def test_xcorr_matches_reference(qt, method):
    q, t = qt
    got = chadsp.xcorr(q, t, method=method)
    want = ref.xcorr(q, t)
    assert got.dtype == np.float32 and got.shape == (len(t) - len(q) + 1,)
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


@pytest.mark.parametrize("tq,tt,d", [(40, 300, 128), (29, 700, 128), (5, 2500, 16), (3, 5000, 1),
                                     (64, 2400, 8), (1, 50, 128), (200, 4200, 1)])
def test_xcorr_fft_direct_and_max_pearson_agree(tq, tt, d):
    rng = np.random.default_rng(tq * 1000 + tt)
    t = rng.standard_normal((tt, d)).astype(np.float32)
    q = t[tt // 3: tt // 3 + tq] + 0.5 * rng.standard_normal((tq, d)).astype(np.float32)
    direct = chadsp.xcorr(q, t, method="direct")
    fft = chadsp.xcorr(q, t, method="fft")
    np.testing.assert_allclose(fft, direct, atol=TOL, rtol=0)
    if tt * d <= 40000:
        np.testing.assert_allclose(direct, ref.xcorr(q, t), atol=TOL, rtol=0)
    score, lag = chadsp.max_pearson(q, t)
    assert score == pytest.approx(float(direct.max()), abs=1e-6)
    assert lag == int(np.argmax(direct))
    if tq * d >= 40:                  # long enough for the planted copy to be the clear maximum
        assert lag == tt // 3


def test_xcorr_d128_reference_and_segments():
    """D = 128 (the fingerprint case) against the float64 reference, on a target long enough to span
    several C segments (2240 lags each) and the final partial block."""
    rng = np.random.default_rng(1)
    t = rng.standard_normal((2400, 128)).astype(np.float32)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    q = rng.standard_normal((29, 128)).astype(np.float32)
    t[2360:2389] = q
    t[100:160] = 0.25                                   # constant rows: zero-variance blocks score 0
    got = chadsp.xcorr(q, t, method="direct")
    want = ref.xcorr(q, t)
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    assert np.all(got[100:132] == 0.0)
    assert int(np.argmax(got)) == 2360


def test_xcorr_edge_cases():
    x = np.arange(10, dtype=np.float32)
    assert chadsp.xcorr(x, x).tolist() == [1.0]                  # query as long as target: one lag
    assert np.all(chadsp.xcorr(x[:1], x) == 0.0)                 # one value: zero variance
    assert np.all(chadsp.xcorr(np.ones(4), x) == 0.0)            # constant query
    c = chadsp.xcorr(x[2:5], np.r_[x, np.full(5, 3.0)])
    assert np.all(c[10:] == 0.0) and np.allclose(c[:8], 1.0)
    # non-contiguous and float64 inputs are converted
    rng = np.random.default_rng(2)
    big = rng.standard_normal((50, 20))
    q, t = big[10:20, ::2], big[:, ::2]
    assert not t.flags.c_contiguous
    np.testing.assert_allclose(chadsp.xcorr(q, t), ref.xcorr(q, t), atol=TOL)
    np.testing.assert_allclose(chadsp.xcorr(np.asfortranarray(q), t, method="fft"), ref.xcorr(q, t), atol=TOL)
    # integer input
    np.testing.assert_allclose(chadsp.xcorr([1, 2, 1], [0, 1, 2, 1, 0, 5]), ref.xcorr([1, 2, 1], [0, 1, 2, 1, 0, 5]),
                               atol=TOL)


def test_xcorr_auto_picks_by_size():
    from chadsp.xcorr import _choose_method
    assert _choose_method(40, 2000, 128) == "direct"
    assert _choose_method(160, 8000, 128) == "direct"
    assert _choose_method(48000, 320000, 1) == "fft"
    assert _choose_method(5, 100, 1) == "direct"


# ------------------------------------------------------------------ find_peaks
@st.composite
def curves(draw):
    n = draw(st.integers(0, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = draw(st.integers(2, 6))                  # few levels: plateaus and equal heights
    return rng.integers(0, levels, size=n).astype(np.float64) / levels


@given(curves(), st.one_of(st.none(), st.floats(0, 1)), st.one_of(st.none(), st.floats(1, 12)))
def test_find_peaks_equals_scipy(x, height, distance):
    got = chadsp.find_peaks(x, height=height, distance=distance)
    want = scipy.signal.find_peaks(x, height=height, distance=distance)[0]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, ref.find_peaks(x, height, distance))


def test_find_peaks_long_random_curve_and_float32():
    rng = np.random.default_rng(3)
    x = np.convolve(rng.standard_normal(20000), np.ones(9) / 9, mode="same").astype(np.float32)
    for h, dist in [(None, None), (0.1, None), (0.0, 50), (None, 7.5)]:
        np.testing.assert_array_equal(chadsp.find_peaks(x, height=h, distance=dist),
                                      scipy.signal.find_peaks(x, height=h, distance=dist)[0])


def test_find_peaks_edges_and_plateaus():
    assert chadsp.find_peaks(np.array([])).size == 0
    assert chadsp.find_peaks(np.array([1.0])).size == 0
    assert chadsp.find_peaks(np.array([3.0, 1.0, 3.0])).size == 0          # edges are never peaks
    assert chadsp.find_peaks(np.array([0, 2, 2, 2, 2, 0.0])).tolist() == [2]   # middle, rounded down
    assert chadsp.find_peaks(np.array([0, 2, 2, 3.0])).size == 0            # a shoulder, not a peak


# ------------------------------------------------------------------ xcorr_match
@given(query_target(), st.floats(-1, 1), st.floats(-1, 1), st.one_of(st.none(), st.integers(1, 20)))
def test_xcorr_match_matches_reference(qt, a, b, distance):
    q, t = qt
    irrel, rel = min(a, b), max(a, b)
    m = chadsp.xcorr_match(q, t, rel=rel, irrel=irrel, distance=distance)
    assert m.dtype.names == ("lag", "score", "relevant")
    curve = chadsp.xcorr(q, t)
    want = ref.xcorr_match(q, t, rel=rel, irrel=irrel, distance=distance, curve=curve)
    assert [(int(r["lag"]), float(r["score"]), bool(r["relevant"])) for r in m] == want
    np.testing.assert_allclose(m["score"], ref.xcorr(q, t)[m["lag"]], atol=TOL)


def test_xcorr_match_finds_planted_fragments():
    rng = np.random.default_rng(4)
    t = rng.standard_normal((600, 128)).astype(np.float32)
    frag = t[0:40].copy()                         # at lag 0: found although scipy never reports edges
    t[300:340] = frag
    t[560:600] = frag + 0.8 * rng.standard_normal((40, 128)).astype(np.float32)   # at the last lag
    m = chadsp.xcorr_match(frag, t, rel=0.9, irrel=0.3)
    assert m["lag"].tolist()[:2] == [0, 300] and m["relevant"].tolist()[:2] == [True, True]
    assert 560 in m["lag"].tolist() and not m["relevant"][m["lag"] == 560][0]
    assert np.all(np.diff(m["score"]) <= 0)
    assert np.all(np.diff(np.sort(m["lag"])) >= 40)               # distance defaults to the fragment length
    whole = chadsp.xcorr_match(t, t)                # as long as the target: the single lag
    assert whole["lag"].tolist() == [0] and whole["score"][0] == pytest.approx(1.0, abs=TOL)


# ------------------------------------------------------------------ max_pearson / rerank
@given(query_target(allow_longer=True))
def test_max_pearson_matches_reference(qt):
    q, t = qt
    score, lag = chadsp.max_pearson(q, t)
    want_score, _ = ref.max_pearson(q, t)
    assert isinstance(score, float) and isinstance(lag, int)
    assert score == pytest.approx(want_score, abs=TOL)
    curve = ref.xcorr(q, t) if len(q) <= len(t) else ref.xcorr(t, q)[::-1]
    lag_index = lag if len(q) <= len(t) else len(curve) - 1 + lag
    assert _lag_ok(curve, lag_index, score)
    if len(q) <= len(t):
        assert score == pytest.approx(float(chadsp.xcorr(q, t, method="direct").max()), abs=1e-6)


@st.composite
def rerank_case(draw):
    d = draw(st.sampled_from([1, 3, 16, 33]))
    q = draw(seq(t_min=1, t_max=12, d=d))
    cands = draw(st.lists(seq(t_min=0, t_max=40, d=d), min_size=0, max_size=8))
    return q, cands


@given(rerank_case(), st.sampled_from([None, 1, 2]))
def test_rerank_matches_reference_and_max_pearson(case, threads):
    q, cands = case
    scores, lags = chadsp.rerank(q, cands, threads=threads)
    assert scores.dtype == np.float32 and lags.dtype == np.int64 and scores.shape == (len(cands),)
    want, _ = ref.rerank(q, cands)
    np.testing.assert_allclose(scores, want, atol=TOL, rtol=0)
    for k, c in enumerate(cands):     # the same rules (swap, empty, ties) as max_pearson, exactly
        assert (float(scores[k]), int(lags[k])) == chadsp.max_pearson(q, c)
    # the packed form, in place and with gaps/reuse in the offsets
    data = np.concatenate(cands + [np.zeros((0, q.shape[1]), np.float32)])
    offsets = np.r_[0, np.cumsum([len(c) for c in cands])].astype(np.int64)
    s2, l2 = chadsp.rerank(q, (data, offsets), threads=threads)
    np.testing.assert_array_equal(s2, scores)
    np.testing.assert_array_equal(l2, lags)


def test_max_pearson_rerank_conventions():
    """The documented rules, pinned: swap with lag <= 0, empty -> (0, 0), ties -> lag nearest 0."""
    rng = np.random.default_rng(5)
    t = rng.standard_normal((30, 4)).astype(np.float32)
    assert chadsp.max_pearson(t, t[7:12]) == pytest.approx((1.0, -7), abs=1e-6)
    assert chadsp.max_pearson(t[7:12], t) == pytest.approx((1.0, 7), abs=1e-6)
    assert chadsp.max_pearson(t, np.zeros((0, 4))) == (0.0, 0)
    assert chadsp.max_pearson(t, np.ones((40, 4))) == (0.0, 0)          # constant target: all ties at 0
    assert chadsp.max_pearson(np.ones((3, 4)), t) == (0.0, 0)           # constant query
    assert chadsp.max_pearson(t[:1, :1], t[:, :1]) == (0.0, 0)          # one value: zero variance
    rep = np.tile(t[:5], (3, 1))                                         # exact repeats: first one wins
    assert chadsp.max_pearson(t[:5], rep)[1] == 0
    assert chadsp.max_pearson(rep, t[:5])[1] == 0
    scores, lags = chadsp.rerank(t[7:12], [t, t[8:10], np.zeros((0, 4), np.float32), np.ones((9, 4))])
    assert lags.tolist() == [7, -1, 0, 0]
    assert scores.tolist()[2:] == [0.0, 0.0]
    e_scores, e_lags = chadsp.rerank(t, [])
    assert e_scores.shape == e_lags.shape == (0,)


def test_rerank_d128_packed_against_float64():
    """The fingerprint case: Tq in {10, 29, 64} against 40 candidates of 0..300 frames, L2-normalised rows."""
    rng = np.random.default_rng(6)
    lens = rng.integers(0, 300, size=40)
    data = rng.standard_normal((int(lens.sum()), 128)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    offsets = np.r_[0, np.cumsum(lens)].astype(np.int64)
    cands = [data[offsets[k]:offsets[k + 1]] for k in range(len(lens))]
    for tq in (10, 29, 64):
        k = int(np.argmax(lens))
        q = cands[k][50:50 + tq] + 0.3 * rng.standard_normal((tq, 128)).astype(np.float32)
        scores, lags = chadsp.rerank(q, (data, offsets), threads=2)
        want, _ = ref.rerank(q, cands)
        np.testing.assert_allclose(scores, want, atol=TOL, rtol=0)
        assert int(np.argmax(scores)) == k and lags[k] == 50
        s1, l1 = chadsp.rerank(q, (data, offsets), threads=1)
        np.testing.assert_array_equal(s1, scores)
        np.testing.assert_array_equal(l1, lags)


def test_rerank_packed_float64_noncontiguous_and_concurrent():
    rng = np.random.default_rng(7)
    data = rng.standard_normal((200, 12))
    offsets = np.array([0, 50, 50, 120, 200])
    q = data[60:70]
    want, _ = ref.rerank(q, [data[a:b] for a, b in zip(offsets[:-1], offsets[1:])])
    s, lags = chadsp.rerank(q, (data, offsets))
    np.testing.assert_allclose(s, want, atol=TOL)
    s2, _ = chadsp.rerank(q[:, ::1].T.copy().T, (np.asfortranarray(data), offsets.astype(np.int32)))
    np.testing.assert_array_equal(s2, s)
    results = []                       # the GIL is released: concurrent calls from Python threads
    th = [threading.Thread(target=lambda: results.append(chadsp.rerank(q, (data, offsets))[0])) for _ in range(4)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    assert len(results) == 4 and all(np.array_equal(r, s) for r in results)


# ------------------------------------------------------------------ errors
GOOD = np.ones((5, 3), np.float32) * np.arange(3, dtype=np.float32)


@pytest.mark.parametrize("fn", [
    lambda q, t: chadsp.xcorr(q, t),
    lambda q, t: chadsp.max_pearson(q, t),
    lambda q, t: chadsp.rerank(q, [t]),
    lambda q, t: chadsp.xcorr_match(q, t),
])
@pytest.mark.parametrize("bad_q,bad_t,exc,msg", [
    (np.array([[np.nan, 0, 0]]), None, ValueError, "query must be finite"),
    (None, np.full((6, 3), np.inf), ValueError, "must be finite"),
    (np.ones((2, 2, 2)), None, ValueError, "query must be 1-D"),
    (None, np.ones((6, 4)), ValueError, "feature dimension"),
    (np.ones((2, 3), complex), None, TypeError, "complex"),
    (None, np.ones((6, 3), bool), TypeError, "bool"),
    (np.array([["a", "b", "c"]]), None, TypeError, "str"),
    (np.zeros((0, 3)), None, ValueError, "at least one frame"),
    ("abc", None, TypeError, "query"),
])
def test_bad_sequences_rejected(fn, bad_q, bad_t, exc, msg):
    q = GOOD[:2] if bad_q is None else bad_q
    t = GOOD if bad_t is None else bad_t
    with pytest.raises(exc, match=msg):
        fn(q, t)


def test_xcorr_errors():
    with pytest.raises(ValueError, match="query has 5 frames, target has 3"):
        chadsp.xcorr(GOOD, GOOD[:3])
    with pytest.raises(ValueError, match="query has 5 frames, target has 0"):
        chadsp.xcorr(GOOD, GOOD[:0])
    with pytest.raises(ValueError, match="method must be"):
        chadsp.xcorr(GOOD, GOOD, method="fast")
    with pytest.raises(TypeError, match="method must be a str"):
        chadsp.xcorr(GOOD, GOOD, method=1)


def test_find_peaks_errors():
    with pytest.raises(ValueError, match="curve must be 1-D"):
        chadsp.find_peaks(np.ones((3, 3)))
    with pytest.raises(ValueError, match="curve must be finite"):
        chadsp.find_peaks(np.array([0, np.nan, 0]))
    with pytest.raises(ValueError, match="distance must be >= 1"):
        chadsp.find_peaks(np.ones(5), distance=0.5)
    with pytest.raises(ValueError, match="height must be finite"):
        chadsp.find_peaks(np.ones(5), height=np.nan)
    with pytest.raises(TypeError, match="height must be a real number"):
        chadsp.find_peaks(np.ones(5), height=(0, 1))
    with pytest.raises(TypeError, match="curve must have a real numeric dtype"):
        chadsp.find_peaks(np.ones(5, complex))


def test_xcorr_match_errors():
    with pytest.raises(ValueError, match="irrel must be <= rel"):
        chadsp.xcorr_match(GOOD[:2], GOOD, rel=0.3, irrel=0.5)
    with pytest.raises(ValueError, match="rel must be <= 1"):
        chadsp.xcorr_match(GOOD[:2], GOOD, rel=1.5)
    with pytest.raises(ValueError, match="irrel must be >= -1"):
        chadsp.xcorr_match(GOOD[:2], GOOD, irrel=-2)
    with pytest.raises(ValueError, match="distance must be >= 1"):
        chadsp.xcorr_match(GOOD[:2], GOOD, distance=0)
    with pytest.raises(TypeError, match="rel must be a real number"):
        chadsp.xcorr_match(GOOD[:2], GOOD, rel="high")


def test_rerank_errors():
    data = np.tile(GOOD, (4, 1))
    with pytest.raises(ValueError, match="non-decreasing"):
        chadsp.rerank(GOOD[:2], (data, np.array([0, 10, 5, 20])))
    with pytest.raises(ValueError, match="within"):
        chadsp.rerank(GOOD[:2], (data, np.array([0, 10, 21])))
    with pytest.raises(ValueError, match="within"):
        chadsp.rerank(GOOD[:2], (data, np.array([-1, 10])))
    with pytest.raises(TypeError, match="offsets must be integers"):
        chadsp.rerank(GOOD[:2], (data, np.array([0.0, 10.0])))
    with pytest.raises(ValueError, match="offsets must be 1-D"):
        chadsp.rerank(GOOD[:2], (data, np.zeros((2, 2), np.int64)))
    with pytest.raises(ValueError, match="feature dimension"):
        chadsp.rerank(GOOD[:2], (np.ones((20, 4), np.float32), np.array([0, 20])))
    with pytest.raises(ValueError, match="candidates\\[1\\] has feature dimension"):
        chadsp.rerank(GOOD[:2], [GOOD, np.ones((5, 4))])
    with pytest.raises(TypeError, match="single array"):
        chadsp.rerank(GOOD[:2], data)
    with pytest.raises(TypeError, match="list of"):
        chadsp.rerank(GOOD[:2], 5)
    with pytest.raises(ValueError, match="threads must be >= 0"):
        chadsp.rerank(GOOD[:2], [GOOD], threads=-1)
    with pytest.raises(TypeError, match="threads must be an integer"):
        chadsp.rerank(GOOD[:2], [GOOD], threads=1.5)
    with pytest.raises(TypeError, match="threads must be an integer"):
        chadsp.rerank(GOOD[:2], [GOOD], threads=True)
    with pytest.raises(ValueError, match="candidates\\[0\\] must be finite"):
        chadsp.rerank(GOOD[:2], [np.full((3, 3), np.nan)])
    # a float32 packed store is read in place: a NaN is caught while scoring, naming the candidate
    bad = data.copy()
    bad[13, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/inf value in candidate 1"):
        chadsp.rerank(GOOD[:2], (bad, np.array([0, 10, 20])))
    bad[13, 1] = -np.inf
    with pytest.raises(ValueError, match="NaN/inf value in candidate 2"):     # shorter than the query
        chadsp.rerank(GOOD[:4], (bad, np.array([0, 10, 12, 14])))
