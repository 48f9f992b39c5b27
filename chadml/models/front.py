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
        return self.scale_windows_(self.per_frame(x))

    def per_frame(self, x: torch.Tensor) -> torch.Tensor:
        """The front of every frame, before the salience's per-window scaling: ``(B, F, T)`` or
        ``(B, 1, F, T)`` -> ``(B, out_channels, F, T)``. Everything here is per frame (column), so a whole
        clip's frames can go through it once and be cut into windows after (what
        :meth:`chadml.models.Fingerprinter.from_features` does: each frame is in 12 windows at chad's hop);
        :meth:`scale_windows_` then finishes each window."""
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
        env = F.avg_pool2d(x.unsqueeze(1), (self.width, 1), stride=1, padding=(self.width // 2, 0),
                           count_include_pad=False)[:, 0]
        out = torch.empty((b, self.out_channels, f, t), dtype=x.dtype, device=x.device)
        w = out[:, 0]
        torch.sub(x, env, out=w)
        w.clamp_(min=0)
        if self.kind == "salience":
            s = out[:, 1]
            s.copy_(w)                                   # harmonic 1, weight 1
            for off, a in zip(self.offsets[1:], self.weights[1:]):
                if off < f:
                    s[:, : f - off].add_(w[:, off:], alpha=a)
        return out

    def scale_windows_(self, y: torch.Tensor) -> torch.Tensor:
        """Scale the salience channel of each window ``(B, C, F, T)`` (in place) so that its largest value
        is 1; returns ``y``. Other fronts: ``y`` unchanged."""
        if self.kind == "salience":
            s = y[:, 1]
            s.div_(torch.clamp(s.amax(dim=(1, 2), keepdim=True), min=1e-6))
        return y

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, bins_per_octave={self.bins_per_octave}"
