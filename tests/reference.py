"""Plain numpy references of every chadsp kernel: slow, short, and obviously right.

Every fast kernel is tested against the function of the same name here (stumpy's ``naive.py`` model).
Sections follow DESIGN.md section 2.
"""
from __future__ import annotations

import numpy as np

# ============================== silence ==============================


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


# ============================== end dtw ==============================
