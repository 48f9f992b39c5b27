"""numba kernels of csrc/silence.c: frame RMS in dB, silence splitting, fragment merging.

Line for line the C algorithms (see csrc/silence.c for the frame convention): frame powers are means of
squares accumulated in double; where a frame is at most BLOCKS_MAX blocks of g = gcd(frame, hop)
samples, every sample is squared once into a block sum and a frame sums its blocks. Single-threaded,
as in C (the pass is memory-bound). Arguments are checked by chadsp._checks before these run.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

AMIN2 = 1e-10          # the power floor: librosa's amplitude amin = 1e-5, squared
BLOCKS_MAX = 64
# reassociation lets LLVM vectorise the sums of squares (as C's `omp simd reduction`); no nnan/ninf
FAST = {"reassoc", "contract", "nsz"}


@njit(cache=True, nogil=True, fastmath=FAST)
def _sumsq(y, lo, hi):
    """Sum of y[lo:hi]^2, indices clipped to [0, n), in double."""
    lo = max(lo, 0)
    hi = min(hi, y.shape[0])
    s = 0.0
    for i in range(lo, hi):
        v = np.float64(y[i])
        s += v * v
    return s


@njit(cache=True, nogil=True)
def _frame_power(y, fl, hop, center, n_frames):
    n = y.shape[0]
    pad = fl // 2 if center else 0
    a, b = fl, hop
    while b:
        a, b = b, a % b
    g = a
    q, r = fl // g, hop // g
    inv = 1.0 / fl
    power = np.empty(n_frames, dtype=np.float64)
    if q > BLOCKS_MAX:
        for k in range(n_frames):
            lo = k * hop - pad
            power[k] = _sumsq(y, lo, lo + fl) * inv
        return power
    nb = ((n_frames - 1) * hop + fl) // g          # blocks of g padded samples
    blk = np.empty(nb, dtype=np.float64)
    for j in range(nb):
        lo = j * g - pad
        blk[j] = 0.0 if (lo + g <= 0 or lo >= n) else _sumsq(y, lo, lo + g)
    for k in range(n_frames):
        s = 0.0
        for j in range(q):
            s += blk[k * r + j]
        power[k] = s * inv
    return power


@njit(cache=True, nogil=True)
def rms_db(y, fl, hop, center, n_frames):
    """float32 levels in dB re the loudest frame (floor 1e-10 in power), unclipped."""
    out = np.empty(n_frames, dtype=np.float32)
    if n_frames == 0:
        return out
    p = _frame_power(y, fl, hop, center, n_frames)
    pmax = AMIN2
    for k in range(n_frames):
        pmax = max(pmax, p[k])
    for k in range(n_frames):
        out[k] = np.float32(10.0 * math.log10(max(p[k], AMIN2) / pmax))
    return out


@njit(cache=True, nogil=True)
def split(y, top_db, fl, hop, n_frames):
    """Non-silent sample intervals [start, end) of centred frames: librosa.effects.split's rule."""
    n = y.shape[0]
    out = np.empty(((n_frames + 1) // 2, 2), dtype=np.int64)
    p = _frame_power(y, fl, hop, True, n_frames)
    pmax = AMIN2
    for k in range(n_frames):
        pmax = max(pmax, p[k])
    thr = pmax * 10.0 ** (-top_db / 10.0)
    m = 0
    start = -1
    for k in range(n_frames + 1):
        loud = k < n_frames and max(p[k], AMIN2) > thr
        if loud and start < 0:
            start = k
        elif not loud and start >= 0:
            out[m, 0] = min(start * hop, n)
            out[m, 1] = min(k * hop, n)
            m += 1
            start = -1
    return out[:m].copy()


@njit(cache=True, nogil=True)
def merge_fragments(iv, max_pause, min_len, max_len):
    """Left-to-right join (pause <= max_pause, joined length <= max_len), then min_len..max_len kept."""
    n = iv.shape[0]
    out = np.empty((n, 2), dtype=np.int64)
    m = 0
    cs, ce = iv[0, 0], iv[0, 1]
    for i in range(1, n + 1):
        if i < n:
            s, e = iv[i, 0], iv[i, 1]
            if s - ce <= max_pause and e - cs <= max_len:
                ce = e
                continue
        if min_len <= ce - cs <= max_len:
            out[m, 0] = cs
            out[m, 1] = ce
            m += 1
        if i < n:
            cs, ce = iv[i, 0], iv[i, 1]
    return out[:m].copy()
