"""chadsp.silence: frame RMS in dB, silence masking, splitting and fragment merging (DESIGN.md section 2).

The conventions are librosa's (0.10/0.11), so that intervals computed here and there agree:

- frames: ``librosa.feature.rms(y=y, frame_length=, hop_length=, center=)``; with ``center=True`` the
  signal is padded with ``frame_length // 2`` zeros on each side (librosa's ``pad_mode="constant"``).
- dB: ``librosa.amplitude_to_db(rms, ref=np.max, top_db=None)``: relative to the loudest frame, with
  librosa's floor applied to every frame and to the reference: power ``1e-10`` (``power_to_db``'s
  ``amin``), i.e. amplitude ``1e-5`` (``amplitude_to_db``'s ``amin``). ``librosa.effects.split`` uses the
  same floor, so it matters: in a recording whose loudest frame has RMS 1e-3, nothing is more than 40 dB
  below the (floored) reference.
  Unlike ``amplitude_to_db``'s default ``top_db=80``, the values are **not** clipped at -80 dB: a clipped
  curve would make ``silence_mask(..., top_db >= 80)`` meaningless.
- intervals: ``librosa.effects.split``: frame ``k`` maps to sample ``k * hop_length`` (no centring
  offset) and ends are clipped to ``len(y)``.

The signal is converted to float32 (as librosa squares it in float32); frame powers are accumulated in
double, so values agree with librosa's to about 1e-5 dB and intervals differ only for a frame whose level
lies within that of the threshold.
"""
from __future__ import annotations

import numpy as np

from . import _backend
from ._checks import as_signal, check_bool, check_float, check_frame_args, check_int, check_intervals

__all__ = ["rms_db", "silence_mask", "split_by_silence", "merge_fragments"]


