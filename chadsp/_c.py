"""The C backend: each kernel of the backend interface as one call into the cffi extension (``csrc/``).

Arguments arrive checked (``chadsp._checks``): C-contiguous arrays of the kernel's dtype, integers in
range, ``threads`` 0 for all cores. The functions here only allocate outputs, call C and turn its return
codes into exceptions. ``chadsp._numba`` implements the same functions with the same signatures.
"""
from __future__ import annotations

import numpy as np

try:
    from ._chadsp import ffi, lib  # the cffi extension
except ImportError as exc:
    raise ImportError(
        "chadsp's compiled extension (chadsp._chadsp) is missing or failed to load: "
        f"{exc}. Rebuild it with `pip install -e .` (or `python chadsp/_build.py` for an in-place "
        "build; a C compiler (gcc) with OpenMP is required), or set CHADSP_BACKEND=numba."
    ) from exc

NAME = "c"
_ABI = 1
if lib.chadsp_abi_version() != _ABI or not hasattr(lib, "chadsp_rerank_ranges"):  # pragma: no cover
    raise ImportError("chadsp's compiled extension is stale (ABI mismatch): rebuild it with `pip install -e .`")


def ptr(arr: np.ndarray, ctype: str):
    """A typed C pointer into ``arr``'s buffer (kept alive by the caller holding ``arr``)."""
    return ffi.cast(ctype, ffi.from_buffer(arr, require_writable=False))


def _check_rc(rc: int, what: str) -> int:
    if rc == -1:
        raise MemoryError(f"chadsp.{what}: out of memory for scratch buffers")
    if rc < 0:  # pragma: no cover - the checks in Python make this unreachable
        raise RuntimeError(f"chadsp.{what}: internal error (code {rc}) on arguments that passed the checks; "
                           "please report it")
    return rc


def max_threads() -> int:
    """Threads of ``threads=None``: OpenMP's count."""
    return int(lib.chadsp_max_threads())


# ------------------------------------------------------------------------------------------ silence
def rms_db(x: np.ndarray, frame_length: int, hop_length: int, center: bool, n_frames: int) -> np.ndarray:
    out = np.empty(n_frames, dtype=np.float32)
    if n_frames:
        _check_rc(lib.chadsp_rms_db(ptr(x, "float *"), x.size, frame_length, hop_length, int(center),
                                    ptr(out, "float *"), n_frames), "rms_db")
    return out


def split(x: np.ndarray, top_db: float, frame_length: int, hop_length: int, n_frames: int) -> np.ndarray:
    cap = (n_frames + 1) // 2
    buf = np.empty((cap, 2), dtype=np.int64)
    m = _check_rc(int(lib.chadsp_split(ptr(x, "float *"), x.size, top_db, frame_length, hop_length,
                                       ptr(buf, "int64_t *"), cap)), "split_by_silence")
    return buf[:m].copy()


def merge_fragments(iv: np.ndarray, max_pause: int, min_len: int, max_len: int) -> np.ndarray:
    n = iv.shape[0]
    out = np.empty((n, 2), dtype=np.int64)
    if n == 0:
        return out
    m = _check_rc(int(lib.chadsp_merge_fragments(ptr(iv, "int64_t *"), n, max_pause, min_len, max_len,
                                                 ptr(out, "int64_t *"))), "merge_fragments")
    return out[:m].copy()


# -------------------------------------------------------------------------------------- correlation
def pearson_curve(q: np.ndarray, t: np.ndarray, threads: int) -> np.ndarray:
    out = np.empty(t.shape[0] - q.shape[0] + 1, dtype=np.float32)
    _check_rc(lib.chadsp_pearson_curve(ptr(q, "float *"), q.shape[0], ptr(t, "float *"), t.shape[0], q.shape[1],
                                       threads, ptr(out, "float *")), "xcorr")
    return out


def pearson_normalize(q: np.ndarray, t: np.ndarray, num: np.ndarray, shift: float, qsum: float) -> np.ndarray:
    out = np.empty(t.shape[0] - q.shape[0] + 1, dtype=np.float32)
    _check_rc(lib.chadsp_pearson_normalize(ptr(q, "float *"), q.shape[0], ptr(t, "float *"), t.shape[0],
                                           q.shape[1], ptr(num, "float *"), shift, qsum, ptr(out, "float *")),
              "xcorr")
    return out


