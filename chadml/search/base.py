"""What every searcher shares: the :class:`Match` it returns, the :class:`SearcherProtocol` it follows
(``query`` and ``last_timing`` with the keys of :data:`TIMING_KEYS`), the re-rankers of the encoder
searcher, and the reading of a query (:func:`load_query_audio`).

Example
-------
>>> Match("tune1", "Tune 1", 0.93, 12.5, 1).to_dict()["time_s"]
12.5
>>> Match("tune1", "Tune 1", 0.93, 12.5, 1, confidence=0.98, confident=True).to_dict()["confident"]
True
>>> RERANKERS
('pearson', 'dtw', 'dtw-f0')
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np

from .. import audio as _audio
from ..config import SAMPLE_RATE
from ..features.voicing import VoicedPart, VoicingConfig, trim_to_voiced
from ..util import check_signal

log = logging.getLogger(__name__)

__all__ = ["Match", "SearcherProtocol", "TIMING_KEYS", "RERANKERS", "load_query_audio", "QUERY_VOICING",
           "voicing_option", "trim_query", "not_confident", "voicing_reason"]

#: re-rankers of the ANN candidates of :class:`chadml.search.Searcher` (``rerank=``)
RERANKERS = ("pearson", "dtw", "dtw-f0")
#: keys that every searcher's ``last_timing`` holds after a :meth:`~SearcherProtocol.query`: the query's
#: length (``duration_s``, None when the query came as a contour), the seconds of the matching step
#: (``rerank_s``) and of the whole query (``total_s``); searchers add their own steps (``ann_s``, ``f0_s``...)
TIMING_KEYS = ("duration_s", "rerank_s", "total_s")


@dataclass(frozen=True)
class Match:
    """One ranked song: ``score`` (higher is better: max Pearson, or minus the DTW cost) and
    ``time_s``, where in the song the query's voiced part matches (seconds from the song's start).

    ``confidence``: the calibrated probability that this is the song the query hums
    (:mod:`chadml.search.confidence`: from how far its score stands out from the others'; a lower rank
    gets at most 1 minus the best's); ``confident``: the best match's ``confidence`` reached the
    calibration's threshold (never a lower rank's). A query answered with no confident match (noise, a
    beep, silence, a tune not in the index) has ``confident`` False on every match. None: not computed.
    """
    song_id: str
    title: str
    score: float
    time_s: float
    rank: int
    confidence: float | None = None
    confident: bool = False

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


#: how queries are trimmed to their voiced part before they are searched (:mod:`chadml.features.voicing`):
#: silence and noise before and after the hum cut off (0.25 s kept), pauses longer than 2 s shortened to
#: 2 s (so that no analysis window of the encoder is all silence), at least 1 s of voiced audio needed for
#: a confident answer
QUERY_VOICING = VoicingConfig(max_gap_s=2.0)


def voicing_option(voicing) -> VoicingConfig | None:
    """The ``voicing=`` argument of a searcher: None -> :data:`QUERY_VOICING`, False -> None (no trimming),
    a :class:`~chadml.features.voicing.VoicingConfig` (or its dict) as it is."""
    if voicing is None or voicing is True:
        return QUERY_VOICING
    if voicing is False:
        return None
    if isinstance(voicing, dict):
        return VoicingConfig.from_dict(voicing)
    if not isinstance(voicing, VoicingConfig):
        raise TypeError(f"voicing must be a VoicingConfig, a dict, None or False, got {type(voicing).__name__}")
    return voicing


def trim_query(y: np.ndarray, sr: int, voicing: VoicingConfig | None) -> tuple[np.ndarray, VoicedPart | None, dict]:
    """``(the query's voiced part, the VoicedPart, timing entries)`` (``y`` itself, None and {} when
    ``voicing`` is None). A query with no voiced audio is searched whole (its matches are not confident)."""
    if voicing is None:
        return y, None, {}
    y2, part = trim_to_voiced(y, sr, voicing)
    info = {"voiced_s": part.voiced_s, "query_start_s": part.start_s, "searched_s": len(y2) / sr}
    if not part.voiced:
        log.warning("the query (%.2f s) has no voiced audio (noise or silence?): searched whole, no confident "
                    "match", len(y) / sr)
    elif part.trimmed():
        log.info("query trimmed to its voiced part: %.2f s from %.2f s (%.2f s voiced)", len(y2) / sr, part.start_s,
                 part.voiced_s)
    return y2, part, info


def voicing_reason(part: VoicedPart | None) -> str | None:
    """Why a query cannot have a confident answer (None: it can)."""
    if part is None or part.enough:
        return None
    if not part.voiced:
        return "no voiced audio in the query (noise or silence?)"
    return (f"only {part.voiced_s:.2f} s of voiced audio in the query (at least {part.min_voiced_s:g} s are "
            "needed to identify a tune)")


def not_confident(matches: list[Match]) -> list[Match]:
    """The matches with confidence 0 and ``confident`` False (a query that cannot be answered confidently)."""
    return [replace(m, confidence=0.0, confident=False) for m in matches]
