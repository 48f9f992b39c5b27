"""The encoder searcher: query audio -> fingerprints -> FAISS k-NN -> candidate songs -> re-ranking with chadsp.

The two steps of the paper (section 5.1, "Retrieval"): every fingerprint of the query asks FAISS for
its nearest fingerprints in the index; the songs they belong to are the candidates (ranked by how many
query fingerprints have them among their neighbours, then by the best distance; the top ``k``, 5000 by
default, capped by the collection: when ``k`` covers the whole collection every song is re-ranked and
the ANN step is skipped). The candidates are then re-ranked by the maximum Pearson correlation of the query's
fingerprint sequence over all lags in the song (``chadsp.rerank``, scored in place in the index's
memory-mapped store), or by subsequence DTW (``chadsp.subsequence_dtw``: open begin and end, cosine
cost; ``chadsp.dtw_rerank`` aligns whole sequences, which does not fit an excerpt of a song), or by the
f0 + DTW matcher (``dtw-f0``: :class:`chadml.search.f0.F0DtwSearcher` on the candidates); the best
lag, or the start of the DTW segment, is the matched time.

M_short / M_long / M_fused: :class:`FusedSearcher` sends queries under 15 s to the M_short index and
longer ones to the M_long index.

Example
-------
>>> from chadml.search import Searcher
>>> s = Searcher("songs.idx")                              # doctest: +SKIP
>>> for m in s.query("hum.wav", top=3):                    # doctest: +SKIP
...     print(m.rank, m.song_id, round(m.score, 3), m.time_s)
>>> s.last_timing["ann_s"], s.last_timing["rerank_s"]      # doctest: +SKIP
"""
from __future__ import annotations

import logging
import math
import os
import time
from typing import Iterable

import chadsp
import numpy as np

from ..config import SAMPLE_RATE, SILENCE_PEAK, check_top
from ..errors import ChadError
from ..features.voicing import find_voiced
from ..features.windows import stretch, tempo_grid
from ..index import SongIndex, fingerprinter_id
from ..models import is_builtin, load_fingerprinter
from ..separation import get_separator
from ..util import map_threads
from .base import (RERANKERS, Match, load_query_audio, not_confident, trim_query, voicing_option,
                   voicing_reason)
from .confidence import Calibration, load_calibration, score_features
from .f0 import F0DtwSearcher

log = logging.getLogger(__name__)

__all__ = ["Searcher", "FusedSearcher", "tempo_rescore", "TEMPO_RANGE", "TEMPO_STEP", "TEMPO_TOP", "TEMPO_SLACK"]

#: the tempo re-scoring of ``rerank="pearson"`` (:func:`tempo_rescore`): the query stretched to each ratio
#: of ``TEMPO_RANGE`` (powers of ``1 + TEMPO_STEP``; song seconds per query second) ...
TEMPO_RANGE = (0.8, 1.25)
TEMPO_STEP = 0.03
#: ... on the ``TEMPO_TOP`` best songs of the rigid max Pearson, within ``TEMPO_SLACK`` rows of its match
TEMPO_TOP = 100
TEMPO_SLACK = 4


