"""The parameters of Algorithm 1 (:class:`MiningConfig`) and the version of the per-song results format.

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
        return from_dict(cls, d, "MiningConfig")
