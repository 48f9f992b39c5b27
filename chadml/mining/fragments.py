"""Algorithm 1, lines 1-14: the unique fragments of an original.

For every pause length ``d_p`` in ``D_p`` and dB level ``l_db`` in ``L_db``:
``chadsp.split_by_silence`` (non-silent regions, ``top_db = l_db``) then ``chadsp.merge_fragments``
(join across pauses <= ``d_p``, keep fragments of ``d_min``..``d_max`` seconds) (:func:`fragment_grid`).
The fragments are embedded, their correlation matrix is built (:func:`correlation_matrix`: the maximum
of the cross-correlation of two fingerprint sequences of different lengths, ``chadsp.max_pearson`` with
the shorter one as the query), and of every pair above ``alpha_corr`` the *later* fragment is dropped
(:func:`unique_fragments`). The grid point with the most unique fragments wins (:func:`fragmentation`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import chadsp
import numpy as np

from .config import SR, MiningConfig
from .embedding import Embedding, fragment_fingerprints

__all__ = ["fragment_grid", "correlation_matrix", "unique_fragments", "Fragmentation", "fragmentation"]


def fragment_grid(y: np.ndarray, config: MiningConfig | None = None, sr: int = SR
                  ) -> list[tuple[tuple[float, float], np.ndarray]]:
    """Candidate fragments for every grid point: ``[((d_p, l_db), int64[m, 2] sample intervals), ...]``.

    In the paper's loop order (``D_p`` outer, ``L_db`` inner). Splitting depends only on ``l_db``, so it
    runs once per level.

    Example
    -------
    >>> grid = fragment_grid(y)                                   # doctest: +SKIP
    >>> grid[0][0], grid[0][1][:2]                                # doctest: +SKIP
    ((0.5, 52.0), array([[ 16000, 176000], [200000, 360000]]))
    """
    config = config or MiningConfig()
    split = {l_db: chadsp.split_by_silence(y, top_db=l_db, frame_length=config.frame_length,
                                           hop_length=config.hop_length) for l_db in config.db_levels}
    out = []
    for d_p in config.pauses:
        for l_db in config.db_levels:
            merged = chadsp.merge_fragments(split[l_db], max_pause=int(round(d_p * sr)),
                                            min_len=int(round(config.d_min * sr)),
                                            max_len=int(round(config.d_max * sr)))
            out.append(((d_p, l_db), np.asarray(merged, dtype=np.int64).reshape(-1, 2)))
    return out


def correlation_matrix(seqs: Sequence[np.ndarray]) -> np.ndarray:
    """Symmetric (n, n) matrix of ``max_pearson(shorter, longer)`` between fingerprint sequences; diagonal 1.

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.standard_normal((30, 8)).astype(np.float32)
    >>> c = correlation_matrix([a, a[5:20], rng.standard_normal((25, 8)).astype(np.float32)])
    >>> round(float(c[0, 1]), 4), bool(abs(c[0, 2]) < 0.5)
    (1.0, True)
    """
    n = len(seqs)
    c = np.eye(n, dtype=np.float32)
    for i in range(n):
        for j in range(i + 1, n):
            q, t = (seqs[i], seqs[j]) if len(seqs[i]) <= len(seqs[j]) else (seqs[j], seqs[i])
            if len(q) == 0:
                continue
            score, _ = chadsp.max_pearson(q, t)
            c[i, j] = c[j, i] = score
    return c


def unique_fragments(corr: np.ndarray, alpha_corr: float) -> np.ndarray:
    """Indices kept by a greedy pass in order: a fragment stays if it is <= ``alpha_corr`` with all kept before.

    Example
    -------
    >>> import numpy as np
    >>> c = np.array([[1, .9, .1], [.9, 1, .2], [.1, .2, 1]], np.float32)
    >>> unique_fragments(c, 0.8).tolist()
    [0, 2]
    """
    corr = np.asarray(corr)
    if corr.ndim != 2 or corr.shape[0] != corr.shape[1]:
        raise ValueError(f"corr must be a square matrix, got shape {corr.shape}")
    kept: list[int] = []
    for i in range(corr.shape[0]):
        if all(corr[i, k] <= alpha_corr for k in kept):
            kept.append(i)
    return np.asarray(kept, dtype=np.int64)


@dataclass
class Fragmentation:
    """The outcome of the fragmentation stage for one original."""

    pause: float | None                 # the chosen d_p (None: no grid point gave a fragment)
    db_level: float | None              # the chosen l_db
    fragments: np.ndarray               # float64 (k, 2): unique fragments, seconds, in time order
    fingerprints: list                  # per fragment: (fps (n, D), offset of the first window, s)
    grid: list = field(default_factory=list)   # per grid point: dict(pause, db_level, candidates, unique)


def fragmentation(y: np.ndarray, emb: Embedding, config: MiningConfig | None = None, *,
                  fingerprinter=None, sr: int = SR) -> Fragmentation:
    """Algorithm 1, lines 1-14: the unique fragments of the original ``y`` (embedded once in ``emb``).

    Example
    -------
    >>> emb = embed(fingerprinter, y)                             # doctest: +SKIP
    >>> frag = fragmentation(y, emb, MiningConfig())              # doctest: +SKIP
    >>> frag.pause, frag.db_level, frag.fragments                 # doctest: +SKIP
    (0.5, 52.0, array([[ 1.  , 12.5 ], [14.  , 25.98]]))
    """
    config = config or MiningConfig()
    cache: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
    pair_cache: dict[tuple, float] = {}

    def fps_of(a: int, b: int):
        if (a, b) not in cache:
            cache[(a, b)] = fragment_fingerprints(emb, a / sr, b / sr, y=y, fingerprinter=fingerprinter,
                                                  mode=config.embed, sr=sr)
        return cache[(a, b)]

    best = Fragmentation(None, None, np.zeros((0, 2)), [], [])
    best_n = 0
    for (d_p, l_db), iv in fragment_grid(y, config, sr):
        keys = [(int(a), int(b)) for a, b in iv]
        keys = [k for k in keys if len(fps_of(*k)[0]) > 0]
        n = len(keys)
        corr = np.eye(n, dtype=np.float32)
        for i in range(n):
            for j in range(i + 1, n):
                pk = (keys[i], keys[j])
                if pk not in pair_cache:
                    pair_cache[pk] = float(correlation_matrix([fps_of(*keys[i])[0], fps_of(*keys[j])[0]])[0, 1])
                corr[i, j] = corr[j, i] = pair_cache[pk]
        kept = unique_fragments(corr, config.alpha_corr)
        best.grid.append({"pause": d_p, "db_level": l_db, "candidates": len(iv), "unique": int(len(kept))})
        if len(kept) > best_n:          # line 12: max(F, F_prev), the earlier grid point wins a tie
            best_n = len(kept)
            sel = [keys[i] for i in kept]
            best.pause, best.db_level = d_p, l_db
            best.fragments = np.asarray([[a / sr, b / sr] for a, b in sel], dtype=np.float64).reshape(-1, 2)
            best.fingerprints = [fps_of(*k) for k in sel]
    return best
