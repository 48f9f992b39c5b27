"""Dynamic time warping: banded DTW of two sequences, batched DTW re-ranking, subsequence DTW.

All three share one kernel (``csrc/dtw.c``, or ``chadsp/_numba/dtw.py``) and one cell cost:

- ``metric="euclidean"``: the cost of cell (i, j) is ``sum_d (x[i, d] - y[j, d]) ** 2`` and the result is
  the square root of the best path's sum. This is dtaidistance's ``dtw.distance`` /
  ``dtw_ndim.distance`` (see :func:`banded_dtw` for the exact window mapping).
- ``metric="cosine"``: the cost is ``1 - dot(x[i], y[j])`` and the result is the path sum itself (no
  root). It is meant for L2-normalised rows (fingerprints), where the cost lies in [0, 2]; rows are used
  as given, not normalised here.

Steps are (1, 0), (0, 1) and (1, 1), with no step weights. Inputs are converted to C-contiguous
float32 (the library's fingerprint type) and the DP runs in float32, so results agree with a float64
computation to about 1e-6 relative (the path sum of positive costs has no cancellation).
"""
from __future__ import annotations

import numpy as np

from . import _backend
from ._checks import (as_sequence, as_sequence_list, as_sequence_pair, check_band, check_magnitude, check_metric,
                      check_packed_finite, check_threads)

__all__ = ["banded_dtw", "subsequence_dtw", "dtw_rerank"]


def banded_dtw(x, y, band: int | None = None, metric: str = "euclidean") -> float:
    """DTW distance of two sequences within a band around both diagonals.

    Parameters
    ----------
    x, y : array_like, shape (n,) or (n, D), and (m,) or (m, D)
        The sequences (a 1-D input is D = 1), same D, at least one frame each, finite.
    band : int >= 0 or None
        Cells (i, j) with ``-band - max(0, n - m) <= j - i <= band + max(0, m - n)`` are allowed (a band
        of half-width ``band`` around the diagonal of each end, so the corner (n-1, m-1) is always
        reachable). ``None``: the full matrix. ``band = 0`` with ``n == m`` is the Euclidean distance.
    metric : {"euclidean", "cosine"}
        See the module docstring: euclidean returns ``sqrt(path sum of squared differences)``, cosine
        the path sum of ``1 - dot``.

    Returns
    -------
    float
        The distance (float32 precision; the same value as ``dtw_rerank(x, [y], band, metric)[0]``).

    Notes
    -----
    The same value as dtaidistance with ``window = band + 1`` (``window=None`` for ``band=None``):
    ``dtw.distance(x, y, window=band + 1)`` for 1-D inputs and ``dtw_ndim.distance(x, y, window=band + 1)``
    for (T, D) inputs. dtaidistance's window w allows ``|i - j| < w + |n - m|`` on the side of the longer
    sequence (its C and Python paths, with or without ``use_pruning``, agree on this), which is
    ``|j - i| <= band`` (+ the length difference) for ``w = band + 1``; its ``window=0`` means no band.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> chadsp.banded_dtw(np.array([0., 1, 2]), np.array([0., 1, 1, 2]), band=1)
    0.0
    """
    code = check_metric(metric)
    b = check_band(band)
    xs, ys = as_sequence_pair(x, y, names=("x", "y"))
    check_magnitude(xs, "x")
    check_magnitude(ys, "y")
    offsets = np.array([0, ys.shape[0]], dtype=np.int64)
    return float(_backend.impl.dtw_batch(xs, ys, offsets, b, code, 1)[0])


