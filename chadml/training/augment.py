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

Each augmentation is a small ``nn.Module`` with a probability ``p`` applied per example (this module), and
also a plain function of explicit parameters (``pitch_shift``, ``time_stretch``, ``splice_out``,
``mix_at_snr``, ``add_at_snr``: :mod:`chadml.training.augment_ops`, re-exported here) for tests and for
other pipelines. :class:`Augment` chains the five in the paper's
order. Randomness comes from an optional ``torch.Generator`` (or an int seed); without one, from
torch's global RNG, so ``torch.manual_seed`` reproduces a run.

Example
-------
>>> import torch
>>> from chadml.training.augment import Augment
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

from .augment_ops import (Compression, DbCompression, IdentityCompression, Log1pCompression, add_at_snr,
                          add_noise_waveform, as_generator, check_batch, check_probability, check_range,
                          colored_noise, get_compression, mix_at_snr, mix_waveforms, pitch_shift, rand01,
                          splice_out, spliceout_mask, time_stretch, uniform_draw)

__all__ = [
    "Compression", "Log1pCompression", "DbCompression", "IdentityCompression", "get_compression",
    "pitch_shift", "time_stretch", "splice_out", "spliceout_mask", "mix_at_snr", "add_at_snr",
    "colored_noise", "PitchShift", "TimeStretch", "SpliceOut", "Mix", "BackgroundNoise", "Timbre", "Augment",
    "mix_waveforms", "add_noise_waveform", "CQT_FRAME_RATE",
]

CQT_FRAME_RATE = 16000 / 512  # the paper's CQT: 16 kHz, hop 512
PAPER_SPLICEOUT_WIDTH_S = 500 / 16000  # "500 frames" read as 500 samples at 16 kHz


# ------------------------------------------------------------------------------------------------
# The augmentations as modules: random parameters, applied per example with probability p
# ------------------------------------------------------------------------------------------------

class _Transform(nn.Module):
    """Base: draws which examples to touch (each with probability ``p``) and applies ``_transform`` to them."""

    def __init__(self, p: float, compression: str | Compression | None = None) -> None:
        super().__init__()
        self.p = check_probability(p)
        self.compression = get_compression(compression)
        self.last_applied: torch.Tensor | None = None  # (B,) bool of the last call, for inspection

    @property
    def fill(self) -> float:
        return float(self.compression.floor)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                generator: torch.Generator | int | None = None) -> torch.Tensor:
        x = check_batch(x)
        g = as_generator(generator)
        b = x.shape[0]
        sel = rand01(b, g) < self.p
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
        self.semitones = check_range(semitones, "semitones")
        if not bins_per_semitone > 0:
            raise ValueError(f"bins_per_semitone must be > 0, got {bins_per_semitone}")
        self.bins_per_semitone = float(bins_per_semitone)

    def _transform(self, x, idx, labels, g):
        s = uniform_draw(self.semitones, len(idx), g)
        return pitch_shift(x[idx], s.to(x.device), bins_per_semitone=self.bins_per_semitone, fill=self.fill)


class TimeStretch(_Transform):
    """Time stretch by a uniform ``rate`` draw (paper: 0.8..1.25, p 0.8); see :func:`time_stretch`."""

    def __init__(self, rates: Sequence[float] = (0.8, 1.25), *, anchor: str = "center", p: float = 0.8,
                 compression: str | Compression | None = None) -> None:
        super().__init__(p, compression)
        self.rates = check_range(rates, "rates", positive=True)
        if anchor not in ("start", "center"):
            raise ValueError(f"anchor must be 'start' or 'center', got {anchor!r}")
        self.anchor = anchor

    def _transform(self, x, idx, labels, g):
        r = uniform_draw(self.rates, len(idx), g)
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
        self.snr_db = check_range(snr_db, "snr_db")
        self.last_partner: torch.Tensor | None = None

    def _transform(self, x, idx, labels, g):
        b = x.shape[0]
        if b < 2:
            self.last_partner = idx.cpu()
            return x[idx]
        score = rand01(len(idx), g, b)
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
        snr = uniform_draw(self.snr_db, len(idx), g)
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
        self.snr_db = check_range(snr_db, "snr_db")
        self.tilt = check_range(tilt_db_per_octave, "tilt_db_per_octave")
        self.bins_per_octave = float(bins_per_octave)
        if noise is not None:
            noise = torch.as_tensor(noise, dtype=torch.float32)
            if noise.ndim != 3 or noise.shape[0] == 0 or noise.shape[2] == 0:
                raise ValueError(f"noise must be a non-empty (N, F, T) tensor of feature windows, "
                                 f"got {tuple(noise.shape)}")
        self.register_buffer("noise", noise, persistent=False)

    def _noise_mag(self, n: int, f: int, t: int, g) -> torch.Tensor:
        if self.noise is None:
            tilt = uniform_draw(self.tilt, n, g)
            return colored_noise(n, f, t, tilt_db_per_octave=tilt, bins_per_octave=self.bins_per_octave,
                                 generator=g)
        bank = self.noise
        if bank.shape[1] != f:
            raise ValueError(f"noise bank has {bank.shape[1]} bins, the batch {f}")
        which = (rand01(n, g) * bank.shape[0]).long().clamp(max=bank.shape[0] - 1)
        offset = (rand01(n, g) * bank.shape[2]).long().clamp(max=bank.shape[2] - 1)
        cols = (offset[:, None] + torch.arange(t)[None, :]) % bank.shape[2]
        crops = bank.cpu()[which][torch.arange(n)[:, None], :, cols].transpose(1, 2)
        return self.compression.inverse(crops)

    def _transform(self, x, idx, labels, g):
        noise = self._noise_mag(len(idx), x.shape[1], x.shape[2], g)
        snr = uniform_draw(self.snr_db, len(idx), g)
        return add_at_snr(x[idx], noise.to(x.device), snr.to(x.device), self.compression)


