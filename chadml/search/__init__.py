"""Search: the songs a query hums or sings, by the learned encoder or by the classical baselines.

- :mod:`chadml.search.base`: :class:`Match`, the :class:`SearcherProtocol` every searcher follows,
  :data:`RERANKERS`, :func:`load_query_audio`, and the trimming of queries to their voiced part
  (:data:`QUERY_VOICING`, :mod:`chadml.features.voicing`);
- :mod:`chadml.search.confidence`: each match's calibrated ``confidence`` and ``confident`` (no confident
  match for noise, beeps, silence or a tune the index lacks): :class:`Calibration`, :func:`fit_calibration`;
- :mod:`chadml.search.encoder`: :class:`Searcher` (fingerprints -> FAISS candidates -> max-Pearson,
  DTW or f0 + DTW re-ranking) and :class:`FusedSearcher` (M_short / M_long by query length);
- :mod:`chadml.search.f0`: the classical f0 + DTW matcher :class:`F0DtwSearcher`, over an
  :class:`F0Index` (:mod:`chadml.search.f0_index`) of pitch contours (:mod:`chadml.search.contour`);
- :mod:`chadml.search.raw`: :class:`RawFeatureSearcher`, raw CQT frames matched by max Pearson.

Example
-------
>>> from chadml.search import F0DtwSearcher, FusedSearcher, Searcher
>>> learned = FusedSearcher("short.idx", "long.idx", rerank="pearson")     # doctest: +SKIP
>>> classical = F0DtwSearcher("short.idx/f0")                              # doctest: +SKIP
>>> [s.query("hum.wav", top=1)[0].song_id for s in (learned, classical)]   # doctest: +SKIP
['tune3', 'tune3']
"""
from __future__ import annotations

from .base import QUERY_VOICING, RERANKERS, TIMING_KEYS, Match, SearcherProtocol, load_query_audio
from .confidence import (CALIBRATION_FILE, DEFAULT_CALIBRATIONS, Calibration, calibrate, fit_calibration,
                         load_calibration, save_calibration, score_features)
from .contour import F0Config, contour_from_f0, f0_contour
from .encoder import FusedSearcher, Searcher
from .f0 import F0DtwSearcher
from .f0_index import F0_CATALOG, F0_FORMAT_VERSION, F0Index, F0IndexError
from .raw import RawFeatureSearcher

__all__ = ["Match", "Searcher", "FusedSearcher", "RERANKERS", "TIMING_KEYS", "SearcherProtocol",
           "load_query_audio", "F0DtwSearcher", "F0Index", "F0IndexError", "F0Config", "f0_contour",
           "contour_from_f0", "F0_FORMAT_VERSION", "F0_CATALOG", "RawFeatureSearcher", "QUERY_VOICING",
           "Calibration", "DEFAULT_CALIBRATIONS", "CALIBRATION_FILE", "fit_calibration", "calibrate",
           "load_calibration", "save_calibration", "score_features"]