def _n_frames(n: int, frame_length: int, hop_length: int, center: bool) -> int:
    """librosa's frame count; 0 when the (padded) signal is shorter than a frame."""
    padded = n + 2 * (frame_length // 2) if center else n
    return 0 if padded < frame_length else 1 + (padded - frame_length) // hop_length


def rms_db(y, *, frame_length: int = 2048, hop_length: int = 512, center: bool = True) -> np.ndarray:
    """Frame RMS of a mono signal in dB relative to its loudest frame.

    Parameters
    ----------
    y : array_like, shape (n,)
        Mono signal (real, finite; converted to float32).
    frame_length, hop_length : int >= 1
        Frame size and step in samples.
    center : bool
        Pad ``frame_length // 2`` zeros on both sides first (librosa's default), so that frame ``k`` is
        centred on sample ``k * hop_length``.

    Returns
    -------
    numpy.ndarray, float32, shape (n_frames,)
        ``20 log10(max(rms, 1e-5) / max(max(rms), 1e-5))``: the loudest frame is 0 dB, nothing is
        clipped. ``n_frames = 1 + (n_padded - frame_length) // hop_length``, or 0 when the (padded)
        signal is shorter than one frame (librosa raises there). Matches
        ``librosa.amplitude_to_db(librosa.feature.rms(y=y, ...)[0], ref=np.max, top_db=None)``.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> y = np.r_[np.ones(4096), 0.01 * np.ones(4096)].astype(np.float32)
    >>> db = chadsp.rms_db(y, frame_length=1024, hop_length=1024, center=False)
    >>> np.round(db, 3).tolist()
    [0.0, 0.0, 0.0, 0.0, -40.0, -40.0, -40.0, -40.0]
    """
    x = as_signal(y, "y")
    fl, hop = check_frame_args(frame_length, hop_length)
    c = check_bool(center, "center")
    return _backend.impl.rms_db(x, fl, hop, c, _n_frames(x.size, fl, hop, c))


def silence_mask(rms_db, top_db: float) -> np.ndarray:
    """Which frames are silent: at least ``top_db`` dB below the loudest frame.

    Parameters
    ----------
    rms_db : array_like, shape (n_frames,)
        Frame levels in dB (the output of :func:`rms_db`; any finite dB curve works: levels are taken
        relative to its maximum).
    top_db : float > 0
        The threshold below the loudest frame (the paper's L_db = {52, 56, 60, 64, 68}).

    Returns
    -------
    numpy.ndarray, bool, shape (n_frames,)
        ``rms_db - max(rms_db) <= -top_db``: the exact complement of librosa's non-silent test
        (``db > -top_db``), so the runs of ``~silence_mask(rms_db(y), top_db)`` are the frames of
        ``split_by_silence(y, top_db)``.

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> chadsp.silence_mask(np.array([0.0, -30.0, -60.0, -75.0]), 60).tolist()
    [False, False, True, True]
    """
    db = as_signal(rms_db, "rms_db", dtype=np.float64)
    t = check_float(top_db, "top_db", minimum=0.0, strict_min=True)
    if db.size == 0:
        return np.zeros(0, dtype=bool)
    return (db - db.max()) <= -t


def split_by_silence(y, top_db: float, *, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Non-silent intervals of a mono signal: the intervals of ``librosa.effects.split``.

    A frame (centred, as in :func:`rms_db`) is non-silent when its level is above ``-top_db`` dB relative
    to the loudest frame, i.e. where :func:`silence_mask` is False. Runs of non-silent frames
    ``[a, b)`` become sample intervals ``[a * hop_length, min(b * hop_length, len(y)))``, as librosa does
    (so an interval may end in a short tail, or, with ``hop_length > frame_length // 2``, be empty at
    ``len(y)``; a signal with no sound at all is one loud interval, since levels are relative).

    Parameters
    ----------
    y : array_like, shape (n,)
        Mono signal (real, finite; converted to float32).
    top_db : float > 0
        Silence threshold below the loudest frame.
    frame_length, hop_length : int >= 1

    Returns
    -------
    numpy.ndarray, int64, shape (m, 2)
        ``[start, end)`` sample intervals, sorted. An empty signal gives ``(0, 2)`` (librosa: ``[[0, 0]]``
        or an error).

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> t = np.arange(16000) / 16000
    >>> y = np.sin(2 * np.pi * 440 * t) * ((t > 0.25) & (t < 0.5))
    >>> chadsp.split_by_silence(y, 60).tolist()
    [[3072, 9216]]
    """
    x = as_signal(y, "y")
    t = check_float(top_db, "top_db", minimum=0.0, strict_min=True)
    fl, hop = check_frame_args(frame_length, hop_length)
    if x.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    return _backend.impl.split(x, t, fl, hop, _n_frames(x.size, fl, hop, True))


def merge_fragments(intervals, max_pause: int, min_len: int, max_len: int) -> np.ndarray:
    """Join nearby intervals into fragments, then keep those of a usable length.

    Left to right, the next interval joins the current fragment when the pause between them
    (``next.start - current.end``) is ``<= max_pause`` samples and the joined fragment
    (``next.end - current.start``) stays ``<= max_len``; otherwise the current fragment is closed and the
    next interval starts a new one. Finally only fragments with ``min_len <= length <= max_len`` are kept
    (an input interval longer than ``max_len`` is dropped, never cut). The paper (Algorithm 1):
    pauses D_p = {0.5, 1, 1.5} s, d_min = 8 s, d_max = 20 s, all in samples here.

    Parameters
    ----------
    intervals : array_like of int, shape (n, 2)
        Sorted, non-overlapping ``[start, end)`` sample intervals (e.g. from :func:`split_by_silence`).
    max_pause : int >= 0
    min_len : int >= 0
    max_len : int >= min_len

    Returns
    -------
    numpy.ndarray, int64, shape (m, 2)

    Examples
    --------
    >>> import numpy as np, chadsp
    >>> iv = np.array([[0, 10], [12, 20], [40, 45], [46, 100]])
    >>> chadsp.merge_fragments(iv, max_pause=2, min_len=5, max_len=50).tolist()
    [[0, 20], [40, 45]]
    """
    iv = check_intervals(intervals, "intervals")
    p = check_int(max_pause, "max_pause", minimum=0)
    lo = check_int(min_len, "min_len", minimum=0)
    hi = check_int(max_len, "max_len", minimum=0)
    if hi < lo:
        raise ValueError(f"max_len must be >= min_len, got max_len = {hi} < min_len = {lo}")
    if iv.shape[0] == 0:
        return np.empty((0, 2), dtype=np.int64)
    return _backend.impl.merge_fragments(iv, p, lo, hi)
