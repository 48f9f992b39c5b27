"""The numba backend: the kernels of ``csrc/`` as numba functions (njit; prange where C uses OpenMP).

The same functions, with the same signatures, as ``chadsp._c``: arguments arrive checked by
``chadsp._checks`` (C-contiguous arrays of the kernel's dtype, ``threads`` 0 for all cores); these
wrappers allocate outputs, flatten arrays to 1-D views and call the compiled kernels. Kernels compile on
their first call and are cached on disk (``cache=True``, in ``__pycache__``), so a process pays the
compilation once per machine. The GIL is released while they run (``nogil``).

Threads: ``threads`` sets numba's thread count for the call (``numba.set_num_threads``, thread-local);
all cores is numba's ``NUMBA_NUM_THREADS``. Parallel kernels need a thread-safe threading layer for
calls from several Python threads at once: ``tbb`` or ``omp`` is requested unless ``NUMBA_THREADING_LAYER``
is set; where only ``workqueue`` exists, parallel calls are serialised by a lock. (GNU OpenMP, numba's
``omp`` layer, is not fork-safe: fork worker processes before the first parallel call, or spawn them.)
"""
from __future__ import annotations

import importlib
import os
import threading
from contextlib import contextmanager

import numba
import numpy as np

from . import correlation as _corr, dtw as _dtw, silence as _sil

NAME = "numba"


def _threadsafe_layer() -> bool:
    """Ask numba for tbb or omp (thread-safe) unless the user chose a layer; True when one is loadable."""
    chosen = os.environ.get("NUMBA_THREADING_LAYER", "").strip().lower()
    if chosen:
        return chosen in ("tbb", "omp", "safe", "threadsafe")
    for mod in ("numba.np.ufunc.tbbpool", "numba.np.ufunc.omppool"):
        try:
            importlib.import_module(mod)
        except Exception:   # a missing shared library: ImportError or OSError
            continue
        numba.config.THREADING_LAYER = "threadsafe"
        return True
    return False


_LOCK = None if _threadsafe_layer() else threading.Lock()


@contextmanager
def _threads(threads: int):
    """numba's thread count for one parallel call (0: all), restored afterwards."""
    nt = max_threads() if threads <= 0 else min(threads, max_threads())
    old = numba.get_num_threads()
    if _LOCK is not None:
        _LOCK.acquire()
    try:
        numba.set_num_threads(nt)
        yield
    finally:
        numba.set_num_threads(old)
        if _LOCK is not None:
            _LOCK.release()


def max_threads() -> int:
    """Threads of ``threads=None``: numba's ``NUMBA_NUM_THREADS``."""
    return int(numba.config.NUMBA_NUM_THREADS)


