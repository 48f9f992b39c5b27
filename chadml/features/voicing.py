"""Where a recording is voiced: silence masking (``chadsp``) plus a periodicity check, and the trimming of
queries and songs to their voiced part.

A phone or browser recording of a hum starts and ends with seconds of silence, room noise or handling
noise; fingerprints of those seconds match nothing and drag the max-Pearson and DTW scores down (5 s of
silence before a hum took the demo's top-1 from 0.95 to 0.46). Every search and every song added to an
index therefore goes through :func:`find_voiced` first:

1. frame levels: :func:`chadsp.rms_db` (``frame_length`` samples, centred frames every ``hop_length``);
   a frame is *loud* when :func:`chadsp.silence_mask` does not call it silent (within ``top_db`` dB of the
   loudest frame);
2. periodicity: YIN's cumulative-mean-normalised difference (de Cheveigné & Kawahara 2002) of each frame,
   its minimum over the periods of ``fmin``..``fmax`` (65-2600 Hz: voices and whistles); a frame is
   *periodic* when that minimum is at most ``aperiodicity`` (white and coloured noise stay near 1, a hum
   or a whistle well under 0.3);
3. voiced = loud and periodic; voiced runs shorter than ``min_run_s`` are dropped (blips in noise);
4. the voiced part: from the first voiced frame to the last, ``pad_s`` wider on each side; with
   ``max_gap_s``, unvoiced stretches inside it longer than that are shortened to ``max_gap_s`` (a query's
   long pause: no analysis window is then all silence).

:class:`VoicedPart` says what was kept (``segments``, sample intervals of the original) and maps times
of the trimmed signal back to the original (:meth:`VoicedPart.to_original`), so that a match time is
always a time in the original recording.

Example
-------
>>> import numpy as np
>>> sr = 16000
>>> t = np.arange(2 * sr) / sr
>>> hum = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
>>> y = np.r_[np.zeros(3 * sr, np.float32), hum, np.zeros(sr, np.float32)]
>>> part = find_voiced(y, sr)
>>> round(part.start / sr, 1), round(part.end / sr, 1), round(part.voiced_s, 1)   # the hum, 0.25 s wider
(2.7, 5.3, 2.1)
>>> trimmed, part = trim_to_voiced(y, sr)
>>> round(len(trimmed) / sr, 1), round(part.to_original(0.0), 1)                  # time 0 of the trimmed hum
(2.5, 2.7)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import chadsp
import numpy as np

from ..config import SILENCE_PEAK, from_dict

__all__ = ["VoicingConfig", "VoicedPart", "aperiodicity", "yin", "voiced_frames", "voiced_pitch", "find_voiced",
           "trim_to_voiced", "true_runs"]


@dataclass(frozen=True)
class VoicingConfig:
    """How :func:`find_voiced` decides what is voiced (see the module docstring).

    Parameters
    ----------
    top_db : float
        A frame more than ``top_db`` dB below the loudest frame is silent (:func:`chadsp.silence_mask`).
    frame_length, hop_length : int
        Analysis frames (samples at the signal's rate; 1024 and 256 at 16 kHz: 64 ms every 16 ms).
    fmin, fmax : float
        The periods searched for periodicity (Hz): 65 Hz (a low male hum; mains hum at 50/60 Hz is not a
        voice) to 2600 Hz (a high whistle).
    aperiodicity : float
        A frame is periodic when YIN's normalised difference dips to this or lower.
    min_run_s : float
        Voiced runs shorter than this are ignored.
    pad_s : float
        Audio kept before the first and after the last voiced frame.
    max_gap_s : float or None
        Unvoiced stretches inside the voiced part longer than this are shortened to it (None: kept whole).
    min_voiced_s : float
        Less voiced audio than this is too little to identify a tune (:attr:`VoicedPart.enough`).

    Example
    -------
    >>> VoicingConfig().min_voiced_s
    1.0
    """

    top_db: float = 40.0
    frame_length: int = 1024
    hop_length: int = 256
    fmin: float = 65.0
    fmax: float = 2600.0
    aperiodicity: float = 0.35
    min_run_s: float = 0.1
    pad_s: float = 0.25
    max_gap_s: float | None = None
    min_voiced_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("top_db", "fmin", "fmax"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"VoicingConfig.{name} must be a finite number > 0, got {v!r}")
        if self.fmin >= self.fmax:
            raise ValueError(f"VoicingConfig needs fmin < fmax, got {self.fmin} and {self.fmax}")
        for name in ("frame_length", "hop_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"VoicingConfig.{name} must be an integer >= 1, got {v!r}")
        for name in ("aperiodicity", "min_run_s", "pad_s", "min_voiced_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"VoicingConfig.{name} must be a finite number >= 0, got {v!r}")
        if self.max_gap_s is not None and not (isinstance(self.max_gap_s, (int, float))
                                               and math.isfinite(self.max_gap_s) and self.max_gap_s > 0):
            raise ValueError(f"VoicingConfig.max_gap_s must be a number of seconds > 0 or None, "
                             f"got {self.max_gap_s!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VoicingConfig":
        return from_dict(cls, d, "VoicingConfig")


@dataclass(frozen=True)
class VoicedPart:
    """The voiced part of a recording of ``n`` samples at ``sr`` (what :func:`find_voiced` found).

    ``segments``: the kept ``[start, end)`` sample intervals of the original, in order (one interval
    unless long pauses were shortened; none when nothing is voiced). ``voiced_s``: seconds of voiced
    frames. ``silent``: the whole recording is digital silence (peak under -80 dBFS).
    """

    n: int
    sr: int
    segments: np.ndarray
    voiced_s: float
    silent: bool = False
    min_voiced_s: float = 1.0

    @property
    def start(self) -> int:
        """First kept sample (0 when nothing is voiced)."""
        return int(self.segments[0, 0]) if len(self.segments) else 0

    @property
    def end(self) -> int:
        """One past the last kept sample (``n`` when nothing is voiced)."""
        return int(self.segments[-1, 1]) if len(self.segments) else self.n

    @property
    def start_s(self) -> float:
        """Where the kept audio starts in the original (seconds)."""
        return self.start / self.sr

    @property
    def voiced(self) -> bool:
        """Some voiced audio was found."""
        return len(self.segments) > 0

    @property
    def enough(self) -> bool:
        """At least ``min_voiced_s`` seconds of voiced audio (enough to identify a tune)."""
        return self.voiced_s >= self.min_voiced_s

    @property
    def kept_samples(self) -> int:
        return int((self.segments[:, 1] - self.segments[:, 0]).sum()) if len(self.segments) else 0

    def trimmed(self) -> bool:
        """Something was cut (the kept audio is not the whole recording)."""
        return self.voiced and not (len(self.segments) == 1 and self.start == 0 and self.end == self.n)

    def apply(self, y: np.ndarray) -> np.ndarray:
        """The kept audio of ``y`` (the recording this part was found in); all of it when nothing is voiced."""
        if len(y) != self.n:
            raise ValueError(f"y has {len(y)} samples, the voiced part was found in {self.n}")
        if not self.voiced or not self.trimmed():
            return y
        if len(self.segments) == 1:
            return y[self.start:self.end]
        return np.concatenate([y[a:b] for a, b in self.segments])

    def to_original(self, t_s):
        """Times (seconds) in the kept audio -> times in the original recording (scalar or array)."""
        t = np.asarray(t_s, dtype=np.float64)
        if not self.voiced:
            return t_s if np.ndim(t_s) == 0 else t
        lens = (self.segments[:, 1] - self.segments[:, 0]) / self.sr
        cum = np.concatenate([[0.0], np.cumsum(lens)])
        k = np.clip(np.searchsorted(cum, t, side="right") - 1, 0, len(self.segments) - 1)
        out = self.segments[k, 0] / self.sr + (t - cum[k])
        return float(out) if np.ndim(t_s) == 0 else out

    def describe(self) -> dict:
        """JSON-ready summary (for timings and logs)."""
        return {"voiced_s": round(float(self.voiced_s), 3), "kept_s": round(self.kept_samples / self.sr, 3),
                "start_s": round(self.start_s, 3), "segments": int(len(self.segments)), "silent": bool(self.silent)}


def _frame_count(n: int, frame_length: int, hop_length: int) -> int:
    """Frames of :func:`chadsp.rms_db` with ``center=True``."""
    padded = n + 2 * (frame_length // 2)
    return 0 if padded < frame_length else 1 + (padded - frame_length) // hop_length


def aperiodicity(y: np.ndarray, sr: int, config: VoicingConfig | None = None, *,
                 frames: np.ndarray | None = None) -> np.ndarray:
    """The aperiodicity of :func:`yin` alone.

    Example
    -------
    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    >>> noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    >>> float(np.median(aperiodicity(tone, 16000))) < 0.05, float(np.median(aperiodicity(noise, 16000))) > 0.7
    (True, True)
    """
    return yin(y, sr, config, frames=frames, want_f0=False)[0]


def yin(y: np.ndarray, sr: int, config: VoicingConfig | None = None, *,
        frames: np.ndarray | None = None, threshold: float = 0.15,
        want_f0: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(aperiodicity, f0_hz)`` of each frame by YIN. The aperiodicity: the minimum over the periods of
    ``fmin``..``fmax`` of the cumulative-mean-normalised difference function (0: perfectly periodic;
    noise: about 1).

    Frames are those of :func:`chadsp.rms_db` (``center=True``: frame ``k`` is centred on sample
    ``k * hop_length``); silent frames (no energy) get 1. ``frames``: compute only these (a bool mask
    or indices; the others get 1 and f0 0). ``f0_hz``: the first period whose normalised difference
    is under ``threshold`` (at its local minimum), else the deepest one (YIN's absolute threshold step,
    which avoids the sub-octave), with parabolic interpolation; 0 where not computed (everywhere with
    ``want_f0=False``: the aperiodicity alone, 10-20 % faster).

    Example
    -------
    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> whistle = np.sin(2 * np.pi * 1800 * t).astype(np.float32)
    >>> ap, f0 = yin(whistle, 16000)
    >>> float(np.median(ap)) < 0.05, abs(float(np.median(f0)) - 1800) < 20
    (True, True)
    """
    cfg = config or VoicingConfig()
    x = np.asarray(y, dtype=np.float32)
    W = cfg.frame_length
    hop = cfg.hop_length
    n_frames = _frame_count(len(x), W, hop)
    if n_frames == 0:
        return np.ones(0, np.float32), np.zeros(0, np.float32)
    tau_min = max(1, int(math.floor(sr / cfg.fmax)))
    tau_max = max(tau_min + 1, int(math.ceil(sr / cfg.fmin)))
    L = W + tau_max
    nfft = 1 << int(math.ceil(math.log2(L)))        # r(tau) for tau <= tau_max never wraps around
    # frame k covers [k * hop - W // 2, k * hop - W // 2 + L): centred like chadsp.rms_db's frames
    pad_front = W // 2
    need = (n_frames - 1) * hop + L
    xp = np.zeros(need, np.float32)
    seg = x[: max(0, need - pad_front)]
    xp[pad_front:pad_front + len(seg)] = seg
    out = np.ones(n_frames, np.float32)
    f0 = np.zeros(n_frames, np.float32)
    which = np.arange(n_frames) if frames is None else np.asarray(frames)
    if which.dtype == bool:
        which = np.flatnonzero(which[:n_frames])
    from scipy import fft as sfft
    sq = np.concatenate([[0.0], np.cumsum(xp.astype(np.float64) ** 2)])     # running energy
    view = np.lib.stride_tricks.sliding_window_view(xp, L)
    taus = np.arange(tau_max + 1)
    weights = np.arange(1, tau_max + 1, dtype=np.float64)[None, :]
    chunk = max(1, (1 << 20) // nfft)
    for c0 in range(0, len(which), chunk):
        ks = which[c0:c0 + chunk]
        fr = view[ks * hop]
        r = sfft.irfft(np.conj(sfft.rfft(fr[:, :W], nfft)) * sfft.rfft(fr, nfft), nfft)[:, :tau_max + 1]
        s0 = (ks * hop)[:, None]
        e0 = sq[s0 + W] - sq[s0]
        e_tau = sq[s0 + taus + W] - sq[s0 + taus]
        d = np.maximum(e0 + e_tau - 2.0 * r, 0.0)
        cum = np.cumsum(d[:, 1:], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cmnd = d[:, 1:] * weights / cum
        cmnd = np.where(np.isfinite(cmnd), cmnd, 1.0)
        c = cmnd[:, tau_min - 1:]                       # periods tau_min..tau_max
        ap = c.min(axis=1)
        ap[e0[:, 0] <= 1e-10 * W] = 1.0
        out[ks] = ap
        if not want_f0:
            continue
        below = c < threshold
        j = np.where(below.any(axis=1), below.argmax(axis=1), c.argmin(axis=1))
        rows = np.arange(len(c))
        for _ in range(c.shape[1]):                     # down to the local minimum
            nxt = np.minimum(j + 1, c.shape[1] - 1)
            go = c[rows, nxt] < c[rows, j]
            if not go.any():
                break
            j = np.where(go, nxt, j)
        lo, hi = c[rows, np.maximum(j - 1, 0)], c[rows, np.minimum(j + 1, c.shape[1] - 1)]
        den = lo - 2 * c[rows, j] + hi
        with np.errstate(invalid="ignore", divide="ignore"):
            dj = np.where(np.abs(den) > 1e-12, 0.5 * (lo - hi) / den, 0.0)
        tau = tau_min + j + np.clip(dj, -0.5, 0.5)
        f0[ks] = np.where(ap < 1.0, sr / tau, 0.0)
    return out, f0


def true_runs(mask: np.ndarray) -> np.ndarray:
    """``(k, 2)`` [start, end) of the runs of True in a 1-D bool array.

    >>> true_runs(np.array([0, 1, 1, 0, 1], bool)).tolist()
    [[1, 3], [4, 5]]
    """
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    return np.flatnonzero(np.diff(m.astype(np.int8))).reshape(-1, 2)


def voiced_frames(y: np.ndarray, sr: int, config: VoicingConfig | None = None) -> np.ndarray:
    """Which frames (those of :func:`chadsp.rms_db`, centred every ``hop_length``) are voiced: loud
    (:func:`chadsp.silence_mask` at ``top_db``) and periodic (:func:`aperiodicity`), in runs of at least
    ``min_run_s``."""
    cfg = config or VoicingConfig()
    x = np.asarray(y, dtype=np.float32)
    level = chadsp.rms_db(x, frame_length=cfg.frame_length, hop_length=cfg.hop_length, center=True)
    if level.size == 0:
        return np.zeros(0, bool)
    loud = ~chadsp.silence_mask(level, cfg.top_db)
    voiced = loud & (aperiodicity(x, sr, cfg, frames=loud)[: len(level)] <= cfg.aperiodicity)
    min_run = max(1, int(round(cfg.min_run_s * sr / cfg.hop_length)))
    for a, b in true_runs(voiced):
        if b - a < min_run:
            voiced[a:b] = False
    return voiced


def voiced_pitch(y: np.ndarray, sr: int, config: VoicingConfig | None = None) -> float | None:
    """The median fundamental (Hz, by :func:`yin`) of the voiced frames of a recording; None when none is
    voiced. Tells a whistle (0.8-2.5 kHz) from a voice.

    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> round(voiced_pitch(np.sin(2 * np.pi * 1200 * t).astype(np.float32), 16000), -1)    # within 10 cents
    1200.0
    """
    cfg = config or VoicingConfig()
    x = np.asarray(y, dtype=np.float32)
    v = voiced_frames(x, sr, cfg)
    if not v.any():
        return None
    _, f0 = yin(x, sr, cfg, frames=v)
    f = f0[v]
    f = f[f > 0]
    return float(np.median(f)) if len(f) else None


def find_voiced(y: np.ndarray, sr: int, config: VoicingConfig | None = None, *,
                max_gap_s: float | None = None) -> VoicedPart:
    """The voiced part of a mono recording (see the module docstring). ``max_gap_s`` overrides the
    config's (shorten unvoiced stretches longer than that inside the voiced part)."""
    cfg = config or VoicingConfig()
    x = np.asarray(y, dtype=np.float32)
    n = len(x)
    gap = cfg.max_gap_s if max_gap_s is None else max_gap_s
    empty = np.zeros((0, 2), np.int64)
    if n == 0 or float(np.max(np.abs(x))) < SILENCE_PEAK:
        return VoicedPart(n, int(sr), empty, 0.0, silent=True, min_voiced_s=cfg.min_voiced_s)
    v = voiced_frames(x, sr, cfg)
    hop = cfg.hop_length
    voiced_s = float(v.sum()) * hop / sr
    on = np.flatnonzero(v)
    if len(on) == 0:
        return VoicedPart(n, int(sr), empty, 0.0, min_voiced_s=cfg.min_voiced_s)
    pad = int(round(cfg.pad_s * sr))
    a = max(0, int(on[0]) * hop - pad)                 # frame k is centred on sample k * hop
    b = min(n, int(on[-1]) * hop + pad)
    segs = [[a, b]]
    if gap is not None:
        g = int(round(gap * sr))
        segs = []
        cur = a
        inner = ~v[on[0]:on[-1] + 1]
        for s, e in true_runs(inner):
            s0, e0 = (int(on[0]) + s) * hop, (int(on[0]) + e) * hop     # the unvoiced stretch, in samples
            if e0 - s0 > g:
                segs.append([cur, s0 + g // 2])
                cur = e0 - (g - g // 2)
        segs.append([cur, b])
    return VoicedPart(n, int(sr), np.asarray(segs, np.int64), voiced_s, min_voiced_s=cfg.min_voiced_s)


def trim_to_voiced(y: np.ndarray, sr: int, config: VoicingConfig | None = None, *,
                   max_gap_s: float | None = None) -> tuple[np.ndarray, VoicedPart]:
    """``(the voiced part of y, the VoicedPart)``; ``y`` itself when nothing is voiced (or nothing was cut)."""
    part = find_voiced(y, sr, config, max_gap_s=max_gap_s)
    return part.apply(np.asarray(y)), part
