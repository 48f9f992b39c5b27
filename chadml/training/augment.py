"""The paper's five training augmentations, on batches of feature windows, in torch.

Section 5.1 of the paper applies to every training batch: continuous pitch shift of -4..+4 semitones
(p 0.5), time stretch by a rate of 0.8..1.25 (p 0.8), SpliceOut with 10 intervals of 500 frames
(p 0.8), mixing with another sample of the batch at an SNR of 5..10 dB (p 0.8) and background noise
at an SNR of 3..30 dB (p 0.8). The paper applied them to waveforms; here they act on the feature
windows ``(B, F, Wf)`` the encoder sees, so that they cost a few tensor ops per batch on any device:

- **pitch shift** moves the window along its log-frequency axis by ``semitones * bins_per_semitone``
  bins (CQT: 1 bin per semitone; CREPE features: 80 bins over 3 octaves = 80/36 bins per semitone),
  with linear interpolation for fractional shifts and the silence value shifted in at the edge;
- **time stretch** resamples the time axis by linear interpolation (rate > 1: faster, as in
  ``librosa.effects.time_stretch``) about the window's centre, padding with silence where the stretched
  window is shorter than the window and cropping where it is longer;
- **SpliceOut** (Jain et al. 2021) removes ``n_intervals`` time intervals and splices the rest together,
  padding the end with silence (``mode="splice"``, as torch-audiomentations' SpliceOut does on
  waveforms), or fills them with silence in place (``mode="mask"``). "500 frames" is read as 500
  audio samples at 16 kHz (31.25 ms): one CQT frame at hop 512, so the ten intervals remove
  10 frames, ~10 % of a 3 s window (94 frames) and 4 % of an 8 s one;
- **mixing** and **background noise** add power in the linear-magnitude domain, at the drawn SNR over
  the whole window, and compress again: ``|A + g B|^2 ~= |A|^2 + g^2 |B|^2`` for uncorrelated sources.
  The noise is stationary complex-Gaussian (Rayleigh magnitudes) with a random spectral tilt, or is
  cut from a bank of noise feature windows you pass in.

The last two need to undo the features' compression. The default is ``features = log1p(|CQT|)`` (see
:class:`Log1pCompression`: silence is 0); ``"db"`` (``20 log10 max(|X|, amin)``) and ``"identity"``
(CREPE activations, already linear) are built in, and any object with ``forward``, ``inverse`` and
``floor`` works.

Each augmentation is a small ``nn.Module`` with a probability ``p`` applied per example, and also a
plain function of explicit parameters (``pitch_shift``, ``time_stretch``, ``splice_out``, ``mix_at_snr``,
``add_at_snr``) for tests and for other pipelines. :class:`Augment` chains the five in the paper's
order. Randomness comes from an optional ``torch.Generator`` (or an int seed); without one, from
torch's global RNG, so ``torch.manual_seed`` reproduces a run.

Example
-------
>>> import torch
>>> from chadml.augment import Augment
>>> aug = Augment(generator=0)
>>> x = torch.rand(8, 84, 94)          # a batch of log1p-CQT windows
>>> aug(x).shape
torch.Size([8, 84, 94])
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "Compression", "Log1pCompression", "DbCompression", "IdentityCompression", "get_compression",
    "pitch_shift", "time_stretch", "splice_out", "spliceout_mask", "mix_at_snr", "add_at_snr",
    "colored_noise", "PitchShift", "TimeStretch", "SpliceOut", "Mix", "BackgroundNoise", "Augment",
    "mix_waveforms", "add_noise_waveform", "CQT_FRAME_RATE",
]

CQT_FRAME_RATE = 16000 / 512  # the paper's CQT: 16 kHz, hop 512
PAPER_SPLICEOUT_WIDTH_S = 500 / 16000  # "500 frames" read as 500 samples at 16 kHz


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

def _check_batch(x: Any, name: str = "x") -> torch.Tensor:
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


def _as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        g = torch.Generator()
        g.manual_seed(int(generator))
        return g
    raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")


def _rand(n: int, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) on the CPU (the generator's device), so that a seed gives the same draws anywhere."""
    return torch.rand((n, *shape), generator=generator)


def _uniform(lo_hi: tuple[float, float], n: int, generator: torch.Generator | None) -> torch.Tensor:
    lo, hi = lo_hi
    return lo + (hi - lo) * _rand(n, generator)


