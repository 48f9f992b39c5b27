"""Fixed (not trained) front ends of the encoder that take the voice's timbre out of a CQT window.

A hummed, sung, whistled or choir-sung melody has the same fundamental and the same harmonic *positions*
on a log-frequency axis; what changes between voices is the spectral envelope (formants, brightness,
tilt) and how smeared the partials are (ensembles, vibrato). An encoder trained on a few synthetic
voices learns that envelope too (the shipped model found choir queries far worse than hums). These
fronts remove it before the first convolution, so that every voice looks alike to the network:

- ``"whiten"``: the window minus its local spectral envelope: ``relu(x - mean_13(x))`` per frame, the
  mean taken over one octave (13 bins at 12 bins per octave) of the dB-normalised CQT ``x``: only what
  stands above its neighbourhood (the partials) is kept, the formants and the tilt are gone.
- ``"salience"``: two channels, the whitened window and its harmonic sum (subharmonic summation,
  Hermes 1988): ``s[k] = sum_h 0.8 ** (h - 1) * w[k + round(12 log2 h)]`` for harmonics ``h = 1..8``,
  normalised so that each window's largest value is 1: a pitch salience peaked at the fundamental
  whichever partials a voice makes strong.

Both are a few tensor ops per batch (pooling and shifted sums), run inside the model (training,
indexing and search all see them) and are recorded in the encoder's config (``front``).

Example
-------
>>> import torch
>>> x = torch.zeros(1, 84, 5); x[0, 24, :] = 1.0          # one pure partial at C3
>>> front = TimbreFront("salience")
>>> y = front(x); tuple(y.shape), front.out_channels
((1, 2, 84, 5), 2)
>>> int(y[0, 1, :, 0].argmax())                            # the salience peaks at the partial
24
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FRONTS", "TimbreFront"]

#: the front ends :class:`TimbreFront` knows ("none": the window as it is)
FRONTS = ("none", "whiten", "salience")
_HARMONICS = 8
_DECAY = 0.8


class TimbreFront(nn.Module):
    """``(B, F, T)`` or ``(B, 1, F, T)`` windows -> ``(B, out_channels, F, T)`` (see the module text).

    ``bins_per_octave`` (12 for chad's CQT) sets the envelope's width (one octave) and the harmonics'
    offsets. ``"none"`` passes the window through (one channel)."""

    def __init__(self, kind: str = "none", bins_per_octave: int = 12) -> None:
        super().__init__()
        if kind not in FRONTS:
            raise ValueError(f"front must be one of {FRONTS}, got {kind!r}")
        if isinstance(bins_per_octave, bool) or not isinstance(bins_per_octave, int) or bins_per_octave < 1:
            raise ValueError(f"bins_per_octave must be a positive int, got {bins_per_octave!r}")
        self.kind, self.bins_per_octave = kind, bins_per_octave
        self.width = bins_per_octave + 1 if bins_per_octave % 2 == 0 else bins_per_octave
        self.offsets = [int(round(bins_per_octave * math.log2(h))) for h in range(1, _HARMONICS + 1)]
        self.weights = [_DECAY ** (h - 1) for h in range(1, _HARMONICS + 1)]

    @property
    def out_channels(self) -> int:
        return 2 if self.kind == "salience" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            if x.shape[1] != 1:
                raise ValueError(f"x must have one channel, got shape {tuple(x.shape)}")
            x = x[:, 0]
        if x.ndim != 3:
            raise ValueError(f"x must be (B, F, T) or (B, 1, F, T), got shape {tuple(x.shape)}")
        if self.kind == "none":
            return x.unsqueeze(1)
        b, f, t = x.shape
        # local mean over one octave of frequency, per frame (edges: the mean of the bins that exist)
        xt = x.transpose(1, 2).reshape(b * t, 1, f)
        env = F.avg_pool1d(xt, self.width, stride=1, padding=self.width // 2, count_include_pad=False)
        w = torch.relu(xt - env).reshape(b, t, f).transpose(1, 2)
        if self.kind == "whiten":
            return w.unsqueeze(1)
        s = torch.zeros_like(w)
        for off, a in zip(self.offsets, self.weights):
            if off < f:
                s[:, : f - off] += a * w[:, off:]
        top = s.amax(dim=(1, 2), keepdim=True)
        s = s / torch.clamp(top, min=1e-6)
        return torch.stack([w, s], dim=1)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, bins_per_octave={self.bins_per_octave}"
