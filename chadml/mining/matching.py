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
from ..features.windows import lerp_rows, stretch, tempo_grid
from .config import SR, MiningConfig
from .embedding import Embedding

__all__ = ["Match", "match_fragment", "cross_check", "KEY_BINS", "pitch_frames", "key_shift", "consensus_shift",
           "tempo_ratios", "stretch", "tempo_curve", "line_score", "block_score", "context_score",
           "BLOCK_WINDOWS", "BLOCK_SHIFT_S", "CONTEXT_S", "CONTEXT_SHIFT_S"]

BLOCK_WINDOWS = 6        # windows of a block of the block check (half-overlapping blocks: 1.5 s of window starts)
BLOCK_SHIFT_S = 0.25     # each block may sit this far (s) off the matched line
CONTEXT_S = 8.0          # seconds of the original before and after a fragment that the context check compares
CONTEXT_SHIFT_S = 0.75   # the context may sit this far (s) off the matched line (pauses differ between versions)


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


def tempo_ratios(config: MiningConfig) -> np.ndarray:
    """The tempo ratios (cover seconds per original second) a tempo scan tries: powers of
    ``1 + tempo_step`` within ``tempo_range``, 1 among them.

    >>> tempo_ratios(MiningConfig()).round(3).tolist()[:3], len(tempo_ratios(MiningConfig()))
    ([0.813, 0.837, 0.863], 15)
    """
    return tempo_grid(*config.tempo_range, config.tempo_step)


def tempo_curve(frag_fps: np.ndarray, cover_fps: np.ndarray, ratios) -> tuple[np.ndarray, np.ndarray]:
    """``(curve, ratio)``: for every lag of the cover, the best cross-correlation (``chadsp.xcorr``) of the
    fragment stretched to any of ``ratios`` (:func:`stretch`) starting there, and that ratio; -inf (ratio
    NaN) at lags where no stretched fragment fits."""
    nc = len(cover_fps)
    curve = np.full(nc, -np.inf)
    best = np.full(nc, np.nan)
    for r in np.asarray(ratios, dtype=np.float64).tolist():
        g = stretch(frag_fps, r)
        if len(g) > nc:
            continue
        c = chadsp.xcorr(g, cover_fps).astype(np.float64)
        up = c > curve[:len(c)]
        curve[:len(c)][up] = c[up]
        best[:len(c)][up] = r
    return curve, best


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """The Pearson correlation of two blocks of fingerprints of one shape (chadsp's, at lag 0)."""
    return float(chadsp.xcorr(np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32))[0])


def _rows_at(cover: Embedding, times: np.ndarray) -> np.ndarray | None:
    """The cover's fingerprints at window-start ``times`` (s), linearly interpolated; None when a time lies
    more than half a step outside the cover's windows."""
    st, step = cover.starts, cover.step_s
    if len(st) < 2 or not math.isfinite(step) or step <= 0:
        return None
    if times[0] < st[0] - 0.5 * step or times[-1] > st[-1] + 0.5 * step:
        return None
    return lerp_rows(cover.fps, np.clip((times - st[0]) / step, 0, len(st) - 1))


def line_score(rows: np.ndarray, times: np.ndarray, cover: Embedding, start: float, ratio: float,
               max_shift: float, step: float = 0.125) -> float | None:
    """The best Pearson correlation of original fingerprint ``rows`` (window starts ``times`` s after the
    fragment's start) with the cover's fingerprints along the matched line (cover time ``start + ratio *
    time``), moved by up to ``max_shift`` s in ``step`` s; None when the line leaves the cover."""
    if len(rows) == 0:
        return None
    k = int(round(max_shift / step))
    vals = []
    for s in range(-k, k + 1):
        c = _rows_at(cover, start + ratio * times + s * step)
        if c is not None:
            v = _pearson(rows, c)
            if math.isfinite(v):
                vals.append(v)
    return max(vals) if vals else None


