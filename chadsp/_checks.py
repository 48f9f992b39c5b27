"""Argument checks shared by every chadsp function and by both backends (C and numba).

Each public function validates here, before any compiled code runs: the backends (``chadsp._c``,
``chadsp._numba``) trust their arguments and only compute. Errors name the argument, what was seen and
what was expected.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "as_signal", "as_sequence", "as_sequence_pair", "check_int", "check_float", "check_threads",
    "check_packed", "as_sequence_list", "check_intervals", "check_frame_args", "check_bool",
    "check_distance", "check_metric", "check_band", "check_magnitude", "check_packed_finite", "METRICS", "MAX_ABS",
    "STORE_DTYPES", "check_store", "check_scales", "check_ranges",
]

# Row types that the re-ranking kernels read in place from a packed store (others are converted to float32).
STORE_DTYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.int8))


def _real_array(x, name: str, dtype=np.float32) -> np.ndarray:
    """``x`` as a C-contiguous array of ``dtype``; rejects bool, complex, object and string dtypes."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a numpy array of real numbers, got {type(x).__name__}")
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind not in "fiu":
        what = {"b": "bool", "c": "complex", "O": "object", "U": "str", "S": "bytes", "M": "datetime",
                "m": "timedelta", "V": "structured"}.get(kind, str(arr.dtype))
        raise TypeError(f"{name} must have a real numeric dtype (float or int), got {what} ({arr.dtype})")
    return np.asarray(arr, dtype=dtype, order="C")   # (ascontiguousarray would turn a 0-d scalar into 1-D)


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.size and arr.dtype.kind == "f" and arr.flags.c_contiguous:
        # Fast path: one BLAS pass and no temporary (half the time of isfinite().all() on audio). A NaN
        # or inf makes the sum of squares non-finite; huge finite values may overflow it: then check exactly.
        flat = arr.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.dot(flat, flat)):
                return
    if arr.size and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {bad} NaN/inf value(s)")


def as_signal(y, name: str = "y", *, dtype=np.float32, allow_empty: bool = True) -> np.ndarray:
    """A 1-D finite signal as a C-contiguous ``dtype`` array."""
    arr = _real_array(y, name, dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (a mono signal), got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    _check_finite(arr, name)
    return arr


def as_sequence(x, name: str, *, dtype=np.float32, allow_empty: bool = False) -> np.ndarray:
    """A sequence of frames ``(T, D)`` (a 1-D ``(T,)`` input becomes ``(T, 1)``), C-contiguous, finite."""
    arr = _real_array(x, name, dtype)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D (T,) or 2-D (T, D), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature column, got shape {arr.shape}")
    if not allow_empty and arr.shape[0] == 0:
        raise ValueError(f"{name} must have at least one frame, got shape {arr.shape}")
    _check_finite(arr, name)
    return arr


def as_sequence_pair(a, b, names=("query", "target"), **kw) -> tuple[np.ndarray, np.ndarray]:
    """Two sequences with the same feature dimension D."""
    x = as_sequence(a, names[0], **kw)
    y = as_sequence(b, names[1], **kw)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same feature dimension D, "
                         f"got {x.shape[1]} and {y.shape[1]}")
    return x, y


def as_sequence_list(candidates, name: str, dim: int, *, dtype=np.float32,
                     in_place=None) -> tuple[np.ndarray, np.ndarray]:
    """A list of ``(Ti, D)`` sequences, or a packed pair ``(concat, offsets)``, as the packed pair.

    Lists are concatenated (a copy); a packed pair is checked and used in place (see :func:`check_packed`).
    """
    if isinstance(candidates, tuple) and len(candidates) == 2 and not isinstance(candidates[0], (list, tuple)):
        data, offsets = candidates
        return check_packed(data, offsets, name, dim, dtype=dtype, in_place=in_place)
    if isinstance(candidates, np.ndarray):
        raise TypeError(f"{name} must be a list of (T, D) arrays or a packed pair (data, offsets), "
                        f"got a single array of shape {candidates.shape}")
    try:
        seqs = [as_sequence(c, f"{name}[{i}]", dtype=dtype, allow_empty=True) for i, c in enumerate(candidates)]
    except TypeError as exc:
        if "iterable" in str(exc):
            raise TypeError(f"{name} must be a list of (T, D) arrays or a packed pair (data, offsets), "
                            f"got {type(candidates).__name__}") from None
        raise
    for i, s in enumerate(seqs):
        if s.shape[1] != dim:
            raise ValueError(f"{name}[{i}] has feature dimension {s.shape[1]}, expected D = {dim} (the query's)")
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    if seqs:
        offsets[1:] = np.cumsum([s.shape[0] for s in seqs])
        data = np.ascontiguousarray(np.concatenate(seqs, axis=0))
    else:
        data = np.zeros((0, dim), dtype=dtype)
    return data, offsets