def _flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view of a C-contiguous array (a memory map becomes a plain ndarray view, not a copy)."""
    return np.asarray(a).reshape(-1)


# ------------------------------------------------------------------------------------------ silence
def rms_db(x: np.ndarray, frame_length: int, hop_length: int, center: bool, n_frames: int) -> np.ndarray:
    return _sil.rms_db(x, frame_length, hop_length, center, n_frames)


def split(x: np.ndarray, top_db: float, frame_length: int, hop_length: int, n_frames: int) -> np.ndarray:
    return _sil.split(x, top_db, frame_length, hop_length, n_frames)


def merge_fragments(iv: np.ndarray, max_pause: int, min_len: int, max_len: int) -> np.ndarray:
    return _sil.merge_fragments(iv, max_pause, min_len, max_len)


# -------------------------------------------------------------------------------------- correlation
def pearson_curve(q: np.ndarray, t: np.ndarray, threads: int) -> np.ndarray:
    (tq, d), tt = q.shape, t.shape[0]
    out = np.empty(tt - tq + 1, dtype=np.float32)
    with _threads(threads):
        _corr.pearson_curve(_flat(q), tq, d, _flat(t), tt, out)
    return out


def pearson_normalize(q: np.ndarray, t: np.ndarray, num: np.ndarray, shift: float, qsum: float) -> np.ndarray:
    (tq, d), tt = q.shape, t.shape[0]
    out = np.empty(tt - tq + 1, dtype=np.float32)
    _corr.pearson_normalize(_flat(q), tq, d, _flat(t), tt, num, float(shift), float(qsum), out)
    return out


def local_maxima(x: np.ndarray, height: float) -> np.ndarray:
    peaks = np.empty(x.shape[0] // 2 + 1, dtype=np.int64)
    return peaks[:_corr.local_maxima(x, float(height), peaks)]


def select_by_distance(peaks: np.ndarray, order: np.ndarray, distance: int) -> np.ndarray:
    keep = np.empty(peaks.size, dtype=np.bool_)
    _corr.select_by_distance(peaks, order, distance, keep)
    return keep


def rerank(q: np.ndarray, data: np.ndarray, offsets: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores, lags, bad): ``bad`` is the first candidate in which a NaN/inf was met, or -1."""
    n = offsets.size - 1
    scores = np.zeros(n, dtype=np.float32)
    lags = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=np.bool_)
    if n:
        with _threads(threads):
            _corr.rerank(_flat(q), q.shape[0], q.shape[1], _flat(data), offsets, scores, lags, bad)
    hit = np.flatnonzero(bad)
    return scores, lags, int(hit[0]) if hit.size else -1


_F16_TABLE = None


def _f16_table() -> np.ndarray:
    """float32 value of every float16 bit pattern (numba has no float16 arrays)."""
    global _F16_TABLE
    if _F16_TABLE is None:
        _F16_TABLE = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    return _F16_TABLE


def rerank_ranges(q: np.ndarray, data: np.ndarray, scales, starts: np.ndarray, lengths: np.ndarray,
                  threads: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores, lags, bad) of the row ranges of ``data`` (float32, float16 or int8 rows; ``scales`` for int8)."""
    n = starts.size
    scores = np.zeros(n, dtype=np.float32)
    lags = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=np.bool_)
    if n:
        (tq, d), flat = q.shape, _flat(data)
        with _threads(threads):
            if data.dtype == np.float16:
                _corr.rerank_ranges_f16(_flat(q), tq, d, flat.view(np.uint16), _f16_table(), starts, lengths,
                                        scores, lags, bad)
            elif data.dtype == np.int8:
                sc = np.ones(1, np.float32) if scales is None else scales
                _corr.rerank_ranges_i8(_flat(q), tq, d, flat, sc, scales is not None, starts, lengths, scores,
                                       lags, bad)
            else:
                _corr.rerank_ranges_f32(_flat(q), tq, d, flat, starts, lengths, scores, lags, bad)
    hit = np.flatnonzero(bad)
    return scores, lags, int(hit[0]) if hit.size else -1


# ---------------------------------------------------------------------------------------------- dtw
def dtw_batch(q: np.ndarray, data: np.ndarray, offsets: np.ndarray, band: int, metric: int,
              threads: int) -> np.ndarray:
    out = np.empty(offsets.size - 1, dtype=np.float32)
    if out.size:
        with _threads(threads):
            _dtw.dtw_batch(_flat(q), q.shape[0], q.shape[1], _flat(data), offsets, band, metric, out)
    return out


def subsequence_dtw(q: np.ndarray, t: np.ndarray, band: int, metric: int, threads: int) -> tuple[float, int, int]:
    (n, dim), m = q.shape, t.shape[0]
    if band < 0:
        c, start, end = _dtw.subsequence_free(_flat(q), n, _flat(t), m, dim, metric)
    else:
        with _threads(threads):
            c, start, end = _dtw.subsequence_banded(_flat(q), n, _flat(t), m, dim, band, metric)
    cost = float(np.sqrt(np.float64(c))) if metric == _dtw.EUCLIDEAN else float(c)
    return cost, int(start), int(end)
