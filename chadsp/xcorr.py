"""Sliding Pearson cross-correlation, peak picking and fragment matching (DESIGN.md section 2).

The similarity of a query block Q (Tq x D) with a target T (Tt x D) at lag ``l`` is the Pearson
correlation of ``Q.ravel()`` and ``T[l:l+Tq].ravel()`` for ``l = 0 .. Tt - Tq``; a block whose variance
is at most 1e-10 of its mean square (numerically constant) scores 0. It is the curve that
:func:`chadsp.max_pearson` maximises.
"""
from __future__ import annotations

import math
import os

import numpy as np
import scipy.fft as sfft

from . import _backend
from ._checks import as_sequence_pair, as_signal, check_distance, check_float

__all__ = ["xcorr", "find_peaks", "xcorr_match"]

MATCH_DTYPE = np.dtype([("lag", np.int64), ("score", np.float32), ("relevant", np.bool_)])

# Cost model of method="auto" (seconds), fitted to `python bench/bench_correlation.py --calibrate` on the
# development machine (AVX-512, one thread). Direct: a fixed call cost, a per-lag cost (row statistics
# of D values, the normalisation) and the multiply-adds Tq * L * ceil(D / 16) * 16 (1-D signals: the
# query padded to a multiple of 16 samples). FFT: two real transforms of N = _fft_len(Tt) >= Tt
# points per channel, the products and one inverse transform, about D * N * log2(N) units.
_DIRECT_FIXED = 5e-5
_DIRECT_PER_LAG = 2.2e-8
_DIRECT_PER_LAG_PER_D = 6e-10
_DIRECT_PER_MAC = 3e-11
_FFT_FIXED = 1e-4
_FFT_PER_UNIT = 5.2e-9
# Work (multiply-adds) below which the direct kernel runs on one thread (about 20 ms of work): on a
# busy machine the end-of-region wait for a descheduled second thread costs a scheduler period
# (4..30 ms), more than splitting smaller work gains.
_PARALLEL_MACS = 5e8


