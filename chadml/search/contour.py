"""Pitch contours for the classical matcher: a recording -> CREPE f0 -> a key-invariant contour in semitones.

The contour of :func:`f0_contour`: a pitch track from CREPE (:func:`chadml.features.crepe.predict_f0`),
voiced frames only, in semitones, key-invariant (median removed), octave jumps and outliers repaired,
median-smoothed and downsampled (:func:`contour_from_f0`, with the parameters of :class:`F0Config`).
:class:`chadml.search.F0Index` keeps the songs' contours; :class:`chadml.search.F0DtwSearcher` aligns a
query's contour inside them.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import chadsp
import numpy as np

from ..audio import resample
from ..config import SAMPLE_RATE, SILENCE_PEAK, from_dict
from ..features.crepe import predict_f0
from ..features.voicing import VoicingConfig, find_voiced, true_runs, voiced_pitch
from .base import load_query_audio

__all__ = ["F0Config", "contour_from_f0", "f0_contour", "CONTOUR_VOICING", "octave_shift", "voiced_contour"]

#: how a recording is trimmed before its contour is tracked (:mod:`chadml.features.voicing`): silence and
#: noise before and after the voice cut off; pauses inside are the contour's own (bridged or dropped by
#: ``F0Config.gaps``), so they stay
CONTOUR_VOICING = VoicingConfig()

# pitch errors repaired against the running median: octaves and twelfths (CREPE locking onto the 2nd/3rd
# harmonic or the sub-octave), in semitones
_HARMONIC_JUMPS = np.array([0.0, 12.0, -12.0, 12 * math.log2(3), -12 * math.log2(3), 24.0, -24.0])


@dataclass(frozen=True)
class F0Config:
    """How a recording becomes a pitch contour (recorded in every :class:`chadml.search.F0Index`).

    Parameters
    ----------
    crepe_model : {"tiny", "full"}
        The CREPE network. tiny is ~10x faster on CPU and tracks clean voices nearly as well.
    hop_length : int
        CREPE hop in samples at 16 kHz (160 = 10 ms; 320 halves the cost).
    fmin, fmax : float
        Pitch search range in Hz (voices: 65-1000 Hz).
    voicing_threshold : float
        A frame is voiced when CREPE's periodicity (the activation of its pitch bin) is at least this ...
    silence_db : float
        ... and its RMS (1024-sample frames) is within ``silence_db`` dB of the loudest frame.
    min_voiced_s : float
        Voiced runs shorter than this are dropped (spurious blips between notes).
    octave_window_s, octave_tolerance : float
        Octave repair: a frame within ``octave_tolerance`` semitones of a whole number of octaves
        (+-12, +-24) away from the running median over ``octave_window_s`` is moved back by those octaves.
    outlier_window_s, outlier_st, outlier_max_s : float
        Outlier repair: runs of frames more than ``outlier_st`` semitones from the running median over
        ``outlier_window_s`` that last at most ``outlier_max_s`` are replaced by the median (a median
        filter keeps real note changes: a step is not an outlier).
    smooth_s : float
        Median filter of the repaired contour (seconds; 0 disables).
    gaps : {"fill", "drop"}
        Unvoiced frames between the first and the last voiced one: "fill" bridges them linearly (the
        contour keeps the recording's time axis, so a DTW band bounds the tempo difference), "drop"
        leaves them out (the voiced frames concatenated).
    frame_rate : float
        Frames per second of the final contour: voiced frames are averaged in blocks
        (100 / frame_rate frames at hop 160; 10 per second by default).
    min_frames : int
        A contour with fewer frames is "no melody" (an empty result with a reason, for a query).

    Example
    -------
    >>> F0Config(crepe_model="full").frames_per_block     # 100 CREPE frames/s -> 10 contour frames/s
    10
    """

    crepe_model: str = "tiny"
    hop_length: int = 160
    fmin: float = 65.0
    fmax: float = 1000.0
    voicing_threshold: float = 0.5
    silence_db: float = 40.0
    min_voiced_s: float = 0.05
    octave_window_s: float = 1.51
    octave_tolerance: float = 2.0
    outlier_window_s: float = 0.31
    outlier_st: float = 4.0
    outlier_max_s: float = 0.12
    smooth_s: float = 0.07
    gaps: str = "fill"
    frame_rate: float = 10.0
    min_frames: int = 5

    def __post_init__(self) -> None:
        if self.gaps not in ("fill", "drop"):
            raise ValueError(f"F0Config.gaps must be 'fill' or 'drop', got {self.gaps!r}")
        if self.crepe_model not in ("tiny", "full"):
            raise ValueError(f"F0Config.crepe_model must be 'tiny' or 'full', got {self.crepe_model!r}")
        if isinstance(self.hop_length, bool) or not isinstance(self.hop_length, (int, np.integer)) \
                or not 1 <= self.hop_length <= 1600:
            raise ValueError(f"F0Config.hop_length must be an integer in 1..1600 (samples at 16 kHz), "
                             f"got {self.hop_length!r}")
        if not (0 < float(self.fmin) < float(self.fmax)):
            raise ValueError(f"F0Config needs 0 < fmin < fmax, got fmin={self.fmin!r}, fmax={self.fmax!r}")
        if not 0.0 <= float(self.voicing_threshold) <= 1.0:
            raise ValueError(f"F0Config.voicing_threshold must be in [0, 1], got {self.voicing_threshold!r}")
        for name in ("silence_db", "octave_tolerance", "outlier_st", "frame_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"F0Config.{name} must be a finite number > 0, got {v!r}")
        for name in ("min_voiced_s", "octave_window_s", "outlier_window_s", "outlier_max_s", "smooth_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"F0Config.{name} must be a finite number >= 0 (seconds), got {v!r}")
        if self.frame_rate > self.f0_rate:
            raise ValueError(f"F0Config.frame_rate ({self.frame_rate}) cannot exceed CREPE's frame rate "
                             f"16000 / hop_length = {self.f0_rate}")
        if isinstance(self.min_frames, bool) or not isinstance(self.min_frames, (int, np.integer)) \
                or self.min_frames < 1:
            raise ValueError(f"F0Config.min_frames must be an integer >= 1, got {self.min_frames!r}")

    @property
    def f0_rate(self) -> float:
        """CREPE frames per second (16000 / hop_length)."""
        return 16000.0 / self.hop_length

    @property
    def frames_per_block(self) -> int:
        """Voiced CREPE frames averaged into one contour frame."""
        return max(1, int(round(self.f0_rate / self.frame_rate)))

    def _odd(self, seconds: float) -> int:
        n = int(round(seconds * self.f0_rate))
        return n + 1 if n % 2 == 0 else n

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "F0Config":
        return from_dict(cls, d, "F0Config")


def _median_filter(x: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import median_filter
    if size <= 1 or len(x) <= 1:
        return x.copy()
    return median_filter(x, size=size, mode="nearest")


def contour_from_f0(f0_hz: np.ndarray, periodicity: np.ndarray, config: F0Config | None = None, *,
                    level_db: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pitch contour of per-frame f0 estimates: ``(semitones (n,) float32, times_s (n,) float32)``.

    Steps (on the voiced frames):

    1. voiced = ``periodicity >= voicing_threshold`` (and ``level_db >= -silence_db`` when given), f0 > 0;
       voiced runs shorter than ``min_voiced_s`` dropped;
    2. to semitones (MIDI numbers: ``69 + 12 log2(f0 / 440)``);
    3. octave (and twelfth) jumps repaired against a running median; then outliers (short excursions)
       replaced by it;
    4. median-smoothed; the median pitch subtracted (key invariance);
    5. pauses bridged (``gaps="fill"``) or left out (``"drop"``);
    6. averaged in blocks of ``frames_per_block`` frames (``frame_rate`` frames per second).

    ``times_s`` is where each contour frame starts in the recording (CREPE frame ``i`` is at
    ``i * hop_length / 16000`` s). Fewer than ``min_frames`` frames: both arrays are empty.

    Example
    -------
    >>> import numpy as np
    >>> f0 = np.r_[np.full(50, 220.0), np.full(50, 440.0 * 2 ** (2 / 12))]   # A3, then B4 (an octave + 2 up)
    >>> c, t = contour_from_f0(f0, np.ones(100), F0Config(frame_rate=10))
    >>> np.round(c, 2).tolist()          # 5 frames at A3, 5 at B4; median removed
    [-7.0, -7.0, -7.0, -7.0, -7.0, 7.0, 7.0, 7.0, 7.0, 7.0]
    """
    cfg = config or F0Config()
    f0 = np.asarray(f0_hz, dtype=np.float64)
    per = np.asarray(periodicity, dtype=np.float64)
    if f0.ndim != 1 or per.shape != f0.shape:
        raise ValueError(f"f0_hz and periodicity must be 1-D of the same length, got {f0.shape} and {per.shape}")
    voiced = (per >= cfg.voicing_threshold) & np.isfinite(f0) & (f0 > 0)
    if level_db is not None:
        lv = np.asarray(level_db, dtype=np.float64)
        if lv.shape != f0.shape:
            raise ValueError(f"level_db must have the shape of f0_hz {f0.shape}, got {lv.shape}")
        voiced &= lv >= -cfg.silence_db
    min_run = int(round(cfg.min_voiced_s * cfg.f0_rate))
    for s, e in true_runs(voiced):
        if e - s < min_run:
            voiced[s:e] = False
    idx = np.flatnonzero(voiced)
    empty = (np.zeros(0, np.float32), np.zeros(0, np.float32))
    if len(idx) < cfg.min_frames * cfg.frames_per_block:
        return empty
    st = 69.0 + 12.0 * np.log2(f0[idx] / 440.0)
    # octave jumps (and CREPE's twelfth errors, the 3rd harmonic): moved back by the interval they are
    # away from the running median (twice: a long wrong stretch moves the median the first time)
    for _ in range(2):
        ref = _median_filter(st, cfg._odd(cfg.octave_window_s))
        d = st - ref
        jump = _HARMONIC_JUMPS[np.argmin(np.abs(d[:, None] - _HARMONIC_JUMPS[None, :]), axis=1)]
        fix = (jump != 0) & (np.abs(d - jump) <= cfg.octave_tolerance)
        if not fix.any():
            break
        st = st - jump * fix
    # outliers: short excursions far from the running median
    ref = _median_filter(st, cfg._odd(cfg.outlier_window_s))
    far = np.abs(st - ref) > cfg.outlier_st
    max_run = max(1, int(round(cfg.outlier_max_s * cfg.f0_rate)))
    for s, e in true_runs(far):
        if e - s <= max_run:
            st[s:e] = ref[s:e]
    if cfg.smooth_s > 0:
        st = _median_filter(st, cfg._odd(cfg.smooth_s))
    st = st - np.median(st)
    if cfg.gaps == "fill":       # back on the time grid: pauses bridged linearly from note to note
        grid = np.arange(idx[0], idx[-1] + 1)
        st, idx = np.interp(grid, idx, st), grid
    b = cfg.frames_per_block
    n = len(st) // b
    if n < cfg.min_frames:
        return empty
    contour = st[: n * b].reshape(n, b).mean(axis=1)
    times = idx[: n * b: b] / cfg.f0_rate
    return contour.astype(np.float32), times.astype(np.float32)


def octave_shift(y: np.ndarray, sr: int, fmax: float) -> int:
    """Octaves to take a recording down before CREPE tracks it: 0 for voices, 1 or 2 for a whistle
    (0.8-2.5 kHz, two octaves above a sung voice), so that its median pitch lies under ``fmax / 2`` (the
    tune then fits CREPE's range and ``fmax``; a contour is key-invariant, so octaves do not matter).

    >>> t = np.arange(16000) / 16000
    >>> octave_shift(np.sin(2 * np.pi * 220 * t).astype(np.float32), 16000, 1000.0)
    0
    >>> octave_shift(np.sin(2 * np.pi * 1800 * t).astype(np.float32), 16000, 1000.0)
    2
    """
    f = voiced_pitch(y, sr, CONTOUR_VOICING)
    if f is None or f <= fmax / 2:
        return 0
    return int(min(3, math.ceil(math.log2(f / (fmax / 2)))))


def voiced_contour(y: np.ndarray, sr: int = SAMPLE_RATE, config: F0Config | None = None, *, device=None):
    """``(semitones, times_s, VoicedPart)``: :func:`f0_contour` of a 16 kHz signal and the voiced part it
    was tracked in (None for digital silence)."""
    cfg = config or F0Config()
    empty = (np.zeros(0, np.float32), np.zeros(0, np.float32))
    if len(y) == 0 or float(np.max(np.abs(y))) < SILENCE_PEAK:
        return (*empty, None)
    part = find_voiced(y, sr, CONTOUR_VOICING)
    t0 = 0.0
    if part.voiced:                   # the voiced part only (times stay those of the whole recording)
        y, t0 = y[part.start:part.end], part.start_s
    k = octave_shift(y, sr, cfg.fmax)
    hop = cfg.hop_length
    if k:     # a whistle: the same samples played 2^k times slower sound k octaves lower; CREPE frames every
        # hop * 2^k samples of it are every hop samples of the recording, so times and blocks do not change
        f0, per = predict_f0(resample(y, sr, sr * 2 ** k), SAMPLE_RATE, model=cfg.crepe_model,
                             hop_length=hop * 2 ** k, fmin=cfg.fmin, fmax=cfg.fmax, device=device)
        f0 = f0 * np.float32(2 ** k)
    else:
        f0, per = predict_f0(y, SAMPLE_RATE, model=cfg.crepe_model, hop_length=hop, fmin=cfg.fmin, fmax=cfg.fmax,
                             device=device)
    level = chadsp.rms_db(y, frame_length=1024, hop_length=hop, center=True)[: len(f0)]
    if len(level) < len(f0):
        level = np.pad(level, (0, len(f0) - len(level)), constant_values=-np.inf)
    n = min(len(f0), len(per))
    c, t = contour_from_f0(f0[:n], per[:n], cfg, level_db=level[:n])
    return c, (t + np.float32(t0)).astype(np.float32), part


def f0_contour(audio, sr: int = SAMPLE_RATE, config: F0Config | None = None, *,
               device=None) -> tuple[np.ndarray, np.ndarray]:
    """The key-invariant pitch contour of a recording (array at ``sr`` or a file path):
    ``(semitones (n,) float32, times_s (n,) float32)``; empty arrays when it has no melody (silence,
    noise, fewer than ``config.min_frames`` voiced frames). See :func:`contour_from_f0`.

    The recording is first cut to its voiced part (:data:`CONTOUR_VOICING`; ``times_s`` stay times of the
    whole recording), and a whistle is tracked some octaves down (:func:`octave_shift`): CREPE's range
    ends at 2 kHz, a whistle's pitch goes to 2.5 kHz, and the contour does not depend on the octave.

    Example
    -------
    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> y = np.r_[np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)].astype(np.float32)
    >>> c, _ = f0_contour(y, 16000)
    >>> float(np.round(np.median(c[-10:]) - np.median(c[:10])))   # a fifth up: 7 semitones
    7.0
    >>> w = np.r_[np.sin(2 * np.pi * 1760 * t), np.sin(2 * np.pi * 2349 * t)].astype(np.float32)
    >>> c, _ = f0_contour(w, 16000)                       # whistled: A6 then D7, over CREPE's range
    >>> float(np.round(np.median(c[-10:]) - np.median(c[:10])))   # a fourth up
    5.0
    """
    cfg = config or F0Config()
    y, sr = load_query_audio(audio, sr)
    if sr != SAMPLE_RATE:
        y, sr = resample(y, sr, SAMPLE_RATE).astype(np.float32, copy=False), SAMPLE_RATE
    c, t, _ = voiced_contour(y, SAMPLE_RATE, cfg, device=device)
    return c, t
