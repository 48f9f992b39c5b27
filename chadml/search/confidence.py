"""How sure a search is: a calibrated probability that the best match is the song the query hums.

A searcher always ranks the songs it has, also for white noise, a beep or a tune that is not in the
index; the raw score does not tell those apart from a real match (white noise scored 0.887 max Pearson
against the demo index, a correct match 0.954). What does is how far the best song stands out from the
others: :func:`score_features` takes the scores of every song the searcher ranked (all songs, or the ANN
candidates) and gives

- ``z``: the best score in standard deviations above the mean of the others, minus what the best of
  that many songs reaches by chance (the expected maximum of ``n`` standard normal draws; so the feature
  does not grow with the size of the index);
- ``margin``: the gap between the best and the second best score, in the same standard deviations.

Both are free of the score's scale (max Pearson, minus a DTW cost, minus a semitone error), so one
:class:`Calibration` per re-ranker, a logistic model ``p = 1 / (1 + exp(-(b0 + b1 z + b2 margin)))``,
carries over to other models and index sizes far better than a threshold on the raw score would (a
weaker model is simply confident less often: the demo's 4-minute model, right on 12 % of its queries,
was confident on none, right or wrong). ``confident`` is ``p >= threshold``. Queries with too little
voice (noise, a beep, silence: :func:`chadml.search.base.voicing_reason`) are never confident, whatever
their scores.

Where a calibration comes from (:func:`load_calibration`): ``calibration.json`` in the index's directory
(written by :func:`save_calibration` after :func:`calibrate` on that index's own positives and
negatives), else the built-in :data:`DEFAULT_CALIBRATIONS` (fitted on the built-in corpus, never on
music21's essenFolksong; see their ``fitted_on``).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> noise_scores = rng.normal(0.5, 0.05, 200)                 # nothing stands out
>>> match_scores = np.r_[0.95, rng.normal(0.5, 0.05, 199)]    # one song far above the rest
>>> cal = DEFAULT_CALIBRATIONS["pearson"]
>>> cal.confidence(noise_scores) < 0.5 < cal.confidence(match_scores)
True
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from ..config import from_dict
from ..util import atomic_write_text
from ..util import progress as _progress

__all__ = ["Calibration", "DEFAULT_CALIBRATIONS", "CALIBRATION_FILE", "MIN_SONGS", "score_features",
           "expected_max", "fit_calibration", "calibrate", "load_calibration", "save_calibration"]

#: the file in an index directory (a song index or an F0 index) holding its calibrations, by re-ranker
CALIBRATION_FILE = "calibration.json"
#: fewer ranked songs than this: the scores say nothing about the others (confidence 0)
MIN_SONGS = 5


def expected_max(n: int) -> float:
    """The expected maximum of ``n`` independent standard normal draws (Blom's approximation).

    >>> round(expected_max(100), 2), expected_max(1)
    (2.5, 0.0)
    """
    if n <= 1:
        return 0.0
    from scipy.stats import norm
    return float(norm.ppf((n - 0.375) / (n + 0.25)))


def score_features(scores) -> np.ndarray | None:
    """``[z, margin]`` of the scores of every ranked song (any order; higher is better; -inf/NaN ignored),
    or None when fewer than :data:`MIN_SONGS` are finite. See the module docstring.

    >>> score_features([0.9, 0.5, 0.5, 0.4, 0.6, 0.5]).round(2).tolist()
    [5.14, 4.74]
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = np.sort(s[np.isfinite(s)])[::-1]
    if len(s) < MIN_SONGS:
        return None
    rest = s[1:]
    sd = float(rest.std())
    sd = max(sd, 1e-9, 1e-6 * abs(float(rest.mean())))
    z = (s[0] - float(rest.mean())) / sd - expected_max(len(rest))
    return np.array([z, (s[0] - s[1]) / sd])


@dataclass(frozen=True)
class Calibration:
    """A logistic model of P(the best match is right) from :func:`score_features`.

    ``coef``: ``(b0, b_z, b_margin)``; ``threshold``: the probability from which a match is
    ``confident``; ``rerank``: the scores it was fitted on; ``fitted_on``: a description of the data;
    ``stats``: what the fit measured (counts, shares on its data).

    Example
    -------
    >>> cal = Calibration("pearson", (-6.0, 1.0, 2.0))
    >>> round(cal.probability([4.0, 1.0]), 3)
    0.5
    """

    rerank: str
    coef: tuple
    threshold: float = 0.5
    fitted_on: str = ""
    stats: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        c = tuple(float(x) for x in self.coef)
        if len(c) != 3 or not all(math.isfinite(x) for x in c):
            raise ValueError(f"Calibration.coef must be 3 finite numbers (b0, b_z, b_margin), got {self.coef!r}")
        object.__setattr__(self, "coef", c)
        if not 0.0 < float(self.threshold) < 1.0:
            raise ValueError(f"Calibration.threshold must be in (0, 1), got {self.threshold!r}")

    def probability(self, features) -> float:
        """P(right) of one query's ``[z, margin]`` (0.0 for None: too few songs)."""
        if features is None:
            return 0.0
        b0, bz, bm = self.coef
        x = b0 + bz * float(features[0]) + bm * float(features[1])
        return float(1.0 / (1.0 + math.exp(-x))) if x > -700 else 0.0

    def confidence(self, scores) -> float:
        """P(right) of the best of these scores (every ranked song's)."""
        return self.probability(score_features(scores))

    def rank_confidences(self, scores, n: int) -> list[tuple[float, bool]]:
        """``(confidence, confident)`` of the ``n`` best of ``scores`` (every ranked song's), best first.

        The best gets :meth:`confidence`; a lower rank ``r`` gets the same model on its own score
        (``z`` of it, ``margin`` to the next one), capped by ``1 - p_best`` (if the best is right, it is
        not), and is never ``confident``: one query has at most one confident answer.

        >>> cal = Calibration("pearson", (-6.0, 1.0, 2.0))
        >>> [(round(p, 2), ok) for p, ok in cal.rank_confidences([0.95, 0.5, 0.52, 0.49, 0.5, 0.51], 2)]
        [(1.0, True), (0.0, False)]
        """
        s = np.asarray(scores, dtype=np.float64).ravel()
        s = np.sort(s[np.isfinite(s)])[::-1]
        f = score_features(s)
        if f is None:
            return [(0.0, False)] * min(n, len(s))
        p1 = self.probability(f)
        out = [(p1, self.confident(p1))]
        rest = s[1:]
        sd = max(float(rest.std()), 1e-9, 1e-6 * abs(float(rest.mean())))
        mu, em = float(rest.mean()), expected_max(len(rest))
        for r in range(1, min(n, len(s))):
            nxt = s[r + 1] if r + 1 < len(s) else s[r]
            pr = self.probability([(s[r] - mu) / sd - em, (s[r] - nxt) / sd])
            out.append((min(pr, 1.0 - p1), False))
        return out

    def confident(self, p: float) -> bool:
        return p >= self.threshold

    def to_dict(self) -> dict:
        return {"rerank": self.rerank, "coef": list(self.coef), "threshold": self.threshold,
                "fitted_on": self.fitted_on, "stats": dict(self.stats)}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        d = dict(d)
        if "coef" in d:
            d["coef"] = tuple(d["coef"])
        return from_dict(cls, d, "Calibration")


_FITTED_ON = ("the built-in corpus (music21's O'Neill/Ryan/Aird/Nottingham tunes; never essenFolksong; tunes that "
              "neither the release training nor the held-out evaluation uses: training_tunes(2200)[2000:]): an "
              "index of 100 of their songs made with the release model (chad-qbh, model dccf685341bd1037); right "
              "answers: hums of those songs (every hum style, 30% through a phone channel); negatives: hums of "
              "the other 100 songs, and wrong answers (bench/fit_calibration.py); noise, beeps and silence are "
              "refused by their voicing before any model; f0-dtw: fitted earlier, on an F0 index of the demo's "
              "songs (CREPE tiny)")


def _default(rerank: str, coef: tuple, threshold: float = 0.5, **stats) -> Calibration:
    return Calibration(rerank, coef, threshold, fitted_on=_FITTED_ON, stats=stats)


#: the calibrations used when an index has no ``calibration.json`` of its own, by re-ranker
#: (:data:`chadml.search.RERANKERS`, and ``"f0-dtw"`` for :class:`chadml.search.F0DtwSearcher`). ``stats``:
#: the fit's counts and shares (right answers reported confident; queries with no right answer reported not
#: confident); on the independent set of ``bench/qbh_eval.py`` (disjoint tunes, FluidSynth voices too) see
#: ``bench/README.md`` (``qbh_robust.py confidence``)
DEFAULT_CALIBRATIONS = {
    "pearson": _default("pearson", (-3.57, 2.456, 1.617), positives=200, negatives=200,
                        positives_confident=0.910, negatives_not_confident=0.935),
    "dtw": _default("dtw", (-2.627, 1.647, 2.023), positives=198, negatives=202,
                    positives_confident=0.874, negatives_not_confident=0.916),
    # the f0 + DTW matcher is right on only a quarter of these hums: its threshold is where 95 % of the fit's
    # queries with no right answer stay under it (so it is confident less often, and rarely wrongly)
    "f0-dtw": _default("f0-dtw", (-1.883, -0.859, 4.391), threshold=0.782, positives=27, negatives=216,
                       eval_right_confident=0.286, eval_wrong_confident=5 / 285,
                       eval_out_of_catalogue_not_confident=0.950, eval_noise_beeps_silence_not_confident=1.0),
}
#: the ``dtw-f0`` re-ranker scores the ANN candidates with the f0 + DTW matcher: the same scores
DEFAULT_CALIBRATIONS["dtw-f0"] = dataclasses.replace(DEFAULT_CALIBRATIONS["f0-dtw"], rerank="dtw-f0")
#: the tempo re-scored max Pearson (``Searcher(tempo_scan=True)``) has no fit of its own: max Pearson's
DEFAULT_CALIBRATIONS["pearson+tempo"] = dataclasses.replace(DEFAULT_CALIBRATIONS["pearson"], rerank="pearson+tempo")


def fit_calibration(positives, negatives, rerank: str, *, threshold: float | None = None, fitted_on: str = "",
                    l2: float = 1e-3) -> Calibration:
    """Fit the logistic model on the ``[z, margin]`` features (:func:`score_features`) of queries whose best
    match is right (``positives``) and of queries with no right answer in the index or whose best match
    is wrong (``negatives``); the two classes weigh the same. ``threshold``: None keeps 0.5.

    Example
    -------
    >>> rng = np.random.default_rng(1)
    >>> pos = np.c_[rng.normal(6, 1, 200), rng.normal(3, 1, 200)]
    >>> neg = np.c_[rng.normal(0, 1, 200), rng.normal(0.5, 0.4, 200)]
    >>> cal = fit_calibration(pos, neg, "pearson")
    >>> cal.probability([6, 3]) > 0.99 and cal.probability([0, 0.5]) < 0.01
    True
    """
    P = np.asarray([p for p in positives if p is not None], np.float64).reshape(-1, 2)
    N = np.asarray([p for p in negatives if p is not None], np.float64).reshape(-1, 2)
    if len(P) < 2 or len(N) < 2:
        raise ValueError(f"fit_calibration needs at least 2 positives and 2 negatives, got {len(P)} and {len(N)}")
    X = np.c_[np.ones(len(P) + len(N)), np.r_[P, N]]
    y = np.r_[np.ones(len(P)), np.zeros(len(N))]
    w = np.r_[np.full(len(P), 0.5 / len(P)), np.full(len(N), 0.5 / len(N))]
    b = np.zeros(3)
    for _ in range(100):                    # Newton's method (IRLS), a small ridge keeps separable data finite
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ b, -500, 500)))
        g = X.T @ (w * (p - y)) + l2 * b * np.r_[0, 1, 1]
        H = (X * (w * p * (1 - p))[:, None]).T @ X + l2 * np.diag([1e-9, 1, 1])
        step = np.linalg.solve(H, g)
        b -= step
        if np.abs(step).max() < 1e-9:
            break
    cal = Calibration(rerank, tuple(b), 0.5 if threshold is None else threshold, fitted_on=fitted_on)
    pp = np.array([cal.probability(f) for f in P])
    pn = np.array([cal.probability(f) for f in N])
    stats = {"positives": int(len(P)), "negatives": int(len(N)),
             "positives_confident": float(np.mean(pp >= cal.threshold)),
             "negatives_not_confident": float(np.mean(pn < cal.threshold))}
    return dataclasses.replace(cal, stats=stats)


