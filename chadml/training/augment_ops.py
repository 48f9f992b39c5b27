"""The operations behind the training augmentations (:mod:`chadml.training.augment`), on batches of
feature windows ``(B, F, Wf)`` in torch: the features' compression (:class:`Compression`), each
augmentation as a plain function of explicit parameters (:func:`pitch_shift`, :func:`time_stretch`,
:func:`splice_out`, :func:`mix_at_snr`, :func:`add_at_snr`, :func:`colored_noise`), the checks and
random draws the augmentation modules share, and waveform-level helpers (numpy) for augmenting audio
before features.

Example
-------
>>> import torch
>>> x = torch.zeros(1, 84, 4); x[0, 40] = 1.0
>>> int(pitch_shift(x, 3.0)[0, :, 0].argmax())
43
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = [
    "Compression", "Log1pCompression", "DbCompression", "IdentityCompression", "get_compression",
    "pitch_shift", "time_stretch", "splice_out", "spliceout_mask", "mix_at_snr", "add_at_snr",
    "colored_noise", "mix_waveforms", "add_noise_waveform", "check_batch", "as_generator", "rand01",
    "uniform_draw", "check_range", "check_probability",
]


# ------------------------------------------------------------------------------------------------
# Feature compression: what mixing and noise need to go to linear magnitudes and back
# ------------------------------------------------------------------------------------------------

class Compression:
    """The map from linear magnitude to feature value: ``forward``, its ``inverse`` and ``floor``.

    ``floor`` is the feature value of silence (``forward(0)``): what shifts, stretches and splices
    bring in at the edges.
    """

    name = "compression"
    floor = 0.0

    def forward(self, mag: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, feat: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Log1pCompression(Compression):
    """``feature = log1p(scale * |X|)``; inverse ``expm1(max(feature, 0)) / scale``; silence is 0."""

    name = "log1p"

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.floor = 0.0

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        return torch.log1p(self.scale * mag)

    def inverse(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.expm1(feat.clamp(min=0)) / self.scale

    def __repr__(self) -> str:
        return f"Log1pCompression(scale={self.scale})"


class DbCompression(Compression):
    """``feature = 20 log10(max(|X|, amin))`` (dB; a per-clip reference only shifts it); silence is
    ``20 log10(amin)``."""

    name = "db"

    def __init__(self, amin: float = 1e-5) -> None:
        if not amin > 0:
            raise ValueError(f"amin must be > 0, got {amin}")
        self.amin = float(amin)
        self.floor = 20.0 * math.log10(self.amin)

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        return 20.0 * torch.log10(mag.clamp(min=self.amin))

    def inverse(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.pow(10.0, feat / 20.0)

    def __repr__(self) -> str:
        return f"DbCompression(amin={self.amin})"


class IdentityCompression(Compression):
    """Features that are already linear (CREPE activations in [0, 1]); silence is 0."""

    name = "identity"

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        return mag

    def inverse(self, feat: torch.Tensor) -> torch.Tensor:
        return feat.clamp(min=0)


def get_compression(compression: str | Compression | None) -> Compression:
    """A :class:`Compression` from a name (``"log1p"``, ``"db"``, ``"identity"``), an instance or ``None``
    (the default, ``"log1p"``)."""
    if compression is None:
        return Log1pCompression()
    if isinstance(compression, str):
        table = {"log1p": Log1pCompression, "db": DbCompression, "identity": IdentityCompression}
        if compression not in table:
            raise ValueError(f"compression must be one of {sorted(table)} or a Compression, got {compression!r}")
        return table[compression]()
    if all(hasattr(compression, a) for a in ("forward", "inverse", "floor")):
        return compression
    raise TypeError(f"compression must be a name or have forward/inverse/floor, got {type(compression).__name__}")


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------

def check_batch(x: Any, name: str = "x") -> torch.Tensor:
    """``x`` if it is a floating-point tensor ``(B, F, Wf)``; a TypeError/ValueError naming ``name`` otherwise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (B, F, Wf), got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (B, F, Wf), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def _per_example(v: Any, b: int, x: torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=torch.float32, device=x.device)
    if t.ndim == 0:
        t = t.expand(b)
    if t.shape != (b,):
        raise ValueError(f"{name} must be a scalar or have shape ({b},), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite")
    return t


