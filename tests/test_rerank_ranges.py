"""chadsp.rerank_ranges and the float16/int8 stores of chadsp.rerank, vs tests/reference.py and vs
chadsp.rerank on the gathered float32 candidates."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import chadsp
import reference as ref

pytestmark = [pytest.mark.asan, pytest.mark.usefixtures("chadsp_backend")]   # C and numba

TOL = 1e-4
SCALES = [0.0, 1.0, 0.5, -1.25, 1 / 127, 3.0]


# ------------------------------------------------------------------ strategies and helpers
@st.composite
def store_case(draw):
    """A store of small integers (constant runs included), as float32, float16 (exact) or int8 with
    per-row scales (some 0 or negative); a query; ranges in any order, overlapping, empty, shorter than
    the query, over the whole store."""
    d = draw(st.sampled_from([1, 3, 16, 33]))
    n_rows = draw(st.integers(0, 120))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-3, 4, size=(n_rows, d)).astype(np.int8)
    if n_rows > 1 and draw(st.booleans()):
        a = draw(st.integers(0, n_rows - 1))
        x[a:draw(st.integers(a + 1, n_rows))] = draw(st.sampled_from([0, 1, -2]))
    kind = draw(st.sampled_from(["f32", "f16", "i8", "i8-scaled"]))
    scales = None
    if kind == "i8-scaled":
        scales = rng.choice(np.array(SCALES, np.float32), size=n_rows)
    data = x.astype({"f32": np.float32, "f16": np.float16}.get(kind, np.int8))
    tq = draw(st.integers(1, 12))
    q = rng.integers(-3, 4, size=(tq, d)).astype(np.float32)
    n = draw(st.integers(0, 8))
    starts = rng.integers(0, n_rows + 1, size=n)
    lengths = np.array([rng.integers(0, n_rows - s + 1) for s in starts], dtype=np.int64)
    if n and n_rows >= tq and draw(st.booleans()):            # plant the query in range 0
        s0 = draw(st.integers(0, n_rows - tq))
        starts[0], lengths[0] = s0, tq + draw(st.integers(0, n_rows - s0 - tq))
        q = as_f32(data[s0:s0 + tq], None if scales is None else scales[s0:s0 + tq])
    return q, data, scales, starts, lengths


def as_f32(rows: np.ndarray, scales) -> np.ndarray:
    """The float32 rows a store stands for (int8 times its row's scale, in float32)."""
    out = rows.astype(np.float32)
    return out if scales is None else out * scales.astype(np.float32)[:, None]


def gathered(data, scales, starts, lengths) -> list[np.ndarray]:
    return [as_f32(data[s:s + n], None if scales is None else scales[s:s + n]) for s, n in zip(starts, lengths)]


def fingerprints(n_rows: int, d: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth unit-norm rows like fingerprint sequences."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows + 8, d)).astype(np.float32)
    x = np.cumsum(x, axis=0)
    x = x[8:] - x[:-8]                                          # a moving sum: smooth in time
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def quantise_i8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows with a per-row scale: max |x| of the row maps to 127."""
    scales = (np.abs(x).max(axis=1) / 127.0).astype(np.float32)
    q = np.round(x / np.where(scales > 0, scales, 1)[:, None]).astype(np.int8)
    return q, scales


# ------------------------------------------------------------------ agreement
@given(store_case(), st.sampled_from([None, 1, 2]))
def test_ranges_match_reference_and_gathered_rerank(case, threads):
    q, data, scales, starts, lengths = case
    scores, lags = chadsp.rerank_ranges(q, data, starts, lengths, scales=scales, threads=threads)
    assert scores.dtype == np.float32 and lags.dtype == np.int64 and scores.shape == lags.shape == (len(starts),)
    cands = gathered(data, scales, starts, lengths)
    want, _ = ref.rerank(q, cands)
    np.testing.assert_allclose(scores, want, atol=TOL, rtol=0)
    # exactly chadsp.rerank on the gathered float32 candidates (same rules: swap, empty, ties)
    s2, l2 = chadsp.rerank(q, cands, threads=threads)
    np.testing.assert_array_equal(scores, s2)
    np.testing.assert_array_equal(lags, l2)
    for k, (s, n) in enumerate(zip(starts, lengths)):
        if n == 0:
            assert (scores[k], lags[k]) == (0.0, 0)
        elif n < len(q):
            assert lags[k] <= 0


@given(store_case())
def test_rerank_packed_float16_int8_in_place(case):
    """chadsp.rerank of a packed pair of float16/int8 rows = rerank_ranges of its offsets = float32 rows."""
    q, data, scales, _, _ = case
    rng = np.random.default_rng(len(data))
    cuts = np.sort(rng.integers(0, len(data) + 1, size=4))
    offsets = np.r_[0, cuts, len(data)].astype(np.int64)
    s1, l1 = chadsp.rerank(q, (data, offsets), scales=scales)
    s2, l2 = chadsp.rerank_ranges(q, data, offsets[:-1], np.diff(offsets), scales=scales)
    s3, l3 = chadsp.rerank(q, (as_f32(data, scales), offsets))
    for s, lg in ((s2, l2), (s3, l3)):
        np.testing.assert_array_equal(s1, s)
        np.testing.assert_array_equal(l1, lg)


def test_ranges_d128_segments_and_tiles():
    """Fingerprint rows, songs longer than a segment (448 lags) and a tile, ranges out of order, a song
    scored twice: float16/int8 rows give exactly the scores of their float32 values."""
    lens = np.array([1500, 30, 0, 700, 460, 9, 2000, 451])
    data = fingerprints(int(lens.sum()), seed=1)
    offsets = np.r_[0, np.cumsum(lens)]
    order = np.array([6, 3, 0, 7, 1, 5, 2, 4, 6])
    starts, lengths = offsets[:-1][order], lens[order]
    for tq in (10, 29, 64):
        q = data[offsets[6] + 1234: offsets[6] + 1234 + tq] + 0.2 * fingerprints(tq, seed=tq)
        s32, l32 = chadsp.rerank_ranges(q, data, starts, lengths, threads=2)
        want, want_lags = chadsp.rerank(q, [data[s:s + n] for s, n in zip(starts, lengths)], threads=1)
        np.testing.assert_array_equal(s32, want)
        np.testing.assert_array_equal(l32, want_lags)
        assert int(np.argmax(s32)) == 0 and l32[0] == 1234 and s32[8] == s32[0]
        i8, sc = quantise_i8(data)
        for rows, scales in ((data.astype(np.float16), None), (i8, sc)):
            s, lg = chadsp.rerank_ranges(q, rows, starts, lengths, scales=scales, threads=2)
            f32 = as_f32(rows, scales)
            exact, exact_lags = chadsp.rerank(q, [f32[a:a + n] for a, n in zip(starts, lengths)], threads=1)
            np.testing.assert_array_equal(s, exact)
            np.testing.assert_array_equal(lg, exact_lags)


def test_one_dimensional_stores_longer_than_a_segment():
    """1-D rows (d = 1) read through tiles of 2240 lags: the scores of the float32 values, exactly."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal(7000).astype(np.float32)
    x /= np.abs(x).max()
    q = x[5000:5050] + 0.05 * rng.standard_normal(50).astype(np.float32)
    i8 = np.round(x * 127).astype(np.int8)
    scales = np.full(len(x), 1 / 127, np.float32)
    starts, lengths = [0, 4000, 100], [7000, 2990, 30]
    for rows, sc in ((x.astype(np.float16), None), (i8, scales)):
        store = rows.reshape(-1, 1)
        s, lg = chadsp.rerank_ranges(q, store, starts, lengths, scales=sc)
        f32 = as_f32(store, sc)
        want, want_lags = chadsp.rerank(q, [f32[a:a + n] for a, n in zip(starts, lengths)])
        np.testing.assert_array_equal(s, want)
        np.testing.assert_array_equal(lg, want_lags)
        assert lg[0] == 5000 and lg[1] == 1000


def test_float16_int8_close_to_float32():
    """Scores of float16 and int8 (per-row scale) stores within 1e-2 of float32; the same lag wherever
    the float32 maximum is clear (its runner-up at another lag is 0.02 lower)."""
    rng = np.random.default_rng(3)
    lens = rng.integers(5, 400, size=60)
    data = fingerprints(int(lens.sum()), seed=3)
    offsets = np.r_[0, np.cumsum(lens)]
    starts, lengths = offsets[:-1], lens
    i8, sc = quantise_i8(data)
    clear_seen = 0
    for tq in (10, 29):
        k = int(np.argmax(lens))
        q = data[offsets[k] + 40: offsets[k] + 40 + tq] + 0.5 * fingerprints(tq, seed=7)
        s32, l32 = chadsp.rerank_ranges(q, data, starts, lengths)
        for rows, scales in ((data.astype(np.float16), None), (i8, sc)):
            s, lg = chadsp.rerank_ranges(q, rows, starts, lengths, scales=scales)
            assert float(np.max(np.abs(s - s32))) <= 1e-2
            for j in range(len(lens)):
                if lens[j] < tq:
                    continue
                curve = chadsp.xcorr(q, data[starts[j]:starts[j] + lens[j]], method="direct")
                others = np.delete(curve, int(l32[j]))
                if others.size == 0 or curve[l32[j]] - others.max() > 0.02:
                    clear_seen += 1
                    assert lg[j] == l32[j]
        assert int(np.argmax(s32)) == k and l32[k] == 40
    assert clear_seen >= 4


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_offset_and_huge_rows_against_reference(dtype):
    """Rows with a mean offset (windows near-constant relative to REFINE: the exact row sums are used) and
    rows whose float32 squares overflow (1e20: a finite store, no NaN/inf error) score as the reference."""
    rng = np.random.default_rng(9)
    base = rng.standard_normal((260, 16)).astype(np.float32)
    q = base[100:112] + 0.5 * rng.standard_normal((12, 16)).astype(np.float32)
    for rows in (3 + base, 10 + 0.5 * base, 1e20 * base):
        if dtype == np.float16 and np.abs(rows).max() > 6e4:
            continue
        store = rows.astype(dtype)
        starts, lengths = [0, 90, 250, 20], [260, 40, 10, 50]
        s, lg = chadsp.rerank_ranges(q, store, starts, lengths)
        want, _ = ref.rerank(q, gathered(store, None, starts, lengths))
        np.testing.assert_allclose(s, want, atol=TOL, rtol=0)
        assert lg[1] == 10


# ------------------------------------------------------------------ edge cases
def test_ranges_edge_cases():
    rng = np.random.default_rng(4)
    data = rng.standard_normal((50, 4)).astype(np.float32)
    q = data[10:15]
    # no ranges; empty ranges (also at the end of the store); shorter than the query; the whole store
    s, lg = chadsp.rerank_ranges(q, data, [], [])
    assert s.shape == lg.shape == (0,)
    s, lg = chadsp.rerank_ranges(q, data, np.array([0, 50, 12, 0, 10]), np.array([0, 0, 3, 50, 5]))
    assert (s[0], lg[0]) == (0.0, 0) and (s[1], lg[1]) == (0.0, 0)
    assert lg[2] == -2 and s[2] == pytest.approx(1.0, abs=1e-6)           # data[12:15] is q[2:5]
    assert lg[3] == 10 and s[3] == pytest.approx(1.0, abs=1e-6)
    assert lg[4] == 0 and s[4] == pytest.approx(1.0, abs=1e-6)
    # an empty store with empty ranges; unsigned and int32 ranges
    s, _ = chadsp.rerank_ranges(q, np.zeros((0, 4), np.float16), [0, 0], [0, 0])
    assert s.tolist() == [0.0, 0.0]
    s2, _ = chadsp.rerank_ranges(q, data, np.array([0], np.uint32), np.array([50], np.int32))
    assert s2[0] == pytest.approx(1.0, abs=1e-6)


def test_int8_scale_zero_and_negative():
    rng = np.random.default_rng(5)
    x = rng.integers(-100, 101, size=(40, 8)).astype(np.int8)
    scales = rng.uniform(0.01, 0.1, size=40).astype(np.float32)
    q = as_f32(x[5:9], scales[5:9])
    zero = scales.copy()
    zero[:20] = 0.0                       # rows 0..19 are all zero: constant blocks score 0
    s, lg = chadsp.rerank_ranges(q, x, [0, 0, 15], [20, 40, 25], scales=zero)
    assert (s[0], lg[0]) == (0.0, 0)
    want, want_lags = chadsp.rerank(q, gathered(x, zero, [0, 0, 15], [20, 40, 25]))
    np.testing.assert_array_equal(s, want)
    np.testing.assert_array_equal(lg, want_lags)
    neg = -scales                          # every row negated: the planted match scores -1
    s, lg = chadsp.rerank_ranges(q, x, [5], [4], scales=neg)
    assert s[0] == pytest.approx(-1.0, abs=1e-6) and lg[0] == 0
    s, _ = chadsp.rerank_ranges(q, x, [5], [4])                          # scales=None: the values as they are
    assert s[0] == pytest.approx(chadsp.max_pearson(q, x[5:9].astype(np.float32))[0], abs=1e-7)


def test_nan_in_ranges_raises_outside_is_not_read():
    rng = np.random.default_rng(6)
    data = rng.standard_normal((60, 3)).astype(np.float32)
    q = data[:4]
    for rows, scales in ((data, None), (data.astype(np.float16), None),
                         (*quantise_i8(data),)):
        rows = rows.copy()
        scales = None if scales is None else scales.copy()
        if scales is None:
            rows[30, 1] = np.nan
        else:
            scales[30] = np.nan
        # the ranges avoid row 30: the store is read in place, only the ranges' rows
        s, _ = chadsp.rerank_ranges(q, rows, [0, 40], [30, 20], scales=scales)
        assert np.isfinite(s).all()
        with pytest.raises(ValueError, match="NaN/inf value.* in range 2"):
            chadsp.rerank_ranges(q, rows, [0, 40, 28], [30, 20, 10], scales=scales)
        with pytest.raises(ValueError, match="in range 1"):                 # shorter than the query
            chadsp.rerank_ranges(q, rows, [0, 29], [30, 2], scales=scales)
        with pytest.raises(ValueError, match="in candidate 1"):
            chadsp.rerank(q, (rows, np.array([0, 30, 60])), scales=scales)
    inf16 = data.astype(np.float16)
    inf16[3, 0] = np.inf
    with pytest.raises(ValueError, match="data must be finite"):
        chadsp.rerank_ranges(q, inf16, [0], [10])
    big = quantise_i8(data)
    with pytest.raises(ValueError, match="or scale in range 0"):
        chadsp.rerank_ranges(q, big[0], [0], [10], scales=np.where(np.arange(60) == 2, np.inf, big[1]))


def test_memmap_store(tmp_path):
    data = fingerprints(900, d=16, seed=8).astype(np.float16)
    path = tmp_path / "store.f16"
    data.tofile(path)
    mm = np.memmap(path, dtype=np.float16, mode="r", shape=data.shape)
    q = data[500:520].astype(np.float32)
    s, lg = chadsp.rerank_ranges(q, mm, [450, 0], [400, 450])
    assert int(np.argmax(s)) == 0 and lg[0] == 50
    np.testing.assert_array_equal(s, chadsp.rerank_ranges(q, data, [450, 0], [400, 450])[0])


def test_ranges_errors():
    data = np.ones((20, 3), np.float32) * np.arange(3, dtype=np.float32)
    q = data[:2]
    cases = [
        (dict(starts=[0, 1], lengths=[3]), ValueError, "starts and lengths must have the same length"),
        (dict(starts=[-1], lengths=[3]), ValueError, "starts must be >= 0"),
        (dict(starts=[0], lengths=[-3]), ValueError, "lengths must be >= 0"),
        (dict(starts=[15], lengths=[6]), ValueError, "within the 20 rows"),
        (dict(starts=[0.0], lengths=[3]), TypeError, "starts must be integers"),
        (dict(starts=[[0]], lengths=[[3]]), ValueError, "starts must be 1-D"),
        (dict(starts=None, lengths=[3]), TypeError, "starts must be a 1-D integer array"),
        (dict(starts=[0], lengths=[3], scales=np.ones(20)), ValueError, "scales apply to int8 rows only"),
        (dict(starts=[0], lengths=[3], threads=-1), ValueError, "threads must be >= 0"),
    ]
    for kw, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            chadsp.rerank_ranges(q, data, **kw)
    with pytest.raises(ValueError, match="scales must be 1-D with one scale per row \\(20\\)"):
        chadsp.rerank_ranges(q, data.astype(np.int8), [0], [3], scales=np.ones(19))
    with pytest.raises(TypeError, match="scales must have a real numeric dtype"):
        chadsp.rerank_ranges(q, data.astype(np.int8), [0], [3], scales=np.ones(20, complex))
    with pytest.raises(ValueError, match="data has feature dimension 3, expected D = 4"):
        chadsp.rerank_ranges(np.ones((2, 4)), data, [0], [3])
    with pytest.raises(ValueError, match="data must be finite"):              # converted: checked first
        chadsp.rerank_ranges(q, np.full((20, 3), np.nan), [0], [3])
    with pytest.raises(ValueError, match="query must be finite"):
        chadsp.rerank_ranges(np.full((2, 3), np.nan), data, [0], [3])
    with pytest.raises(ValueError, match="scales apply to int8 rows only"):
        chadsp.rerank(q, [data], scales=np.ones(20))
    # other dtypes and layouts are converted to float32 (a copy): the same scores
    s64, _ = chadsp.rerank_ranges(q, data.astype(np.float64), [0], [20])
    sf, _ = chadsp.rerank_ranges(q, np.asfortranarray(data), [0], [20])
    s32, _ = chadsp.rerank_ranges(q, data, [0], [20])
    assert s64.tolist() == sf.tolist() == s32.tolist()