def _store_array(data, name: str, dim: int, dtype, in_place) -> np.ndarray:
    """``data`` ``(N, D)`` in place when it is a 2-D C-contiguous array of ``dtype`` or of a dtype in
    ``in_place`` (not scanned: the kernels detect NaN/inf); otherwise converted to ``dtype`` (a copy,
    checked finite)."""
    keep = (np.dtype(dtype),) if in_place is None else tuple(np.dtype(t) for t in in_place)
    if isinstance(data, np.ndarray) and data.dtype in keep and data.ndim == 2 and data.flags.c_contiguous:
        arr = data  # in place: the index's memory-mapped store is not copied
    else:
        arr = as_sequence(data, name, dtype=dtype, allow_empty=True)
    if arr.shape[1] != dim:
        raise ValueError(f"{name} has feature dimension {arr.shape[1]}, expected D = {dim} (the query's)")
    return arr


def check_packed(data, offsets, name: str, dim: int, *, dtype=np.float32,
                 in_place=None) -> tuple[np.ndarray, np.ndarray]:
    """A packed pair: ``data`` ``(N, D)`` and ``offsets`` int64 ``[n+1]``, non-decreasing, within ``[0, N]``.

    ``data`` is used in place when it is C-contiguous and of ``dtype`` or of a dtype in ``in_place``
    (e.g. :data:`STORE_DTYPES`); otherwise it is converted to ``dtype``.
    """
    arr = _store_array(data, f"{name} data", dim, dtype, in_place)
    off = np.asarray(offsets)
    if off.dtype.kind not in "iu":
        raise TypeError(f"{name} offsets must be integers, got dtype {off.dtype}")
    off = np.ascontiguousarray(off, dtype=np.int64)
    if off.ndim != 1 or off.size < 1:
        raise ValueError(f"{name} offsets must be 1-D with n+1 >= 1 entries, got shape {off.shape}")
    if off[0] < 0 or off[-1] > arr.shape[0]:
        raise ValueError(f"{name} offsets must lie within [0, {arr.shape[0]}] (the packed length), "
                         f"got first {int(off[0])} and last {int(off[-1])}")
    if off.size > 1 and np.any(np.diff(off) < 0):
        i = int(np.argmax(np.diff(off) < 0))
        raise ValueError(f"{name} offsets must be non-decreasing, got offsets[{i}] = {int(off[i])} > "
                         f"offsets[{i + 1}] = {int(off[i + 1])}")
    return arr, off


def check_store(data, name: str, dim: int) -> np.ndarray:
    """A packed store of rows ``(N, D)``: float32, float16 or int8 (:data:`STORE_DTYPES`) C-contiguous
    rows are used in place (a memory map is fine, and is not scanned); other real arrays are converted to
    float32 (a copy, checked finite)."""
    return _store_array(data, name, dim, np.float32, STORE_DTYPES)


def check_scales(scales, data: np.ndarray, name: str = "scales") -> np.ndarray | None:
    """Per-row scales of an int8 store: ``None`` (every row scale 1) or a 1-D real array of ``len(data)``
    values, as C-contiguous float32 (used in place when it is one; not scanned: a NaN/inf scale is met
    while scoring). Only int8 rows take scales."""
    if scales is None:
        return None
    if data.dtype != np.int8:
        raise ValueError(f"{name} apply to int8 rows only, got rows of dtype {data.dtype}")
    if isinstance(scales, np.ndarray) and scales.dtype == np.float32 and scales.flags.c_contiguous:
        arr = scales
    else:
        arr = _real_array(scales, name)
    if arr.ndim != 1 or arr.shape[0] != data.shape[0]:
        raise ValueError(f"{name} must be 1-D with one scale per row ({data.shape[0]}), got shape {arr.shape}")
    return arr


