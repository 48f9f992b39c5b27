"""Max-Pearson sliding match and batched re-ranking (DESIGN.md section 2).

The similarity of a query block Q (Tq x D) with a target T (Tt x D) at lag ``l`` is the Pearson
correlation of ``Q.ravel()`` and ``T[l:l+Tq].ravel()``; a block whose variance is at most 1e-10 of its
mean square (numerically constant) scores 0. :func:`max_pearson` and :func:`rerank` return the maximum
of that curve over all lags, computed directly (in C: a register-blocked kernel that sums the diagonals
of ``Q @ T.T`` without storing the product; or numba; statistics in float64).

Conventions shared by both functions (and tested to agree):

- ``lag`` is the offset that aligns ``query[i]`` with ``target[i + lag]``.
- A target shorter than the query swaps roles: the target slides inside the query over the overlap
  of ``len(target)`` frames, and the lag is ``-k`` for the target aligned with ``query[k:k + Tt]``
  (so ``lag <= 0``). Equal lengths give the single lag 0.
- An empty target (0 frames) scores 0.0 at lag 0, like any block with zero variance.
- Ties: the first maximum, i.e. the lag nearest 0.

Stores of rows: :func:`rerank` (packed pair) and :func:`rerank_ranges` read float32, float16 and int8
rows in place (int8 row ``r`` stands for ``data[r] * scales[r]`` in float32). Float16 and int8 rows are
converted to float32 one tile of about 450 lags at a time inside the kernel (per-thread scratch), never
the whole store; the scores are those of the converted rows.
"""
from __future__ import annotations

import numpy as np

from . import _backend
from ._checks import (STORE_DTYPES, as_sequence, as_sequence_list, as_sequence_pair, check_ranges, check_scales,
                      check_store, check_threads)

__all__ = ["max_pearson", "rerank", "rerank_ranges"]


def _call_rerank(q: np.ndarray, data: np.ndarray, offsets: np.ndarray, threads: int, what: str):
    scores, lags, bad = _backend.impl.rerank(q, data, offsets, threads)
    if bad >= 0:
        raise ValueError(f"{what} must be finite, got a NaN/inf value in candidate {bad}")
    return scores, lags


def _call_ranges(q: np.ndarray, data: np.ndarray, scales, starts: np.ndarray, lengths: np.ndarray, threads: int,
                 what: str, item: str):
    scores, lags, bad = _backend.impl.rerank_ranges(q, data, scales, starts, lengths, threads)
    if bad >= 0:
        extra = " or scale" if data.dtype == np.int8 else ""
        raise ValueError(f"{what} must be finite, got a NaN/inf value{extra} in {item} {bad}")
    return scores, lags


def max_pearson(query, target) -> tuple[float, int]:
    """Maximum over lags of the Pearson correlation of ``query`` sliding along ``target``.

    Parameters
    ----------
    query : array_like, shape (Tq, D) or (Tq,)
        At least one frame. float64 or non-contiguous input is converted to float32.
    target : array_like, shape (Tt, D) or (Tt,)
        Same D. Shorter than the query: the roles swap (see the module notes; ``lag <= 0``).
        Empty: ``(0.0, 0)``.

    Returns
    -------
    (score, lag) : (float, int)
        The best correlation in [-1, 1] and the lag aligning ``query[i]`` with ``target[i + lag]``;
        the first maximum (lag nearest 0) on ties. ``score == xcorr(query, target).max()``.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> t = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    >>> score, lag = chadsp.max_pearson(t[30:40], t)
    >>> round(score, 4), lag
    (1.0, 30)
    """
    q, t = as_sequence_pair(query, target, allow_empty=True)
    if q.shape[0] == 0:
        raise ValueError(f"query must have at least one frame, got shape {q.shape}")
    offsets = np.array([0, t.shape[0]], dtype=np.int64)
    scores, lags = _call_rerank(q, t, offsets, 1, "target")
    return float(scores[0]), int(lags[0])