def calibrate(searcher, positives, negatives, *, rerank: str | None = None, fitted_on: str = "",
              threshold: float | None = None, progress: bool = False) -> Calibration:
    """Fit a :class:`Calibration` for ``searcher`` (a :class:`chadml.search.Searcher` or
    :class:`chadml.search.F0DtwSearcher`; it keeps each query's features in ``last_features``) on its own
    index: ``positives``, ``(audio, song_id)`` of hums of songs in the index; ``negatives``, audio with no
    right answer in it (hums of other tunes, noise...). A positive whose best match is wrong counts as a
    negative; queries refused for too little voice (``last_reason``) are left out (they are never
    confident). Store it with :func:`save_calibration` in the index's directory. ``progress``: a progress
    bar over the queries.

    Example
    -------
    >>> s = Searcher("songs.idx")                                                   # doctest: +SKIP
    >>> cal = calibrate(s, [(hum, "song-7"), ...], [other_tune_hum, noise, ...])   # doctest: +SKIP
    >>> save_calibration("songs.idx", cal)                                          # doctest: +SKIP
    """
    pos, neg = [], []
    items = [(p, True) for p in positives] + [(n, False) for n in negatives]
    for item, is_pos in _progress(items, desc="calibrating", unit="query", disable=not progress):
        audio, want = item if is_pos else (item, None)
        ms = searcher.query(audio, top=1)
        f = getattr(searcher, "last_features", None)
        if not ms or f is None or getattr(searcher, "last_reason", None):
            continue
        (pos if is_pos and ms[0].song_id == want else neg).append(f)
    name = rerank or getattr(searcher, "score_name", None) or getattr(searcher, "rerank", "pearson")
    return fit_calibration(pos, neg, name, threshold=threshold, fitted_on=fitted_on)


def load_calibration(directory: str | os.PathLike | None, rerank: str) -> Calibration:
    """The calibration of ``rerank`` stored in ``directory`` (:data:`CALIBRATION_FILE`), else the default."""
    if directory is not None:
        path = os.path.join(os.fspath(directory), CALIBRATION_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
            if rerank in d.get("calibrations", {}):
                return Calibration.from_dict(d["calibrations"][rerank])
    return DEFAULT_CALIBRATIONS[rerank]


def save_calibration(directory: str | os.PathLike, calibration: Calibration) -> str:
    """Store ``calibration`` in ``directory``'s :data:`CALIBRATION_FILE` (beside the others, by re-ranker);
    returns the file's path."""
    path = os.path.join(os.fspath(directory), CALIBRATION_FILE)
    d = {"kind": "chad-calibration", "version": 1, "calibrations": {}}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    d.setdefault("calibrations", {})[calibration.rerank] = calibration.to_dict()
    atomic_write_text(path, json.dumps(d, indent=1) + "\n")
    return path
