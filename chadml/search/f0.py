"""The classical query-by-humming matcher the paper compares with (Stasiak's f0 + DTW, Table 1).

A pitch contour from CREPE, voiced frames only, in semitones, key-invariant (median removed), octave
jumps and outliers repaired, median-smoothed and downsampled (:func:`f0_contour`, in
:mod:`chadml.search.contour`); the songs' contours are kept in an :class:`F0Index`
(:mod:`chadml.search.f0_index`) and a query's contour is aligned inside every song by
open-begin/open-end DTW (:func:`chadsp.subsequence_dtw`), with an optional key-shift search and a
re-centring pass on the matched segment (:class:`F0DtwSearcher`).

It has the :class:`chadml.search.Searcher` query API (:class:`chadml.search.base.SearcherProtocol`),
so :func:`chadml.evaluate.evaluate` runs it unchanged. The contour and index names are re-exported here
(``from chadml.search.f0 import F0Index`` keeps working).

Example
-------
>>> from chadml.search.f0 import F0Index, F0DtwSearcher
>>> idx = F0Index.build("songs.f0", [("a", "a.flac"), ("b", "b.flac")])     # doctest: +SKIP
>>> F0DtwSearcher(idx).query("hum.wav", top=1)[0].song_id                     # doctest: +SKIP
"""
from __future__ import annotations

import logging
import math
import os
import time
from typing import Sequence

import chadsp
import numpy as np

from ..audio import resample
from ..config import SAMPLE_RATE, check_top
from ..util import map_threads
from .base import Match, load_query_audio, not_confident, voicing_reason
from .confidence import Calibration, load_calibration, score_features
from .contour import F0Config, contour_from_f0, f0_contour, voiced_contour
from .f0_index import F0_CATALOG, F0_FORMAT_VERSION, F0Index, F0IndexError

log = logging.getLogger(__name__)

__all__ = ["F0DtwSearcher", "F0Config", "f0_contour", "contour_from_f0", "F0Index", "F0IndexError",
           "F0_FORMAT_VERSION", "F0_CATALOG"]


def _as_f0_index(index) -> F0Index:
    if isinstance(index, F0Index):
        return index
    if isinstance(index, (str, os.PathLike)):
        return F0Index.open(index)
    raise TypeError(f"index must be an F0Index or a path, got {type(index).__name__}")


