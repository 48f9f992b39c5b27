"""The parameters of Algorithm 1 (:class:`MiningConfig`) and the version of the per-song results format.

Example
-------
>>> from chadml.mining import MiningConfig
>>> cfg = MiningConfig()
>>> cfg.d_min, cfg.d_max, cfg.pauses, cfg.db_levels
(8.0, 20.0, (0.5, 1.0, 1.5), (52.0, 56.0, 60.0, 64.0, 68.0))
>>> MiningConfig.from_dict(cfg.to_dict()) == cfg
True
>>> MiningConfig.paper().standardize, cfg.standardize, cfg.tempo_scan, cfg.peak_margin, cfg.block_min
(False, True, True, 0.05, 0.7)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..config import SAMPLE_RATE, from_dict

__all__ = ["MiningConfig", "FORMAT_VERSION", "SR"]

FORMAT_VERSION = 1        # of the per-song results, the workdir's meta.json and summary.json
SR = SAMPLE_RATE          # mining reads every recording at 16 kHz


@dataclass(frozen=True)
class MiningConfig:
    """The parameters of Algorithm 1.

    The fragmentation and the thresholds default to the paper's (section 4.1). The matching defaults go
    beyond the paper, chosen by measurement: on a tuning corpus (120 built-in tunes that neither release
    training nor the held-out evaluation uses, ``chadml.release.training_tunes(2200)[2000:2120]``, 2 covers
    each, demo-length songs, seed 1) with the shipped model as M_0, ``mining_precision`` (tolerance 0.5 s,
    same-music truth): the checks and their thresholds were picked on a grid there, for the most recall at
    a precision near 0.95; then checked on the demo's covers (``chad demo``'s corpus, 60 training songs x
    2 covers), which played no part in the choice:

    ==========================================================  =================  =================
    matching (shipped model as M_0)                             tuning corpus      demo's covers
                                                                precision  recall  precision  recall
    ==========================================================  =================  =================
    the paper (:meth:`paper`; its fragments differ)                 0.139   0.494      0.156   0.485
    rigid (:meth:`rigid`: chad's matching before tempo_scan)        0.849   0.479      0.872   0.407
    tempo_scan, no check                                            0.331   0.988      0.340   1.000
    ... + peak_margin 0.05                                          0.621   0.932      0.632   0.892
    ... + block_min 0.7                                             0.882   0.533      0.917   0.530
    defaults (... + context_min 0.7)                                0.947   0.389      0.958   0.425
    ==========================================================  =================  =================

    Why: covers sing at their own tempo (0.85-1.15 of the original's in the built-in corpus), and one
    cross-correlation at the original's tempo aligns only the middle of a fragment: with 3 s windows every
    0.25 s, the true place of a 15 s fragment in a cover 10 % faster scores like a chance place, and
    ``tempo_scan`` (the fragment stretched to each ratio of ``tempo_range``) finds the true places the rigid
    curve misses. The checks then send doubtful peaks to the uncertain class (crowd-checking in the paper):
    ``peak_margin`` side peaks, ``block_min`` covers that sing most of the fragment but jump inside it
    (a skipped or repeated section landing on similar music: the whole correlates well, the blocks
    around the jump do not), ``context_min`` a phrase confused with a near repeat of it, which sits among
    other phrases. ``standardize`` removes the component every window of a weak model shares.
    The errors left are cover fragments that sing all but a beat or two of the fragment's notes (a jump
    at its very start or end), which fingerprints of 3 s windows cannot tell from the right place. On a
    second corpus (the 80 tunes after those, ``training_tunes(2200)[2120:2200]``, seed 2) the defaults give
    0.919 at recall 0.422, so expect a precision of 0.92-0.96 on such covers (the demo's 0.958 is at the
    top of that range).
    ``MiningConfig.paper()`` (CLI ``--paper-matching``) gives the paper's matching exactly,
    ``MiningConfig.rigid()`` (``--rigid-matching``) chad's earlier matching, the one the shipped model's
    loop mined with.

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
        fragment of a group hold the same notes (:class:`chadml.training.train.GroupBatchSampler`). The paper gives
        every fragment of a group the original's duration, which misaligns windows by up to
        ``(ratio - 1) * d`` in a cover of another tempo (1.8 s near the end of a 12 s fragment sung
        15 % slower). A peak whose tempo cannot be fitted keeps the original's duration. Not in the paper.
    verify_min : float or None
        With ``verify_tempo``: both thirds must also score at least this (None: ``beta_irrel``). A cover
        that sings the start of the fragment's music and then goes on differently (the second strain of
        a tune that begins like the first) matches the first third well and the last one poorly.
        Not in the paper.
    cross_check : float or None
        (Off by default.) A relevant match must also hold the other way: the cover's matched block, searched
        over the whole original, must score within ``cross_check`` of its best at the fragment's own place
        (:func:`cross_check`); otherwise it is uncertain. None: off. Not in the paper.
    key_check : bool
        (Off by default.) A relevant match must have its cover's transposition: the pitch shift that best aligns the
        fragment's CQT with the cover fragment's (:func:`key_shift`) must be the one most relevant
        matches of that cover agree on; otherwise it is uncertain. A key-invariant encoder confuses a
        phrase with its sequence (the same figure a step higher), whose shift is the cover's plus a step.
        Not in the paper.
    tempo_scan : bool
        Match each fragment at every tempo ratio of ``tempo_range`` (:func:`chadml.mining.tempo_curve`):
        its fingerprints stretched to the ratio, cross-correlated with the cover's, the best ratio per lag;
        a match then spans ``duration * ratio`` (placed by the line through its best correlation, within
        half a ratio step and half a window step, in quarter steps). False: one cross-correlation at the original's tempo
        (``chadsp.xcorr_match``), placed by ``fit_tempo`` (``verify_tempo`` and ``verify_min`` apply only
        then). Not in the paper.
    tempo_range : (float, float)
        The tempo ratios a scan tries, cover seconds per original second (0.8, 1.25: a cover 20 % faster
        to 25 % slower).
    tempo_step : float
        The relative step between tried ratios (0.03: powers of 1.03, 1 among them).
    block_min : float or None
        With ``tempo_scan``: every half-overlapping block of 6 windows of the fragment must correlate at
        least this with the cover along the match (each within 0.25 s of it,
        :func:`chadml.mining.block_score`); otherwise the match is uncertain. None: off. Not in the paper.
    context_min : float or None
        With ``tempo_scan``: where the original has music within 8 s before or after the fragment, the
        better side must correlate at least this with the cover along the match (within 0.75 s,
        :func:`chadml.mining.context_score`); otherwise the match is uncertain. None: off. Not in the paper.
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
    cross_check: float | None = None
    key_check: bool = False
    verify_min: float | None = 0.75
    tempo_scan: bool = True
    tempo_range: tuple[float, float] = (0.8, 1.25)
    tempo_step: float = 0.03
    block_min: float | None = 0.7
    context_min: float | None = 0.7
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
        try:
            lo, hi = (float(x) for x in self.tempo_range)
        except (TypeError, ValueError):
            raise ValueError("MiningConfig.tempo_range must be two numbers (low, high), "
                             f"got {self.tempo_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.25 <= lo <= 1.0 <= hi <= 4.0):
            raise ValueError(f"MiningConfig.tempo_range must satisfy 0.25 <= low <= 1 <= high <= 4 (cover seconds per "
                             f"original second), got {self.tempo_range!r}")
        object.__setattr__(self, "tempo_range", (lo, hi))
        v = self.tempo_step
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0.001 <= v <= 0.5):
            raise ValueError(f"MiningConfig.tempo_step must be a number in [0.001, 0.5] (a relative step), got {v!r}")
        object.__setattr__(self, "tempo_step", float(v))
        for name in ("block_min", "context_min"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and -1 <= v <= 1):
                raise ValueError(f"MiningConfig.{name} must be None or a number in [-1, 1], got {v!r}")
            object.__setattr__(self, name, float(v))
        for name in ("peak_margin", "cross_check", "verify_min"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise ValueError(f"MiningConfig.{name} must be None or a finite number >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        for name in ("refine", "center", "standardize", "verify_tempo", "fit_tempo", "key_check", "tempo_scan"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"MiningConfig.{name} must be a bool, got {type(getattr(self, name)).__name__}")
        for name in ("frame_length", "hop_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"MiningConfig.{name} must be a positive int, got {v!r}")

    @classmethod
    def paper(cls, base: "MiningConfig | None" = None) -> "MiningConfig":
        """``base`` (default: the defaults) with the paper's matching: no centring or scaling of the
        fingerprints, rigid matching and placement, no peak margin, no verify_min, block, context, cross or
        key check, whole-step lags."""
        return dataclasses.replace(base or cls(), center=False, standardize=False, fit_tempo=False,
                                   verify_tempo=False, peak_margin=None, refine=False, cross_check=None,
                                   key_check=False, verify_min=None, tempo_scan=False, block_min=None,
                                   context_min=None)

    @classmethod
    def rigid(cls, base: "MiningConfig | None" = None) -> "MiningConfig":
        """``base`` (default: the defaults) with the rigid matching chad used before ``tempo_scan`` (one
        cross-correlation at the original's tempo, the start placed by the fitted tempo of the fragment's
        thirds, ``verify_min``, ``cross_check`` 0.05 and ``key_check``): the matching the shipped model's
        loop mined with (:mod:`chadml.release`)."""
        return dataclasses.replace(base or cls(), tempo_scan=False, block_min=None, context_min=None,
                                   fit_tempo=True, verify_tempo=True, verify_min=0.75, cross_check=0.05,
                                   key_check=True)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["pauses"], d["db_levels"], d["tempo_range"] = list(self.pauses), list(self.db_levels), list(self.tempo_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MiningConfig":
        return from_dict(cls, d, "MiningConfig")
