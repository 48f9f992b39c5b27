"""Plain numpy references of every chadsp kernel: slow, short, and obviously right.

Every fast kernel is tested against the function of the same name here (stumpy's ``naive.py`` model).
Sections follow DESIGN.md section 2.
"""
from __future__ import annotations

import numpy as np

# ============================== silence ==============================

def n_frames(n: int, frame_length: int, hop_length: int, center: bool = True) -> int:
    """librosa's frame count (0 where librosa raises: the padded signal is shorter than a frame)."""
    padded = n + 2 * (frame_length // 2) if center else n
    return 0 if padded < frame_length else 1 + (padded - frame_length) // hop_length


def rms_db(y, frame_length=2048, hop_length=512, center=True) -> np.ndarray:
    """Frame RMS in dB re the loudest frame, power floor 1e-10 (amplitude 1e-5), unclipped (float64)."""
    y = np.asarray(y, dtype=np.float32).astype(np.float64)
    if center:
        y = np.pad(y, frame_length // 2)
    nf = n_frames(len(y), frame_length, hop_length, center=False)
    power = np.array([np.mean(y[k * hop_length:k * hop_length + frame_length] ** 2) for k in range(nf)])
    if nf == 0:
        return power
    level = 10 * np.log10(np.maximum(power, 1e-10))
    return level - 10 * np.log10(max(power.max(), 1e-10))


def silence_mask(db, top_db) -> np.ndarray:
    db = np.asarray(db, dtype=np.float64)
    return db - db.max() <= -top_db if db.size else np.zeros(0, bool)


def split_by_silence(y, top_db, frame_length=2048, hop_length=512) -> np.ndarray:
    """Runs of non-silent frames [a, b) -> samples [a * hop, min(b * hop, len(y))); empty signal: none."""
    n = len(y)
    if n == 0:
        return np.zeros((0, 2), np.int64)
    loud = ~silence_mask(rms_db(y, frame_length, hop_length, True), top_db)
    out, start = [], None
    for k, flag in enumerate(list(loud) + [False]):
        if flag and start is None:
            start = k
        elif not flag and start is not None:
            out.append([min(start * hop_length, n), min(k * hop_length, n)])
            start = None
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def merge_fragments(intervals, max_pause, min_len, max_len) -> np.ndarray:
    """Left to right: join while pause <= max_pause and joined length <= max_len; keep min..max lengths."""
    frags = []
    for s, e in np.asarray(intervals, dtype=np.int64).reshape(-1, 2).tolist():
        if frags and s - frags[-1][1] <= max_pause and e - frags[-1][0] <= max_len:
            frags[-1][1] = e
        else:
            frags.append([s, e])
    kept = [f for f in frags if min_len <= f[1] - f[0] <= max_len]
    return np.array(kept, dtype=np.int64).reshape(-1, 2)



# ============================== end silence ==============================



# ============================== correlation ==============================
# The similarity at lag l is the Pearson correlation of query.ravel() and target[l:l+Tq].ravel(); a
# block whose variance is <= 1e-10 of its mean square (numerically constant) scores 0.

CORR_ZERO_VAR_REL = 1e-10


def _frames(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def pearson_block(a, b) -> float:
    """Pearson correlation of two equally sized blocks, flattened (0 if either is constant)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    ca, cb = a - a.mean(), b - b.mean()
    ssa, ssb = ca @ ca, cb @ cb
    if ssa <= CORR_ZERO_VAR_REL * (a @ a) or ssb <= CORR_ZERO_VAR_REL * (b @ b):
        return 0.0
    return float(np.clip((ca @ cb) / np.sqrt(ssa * ssb), -1.0, 1.0))


def xcorr(query, target) -> np.ndarray:
    """The correlation at every lag 0 .. Tt - Tq, one block at a time."""
    q, t = _frames(query), _frames(target)
    tq = len(q)
    return np.array([pearson_block(q, t[l:l + tq]) for l in range(len(t) - tq + 1)])


def max_pearson(query, target) -> tuple[float, int]:
    """Best (score, lag); a shorter target slides inside the query (lag = -offset); empty: (0.0, 0)."""
    q, t = _frames(query), _frames(target)
    if len(t) == 0:
        return 0.0, 0
    if len(q) <= len(t):
        c = xcorr(q, t)
        return float(c.max()), int(np.argmax(c))
    c = xcorr(t, q)
    return float(c.max()), -int(np.argmax(c))


def rerank(query, candidates) -> tuple[np.ndarray, np.ndarray]:
    """max_pearson against each candidate of a list."""
    res = [max_pearson(query, c) for c in candidates]
    return (np.array([r[0] for r in res], dtype=np.float64), np.array([r[1] for r in res], dtype=np.int64))


def find_peaks(x, height=None, distance=None) -> np.ndarray:
    """Plain loops: local maxima (middle of flat runs, strict neighbours), height, then distance with
    the taller peak kept first (priority order: np.argsort of the heights, as scipy)."""
    x = np.asarray(x, dtype=np.float64)
    peaks = []
    i = 1
    while i < len(x) - 1:
        if x[i - 1] < x[i]:
            j = i + 1
            while j < len(x) - 1 and x[j] == x[i]:
                j += 1
            if x[j] < x[i]:
                peaks.append((i + j - 1) // 2)
                i = j
        i += 1
    peaks = np.array([p for p in peaks if height is None or x[p] >= height], dtype=np.int64)
    if distance is None or len(peaks) < 2:
        return peaks
    dist = np.ceil(distance)
    keep = np.ones(len(peaks), dtype=bool)
    for j in np.argsort(x[peaks])[::-1]:
        if keep[j]:
            close = np.abs(peaks - peaks[j]) < dist
            close[j] = False
            keep[close] = False
    return peaks[keep]


def xcorr_match(fragment, target, rel=0.5, irrel=0.3, distance=None, curve=None) -> list[tuple[int, float, bool]]:
    """(lag, score, relevant) for the peaks of the curve padded with -inf, score >= irrel, best first.

    ``curve``: use this correlation curve instead of :func:`xcorr` (float32 rounding decides ties)."""
    c = xcorr(fragment, target) if curve is None else np.asarray(curve, dtype=np.float64)
    padded = np.concatenate([[-np.inf], c, [-np.inf]])
    dist = len(_frames(fragment)) if distance is None else distance
    lags = find_peaks(padded, height=irrel, distance=dist) - 1
    out = [(int(lag), float(c[lag]), bool(c[lag] >= rel)) for lag in lags]
    return sorted(out, key=lambda m: (-m[1], m[0]))

# ============================== end correlation ==============================



# ============================== dtw ==============================


def _dtw_frames(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def dtw_cost_matrix(x, y, metric="euclidean") -> np.ndarray:
    """Cell costs c[i, j]: squared distance (euclidean) or 1 - dot (cosine)."""
    x, y = _dtw_frames(x), _dtw_frames(y)
    if metric == "euclidean":
        return ((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=2)
    return 1.0 - x @ y.T


def banded_dtw(x, y, band=None, metric="euclidean") -> float:
    """DTW over the cells -band - max(0, n-m) <= j - i <= band + max(0, m-n), steps (1,0), (0,1), (1,1)."""
    c = dtw_cost_matrix(x, y, metric)
    n, m = c.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(n):
        for j in range(m):
            if band is None or -band - max(0, n - m) <= j - i <= band + max(0, m - n):
                acc[i + 1, j + 1] = c[i, j] + min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
    return float(np.sqrt(acc[n, m])) if metric == "euclidean" else float(acc[n, m])


def subsequence_dtw(query, target, band=None, metric="euclidean"):
    """(cost, start, end): the best DTW of the whole query with target[start:end].

    band None: D(0, j) = c(0, j), the start carried along (ties: diagonal, up, left; then the first end).
    band b: per start s, an open-end DTW against target[s:] over |(j - s) - i| <= b; the first best s.
    """
    c = dtw_cost_matrix(query, target, metric)
    n, m = c.shape
    fin = np.sqrt if metric == "euclidean" else (lambda v: v)
    if band is None:
        acc = np.full((n, m), np.inf)
        st = np.zeros((n, m), dtype=np.int64)
        acc[0] = c[0]
        st[0] = np.arange(m)
        for i in range(1, n):
            for j in range(m):
                best, s = (acc[i - 1, j - 1], st[i - 1, j - 1]) if j > 0 else (np.inf, -1)
                if acc[i - 1, j] < best:
                    best, s = acc[i - 1, j], st[i - 1, j]
                if j > 0 and acc[i, j - 1] < best:
                    best, s = acc[i, j - 1], st[i, j - 1]
                acc[i, j], st[i, j] = best + c[i, j], s
        j = int(np.argmin(acc[n - 1]))
        return float(fin(acc[n - 1, j])), int(st[n - 1, j]), j + 1
    best = (np.inf, -1, -1)
    for s in range(m):
        acc = np.full((n + 1, m - s + 1), np.inf)
        acc[0, 0] = 0.0
        for i in range(n):
            for j in range(m - s):
                if abs(j - i) <= band:
                    acc[i + 1, j + 1] = c[i, s + j] + min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
        j = int(np.argmin(acc[n, 1:]))
        if acc[n, j + 1] < best[0]:
            best = (acc[n, j + 1], s, s + j + 1)
    return float(fin(best[0])), best[1], best[2]


# ============================== end dtw ==============================