def check_ranges(starts, lengths, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Row ranges ``[starts[k], starts[k] + lengths[k])`` of a store of ``n_rows`` rows: two 1-D integer
    arrays of equal length, ``starts >= 0``, ``lengths >= 0``, ranges within ``[0, n_rows]`` (any order,
    overlaps allowed), as C-contiguous int64."""
    out = []
    for v, nm in ((starts, "starts"), (lengths, "lengths")):
        if isinstance(v, (str, bytes)) or v is None:
            raise TypeError(f"{nm} must be a 1-D integer array, got {type(v).__name__}")
        a = np.asarray(v)
        if a.size == 0 and a.ndim == 1:
            a = a.astype(np.int64)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{nm} must be integers, got dtype {a.dtype}")
        if a.ndim != 1:
            raise ValueError(f"{nm} must be 1-D, got shape {a.shape}")
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{nm} must fit in int64, got a value {int(a.max())}")
        out.append(np.ascontiguousarray(a, dtype=np.int64))
    st, ln = out
    if st.shape != ln.shape:
        raise ValueError(f"starts and lengths must have the same length, got {st.size} and {ln.size}")
    if st.size:
        if st.min() < 0:
            i = int(np.argmin(st))
            raise ValueError(f"starts must be >= 0, got starts[{i}] = {int(st[i])}")
        if ln.min() < 0:
            i = int(np.argmin(ln))
            raise ValueError(f"lengths must be >= 0, got lengths[{i}] = {int(ln[i])}")
        over = st > n_rows - ln          # st + ln > n_rows, without overflow
        if over.any():
            i = int(np.argmax(over))
            raise ValueError(f"ranges must lie within the {n_rows} rows of data, got starts[{i}] = {int(st[i])} "
                             f"with lengths[{i}] = {int(ln[i])}")
    return st, ln


def check_intervals(intervals, name: str = "intervals") -> np.ndarray:
    """Sample intervals ``[start, end)`` as C-contiguous int64 ``(n, 2)``: integers, ``0 <= start <= end``,
    sorted and non-overlapping (``start[i + 1] >= end[i]``). An empty list or array gives ``(0, 2)``."""
    if isinstance(intervals, (str, bytes)) or intervals is None:
        raise TypeError(f"{name} must be an integer array of shape (n, 2), got {type(intervals).__name__}")
    arr = np.asarray(intervals)
    if arr.size == 0 and arr.shape in ((0,), (0, 2)):
        return np.zeros((0, 2), dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype (sample indices), got {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2) ([start, end) pairs), got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must fit in int64, got a value {int(arr.max())}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    start, end = arr[:, 0], arr[:, 1]
    if start.min() < 0:
        i = int(np.argmin(start))
        raise ValueError(f"{name} must be non-negative sample indices, got {name}[{i}] = {arr[i].tolist()}")
    if np.any(end < start):
        i = int(np.argmax(end < start))
        raise ValueError(f"{name} must have start <= end, got {name}[{i}] = {arr[i].tolist()}")
    if np.any(start[1:] < end[:-1]):
        i = int(np.argmax(start[1:] < end[:-1]))
        raise ValueError(f"{name} must be sorted and non-overlapping, got {name}[{i}] = {arr[i].tolist()} "
                         f"followed by {name}[{i + 1}] = {arr[i + 1].tolist()}")
    return arr


def check_int(v, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer argument (bools rejected) within ``[minimum, maximum]``."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    v = int(v)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return v


def check_float(v, name: str, *, minimum: float | None = None, maximum: float | None = None,
                strict_min: bool = False) -> float:
    """A finite real argument within bounds (``strict_min``: ``v > minimum``)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}")
    v = float(v)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if minimum is not None and (v <= minimum if strict_min else v < minimum):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return v


def check_threads(threads) -> int:
    """``threads=None`` or 0: 0, meaning all cores as the backend sees them; otherwise a positive integer."""
    if threads is None:
        return 0
    return check_int(threads, "threads", minimum=0)


def check_bool(v, name: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(v).__name__} {v!r}")
    return bool(v)


MAX_FRAME = 1 << 40   # keeps every sample index of the kernels far from int64 overflow


def check_frame_args(frame_length, hop_length) -> tuple[int, int]:
    """RMS frame size and step: integers in ``[1, 2**40]``."""
    return (check_int(frame_length, "frame_length", minimum=1, maximum=MAX_FRAME),
            check_int(hop_length, "hop_length", minimum=1, maximum=MAX_FRAME))


def check_distance(distance) -> int | None:
    """A peak distance ``>= 1`` as the integer ``ceil(distance)`` (None stays None)."""
    if distance is None:
        return None
    v = check_float(distance, "distance", minimum=1.0)
    return int(min(math.ceil(v), 2**62))


METRICS = {"euclidean": 0, "cosine": 1}   # the DTW metric codes of both backends

# |values| above this could overflow float32 in a DTW cell cost (D * v**2) or a path sum: such inputs are
# rejected (the kernels also clamp costs to +-1e30, so nothing can turn into NaN).
MAX_ABS = 1e15


def check_metric(metric) -> int:
    """A DTW metric name as its code (``METRICS``)."""
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a str, one of {sorted(METRICS)}, got {type(metric).__name__} {metric!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    return METRICS[metric]


def check_band(band) -> int:
    """A DTW band: ``None`` (no band) becomes -1; otherwise an integer >= 0."""
    if band is None:
        return -1
    return check_int(band, "band", minimum=0)


def check_magnitude(arr: np.ndarray, name: str) -> None:
    """DTW inputs: no value above ``MAX_ABS`` in magnitude."""
    if arr.size:
        peak = max(float(arr.max()), -float(arr.min()))
        if peak > MAX_ABS:
            raise ValueError(f"{name} has values up to {peak:.3g} in magnitude; DTW costs would overflow float32 "
                             f"(expected |values| <= {MAX_ABS:.0e})")


def check_packed_finite(arr: np.ndarray, name: str) -> None:
    """A packed store used in place (not scanned by :func:`check_packed`): one min/max pass, cheap beside
    a DTW's n x band cells per row, finds NaN/inf before a kernel runs."""
    if arr.size:
        lo, hi = float(arr.min()), float(arr.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} must be finite, got NaN/inf value(s) in the packed rows")