def dtw_rerank(query, candidates, band: int | None = None, metric: str = "euclidean",
               threads: int | None = None) -> np.ndarray:
    """:func:`banded_dtw` of one query against many candidates, on all cores.

    Parameters
    ----------
    query : array_like, shape (n,) or (n, D)
        At least one frame, finite.
    candidates : list of array_like (Ti, D), or a packed pair ``(data (sum Ti, D), offsets int64[k+1])``
        Candidate c is ``data[offsets[c]:offsets[c+1]]``; the packed form is used in place (no copy) when
        ``data`` is C-contiguous float32. A 1-D query takes 1-D candidates (or (Ti, 1)).
    band, metric
        As in :func:`banded_dtw` (same defaults, same values).
    threads : int or None
        Threads (None or 0: all cores; OpenMP in C, numba's threads otherwise). The GIL is released.

    Returns
    -------
    numpy.ndarray, float32, shape (k,)
        The distance to each candidate; ``inf`` for an empty candidate (no alignment exists).

    Notes
    -----
    In C, candidates are sorted by length and aligned 16 at a time, one per SIMD lane (the DP is
    latency-bound); groups are spread over threads. numba aligns one candidate per thread task.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> q = np.sin(np.linspace(0, 6, 50))
    >>> d = chadsp.dtw_rerank(q, [q[::2], q + 1, q], band=10)
    >>> int(np.argmin(d)), float(d[2])
    (2, 0.0)
    """
    code = check_metric(metric)
    b = check_band(band)
    nt = check_threads(threads)
    q = as_sequence(query, "query")
    check_magnitude(q, "query")
    data, offsets = as_sequence_list(candidates, "candidates", q.shape[1])
    used = data[offsets[0]:offsets[-1]]
    if isinstance(candidates, tuple) and data is candidates[0]:
        # a packed float32 pair is used in place, so as_sequence_list did not scan it
        check_packed_finite(used, "candidates data")
    check_magnitude(used, "candidates")
    if offsets.size == 1:
        return np.empty(0, dtype=np.float32)
    return _backend.impl.dtw_batch(q, data, offsets, b, code, nt)


def subsequence_dtw(query, target, band: int | None = None, metric: str = "euclidean", *,
                    threads: int | None = None) -> tuple[float, int, int]:
    """Best DTW alignment of the whole query with any segment of the target (open begin, open end).

    Parameters
    ----------
    query : array_like, shape (n,) or (n, D)
    target : array_like, shape (m,) or (m, D)
        Same D, at least one frame each, finite. The query may be longer than the target (vertical
        steps absorb the difference; with a band, ``m >= n - band`` is required).
    band : int >= 0 or None
        ``None``: Mueller's subsequence DTW (FMP, section 7.2): ``D(0, j) = c(0, j)`` for every j (a free
        start), the usual recurrence below, the answer ``min_j D(n-1, j)``; the start column is carried
        along the DP (O(m) memory, no full matrix). ``band = b``: the path, started at column s, stays
        within ``|(j - s) - i| <= b`` of the slope-1 line through (0, s): it may neither stall nor run
        ahead by more than b frames. This is computed exactly, as the best over every start s of an
        open-end banded DTW of the query against ``target[s:]``: O(m * n * b) cells, in SIMD lanes of
        16 starts and on ``threads`` threads. A large band gives the same cost as ``band=None``.
    metric : {"euclidean", "cosine"}
        As in :func:`banded_dtw` (euclidean: sqrt of the path sum).
    threads : int or None
        Threads for the banded form (None or 0: all cores).

    Returns
    -------
    (cost, start, end) : (float, int, int)
        The cost and the matched segment ``target[start:end]`` (end exclusive). Ties go to the first
        end column; along the DP to the diagonal, then the vertical, then the horizontal predecessor
        (``band=None``), or to the smallest start (banded). ``banded_dtw(query, target[start:end])``
        equals ``cost`` for ``band=None``.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> t = np.sin(np.linspace(0, 20, 400))
    >>> cost, start, end = chadsp.subsequence_dtw(t[100:160], t)
    >>> cost, start, end
    (0.0, 100, 160)
    """
    code = check_metric(metric)
    b = check_band(band)
    nt = check_threads(threads)
    q, t = as_sequence_pair(query, target, names=("query", "target"))
    check_magnitude(q, "query")
    check_magnitude(t, "target")
    n, m = q.shape[0], t.shape[0]
    if b >= 0 and m < n - b:
        raise ValueError(f"target has {m} frames, fewer than len(query) - band = {n} - {b}: no path stays "
                         f"within the band (widen the band or pass band=None)")
    return _backend.impl.subsequence_dtw(q, t, b, code, nt)