def _check_range(v: Any, name: str, *, positive: bool = False) -> tuple[float, float]:
    try:
        lo, hi = (float(a) for a in v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (low, high) pair of numbers, got {v!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (positive and lo <= 0):
        raise ValueError(f"{name} must be finite with low <= high{' and low > 0' if positive else ''}, got {v!r}")
    return lo, hi


def _check_p(p: Any, name: str = "p") -> float:
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
    x = _check_batch(x)
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
    x = _check_batch(x)
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
    s = torch.sort((_rand(batch, generator, n_intervals) * (kept + 1)).floor().long().clamp(max=kept), dim=1)[0]
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
    x = _check_batch(x)
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
    x = _check_batch(x)
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
    return add_at_snr(x, comp.inverse(_check_batch(other, "other")), snr_db, comp)


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
# The augmentations as modules: random parameters, applied per example with probability p
# ------------------------------------------------------------------------------------------------

class _Transform(nn.Module):
    """Base: draws which examples to touch (each with probability ``p``) and applies ``_transform`` to them."""

    def __init__(self, p: float, compression: str | Compression | None = None) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.compression = get_compression(compression)
        self.last_applied: torch.Tensor | None = None  # (B,) bool of the last call, for inspection

    @property
    def fill(self) -> float:
        return float(self.compression.floor)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                generator: torch.Generator | int | None = None) -> torch.Tensor:
        x = _check_batch(x)
        g = _as_generator(generator)
        b = x.shape[0]
        sel = _rand(b, g) < self.p
        self.last_applied = sel
        if b == 0 or not sel.any():
            return x
        idx = sel.nonzero()[:, 0].to(x.device)
        out = x.clone()
        out[idx] = self._transform(x, idx, labels, g)
        return out

    def _transform(self, x: torch.Tensor, idx: torch.Tensor, labels, g) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class PitchShift(_Transform):
    """Continuous pitch shift by a uniform ``semitones`` draw (paper: -4..4, p 0.5); see :func:`pitch_shift`."""

    def __init__(self, semitones: Sequence[float] = (-4.0, 4.0), *, bins_per_semitone: float = 1.0,
                 p: float = 0.5, compression: str | Compression | None = None) -> None:
        super().__init__(p, compression)
        self.semitones = _check_range(semitones, "semitones")
        if not bins_per_semitone > 0:
            raise ValueError(f"bins_per_semitone must be > 0, got {bins_per_semitone}")
        self.bins_per_semitone = float(bins_per_semitone)

    def _transform(self, x, idx, labels, g):
        s = _uniform(self.semitones, len(idx), g)
        return pitch_shift(x[idx], s.to(x.device), bins_per_semitone=self.bins_per_semitone, fill=self.fill)


class TimeStretch(_Transform):
    """Time stretch by a uniform ``rate`` draw (paper: 0.8..1.25, p 0.8); see :func:`time_stretch`."""

    def __init__(self, rates: Sequence[float] = (0.8, 1.25), *, anchor: str = "center", p: float = 0.8,
                 compression: str | Compression | None = None) -> None:
        super().__init__(p, compression)
        self.rates = _check_range(rates, "rates", positive=True)
        if anchor not in ("start", "center"):
            raise ValueError(f"anchor must be 'start' or 'center', got {anchor!r}")
        self.anchor = anchor

    def _transform(self, x, idx, labels, g):
        r = _uniform(self.rates, len(idx), g)
        return time_stretch(x[idx], r.to(x.device), anchor=self.anchor, fill=self.fill)


class SpliceOut(_Transform):
    """SpliceOut: ``n_intervals`` intervals of ``width_s`` seconds cut from the window (paper: 10 x 500
    samples at 16 kHz, p 0.8).

    The width in frames is ``max(1, round(width_s * frame_rate))``; the total cut is capped at
    ``max_fraction`` of the window (narrower intervals first, then fewer) so that short windows survive.
    """

    def __init__(self, n_intervals: int = 10, width_s: float = PAPER_SPLICEOUT_WIDTH_S, *,
                 frame_rate: float = CQT_FRAME_RATE, mode: str = "splice", max_fraction: float = 0.5,
                 p: float = 0.8, compression: str | Compression | None = None) -> None:
        super().__init__(p, compression)
        if isinstance(n_intervals, bool) or not isinstance(n_intervals, (int, np.integer)) or n_intervals < 0:
            raise ValueError(f"n_intervals must be an int >= 0, got {n_intervals!r}")
        if not width_s > 0 or not frame_rate > 0:
            raise ValueError(f"width_s and frame_rate must be > 0, got {width_s}, {frame_rate}")
        if mode not in ("splice", "mask"):
            raise ValueError(f"mode must be 'splice' or 'mask', got {mode!r}")
        if not 0.0 < max_fraction < 1.0:
            raise ValueError(f"max_fraction must be in (0, 1), got {max_fraction}")
        self.n_intervals, self.width_s, self.frame_rate = int(n_intervals), float(width_s), float(frame_rate)
        self.mode, self.max_fraction = mode, float(max_fraction)
        self.last_keep: torch.Tensor | None = None

    def intervals(self, n_frames: int) -> tuple[int, int]:
        """``(n_intervals, width_frames)`` used for windows of ``n_frames`` frames."""
        width = max(1, int(round(self.width_s * self.frame_rate)))
        budget = min(int(self.max_fraction * n_frames), n_frames - 1)
        n = min(self.n_intervals, budget)
        if n == 0:
            return 0, width
        return n, max(1, min(width, budget // n))

    def _transform(self, x, idx, labels, g):
        n, w = self.intervals(x.shape[2])
        keep = spliceout_mask(len(idx), x.shape[2], n, w, g)
        self.last_keep = keep
        return splice_out(x[idx], keep.to(x.device), mode=self.mode, fill=self.fill)


class Mix(_Transform):
    """Mix each chosen example with another example of the batch at a uniform SNR draw (paper: 5..10 dB,
    p 0.8); see :func:`mix_at_snr`.

    The partner is drawn uniformly among the other examples, among those of another label when
    ``labels`` are given (and any exist). Partners are taken from the batch as it comes in.
    """

    def __init__(self, snr_db: Sequence[float] = (5.0, 10.0), *, p: float = 0.8,
                 compression: str | Compression | None = None) -> None:
        super().__init__(p, compression)
        self.snr_db = _check_range(snr_db, "snr_db")
        self.last_partner: torch.Tensor | None = None

    def _transform(self, x, idx, labels, g):
        b = x.shape[0]
        if b < 2:
            self.last_partner = idx.cpu()
            return x[idx]
        score = _rand(len(idx), g, b)
        rows = torch.arange(len(idx))
        idx_c = idx.cpu()
        if labels is not None:
            lab = torch.as_tensor(labels).reshape(-1).cpu()
            if lab.shape[0] != b:
                raise ValueError(f"labels must have {b} entries, got {lab.shape[0]}")
            score = score - (lab[None, :] == lab[idx_c][:, None]).float()  # other labels first
        score[rows, idx_c] = -2.0  # never itself
        partner = score.argmax(1)
        self.last_partner = partner
        snr = _uniform(self.snr_db, len(idx), g)
        return mix_at_snr(x[idx], x[partner.to(x.device)], snr.to(x.device), self.compression)


class BackgroundNoise(_Transform):
    """Add background noise at a uniform SNR draw (paper: 3..30 dB, p 0.8); see :func:`add_at_snr`.

    ``noise=None``: stationary Rayleigh noise with a spectral tilt drawn uniformly from
    ``tilt_db_per_octave`` (:func:`colored_noise`). Otherwise ``noise`` is a ``(N, F, T)`` tensor of noise
    *feature* windows (same compression as ``x``, e.g. features of recorded room/street noise) from
    which a random example and a random ``Wf``-frame crop (tiled when shorter) are taken.
    """

    def __init__(self, snr_db: Sequence[float] = (3.0, 30.0), *, noise: torch.Tensor | None = None,
                 tilt_db_per_octave: Sequence[float] = (-6.0, 0.0), bins_per_octave: float = 12.0,
                 p: float = 0.8, compression: str | Compression | None = None) -> None:
        super().__init__(p, compression)
        self.snr_db = _check_range(snr_db, "snr_db")
        self.tilt = _check_range(tilt_db_per_octave, "tilt_db_per_octave")
        self.bins_per_octave = float(bins_per_octave)
        if noise is not None:
            noise = torch.as_tensor(noise, dtype=torch.float32)
            if noise.ndim != 3 or noise.shape[0] == 0 or noise.shape[2] == 0:
                raise ValueError(f"noise must be a non-empty (N, F, T) tensor of feature windows, "
                                 f"got {tuple(noise.shape)}")
        self.register_buffer("noise", noise, persistent=False)

    def _noise_mag(self, n: int, f: int, t: int, g) -> torch.Tensor:
        if self.noise is None:
            tilt = _uniform(self.tilt, n, g)
            return colored_noise(n, f, t, tilt_db_per_octave=tilt, bins_per_octave=self.bins_per_octave,
                                 generator=g)
        bank = self.noise
        if bank.shape[1] != f:
            raise ValueError(f"noise bank has {bank.shape[1]} bins, the batch {f}")
        which = (_rand(n, g) * bank.shape[0]).long().clamp(max=bank.shape[0] - 1)
        offset = (_rand(n, g) * bank.shape[2]).long().clamp(max=bank.shape[2] - 1)
        cols = (offset[:, None] + torch.arange(t)[None, :]) % bank.shape[2]
        crops = bank.cpu()[which][torch.arange(n)[:, None], :, cols].transpose(1, 2)
        return self.compression.inverse(crops)

    def _transform(self, x, idx, labels, g):
        noise = self._noise_mag(len(idx), x.shape[1], x.shape[2], g)
        snr = _uniform(self.snr_db, len(idx), g)
        return add_at_snr(x[idx], noise.to(x.device), snr.to(x.device), self.compression)


class Augment(nn.Module):
    """The paper's five augmentations in its order: pitch shift, time stretch, SpliceOut, mixing, noise.

    Call on a batch of feature windows ``(B, F, Wf)`` (any device); returns a new tensor of the same
    shape. Each augmentation touches each example independently with its probability. The pieces are
    in ``self.transforms`` (an ``nn.ModuleList``): replace, drop or reorder them freely.

    Parameters
    ----------
    p_pitch, p_stretch, p_spliceout, p_mix, p_noise : float
        Probabilities (paper: 0.5, 0.8, 0.8, 0.8, 0.8).
    semitones, stretch, mix_snr_db, noise_snr_db : (float, float)
        Uniform ranges (paper: +-4 semitones, rate 0.8..1.25, 5..10 dB, 3..30 dB).
    bins_per_semitone : float
        Frequency bins per semitone of the features (CQT at 12 bins/octave: 1; CREPE 80 bins / 3 octaves: 80/36).
    frame_rate : float
        Feature frames per second (CQT at 16 kHz, hop 512: 31.25); sets SpliceOut's interval width.
    n_intervals, interval_s, spliceout_mode : int, float, str
        SpliceOut (paper: 10 intervals of 500 samples at 16 kHz; ``"splice"`` or ``"mask"``).
    noise : torch.Tensor, optional
        A bank of noise feature windows for :class:`BackgroundNoise` (default: synthetic coloured noise).
    compression : str or Compression
        How the features compress magnitudes (default ``"log1p"``: ``log1p(|X|)``).
    generator : torch.Generator or int, optional
        Source of randomness (an int seeds a new generator); ``None`` uses torch's global RNG.

    Example
    -------
    >>> aug = Augment(p_pitch=1.0, p_stretch=0.0, p_spliceout=0.0, p_mix=0.0, p_noise=0.0, generator=1)
    >>> aug(torch.rand(4, 84, 94)).shape
    torch.Size([4, 84, 94])
    """

    def __init__(self, p_pitch: float = 0.5, p_stretch: float = 0.8, p_spliceout: float = 0.8,
                 p_mix: float = 0.8, p_noise: float = 0.8, *, semitones: Sequence[float] = (-4.0, 4.0),
                 stretch: Sequence[float] = (0.8, 1.25), n_intervals: int = 10,
                 interval_s: float = PAPER_SPLICEOUT_WIDTH_S, spliceout_mode: str = "splice",
                 mix_snr_db: Sequence[float] = (5.0, 10.0), noise_snr_db: Sequence[float] = (3.0, 30.0),
                 bins_per_semitone: float = 1.0, frame_rate: float = CQT_FRAME_RATE,
                 noise: torch.Tensor | None = None, compression: str | Compression | None = "log1p",
                 generator: torch.Generator | int | None = None) -> None:
        super().__init__()
        comp = get_compression(compression)
        self.compression = comp
        self.generator = _as_generator(generator)
        self.transforms = nn.ModuleList([
            PitchShift(semitones, bins_per_semitone=bins_per_semitone, p=p_pitch, compression=comp),
            TimeStretch(stretch, p=p_stretch, compression=comp),
            SpliceOut(n_intervals, interval_s, frame_rate=frame_rate, mode=spliceout_mode, p=p_spliceout,
                      compression=comp),
            Mix(mix_snr_db, p=p_mix, compression=comp),
            BackgroundNoise(noise_snr_db, noise=noise, bins_per_octave=12.0 * bins_per_semitone, p=p_noise,
                            compression=comp),
        ])

    @classmethod
    def for_features(cls, feature_config: Any, **kwargs: Any) -> "Augment":
        """An :class:`Augment` matched to a ``chadml.features.FeatureConfig``: bins per semitone (CQT:
        ``bins_per_octave / 12``; CREPE: ``n_features / 36``), frame rate and compression (CQT
        ``"log1p"``, CREPE ``"identity"``); ``kwargs`` override."""
        kind = getattr(feature_config, "kind", "cqt")
        if kind == "crepe":
            kwargs.setdefault("bins_per_semitone", float(feature_config.n_features) / 36.0)
            kwargs.setdefault("compression", "identity")
        else:
            kwargs.setdefault("bins_per_semitone", float(getattr(feature_config, "bins_per_octave", 12)) / 12.0)
            kwargs.setdefault("compression", "log1p")
        kwargs.setdefault("frame_rate", float(feature_config.frame_rate))
        return cls(**kwargs)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = _check_batch(x)
        for t in self.transforms:
            x = t(x, labels, self.generator)
        return x


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
