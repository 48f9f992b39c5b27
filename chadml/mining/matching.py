"""Algorithm 1, lines 17-21: an original fragment's matches in a cover, and the checks of a match.

For every unique fragment and every cover, ``chadsp.xcorr_match`` of the fragment's fingerprints
against the cover's; each peak (score >= ``beta_irrel``, peaks at least one fragment length apart)
becomes a cover fragment of the same duration, starting where the peak puts the fragment's start:
relevant when the score is >= ``beta_rel``, uncertain (``check_by_crowdsource``) otherwise
(:func:`match_fragment`). By default (measured on the built-in corpus; ``MiningConfig.paper()`` is the
paper's exact matching) fingerprints are standardised per recording, the start is placed by the local
tempo, and a peak is relevant only if its thirds match near it and it scores within ``peak_margin`` of
the best peak; :func:`cross_check` (the match holds both ways) and :func:`key_shift` with
:func:`consensus_shift` (the match has its cover's transposition) send more doubtful matches to the
uncertain class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import chadsp
import numpy as np

from ..features import FeatureConfig, extract_features
from .config import SR, MiningConfig
from .embedding import Embedding

__all__ = ["Match", "match_fragment", "cross_check", "KEY_BINS", "pitch_frames", "key_shift", "consensus_shift"]


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
    >>> m = match_fragment(c[40:80], 0.0, 12.75, cover)          # placed by the fitted tempo (the default)
    >>> [(round(x.start, 2), round(x.end, 2), x.relevant) for x in m]
    [(10.0, 22.75, True)]
    >>> [(x.start, x.end) for x in match_fragment(c[40:80], 0.0, 12.75, cover, MiningConfig.paper())]  # rigid
    [(10.0, 22.75)]
    """
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


def consensus_shift(shifts: list[int]) -> int | None:
    """The shift most matches agree on, as a pitch class 0..11 (octave-equivalent shifts pooled); None
    without a strict winner.

    >>> consensus_shift([2, 2, 14, 3]), consensus_shift([-1, 11]), consensus_shift([1, 2])
    (2, 11, None)
    """
    if not shifts:
        return None
    classes = [k % 12 for k in shifts]
    counts = np.bincount(classes, minlength=12)
    top = int(counts.argmax())
    if (counts == counts[top]).sum() > 1:
        return None
    return top