def block_score(frag_fps: np.ndarray, offset_s: float, cover: Embedding, start: float, ratio: float, *,
                width: int = BLOCK_WINDOWS, max_shift: float = BLOCK_SHIFT_S) -> float | None:
    """The weakest of the fragment's half-overlapping blocks of ``width`` windows, each correlated with the
    cover along the matched line (:func:`line_score`). A cover that sings most of the fragment's music but
    jumps inside it (a skipped or repeated section landing on similar music) fits the line as a whole and
    fails it in the blocks around the jump. None when no block lies inside the cover."""
    n = len(frag_fps)
    times = offset_s + np.arange(n) * cover.step_s
    half = max(1, width // 2)
    vals = [line_score(frag_fps[j:j + width], times[j:j + width], cover, start, ratio, max_shift)
            for j in range(0, max(1, n - half), half)]
    vals = [v for v in vals if v is not None]
    return min(vals) if vals else None


def context_score(original: Embedding, a: float, b: float, cover: Embedding, start: float, ratio: float, *,
                  seconds: float = CONTEXT_S, max_shift: float = CONTEXT_SHIFT_S) -> float | None:
    """How well the music around the fragment ``[a, b]`` of the original is sung around its match: the
    better of the ``seconds`` before and after it (each correlated along the matched line,
    :func:`line_score`), None when neither side is there (the fragment starts and ends the original, or
    the line leaves the cover). A phrase confused with a near repeat of it (A for A') sits among other
    phrases than its own."""
    st = original.starts
    i0, i1 = original.window_range(a, b)
    sides = []
    jb = int(np.searchsorted(st, a - seconds))
    if i0 - jb >= 4 and len(st) and a - seconds >= st[0] - 0.2:
        sides.append((jb, i0))
    jz = int(np.searchsorted(st, b + seconds))
    if jz - i1 >= 4 and len(st) and b + seconds <= st[-1] + 0.2:
        sides.append((i1, jz))
    vals = [line_score(original.fps[p:q], st[p:q] - a, cover, start, ratio, max_shift) for p, q in sides]
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else None


def _refine_line(frag_fps, offset_s, cover, start, ratio, rel_step, *, n=3, shift=0.125):
    """The line (start, ratio) through the best whole-fragment correlation near ``(start, ratio)``: the
    ratio within half a scan step (``2n + 1`` values, the fragment's middle kept in place), the start within
    ``shift`` s (quarter steps); returns ``(score, start, ratio)``."""
    times = offset_s + np.arange(len(frag_fps)) * cover.step_s
    mid = float(times[len(times) // 2])
    centre = start + ratio * mid
    best = (-np.inf, start, ratio)
    q = cover.step_s / 4 if math.isfinite(cover.step_s) and cover.step_s > 0 else 0.0625
    k = int(round(shift / q))
    for j in range(-n, n + 1):
        r = ratio * (1.0 + rel_step * j / (2 * n))
        for i in range(-k, k + 1):
            s0 = centre - r * mid + i * q
            c = _rows_at(cover, s0 + r * times)
            if c is None:
                continue
            v = _pearson(frag_fps, c)
            if v > best[0]:
                best = (v, s0, r)
    return best


def _match_scan(frag_fps, offset_s, duration, cover, config, context):
    curve, ratio = tempo_curve(frag_fps, cover.fps, tempo_ratios(config))
    padded = np.concatenate([[-2.0], np.where(np.isfinite(curve), curve, -2.0), [-2.0]])
    lags = chadsp.find_peaks(padded, height=config.beta_irrel, distance=max(1, len(frag_fps) // 2)) - 1
    if len(lags) == 0:
        return []
    best = float(curve[lags].max())
    step = cover.step_s if math.isfinite(cover.step_s) else 0.0
    out = []
    for lag in lags.tolist():
        score, r = float(curve[lag]), float(ratio[lag])
        start = float(cover.starts[lag]) - r * offset_s
        if config.refine and 0 < lag < len(curve) - 1 and np.isfinite(curve[lag - 1:lag + 2]).all():
            start += _parabola(curve, lag) * step
        v, s0, r0 = _refine_line(frag_fps, offset_s, cover, start, r, config.tempo_step)
        if math.isfinite(v):
            start, r = s0, r0
        length = min(duration * r, cover.duration)
        last = cover.duration - length
        if start < -0.5 * step - 1e-9 or start > last + 0.5 * step + 1e-9:
            continue
        rel = score >= config.beta_rel
        if rel and config.peak_margin is not None and score < best - config.peak_margin:
            rel = False
        if rel and config.block_min is not None:
            v = block_score(frag_fps, offset_s, cover, start, r)
            rel = v is not None and v >= config.block_min
        if rel and config.context_min is not None and context is not None:
            v = context_score(context[0], context[1], context[2], cover, start, r)
            rel = v is None or v >= config.context_min
        start = min(max(start, 0.0), last)
        out.append(Match(start, start + length, score, bool(rel), int(lag)))
    return out


def match_fragment(frag_fps: np.ndarray, offset_s: float, duration: float, cover: Embedding,
                   config: MiningConfig | None = None, *, context: tuple | None = None) -> list[Match]:
    """Algorithm 1, lines 17-21: every match of one original fragment in one cover.

    ``frag_fps`` are the fragment's fingerprints, whose first window starts ``offset_s`` after the
    fragment's start; ``duration`` is the fragment's length; ``context`` is ``(original, a, b)``: the
    original's :class:`Embedding` and the fragment's span in it (s), for ``config.context_min``.

    With ``config.tempo_scan`` (the default) the fragment is stretched to every tempo ratio of
    ``config.tempo_range`` (:func:`tempo_ratios`) and cross-correlated with the cover at each; a peak of the
    best ratio per lag (peaks at least half a fragment apart) at lag ``l`` and ratio ``r`` puts the cover
    fragment at ``cover.starts[l] - r * offset_s``, ``r * duration`` long. It is relevant when it scores
    ``>= beta_rel``, within ``peak_margin`` of the best peak, every block of the fragment holds along the
    match (``block_min``, :func:`block_score`) and the music around it does too where there is any
    (``context_min``, :func:`context_score`).

    Without it (``MiningConfig.rigid()``, ``MiningConfig.paper()``), one cross-correlation at the
    original's tempo (``chadsp.xcorr_match``): a peak at lag ``l`` puts the cover
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
    >>> m = match_fragment(c[40:80], 0.0, 12.75, cover)          # the tempo scan (the default)
    >>> [(round(x.start, 2), round(x.end, 2), x.relevant) for x in m]
    [(10.0, 22.75, True)]
    >>> m = match_fragment(c[40:80], 0.0, 12.75, cover, MiningConfig.rigid())   # placed by the fitted tempo
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
    if config.tempo_scan:
        return _match_scan(frag_fps, offset_s, duration, cover, config, context)     # in lag order
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
    seg = lerp_rows(seg, np.linspace(0.0, len(seg) - 1, n))
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
