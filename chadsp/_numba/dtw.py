"""numba kernels of csrc/dtw.c: banded DTW (batched over candidates) and subsequence DTW.

The DP runs in band coordinates as in C: row i holds the cells j = i + lo + k, k = 0 .. W-1, so the
predecessors of (i, k) are prev[k] (diagonal), prev[k + 1] (up) and cur[k - 1] (left), in two rolling
rows of W + 1 float32 cells. Cell costs: euclidean ``sum_d (x - y)^2``, cosine ``1 - dot``, summed in
float32 and clamped to +-COST_MAX like C (so +inf only enters as a penalty). dtw_batch aligns one
candidate per prange iteration (C runs 16 pairs in SIMD lanes per OpenMP task); the banded subsequence
DTW runs 16 consecutive starts in lanes, as C does. Arguments are checked by chadsp._checks first.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

EUCLIDEAN = 0
COSINE = 1
INF = np.float32(np.inf)
COST_MAX = np.float32(1e30)
LANES = 16           # starts per task in the banded subsequence DTW
# reassociation vectorises the cost's sum over D; no nnan/ninf: +inf marks cells outside the band
FAST = {"reassoc", "contract", "nsz"}
_JIT = dict(cache=True, nogil=True)


@njit(fastmath=FAST, **_JIT)
def _cost(xr, yr, dim, metric):
    """The cost of cell (xr, yr) (two rows of dim floats), float32, clamped to [-COST_MAX, COST_MAX]."""
    acc = np.float32(0.0)
    if metric == EUCLIDEAN:
        for c in range(dim):
            df = xr[c] - yr[c]
            acc += df * df
        return min(acc, COST_MAX)
    for c in range(dim):
        acc += xr[c] * yr[c]
    return np.float32(1.0) - max(min(acc, COST_MAX), -COST_MAX)


@njit(**_JIT)
def _cost1(xv, yv, metric):
    """_cost for dim == 1."""
    if metric == EUCLIDEAN:
        df = xv - yv
        return min(df * df, COST_MAX)
    return np.float32(1.0) - max(min(xv * yv, COST_MAX), -COST_MAX)


@njit(**_JIT)
def _pair_band(n, m, band):
    """The band of a pair (n, m) in j - i, clipped to the matrix; band < 0: the full matrix."""
    if band < 0:
        return -(n - 1), m - 1
    return max(-(n - 1), -band - max(0, n - m)), min(m - 1, band + max(0, m - n))


@njit(**_JIT)
def _dtw_pair(x, n, y, m, dim, lo, hi, metric, open_end):
    """DTW of x (n rows) and y (m rows) over the cells lo <= j - i <= hi, from (0, 0).

    Closed end: (D(n-1, m-1), m-1). Open end: (min_j D(n-1, j), its first argmin j). Path sums, no sqrt."""
    w = hi - lo + 1
    prev = np.full(w + 1, INF, dtype=np.float32)
    cur = np.full(w + 1, INF, dtype=np.float32)
    prev[-lo] = 0.0                                   # D(-1, -1) = 0
    for i in range(n):
        k0 = max(0, -i - lo)
        k1 = min(w - 1, m - 1 - i - lo)
        j0 = i + lo + k0
        cnt = k1 - k0 + 1
        pv = prev[k0:k0 + cnt + 1]                   # slices: no negative-index wrap in the cell loop
        cu = cur[k0:k0 + cnt]
        left = INF
        if dim == 1:
            xv = x[i]
            ys = y[j0:j0 + cnt]
            for k in range(cnt):
                c = _cost1(xv, ys[k], metric)
                v = min(min(pv[k], pv[k + 1]) + c, left + c)
                cu[k] = v
                left = v
        else:
            xr = x[i * dim:(i + 1) * dim]
            for k in range(cnt):
                c = _cost(xr, y[(j0 + k) * dim:(j0 + k + 1) * dim], dim, metric)
                v = min(min(pv[k], pv[k + 1]) + c, left + c)
                cu[k] = v
                left = v
        for k in range(k1 + 1, min(w, k1 + 2) + 1):   # cells above k1 still hold row i - 2
            cur[k] = INF
        prev, cur = cur, prev
    if not open_end:
        return prev[m - n - lo], m - 1
    best = INF
    bj = -1
    for k in range(w):
        if prev[k] < best:
            best = prev[k]
            bj = n - 1 + lo + k
    return best, bj


@njit(**_JIT)
def _finish(v, metric):
    """euclidean: the root of the path sum, rounded through double as C; cosine: the sum itself."""
    return np.float32(math.sqrt(np.float64(v))) if metric == EUCLIDEAN else v


@njit(parallel=True, **_JIT)
def dtw_batch(q, n, dim, data, offsets, band, metric, out):
    """out[c] = banded DTW of q (n x dim) and candidate c (rows offsets[c] .. offsets[c+1] of data);
    +inf for an empty candidate. Candidates spread over threads."""
    for c in prange(offsets.shape[0] - 1):
        a = offsets[c]
        m = offsets[c + 1] - a
        if m <= 0:
            out[c] = INF
            continue
        lo, hi = _pair_band(n, m, band)
        v, _ = _dtw_pair(q, n, data[a * dim:(a + m) * dim], m, dim, lo, hi, metric, False)
        out[c] = _finish(v, metric)


@njit(**_JIT)
def _cost_row(xr, t, j0, cnt, big_m, dim, metric, out):
    """out[u] = cost of xr against target column j0 + u for u < cnt; +inf for columns >= big_m."""
    for u in range(cnt):
        j = j0 + u
        if j >= big_m:
            out[u] = INF
        elif dim == 1:
            out[u] = _cost1(xr[0], t[j], metric)
        else:
            out[u] = _cost(xr, t[j * dim:(j + 1) * dim], dim, metric)


@njit(**_JIT)
def subsequence_free(q, n, t, big_m, dim, metric):
    """Mueller's subsequence DTW: D(0, j) = c(0, j), the start column carried along the DP (ties: diagonal,
    up, left; then the first end). Returns (path sum, start, end exclusive)."""
    c = np.empty(big_m, dtype=np.float32)
    dp = np.empty(big_m, dtype=np.float32)
    dc = np.empty(big_m, dtype=np.float32)
    sp = np.empty(big_m, dtype=np.int64)
    sc = np.empty(big_m, dtype=np.int64)
    _cost_row(q[0:dim], t, 0, big_m, big_m, dim, metric, dp)
    for j in range(big_m):
        sp[j] = j
    for i in range(1, n):
        _cost_row(q[i * dim:(i + 1) * dim], t, 0, big_m, big_m, dim, metric, c)
        # j = 0: only the cell above
        left = dp[0] + c[0]
        ls = sp[0]
        dc[0] = left
        sc[0] = ls
        for j in range(1, big_m):
            best = dp[j - 1]                      # ties: diagonal, then up, then left
            bs = sp[j - 1]
            if dp[j] < best:
                best = dp[j]
                bs = sp[j]
            if left < best:
                best = left
                bs = ls
            left = best + c[j]
            ls = bs
            dc[j] = left
            sc[j] = bs
        dp, dc = dc, dp
        sp, sc = sc, sp
    bj = 0
    for j in range(1, big_m):
        if dp[j] < dp[bj]:
            bj = j
    return dp[bj], sp[bj], bj + 1


@njit(parallel=True, **_JIT)
def subsequence_banded(q, n, t, big_m, dim, band, metric):
    """For every start s, an open-end DTW of q against t[s:] over |(j - s) - i| <= band; the first best
    start. Requires big_m >= n - band. Returns (path sum, start, end exclusive).

    As in C, LANES consecutive starts run together (one prange task), lane l = start s0 + l: cell k of
    row i is target column s0 + l + i + lo + k for every lane, so a row's costs are computed once for the
    group (columns past the target cost +inf, which also ends the shorter starts' bands) and the DP's
    lane loop is vectorised."""
    ns = min(big_m - 1, big_m - n + band) + 1
    lo = -min(band, n - 1)
    w = band - lo + 1
    val = np.empty(ns, dtype=np.float32)
    ends = np.empty(ns, dtype=np.int64)
    for g in prange((ns + LANES - 1) // LANES):
        s0 = g * LANES
        prev = np.full((w + 1, LANES), INF, dtype=np.float32)
        cur = np.full((w + 1, LANES), INF, dtype=np.float32)
        crow = np.empty(w + LANES, dtype=np.float32)
        left = np.empty(LANES, dtype=np.float32)
        prev[-lo, :] = 0.0                                  # D(-1, -1) = 0
        for i in range(n):
            k0 = max(0, -i - lo)
            jb = s0 + i + lo                                # target column of cell 0, lane 0
            k1 = min(w - 1, big_m - 1 - jb)                 # lane 0 (the first start) reaches furthest
            if k1 < k0:                                     # defensive: no cell on this row
                cur[:, :] = INF
            else:
                _cost_row(q[i * dim:(i + 1) * dim], t, jb + k0, k1 - k0 + LANES, big_m, dim, metric, crow)
                left[:] = INF
                nl = left.shape[0]      # LANES, read at run time: the lane loop is vectorised, not unrolled
                for k in range(k0, k1 + 1):
                    pk = prev[k]
                    pk1 = prev[k + 1]
                    ck = cur[k]
                    cc = crow[k - k0:k - k0 + nl]
                    for l in range(nl):
                        v = min(min(pk[l], pk1[l]) + cc[l], left[l] + cc[l])
                        ck[l] = v
                        left[l] = v
                for k in range(k1 + 1, min(w, k1 + 2) + 1):   # cells above k1 still hold row i - 2
                    cur[k, :] = INF
            prev, cur = cur, prev
        for l in range(min(LANES, ns - s0)):
            best = INF
            bj = -1
            for k in range(w):
                if prev[k, l] < best:
                    best = prev[k, l]
                    bj = n - 1 + lo + k
            val[s0 + l] = best
            ends[s0 + l] = bj
    bs = 0
    for s in range(1, ns):
        if val[s] < val[bs]:
            bs = s
    return val[bs], bs, bs + ends[bs] + 1
