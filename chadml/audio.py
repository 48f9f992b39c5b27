"""Audio input/output: load (soundfile), resample (scipy.signal.resample_poly), mono, peak-normalise, save.

Everything in chad works on 16 kHz mono float32 signals (``SR``). ``load`` returns that by default.

Example
-------
>>> import numpy as np, tempfile, os
>>> from chadml import audio
>>> y = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32) * 0.5
>>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
>>> audio.save(path, y)
>>> audio.load(path).shape
(16000,)
"""
from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np

from .errors import ChadError
from .util import atomic_path

SR = 16000
"""The sample rate of every signal in chad (Hz)."""

#: subtypes ``save`` writes by default, per container (16-bit PCM: lossless for the synthetic corpus's
#: dynamic range, half the size of float; ``subtype="FLOAT"`` keeps float32 samples bit-for-bit in WAV)
DEFAULT_SUBTYPE = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}


def _check_sr(sr, name: str) -> int:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)):
        raise TypeError(f"{name} must be an int (Hz), got {type(sr).__name__} {sr!r}")
    if sr <= 0:
        raise ValueError(f"{name} must be a positive sample rate in Hz, got {sr}")
    return int(sr)


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average the channels of ``y`` (shape ``(n,)`` or ``(n, channels)``, soundfile's layout) to ``(n,)`` float32.

    Example
    -------
    >>> to_mono(np.array([[1.0, 0.0], [0.5, 0.5]])).tolist()
    [0.5, 0.5]
    """
    y = np.asarray(y)
    if y.ndim == 1:
        return y.astype(np.float32, copy=False)
    if y.ndim != 2:
        raise ValueError(f"y must have shape (n,) or (n, channels), got shape {y.shape}")
    return y.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``y`` (along its first axis) from ``sr_in`` to ``sr_out`` Hz with a polyphase filter.

    Uses ``scipy.signal.resample_poly`` with the reduced ratio ``sr_out / sr_in`` (Kaiser window, beta 5).
    The output has ``ceil(len(y) * sr_out / sr_in)`` samples, is float32, and equals ``y`` when the rates match.

    Example
    -------
    >>> resample(np.zeros(44100, np.float32), 44100, 16000).shape
    (16000,)
    """
    sr_in = _check_sr(sr_in, "sr_in")
    sr_out = _check_sr(sr_out, "sr_out")
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"y must have shape (n,) or (n, channels), got shape {y.shape}")
    if sr_in == sr_out:
        return y.astype(np.float32, copy=False)
    from scipy.signal import resample_poly
    frac = Fraction(sr_out, sr_in)
    if y.shape[0] == 0:
        return np.zeros((0,) + y.shape[1:], np.float32)
    out = resample_poly(y.astype(np.float64, copy=False), frac.numerator, frac.denominator, axis=0)
    n = math.ceil(y.shape[0] * sr_out / sr_in)
    return out[:n].astype(np.float32)


