"""Analysis windows of a feature matrix: ``M_short`` (:data:`SHORT`: W = 3 s, S = 0.25 s) and ``M_long``
(:data:`LONG`: W = 8 s, S = 0.64 s).

A window is ``round(W * frame_rate)`` frames long and window ``k`` starts at frame
``round(k * S * frame_rate)`` (Python's round-half-even), so the step may be a fractional number of
frames (CQT: 0.25 s = 7.8125 frames) without drifting.

Example
-------
>>> SHORT.frames(31.25)
(94, 7.8125)
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..config import check_number, from_dict

__all__ = ["WindowConfig", "SHORT", "LONG", "window_starts", "make_windows", "lerp_rows", "stretch", "tempo_grid"]


@dataclasses.dataclass(frozen=True)
class WindowConfig:
    """Analysis windows of ``window_s`` seconds every ``step_s`` seconds.

    Example
    -------
    >>> LONG.frames(31.25)
    (250, 20.0)
    """

    window_s: float
    step_s: float

    def __post_init__(self) -> None:
        check_number("WindowConfig.window_s", self.window_s)
        check_number("WindowConfig.step_s", self.step_s)

    def frames(self, frame_rate: float) -> tuple[int, float]:
        """``(win_frames, step_frames)``: the window in whole frames (rounded), the step possibly fractional.

        Window ``k`` starts at frame ``round(k * step_frames)``.
        """
        check_number("frame_rate", frame_rate)
        win = int(round(self.window_s * frame_rate))
        if win < 1:
            raise ValueError(f"window_s={self.window_s} is shorter than one frame at frame_rate={frame_rate}")
        step = float(self.step_s * frame_rate)
        if step < 0.5:
            raise ValueError(f"step_s={self.step_s} is under half a frame at frame_rate={frame_rate}")
        return win, step

    def to_dict(self) -> dict:
        return {"window_s": float(self.window_s), "step_s": float(self.step_s)}

    @classmethod
    def from_dict(cls, d: dict) -> "WindowConfig":
        return from_dict(cls, d, "WindowConfig dict")


SHORT = WindowConfig(3.0, 0.25)  # M_short: queries under 15 s
LONG = WindowConfig(8.0, 0.64)   # M_long


def window_starts(n_frames: int, window: WindowConfig, frame_rate: float) -> np.ndarray:
    """Start frames (int64) of every analysis window of a feature of ``n_frames`` frames.

    Window ``k`` starts at ``round(k * step_s * frame_rate)``; all windows lie inside the clip
    (start + win_frames <= n_frames). A clip shorter than one window has one window at 0.
    """
    if not isinstance(window, WindowConfig):
        raise TypeError(f"window must be a WindowConfig, got {type(window).__name__}")
    check_number("n_frames", n_frames, integer=True)
    win, step = window.frames(frame_rate)
    if n_frames <= win:
        return np.zeros(1, dtype=np.int64)
    n = int(math.floor((n_frames - win) / step)) + 2
    starts = np.round(np.arange(n) * step).astype(np.int64)
    return starts[starts + win <= n_frames]


def make_windows(features: np.ndarray, window: WindowConfig, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Every analysis window of a feature matrix.

    Parameters
    ----------
    features : float array (F, T)
    window : WindowConfig (e.g. ``SHORT`` or ``LONG``)
    frame_rate : float
        Frames per second of ``features`` (``FeatureConfig.frame_rate``).

    Returns
    -------
    windows : float32 (n, F, win_frames)
        A copy. A clip shorter than one window is zero-padded at the end to one window (0.0 is
        silence / no activation in normalised features).
    starts_s : float64 (n,)
        Start of each window in seconds (``start_frame / frame_rate``).

    Example
    -------
    >>> import numpy as np
    >>> w, s = make_windows(np.zeros((84, 200), np.float32), SHORT, 31.25)
    >>> w.shape, float(s[1])
    ((14, 84, 94), 0.256)
    """
    if not isinstance(window, WindowConfig):
        raise TypeError(f"window must be a WindowConfig (e.g. SHORT or LONG), got {type(window).__name__}")
    if not isinstance(features, np.ndarray):
        raise TypeError(f"features must be a numpy array (F, T), got {type(features).__name__}")
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (F, T), got shape {features.shape}")
    if features.shape[0] < 1 or features.shape[1] < 1:
        raise ValueError(f"features must have at least one row and one frame, got shape {features.shape}")
    if features.dtype.kind != "f":
        raise TypeError(f"features must be a float array, got {features.dtype}")
    win, _ = window.frames(frame_rate)
    n_feat, n_frames = features.shape
    starts = window_starts(n_frames, window, frame_rate)
    x = features.astype(np.float32, copy=False)
    if n_frames < win:
        x = np.pad(x, ((0, 0), (0, win - n_frames)))
    view = np.lib.stride_tricks.sliding_window_view(x, win, axis=1)  # (F, T - win + 1, win)
    windows = np.ascontiguousarray(view[:, starts].transpose(1, 0, 2))
    return windows, starts.astype(np.float64) / float(frame_rate)


# ---- a sequence of windows at another tempo (mining's tempo scan, the searcher's tempo re-ranking) ----

def lerp_rows(rows: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The rows of ``rows`` at fractional positions ``pos`` (0 .. len - 1), linearly interpolated."""
    i = np.minimum(np.floor(pos).astype(np.int64), len(rows) - 1)
    j = np.minimum(i + 1, len(rows) - 1)
    f = (pos - i)[:, None].astype(np.float32)
    return (1 - f) * rows[i] + f * rows[j]


def stretch(fps: np.ndarray, ratio: float) -> np.ndarray:
    """The rows of a fingerprint sequence as sung ``ratio`` times slower, on the same window step: row ``j`` is
    the linear interpolation at position ``j / ratio`` (``floor((n - 1) * ratio) + 1`` rows).

    >>> import numpy as np
    >>> [round(float(v), 3) for v in stretch(np.arange(4.0)[:, None], 1.5).ravel()]
    [0.0, 0.667, 1.333, 2.0, 2.667]
    """
    n = len(fps)
    if n == 0 or not ratio > 0:
        raise ValueError(f"stretch needs rows and a ratio > 0, got {n} rows and ratio {ratio!r}")
    m = int(math.floor((n - 1) * ratio + 1e-9)) + 1
    return np.ascontiguousarray(lerp_rows(fps, np.arange(m) / ratio), dtype=np.float32)


def tempo_grid(low: float, high: float, step: float) -> np.ndarray:
    """The tempo ratios of a scan: the powers of ``1 + step`` within ``[low, high]`` (1 among them).

    >>> tempo_grid(0.9, 1.1, 0.05).round(4).tolist()
    [0.907, 0.9524, 1.0, 1.05]
    """
    if not (0 < low <= 1 <= high and step > 0):
        raise ValueError(f"a tempo scan needs 0 < low <= 1 <= high and step > 0, got {low!r}, {high!r}, {step!r}")
    g = math.log1p(step)
    k0, k1 = math.ceil(math.log(low) / g - 1e-9), math.floor(math.log(high) / g + 1e-9)
    return np.exp(np.arange(k0, k1 + 1) * g)
