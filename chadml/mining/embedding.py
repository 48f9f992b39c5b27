"""Each recording fingerprinted once, as a whole (:func:`embed`), and a fragment's fingerprints taken from
it (:func:`fragment_fingerprints`).

A fragment's fingerprints are the windows of the whole-track sequence that lie inside the fragment
(``MiningConfig.embed="slice"``): the same windows a separate pass over the fragment would give,
except that (a) they sit on the track's window grid, so the first window starts up to one step
after the fragment's start (that offset is carried into the cover fragment's start, so no alignment
is lost), (b) a fragment may get one window fewer, and (c) features near the fragment's edges see
the neighbouring audio rather than padding. When the slice would lose more than one window the
fragment is re-embedded on its own. ``embed="fragment"`` re-embeds every fragment (the paper's
``M(f^o)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import SR

__all__ = ["Embedding", "embed", "fragment_fingerprints", "window_seconds"]


@dataclass
class Embedding:
    """The fingerprints of one whole recording: ``fps`` (n, D) float32, window ``starts`` (n,) seconds."""

    fps: np.ndarray
    starts: np.ndarray
    window_s: float
    duration: float
    mean: np.ndarray | None = None      # the per-dimension mean removed from fps (``center=True``), else None
    scale: np.ndarray | None = None     # the per-dimension std fps were divided by (``standardize=True``)

    @property
    def step_s(self) -> float:
        """The mean window step (windows start on whole feature frames, so steps vary by a frame)."""
        if len(self.starts) > 1:
            return float(self.starts[-1] - self.starts[0]) / (len(self.starts) - 1)
        return float("nan")

    def window_range(self, start: float, end: float) -> tuple[int, int]:
        """Indices ``[i0, i1)`` of the windows lying inside ``[start, end]`` seconds (1 ms tolerance)."""
        eps = 1e-3
        i0 = int(np.searchsorted(self.starts, start - eps, side="left"))
        i1 = int(np.searchsorted(self.starts + self.window_s, end + eps, side="right"))
        return i0, max(i0, i1)


def window_seconds(fingerprinter) -> float:
    """The analysis window (seconds) of a fingerprinter (its ``window_config.window_s``)."""
    wc = getattr(fingerprinter, "window_config", None)
    if wc is None or not hasattr(wc, "window_s"):
        raise TypeError("fingerprinter must have a window_config with window_s (a "
                        "chadml.models.encoder.Fingerprinter), "
                        f"got {type(fingerprinter).__name__}")
    return float(wc.window_s)


def embed(fingerprinter, y: np.ndarray, sr: int = SR, *, center: bool = False,
          standardize: bool = False) -> Embedding:
    """Fingerprint a whole recording once; with ``center``, remove the recording's mean fingerprint, with
    ``standardize`` also scale each dimension to unit standard deviation over the recording.

    Example
    -------
    >>> emb = embed(fingerprinter, y)                     # doctest: +SKIP
    >>> emb.fps.shape, emb.starts[:3]                     # doctest: +SKIP
    ((120, 128), array([0.  , 0.256, 0.512]))
    """
    fps, starts = fingerprinter.from_audio(y, sr=sr)
    fps = np.ascontiguousarray(fps, dtype=np.float32)
    starts = np.asarray(starts, dtype=np.float64)
    mean = scale = None
    if (center or standardize) and len(fps):
        mean = fps.mean(axis=0)
        fps = np.ascontiguousarray(fps - mean)
        if standardize:
            sd = fps.std(axis=0)
            scale = np.where(sd > 1e-6 * max(float(sd.max()), 1e-30), sd, 1.0).astype(np.float32)
            fps = np.ascontiguousarray(fps / scale, dtype=np.float32)
    return Embedding(fps, starts, window_seconds(fingerprinter), len(y) / sr, mean, scale)


def fragment_fingerprints(emb: Embedding, start: float, end: float, *, y: np.ndarray | None = None,
                          fingerprinter=None, mode: str = "slice", sr: int = SR) -> tuple[np.ndarray, float]:
    """The fingerprints of the fragment ``[start, end]`` s and the offset (s) of its first window.

    ``mode="slice"``: the windows of ``emb`` inside the fragment, unless that loses more than one window
    against a separate pass over the fragment (then, or with ``mode="fragment"``, the fragment's audio
    ``y[start:end]`` is fingerprinted on its own, offset 0).
    """
    if mode not in ("slice", "fragment"):
        raise ValueError(f"mode must be 'slice' or 'fragment', got {mode!r}")
    if mode == "slice":
        i0, i1 = emb.window_range(start, end)
        step = emb.step_s
        dur = end - start
        own = 0 if dur < emb.window_s else int(math.floor((dur - emb.window_s) / step + 1e-6)) + 1 \
            if math.isfinite(step) and step > 0 else 1
        if i1 > i0 and i1 - i0 >= own - 1:
            return emb.fps[i0:i1], float(emb.starts[i0] - start)
    if y is None or fingerprinter is None:
        raise ValueError("fragment_fingerprints needs y and fingerprinter to embed a fragment on its own")
    a, b = int(round(start * sr)), int(round(end * sr))
    fps, starts = fingerprinter.from_audio(y[a:b], sr=sr)
    fps = np.ascontiguousarray(fps, dtype=np.float32)
    if emb.mean is not None:
        fps = np.ascontiguousarray(fps - emb.mean)
    if emb.scale is not None:
        fps = np.ascontiguousarray(fps / emb.scale, dtype=np.float32)
    return fps, (float(starts[0]) if len(starts) else 0.0)
