"""The no-learning baseline of the encoder: raw feature frames matched by max Pearson over lags.

:class:`RawFeatureSearcher` keeps every song's raw feature sequence (CQT frames, ``(T, 84)``) in one
packed array and matches a query's raw features against all of them by max Pearson over lags
(:func:`chadsp.rerank`, the same re-ranker the learned system uses). It answers "what does the
encoder add over its own input features?". It has the :class:`chadml.search.Searcher` query API.

Example
-------
>>> from chadml.search import RawFeatureSearcher
>>> s = RawFeatureSearcher([("a", "a.flac"), ("b", "b.flac")])   # doctest: +SKIP
>>> s.query("hum.wav", top=1)[0].song_id                          # doctest: +SKIP
"""
from __future__ import annotations

import time
from typing import Iterable, Sequence

import chadsp
import numpy as np

from ..audio import load, resample
from ..config import SAMPLE_RATE, check_top
from ..features import FeatureConfig, extract_features
from .base import Match, load_query_audio, trim_query, voicing_option

__all__ = ["RawFeatureSearcher"]


class RawFeatureSearcher:
    """Max-Pearson matching of raw feature frames against every song (exhaustive, no index).

    Parameters
    ----------
    songs : iterable of (song_id, path or audio array at 16 kHz[, title])
    feature_config : chadml.features.FeatureConfig (default: the paper's CQT)
    threads : re-ranker threads (None: all cores)
    voicing : how queries are trimmed to their voiced part (as :class:`chadml.search.Searcher`'s;
        False: not at all). Matches have no ``confidence`` (this baseline is not calibrated).

    Example
    -------
    >>> s = RawFeatureSearcher([("a", "a.flac"), ("b", "b.flac")])   # doctest: +SKIP
    >>> s.query(hum, sr=16000, top=1)[0].song_id                     # doctest: +SKIP
    """

    def __init__(self, songs: Iterable[Sequence], feature_config=None, *, threads: int | None = None, voicing=None):
        self.feature_config = feature_config or FeatureConfig()
        self.threads = threads
        self.voicing = voicing_option(voicing)
        ids, titles, seqs = [], [], []
        for item in songs:
            sid, src = str(item[0]), item[1]
            y = load(src, sr=self.feature_config.sr) if not isinstance(src, np.ndarray) else src
            seqs.append(np.ascontiguousarray(extract_features(y, self.feature_config).T))
            ids.append(sid)
            titles.append(str(item[2]) if len(item) > 2 and item[2] else sid)
        if not seqs:
            raise ValueError("RawFeatureSearcher needs at least one song")
        self.song_ids, self.titles = ids, titles
        self.offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum([len(s) for s in seqs])
        self.data = np.ascontiguousarray(np.concatenate(seqs))
        self.last_timing: dict = {}

    def __len__(self) -> int:
        return len(self.song_ids)

    def query(self, audio, sr: int = SAMPLE_RATE, top: int = 10) -> list[Match]:
        """The ``top`` songs for a query (array at ``sr`` or a path), best first."""
        t0 = time.perf_counter()
        top = check_top(top)
        y, y_sr = load_query_audio(audio, sr)
        if y_sr != self.feature_config.sr:
            y = resample(y, y_sr, self.feature_config.sr)
        dur = len(y) / self.feature_config.sr
        y, _, info = trim_query(y, self.feature_config.sr, self.voicing) if len(y) else (y, None, {})
        q = np.ascontiguousarray(extract_features(y, self.feature_config).T)
        t1 = time.perf_counter()
        scores, lags = chadsp.rerank(q, (self.data, self.offsets), threads=self.threads)
        order = np.argsort(-scores, kind="stable")[:top]
        t2 = time.perf_counter()
        self.last_timing = {"duration_s": dur, "features_s": t1 - t0, "rerank_s": t2 - t1, "total_s": t2 - t0,
                            **info}
        fr = self.feature_config.frame_rate
        return [Match(self.song_ids[i], self.titles[i], float(scores[i]), float(lags[i]) / fr, r + 1)
                for r, i in enumerate(order)]
