"""The picture of a match: the query's pitch contour over the matched segment of the song.

Both contours come from :func:`chadml.search.f0_contour` (CREPE tiny, 20 ms hop, voiced frames, in
semitones with each contour's median removed, 10 frames per second). The song's contour is taken over
the matched segment (``time_s`` to ``time_s`` + the query's length, with a margin); its times are given
from ``time_s`` so that both start together, and the query is moved by ``offset_st`` semitones (the
median difference where both are voiced) so that the two lines lie on each other when they agree.

Example
-------
>>> import numpy as np
>>> q = (np.array([0.0, 0.1, 0.2]), np.array([0.0, 2.0, 4.0]))
>>> s = (np.array([0.0, 0.1, 0.2]), np.array([1.0, 3.0, 5.0]))
>>> align_contours(q, s)["offset_st"]
1.0
"""
from __future__ import annotations

import numpy as np

from ..audio import load
from ..config import SAMPLE_RATE
from ..search import F0Config, f0_contour

__all__ = ["CONTOUR_CONFIG", "pitch_contour", "song_contour", "align_contours"]

#: the contours of the picture: CREPE tiny at a 20 ms hop (about 0.05 s of CPU per second of audio)
CONTOUR_CONFIG = F0Config(crepe_model="tiny", hop_length=320)


def pitch_contour(y: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """``(times_s, semitones)`` of a recording (empty arrays when it has no melody)."""
    st, t = f0_contour(y, sr, CONTOUR_CONFIG)
    return np.asarray(t, np.float64), np.asarray(st, np.float64)


def song_contour(path: str, time_s: float, duration_s: float, margin_s: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """``(times_s from time_s, semitones, start_s)`` of the song file ``path`` over ``[time_s - margin,
    time_s + duration_s + margin]`` (``start_s``: where the segment read begins in the song)."""
    start = max(0.0, float(time_s) - margin_s)
    y = load(path, start=start, end=float(time_s) + float(duration_s) + margin_s)
    t, st = pitch_contour(y)
    return t + start - float(time_s), st, start


def _median_offset(q: tuple[np.ndarray, np.ndarray], s: tuple[np.ndarray, np.ndarray]) -> float:
    """Semitones to add to the query so that its median meets the song's over the time they share."""
    (tq, sq), (ts, ss) = q, s
    if not len(sq) or not len(ss):
        return 0.0
    lo, hi = max(tq[0], ts[0]), min(tq[-1], ts[-1])
    inq, ins = (tq >= lo) & (tq <= hi), (ts >= lo) & (ts <= hi)
    if lo > hi or not inq.any() or not ins.any():
        inq, ins = np.ones(len(tq), bool), np.ones(len(ts), bool)
    return float(np.median(ss[ins]) - np.median(sq[inq]))


def _rounded(a: np.ndarray, nd: int) -> list[float]:
    return [round(float(v), nd) for v in a]


def align_contours(query: tuple[np.ndarray, np.ndarray], song: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """The JSON of the picture: ``query`` and ``song`` contours (``t`` seconds, ``st`` semitones) and
    ``offset_st``, the shift of the query onto the song (0 without a song contour)."""
    off = _median_offset(query, song) if song is not None else 0.0
    out = {"query": {"t": _rounded(query[0], 3), "st": _rounded(query[1], 3)}, "offset_st": round(off, 3),
           "song": None}
    if song is not None:
        out["song"] = {"t": _rounded(song[0], 3), "st": _rounded(song[1], 3)}
    return out