def rerank(query, candidates, *, threads: int | None = None, scales=None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`max_pearson` of ``query`` against many candidates, in parallel.

    Parameters
    ----------
    query : array_like, shape (Tq, D) or (Tq,)
    candidates : list of (Ti, D) arrays, or a packed pair ``(data, offsets)``
        The packed pair is the fast path: ``data`` C-contiguous ``(sum Ti, D)`` of float32, float16 or
        int8 rows (a memory map is fine) and ``offsets`` int64 ``[n + 1]`` non-decreasing within
        ``[0, len(data)]``; candidate ``k`` is ``data[offsets[k]:offsets[k + 1]]``. It is scored in place,
        never copied (such a ``data`` is not scanned for NaN in Python; a NaN/inf met while scoring raises
        ``ValueError`` afterwards); float16/int8 rows are converted tile by tile inside the kernel. Other
        dtypes are converted to float32 first (a copy), and so is a list (concatenated).
        Candidates that are not one contiguous run of a store: :func:`rerank_ranges`.
    threads : int, optional
        Threads across candidates (None or 0: all cores; OpenMP in C, numba's threads otherwise). Scratch memory is
        O(threads x (2240 + Tq) x D), independent of the candidates' total size. The GIL is released.
    scales : array_like, shape (len(data),), optional
        int8 ``data`` only: row ``r`` is ``data[r] * scales[r]`` (float32). None: the int8 values as they are.

    Returns
    -------
    scores : float32[n]
        Best correlation per candidate; an empty candidate scores 0.0 (lag 0), a candidate shorter
        than the query slides inside it (lag <= 0), as in :func:`max_pearson`.
    lags : int64[n]

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> rng = np.random.default_rng(0)
    >>> songs = [rng.standard_normal((n, 16)).astype(np.float32) for n in (50, 80, 60)]
    >>> scores, lags = chadsp.rerank(songs[1][20:30], songs)
    >>> int(scores.argmax()), int(lags[1])
    (1, 20)
    """
    q = as_sequence(query, "query")
    data, offsets = as_sequence_list(candidates, "candidates", q.shape[1], in_place=STORE_DTYPES)
    sc = check_scales(scales, data)
    nt = check_threads(threads)
    if data.dtype == np.float32:
        return _call_rerank(q, data, offsets, nt, "candidates data")
    return _call_ranges(q, data, sc, offsets[:-1], np.diff(offsets), nt, "candidates data", "candidate")


def rerank_ranges(query, data, starts, lengths, *, threads: int | None = None,
                  scales=None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rerank` of row ranges of one packed store, in one call: candidate ``k`` is
    ``data[starts[k]:starts[k] + lengths[k]]``.

    The ranges need not be contiguous, ordered or disjoint, so a searcher passes its candidate songs'
    rows as they lie in the index's store, with no gathering copy and no per-song call. The results are
    those of :func:`rerank` on the gathered candidates (the same scores and lags, exactly).

    Parameters
    ----------
    query : array_like, shape (Tq, D) or (Tq,)
    data : ndarray, shape (N, D)
        The store's rows: float32, float16 or int8, C-contiguous (a memory map is fine), read in place and
        not scanned (a NaN/inf met while scoring raises ``ValueError`` naming the range); float16/int8
        rows are converted to float32 inside the kernel one tile (about 450 lags) at a time. Other
        dtypes are converted to float32 first (a copy).
    starts, lengths : array_like of int, shape (n,)
        ``starts >= 0``, ``lengths >= 0``, ``starts + lengths <= N``. A range shorter than the query
        slides inside it (lag <= 0); an empty one scores 0.0 at lag 0.
    threads : int, optional
        Threads across ranges (None or 0: all cores). Scratch is O(threads x (2240 + Tq) x D), whatever
        the store's size. The GIL is released.
    scales : array_like, shape (N,), optional
        int8 ``data`` only: row ``r`` is ``data[r] * scales[r]`` in float32 (per-row quantisation). None:
        the int8 values as they are. float32 C-contiguous scales are used in place.

    Returns
    -------
    scores : float32[n]
    lags : int64[n]
        As :func:`rerank`: the best correlation of each range and the lag of ``query[i]`` on
        ``data[starts[k] + i + lag]``.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> rng = np.random.default_rng(0)
    >>> store = rng.standard_normal((300, 16)).astype(np.float16)
    >>> scores, lags = chadsp.rerank_ranges(store[120:130], store, [200, 100, 0], [60, 50, 40])
    >>> int(scores.argmax()), int(lags[1]), round(float(scores[1]), 4)
    (1, 20, 1.0)
    """
    q = as_sequence(query, "query")
    arr = check_store(data, "data", q.shape[1])
    st, ln = check_ranges(starts, lengths, arr.shape[0])
    sc = check_scales(scales, arr)
    nt = check_threads(threads)
    return _call_ranges(q, arr, sc, st, ln, nt, "data", "range")
