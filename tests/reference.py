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
