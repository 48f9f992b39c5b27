"""chadsp's two backends side by side: every kernel under C (the default) and under numba, on the bench sizes.

Each case first asserts that both backends give the same answer (equal intervals, peaks and lags;
scores and costs within float rounding), then times the public function under each backend, the two
interleaved in one process (``_timing.paired_times``: medians). In the table "ours" is C and the anchor
is numba, so the ratio anchor/ours is numba time / C time (above 1: C is faster). numba is compiled
(or loaded from its on-disk cache) in the untimed warm-up call. Sizes are those of bench_silence.py,
bench_correlation.py and bench_dtw.py, except re-ranking: 1000 candidates instead of 5000 (the run
stays under 3 minutes on 2 cores); subsequence DTW is sized like bench_qbh's f0 matching. Candidates
are packed pairs (data, offsets), scored in place, as the search uses them.

Run: ``python bench/run.py --only backends`` (table) or ``PYTHONPATH=$PWD python bench/bench_backends.py
[--quick]``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import paired_times, row  # noqa: E402

import chadsp  # noqa: E402

SR = 16000


def under(name: str, fn):
    """``fn`` called with ``name`` the active backend."""
    def call():
        chadsp.set_backend(name)
        return fn()
    return call


def both(fn):
    """(C result, numba result) of ``fn()``."""
    return under("c", fn)(), under("numba", fn)()


def _rows(cases, repeat: int) -> list[dict]:
    rows = []
    for label, fn, note in cases:
        a, b = paired_times(under("c", fn), under("numba", fn), repeat=repeat, min_time=0.01)
        rows.append(row(label, a, "numba backend", b, note))
    return rows


def silence_cases(quick: bool):
    from bench_silence import audio
    seconds = 30 if quick else 240
    y = audio(seconds)
    iv_c, iv_n = both(lambda: chadsp.split_by_silence(y, 60))
    assert np.array_equal(iv_c, iv_n), "split_by_silence: backends disagree"
    db_c, db_n = both(lambda: chadsp.rms_db(y))
    err = float(np.abs(db_c - db_n).max())
    assert err < 1e-4, f"rms_db: backends differ by {err} dB"
    rng = np.random.default_rng(0)
    n_iv = 20000 if quick else 200000
    ends = np.cumsum(rng.integers(1, 3 * SR, size=2 * n_iv)).reshape(-1, 2)
    m_c, m_n = both(lambda: chadsp.merge_fragments(ends, SR, 8 * SR, 20 * SR))
    assert np.array_equal(m_c, m_n), "merge_fragments: backends disagree"
    return [
        (f"split_by_silence, {seconds} s @16 kHz, top_db=60", lambda: chadsp.split_by_silence(y, 60),
         f"{len(iv_c)} intervals, identical"),
        (f"rms_db, {seconds} s @16 kHz", lambda: chadsp.rms_db(y), f"max abs diff {err:.1e} dB"),
        (f"merge_fragments, {n_iv} intervals", lambda: chadsp.merge_fragments(ends, SR, 8 * SR, 20 * SR),
         f"{len(m_c)} fragments, identical"),
    ]


def correlation_cases(quick: bool):
    from bench_correlation import packed_candidates
    rng = np.random.default_rng(1)
    cases = []
    for tq, tt in ((40, 2000), (160, 8000)):
        t = rng.standard_normal((tt, 128)).astype(np.float32)
        q = t[tt // 3:tt // 3 + tq] + 0.5 * rng.standard_normal((tq, 128)).astype(np.float32)
        c_c, c_n = both(lambda: chadsp.xcorr(q, t))
        err = float(np.abs(c_c - c_n).max())
        assert err < 1e-4 and int(c_c.argmax()) == int(c_n.argmax()), f"xcorr {tq}x{tt}: backends differ by {err}"
        cases.append((f"xcorr 128-d {tq} vs {tt} frames (direct)", lambda q=q, t=t: chadsp.xcorr(q, t),
                      f"max abs diff {err:.1e}"))
    sig = rng.standard_normal((8 if quick else 20) * SR).astype(np.float32)
    frag = sig[5 * SR // 2:5 * SR // 2 + 3 * SR] + 0.3 * rng.standard_normal(3 * SR).astype(np.float32)
    c_c, c_n = both(lambda: chadsp.xcorr(frag, sig))
    err = float(np.abs(c_c - c_n).max())
    assert err < 1e-4, f"xcorr 1-D: backends differ by {err}"
    cases.append((f"xcorr 1-D 3 s in {len(sig) // SR} s @16 kHz (fft + normalise)",
                  lambda frag=frag: chadsp.xcorr(frag, sig), f"max abs diff {err:.1e}"))
    walk = np.cumsum(rng.standard_normal(200000 if quick else 1000000))
    p_c, p_n = both(lambda: chadsp.find_peaks(walk, distance=100))
    assert np.array_equal(p_c, p_n), "find_peaks: backends disagree"
    cases.append((f"find_peaks {len(walk)} random walk, distance=100", lambda: chadsp.find_peaks(walk, distance=100),
                  f"{len(p_c)} peaks, identical"))
    t = rng.standard_normal((8000, 128)).astype(np.float32)
    frag = t[3000:3040].copy()
    m_c, m_n = both(lambda: chadsp.xcorr_match(frag, t, rel=0.5, irrel=0.1))
    assert np.array_equal(m_c["lag"], m_n["lag"]), "xcorr_match: backends disagree"
    cases.append(("xcorr_match 128-d 40 vs 8000 frames",
                  lambda frag=frag, t=t: chadsp.xcorr_match(frag, t, rel=0.5, irrel=0.1),
                  f"{len(m_c)} matches, identical lags"))
    n_cand = 200 if quick else 1000
    data, offsets = packed_candidates(n_cand)
    k = n_cand // 2
    for tq in (10, 29, 64):
        q = data[offsets[k] + 50:offsets[k] + 50 + tq] + 0.3 * rng.standard_normal((tq, 128)).astype(np.float32)
        (s_c, l_c), (s_n, l_n) = both(lambda q=q: chadsp.rerank(q, (data, offsets)))
        err = float(np.abs(s_c - s_n).max())
        assert err < 1e-5 and int(s_c.argmax()) == int(s_n.argmax()) == k and l_c[k] == l_n[k] == 50, \
            f"rerank Tq={tq}: backends disagree (max score diff {err})"
        cases.append((f"rerank packed Tq={tq}, {n_cand} cand 400..1000, D=128",
                      lambda q=q: chadsp.rerank(q, (data, offsets)),
                      f"max abs score diff {err:.1e}; lags {np.mean(l_c == l_n):.3f} equal"))
    return cases


def _packed(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Candidates as the packed pair (data, offsets) that dtw_rerank scores in place."""
    data = np.ascontiguousarray(np.concatenate([s.reshape(len(s), -1) for s in seqs]), dtype=np.float32)
    return data, np.r_[0, np.cumsum([len(s) for s in seqs])].astype(np.int64)


