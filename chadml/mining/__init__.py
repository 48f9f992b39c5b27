"""Algorithm 1 of the paper: aligned fragment groups mined from an original song and its covers.

Two stages, run per song (an original vocal track ``y^o`` and its covers ``Y^c``):

Fragmentation
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

Matching
    For every unique fragment and every cover, ``chadsp.xcorr_match`` of the fragment's fingerprints
    against the cover's; each peak (score >= ``beta_irrel``, peaks at least one fragment length apart)
    becomes a cover fragment of the same duration, starting where the peak puts the fragment's start:
    relevant when the score is >= ``beta_rel``, uncertain (``check_by_crowdsource``) otherwise. By
    default (measured on the built-in corpus; ``MiningConfig.paper()`` is the paper's exact matching)
    fingerprints are standardised per recording, the start is placed by the local tempo, and a peak is
    relevant only if its thirds match near it and it scores within ``peak_margin`` of the best peak.
    Fragments with no match in any cover give no group.

Embedding each recording once
    Every recording (the original and each cover) is fingerprinted once, as a whole. A fragment's
    fingerprints are the windows of the whole-track sequence that lie inside the fragment
    (``MiningConfig.embed="slice"``): the same windows a separate pass over the fragment would give,
    except that (a) they sit on the track's window grid, so the first window starts up to one step
    after the fragment's start (that offset is carried into the cover fragment's start, so no alignment
    is lost), (b) a fragment may get one window fewer, and (c) features near the fragment's edges see
    the neighbouring audio rather than padding. When the slice would lose more than one window the
    fragment is re-embedded on its own. ``embed="fragment"`` re-embeds every fragment (the paper's
    ``M(f^o)``); ``bench`` numbers in the closing note compare the two.

Example
-------
>>> from chadml.mining import MiningConfig
>>> cfg = MiningConfig()
>>> cfg.d_min, cfg.d_max, cfg.pauses, cfg.db_levels
(8.0, 20.0, (0.5, 1.0, 1.5), (52.0, 56.0, 60.0, 64.0, 68.0))
>>> MiningConfig.from_dict(cfg.to_dict()) == cfg
True
>>> MiningConfig.paper().standardize, cfg.standardize, cfg.fit_tempo, cfg.peak_margin
(False, True, True, 0.05)
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .. import ChadError
from ..util import atomic_write_text, progress as _progress_bar

__all__ = [
    "MiningConfig", "Embedding", "Match", "Fragmentation", "embed", "fragment_grid", "correlation_matrix",
    "unique_fragments", "fragment_fingerprints", "fragmentation", "match_fragment", "mine_song", "mine",
    "mining_precision", "read_summary", "song_result_rows", "FORMAT_VERSION",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SR = 16000


# ----------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class MiningConfig:
    """The parameters of Algorithm 1.

    The fragmentation and the thresholds default to the paper's (section 4.1). The matching defaults go
    beyond the paper, chosen by measurement on the built-in corpus (60 train songs x 2 covers, an M_0 of
    width 32 trained 150 epochs on their hummings; ``mining_precision``, tolerance 0.5 s, same-music
    truth; ``relevant``: cover fragments labelled relevant):

    ================================================================  =========  ======  ======  ========
    matching                                                          precision  strict  recall  relevant
    ================================================================  =========  ======  ======  ========
    the paper (:meth:`paper`)                                           0.186     0.142   0.375     689
    standardize + fit_tempo + verify_tempo + peak_margin 0.05           0.611     0.477   0.463     306
    ... + key_check                                                     0.654     0.510   0.463     286
    ... + cross_check 0.05                                              0.700     0.559   0.428     247
    ... + verify_min 0.75                                               0.839     0.673   0.348     168
    ... + verify_min 0.75 + cross_check 0.05                            0.865     0.692   0.333     156
    defaults (all of the above)                                         0.877     0.701   0.333     154
    ================================================================  =========  ======  ======  ========

    Why: a weakly trained model gives every window a large shared component, so with the paper's
    Pearson of raw blocks every fragment correlates > 0.8 with every other (one unique fragment per song)
    and every side peak passes ``beta_rel``; ``standardize`` removes it and evens the dimensions out.
    ``fit_tempo`` removes the start error of rigid matches in faster or slower covers. The rest send
    doubtful peaks to the uncertain class (crowd-checking in the paper) instead of the relevant one:
    ``verify_min`` catches the largest group of errors, covers that sing the start of the fragment's
    music and then go on differently (tunes whose strains begin alike), ``cross_check`` matches that a
    better place of the original explains, ``key_check`` phrases confused with their sequence a step
    away. Precision rises from 0.61 to 0.88 and recall drops from 0.46 to 0.33; with uncertain fragments
    counted, recall stays 0.62. The remaining errors are mostly whole-phrase confusions of a weak model;
    ``MiningConfig.paper()`` (CLI ``--paper-matching``) gives the paper's matching exactly.

    Parameters
    ----------
    d_min, d_max : float
        Fragment length bounds, seconds (8 and 20).
    pauses : tuple of float
        ``D_p``: the longest pause (seconds) bridged when merging non-silent regions (0.5, 1, 1.5).
    db_levels : tuple of float
        ``L_db``: levels below the loudest frame (dB, the ``top_db`` of ``split_by_silence``) under which
        a frame counts as silent (52, 56, 60, 64, 68).
    alpha_corr : float
        Two fragments of the original correlating above this are the same; the later one is dropped (0.8).
    beta_rel, beta_irrel : float
        A cover match scoring >= ``beta_rel`` is relevant, between ``beta_irrel`` and ``beta_rel``
        uncertain (``check_by_crowdsource``), below ``beta_irrel`` dropped (0.5, 0.3).
    embed : {"slice", "fragment"}
        How a fragment gets fingerprints: a slice of the whole track's (fast) or its own pass.
    refine : bool
        Place the cover fragment's start between window steps by a parabola through the peak of the
        cross-correlation curve and its two neighbours (sub-step precision; the paper uses whole steps).
    center : bool
        Remove each recording's mean fingerprint before correlating (a per-dimension centring: the
        Pearson correlation of flattened blocks only removes one scalar mean, so a component shared by
        every window of a weak model makes all blocks look alike). Not in the paper.
    standardize : bool
        Also divide each fingerprint dimension by its standard deviation over the recording (after
        centring; implies ``center``): the dimensions a weak model barely moves no longer drown in the
        ones it moves for everything. Not in the paper.
    peak_margin : float or None
        A peak counts as relevant only when it also scores within ``peak_margin`` of the best peak of
        its (fragment, cover) curve; the others above ``beta_rel`` become uncertain. None: off (the
        paper). A true repeat of the fragment in the cover (a second pass, the second A of an AABB tune)
        scores about as high as the best peak; side peaks of a weak model score lower.
    verify_tempo : bool
        With ``fit_tempo``: a peak whose first and last thirds do not both find their match near it
        (each above ``beta_irrel``, at a tempo ratio of 0.7..1.4) is uncertain, not relevant. Not in the
        paper.
    fit_tempo : bool
        Place the cover fragment's start by the cover's local tempo: the fragment's first and last thirds
        are matched on their own near the peak (within a quarter of the fragment), and the line through
        the two correspondences gives where the fragment's start is sung. A rigid match of a whole
        fragment aligns its middle, so a cover 15 % faster puts the start ``0.15 * d / 2`` s off (1.1 s
        for a 15 s fragment); this removes that. The slope of that line (the cover's tempo against the
        original's) also sets the cover fragment's length: ``duration * ratio``, the span where the
        fragment's music is sung, so that training windows taken at the same relative position of each
        fragment of a group hold the same notes (:class:`chadml.train.GroupBatchSampler`). The paper gives
        every fragment of a group the original's duration, which misaligns windows by up to
        ``(ratio - 1) * d`` in a cover of another tempo (1.8 s near the end of a 12 s fragment sung
        15 % slower). A peak whose tempo cannot be fitted keeps the original's duration. Not in the paper.
    verify_min : float or None
        With ``verify_tempo``: both thirds must also score at least this (None: ``beta_irrel``). A cover
        that sings the start of the fragment's music and then goes on differently (the second strain of
        a tune that begins like the first) matches the first third well and the last one poorly.
        Not in the paper.
    cross_check : float or None
        A relevant match must also hold the other way: the cover's matched block, searched over the whole
        original, must score within ``cross_check`` of its best at the fragment's own place
        (:func:`cross_check`); otherwise it is uncertain. None: off. Not in the paper.
    key_check : bool
        A relevant match must have its cover's transposition: the pitch shift that best aligns the
        fragment's CQT with the cover fragment's (:func:`key_shift`) must be the one most relevant
        matches of that cover agree on; otherwise it is uncertain. A key-invariant encoder confuses a
        phrase with its sequence (the same figure a step higher), whose shift is the cover's plus a step.
        Not in the paper.
    frame_length, hop_length : int
        RMS frames of the silence detection, samples.
    min_peak_db : float
        An original whose peak is below this (dBFS) is skipped as silent.
    """

    d_min: float = 8.0
    d_max: float = 20.0
    pauses: tuple[float, ...] = (0.5, 1.0, 1.5)
    db_levels: tuple[float, ...] = (52.0, 56.0, 60.0, 64.0, 68.0)
    alpha_corr: float = 0.8
    beta_rel: float = 0.5
    beta_irrel: float = 0.3
    embed: str = "slice"
    refine: bool = False
    center: bool = False
    standardize: bool = True
    peak_margin: float | None = 0.05
    verify_tempo: bool = True
    fit_tempo: bool = True
    cross_check: float | None = 0.05
    key_check: bool = True
    verify_min: float | None = 0.75
    frame_length: int = 2048
    hop_length: int = 512
    min_peak_db: float = -70.0

    def __post_init__(self):
        object.__setattr__(self, "pauses", tuple(float(p) for p in self.pauses))
        object.__setattr__(self, "db_levels", tuple(float(d) for d in self.db_levels))
        for name in ("d_min", "d_max", "alpha_corr", "beta_rel", "beta_irrel", "min_peak_db"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"MiningConfig.{name} must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if not 0 < self.d_min <= self.d_max:
            raise ValueError(f"MiningConfig needs 0 < d_min <= d_max, got d_min={self.d_min}, d_max={self.d_max}")
        if not self.pauses or any(p < 0 or not math.isfinite(p) for p in self.pauses):
            raise ValueError(f"MiningConfig.pauses must be non-empty, finite and >= 0, got {self.pauses}")
        if not self.db_levels or any(d <= 0 or not math.isfinite(d) for d in self.db_levels):
            raise ValueError(f"MiningConfig.db_levels must be non-empty, finite and > 0, got {self.db_levels}")
        if not -1 <= self.beta_irrel <= self.beta_rel <= 1:
            raise ValueError("MiningConfig needs -1 <= beta_irrel <= beta_rel <= 1, got "
                             f"beta_irrel={self.beta_irrel}, beta_rel={self.beta_rel}")
        if not -1 <= self.alpha_corr <= 1:
            raise ValueError(f"MiningConfig.alpha_corr must be in [-1, 1], got {self.alpha_corr}")
        if self.embed not in ("slice", "fragment"):
            raise ValueError(f"MiningConfig.embed must be 'slice' or 'fragment', got {self.embed!r}")
        for name in ("peak_margin", "cross_check", "verify_min"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise ValueError(f"MiningConfig.{name} must be None or a finite number >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        for name in ("refine", "center", "standardize", "verify_tempo", "fit_tempo", "key_check"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"MiningConfig.{name} must be a bool, got {type(getattr(self, name)).__name__}")
        for name in ("frame_length", "hop_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"MiningConfig.{name} must be a positive int, got {v!r}")

    @classmethod
    def paper(cls, base: "MiningConfig | None" = None) -> "MiningConfig":
        """``base`` (default: the defaults) with the paper's matching: no centring or scaling of the
        fingerprints, rigid placement, no peak margin, no verify_min, cross_check or key_check, whole-step lags."""
        return dataclasses.replace(base or cls(), center=False, standardize=False, fit_tempo=False,
                                   verify_tempo=False, peak_margin=None, refine=False, cross_check=None,
                                   key_check=False, verify_min=None)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["pauses"], d["db_levels"] = list(self.pauses), list(self.db_levels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MiningConfig":
        from ..config import from_dict
        return from_dict(cls, d, "MiningConfig")


# -------------------------------------------------------------------------------------------- embedding
@dataclass
class Embedding:
    """The fingerprints of one whole recording: ``fps`` (n, D) float32, window ``starts`` (n,) seconds."""

    fps: np.ndarray
    starts: np.ndarray
    window_s: float
    duration: float
    mean: np.ndarray | None = None      # the per-dimension mean removed from fps (``center=True``), else None
    scale: np.ndarray | None = None     # the per-dimension std fps were divided by (``standardize=True``)

    @property
    def step_s(self) -> float:
        """The mean window step (windows start on whole feature frames, so steps vary by a frame)."""
        if len(self.starts) > 1:
            return float(self.starts[-1] - self.starts[0]) / (len(self.starts) - 1)
        return float("nan")

    def window_range(self, start: float, end: float) -> tuple[int, int]:
        """Indices ``[i0, i1)`` of the windows lying inside ``[start, end]`` seconds (1 ms tolerance)."""
        eps = 1e-3
        i0 = int(np.searchsorted(self.starts, start - eps, side="left"))
        i1 = int(np.searchsorted(self.starts + self.window_s, end + eps, side="right"))
        return i0, max(i0, i1)


def _window_s(fingerprinter) -> float:
    wc = getattr(fingerprinter, "window_config", None)
    if wc is None or not hasattr(wc, "window_s"):
        raise TypeError("fingerprinter must have a window_config with window_s (a chadml.encoder.Fingerprinter), "
                        f"got {type(fingerprinter).__name__}")
    return float(wc.window_s)


def embed(fingerprinter, y: np.ndarray, sr: int = SR, *, center: bool = False,
          standardize: bool = False) -> Embedding:
    """Fingerprint a whole recording once; with ``center``, remove the recording's mean fingerprint, with
    ``standardize`` also scale each dimension to unit standard deviation over the recording.

    Example
    -------
    >>> emb = embed(fingerprinter, y)                     # doctest: +SKIP
    >>> emb.fps.shape, emb.starts[:3]                     # doctest: +SKIP
    ((120, 128), array([0.  , 0.256, 0.512]))
    """
    fps, starts = fingerprinter.from_audio(y, sr=sr)
    fps = np.ascontiguousarray(fps, dtype=np.float32)
    starts = np.asarray(starts, dtype=np.float64)
    mean = scale = None
    if (center or standardize) and len(fps):
        mean = fps.mean(axis=0)
        fps = np.ascontiguousarray(fps - mean)
        if standardize:
            sd = fps.std(axis=0)
            scale = np.where(sd > 1e-6 * max(float(sd.max()), 1e-30), sd, 1.0).astype(np.float32)
            fps = np.ascontiguousarray(fps / scale, dtype=np.float32)
    return Embedding(fps, starts, _window_s(fingerprinter), len(y) / sr, mean, scale)


def fragment_fingerprints(emb: Embedding, start: float, end: float, *, y: np.ndarray | None = None,
                          fingerprinter=None, mode: str = "slice", sr: int = SR) -> tuple[np.ndarray, float]:
    """The fingerprints of the fragment ``[start, end]`` s and the offset (s) of its first window.

    ``mode="slice"``: the windows of ``emb`` inside the fragment, unless that loses more than one window
    against a separate pass over the fragment (then, or with ``mode="fragment"``, the fragment's audio
    ``y[start:end]`` is fingerprinted on its own, offset 0).
    """
    if mode not in ("slice", "fragment"):
        raise ValueError(f"mode must be 'slice' or 'fragment', got {mode!r}")
    if mode == "slice":
        i0, i1 = emb.window_range(start, end)
        step = emb.step_s
        dur = end - start
        own = 0 if dur < emb.window_s else int(math.floor((dur - emb.window_s) / step + 1e-6)) + 1 \
            if math.isfinite(step) and step > 0 else 1
        if i1 > i0 and i1 - i0 >= own - 1:
            return emb.fps[i0:i1], float(emb.starts[i0] - start)
    if y is None or fingerprinter is None:
        raise ValueError("fragment_fingerprints needs y and fingerprinter to embed a fragment on its own")
    a, b = int(round(start * sr)), int(round(end * sr))
    fps, starts = fingerprinter.from_audio(y[a:b], sr=sr)
    fps = np.ascontiguousarray(fps, dtype=np.float32)
    if emb.mean is not None:
        fps = np.ascontiguousarray(fps - emb.mean)
    if emb.scale is not None:
        fps = np.ascontiguousarray(fps / emb.scale, dtype=np.float32)
    return fps, (float(starts[0]) if len(starts) else 0.0)


# ------------------------------------------------------------------------------------------ fragmentation
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
    import chadsp
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
    import chadsp
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


# ------------------------------------------------------------------------------------------------ matching
@dataclass
class Match:
    """A cover fragment aligned with an original fragment."""

    start: float        # seconds in the cover
    end: float
    score: float        # the peak of the cross-correlation (Pearson of the fingerprint blocks)
    relevant: bool      # score >= beta_rel (else uncertain: check_by_crowdsource)
    lag: int            # the window index in the cover's fingerprints


def _parabola(curve: np.ndarray, i: int) -> float:
    if 0 < i < len(curve) - 1:
        a, b, c = float(curve[i - 1]), float(curve[i]), float(curve[i + 1])
        den = a - 2 * b + c
        if den < 0:
            return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return 0.0


def _tempo_start(frag_fps: np.ndarray, offset_s: float, cover: Embedding, lag: int, config: MiningConfig):
    """``(start, ratio, weakest)``: the cover time of the fragment's start and the cover's tempo against the
    original (cover seconds per original second), from the fragment's first and last thirds matched apart
    near ``lag`` (see ``MiningConfig.fit_tempo``), each placed between window steps by a parabola through
    its correlation peak, and the lower of the two thirds' peak scores; None when either third finds
    nothing above ``beta_irrel`` or the ratio is outside 0.7..1.4."""
    import chadsp
    n = len(frag_fps)
    m = max(2, n // 3)
    step = cover.step_s
    if n < 6 or not math.isfinite(step) or step <= 0:
        return None
    radius = int(math.ceil(0.25 * n)) + 1
    nc = len(cover.fps)
    found, thirds = [], []
    for first in (0, n - m):
        expect = lag + first
        lo, hi = max(0, expect - radius), min(nc - m, expect + radius)
        if hi < lo:
            return None
        curve = chadsp.xcorr(frag_fps[first:first + m], cover.fps[lo:hi + m])
        k = int(np.argmax(curve))
        if float(curve[k]) < config.beta_irrel:
            return None
        thirds.append(float(curve[k]))
        found.append(float(cover.starts[lo + k]) + _parabola(curve, k) * step)
    head, tail = found
    ratio = (tail - head) / ((n - m) * step)
    if not 0.7 <= ratio <= 1.4:
        return None
    mid = (m - 1) * step / 2 + cover.window_s / 2       # a block's rigid match aligns its centre
    return head + mid - ratio * (mid + offset_s), ratio, min(thirds)


def match_fragment(frag_fps: np.ndarray, offset_s: float, duration: float, cover: Embedding,
                   config: MiningConfig | None = None) -> list[Match]:
    """Algorithm 1, lines 17-21: every match of one original fragment in one cover.

    ``frag_fps`` are the fragment's fingerprints, whose first window starts ``offset_s`` after the
    fragment's start; ``duration`` is the fragment's length. A peak at lag ``l`` puts the cover
    fragment at ``cover.starts[l] - offset_s`` (plus a sub-step correction with ``config.refine``),
    ``duration`` long; with ``config.fit_tempo`` the start and the length come from the cover's fitted
    tempo instead (``duration * ratio``). A match that would run past either end of the cover by more
    than half a step is dropped; one within half a step is moved inside. Matches come in time order.

    Raises ``ValueError`` when the cover has fewer windows than the fragment.

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> c = rng.standard_normal((200, 16)).astype(np.float32)
    >>> cover = Embedding(c, np.arange(200) * 0.25, 3.0, 52.75)
    >>> m = match_fragment(c[40:80], 0.0, 12.75, cover)
    >>> [(x.start, x.end, x.relevant) for x in m]
    [(10.0, 22.75, True)]
    """
    import chadsp
    config = config or MiningConfig()
    frag_fps = np.ascontiguousarray(frag_fps, dtype=np.float32)
    if len(frag_fps) > len(cover.fps):
        raise ValueError(f"the cover has {len(cover.fps)} windows ({cover.duration:.1f} s), fewer than the "
                         f"fragment's {len(frag_fps)} ({duration:.1f} s)")
    if duration > cover.duration:
        raise ValueError(f"the cover ({cover.duration:.1f} s) is shorter than the fragment ({duration:.1f} s)")
    peaks = chadsp.xcorr_match(frag_fps, cover.fps, rel=config.beta_rel, irrel=config.beta_irrel)
    step = cover.step_s if math.isfinite(cover.step_s) else 0.0
    curve = chadsp.xcorr(frag_fps, cover.fps) if config.refine and len(peaks) else None
    out = []
    best = float(peaks["score"].max()) if len(peaks) else float("nan")
    for lag, score, rel in zip(peaks["lag"].tolist(), peaks["score"].tolist(), peaks["relevant"].tolist()):
        start = float(cover.starts[lag]) - offset_s
        length = duration
        if config.peak_margin is not None and score < best - config.peak_margin:
            rel = False
        if curve is not None:
            start += _parabola(curve, lag) * step
        if config.fit_tempo:
            fitted = _tempo_start(frag_fps, offset_s, cover, lag, config)
            if fitted is not None:
                start, ratio, weakest = fitted
                length = min(duration * ratio, cover.duration)
                if config.verify_tempo and config.verify_min is not None and weakest < config.verify_min:
                    rel = False
            elif config.verify_tempo:
                rel = False
        last = cover.duration - length
        if start < -0.5 * step - 1e-9 or start > last + 0.5 * step + 1e-9:
            continue
        start = min(max(start, 0.0), last)
        out.append(Match(start, start + length, float(score), bool(rel), int(lag)))
    out.sort(key=lambda m: m.lag)
    return out


def cross_check(original: Embedding, own: int, cover: Embedding, lag: int, n: int, margin: float,
                tol: float = 0.5) -> bool:
    """True when the cover's block of ``n`` windows at ``lag``, searched over the whole original, scores
    within ``margin`` of its best there at the original fragment's own place (window ``own``, give or take
    ``tol`` seconds): the match holds in both directions. A cover block that belongs to another part of
    the original (a whole-phrase confusion) finds that part a better match than the fragment; a true
    repeat of the fragment's music scores about as high at both places and passes.

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> o = rng.standard_normal((100, 16)).astype(np.float32)
    >>> emb = Embedding(o, np.arange(100) * 0.25, 3.0, 27.75)
    >>> cross_check(emb, 10, emb, 10, 20, 0.05), cross_check(emb, 10, emb, 60, 20, 0.05)
    (True, False)
    """
    import chadsp
    if n < 1 or lag < 0 or lag + n > len(cover.fps) or len(original.fps) < n:
        return False
    curve = chadsp.xcorr(cover.fps[lag:lag + n], original.fps)
    step = original.step_s if math.isfinite(original.step_s) and original.step_s > 0 else 1.0
    r = max(1, int(math.ceil(tol / step)))
    lo, hi = max(0, own - r), min(len(curve), own + r + 1)
    if hi <= lo:
        return False
    return bool(float(curve[lo:hi].max()) >= float(curve.max()) - margin)


KEY_BINS = (24, 72)      # CQT bins (12 per octave from C1) compared by key_shift: C3..B6, the sung range


def pitch_frames(y: np.ndarray, sr: int = SR) -> tuple[np.ndarray, float]:
    """The log CQT of a recording as ``(T, 84)`` float32 frames (12 bins per octave from C1) and their
    rate (frames per second): the input of :func:`key_shift`."""
    from ..features import FeatureConfig, extract_features
    fc = FeatureConfig(sr=sr)
    return np.ascontiguousarray(extract_features(y, fc).T), fc.frame_rate


def key_shift(original: np.ndarray, start: float, end: float, cover: np.ndarray, cover_start: float,
              cover_end: float, rate: float, *, max_shift: int = 7, slack: float = 0.25) -> int | None:
    """The transposition (semitones, ``-max_shift..max_shift``) that best aligns the pitch frames of
    ``original[start:end]`` with those of ``cover[cover_start:cover_end]`` (seconds; the cover's span is
    resampled to the original's length, then searched within ``slack`` s); None when a span is empty.

    A cover is transposed as a whole, so every true match of one cover has the cover's shift. Folk
    tunes (and many songs) repeat a phrase a step higher or lower (a sequence): a key-invariant encoder
    cannot tell the two apart, but their shift differs from the cover's (see ``MiningConfig.key_check``).

    Example
    -------
    >>> import numpy as np
    >>> x = np.zeros((100, 84), np.float32)
    >>> x[np.arange(100), 40 + (np.arange(100) // 10) % 5] = 1                  # a little melody
    >>> up3 = np.roll(x, 3, axis=1)                                             # sung 3 semitones higher
    >>> key_shift(x, 0.0, 3.2, up3, 0.0, 3.2, 31.25)
    3
    """
    import chadsp
    lo, hi = KEY_BINS
    a, b = int(round(start * rate)), int(round(end * rate))
    pad = int(round(slack * rate))
    ca, cb = int(round(cover_start * rate)), int(round(cover_end * rate))
    x = original[max(a, 0):min(b, len(original)), lo:hi]
    seg = cover[max(ca - pad, 0):min(cb + pad, len(cover))]
    if len(x) < 2 or cb - ca < 2 or len(seg) < 2:
        return None
    n = max(len(x), int(round(len(seg) * len(x) / (cb - ca))))        # the cover's span at the original's tempo
    pos = np.linspace(0.0, len(seg) - 1, n)
    i = np.floor(pos).astype(np.int64)
    f = (pos - i)[:, None].astype(np.float32)
    j = np.minimum(i + 1, len(seg) - 1)
    seg = (1 - f) * seg[i] + f * seg[j]
    best, arg = -np.inf, None
    for k in range(-max_shift, max_shift + 1):
        if lo + k < 0 or hi + k > seg.shape[1]:
            continue
        score, _ = chadsp.max_pearson(np.ascontiguousarray(x), np.ascontiguousarray(seg[:, lo + k:hi + k]))
        if score > best:
            best, arg = float(score), k
    return arg


def _consensus(shifts: list[int]) -> int | None:
    """The shift most matches agree on (octave-equivalent shifts pooled); None without a strict winner."""
    if not shifts:
        return None
    classes = [k % 12 for k in shifts]
    counts = np.bincount(classes, minlength=12)
    top = int(counts.argmax())
    if (counts == counts[top]).sum() > 1:
        return None
    return top


# ------------------------------------------------------------------------------------------------ one song
def _rec(row) -> dict:
    """The fields of a SongTable row that mining needs, as a plain dict (picklable, JSON-able)."""
    al = getattr(row, "alignment", None)
    return {"version_id": str(row.version_id), "path": str(row.path), "split": str(getattr(row, "split", "")),
            "duration": float(getattr(row, "duration", float("nan"))),
            "alignment": [[None if o is None else float(o), float(v)] for o, v in (al or [])]}


def _load(rec: dict, sr: int):
    from .. import audio
    return audio.load(rec["path"], sr=sr)


def _r(x: float, nd: int) -> float:
    return float(round(float(x), nd))


def mine_song(song_id: str, original, covers: Sequence, fingerprinter, *, config: MiningConfig | None = None,
              separator=None, plot: bool = False, sr: int = SR) -> dict:
    """Algorithm 1 for one song: its groups of aligned fragments, as a JSON-able dict.

    ``original`` and ``covers`` are SongTable rows (or dicts with ``version_id``, ``path``, ``split``).
    Bad input does not raise: a song that cannot be mined (unreadable or silent original, no covers,
    no fragment of d_min..d_max s) comes back with ``status="skipped"`` and a ``reason``; an unreadable
    cover or one shorter than a fragment is listed in ``skipped`` and the rest is mined.

    Returns
    -------
    dict with ``song_id``, ``status`` ("ok"/"skipped"), ``reason``, ``original``, ``pause``, ``db_level``,
    ``grid``, ``groups`` (each: ``start``, ``end``, ``matches``: list of dicts ``version_id``, ``path``,
    ``start``, ``end``, ``score``, ``relevant``), ``skipped`` (dicts ``version_id``, ``reason``) and
    ``timing`` (seconds: ``load``, ``separation``, ``encoder``, ``total``). Times are rounded to 1 ms and
    scores to 1e-4 so that results are stable across processes and machines.

    Example
    -------
    >>> res = mine_song("s1", orig_row, cover_rows, fingerprinter)     # doctest: +SKIP
    >>> res["status"], len(res["groups"]), res["groups"][0]["matches"][0]["relevant"]  # doctest: +SKIP
    ('ok', 4, True)
    """
    from ..separation import get_separator
    config = config or MiningConfig()
    separator = get_separator(separator)
    t_all = time.perf_counter()
    timing = {"load": 0.0, "separation": 0.0, "encoder": 0.0}
    orig = original if isinstance(original, dict) else _rec(original)
    covs = [c if isinstance(c, dict) else _rec(c) for c in covers]
    res: dict[str, Any] = {"format_version": FORMAT_VERSION, "song_id": str(song_id), "status": "ok",
                           "reason": None, "original": orig, "pause": None, "db_level": None, "grid": [],
                           "groups": [], "skipped": [], "timing": timing}

    def skip(reason: str) -> dict:
        log.warning("song %s skipped: %s", song_id, reason)
        res["status"], res["reason"] = "skipped", reason
        timing["total"] = time.perf_counter() - t_all
        return res

    def prepare(rec):
        t = time.perf_counter()
        y = _load(rec, sr)
        timing["load"] += time.perf_counter() - t
        t = time.perf_counter()
        y = np.ascontiguousarray(separator.separate(y, sr), dtype=np.float32)
        timing["separation"] += time.perf_counter() - t
        return y

    def embed_timed(y):
        t = time.perf_counter()
        e = embed(fingerprinter, y, sr, center=config.center, standardize=config.standardize)
        timing["encoder"] += time.perf_counter() - t
        return e

    if not covs:
        return skip("no covers")
    try:
        y = prepare(orig)
    except Exception as exc:  # an unreadable file of any kind: skipped, the batch goes on
        return skip(f"original {orig['path']} unreadable: {type(exc).__name__}: {exc}")
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if not np.isfinite(peak) or peak <= 10 ** (config.min_peak_db / 20):
        return skip(f"silent original (peak {20 * math.log10(peak) if peak > 0 else -math.inf:.1f} dBFS "
                    f"<= min_peak_db {config.min_peak_db})")
    if len(y) < config.d_min * sr:
        return skip(f"original is {len(y) / sr:.1f} s, shorter than d_min {config.d_min} s")
    emb_o = embed_timed(y)

    class _Timed:       # the encoder time of fragments re-embedded on their own
        window_config = fingerprinter.window_config

        @staticmethod
        def from_audio(a, sr=sr):
            t = time.perf_counter()
            try:
                return fingerprinter.from_audio(a, sr=sr)
            finally:
                timing["encoder"] += time.perf_counter() - t

    frag = fragmentation(y, emb_o, config, fingerprinter=_Timed, sr=sr)
    res["pause"], res["db_level"], res["grid"] = frag.pause, frag.db_level, frag.grid
    if len(frag.fragments) == 0:
        return skip(f"no fragment of {config.d_min:g}-{config.d_max:g} s between silences")

    cover_embs = []
    for rec in covs:
        try:
            yc = prepare(rec)
        except Exception as exc:
            reason = f"unreadable: {type(exc).__name__}: {exc}"
            log.warning("song %s: cover %s skipped: %s", song_id, rec["version_id"], reason)
            res["skipped"].append({"version_id": rec["version_id"], "reason": reason})
            continue
        cover_embs.append((rec, embed_timed(yc), pitch_frames(yc, sr)[0] if config.key_check else None))
    if not cover_embs:
        return skip("no readable cover")
    pitch_o, rate = pitch_frames(y, sr) if config.key_check else (None, 0.0)

    plot_data = None
    short: dict[str, int] = {}
    for (a, b), (fps, off) in zip(frag.fragments.tolist(), frag.fingerprints):
        d = b - a
        matches = []
        own = int(np.abs(emb_o.starts - (a + off)).argmin()) if len(emb_o.starts) else 0   # for cross_check
        for rec, emb_c, pitch_c in cover_embs:
            if d > emb_c.duration or len(fps) > len(emb_c.fps):
                short[rec["version_id"]] = short.get(rec["version_id"], 0) + 1
                continue
            truth = _shifted(lambda t: _true_starts(rec.get("alignment"), t), a)
            for m in match_fragment(fps, off, d, emb_c, config):
                if m.relevant and config.cross_check is not None and not cross_check(
                        emb_o, own, emb_c, m.lag, len(fps), config.cross_check):
                    m.relevant = False
                t = _nearest(truth, m.start)
                matches.append({"version_id": rec["version_id"], "path": rec["path"], "split": rec["split"],
                                "start": _r(m.start, 3), "end": _r(m.end, 3), "score": _r(m.score, 4),
                                "relevant": m.relevant, "true_offset": None if t is None else _r(t, 3)})
                if pitch_c is not None and m.relevant:
                    matches[-1]["key_shift"] = key_shift(pitch_o, a, b, pitch_c, m.start, m.end, rate)
            if plot and plot_data is None:
                plot_data = (a, b, fps, emb_c, rec["version_id"])
        if matches:
            res["groups"].append({"start": _r(a, 3), "end": _r(b, 3), "matches": matches})
    if config.key_check:      # a relevant match must have its cover's transposition (the consensus)
        by_cover: dict[str, list] = {}
        for g in res["groups"]:
            for mt in g["matches"]:
                if mt["relevant"] and mt.get("key_shift") is not None:
                    by_cover.setdefault(mt["version_id"], []).append(mt)
        for ms in by_cover.values():
            agreed = _consensus([mt["key_shift"] for mt in ms])
            for mt in ms:
                if agreed is not None and mt["key_shift"] % 12 != agreed:
                    mt["relevant"] = False
    n_frag = len(frag.fragments)
    for vid, k in short.items():
        reason = f"shorter than {k} of {n_frag} fragment(s)"
        log.warning("song %s: cover %s: %s", song_id, vid, reason)
        res["skipped"].append({"version_id": vid, "reason": reason})
    if plot and plot_data is not None:
        res["_plot"] = _plot_png(song_id, *plot_data, config)
    timing["total"] = time.perf_counter() - t_all
    return res


def _plot_png(song_id, a, b, fps, emb_c, version_id, config: MiningConfig) -> bytes:
    import chadsp
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    curve = chadsp.xcorr(fps, emb_c.fps)
    peaks = chadsp.xcorr_match(fps, emb_c.fps, rel=config.beta_rel, irrel=config.beta_irrel)
    t = emb_c.starts[:len(curve)]
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    ax.plot(t, curve, lw=1, color="0.2", label="cross-correlation")
    rel = peaks["relevant"]
    ax.plot(t[peaks["lag"][rel]], peaks["score"][rel], "o", color="tab:green", label="relevant")
    ax.plot(t[peaks["lag"][~rel]], peaks["score"][~rel], "o", color="tab:orange", label="uncertain")
    ax.axhline(config.beta_rel, color="tab:green", ls="--", lw=0.8, label=f"beta_rel {config.beta_rel:g}")
    ax.axhline(config.beta_irrel, color="tab:red", ls="--", lw=0.8, label=f"beta_irrel {config.beta_irrel:g}")
    ax.set_xlabel(f"lag in cover {version_id} (s, start of the fragment's first window)")
    ax.set_ylabel("Pearson")
    ax.set_title(f"song {song_id}: original fragment {a:.2f}-{b:.2f} s vs cover {version_id}", fontsize=9)
    ax.set_ylim(-1, 1)
    ax.legend(fontsize=7, loc="lower right", ncol=3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------- rows / manifest
def song_result_rows(result: dict) -> list:
    """The manifest rows (``chadml.data.FragmentRow``) of one song's result, in a fixed order.

    As in CHAD, ``group_id`` is the song and ``fragment_id`` the fragment: ``"c<k>"`` (C part; k: its rank
    in time order among the song's groups), apart from the humming fragments' ids of the same song, so
    the rows of one aligned group share ``key == "<song_id>/c<k>"``; ``id`` is ``"<song_id>/c<k>/<j>"``
    with ``j = 0`` the original fragment, then the cover fragments in cover order and time. ``true_offset``: where the original fragment's start truly is in that recording, for songs
    whose alignment is known (generated data); NaN otherwise.
    """
    from ..data import FragmentRow
    rows = []
    if result.get("status") != "ok":
        return rows
    sid = result["song_id"]
    orig = result["original"]
    nan = float("nan")
    for k, g in enumerate(result["groups"]):
        dur = _r(g["end"] - g["start"], 3)
        rows.append(FragmentRow(group_id=sid, fragment_id=f"c{k}", id=f"{sid}/c{k}/0", audio_type="original",
                                source_id=orig["version_id"], start=g["start"], end=g["end"], correlation=1.0,
                                check_by_crowdsource=False, duration=dur, path=orig["path"],
                                true_offset=g["start"] if orig.get("alignment") else nan, split=orig["split"]))
        for j, m in enumerate(g["matches"], start=1):
            t = m.get("true_offset")
            rows.append(FragmentRow(group_id=sid, fragment_id=f"c{k}", id=f"{sid}/c{k}/{j}", audio_type="cover",
                                    source_id=m["version_id"], start=m["start"], end=m["end"],
                                    correlation=m["score"], check_by_crowdsource=not m["relevant"],
                                    duration=_r(m["end"] - m["start"], 3),
                                    path=m["path"], true_offset=nan if t is None else t,
                                    split=m.get("split", orig["split"])))
    return rows


def _safe_name(song_id: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(song_id))[:60]
    return f"{s}-{hashlib.sha1(str(song_id).encode()).hexdigest()[:10]}.json"


def _song_jobs(songs, song_ids):
    table = songs.songs()
    ids = sorted(table, key=str) if song_ids is None else list(song_ids)
    jobs = []
    for sid in ids:
        if sid not in table:
            raise ValueError(f"song_ids: {sid!r} is not in the song table")
        o, covers = table[sid]
        jobs.append((str(sid), None if o is None else _rec(o), [_rec(c) for c in covers]))
    return jobs


def _job(sid, orig, covers, fingerprinter, config, separator, plot):
    if orig is None:
        log.warning("song %s skipped: no original in the song table", sid)
        return {"format_version": FORMAT_VERSION, "song_id": sid, "status": "skipped",
                "reason": "no original in the song table", "original": None, "groups": [], "skipped": [],
                "grid": [], "timing": {"load": 0.0, "separation": 0.0, "encoder": 0.0, "total": 0.0}}
    return mine_song(sid, orig, covers, fingerprinter, config=config, separator=separator, plot=plot)


def _ray_job(sid, orig, covers, fingerprinter, config_dict, separator, plot):
    return _job(sid, orig, covers, fingerprinter, MiningConfig.from_dict(config_dict), separator, plot)


def mine(songs, fingerprinter, out_manifest: str | os.PathLike, *, config: MiningConfig | None = None,
         workdir: str | os.PathLike | None = None, engine: str = "local", address: str | None = None,
         plots_dir: str | os.PathLike | None = None, progress: bool = True, separator=None,
         song_ids: Iterable[str] | None = None, model_id: str | None = None):
    """Mine every song of a SongTable; write the manifest of aligned fragment groups.

    Parameters
    ----------
    songs : chadml.data.SongTable
        Originals and their covers (``songs.songs()`` groups them).
    fingerprinter : chadml.encoder.Fingerprinter
        The model M_i (anything with ``from_audio(y, sr) -> (fps, starts)`` and ``window_config``).
    out_manifest : path
        The manifest written (atomically) at the end.
    workdir : path, optional
        Per-song results (one JSON each, written atomically as each song finishes) and ``summary.json``.
        A rerun with the same workdir skips finished songs, so an interrupted job loses nothing; the final
        manifest is built from the per-song results in song-id order, hence equal to an uninterrupted
        run's. Default: ``<out_manifest>.work``. A workdir made with another config or model is refused
        (``ChadError``); delete a song's JSON to mine it again.
    engine : {"local", "ray"}
        ``"ray"`` sends each song as a Ray task (``pip install chad[distributed]``); ``address``: the Ray
        cluster (default: an already initialised Ray, else a local one). Workers read the audio paths
        themselves (use paths all nodes see); results come back to this process, which writes them.
    plots_dir : path, optional
        A PNG per song: the cross-correlation of its first fragment against its first cover, with the
        picked peaks and both thresholds.
    separator : chadml.separation.Separator or name, optional
        Vocal separation before fingerprinting (default: identity: vocal stems).
    song_ids : iterable of str, optional
        Mine only these songs (default: all, sorted by id).
    model_id : str, optional
        The model's identity (``chadml.train.checkpoint_id``), kept in the workdir to refuse mixing models.

    Returns
    -------
    chadml.data.Manifest
        The mined groups; the run's summary (counts, ``skipped`` songs with reasons, timings) is in
        ``<workdir>/summary.json`` (``read_summary(workdir)``).

    Example
    -------
    >>> from chadml.data import SongTable
    >>> from chadml.train import load_fingerprinter
    >>> fp = load_fingerprinter("m0.pt")                                        # doctest: +SKIP
    >>> man = mine(SongTable.read("corpus/songs.csv"), fp, "mined.csv")         # doctest: +SKIP
    >>> read_summary("mined.csv.work")["relevant"]                              # doctest: +SKIP
    412
    """
    from ..data import Manifest
    from ..separation import get_separator
    config = config or MiningConfig()
    if not isinstance(config, MiningConfig):
        raise TypeError(f"config must be a MiningConfig, got {type(config).__name__}")
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    separator = get_separator(separator)
    out_manifest = os.fspath(out_manifest)
    workdir = os.fspath(workdir) if workdir is not None else out_manifest + ".work"
    os.makedirs(os.path.join(workdir, "songs"), exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, "config": config.to_dict(), "model_id": model_id,
            "window_s": _window_s(fingerprinter), "separator": getattr(separator, "name", type(separator).__name__)}
    meta_path = os.path.join(workdir, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            old = json.load(f)
        if old != meta:
            raise ChadError(f"workdir {workdir} holds results of another mining config or model "
                            f"({old} != {meta}); use another --workdir or delete it")
    else:
        atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True))
    if plots_dir is not None:
        os.makedirs(plots_dir, exist_ok=True)

    jobs = _song_jobs(songs, song_ids)
    path_of = {sid: os.path.join(workdir, "songs", _safe_name(sid)) for sid, _, _ in jobs}
    results: dict[str, dict] = {}
    todo = []
    for job in jobs:
        p = path_of[job[0]]
        if os.path.exists(p):
            with open(p) as f:
                results[job[0]] = json.load(f)
        else:
            todo.append(job)
    bar = _progress_bar(total=len(jobs), initial=len(jobs) - len(todo), desc="mining", unit="song",
                        **({} if progress else {"disable": True}))
    t0 = time.perf_counter()

    def finish(res: dict):
        png = res.pop("_plot", None)
        if png is not None and plots_dir is not None:
            from ..util import atomic_write_bytes
            atomic_write_bytes(os.path.join(plots_dir, _safe_name(res["song_id"])[:-5] + ".png"), png)
        atomic_write_text(path_of[res["song_id"]], json.dumps(res, sort_keys=True))
        results[res["song_id"]] = json.loads(json.dumps(res))
        bar.update(1)

    plot = plots_dir is not None
    try:
        if engine == "local" or not todo:
            for sid, o, c in todo:
                finish(_job(sid, o, c, fingerprinter, config, separator, plot))
        else:
            _run_ray(todo, fingerprinter, config, separator, plot, address, finish)
    finally:
        bar.close()
    wall = time.perf_counter() - t0

    rows = []
    for sid, _, _ in jobs:
        rows.extend(song_result_rows(results[sid]))
    manifest = Manifest(rows)
    manifest.write(out_manifest)
    summary = _summary([results[sid] for sid, _, _ in jobs], rows, wall, len(todo))
    atomic_write_text(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=1, sort_keys=True))
    log.info("mined %d songs (%d skipped): %d groups, %d relevant and %d uncertain cover fragments -> %s",
             summary["songs"], len(summary["skipped"]), summary["groups"], summary["relevant"],
             summary["uncertain"], out_manifest)
    return manifest


def _run_ray(todo, fingerprinter, config, separator, plot, address, finish):
    try:
        import ray
    except ImportError as exc:
        raise ChadError("engine 'ray' needs Ray: pip install 'chad[distributed]' (or ray>=2.9)") from exc
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(_ray_job)
        fp_ref = ray.put(fingerprinter)
        cfg = config.to_dict()
        pending = [remote.remote(sid, o, c, fp_ref, cfg, separator, plot) for sid, o, c in todo]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                finish(ray.get(ref))
    finally:
        if started:
            ray.shutdown()


def _summary(results: list[dict], rows: list, wall: float, n_mined_now: int) -> dict:
    covers = [r for r in rows if r.audio_type == "cover"]
    t = {k: sum(float(r.get("timing", {}).get(k, 0.0)) for r in results)
         for k in ("load", "separation", "encoder", "total")}
    return {
        "format_version": FORMAT_VERSION,
        "songs": len(results),
        "mined": sum(r["status"] == "ok" for r in results),
        "skipped": [{"song_id": r["song_id"], "reason": r["reason"]} for r in results if r["status"] != "ok"],
        "skipped_covers": [{"song_id": r["song_id"], **s} for r in results for s in r.get("skipped", [])],
        "groups": len({r.key for r in rows}),
        "fragments": len(rows),
        "relevant": sum(not r.check_by_crowdsource for r in covers),
        "uncertain": sum(bool(r.check_by_crowdsource) for r in covers),
        "hours": sum(float(r.duration) for r in rows) / 3600.0,
        "cover_hours": sum(float(r.duration) for r in covers) / 3600.0,
        "timing": {**t, "dsp": t["total"] - t["encoder"], "wall_this_run": wall, "songs_this_run": n_mined_now},
    }


def read_summary(workdir: str | os.PathLike) -> dict:
    """The summary ``mine`` wrote into ``workdir``."""
    p = os.path.join(os.fspath(workdir), "summary.json")
    if not os.path.exists(p):
        raise FileNotFoundError(f"no mining summary at {p}: run mine() with this workdir first")
    with open(p) as f:
        return json.load(f)


# ------------------------------------------------------------------------------------------------ precision
def _true_starts(alignment, t: float) -> list[float]:
    """Every place in a version where original time ``t`` is sung (a repeated section: several)."""
    from ..data import map_time
    if not alignment:
        return []
    v = np.asarray(map_time(alignment, float(t), all=True), dtype=np.float64).ravel()
    return [float(x) for x in v if math.isfinite(x)]


def _shifted(fn, t: float, max_shift: float = 2.0, step: float = 0.05) -> list[float]:
    """``fn(t)`` (true places of original time ``t``), or where ``t`` falls where the map is undefined (a
    fragment starting in the breath before the first note, or in a pause between passes), ``fn(t + s) - s``
    for the smallest ``s`` (in ``step`` s, up to ``max_shift``) where it is defined."""
    for k in range(int(round(max_shift / step)) + 1):
        xs = fn(t + k * step)
        if xs:
            return [x - k * step for x in xs]
    return []


def _nearest(xs: list[float], x: float):
    return min(xs, key=lambda y: abs(y - x)) if xs else None


def _same_music_starts(original, version, t: float, duration: float) -> list[float] | None:
    """Every place in ``version`` where the ``duration`` s of music from original time ``t`` are sung with
    the same notes (built-in corpus rows, whose tunes repeat: see ``chadml.corpus.same_music_times``); None
    for rows without that metadata."""
    extra_o, extra_v = getattr(original, "extra", {}) or {}, getattr(version, "extra", {}) or {}
    if not all(k in extra_o and k in extra_v for k in ("score_map", "pass_beats")):
        return None
    from ..corpus import same_music_times
    v = np.asarray(same_music_times(original, version, float(t), duration=max(float(duration), 1e-3)),
                   dtype=np.float64).ravel()
    return [float(x) for x in v if math.isfinite(x)]


def mining_precision(manifest, songs, tol: float = 0.5) -> dict:
    """Mining precision and recall against the true alignments of generated data.

    A cover fragment is *correct* when its start is within ``tol`` seconds of a true position of its
    original fragment's start in that cover (a start in a breath before the music, where the time map is
    undefined, is mapped through the first defined moment after it, at most 2 s later). Two truths are
    counted:

    - ``*_strict``: the places where that moment of the original recording is sung in the cover
      (``chadml.data.map_time(..., all=True)`` of the cover's alignment: a repeated section counts twice);
    - the headline ``precision``/``recall``: the places where the same *music* is sung: the fragment's
      notes (pitches and durations, over its length in beats) are the notes sung from there. The built-in
      corpus's songs repeat their tune and the tunes repeat their phrases (AABB), and the fragmentation
      keeps only the first of repeated fragments, so a fragment of the first A rightly matches the second
      A and every later pass of the cover (in CHAD such a cover fragment is a correct aligned fragment);
      ``chadml.corpus.same_music_times`` (with ``duration``) gives those places for corpus rows
      (``score_map`` metadata). For other song tables the two truths are the same.

    Precision: the share of relevant cover fragments that are correct. Recall: of the true aligned
    fragments (each mined original fragment x each cover of its song x each true place with the whole
    fragment inside the cover), the share found by a correct relevant fragment. Uncertain fragments are
    counted apart (``uncertain_precision``, ``recall_with_uncertain``).

    Example
    -------
    >>> mining_precision(Manifest.read("mined.csv"), SongTable.read("songs.csv"))   # doctest: +SKIP
    {'precision': 0.97, 'recall': 0.88, 'relevant': 412, 'uncertain': 61, ...}
    """
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0 (seconds), got {tol!r}")
    table = songs.songs()
    version = {}
    for sid, (o, covers) in table.items():
        for c in covers:
            version[str(c.version_id)] = (sid, c)
    cnt = {k: 0 for k in ("rel", "rel_ok", "unc", "unc_ok", "true", "found", "found_any",
                          "rel_ok_s", "unc_ok_s", "true_s", "found_s", "found_any_s")}
    music_used = False
    for key, grows in manifest.groups().items():
        origs = [r for r in grows if r.audio_type == "original"]
        covs = [r for r in grows if r.audio_type == "cover"]
        if not origs or not covs:
            continue
        o = origs[0]
        a, d = float(o.start), float(o.duration)
        for r in covs:
            if str(r.source_id) not in version:
                raise ValueError(f"manifest row {r.id}: source_id {r.source_id!r} is not a cover in the song table")
        sid = version[str(covs[0].source_id)][0]
        orig_row = table[sid][0]
        truths = {}
        for c in table[sid][1]:
            strict = _shifted(lambda t: _true_starts(c.alignment, t), a)
            music = None
            if _same_music_starts(orig_row, c, a, d) is not None:
                music = _shifted(lambda t: _same_music_starts(orig_row, c, t, d - (t - a)), a)
                music_used = True
            truths[str(c.version_id)] = (music if music is not None else strict, strict, float(c.duration))
        for r in covs:
            music, strict, _ = truths[str(r.source_id)]
            ok = any(abs(float(r.start) - x) <= tol for x in music)
            ok_s = any(abs(float(r.start) - x) <= tol for x in strict)
            if r.check_by_crowdsource:
                cnt["unc"] += 1
                cnt["unc_ok"] += ok
                cnt["unc_ok_s"] += ok_s
            else:
                cnt["rel"] += 1
                cnt["rel_ok"] += ok
                cnt["rel_ok_s"] += ok_s
        for vid, (music, strict, dur) in truths.items():
            mine_ = [(float(r.start), bool(r.check_by_crowdsource)) for r in covs if str(r.source_id) == vid]
            for xs, sfx in ((music, ""), (strict, "_s")):
                for x in xs:
                    if x < -tol or x + d > dur + tol:
                        continue
                    cnt["true" + sfx] += 1
                    found = [u for s, u in mine_ if abs(s - x) <= tol]
                    cnt["found" + sfx] += any(not u for u in found)
                    cnt["found_any" + sfx] += bool(found)

    def ratio(x, y):
        return cnt[x] / cnt[y] if cnt[y] else float("nan")
    return {"precision": ratio("rel_ok", "rel"), "recall": ratio("found", "true"),
            "precision_strict": ratio("rel_ok_s", "rel"), "recall_strict": ratio("found_s", "true_s"),
            "relevant": cnt["rel"], "relevant_correct": cnt["rel_ok"], "uncertain": cnt["unc"],
            "uncertain_correct": cnt["unc_ok"], "uncertain_precision": ratio("unc_ok", "unc"),
            "recall_with_uncertain": ratio("found_any", "true"), "true_fragments": cnt["true"],
            "found": cnt["found"], "truth": "same_music" if music_used else "map_time", "tol": float(tol)}


# ------------------------------------------------------------------------------------------------ CLI
def add_mining_options(p: argparse.ArgumentParser) -> None:
    """The Algorithm 1 options shared by ``chad mine`` and ``chad loop``."""
    d = MiningConfig()
    g = p.add_argument_group("Algorithm 1 parameters (defaults: the paper's)")
    g.add_argument("--d-min", type=float, default=d.d_min, help="shortest fragment, s (%(default)s)")
    g.add_argument("--d-max", type=float, default=d.d_max, help="longest fragment, s (%(default)s)")
    g.add_argument("--pauses", type=float, nargs="+", default=list(d.pauses), metavar="S", help="D_p, s (%(default)s)")
    g.add_argument("--db-levels", type=float, nargs="+", default=list(d.db_levels), metavar="DB",
                   help="L_db (%(default)s)")
    g.add_argument("--alpha-corr", type=float, default=d.alpha_corr, help="%(default)s")
    g.add_argument("--beta-rel", type=float, default=d.beta_rel, help="%(default)s")
    g.add_argument("--beta-irrel", type=float, default=d.beta_irrel, help="%(default)s")
    g.add_argument("--embed", choices=("slice", "fragment"), default=d.embed,
                   help="fragment fingerprints: slices of the whole track's, or a pass per fragment (%(default)s)")
    B = argparse.BooleanOptionalAction
    g.add_argument("--refine", action=B, default=d.refine, help="sub-step placement of cover fragments")
    g.add_argument("--center", action=B, default=d.center, help="remove each recording's mean fingerprint first")
    g.add_argument("--standardize", action=B, default=d.standardize,
                   help="centre and scale each fingerprint dimension to unit variance per recording")
    g.add_argument("--fit-tempo", action=B, default=d.fit_tempo,
                   help="place cover fragments by the local tempo (first and last thirds matched apart)")
    g.add_argument("--verify-tempo", action=B, default=d.verify_tempo,
                   help="with --fit-tempo: a peak whose thirds do not both match near it is uncertain")
    g.add_argument("--peak-margin", type=float, default=d.peak_margin, metavar="M",
                   help="relevant only within M of the best peak of the curve (%(default)s; <0: off)")
    g.add_argument("--verify-min", type=float, default=d.verify_min, metavar="S",
                   help="with --verify-tempo: both thirds must score at least S (%(default)s; <0: beta_irrel)")
    g.add_argument("--cross-check", type=float, default=d.cross_check, metavar="M",
                   help="relevant only when the cover block, searched over the whole original, scores within M "
                        "of its best at the fragment's own place (%(default)s; <0: off)")
    g.add_argument("--key-check", action=B, default=d.key_check,
                   help="relevant only when the match has its cover's transposition (the consensus of its matches)")
    g.add_argument("--paper-matching", action="store_true",
                   help="the paper's matching exactly (no centring, scaling, tempo fit, margin or checks)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="where songs are mined (%(default)s)")
    p.add_argument("--address", default=None, help="Ray cluster address (with --engine ray)")


def _off_if_negative(v):
    """A CLI value where a negative number means "off" (None)."""
    return v if v is not None and v >= 0 else None


def config_from_args(args) -> MiningConfig:
    c = MiningConfig(d_min=args.d_min, d_max=args.d_max, pauses=tuple(args.pauses),
                     db_levels=tuple(args.db_levels), alpha_corr=args.alpha_corr, beta_rel=args.beta_rel,
                     beta_irrel=args.beta_irrel, embed=args.embed, refine=args.refine,
                     center=args.center, standardize=args.standardize, fit_tempo=args.fit_tempo,
                     verify_tempo=args.verify_tempo, peak_margin=_off_if_negative(args.peak_margin),
                     cross_check=_off_if_negative(args.cross_check), key_check=args.key_check,
                     verify_min=_off_if_negative(args.verify_min))
    return MiningConfig.paper(c) if getattr(args, "paper_matching", False) else c


def _cli_mine(args) -> int:
    from ..data import SongTable
    from ..models import checkpoint_id, load_fingerprinter
    from .. import util as prog
    for name, p in (("--model", args.model), ("--songs", args.songs)):
        if not os.path.exists(p):
            raise FileNotFoundError(f"{name}: no such file: {p}")
    config = config_from_args(args)
    songs = SongTable.read(args.songs)
    if args.split != "all":
        keep = {r.song_id for r in songs.rows if str(getattr(r, "split", "")) == args.split}
        ids = sorted((s for s in songs.songs() if s in keep), key=str)
    else:
        ids = None
    from ..separation import separator_from_args
    separator = separator_from_args(args)
    fp = load_fingerprinter(args.model)
    man = mine(songs, fp, args.out, config=config, workdir=args.workdir, engine=args.engine, address=args.address,
               plots_dir=args.plots, progress=not (prog.QUIET or getattr(args, "quiet", False)), song_ids=ids,
               model_id=checkpoint_id(args.model), separator=separator)
    s = read_summary(args.workdir or args.out + ".work")
    print(f"{s['songs']} songs ({len(s['skipped'])} skipped): {s['groups']} groups, {s['relevant']} relevant + "
          f"{s['uncertain']} uncertain cover fragments, {s['hours']:.2f} h -> {args.out}")
    for k in s["skipped"]:
        print(f"  skipped {k['song_id']}: {k['reason']}")
    if args.precision:
        pr = mining_precision(man, songs)
        print(f"mining precision {pr['precision']:.3f} (of {pr['relevant']} relevant), recall {pr['recall']:.3f} "
              f"(of {pr['true_fragments']}); uncertain {pr['uncertain']} (precision {pr['uncertain_precision']:.3f})")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "mine", help="mine aligned fragment groups from originals and covers (Algorithm 1)",
        description="Algorithm 1 of the CHAD paper: fragment every original at silences, keep the unique "
                    "fragments, find them in the covers by cross-correlating fingerprints, and write the "
                    "groups of aligned fragments to a manifest. Resumable: rerun the same command after an "
                    "interruption. Exit codes: 0 done, 1 a failure while mining, 2 bad usage or input.")
    p.add_argument("--model", required=True, metavar="CKPT", help="the encoder checkpoint (chad train)")
    p.add_argument("--songs", required=True, metavar="SONGS_CSV", help="the song table (originals + covers)")
    p.add_argument("--out", required=True, metavar="MANIFEST", help="the manifest to write")
    p.add_argument("--workdir", default=None, metavar="DIR", help="per-song results (default: MANIFEST.work)")
    p.add_argument("--plots", default=None, metavar="DIR", help="a PNG per song: xcorr curve, peaks, thresholds")
    p.add_argument("--split", default="train", help="mine songs of this split, or 'all' (%(default)s)")
    p.add_argument("--precision", action="store_true",
                   help="print mining precision/recall against the song table's true alignments")
    add_mining_options(p)
    from ..separation import add_separator_args
    add_separator_args(p, what="originals and covers")
    p.set_defaults(func=_cli_mine)
