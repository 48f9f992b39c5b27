"""Benchmarks of chadsp.dtw (issue 2): dtw_rerank against dtaidistance's parallel C path and numba.

Anchor: dtaidistance's OpenMP C path, ``dtw.distance_matrix_fast(series + [query], block=((0, N), (N, N + 1)),
window=band + 1, parallel=True, compact=True)``: the query placed last and ``block`` restricted to its
column, so it computes exactly the N query-vs-reference distances (its settings default to
``use_pruning=False``). The cell count is the number of in-band cells, the same for every implementation.
A branch-free numba kernel (``prange`` over references, the DP in a serial helper) is timed too: it is the
JIT alternative to the C kernel.

Run: ``PYTHONPATH=. python bench/bench_dtw.py [--quick]``.
"""
from __future__ import annotations

import sys

import numpy as np

try:
    from ._timing import paired_times, row
except ImportError:  # run as a script
    from _timing import paired_times, row

import chadsp

BAND = 25


def make_case(n_refs: int, d: int, seed: int = 0, normalise: bool = False):
    """A query of 250 frames and n_refs references of 250..400 frames, (T, d) float32 (1-D for d = 1)."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(250, 401, n_refs)
    q = np.cumsum(rng.standard_normal((250, d)), axis=0).astype(np.float32)
    data = np.cumsum(rng.standard_normal((int(lens.sum()), d)), axis=0).astype(np.float32)
    if normalise:
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        data /= np.linalg.norm(data, axis=1, keepdims=True)
    offsets = np.r_[0, np.cumsum(lens)].astype(np.int64)
    return q, data, offsets


def band_cells(n: int, lens, band: int) -> int:
    """In-band cells of all pairs (n, m): the work every implementation does."""
    i = np.arange(n)
    total = 0
    for m in np.asarray(lens):
        lo = np.maximum(0, i - band - max(0, n - m))
        hi = np.minimum(m - 1, i + band + max(0, m - n))
        total += int(np.maximum(hi - lo + 1, 0).sum())
    return total


def dtaidistance_rerank(q, data, offsets, band, ndim: bool):
    from dtaidistance import dtw, dtw_ndim
    series = [np.ascontiguousarray(data[a:b], dtype=np.float64) for a, b in zip(offsets[:-1], offsets[1:])]
    if not ndim:
        series = [s[:, 0].copy() for s in series]
    series.append(np.ascontiguousarray(q if ndim else q[:, 0], dtype=np.float64))
    n = len(series) - 1
    mod = dtw_ndim if ndim else dtw

    def run():
        return np.asarray(mod.distance_matrix_fast(series, block=((0, n), (n, n + 1)), window=band + 1,
                                                   parallel=True, compact=True))
    return run


_numba_kernel = None


def numba_rerank():
    """A branch-free banded DTW in numba (1-D, euclidean): the JIT alternative, compiled once."""
    global _numba_kernel
    if _numba_kernel is None:
        import numba

        @numba.njit(cache=False, fastmath=False)
        def pair(x, y, band):
            n, m = x.shape[0], y.shape[0]
            lo = max(-(n - 1), -band - max(0, n - m))
            hi = min(m - 1, band + max(0, m - n))
            w = hi - lo + 1
            prev = np.full(w + 1, np.inf, np.float32)
            cur = np.full(w + 1, np.inf, np.float32)
            prev[-lo] = 0.0
            for i in range(n):
                k0 = max(0, -i - lo)
                k1 = min(w - 1, m - 1 - i - lo)
                left = np.float32(np.inf)
                xi = x[i]
                for k in range(k0, k1 + 1):
                    df = xi - y[i + lo + k]
                    c = df * df
                    a = min(prev[k], prev[k + 1]) + c
                    left = min(a, left + c)
                    cur[k] = left
                for k in range(k1 + 1, min(w, k1 + 2) + 1):
                    cur[k] = np.inf
                prev, cur = cur, prev
            return np.sqrt(prev[m - n - lo])

        @numba.njit(parallel=True)
        def batch(q, data, offsets, band):
            out = np.empty(offsets.shape[0] - 1, np.float32)
            for c in numba.prange(offsets.shape[0] - 1):
                out[c] = pair(q, data[offsets[c]:offsets[c + 1]], band)
            return out

        _numba_kernel = batch
    return _numba_kernel


def cases(quick: bool = False) -> list[dict]:
    rows = []
    n_refs = 200 if quick else 2000
    repeat = 3 if quick else 7

    # 1-D euclidean, the case
    q, data, offsets = make_case(n_refs, 1)
    cells = band_cells(250, np.diff(offsets), BAND)
    ours = lambda: chadsp.dtw_rerank(q, (data, offsets), band=BAND)  # noqa: E731
    anchor = dtaidistance_rerank(q, data, offsets, BAND, ndim=False)
    np.testing.assert_allclose(ours(), anchor(), rtol=1e-4)
    t_ours, t_anchor = paired_times(ours, anchor, repeat=repeat)
    rows.append(row(f"dtw_rerank 1-D 250 vs {n_refs}x(250..400), band {BAND}", t_ours,
                    "dtaidistance distance_matrix_fast (C, OpenMP)", t_anchor,
                    f"{cells / 1e6:.1f} Mcells; ours {cells / t_ours / 1e6:.0f} Mcells/s, "
                    f"anchor {cells / t_anchor / 1e6:.0f} Mcells/s"))
    kern = numba_rerank()
    q1, d1 = q[:, 0].copy(), data[:, 0].copy()
    nb = lambda: kern(q1, d1, offsets, BAND)  # noqa: E731
    np.testing.assert_allclose(nb(), ours(), rtol=1e-5)
    t_ours, t_nb = paired_times(ours, nb, repeat=repeat)
    rows.append(row(f"dtw_rerank 1-D 250 vs {n_refs}x(250..400), band {BAND}", t_ours,
                    "numba prange, branch-free (float32)", t_nb,
                    f"numba {cells / t_nb / 1e6:.0f} Mcells/s"))

    # 128-d: cosine (what fingerprints use) and euclidean (dtaidistance has no cosine)
    n128 = 100 if quick else 400
    q, data, offsets = make_case(n128, 128, seed=1, normalise=True)
    cells = band_cells(250, np.diff(offsets), BAND)
    ours_e = lambda: chadsp.dtw_rerank(q, (data, offsets), band=BAND)  # noqa: E731
    anchor = dtaidistance_rerank(q, data, offsets, BAND, ndim=True)
    np.testing.assert_allclose(ours_e(), anchor(), rtol=1e-4)
    t_ours, t_anchor = paired_times(ours_e, anchor, repeat=repeat)
    rows.append(row(f"dtw_rerank 128-d euclidean 250 vs {n128}x(250..400), band {BAND}", t_ours,
                    "dtaidistance dtw_ndim.distance_matrix_fast", t_anchor,
                    f"{cells / 1e6:.1f} Mcells; ours {cells / t_ours / 1e6:.0f} Mcells/s, "
                    f"anchor {cells / t_anchor / 1e6:.0f} Mcells/s"))
    ours_c = lambda: chadsp.dtw_rerank(q, (data, offsets), band=BAND, metric="cosine")  # noqa: E731
    t_c, t_e = paired_times(ours_c, ours_e, repeat=repeat)
    rows.append(row(f"dtw_rerank 128-d cosine 250 vs {n128}x(250..400), band {BAND}", t_c,
                    "ours, euclidean (same cells)", t_e,
                    f"cosine {cells / t_c / 1e6:.0f} Mcells/s, {2 * 128 * cells / t_c / 1e9:.0f} GFLOP/s"))
    return rows


def main(argv=None) -> None:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    print(f"{'case':62s} {'ours':>10s} {'anchor':>10s} {'ratio':>7s}  anchor / note")
    for r in cases(quick=quick):
        print(f"{r['case']:62s} {r['ours_s'] * 1e3:8.2f}ms {r['anchor_s'] * 1e3:8.2f}ms "
              f"{r['anchor_s'] / r['ours_s']:6.1f}x  {r['anchor']}; {r['note']}")


if __name__ == "__main__":
    main()
