"""What every feature module checks: mono float audio (:func:`check_audio`) and the torch device
(:func:`resolve_device`).

Example
-------
>>> import numpy as np
>>> check_audio(np.zeros(4, np.float64)).dtype
dtype('float32')
>>> resolve_device("cpu")
device(type='cpu')
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["check_audio", "resolve_device"]


def resolve_device(device=None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; strings and ``torch.device`` pass through."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from exc


def check_audio(audio: Any, name: str = "audio", *, min_samples: int = 1) -> np.ndarray:
    """Validate mono float audio: a 1-D finite float32/float64 numpy array of >= ``min_samples`` samples.

    Returns it as C-contiguous float32. Integer PCM is refused (scale it to [-1, 1] first).
    """
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of float samples, got {type(audio).__name__}")
    if audio.dtype.kind != "f":
        hint = (f"; convert integer PCM with {name}.astype(np.float32) / {float(2 ** (8 * audio.itemsize - 1)):.0f}"
                if audio.dtype.kind in "iu" else "")
        raise TypeError(f"{name} must have dtype float32 or float64, got {audio.dtype}{hint}")
    if audio.ndim != 1:
        raise ValueError(f"{name} must be 1-D mono audio (n_samples,), got shape {audio.shape}"
                         + ("; mix channels down first (e.g. audio.mean(axis=...))" if audio.ndim == 2 else ""))
    if audio.shape[0] < min_samples:
        raise ValueError(f"{name} is too short: {audio.shape[0]} samples, at least {min_samples} are needed "
                         f"(one feature frame)")
    if not np.isfinite(audio).all():
        bad = int(audio.size - np.count_nonzero(np.isfinite(audio)))
        raise ValueError(f"{name} must be finite, got {bad} NaN/inf sample(s)")
    return np.ascontiguousarray(audio, dtype=np.float32)