class Timbre(_Transform):
    """Another voice's timbre: a random smooth spectral envelope and a smear across frequency (not in the
    paper; the release model uses it, p 0.8).

    On the dB-normalised CQT features of :mod:`chadml.features` (``(dB - loudest + top_db) / top_db``), a
    gain curve ``g(f)`` in dB is the curve ``g / top_db`` added to every sounding bin; the window is then
    normalised again so that its loudest bin is 1, and bins pushed under the floor fall silent. The curve is
    a sum of three random cosines over the frequency axis with peak ``max_db`` (formants, tilt, a brighter
    or duller voice). ``formant_db`` > 0 adds a formant: a Gaussian bump of up to ``formant_db`` dB (width
    2-6 bins) centred between 260 Hz and 1.5 kHz (bins 36-66 of chad's CQT), which after the
    renormalisation leaves the fundamental up to that much weaker than the partials near the formant, as
    in a choir's "aah". The smear mixes each bin with its neighbours by ``smear`` (a choir, chorus,
    vibrato). Harmonics change level and width; the fundamental and the melody do not move.
    """

    def __init__(self, max_db: float = 15.0, smear: Sequence[float] = (0.0, 0.3), *, top_db: float = 80.0,
                 p: float = 0.8, formant_db: float = 0.0) -> None:
        super().__init__(p, "identity")
        if not (max_db >= 0 and top_db > 0 and formant_db >= 0):
            raise ValueError(f"max_db and formant_db must be >= 0 and top_db > 0, got {max_db}, {formant_db}, {top_db}")
        self.max_db, self.top_db, self.formant_db = float(max_db), float(top_db), float(formant_db)
        self.smear = check_range(smear, "smear")
        if not 0 <= self.smear[0] <= self.smear[1] <= 0.5:
            raise ValueError(f"smear must lie in [0, 0.5], got {smear}")

    def _transform(self, x, idx, labels, g):
        xs = x[idx]
        n, f, _ = xs.shape
        k = torch.arange(f, dtype=torch.float32)[None, :] / max(f - 1, 1)
        freq = uniform_draw((0.5, 3.0), 3 * n, g).view(n, 3, 1)
        phase = uniform_draw((0.0, 2 * math.pi), 3 * n, g).view(n, 3, 1)
        amp = uniform_draw((-1.0, 1.0), 3 * n, g).view(n, 3, 1)
        curve = (amp * torch.cos(2 * math.pi * freq * k[:, None, :] + phase)).sum(1) / 3.0 * self.max_db  # (n, f) dB
        if self.formant_db > 0:       # drawn only when on: the random stream of formant_db=0 is unchanged
            bins = torch.arange(f, dtype=torch.float32)[None, :]
            centre = uniform_draw((36.0, 66.0), n, g).view(n, 1) * (f / 84.0)
            width = uniform_draw((2.0, 6.0), n, g).view(n, 1)
            height = uniform_draw((0.0, self.formant_db), n, g).view(n, 1)
            curve = curve + height * torch.exp(-0.5 * ((bins - centre) / width) ** 2)
        gain = (curve / self.top_db).to(xs.device)[:, :, None]
        a = uniform_draw(self.smear, n, g).to(xs.device)[:, None, None]
        padded = torch.nn.functional.pad(xs, (0, 0, 1, 1))
        sm = (1 - 2 * a) * xs + a * (padded[:, :-2] + padded[:, 2:])
        sounding = sm > 0
        y = torch.where(sounding, sm + gain, torch.zeros_like(sm))
        top = y.amax(dim=(1, 2), keepdim=True)
        y = torch.where(sounding, y + (1.0 - top), y)
        return y.clamp(0.0, 1.0)


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
    p_timbre, timbre_db, formant_db : float
        :class:`Timbre` (another voice's spectral envelope; not in the paper): its probability (default 0:
        off, and then no random draws, so the paper's stream is unchanged), the envelope's peak in dB and
        the largest formant bump in dB (0: none).
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
                 generator: torch.Generator | int | None = None, p_timbre: float = 0.0,
                 timbre_db: float = 15.0, formant_db: float = 0.0) -> None:
        super().__init__()
        comp = get_compression(compression)
        self.compression = comp
        self.generator = as_generator(generator)
        self.transforms = nn.ModuleList([
            PitchShift(semitones, bins_per_semitone=bins_per_semitone, p=p_pitch, compression=comp),
            TimeStretch(stretch, p=p_stretch, compression=comp),
            SpliceOut(n_intervals, interval_s, frame_rate=frame_rate, mode=spliceout_mode, p=p_spliceout,
                      compression=comp),
            Mix(mix_snr_db, p=p_mix, compression=comp),
            BackgroundNoise(noise_snr_db, noise=noise, bins_per_octave=12.0 * bins_per_semitone, p=p_noise,
                            compression=comp),
        ])
        if p_timbre > 0:      # first, on the clean window; absent (no random draws) when off: the paper's stream
            self.transforms.insert(0, Timbre(timbre_db, p=p_timbre, formant_db=formant_db))

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
        x = check_batch(x)
        for t in self.transforms:
            x = t(x, labels, self.generator)
        return x
