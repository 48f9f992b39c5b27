"""Time maps between an original recording and a version of it (a cover): piecewise-linear alignments.

An alignment is a list of ``[t_original, t_version]`` breakpoints with ``t_version`` non-decreasing
(:func:`alignment_pieces` says what each pair of breakpoints means); :func:`map_time` maps original
times to version times and :func:`inverse_map_time` back.

Example
-------
>>> map_time([[0, 2], [60, 52]], 30.0).tolist()
27.0
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np

__all__ = ["check_alignment", "alignment_pieces", "map_time", "inverse_map_time"]


def check_alignment(alignment: Any, where: str) -> list:
    """The breakpoints of ``alignment`` (a list, or its JSON text) as ``[[t_original or None, t_version], ...]``;
    a ValueError naming ``where`` for a malformed pair, a non-finite time or a decreasing ``t_version``."""
    if isinstance(alignment, str):
        alignment = json.loads(alignment) if alignment.strip() else []
    if alignment is None:
        return []
    out = []
    last_v = -math.inf
    for k, bp in enumerate(alignment):
        if not (isinstance(bp, (list, tuple, np.ndarray)) and len(bp) == 2):
            raise ValueError(f"alignment of {where}: breakpoint {k} must be [t_original, t_version], got {bp!r}")
        o, v = bp
        o = None if o is None or (isinstance(o, float) and math.isnan(o)) else float(o)
        v = float(v)
        if not math.isfinite(v) or (o is not None and not math.isfinite(o)):
            raise ValueError(f"alignment of {where}: breakpoint {k} must hold finite times, got {bp!r}")
        if v < last_v:
            raise ValueError(f"alignment of {where}: t_version must not decrease (breakpoint {k}: {v} < {last_v})")
        last_v = v
        out.append([o, v])
    return out


# ----------------------------------------------------------------------------------- time alignment

def alignment_pieces(alignment: Sequence) -> np.ndarray:
    """The linear pieces of an alignment as a float64 array ``(n, 4)`` of ``(o0, o1, v0, v1)``.

    An alignment is a list of ``[t_original, t_version]`` breakpoints with ``t_version`` non-decreasing.
    Two consecutive breakpoints form a linear piece (original ``o0..o1`` sung at version ``v0..v1``) when
    both ``t_original`` are known, ``o1 > o0`` and ``v1 > v0``. Otherwise there is no piece between them:

    - a jump in the original (a skipped section, a repeat) is two breakpoints with the same ``t_version``;
    - version content absent from the original (an intro, an improvised bridge) starts at a breakpoint
      whose ``t_original`` is ``None`` (NaN) and lasts until the next breakpoint.

    Example: an intro of 3 s, original 0..20 s sung 10 % slower, 20..30 s skipped, 30..60 s at tempo:
    ``[[None, 0], [0, 3], [20, 25], [30, 25], [60, 55]]``.
    """
    bp = check_alignment(alignment, "alignment")
    rows = []
    for (o0, v0), (o1, v1) in zip(bp[:-1], bp[1:]):
        if o0 is not None and o1 is not None and o1 > o0 and v1 > v0:
            rows.append((o0, o1, v0, v1))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def map_time(alignment: Sequence, t_original: float | np.ndarray, *, all: bool = False) -> np.ndarray:
    """Map original times to version times through a piecewise-linear ``alignment`` (vectorised).

    Parameters
    ----------
    alignment : list of [t_original, t_version]
        See :func:`alignment_pieces`. Empty: unknown, every time maps to NaN.
    t_original : float or array
        Seconds in the original.
    all : bool
        False: the first (earliest) place in the version where that moment of the original is sung,
        NaN where it is absent (skipped). True: every place (a repeated section is sung twice), as an
        array of shape ``t_original.shape + (k,)`` sorted in time, NaN-padded.

    Example
    -------
    >>> al = [[None, 0], [0, 3], [20, 25], [30, 25], [60, 55]]
    >>> map_time(al, [0.0, 10.0, 25.0, 40.0]).tolist()
    [3.0, 14.0, nan, 35.0]
    """
    t = np.asarray(t_original, dtype=np.float64)
    pieces = alignment_pieces(alignment)
    shape = t.shape
    tf = t.reshape(-1, 1)
    if len(pieces) == 0:
        vals = np.full((tf.shape[0], 1), np.nan)
    else:
        o0, o1, v0, v1 = (pieces[:, i][None, :] for i in range(4))
        inside = (tf >= o0) & (tf <= o1)
        with np.errstate(invalid="ignore"):
            vals = np.where(inside, v0 + (tf - o0) * (v1 - v0) / (o1 - o0), np.nan)
        vals = np.sort(vals, axis=1)          # NaN last
    if not all:
        return vals[:, 0].reshape(shape)
    # drop duplicates at shared piece endpoints (a piece ending where the next begins)
    if vals.shape[1] > 1:
        dup = np.zeros_like(vals, dtype=bool)
        dup[:, 1:] = np.abs(np.diff(vals, axis=1)) < 1e-9
        vals = np.where(dup, np.nan, vals)
        vals = np.sort(vals, axis=1)
        keep = ~np.all(np.isnan(vals), axis=0)
        keep[0] = True
        vals = vals[:, keep]
    return vals.reshape(shape + (vals.shape[1],))


def inverse_map_time(alignment: Sequence, t_version: float | np.ndarray) -> np.ndarray:
    """Map version times back to original times (NaN inside an intro or other content not in the original).

    Example
    -------
    >>> inverse_map_time([[None, 0], [0, 3], [20, 25], [30, 25], [60, 55]], [1.0, 14.0, 35.0]).tolist()
    [nan, 10.0, 40.0]
    """
    t = np.asarray(t_version, dtype=np.float64)
    pieces = alignment_pieces(alignment)
    tf = t.reshape(-1, 1)
    if len(pieces) == 0:
        return np.full(t.shape, np.nan)
    o0, o1, v0, v1 = (pieces[:, i][None, :] for i in range(4))
    inside = (tf >= v0) & (tf <= v1)
    vals = np.where(inside, o0 + (tf - v0) * (o1 - o0) / (v1 - v0), np.nan)
    # pieces overlap in version time only at shared endpoints: there the later piece (the one that
    # starts at that time) wins, e.g. the start of the section sung after a skip
    k = np.argmax(np.where(inside, v0, -np.inf), axis=1)
    out = vals[np.arange(len(tf)), k]
    return out.reshape(t.shape)