def dtw_cases(quick: bool):
    from bench_correlation import packed_candidates
    rng = np.random.default_rng(2)
    cases = []
    n_cand = 400 if quick else 2000
    q1 = np.cumsum(rng.standard_normal(250)).astype(np.float32)
    cands = _packed([np.cumsum(rng.standard_normal(n)).astype(np.float32) for n in rng.integers(250, 401, n_cand)])
    d_c, d_n = both(lambda: chadsp.dtw_rerank(q1, cands, band=25))
    np.testing.assert_allclose(d_n, d_c, rtol=2e-5)
    cases.append((f"dtw_rerank 1-D 250 vs {n_cand}x(250..400), band 25", lambda: chadsp.dtw_rerank(q1, cands, band=25),
                  f"max rel diff {float(np.max(np.abs(d_n - d_c) / d_c)):.1e}"))
    n_cand = 100 if quick else 400
    q = rng.standard_normal((250, 128)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    data, offsets = packed_candidates(n_cand, 250, 400, seed=3)
    for metric in ("euclidean", "cosine"):
        d_c, d_n = both(lambda metric=metric: chadsp.dtw_rerank(q, (data, offsets), band=25, metric=metric))
        np.testing.assert_allclose(d_n, d_c, rtol=2e-5)
        cases.append((f"dtw_rerank 128-d {metric} 250 vs {n_cand}x(250..400), band 25",
                      lambda metric=metric: chadsp.dtw_rerank(q, (data, offsets), band=25, metric=metric),
                      f"max rel diff {float(np.max(np.abs(d_n - d_c) / d_c)):.1e}"))
    song = np.cumsum(rng.standard_normal(1500 if quick else 4500)).astype(np.float32)
    hum = song[1000:1250] + 0.1 * rng.standard_normal(250).astype(np.float32)
    for band in (25, None):
        r_c, r_n = both(lambda band=band: chadsp.subsequence_dtw(hum, song, band=band))
        assert r_c[1:] == r_n[1:] and abs(r_c[0] - r_n[0]) <= 2e-5 * max(r_c[0], 1.0), \
            f"subsequence_dtw band={band}: backends disagree {r_c} {r_n}"
        cases.append((f"subsequence_dtw 1-D 250 in {len(song)}, band {band}",
                      lambda band=band: chadsp.subsequence_dtw(hum, song, band=band),
                      f"same segment [{r_c[1]}, {r_c[2]})"))
    return cases


def cases(quick: bool = False) -> list[dict]:
    previous = chadsp.backend()
    repeat = 3 if quick else 5
    try:
        return [r for make in (silence_cases, correlation_cases, dtw_cases) for r in _rows(make(quick), repeat)]
    finally:
        chadsp.set_backend(previous)


if __name__ == "__main__":
    import time
    t0 = time.perf_counter()
    for r in cases(quick="--quick" in sys.argv):
        ratio = r["anchor_s"] / r["ours_s"]
        print(f"{r['case']:<62} C {r['ours_s'] * 1e3:9.2f} ms  numba {r['anchor_s'] * 1e3:9.2f} ms  "
              f"numba/C {ratio:5.2f}  {r['note']}", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")
