"""What every searcher shares: the :class:`Match` it returns, the :class:`SearcherProtocol` it follows
(``query`` and ``last_timing`` with the keys of :data:`TIMING_KEYS`), the re-rankers of the encoder
searcher, and the reading of a query (:func:`load_query_audio`).

Example
-------
>>> Match("tune1", "Tune 1", 0.93, 12.5, 1).to_dict()["time_s"]
12.5
>>> RERANKERS
('pearson', 'dtw', 'dtw-f0')
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .. import audio as _audio
from ..config import SAMPLE_RATE
from ..util import check_signal

__all__ = ["Match", "SearcherProtocol", "TIMING_KEYS", "RERANKERS", "load_query_audio"]

#: re-rankers of the ANN candidates of :class:`chadml.search.Searcher` (``rerank=``)
RERANKERS = ("pearson", "dtw", "dtw-f0")
#: keys that every searcher's ``last_timing`` holds after a :meth:`~SearcherProtocol.query`: the query's
#: length (``duration_s``, None when the query came as a contour), the seconds of the matching step
#: (``rerank_s``) and of the whole query (``total_s``); searchers add their own steps (``ann_s``, ``f0_s``...)
TIMING_KEYS = ("duration_s", "rerank_s", "total_s")


@dataclass(frozen=True)
class Match:
    """One ranked song: ``score`` (higher is better: max Pearson, or minus the DTW cost) and
    ``time_s``, where in the song the query matches (seconds from its start)."""
    song_id: str
    title: str
    score: float
    time_s: float
    rank: int

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class SearcherProtocol(Protocol):
    """A query-by-humming method: :class:`chadml.search.Searcher`, :class:`~chadml.search.FusedSearcher`,
    :class:`~chadml.search.F0DtwSearcher`, :class:`~chadml.search.RawFeatureSearcher` (what
    :func:`chadml.evaluate.evaluate` runs). ``last_timing`` describes the last query (:data:`TIMING_KEYS`)."""

    last_timing: dict

    def query(self, audio, sr: int = SAMPLE_RATE, top: int = 10) -> list[Match]:
        """The ``top`` songs for a query (audio array at ``sr``, or a file path), best first."""
        ...


def load_query_audio(audio, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """``(mono float32 signal, sample rate)`` of a path (read and resampled to 16 kHz) or an array at ``sr``."""
    if isinstance(audio, (str, os.PathLike)):
        return _audio.load(os.fspath(audio), sr=SAMPLE_RATE), SAMPLE_RATE
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer sample rate, got {sr!r}")
    return check_signal(audio, "audio"), int(sr)