def local_maxima(x: np.ndarray, height: float) -> np.ndarray:
    peaks = np.empty(x.shape[0] // 2 + 1, dtype=np.int64)
    count = ffi.new("int64_t *")
    lib.chadsp_local_maxima(ptr(x, "double *"), x.shape[0], height, ptr(peaks, "int64_t *"), count)
    return peaks[: count[0]]


def select_by_distance(peaks: np.ndarray, order: np.ndarray, distance: int) -> np.ndarray:
    keep = np.empty(peaks.size, dtype=np.uint8)
    lib.chadsp_select_by_distance(ptr(peaks, "int64_t *"), peaks.size, ptr(order, "int64_t *"), distance,
                                  ffi.cast("uint8_t *", ffi.from_buffer(keep)))
    return keep.view(np.bool_)


def rerank(q: np.ndarray, data: np.ndarray, offsets: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores, lags, bad): ``bad`` is the first candidate in which a NaN/inf was met, or -1."""
    n = offsets.size - 1
    scores = np.zeros(n, dtype=np.float32)
    lags = np.zeros(n, dtype=np.int64)
    bad = ffi.new("int64_t *")
    _check_rc(lib.chadsp_rerank(ptr(q, "float *"), q.shape[0], q.shape[1], ptr(data, "float *"),
                                ptr(offsets, "int64_t *"), n, threads, ptr(scores, "float *"),
                                ptr(lags, "int64_t *"), bad), "rerank")
    return scores, lags, int(bad[0])


_DTYPES = {np.dtype(np.float32): lib.CHADSP_F32, np.dtype(np.float16): lib.CHADSP_F16, np.dtype(np.int8): lib.CHADSP_I8}


def rerank_ranges(q: np.ndarray, data: np.ndarray, scales, starts: np.ndarray, lengths: np.ndarray,
                  threads: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores, lags, bad) of the row ranges ``[starts[k], starts[k] + lengths[k])`` of ``data`` (float32,
    float16 or int8 rows; ``scales`` float32 per row for int8, or None); ``bad`` as :func:`rerank`."""
    n = starts.size
    scores = np.zeros(n, dtype=np.float32)
    lags = np.zeros(n, dtype=np.int64)
    bad = ffi.new("int64_t *")
    sc = ffi.NULL if scales is None else ptr(scales, "float *")
    _check_rc(lib.chadsp_rerank_ranges(ptr(q, "float *"), q.shape[0], q.shape[1], ptr(data, "void *"),
                                       data.shape[0], _DTYPES[data.dtype], sc, ptr(starts, "int64_t *"), ptr(lengths, "int64_t *"),
                                       n, threads, ptr(scores, "float *"), ptr(lags, "int64_t *"), bad),
              "rerank_ranges")
    return scores, lags, int(bad[0])


# ---------------------------------------------------------------------------------------------- dtw
def dtw_batch(q: np.ndarray, data: np.ndarray, offsets: np.ndarray, band: int, metric: int,
              threads: int) -> np.ndarray:
    k = offsets.size - 1
    out = np.empty(k, dtype=np.float32)
    if k:
        _check_rc(lib.chadsp_dtw_batch(ptr(q, "float *"), q.shape[0], q.shape[1], ptr(data, "float *"),
                                       ptr(offsets, "int64_t *"), k, band, metric, threads, ptr(out, "float *")),
                  "dtw_rerank")
    return out


def subsequence_dtw(q: np.ndarray, t: np.ndarray, band: int, metric: int, threads: int) -> tuple[float, int, int]:
    cost = ffi.new("double *")
    start = ffi.new("int64_t *")
    end = ffi.new("int64_t *")
    _check_rc(lib.chadsp_subsequence_dtw(ptr(q, "float *"), q.shape[0], ptr(t, "float *"), t.shape[0], q.shape[1],
                                         band, metric, threads, cost, start, end), "subsequence_dtw")
    return float(cost[0]), int(start[0]), int(end[0])
