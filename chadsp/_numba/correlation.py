"""numba kernels of csrc/pearson.c and csrc/xcorr.c: sliding Pearson correlation, its FFT finishing
step, batched max-Pearson re-ranking, and scipy's peak picking.

The similarity at lag l of a query Q (tq x d) with a target T (tt x d) is the Pearson correlation of
Q.ravel() and T[l:l+tq].ravel() (n = tq*d values); a block whose variance is <= ZERO_VAR_REL of its
mean square scores 0. As in C:

- the query is centred once in double (stored as float32 ``qc``, its exact centred sum of squares
  ``qss`` and the sum ``qsum`` of the stored values kept); the numerator at lag l is
  ``dot(qc, T_l) - mean(T_l) * qsum``.
- dot products: the window of lag l is the contiguous run ``t[l*d : l*d + n]`` of the flat target, so
  BLK lags at a time share each load of ``qc`` (BLK accumulators, the k loop vectorised by LLVM); every
  lag of a segment takes that same path (the last block overlaps the one before), so equal blocks get
  bit-equal dot products and ties go to the first lag as in C.
- window statistics from per-row sums in double: summed exactly for every lag when tq <= 64 (in the
  same order for every lag, vectorised across lags), otherwise exactly every tq lags and updated by
  add/subtract in between.
- lags are processed in segments of SEG: scratch is O(SEG + tq); ``pearson_curve`` spreads segments over
  threads (prange), ``rerank`` and ``rerank_ranges_*`` spread candidates (float16/int8 rows converted to
  float32 one candidate at a time).

Arrays arrive flattened (1-D float32 views of C-contiguous (rows, d) arrays) and checked.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

ZERO_VAR_REL = 1e-10
SEG = 2240           # lags per segment (C: RW * NL * 10)
BLK = 8              # lags per dot-product block
EXACT_TQ = 64        # window sums are exact for every lag up to this query length
FAST = {"reassoc", "contract", "nsz"}   # vectorised reductions; no nnan/ninf (NaN is detected)
_JIT = dict(cache=True, nogil=True)


# ---------------------------------------------------------------------------------------------- helpers
@njit(fastmath=FAST, **_JIT)
def _sums(x):
    """(sum, sum of squares) of a 1-D array, in double (vectorised)."""
    s = 0.0
    sq = 0.0
    for k in range(x.shape[0]):
        v = np.float64(x[k])
        s += v
        sq += v * v
    return s, sq


@njit(**_JIT)
def _moments(x, n):
    """(mean, centred sum of squares, constant) of x[0:n] in double; constant: variance <= ZERO_VAR_REL of
    the mean square (such a block scores 0)."""
    s, sq = _sums(x[:n])
    m = s / n
    ss = 0.0
    for k in range(n):
        c = np.float64(x[k]) - m
        ss += c * c
    return m, ss, not (ss > ZERO_VAR_REL * sq)


@njit(**_JIT)
def _prepare(x, n):
    """Centre x[0:n] in double: (qc float32, qsum of the stored values, exact centred qss, constant)."""
    m, ss, constant = _moments(x, n)
    qc = np.empty(n, dtype=np.float32)
    qs = 0.0
    for k in range(n):
        qc[k] = np.float32(np.float64(x[k]) - m)
        qs += np.float64(qc[k])
    return qc, qs, ss, constant


@njit(**_JIT)
def _row_sums(t, r0, nrows, d, rs, rq):
    """rs[r], rq[r]: sum and sum of squares of row r0 + r, in double."""
    for r in range(nrows):
        # slices: no negative-index wrap in the inner loops
        rs[r], rq[r] = _sums(t[(r0 + r) * d:(r0 + r + 1) * d])


@njit(fastmath=FAST, **_JIT)
def _dots(qc, n, t, base, d, nlag, out):
    """out[l] = dot(qc[0:n], t[base + l*d : base + l*d + n]) for l < nlag, float32 accumulation."""
    if nlag < BLK:
        for l in range(nlag):
            w = t[base + l * d:base + l * d + n]
            acc = np.float32(0.0)
            for k in range(n):
                acc += qc[k] * w[k]
            out[l] = acc
        return
    l = 0
    while l < nlag:
        if l + BLK > nlag:
            l = nlag - BLK          # the last block overlaps: every lag through the same code
        o = base + l * d
        w0 = t[o:o + n]
        w1 = t[o + d:o + d + n]
        w2 = t[o + 2 * d:o + 2 * d + n]
        w3 = t[o + 3 * d:o + 3 * d + n]
        w4 = t[o + 4 * d:o + 4 * d + n]
        w5 = t[o + 5 * d:o + 5 * d + n]
        w6 = t[o + 6 * d:o + 6 * d + n]
        w7 = t[o + 7 * d:o + 7 * d + n]
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = np.float32(0.0)
        for k in range(n):
            qv = qc[k]
            a0 += qv * w0[k]
            a1 += qv * w1[k]
            a2 += qv * w2[k]
            a3 += qv * w3[k]
            a4 += qv * w4[k]
            a5 += qv * w5[k]
            a6 += qv * w6[k]
            a7 += qv * w7[k]
        out[l] = a0
        out[l + 1] = a1
        out[l + 2] = a2
        out[l + 3] = a3
        out[l + 4] = a4
        out[l + 5] = a5
        out[l + 6] = a6
        out[l + 7] = a7
        l += BLK


@njit(**_JIT)
def _correlation(dot, ws, wq, inv_n, qsum, qss):
    ss = wq - ws * ws * inv_n
    if not (ss > ZERO_VAR_REL * wq):
        return 0.0
    r = (dot - ws * inv_n * qsum) / math.sqrt(qss * ss)
    return min(max(r, -1.0), 1.0)


@njit(**_JIT)
def _segment(qc, tq, d, qsum, qss, t, l0, nlag, rv, scratch):
    """rv[0:nlag] = the correlation at lags l0 .. l0 + nlag - 1 (double); True if a row is not finite.
    scratch: float64 (4, >= nlag + tq) (row sums, row sums of squares, window sums, of squares)."""
    n = tq * d
    nrows = nlag + tq - 1
    rs = scratch[0]
    rq = scratch[1]
    _row_sums(t, l0, nrows, d, rs, rq)
    bad = False
    for r in range(nrows):
        if not np.isfinite(rq[r]):
            bad = True
    _dots(qc, n, t, l0 * d, d, nlag, rv)
    ws = scratch[2]
    wq = scratch[3]
    if tq <= EXACT_TQ:
        # exact sums of tq rows for every lag, in the same order for each (equal blocks: equal sums),
        # vectorised across lags
        ws[:nlag] = 0.0
        wq[:nlag] = 0.0
        for r in range(tq):
            a = rs[r:r + nlag]
            b = rq[r:r + nlag]
            for l in range(nlag):
                ws[l] += a[l]
                wq[l] += b[l]
    else:
        # exact every tq lags, add/subtract of the entering and leaving rows in between
        for l in range(nlag):
            if l % tq == 0:
                x = 0.0
                y = 0.0
                for r in range(l, l + tq):
                    x += rs[r]
                    y += rq[r]
            else:
                x += rs[l + tq - 1] - rs[l - 1]
                y += rq[l + tq - 1] - rq[l - 1]
            ws[l] = x
            wq[l] = y
    inv_n = 1.0 / n
    for l in range(nlag):
        rv[l] = _correlation(np.float64(rv[l]), ws[l], wq[l], inv_n, qsum, qss)
    return bad


@njit(**_JIT)
def _max_over_lags(qc, tq, d, qsum, qss, constant, t, tt):
    """(best, lag, bad): the first maximum over lags 0 .. tt - tq of the prepared query in t (tt >= tq)."""
    if constant:
        return 0.0, 0, False
    nl = tt - tq + 1
    seg = min(SEG, nl)
    rv = np.empty(seg, dtype=np.float64)
    scratch = np.empty((4, seg + tq), dtype=np.float64)
    best = 0.0
    lag = -1
    bad = False
    for l0 in range(0, nl, SEG):
        m = min(SEG, nl - l0)
        bad |= _segment(qc, tq, d, qsum, qss, t, l0, m, rv, scratch)
        for l in range(m):
            if rv[l] > best or lag < 0:
                best = rv[l]
                lag = l0 + l
    return best, lag, bad


# ---------------------------------------------------------------------------------------------- kernels
@njit(parallel=True, **_JIT)
def pearson_curve(q, tq, d, t, tt, out):
    """out[0 : tt - tq + 1] = the correlation at every lag (float32); segments spread over threads."""
    qc, qsum, qss, constant = _prepare(q, tq * d)
    nl = tt - tq + 1
    nseg = (nl + SEG - 1) // SEG
    for s in prange(nseg):
        l0 = s * SEG
        m = min(SEG, nl - l0)
        if constant:
            out[l0:l0 + m] = 0.0
            continue
        rv = np.empty(m, dtype=np.float64)
        _segment(qc, tq, d, qsum, qss, t, l0, m, rv, np.empty((4, m + tq), dtype=np.float64))
        for l in range(m):
            out[l0 + l] = np.float32(rv[l])


@njit(**_JIT)
def _score(qc, qsum, qss, constant, q, tq, d, t, ts):
    """(best, lag, bad) of the prepared query against the float32 rows t (ts rows, flat). A shorter
    candidate slides inside the query (lag = -offset); an empty one scores 0 at lag 0. bad: a NaN/inf
    was met in t (read in place, unchecked)."""
    best = 0.0
    lag = 0
    flag = False
    if ts >= tq:
        best, lag, flag = _max_over_lags(qc, tq, d, qsum, qss, constant, t, ts)
    elif ts > 0:
        cc, csum, css, cconst = _prepare(t, ts * d)
        best, lag, flag = _max_over_lags(cc, ts, d, csum, css, cconst, q, tq)
        flag |= not np.isfinite(css)
        lag = -lag
    return best, lag, flag


@njit(parallel=True, **_JIT)
def rerank(q, tq, d, data, offsets, scores, lags, bad):
    """Best correlation and lag per candidate data[offsets[k]*d : offsets[k+1]*d]; candidates over threads
    (see _score); bad[k]: a NaN/inf was met in candidate k."""
    qc, qsum, qss, constant = _prepare(q, tq * d)
    for k in prange(offsets.shape[0] - 1):
        a = offsets[k]
        ts = offsets[k + 1] - a
        best, lag, flag = _score(qc, qsum, qss, constant, q, tq, d, data[a * d:(a + ts) * d], ts)
        scores[k] = np.float32(best)
        lags[k] = lag
        bad[k] = flag


# Row ranges of a packed store: candidate k is rows [starts[k], starts[k] + lengths[k]). float32 rows are
# read in place; float16 (passed as their uint16 bits, converted through a 65536-entry table) and int8
# rows (times the row's scale) are converted to float32 one candidate at a time.
@njit(parallel=True, **_JIT)
def rerank_ranges_f32(q, tq, d, data, starts, lengths, scores, lags, bad):
    qc, qsum, qss, constant = _prepare(q, tq * d)
    for k in prange(starts.shape[0]):
        a = starts[k]
        ts = lengths[k]
        best, lag, flag = _score(qc, qsum, qss, constant, q, tq, d, data[a * d:(a + ts) * d], ts)
        scores[k] = np.float32(best)
        lags[k] = lag
        bad[k] = flag


@njit(parallel=True, **_JIT)
def rerank_ranges_f16(q, tq, d, bits, table, starts, lengths, scores, lags, bad):
    qc, qsum, qss, constant = _prepare(q, tq * d)
    for k in prange(starts.shape[0]):
        a = starts[k] * d
        m = lengths[k] * d
        t = np.empty(m, dtype=np.float32)
        for j in range(m):
            t[j] = table[bits[a + j]]
        best, lag, flag = _score(qc, qsum, qss, constant, q, tq, d, t, lengths[k])
        scores[k] = np.float32(best)
        lags[k] = lag
        bad[k] = flag


@njit(parallel=True, **_JIT)
def rerank_ranges_i8(q, tq, d, data, scales, has_scales, starts, lengths, scores, lags, bad):
    qc, qsum, qss, constant = _prepare(q, tq * d)
    for k in prange(starts.shape[0]):
        a = starts[k]
        ts = lengths[k]
        t = np.empty(ts * d, dtype=np.float32)
        for r in range(ts):
            sc = scales[a + r] if has_scales else np.float32(1.0)
            for c in range(d):
                t[r * d + c] = np.float32(data[(a + r) * d + c]) * sc
        best, lag, flag = _score(qc, qsum, qss, constant, q, tq, d, t, ts)
        scores[k] = np.float32(best)
        lags[k] = lag
        bad[k] = flag


@njit(**_JIT)
def pearson_normalize(q, tq, d, t, tt, num, shift, qsum, out):
    """The curve from FFT numerators num[l] = dot(qc, t_l - shift): window sums exact every max(tq, 64)
    lags, add/subtract of the entering and leaving rows in between (float64)."""
    n = tq * d
    nl = tt - tq + 1
    _, qss, constant = _moments(q, n)
    if constant:
        out[:nl] = 0.0
        return
    run = max(tq, 64)
    inv_n = 1.0 / n
    ws = 0.0
    wq = 0.0
    for l in range(nl):
        if l % run == 0:
            ws, wq = _sums(t[l * d:(l + tq) * d])
        else:
            leaving = t[(l - 1) * d:l * d]
            entering = t[(l + tq - 1) * d:(l + tq) * d]
            for c in range(d):
                x = np.float64(leaving[c])
                y = np.float64(entering[c])
                ws += y - x
                wq += y * y - x * x
        out[l] = np.float32(_correlation(np.float64(num[l]) + shift * qsum, ws, wq, inv_n, qsum, qss))


@njit(**_JIT)
def local_maxima(x, height, peaks):
    """scipy's _local_maxima_1d (flat peaks: the middle, rounded down) with x >= height; returns the count."""
    m = 0
    i_max = x.shape[0] - 1
    i = 1
    while i < i_max:
        v = x[i]
        if x[i - 1] < v:
            ahead = i + 1
            while ahead < i_max and x[ahead] == v:
                ahead += 1
            if x[ahead] < v and v >= height:
                peaks[m] = (i + ahead - 1) // 2
                m += 1
            i = ahead
        else:
            i += 1
    return m


@njit(**_JIT)
def select_by_distance(peaks, order, distance, keep):
    """scipy's _select_by_peak_distance: by decreasing priority, each kept peak removes closer ones."""
    npk = peaks.shape[0]
    keep[:] = True
    for r in range(npk - 1, -1, -1):
        j = order[r]
        if not keep[j]:
            continue
        k = j - 1
        while k >= 0 and peaks[j] - peaks[k] < distance:
            keep[k] = False
            k -= 1
        k = j + 1
        while k < npk and peaks[k] - peaks[j] < distance:
            keep[k] = False
            k += 1
