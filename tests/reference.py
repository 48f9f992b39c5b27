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


# ============================== end dtw ==============================
