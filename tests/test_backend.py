"""chadsp's backends: selection (CHADSP_BACKEND, fallback to numba, chadsp.backend / set_backend) and
agreement of the numba kernels with the C ones on random float data.

The kernel tests (test_silence.py, test_correlation.py, test_dtw.py) run once per backend against
tests/reference.py; here both backends are compared with each other: equal intervals and peaks, values
within float rounding, and lags / segments identical unless the other answer is as good to rounding.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import chadsp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def both():
    """Skip where a backend cannot load; restore the active backend afterwards."""
    old = chadsp.backend()
    for name in ("c", "numba"):
        try:
            chadsp.set_backend(name)
        except ImportError as exc:
            pytest.skip(f"chadsp backend {name} unavailable: {exc}")
    yield
    chadsp.set_backend(old)


def under(name, fn, *args, **kw):
    chadsp.set_backend(name)
    return fn(*args, **kw)


def c_and_numba(fn, *args, **kw):
    return under("c", fn, *args, **kw), under("numba", fn, *args, **kw)


# ------------------------------------------------------------------------------------------ selection
def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "CHADSP_BACKEND"}
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)


BLOCK_C = "import sys; sys.modules['chadsp._chadsp'] = None\n"   # as if the extension had not been built


def test_backend_and_set_backend(both):
    old = chadsp.backend()
    assert old in ("c", "numba")
    try:
        assert chadsp.set_backend("numba") == old and chadsp.backend() == "numba"
        assert chadsp.set_backend(" C ") == "numba" and chadsp.backend() == "c"
        with pytest.raises(ValueError, match=r"^backend must be one of c, numba, got 'cuda'$"):
            chadsp.set_backend("cuda")
        assert chadsp.backend() == "c"
    finally:
        chadsp.set_backend(old)


def test_env_selects_numba():
    r = run_python("import chadsp; print(chadsp.backend())", CHADSP_BACKEND="numba")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["numba"] and r.stderr == ""


def test_env_invalid_value_is_one_clear_line():
    r = run_python("try:\n    import chadsp\nexcept ValueError as e:\n    print(e)", CHADSP_BACKEND="fortran")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["CHADSP_BACKEND must be one of c, numba, got 'fortran'"]


def test_fallback_to_numba_with_one_warning_line():
    r = run_python(BLOCK_C + "import chadsp, numpy as np\nprint(chadsp.backend())\n"
                   "print(chadsp.max_pearson(np.arange(5.0), np.arange(9.0) ** 2)[1])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["numba", "4"]
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "BackendWarning" in lines[0] and "using the numba backend" in lines[0], lines


def test_explicit_c_without_extension_fails_clearly():
    r = run_python(BLOCK_C + "try:\n    import chadsp\nexcept ImportError as e:\n    print(e)", CHADSP_BACKEND="c")
    assert r.returncode == 0, r.stderr
    assert "compiled extension" in r.stdout and "CHADSP_BACKEND=numba" in r.stdout and r.stderr == ""


def test_numba_threads_argument_is_restored(both):
    import numba
    before = numba.get_num_threads()
    rng = np.random.default_rng(0)
    q = rng.standard_normal((6, 3)).astype(np.float32)
    under("numba", chadsp.rerank, q, [rng.standard_normal((40, 3))] * 3, threads=1)
    under("numba", chadsp.dtw_rerank, q, [q, q[::-1]], threads=1)
    assert numba.get_num_threads() == before


# ------------------------------------------------------------------------------------------ agreement
NO_DEADLINE = settings(deadline=None)   # numba compiles on its first call (cached on disk afterwards)


@NO_DEADLINE
@given(st.lists(st.tuples(st.integers(0, 3000), st.floats(-6, 0)), min_size=1, max_size=5),
       st.integers(0, 2**32 - 1), st.sampled_from([(2048, 512), (400, 160), (301, 7), (64, 64)]), st.floats(5, 90))
def test_silence_backends_agree(both, spec, seed, fh, top_db):
    rng = np.random.default_rng(seed)
    y = np.concatenate([10.0 ** la * rng.standard_normal(n) for n, la in spec]).astype(np.float32)
    fl, hop = fh
    db_c, db_n = c_and_numba(chadsp.rms_db, y, frame_length=fl, hop_length=hop)
    np.testing.assert_allclose(db_n, db_c, atol=1e-5, rtol=0)
    assume(y.size and not np.any(np.abs(db_c + top_db) < 1e-3))     # no frame at the threshold
    iv_c, iv_n = c_and_numba(chadsp.split_by_silence, y, top_db, frame_length=fl, hop_length=hop)
    assert np.array_equal(iv_c, iv_n)
    for pause, lo, hi in [(0, 0, 10**6), (500, 1000, 4000), (3000, 0, 2000)]:
        m_c, m_n = c_and_numba(chadsp.merge_fragments, iv_c, pause, lo, hi)
        assert np.array_equal(m_c, m_n)


@st.composite
def float_pair(draw, longer_query=False):
    d = draw(st.sampled_from([1, 2, 16, 128]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tt = draw(st.integers(1, 80))
    tq = draw(st.integers(1, 40 if longer_query else tt))
    t = rng.standard_normal((tt, d)).astype(np.float32)
    q = rng.standard_normal((tq, d)).astype(np.float32)
    if tq <= tt and draw(st.booleans()):
        l0 = draw(st.integers(0, tt - tq))
        q = t[l0:l0 + tq] + np.float32(0.3) * q
    return q, t


def _best_on(curve: np.ndarray, index: int) -> bool:
    """``index`` is a maximum of ``curve`` to float rounding."""
    return curve[index] >= curve.max() - 1e-5


@NO_DEADLINE
@given(float_pair(), st.sampled_from(["direct", "fft"]))
def test_xcorr_and_peaks_backends_agree(both, qt, method):
    q, t = qt
    c_c, c_n = c_and_numba(chadsp.xcorr, q, t, method=method)
    np.testing.assert_allclose(c_n, c_c, atol=1e-5, rtol=0)
    p_c, p_n = c_and_numba(chadsp.find_peaks, c_c, height=0.0, distance=3)
    assert np.array_equal(p_c, p_n)
    # xcorr_match: the same matches where no two lags of the curve are within rounding of each other
    assume(c_c.size < 2 or np.diff(np.sort(c_c)).min() > 1e-5)
    m_c, m_n = c_and_numba(chadsp.xcorr_match, q, t, rel=0.5, irrel=0.0)
    assert np.array_equal(m_c["lag"], m_n["lag"]) and np.array_equal(m_c["relevant"], m_n["relevant"])
    np.testing.assert_allclose(m_n["score"], m_c["score"], atol=1e-5)


@NO_DEADLINE
@given(st.lists(float_pair(longer_query=True), min_size=1, max_size=6))
def test_rerank_backends_agree(both, pairs):
    d = pairs[0][0].shape[1]
    q = pairs[0][0]
    cands = [t for _, t in pairs if t.shape[1] == d] + [np.zeros((0, d), np.float32)]
    (s_c, l_c), (s_n, l_n) = c_and_numba(chadsp.rerank, q, cands)
    np.testing.assert_allclose(s_n, s_c, atol=1e-5, rtol=0)
    chadsp.set_backend("c")
    for k, t in enumerate(cands):
        if l_c[k] != l_n[k]:          # both lags must then be maxima to rounding
            curve = chadsp.xcorr(q, t) if len(q) <= len(t) else chadsp.xcorr(t, q)[::-1]
            off = 0 if len(q) <= len(t) else len(curve) - 1
            assert _best_on(curve, off + int(l_c[k])) and _best_on(curve, off + int(l_n[k]))
        assert (float(s_n[k]), int(l_n[k])) == under("numba", chadsp.max_pearson, q, t)


@NO_DEADLINE
@given(st.integers(1, 30), st.lists(st.integers(0, 40), max_size=8), st.sampled_from([1, 3, 128]),
       st.one_of(st.none(), st.integers(0, 6)), st.sampled_from(["euclidean", "cosine"]),
       st.integers(0, 2**32 - 1))
def test_dtw_backends_agree(both, n, lens, d, band, metric, seed):
    rng = np.random.default_rng(seed)

    def seq(m):
        a = rng.standard_normal((m, d)).astype(np.float32)
        return a / np.linalg.norm(a, axis=1, keepdims=True) if metric == "cosine" and m else a

    q = seq(n)
    cands = [seq(m) for m in lens]
    r_c, r_n = c_and_numba(chadsp.dtw_rerank, q, cands, band=band, metric=metric)
    np.testing.assert_allclose(r_n, r_c, rtol=2e-5 * np.sqrt(d), atol=1e-5)
    t = seq(max(lens + [n]) + 5)
    b = None if band is None else max(band, 1)
    for bb in (None, b):
        (cost_c, *seg_c), (cost_n, *seg_n) = c_and_numba(chadsp.subsequence_dtw, q, t, band=bb, metric=metric)
        assert cost_n == pytest.approx(cost_c, rel=2e-5 * np.sqrt(d), abs=1e-5)
        if seg_c != seg_n and bb is None:   # another segment: as good to rounding
            other = under("c", chadsp.banded_dtw, q, t[seg_n[0]:seg_n[1]], metric=metric)
            assert other == pytest.approx(cost_c, rel=2e-5 * np.sqrt(d), abs=1e-5)
        elif bb is not None:
            assert 0 <= seg_n[0] < seg_n[1] <= len(t) and abs((seg_n[1] - 1 - seg_n[0]) - (n - 1)) <= bb
