"""Retrieval baselines with no learning.

``RawFeatureSearcher``: every song's raw feature sequence (CQT frames, ``(T, 84)``) kept in one packed
array, a query's raw features matched against all of them by max Pearson over lags
(:func:`chadsp.rerank`, the same re-ranker the learned system uses). It answers "what does the
encoder add over its own input features?" and has the :class:`chadml.search.Searcher` query API so
:func:`chadml.evaluate.evaluate` runs it unchanged.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = ["RawFeatureSearcher", "RawMatch"]


@dataclass(frozen=True)
class RawMatch:
    song_id: str
    title: str
    score: float
    time_s: float
    rank: int

    def to_dict(self) -> dict:
        return {"song_id": self.song_id, "title": self.title, "score": self.score, "time_s": self.time_s,
                "rank": self.rank}


class RawFeatureSearcher:
    """Max-Pearson matching of raw feature frames against every song (exhaustive, no index).

    Parameters
    ----------
    songs : iterable of (song_id, path or audio array at 16 kHz[, title])
    feature_config : chadml.features.FeatureConfig (default: the paper's CQT)
    threads : re-ranker threads (None: all cores)

    Example
    -------
    >>> s = RawFeatureSearcher([("a", "a.flac"), ("b", "b.flac")])   # doctest: +SKIP
    >>> s.query(hum, sr=16000, top=1)[0].song_id                     # doctest: +SKIP
    """

    def __init__(self, songs: Iterable[Sequence], feature_config=None, *, threads: int | None = None):
        from .audio import load
        from .features import FeatureConfig, extract_features
        self.feature_config = feature_config or FeatureConfig()
        self.threads = threads
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

    def query(self, audio, sr: int = 16000, top: int = 10) -> list[RawMatch]:
        import chadsp

        from .audio import load, resample
        from .features import extract_features
        t0 = time.perf_counter()
        if isinstance(audio, np.ndarray):
            y = audio if sr == self.feature_config.sr else resample(audio, sr, self.feature_config.sr)
        else:
            y = load(audio, sr=self.feature_config.sr)
        q = np.ascontiguousarray(extract_features(y, self.feature_config).T)
        t1 = time.perf_counter()
        scores, lags = chadsp.rerank(q, (self.data, self.offsets), threads=self.threads)
        order = np.argsort(-scores, kind="stable")[:top]
        self.last_timing = {"features": t1 - t0, "rerank": time.perf_counter() - t1}
        fr = self.feature_config.frame_rate
        return [RawMatch(self.song_ids[i], self.titles[i], float(scores[i]), float(lags[i]) / fr, r + 1)
                for r, i in enumerate(order)]