def as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    """A ``torch.Generator`` from a generator (itself), an int (a new generator seeded with it) or None (None)."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        g = torch.Generator()
        g.manual_seed(int(generator))
        return g
    raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")


def rand01(n: int, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) on the CPU (the generator's device), so that a seed gives the same draws anywhere."""
    return torch.rand((n, *shape), generator=generator)


def uniform_draw(lo_hi: tuple[float, float], n: int, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` uniform draws in ``[low, high)`` (on the CPU, see :func:`rand01`)."""
    lo, hi = lo_hi
    return lo + (hi - lo) * rand01(n, generator)


def check_range(v: Any, name: str, *, positive: bool = False) -> tuple[float, float]:
    """``v`` as a finite ``(low, high)`` pair with ``low <= high`` (and ``low > 0`` if ``positive``)."""
    try:
        lo, hi = (float(a) for a in v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (low, high) pair of numbers, got {v!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (positive and lo <= 0):
        raise ValueError(f"{name} must be finite with low <= high{' and low > 0' if positive else ''}, got {v!r}")
    return lo, hi


def check_probability(p: Any, name: str = "p") -> float:
    """``p`` as a float in ``[0, 1]``; a ValueError naming ``name`` otherwise."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def _interp_along(x: torch.Tensor, pos: torch.Tensor, dim: int, fill: float) -> torch.Tensor:
    """Linear interpolation of ``x`` (B, F, T) at per-example positions ``pos`` (B, L) along ``dim``
    (1 or 2); positions outside ``[0, n-1]`` blend into ``fill`` within one step and are ``fill`` beyond."""
    n = x.shape[dim]
    pad = [1, 1, 0, 0] if dim == 2 else [0, 0, 1, 1]
    xp = torch.nn.functional.pad(x, pad, value=float(fill))
    p = (pos + 1.0).clamp(0.0, float(n + 1))
    i0 = p.floor().long().clamp(max=n)
    frac = (p - i0.to(p.dtype)).to(x.dtype)
    i1 = (i0 + 1).clamp(max=n + 1)
    if dim == 1:
        shape = (x.shape[0], pos.shape[1], x.shape[2])
        g0 = xp.gather(1, i0[:, :, None].expand(shape))
        g1 = xp.gather(1, i1[:, :, None].expand(shape))
        f = frac[:, :, None]
    else:
        shape = (x.shape[0], x.shape[1], pos.shape[1])
        g0 = xp.gather(2, i0[:, None, :].expand(shape))
        g1 = xp.gather(2, i1[:, None, :].expand(shape))
        f = frac[:, None, :]
    return g0 * (1 - f) + g1 * f  # (exact at f = 0 and f = 1)


# ------------------------------------------------------------------------------------------------
# The augmentations as plain functions of explicit parameters
# ------------------------------------------------------------------------------------------------

def pitch_shift(x: torch.Tensor, semitones: float | torch.Tensor, *, bins_per_semitone: float = 1.0,
                fill: float = 0.0) -> torch.Tensor:
    """Shift feature windows ``(B, F, Wf)`` up by ``semitones`` (scalar or ``(B,)``) along the frequency axis.

    ``out[b, f] = x[b, f - k_b]`` with ``k_b = semitones_b * bins_per_semitone`` bins, linearly
    interpolated for fractional ``k``; bins shifted in from outside are ``fill`` (the silence value).

    Example
    -------
    >>> x = torch.zeros(1, 84, 4); x[0, 40] = 1.0
    >>> int(pitch_shift(x, 3.0)[0, :, 0].argmax())
    43
    """
    x = check_batch(x)
    k = _per_example(semitones, x.shape[0], x, "semitones") * float(bins_per_semitone)
    f = torch.arange(x.shape[1], device=x.device, dtype=torch.float32)
    return _interp_along(x, f[None, :] - k[:, None], 1, fill)


def time_stretch(x: torch.Tensor, rate: float | torch.Tensor, *, anchor: str = "center",
                 fill: float = 0.0) -> torch.Tensor:
    """Time-stretch feature windows ``(B, F, Wf)`` by ``rate`` (scalar or ``(B,)``), keeping ``Wf`` frames.

    ``rate > 1`` plays faster (as ``librosa.effects.time_stretch``): ``out[t] = x[a + (t - a) * rate]``
    with the anchor ``a`` at frame 0 (``anchor="start"``) or at the window's centre (``"center"``);
    frames read from outside the window are ``fill``.

    Example
    -------
    >>> x = torch.arange(8.0).reshape(1, 1, 8)
    >>> time_stretch(x, 2.0, anchor="start")[0, 0].tolist()
    [0.0, 2.0, 4.0, 6.0, 0.0, 0.0, 0.0, 0.0]
    """
    x = check_batch(x)
    r = _per_example(rate, x.shape[0], x, "rate")
    if (r <= 0).any():
        raise ValueError("rate must be > 0")
    if anchor not in ("start", "center"):
        raise ValueError(f"anchor must be 'start' or 'center', got {anchor!r}")
    t = torch.arange(x.shape[2], device=x.device, dtype=torch.float32)
    a = 0.0 if anchor == "start" else (x.shape[2] - 1) / 2.0
    return _interp_along(x, a + (t[None, :] - a) * r[:, None], 2, fill)


def spliceout_mask(batch: int, n_frames: int, n_intervals: int, width: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Random ``(batch, n_frames)`` bool mask of kept frames: ``n_intervals`` disjoint intervals of
    ``width`` frames removed per row (exactly ``n_intervals * width`` frames, which must be < ``n_frames``).

    Each interval is placed as if cut one after another from the shrinking window (torch-audiomentations'
    SpliceOut), so removed intervals may touch but never overlap.
    """
    removed = n_intervals * width
    if n_intervals < 0 or width < 1 or removed >= n_frames:
        raise ValueError(f"n_intervals * width must be < n_frames, got {n_intervals} * {width} >= {n_frames}")
    keep = torch.ones(batch, n_frames, dtype=torch.bool)
    if n_intervals == 0 or batch == 0:
        return keep
    kept = n_frames - removed
    # insertion points in the kept sequence, sorted; block j starts at s_j + j * width in the window
    s = torch.sort((rand01(batch, generator, n_intervals) * (kept + 1)).floor().long().clamp(max=kept), dim=1)[0]
    starts = s + torch.arange(n_intervals)[None, :] * width
    idx = (starts[:, :, None] + torch.arange(width)[None, None, :]).reshape(batch, -1)
    keep.scatter_(1, idx, False)
    return keep


def splice_out(x: torch.Tensor, keep: torch.Tensor, *, mode: str = "splice", fill: float = 0.0) -> torch.Tensor:
    """Remove the frames where ``keep`` (B, Wf) is False: ``"splice"`` joins the kept frames and pads
    the end with ``fill``; ``"mask"`` sets the removed frames to ``fill`` in place.

    Example
    -------
    >>> x = torch.arange(6.0).reshape(1, 1, 6)
    >>> keep = torch.tensor([[True, False, True, True, False, True]])
    >>> splice_out(x, keep)[0, 0].tolist(), splice_out(x, keep, mode="mask")[0, 0].tolist()
    ([0.0, 2.0, 3.0, 5.0, 0.0, 0.0], [0.0, 0.0, 2.0, 3.0, 0.0, 5.0])
    """
    x = check_batch(x)
    if not isinstance(keep, torch.Tensor) or keep.dtype != torch.bool or keep.shape != (x.shape[0], x.shape[2]):
        raise ValueError(f"keep must be a bool tensor of shape {(x.shape[0], x.shape[2])}")
    keep = keep.to(x.device)
    if mode == "mask":
        return torch.where(keep[:, None, :], x, torch.full_like(x, float(fill)))
    if mode != "splice":
        raise ValueError(f"mode must be 'splice' or 'mask', got {mode!r}")
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True)[1]  # kept frames first, in order
    out = x.gather(2, order[:, None, :].expand_as(x))
    n_kept = keep.sum(1)
    tail = torch.arange(x.shape[2], device=x.device)[None, :] >= n_kept[:, None]
    return torch.where(tail[:, None, :], torch.full_like(out, float(fill)), out)


def _power(mag: torch.Tensor) -> torch.Tensor:
    return mag.pow(2).sum(dim=(1, 2))


def add_at_snr(x: torch.Tensor, other_mag: torch.Tensor, snr_db: float | torch.Tensor,
               compression: str | Compression | None = None) -> torch.Tensor:
    """Add a linear-magnitude signal ``other_mag`` (B, F, Wf) to features ``x`` at ``snr_db`` per example.

    ``out = forward(sqrt(|X|^2 + g^2 |N|^2))`` with ``|X| = inverse(x)`` and ``g`` chosen so that
    ``sum |X|^2 / sum g^2 |N|^2 = 10^(snr/10)`` over each window. Rows where either side is silent
    are returned unchanged.
    """
    x = check_batch(x)
    comp = get_compression(compression)
    if other_mag.shape != x.shape:
        raise ValueError(f"other_mag must have shape {tuple(x.shape)}, got {tuple(other_mag.shape)}")
    snr = _per_example(snr_db, x.shape[0], x, "snr_db")
    mag = comp.inverse(x)
    other_mag = other_mag.to(device=x.device, dtype=x.dtype)
    ps, pn = _power(mag), _power(other_mag)
    ok = (ps > 0) & (pn > 0)
    g2 = torch.where(ok, ps / pn.clamp(min=torch.finfo(x.dtype).tiny) * torch.pow(10.0, -snr / 10.0),
                     torch.zeros_like(ps))
    out = comp.forward(torch.sqrt(mag.pow(2) + g2[:, None, None] * other_mag.pow(2)))
    return torch.where(ok[:, None, None], out, x)


def mix_at_snr(x: torch.Tensor, other: torch.Tensor, snr_db: float | torch.Tensor,
               compression: str | Compression | None = None) -> torch.Tensor:
    """Mix feature windows ``other`` (same compression) into ``x`` at ``snr_db`` (see :func:`add_at_snr`)."""
    comp = get_compression(compression)
    return add_at_snr(x, comp.inverse(check_batch(other, "other")), snr_db, comp)


def colored_noise(batch: int, n_bins: int, n_frames: int, *, tilt_db_per_octave: float | torch.Tensor = 0.0,
                  bins_per_octave: float = 12.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Linear magnitudes ``(batch, n_bins, n_frames)`` of stationary noise on a log-frequency axis.

    Each cell is the magnitude of a unit complex Gaussian (Rayleigh), scaled by a spectral tilt of
    ``tilt_db_per_octave`` (scalar or ``(batch,)``; 0 = flat per bin, -3 = pink-like, -6 = brown-like).
    """
    re = torch.randn((batch, n_bins, n_frames), generator=generator)
    im = torch.randn((batch, n_bins, n_frames), generator=generator)
    mag = torch.sqrt(0.5 * (re * re + im * im))
    tilt = torch.as_tensor(tilt_db_per_octave, dtype=torch.float32).expand(batch)
    octaves = torch.arange(n_bins, dtype=torch.float32) / float(bins_per_octave)
    return mag * torch.pow(10.0, tilt[:, None] * octaves[None, :] / 20.0)[:, :, None]


# ------------------------------------------------------------------------------------------------
# Waveform-level helpers (numpy), for augmenting audio before features
# ------------------------------------------------------------------------------------------------

def _as_wave(a: Any, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "fiu" or a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D real waveform, got dtype {a.dtype} shape {a.shape}")
    return a.astype(np.float64)


def mix_waveforms(signal: np.ndarray, other: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + g * other`` with ``g`` setting the power ratio to ``snr_db``; ``other`` is tiled or cut
    to ``signal``'s length. Returns float32; a silent side leaves ``signal`` unchanged.

    Example
    -------
    >>> s = np.sin(np.arange(16000) * 0.1); n = np.random.default_rng(0).standard_normal(16000)
    >>> out = mix_waveforms(s, n, 10.0)
    >>> round(float(10 * np.log10(np.sum(s ** 2) / np.sum((out - s) ** 2))), 1)
    10.0
    """
    s, o = _as_wave(signal, "signal"), _as_wave(other, "other")
    if len(o) == 0:
        raise ValueError("other must not be empty")
    if len(o) < len(s):
        o = np.tile(o, -(-len(s) // len(o)))
    o = o[: len(s)]
    ps, po = float(np.sum(s * s)), float(np.sum(o * o))
    if ps == 0 or po == 0:
        return s.astype(np.float32)
    g = math.sqrt(ps / (po * 10.0 ** (float(snr_db) / 10.0)))
    return (s + g * o).astype(np.float32)


def add_noise_waveform(signal: np.ndarray, snr_db: float, *, exponent: float = 1.0,
                       rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Add Gaussian noise with a ``1/f^exponent`` power spectrum (0 white, 1 pink, 2 brown) at ``snr_db``."""
    s = _as_wave(signal, "signal")
    rng = np.random.default_rng(rng)
    spec = np.fft.rfft(rng.standard_normal(len(s)))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = f[1] if len(f) > 1 else 1.0
    noise = np.fft.irfft(spec / f ** (float(exponent) / 2.0), n=len(s))
    return mix_waveforms(s, noise, snr_db)