class F0DtwSearcher:
    """Classical query-by-humming: the query's pitch contour aligned inside every song's by subsequence DTW.

    Parameters
    ----------
    index : F0Index or its directory
    key_shifts : semitone offsets tried for the query (the contours are median-removed, so the key is
        already matched to the song's overall median; an excerpt's median can differ from it).
    refine : passes that re-centre the query on the median of the segment it matched, then realign
        (Stasiak's adaptive tuning, in its simplest form). 0: none.
    band_fraction : the DTW band as a fraction of the query's length (``ceil(band_fraction * n)`` frames:
        the alignment may drift that far from a straight line, i.e. a tempo difference of about that
        fraction); None: unbanded (any tempo, but wrong songs then match too easily).
    threads : worker threads over songs (None: all cores); each DTW runs on one thread.
    device : torch device for CREPE.
    calibration : a :class:`chadml.search.confidence.Calibration` of the matches' ``confidence``
        (default: the F0 index's ``calibration.json`` for ``"f0-dtw"``, else the built-in one).

    ``score`` of a match is minus the DTW cost divided by sqrt(query frames): minus the root-mean-square
    semitone error along the path. ``time_s`` is where the matched segment starts in the song.
    A query with no melody (silence, noise, too few voiced frames) gives ``[]`` and the reason in
    :attr:`last_reason` (logged); one with less than a second of voiced audio has no ``confident``
    match (the reason in :attr:`last_reason`); timings are in :attr:`last_timing`. Whistled queries are
    tracked some octaves down (:func:`chadml.search.contour.octave_shift`).

    Example
    -------
    >>> s = F0DtwSearcher("songs.f0")                 # doctest: +SKIP
    >>> s.query("hum.wav", top=3)[0].song_id          # doctest: +SKIP
    """

    rerank = "f0-dtw"

    def __init__(self, index, *, key_shifts: Sequence[float] = (0.0,), refine: int = 1,
                 band_fraction: float | None = 0.15,
                 threads: int | None = None, device=None, calibration: Calibration | None = None):
        self.index = _as_f0_index(index)
        shifts = tuple(float(s) for s in key_shifts)
        if not shifts or not all(math.isfinite(s) and abs(s) <= 12 for s in shifts):
            raise ValueError(f"key_shifts must be a non-empty sequence of semitone offsets in [-12, 12], "
                             f"got {key_shifts!r}")
        if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or refine < 0:
            raise ValueError(f"refine must be an integer >= 0, got {refine!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                    or threads < 0):
            raise ValueError(f"threads must be an integer >= 0 or None, got {threads!r}")
        if band_fraction is not None and (isinstance(band_fraction, bool) or not isinstance(band_fraction, (int, float))
                                          or not 0 <= band_fraction <= 1):
            raise ValueError(f"band_fraction must be a number in [0, 1] or None, got {band_fraction!r}")
        self.key_shifts, self.refine, self.threads, self.device = shifts, int(refine), threads, device
        self.band_fraction = band_fraction
        self.config = self.index.config
        if calibration is not None and not isinstance(calibration, Calibration):
            raise TypeError(f"calibration must be a Calibration, got {type(calibration).__name__}")
        self.calibration = calibration or load_calibration(self.index.dir, "f0-dtw")
        self.last_reason: str | None = None
        self.last_features = None
        self.last_timing: dict = {}

    def __len__(self) -> int:
        return len(self.index)

    def contour(self, audio, sr: int = SAMPLE_RATE) -> np.ndarray:
        """The query's contour (semitones, median removed; empty when it has no melody)."""
        return f0_contour(audio, sr, self.config, device=self.device)[0]

    def score(self, contour: np.ndarray, positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores float32[k], starts int64[k])`` of a query contour against the songs at ``positions``
        (default: all); ``-inf`` for a song with no contour. ``starts`` index the song's contour frames."""
        q0 = np.ascontiguousarray(contour, dtype=np.float32)
        if q0.ndim != 1 or len(q0) == 0:
            raise ValueError(f"contour must be a non-empty 1-D array, got shape {q0.shape}")
        idx = self.index
        pos = np.arange(len(idx), dtype=np.int64) if positions is None else np.asarray(positions, np.int64)
        offs = idx.offsets
        n = len(q0)
        band = None if self.band_fraction is None else int(math.ceil(self.band_fraction * n))

        def one(p):
            t = idx.pitch[offs[p]:offs[p + 1]]
            if len(t) == 0 or (band is not None and len(t) < n - band):
                return math.inf, 0
            best = (math.inf, 0, 0, 0.0)
            for s in self.key_shifts:
                c, a, b = chadsp.subsequence_dtw(q0 + np.float32(s), t, band=band, metric="euclidean", threads=1)
                if c < best[0]:
                    best = (c, a, b, s)
            for _ in range(self.refine):
                c0, a, b, s = best
                shift = float(np.median(t[a:b])) - float(np.median(q0))
                if abs(shift - s) < 0.05:
                    break
                c, a2, b2 = chadsp.subsequence_dtw(q0 + np.float32(shift), t, band=band, metric="euclidean",
                                                   threads=1)
                if c >= c0:
                    break
                best = (c, a2, b2, shift)
            return best[0], best[1]

        res = map_threads(one, pos, self.threads)
        cost = np.array([r[0] for r in res], np.float64)
        scores = (-cost / math.sqrt(n)).astype(np.float32)
        return scores, np.array([r[1] for r in res], np.int64)

    def query(self, audio, sr: int = SAMPLE_RATE, top: int = 10) -> list[Match]:
        """The ``top`` songs for a query (array at ``sr`` or a path), best first (``chadml.search.Match``)."""
        t0 = time.perf_counter()
        top = check_top(top)
        y, y_sr = load_query_audio(audio, sr)
        if len(y) == 0:
            raise ValueError("the query audio is empty (0 samples)")
        dur = len(y) / y_sr
        if y_sr != SAMPLE_RATE:
            y = resample(y, y_sr, SAMPLE_RATE)
        q, _, part = voiced_contour(y, SAMPLE_RATE, self.config, device=self.device)
        t1 = time.perf_counter()
        out = self._finish(q, top, t0, t1, dur)
        if part is not None:
            self.last_timing.update(voiced_s=part.voiced_s, query_start_s=part.start_s)
        reason = voicing_reason(part)
        if reason and out:
            self.last_reason = reason
            out = not_confident(out)
        return out

    def query_contour(self, contour: np.ndarray, top: int = 10) -> list[Match]:
        """:meth:`query` from a precomputed contour."""
        t0 = time.perf_counter()
        return self._finish(np.asarray(contour, np.float32), check_top(top), t0, t0, None)

    def _finish(self, q: np.ndarray, top: int, t0: float, t1: float, dur) -> list[Match]:
        self.last_reason = None
        timing = {"duration_s": dur, "f0_s": t1 - t0, "n_query_frames": int(len(q)), "n_songs": len(self.index)}
        if len(q) == 0:
            self.last_reason = (f"no melody in the query: fewer than {self.config.min_frames} voiced contour frames "
                                f"(periodicity >= {self.config.voicing_threshold}; silence or noise?)")
            log.warning("f0-dtw: %s", self.last_reason)
            self.last_features = None
            self.last_timing = {**timing, "rerank_s": 0.0, "total_s": time.perf_counter() - t0}
            return []
        scores, starts = self.score(q)
        t2 = time.perf_counter()
        ok = np.isfinite(scores)
        order = np.flatnonzero(ok)[np.argsort(-scores[ok], kind="stable")][:top]
        idx = self.index
        conf = self.calibration.rank_confidences(scores[ok], len(order))
        self.last_features = score_features(scores[ok])
        out = []
        for r, i in enumerate(order):
            ts = idx.time_s[idx.offsets[i] + starts[i]] if idx.offsets[i + 1] > idx.offsets[i] else 0.0
            out.append(Match(idx.song_ids[i], idx.titles[i], float(scores[i]), float(ts), r + 1, *conf[r]))
        self.last_timing = {**timing, "rerank_s": t2 - t1, "total_s": time.perf_counter() - t0}
        return out