def _direct_macs(tq: int, tt: int, d: int) -> float:
    lags = tt - tq + 1
    if d == 1:
        return float(-(-tq // 16) * 16) * lags
    return float(tq) * lags * (-(-d // 16) * 16)


def _choose_method(tq: int, tt: int, d: int) -> str:
    lags = tt - tq + 1
    direct = (_DIRECT_FIXED + lags * (_DIRECT_PER_LAG + _DIRECT_PER_LAG_PER_D * d)
              + _DIRECT_PER_MAC * _direct_macs(tq, tt, d))
    n = _fft_len(tt)
    fft = _FFT_FIXED + _FFT_PER_UNIT * d * n * max(math.log2(n), 1.0)
    return "direct" if direct <= fft else "fft"


def _fft_len(tt: int) -> int:
    """A transform length >= tt that pocketfft handles fast: the smallest 2**k * m, m in (1, 3, 5, 9, 15).

    Lengths with a large power of two beat the smallest 5-smooth length (scipy.fft.next_fast_len)
    even when a little longer: 327680 = 2**16 * 5 transforms in 3.4 ms against 4.7 ms for 320000.
    """
    best = None
    for m in (1, 3, 5, 9, 15):
        k = max(0, math.ceil(math.log2(max(tt, 1) / m)))
        n = m << k
        while n < tt:
            n *= 2
        while n % 2 == 0 and n // 2 >= tt:
            n //= 2
        best = n if best is None or n < best else best
    return best


def _fft_workers(jobs: int) -> int:
    return max(1, min(jobs, os.cpu_count() or 1))


def _fft_numerator(q: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float, float]:
    """num[l] = dot(qc, t[l:l+Tq] - shift) for the centred query qc, by float32 real FFTs.

    The transforms are circular of length N = _fft_len(Tt) >= Tt, which is all the valid lags
    need (no wrap-around reaches them): shorter than the Tt + Tq - 1 of a full linear correlation.
    Both signals are centred first (the query on its mean, the target on its global mean), which keeps
    the FFT's rounding (relative to the signals' energy) small next to the centred products.
    """
    tq, d = q.shape
    tt = t.shape[0]
    qd = q.astype(np.float64)
    qc = (qd - qd.mean()).astype(np.float32)
    shift = float(t.mean(dtype=np.float64))
    n = _fft_len(tt)
    workers = -1 if d > 1 else 1
    if d == 1:
        # both forward transforms in one batched call, so that scipy.fft can run them on two threads
        pair = np.empty((2, n), dtype=np.float32)
        np.subtract(t[:, 0], np.float32(shift), out=pair[0, :tt])
        pair[0, tt:] = 0.0
        pair[1, :tq] = qc[:, 0]
        pair[1, tq:] = 0.0
        f = sfft.rfft(pair, axis=1, workers=_fft_workers(2))
        ft, fq = f[0], f[1]
    else:
        tc = t - np.float32(shift)
        ft = sfft.rfft(tc, n=n, axis=0, workers=workers)
        fq = sfft.rfft(qc, n=n, axis=0, workers=workers)
    np.conjugate(fq, out=fq)
    ft *= fq
    prod = ft if d == 1 else ft.sum(axis=1)
    num = sfft.irfft(prod, n=n)[: tt - tq + 1]
    return np.ascontiguousarray(num, dtype=np.float32), shift, float(qc.sum(dtype=np.float64))


def xcorr(query, target, method: str = "auto") -> np.ndarray:
    """Pearson correlation of ``query`` with every same-length block of ``target``.

    Parameters
    ----------
    query : array_like, shape (Tq, D) or (Tq,)
        At least one frame; float64/non-contiguous input is converted to float32.
    target : array_like, shape (Tt, D) or (Tt,)
        Same D, ``Tt >= Tq`` (a longer query is a ValueError; :func:`chadsp.max_pearson` swaps instead).
    method : {"auto", "direct", "fft"}
        "direct": the C kernel of :func:`chadsp.max_pearson` (short queries, D = 128); "fft": float32
        real FFTs (scipy.fft) summed over the D channels, then the same normalisation in C, with
        float64 window statistics (long 1-D signals); "auto" picks by a calibrated cost model. On
        signals of even loudness both agree to about 1e-5; the FFT's rounding is relative to the
        whole target's energy, so blocks much quieter than the rest of the target are more exact
        with "direct".

    Returns
    -------
    float32[Tt - Tq + 1]
        The correlation at lags 0 .. Tt - Tq, in [-1, 1]; 0 where either block is constant.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> t = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    >>> c = chadsp.xcorr(t[200:300], t)
    >>> int(c.argmax()), round(float(c.max()), 4)
    (200, 1.0)
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__} {method!r}")
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    q, t = as_sequence_pair(query, target, allow_empty=True)
    tq, d = q.shape
    tt = t.shape[0]
    if tq == 0:
        raise ValueError(f"query must have at least one frame, got shape {q.shape}")
    if tq > tt:
        raise ValueError(f"query is longer than target: query has {tq} frames, target has {tt}; "
                         "xcorr slides the query inside the target (max_pearson swaps them instead)")
    if method == "auto":
        method = _choose_method(tq, tt, d)
    if method == "direct":
        threads = 0 if _direct_macs(tq, tt, d) >= _PARALLEL_MACS else 1
        return _backend.impl.pearson_curve(q, t, threads)
    num, shift, qsum = _fft_numerator(q, t)
    return _backend.impl.pearson_normalize(q, t, num, shift, qsum)


def _peaks(x: np.ndarray, height: float, distance: int | None) -> np.ndarray:
    """find_peaks on a checked float64 array (edges may hold -inf)."""
    peaks = _backend.impl.local_maxima(x, height)
    if distance is not None and distance > 1 and peaks.size > 1:
        order = np.ascontiguousarray(np.argsort(x[peaks]), dtype=np.int64)   # the call scipy makes
        return peaks[_backend.impl.select_by_distance(peaks, order, distance)]
    return peaks.copy()      # not a view of a larger buffer


def find_peaks(curve, height: float | None = None, distance: float | None = None) -> np.ndarray:
    """Indices of the local maxima of ``curve``: ``scipy.signal.find_peaks(curve, height=, distance=)[0]``.

    Parameters
    ----------
    curve : array_like, shape (n,)
        Finite values (compared in float64, as scipy does).
    height : float, optional
        Keep peaks with ``curve[peak] >= height`` (a scalar; scipy's (min, max) form is not supported).
    distance : float, optional
        ``>= 1``: peaks closer than ``ceil(distance)`` samples are removed, the taller kept first; ties
        broken exactly as scipy (the same ``np.argsort`` of the heights).

    Returns
    -------
    int64[k]
        Increasing indices. A peak is a sample, or the middle (rounded down) of a flat run, with a
        strictly smaller neighbour on both sides; the first and last samples are never peaks.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> chadsp.find_peaks(np.array([0, 2, 1, 3, 3, 3, 0, 1, 0.5]), height=1.5, distance=3)
    array([1, 4])
    """
    x = as_signal(curve, "curve", dtype=np.float64)
    h = -math.inf if height is None else check_float(height, "height")
    return _peaks(x, h, check_distance(distance))


def xcorr_match(fragment, target, *, rel: float = 0.5, irrel: float = 0.3,
                distance: float | None = None) -> np.ndarray:
    """Every occurrence of ``fragment`` in ``target``: the peaks of :func:`xcorr` scoring ``>= irrel``.

    This is the matching stage of CHAD's Algorithm 1: a peak with score ``>= rel`` is a relevant
    (confident) match, one in ``[irrel, rel)`` is uncertain.

    Parameters
    ----------
    fragment : array_like, shape (Tq, D) or (Tq,)
    target : array_like, shape (Tt, D) or (Tt,)
        ``Tt >= Tq`` (else ValueError).
    rel, irrel : float
        Thresholds with ``-1 <= irrel <= rel <= 1``.
    distance : float, optional
        Minimum distance between matches in frames (default: the fragment length, so matches do not
        overlap); the higher peak wins, as in :func:`find_peaks`.

    Returns
    -------
    numpy structured array with fields ``lag`` (int64), ``score`` (float32), ``relevant`` (bool)
        Sorted by score, highest first (ties: smaller lag first). Unlike ``scipy.signal.find_peaks``,
        the first and last lags can be matches (the curve is padded with -inf on both sides), so a
        fragment at the very start or end of the target, or as long as it, is found.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> t = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    >>> m = chadsp.xcorr_match(t[120:150], t)
    >>> int(m["lag"][0]), float(m["score"][0]) > 0.99, bool(m["relevant"][0])
    (120, True, True)
    """
    irrel_v = check_float(irrel, "irrel", minimum=-1.0, maximum=1.0)
    rel_v = check_float(rel, "rel", minimum=-1.0, maximum=1.0)
    if irrel_v > rel_v:
        raise ValueError(f"irrel must be <= rel, got irrel={irrel_v} and rel={rel_v}")
    dist = check_distance(distance)
    curve = xcorr(fragment, target)
    if dist is None:
        dist = int(np.asarray(fragment).shape[0])
    padded = np.empty(curve.size + 2, dtype=np.float64)
    padded[0] = padded[-1] = -math.inf
    padded[1:-1] = curve
    lags = _peaks(padded, irrel_v, dist) - 1
    scores = curve[lags]
    order = np.lexsort((lags, -scores.astype(np.float64)))
    out = np.empty(lags.size, dtype=MATCH_DTYPE)
    out["lag"] = lags[order]
    out["score"] = scores[order]
    out["relevant"] = out["score"].astype(np.float64) >= rel_v
    return out
