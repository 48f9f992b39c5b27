"""Algorithm 1 of the paper: aligned fragment groups mined from an original song and its covers.

Two stages, run per song (an original vocal track ``y^o`` and its covers ``Y^c``):

Fragmentation (:mod:`chadml.mining.fragments`)
    For every pause length ``d_p`` in ``D_p`` and dB level ``l_db`` in ``L_db``:
    ``chadsp.split_by_silence`` (non-silent regions, ``top_db = l_db``) then ``chadsp.merge_fragments``
    (join across pauses <= ``d_p``, keep fragments of ``d_min``..``d_max`` seconds). The fragments are
    embedded, their correlation matrix is built (the maximum of the cross-correlation of two fingerprint
    sequences of different lengths: ``chadsp.max_pearson`` with the shorter one as the query), and of
    every pair above ``alpha_corr`` the *later* fragment is dropped (a greedy pass in time order: a
    fragment is kept when it correlates <= ``alpha_corr`` with every fragment kept before it, so the
    first occurrence of a repeated chorus survives). The grid point with the most unique fragments wins;
    on a tie the earlier grid point (``D_p`` outer, ``L_db`` inner, in the given order) is kept: the
    paper's line 12 ``F, F_prev <- max(F, F_prev)`` replaces the best set only by a strictly larger one.

Matching (:mod:`chadml.mining.matching`)
    For every unique fragment and every cover, the fragment's fingerprints are cross-correlated with the
    cover's at every tempo ratio of ``MiningConfig.tempo_range`` (the fragment stretched to each); each
    peak of the best ratio per lag (score >= ``beta_irrel``, peaks at least half a fragment apart) becomes
    a cover fragment where the peak puts the fragment's start, as long as the fragment at that tempo:
    relevant when the score is >= ``beta_rel`` and the checks hold (within ``peak_margin`` of the best
    peak, every block of the fragment along the match, the music around it), uncertain
    (``check_by_crowdsource``) otherwise. Fingerprints are standardised per recording. ``MiningConfig.paper()``
    is the paper's exact matching (``chadsp.xcorr_match`` at the original's tempo, no checks),
    ``MiningConfig.rigid()`` chad's earlier one. Fragments with no match in any cover give no group.

Embedding each recording once (:mod:`chadml.mining.embedding`)
    Every recording (the original and each cover) is fingerprinted once, as a whole; a fragment's
    fingerprints are the windows of the whole-track sequence inside it (``MiningConfig.embed="slice"``),
    or its own pass (``embed="fragment"``, the paper's ``M(f^o)``).

The modules: :mod:`~chadml.mining.config` (:class:`MiningConfig` and its measured defaults),
:mod:`~chadml.mining.embedding`, :mod:`~chadml.mining.fragments`, :mod:`~chadml.mining.matching`,
:mod:`~chadml.mining.song` (one song: :func:`mine_song`), :mod:`~chadml.mining.runner` (a song table:
:func:`mine`, resumable, local or on Ray, and the manifest) and :mod:`~chadml.mining.precision`
(:func:`mining_precision` against the corpus's truth).

Example
-------
>>> from chadml.mining import MiningConfig, mine, mining_precision
>>> from chadml.data import SongTable
>>> from chadml.models import load_fingerprinter
>>> songs = SongTable.read("corpus/songs.csv")                                          # doctest: +SKIP
>>> man = mine(songs, load_fingerprinter("m0.pt"), "mined.csv", config=MiningConfig())  # doctest: +SKIP
>>> mining_precision(man, songs)["precision"]                                           # doctest: +SKIP
0.877
"""
from __future__ import annotations

from .config import FORMAT_VERSION, SR, MiningConfig
from .embedding import Embedding, embed, fragment_fingerprints, window_seconds
from .fragments import Fragmentation, correlation_matrix, fragment_grid, fragmentation, unique_fragments
from .matching import (KEY_BINS, Match, block_score, consensus_shift, context_score, cross_check, key_shift,
                       match_fragment, pitch_frames, stretch, tempo_curve, tempo_ratios)
from .precision import mining_precision
from .runner import mine, read_summary, song_result_rows
from .song import mine_song

__all__ = [
    "MiningConfig", "Embedding", "Match", "Fragmentation", "embed", "fragment_grid", "correlation_matrix",
    "unique_fragments", "fragment_fingerprints", "fragmentation", "match_fragment", "mine_song", "mine",
    "mining_precision", "read_summary", "song_result_rows", "FORMAT_VERSION", "SR", "cross_check", "key_shift",
    "pitch_frames", "consensus_shift", "KEY_BINS", "window_seconds", "tempo_ratios", "stretch", "tempo_curve",
    "block_score", "context_score",
]