def peak_normalise(y: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scale ``y`` so that its largest absolute sample is ``peak``; an all-zero signal is returned unchanged.

    Example
    -------
    >>> peak_normalise(np.array([0.1, -0.2], np.float32), peak=0.5).tolist()
    [0.25, -0.5]
    """
    if not (isinstance(peak, (int, float, np.floating)) and 0 < float(peak) <= 1.0):
        raise ValueError(f"peak must be in (0, 1], got {peak!r}")
    y = np.asarray(y, dtype=np.float32)
    m = float(np.max(np.abs(y))) if y.size else 0.0
    if not math.isfinite(m):
        raise ValueError("y contains NaN or infinite samples; expected finite audio")
    if m == 0.0:
        return y.copy()
    return (y * np.float32(float(peak) / m)).astype(np.float32)


def load(path: str | os.PathLike, sr: int | None = SR, mono: bool = True, *, start: float = 0.0,
         end: float | None = None) -> np.ndarray:
    """Read an audio file as float32, resampled to ``sr`` (``None``: keep the file's rate) and mixed to mono.

    Returns shape ``(n,)`` when ``mono`` else ``(n, channels)``. A silent file loads fine (all zeros);
    deciding what silence means is the caller's job. ``start``/``end`` (seconds) read only that part of
    the file (a manifest row's fragment) without decoding the rest; ``end`` past the file's end is cut.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    chadml.ChadError
        The file is not readable audio (corrupt, unknown format) or holds no samples; the message names it.

    Example
    -------
    >>> import tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> save(p, np.zeros(800, np.float32), sr=8000)
    >>> load(p).shape          # resampled to 16 kHz
    (1600,)
    """
    import soundfile as sf
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    if sr is not None:
        sr = _check_sr(sr, "sr")
    start = float(start)
    if not (math.isfinite(start) and start >= 0):
        raise ValueError(f"start must be a finite number of seconds >= 0, got {start!r}")
    if end is not None and not (math.isfinite(float(end)) and float(end) > start):
        raise ValueError(f"end must be a number of seconds > start ({start}), got {end!r}")
    try:
        with sf.SoundFile(path) as f:
            file_sr, n_frames = f.samplerate, f.frames
            a = int(round(start * file_sr))
            b = n_frames if end is None else min(n_frames, int(round(float(end) * file_sr)))
            if n_frames == 0:
                raise ChadError(f"audio file {path} holds no samples (empty audio)")
            if a >= n_frames:
                raise ValueError(f"start={start} s is past the end of {path} ({n_frames / file_sr:.3f} s)")
            f.seek(a)
            y = f.read(b - a, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise unreadable(path, exc) from exc
    if y.shape[0] == 0:
        raise ChadError(f"audio file {path} holds no samples (empty audio)")
    if not np.isfinite(y).all():
        raise ChadError(f"audio file {path} contains NaN or infinite samples")
    if mono:
        y = to_mono(y)
    if sr is not None and file_sr != sr:
        y = resample(y, file_sr, sr)
    return np.ascontiguousarray(y, dtype=np.float32)


def load_head(path: str | os.PathLike, seconds: float | None, sr: int = SR) -> tuple[np.ndarray, float]:
    """The first ``seconds`` of an audio file (``None``: all of it), read as :func:`load` reads, and the whole
    file's duration in seconds: only the frames kept are decoded, so a 30-minute recording cut to a
    minute's query never sits in memory whole.

    Example
    -------
    >>> import tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "long.wav"); save(p, np.zeros(5 * SR, np.float32))
    >>> y, total = load_head(p, 2.0)
    >>> len(y) / SR, total
    (2.0, 5.0)
    """
    total = duration(path)
    if seconds is None or total <= seconds:
        return load(path, sr=sr), total
    return load(path, sr=sr, end=float(seconds)), total


def save(path: str | os.PathLike, y: np.ndarray, sr: int = SR, *, subtype: str | None = None) -> None:
    """Write ``y`` (``(n,)`` or ``(n, channels)``) atomically; the container follows the extension.

    ``.wav`` and ``.flac`` are written as 16-bit PCM by default (samples are clipped to [-1, 1]);
    pass ``subtype="FLOAT"`` (WAV only) to keep float32 samples exactly. The file appears complete or
    not at all (written beside ``path`` and renamed), so an existing file is always a finished one.

    Example
    -------
    >>> import tempfile
    >>> save(os.path.join(tempfile.mkdtemp(), "x.flac"), np.zeros(160, np.float32))
    """
    import soundfile as sf
    path = os.fspath(path)
    sr = _check_sr(sr, "sr")
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"y must have shape (n,) or (n, channels), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise TypeError(f"y must be a float array with samples in [-1, 1], got dtype {y.dtype}")
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinite samples; expected finite audio")
    ext = os.path.splitext(path)[1].lower()
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(ext)
    if fmt is None:
        raise ValueError(f"path must end in .wav, .flac or .ogg, got {path!r}")
    subtype = subtype or DEFAULT_SUBTYPE[fmt]
    if subtype.startswith("PCM"):
        y = np.clip(y, -1.0, 1.0)
    with atomic_path(path, suffix=ext) as tmp:
        sf.write(tmp, y, sr, format=fmt, subtype=subtype)


def duration(path: str | os.PathLike) -> float:
    """Duration of an audio file in seconds, from its header (no decoding).

    Example
    -------
    >>> import tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "d.wav"); save(p, np.zeros(8000, np.float32))
    >>> duration(p)
    0.5
    """
    import soundfile as sf
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise unreadable(path, exc) from exc
    return info.frames / info.samplerate


#: what :func:`load` reads (libsndfile's formats), for the message of a file it cannot read
READABLE = "WAV, FLAC, MP3, Ogg Vorbis/Opus, AIFF, AU"


def unreadable(path: str, exc: Exception) -> ChadError:
    """The error of an audio file soundfile cannot read; when its format is not one it knows, the message
    says which formats are read and how to convert (e.g. an .m4a/AAC recording).

    >>> str(unreadable("x.m4a", RuntimeError("Error opening 'x.m4a': Format not recognised.")))[:60]
    "cannot read audio file x.m4a: Error opening 'x.m4a': Format "
    """
    msg = f"cannot read audio file {path}: {exc}"
    if "format not recognised" in str(exc).lower() or "unknown format" in str(exc).lower():
        stem = os.path.splitext(os.path.basename(path))[0]
        msg += f" (chad reads {READABLE}: convert it first, e.g. `ffmpeg -i {os.path.basename(path)} {stem}.flac`)"
    return ChadError(msg)


__all__ = ["SR", "load", "load_head", "save", "resample", "to_mono", "peak_normalise", "duration", "unreadable",
           "READABLE"]