class Searcher:
    """Query-by-humming over one :class:`chadml.index.SongIndex`.

    Parameters
    ----------
    index : path or SongIndex
    fingerprinter : the model (a ``Fingerprinter`` or a checkpoint path); default: the checkpoint the
        index records. It must be the index's model: another one is an ``IndexMismatchError``.
    rerank : "pearson" (max Pearson over lags; the default, for real recordings), "dtw"
        (subsequence DTW, cosine cost, score = -cost; for MIDI-like references) or "dtw-f0" (the ANN
        candidates re-ranked by the classical f0 + DTW matcher, :class:`chadml.search.F0DtwSearcher`;
        needs an F0 index of the same songs: ``f0_index``).
    f0_index : an :class:`chadml.search.F0Index` or its directory, for ``rerank="dtw-f0"``
        (default: ``<index>/f0``).
    separator : a :class:`chadml.separation.Separator` (or name) applied to the query first, for queries
        sung over accompaniment (default: identity; hummings need none).
    k : candidate songs to re-rank (5000), capped by the collection size.
    neighbors : FAISS neighbours per query fingerprint (default: enough to fill ``k``, 64..2048).
    nprobe : IVF lists visited (default: the index's stored value).
    band : DTW band (frames) for ``rerank="dtw"``; None: unbanded.
    threads : threads for FAISS and the re-ranker (None: all cores).
    max_query_s : longer queries are cut to their first ``max_query_s`` seconds (None: never).
    auto_refresh : before each query, move to the index's newest generation if a writer added songs.
    voicing : how queries are trimmed to their voiced part (:data:`chadml.search.base.QUERY_VOICING` by
        default; False: searched as they are).
    calibration : a :class:`chadml.search.confidence.Calibration` of the matches' ``confidence``
        (default: the index's ``calibration.json`` for this re-ranker, else the built-in one).
    tempo_scan : ``rerank="pearson"`` only: re-score the best songs with the query stretched to other
        tempi (:func:`tempo_rescore`), for queries far faster or slower than the song. Off by default: the
        shipped model's 3 s windows absorb ordinary tempo errors, and on the independent evaluation set it
        gains nothing (bench/README.md).

    Example
    -------
    >>> s = Searcher("songs.idx", rerank="pearson", k=1000)   # doctest: +SKIP
    >>> s.query(audio, sr=16000, top=10)[0].song_id           # doctest: +SKIP
    """

    def __init__(self, index, *, fingerprinter=None, rerank: str = "pearson", k: int = 5000,
                 neighbors: int | None = None, nprobe: int | None = None, band: int | None = None,
                 threads: int | None = None, max_query_s: float | None = 60.0, auto_refresh: bool = True,
                 device=None, f0_index=None, separator=None, voicing=None, calibration: Calibration | None = None,
                 tempo_scan: bool = False):
        if rerank not in RERANKERS:
            raise ValueError(f"rerank must be one of {RERANKERS}, got {rerank!r}")
        for name, v, lo in (("k", k, 1), ("neighbors", neighbors, 1), ("nprobe", nprobe, 1),
                            ("band", band, 0), ("threads", threads, 0)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo):
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if max_query_s is not None and not (max_query_s > 0):
            raise ValueError(f"max_query_s must be > 0 or None, got {max_query_s!r}")
        self.index = index if isinstance(index, SongIndex) else SongIndex.open(index)
        self.rerank, self.k, self.neighbors, self.nprobe, self.band = rerank, int(k), neighbors, nprobe, band
        if not isinstance(tempo_scan, bool):
            raise ValueError(f"tempo_scan must be True or False, got {tempo_scan!r}")
        if tempo_scan and rerank != "pearson":
            raise ValueError(f"tempo_scan re-scores max Pearson: it needs rerank='pearson', got {rerank!r}")
        self.tempo_scan = tempo_scan
        #: the name of this searcher's scores (its calibration's key): the re-ranker, "+tempo" with tempo_scan
        self.score_name = rerank + ("+tempo" if tempo_scan else "")
        self.threads, self.max_query_s, self.auto_refresh = threads, max_query_s, auto_refresh
        self._fp_arg, self._device = fingerprinter, device
        self._fingerprinter = None
        if fingerprinter is not None:
            self._fingerprinter = self._load_fingerprinter(fingerprinter)
        self.last_timing: dict = {}
        self.last_reason: str | None = None     # why the last query was answered differently (dtw-f0)
        self.last_features = None               # the last query's [z, margin] (chadml.search.confidence)
        self.separator = get_separator(separator)
        self.voicing = voicing_option(voicing)
        if calibration is not None and not isinstance(calibration, Calibration):
            raise TypeError(f"calibration must be a Calibration, got {type(calibration).__name__}")
        self.calibration = calibration or load_calibration(self.index.dir, self.score_name)
        self._f0 = self._query_contour = None
        if rerank == "dtw-f0":
            self._f0 = F0DtwSearcher(f0_index if f0_index is not None else os.path.join(self.index.dir, "f0"),
                                     threads=threads, device=device)

    # ---- the model ---------------------------------------------------------------------------

    def _load_fingerprinter(self, fp):
        if isinstance(fp, (str, os.PathLike)):
            fp = load_fingerprinter(fp, device=self._device)    # its model_id set: checked first below
        self.index.check_compatible(model_id=fingerprinter_id(fp), config=fp)
        return fp

    @property
    def fingerprinter(self):
        """The model (loaded on first use from the checkpoint the index records)."""
        if self._fingerprinter is None:
            path = self.index.model_path
            if not path:
                raise ChadError(f"index {self.index.dir} records no model checkpoint: give Searcher(..., "
                                "fingerprinter=...) (a Fingerprinter or a checkpoint path)")
            if not is_builtin(path) and not os.path.exists(path):
                raise FileNotFoundError(f"the model checkpoint recorded by index {self.index.dir} is missing: "
                                        f"{path} (give fingerprinter=... with the checkpoint's new path)")
            self._fingerprinter = self._load_fingerprinter(path)
        return self._fingerprinter

    @property
    def window_s(self) -> float:
        wc = self.index.window_config
        return float(wc.get("window_s", wc["step_s"]))

    # ---- queries -----------------------------------------------------------------------------

    def query(self, audio, sr: int = SAMPLE_RATE, top: int = 10) -> list[Match]:
        """The ``top`` songs for a query (audio array at ``sr``, or a file path), best first.

        The query is first trimmed to its voiced part (:attr:`voicing`): silence or noise before and
        after the hum never enters the score, and ``time_s`` is where the voiced part matches. An
        all-silent query returns ``[]`` (with a warning); a query with no voiced audio, or less than
        ``voicing.min_voiced_s`` of it, is searched but none of its matches is ``confident`` (the reason is
        in :attr:`last_reason`); a query shorter than one analysis window is zero-padded to one window
        (with a warning); an empty one is a ``ValueError``. Timings of the steps are in :attr:`last_timing`
        (with ``voiced_s`` and ``query_start_s``, where the searched part starts in the query).
        """
        t0 = time.perf_counter()
        top = check_top(top)
        self.last_reason = None
        y, y_sr = load_query_audio(audio, sr)
        timing = {"load_s": time.perf_counter() - t0}
        if len(y) == 0:
            raise ValueError("the query audio is empty (0 samples)")
        dur = len(y) / y_sr
        timing["duration_s"] = dur
        if getattr(self.separator, "name", None) != "identity":
            t1 = time.perf_counter()
            y = np.ascontiguousarray(self.separator.separate(y, y_sr), dtype=np.float32)
            timing["separation_s"] = time.perf_counter() - t1
        if float(np.max(np.abs(y))) < SILENCE_PEAK:
            log.warning("the query (%.2f s) is silent (peak below -80 dBFS): no matches", dur)
            self.last_timing = {**timing, "fingerprint_s": 0.0, "ann_s": 0.0, "rerank_s": 0.0,
                                "total_s": time.perf_counter() - t0, "n_query_fps": 0, "n_candidates": 0,
                                "silent": True}
            return []
        t1 = time.perf_counter()
        y, part, info = trim_query(y, y_sr, self.voicing)
        timing.update(info, voicing_s=time.perf_counter() - t1)
        if self.max_query_s is not None and len(y) / y_sr > self.max_query_s:
            log.warning("the query is %.1f s long: only its first %.1f s are used (max_query_s)", len(y) / y_sr,
                        self.max_query_s)
            y = y[:int(self.max_query_s * y_sr)]
        need = int(math.ceil(self.window_s * y_sr)) + 1
        if len(y) < need:
            log.warning("the query (%.2f s) is shorter than one analysis window (%.2f s): zero-padded",
                        len(y) / y_sr, self.window_s)
            y = np.pad(y, (0, need - len(y)))
        t1 = time.perf_counter()
        fps, _ = self.fingerprinter.from_audio(y, sr=y_sr)
        timing["fingerprint_s"] = time.perf_counter() - t1
        if self._f0 is not None:
            t1 = time.perf_counter()
            self._query_contour = self._f0.contour(y, y_sr)
            timing["f0_s"] = time.perf_counter() - t1
        try:
            out = self.query_fingerprints(fps, top=top)
        finally:
            self._query_contour = None
        reason = voicing_reason(part)
        if reason:
            self.last_reason = "; ".join(r for r in (reason, self.last_reason) if r)
            out = not_confident(out)
        self.last_timing = {**timing, **self.last_timing, "total_s": time.perf_counter() - t0}
        return out

    def query_batch(self, audios: Iterable, sr: int = SAMPLE_RATE, top: int = 10) -> list[list[Match]]:
        """:meth:`query` for each item; :attr:`batch_timing` holds each query's timing."""
        return _query_each(self, audios, sr, top)

    def candidates(self, fps: np.ndarray) -> np.ndarray:
        """Catalog positions of the candidate songs for query fingerprints ``fps``, best first."""
        idx = self.index
        n = len(idx)
        k = min(self.k, n)
        if k >= n:
            return np.arange(n, dtype=np.int64)
        nq = len(fps)
        nn = self.neighbors or int(min(2048, max(64, 2 * math.ceil(k / max(nq, 1)))))
        dist, pos, _ = idx.search(fps, nn, nprobe=self.nprobe)
        ok = pos >= 0
        p, d = pos[ok], dist[ok]
        if p.size == 0:
            return np.zeros(0, np.int64)
        # votes: how many query fingerprints have the song among their neighbours (each counts once): the
        # distinct songs of each query fingerprint's row, found by sorting the rows (vectorised)
        srt = np.sort(pos, axis=1)
        first = np.empty(srt.shape, bool)
        first[:, :1] = True
        np.not_equal(srt[:, 1:], srt[:, :-1], out=first[:, 1:])
        first &= srt >= 0
        votes = np.bincount(srt[first], minlength=n)
        best = np.full(n, np.inf, np.float32)
        np.minimum.at(best, p, d)
        hit = np.flatnonzero(votes)
        order = np.lexsort((best[hit], -votes[hit]))
        return hit[order[:k]]

    def query_fingerprints(self, fps: np.ndarray, top: int = 10) -> list[Match]:
        """The ``top`` songs for a query given as fingerprints ``(n, dim)`` (the model-free entry point),
        with their calibrated ``confidence`` (:attr:`calibration`, from the scores of every candidate)."""
        top = check_top(top)
        idx = self.index
        q = np.ascontiguousarray(np.asarray(fps, dtype=np.float32))
        if q.ndim != 2 or q.shape[1] != idx.dim or q.shape[0] == 0:
            raise ValueError(f"fps must have shape (n >= 1, {idx.dim}), got {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError("fps must be finite, got NaN/inf values")
        if self.auto_refresh:
            idx.refresh()
        if self.threads:
            import faiss
            faiss.omp_set_num_threads(int(self.threads))
        timing = {"n_query_fps": len(q), "n_songs": len(idx)}
        t0 = time.perf_counter()
        cand = self.candidates(q) if len(idx) else np.zeros(0, np.int64)
        t1 = time.perf_counter()
        timing["ann_s"] = t1 - t0 if min(self.k, len(idx)) < len(idx) else 0.0
        timing["n_candidates"] = int(len(cand))
        if len(cand) == 0:
            self.last_timing = {**timing, "rerank_s": 0.0}
            self.last_features = None
            return []
        scores, times, rows = self._rerank(q, cand)
        timing["rerank_s"] = time.perf_counter() - t1
        timing["n_rows"] = rows
        order = np.argsort(-scores, kind="stable")[:top]
        songs = idx.songs()
        conf = self.calibration.rank_confidences(scores, len(order))
        self.last_features = score_features(scores)
        out = []
        for r, i in enumerate(order):
            s = songs[cand[i]]
            out.append(Match(s.song_id, s.title, float(scores[i]), float(times[i]), r + 1, *conf[r]))
        self.last_timing = timing
        return out

    def _rerank(self, q: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Scores (higher is better) of the songs at ``cand``, the times (s, in the song) where the query
        matches, and the rows scored."""
        if self.rerank == "dtw-f0":
            return self._rerank_f0(q, cand)
        scores, lags, rows = self._rerank_dtw(q, cand) if self.rerank == "dtw" else self._rerank_pearson(q, cand)
        return scores, lags * self.index.step_s + self.index.starts(cand), rows

    def _rerank_pearson(self, q: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Max Pearson of the query in each candidate song, in one ``chadsp.rerank_ranges`` call on the
        candidates' row ranges of the memory-mapped store, read in place in its format (float32, float16,
        or int8 with its per-row scales): only the candidates' rows are read, none copied."""
        idx = self.index
        rows = idx.rows
        starts, lengths = idx.ranges(cand)
        scores, lags = chadsp.rerank_ranges(q, rows.data, starts, lengths, scales=rows.scale, threads=self.threads)
        if self.tempo_scan:
            scores, lags = tempo_rescore(q, rows.data, starts, lengths, scores, lags, scales=rows.scale,
                                         threads=self.threads)
        idx.release(cand)
        # a song shorter than the query slides inside it (lag <= 0): the match starts at the song's start
        np.maximum(lags, 0, out=lags)
        return scores, lags, int(lengths.sum())

    def _rerank_dtw(self, q: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Subsequence DTW (open begin and end, cosine cost) of the query in each candidate song.

        ``chadsp.subsequence_dtw`` per song, on ``threads`` worker threads (the GIL is released in C);
        score = minus the cost, lag = the start of the matched segment.
        """
        idx = self.index
        songs = idx.songs()
        ids = [songs[c].song_id for c in cand]

        def one(sid):
            cost, start, _ = chadsp.subsequence_dtw(q, idx.fingerprints(sid), band=self.band, metric="cosine",
                                                    threads=1)
            return cost, start

        res = map_threads(one, ids, self.threads)
        scores = np.array([-r[0] for r in res], np.float32)
        lags = np.array([r[1] for r in res], np.int64)
        return scores, lags, int(sum(songs[c].n_fingerprints for c in cand))

    def _rerank_f0(self, q: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """The f0 + DTW matcher on the candidates (score: minus the RMS semitone error; time: where the
        matched contour segment starts). A query with no melody falls back to max-Pearson re-ranking (logged)."""
        c = self._query_contour
        if c is None:
            raise ValueError("rerank='dtw-f0' needs the query audio (its pitch contour): call query(), "
                             "not query_fingerprints()")
        if len(c) == 0:
            log.warning("dtw-f0: the query has no melody (no voiced frames): max-Pearson re-ranking instead")
            self.last_reason = "no melody in the query: re-ranked by max Pearson instead of f0 + DTW"
            scores, lags, rows = self._rerank_pearson(q, cand)
            return scores, lags * self.index.step_s + self.index.starts(cand), rows
        f0 = self._f0.index
        songs = self.index.songs()
        ids = [songs[i].song_id for i in cand]
        have = np.array([sid in f0 for sid in ids])
        if not have.all():
            log.warning("dtw-f0: %d of %d candidate songs are not in the F0 index %s (ranked last)",
                        int((~have).sum()), len(ids), f0.dir)
        pos = np.array([f0.position(sid) for sid, h in zip(ids, have) if h], np.int64)
        scores = np.full(len(ids), -np.inf, np.float32)
        times = np.zeros(len(ids), np.float64)
        if len(pos):
            sc, starts = self._f0.score(c, pos)
            scores[have] = sc
            times[have] = [f0.time_s[f0.offsets[p] + s] if f0.offsets[p + 1] > f0.offsets[p] else 0.0
                           for p, s in zip(pos, starts)]
        return scores, times, int(f0.offsets[pos + 1].sum() - f0.offsets[pos].sum()) if len(pos) else 0


class FusedSearcher:
    """M_fused: queries shorter than ``threshold_s`` go to the M_short searcher, the others to M_long.

    ``short`` and ``long`` are :class:`Searcher` objects or index paths (then ``Searcher(path, **kw)``).

    Example
    -------
    >>> fs = FusedSearcher("short.idx", "long.idx")     # doctest: +SKIP
    >>> fs.query("hum.wav")[0].song_id                   # doctest: +SKIP
    """

    def __init__(self, short, long, threshold_s: float = 15.0, **kw):
        if not (isinstance(threshold_s, (int, float)) and threshold_s > 0):
            raise ValueError(f"threshold_s must be a positive number of seconds, got {threshold_s!r}")
        self.short = short if isinstance(short, Searcher) else Searcher(short, **kw)
        self.long = long if isinstance(long, Searcher) else Searcher(long, **kw)
        self.threshold_s = float(threshold_s)
        self.last_timing: dict = {}
        self.last_reason: str | None = None

    def choose(self, duration_s: float) -> Searcher:
        return self.short if duration_s < self.threshold_s else self.long

    def query(self, audio, sr: int = SAMPLE_RATE, top: int = 10) -> list[Match]:
        """The ``top`` songs of the searcher :meth:`choose` picks by the length of the query's voiced part."""
        y, y_sr = load_query_audio(audio, sr)
        part = find_voiced(y, y_sr, self.short.voicing) if self.short.voicing is not None and len(y) else None
        s = self.choose((part.kept_samples if part is not None and part.voiced else len(y)) / y_sr)
        out = s.query(y, sr=y_sr, top=top)
        self.last_timing = {**s.last_timing, "model": "short" if s is self.short else "long"}
        self.last_reason = s.last_reason
        return out

    def query_batch(self, audios: Iterable, sr: int = SAMPLE_RATE, top: int = 10) -> list[list[Match]]:
        """:meth:`query` for each item; :attr:`batch_timing` holds each query's timing."""
        return _query_each(self, audios, sr, top)


def _query_each(searcher, audios: Iterable, sr: int, top: int) -> list[list[Match]]:
    """``searcher.query`` for each item, keeping each query's timing in ``searcher.batch_timing``."""
    out, searcher.batch_timing = [], []
    for a in audios:
        out.append(searcher.query(a, sr=sr, top=top))
        searcher.batch_timing.append(dict(searcher.last_timing))
    return out


def tempo_rescore(q: np.ndarray, data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, scores: np.ndarray,
                  lags: np.ndarray, *, scales=None, ratios=None, top: int = TEMPO_TOP, slack: int = TEMPO_SLACK,
                  threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rigid max Pearson ``scores``/``lags`` of the songs at row ranges ``starts``/``lengths`` of ``data``
    (``chadsp.rerank_ranges``), with the ``top`` best re-scored at other tempi: the query stretched to each
    of ``ratios`` (default :data:`TEMPO_RANGE` by :data:`TEMPO_STEP`; :func:`chadml.features.windows.stretch`)
    and correlated around the rigid match (its centre kept, ``slack`` rows either way); a song keeps the
    best of its rigid and stretched scores, and the lag of the best (the song row of the query's start).

    People hum at their own tempo: at 0.85x a 10 s query is 8.5 s of the song, and its rigid alignment holds
    only in the middle. A stretched copy that does not fit in its song whole is not scored (a partial overlap
    would be scored on fewer rows). The results are new arrays; ranking the top by the rigid score first keeps
    the cost of a few hundred small ranges whatever the number of candidates.
    """
    scores = np.array(scores, dtype=np.float32)
    lags = np.array(lags, dtype=np.int64)
    starts, lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
    n = len(q)
    if n < 2 or len(scores) == 0:
        return scores, lags
    ratios = tempo_grid(*TEMPO_RANGE, TEMPO_STEP) if ratios is None else np.asarray(ratios, np.float64)
    sel = np.argsort(-scores, kind="stable")[:max(int(top), 0)]
    sel = sel[np.isfinite(scores[sel]) & (lengths[sel] >= n)]
    centre = lags[sel] + (n - 1) / 2.0
    base = scores[sel].copy()
    for r in ratios:
        if abs(r - 1.0) < 1e-9:
            continue                    # the rigid score is the best over every lag already
        qs = stretch(q, float(r))
        m = len(qs)
        w0 = np.round(centre - (m - 1) / 2.0).astype(np.int64) - slack
        lo = np.clip(w0, 0, lengths[sel])
        hi = np.clip(w0 + m + 2 * slack, 0, lengths[sel])
        ok = hi - lo >= m
        if not ok.any():
            continue
        sc, lg = chadsp.rerank_ranges(qs, data, starts[sel][ok] + lo[ok], (hi - lo)[ok], scales=scales,
                                      threads=threads)
        at = np.flatnonzero(ok)
        better = sc > base[at]
        base[at[better]] = sc[better]
        lags[sel[at[better]]] = lo[ok][better] + lg[better]
    scores[sel] = base
    return scores, lags
