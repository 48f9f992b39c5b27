"""The features the encoder sees: :class:`FeatureConfig` (which kind, with its parameters) and
:func:`extract_features` / :func:`extract_features_batch` (audio -> normalised feature matrices).

Two kinds (the paper's section 5.1), both on 16 kHz mono audio: ``"cqt"`` (:mod:`chadml.features.cqt`,
log-normalised per clip with :func:`chadml.features.cqt.log_normalize`) and ``"crepe"`` (CREPE's pitch
activations, trimmed and pooled: :func:`chadml.features.crepe.crepe_features`).

Example
-------
>>> import numpy as np
>>> y = np.zeros(16000, np.float32)
>>> extract_features(y, FeatureConfig()).shape
(84, 32)
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import numpy as np
import torch

from ..config import CREPE_BINS, CREPE_HOP, CREPE_POOL, check_number, from_dict
from .base import check_audio, resolve_device
from .cqt import C1_HZ, CQT, cqt_geometry, log_normalize
from .crepe import crepe_features_batch

__all__ = ["FeatureConfig", "extract_features", "extract_features_batch"]

_KINDS = ("cqt", "crepe")
_CREPE_MODELS = ("full", "tiny")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Which features the encoder sees, with their parameters (stored in checkpoints and indexes).

    Parameters
    ----------
    kind : {"cqt", "crepe"}
        The CQT (fast: thousands of times real time) or the CREPE-f0 activations (the paper's best
        features; CREPE full runs at about 0.3-0.5x real time on 2 CPU cores, tiny at about 10x).
    sr : int
        Sample rate of the audio the features are computed from (16000; CREPE requires 16000).
    hop_length, n_bins, bins_per_octave, fmin :
        CQT parameters (unused for ``kind="crepe"``): hop 512 samples, 84 bins, 12 per octave, from
        C1 = 32.70 Hz. The top bin's filter must stay under Nyquist, and ``hop_length`` must be
        divisible by ``2 ** (n_octaves - 1)`` (the recursive downsampling halves it per octave).
    crepe_model : {"full", "tiny"}
        The CREPE network (unused for ``kind="cqt"``).

    Example
    -------
    >>> cfg = FeatureConfig(kind="crepe", crepe_model="tiny")
    >>> cfg.frame_rate, cfg.n_features
    (25.0, 80)
    >>> FeatureConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    kind: str = "cqt"
    sr: int = 16000
    hop_length: int = 512
    n_bins: int = 84
    bins_per_octave: int = 12
    fmin: float = C1_HZ
    crepe_model: str = "full"

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"FeatureConfig.kind must be one of {_KINDS}, got {self.kind!r}")
        if self.crepe_model not in _CREPE_MODELS:
            raise ValueError(f"FeatureConfig.crepe_model must be one of {_CREPE_MODELS}, got {self.crepe_model!r}")
        for name in ("sr", "hop_length", "n_bins", "bins_per_octave"):
            check_number(f"FeatureConfig.{name}", getattr(self, name), integer=True)
        check_number("FeatureConfig.fmin", self.fmin)
        if self.kind == "crepe" and self.sr != 16000:
            raise ValueError(f"FeatureConfig.sr must be 16000 for kind='crepe' (CREPE's rate), got {self.sr}")
        if self.kind == "cqt":
            cqt_geometry(self.sr, self.hop_length, float(self.fmin), self.n_bins, self.bins_per_octave)

    @property
    def frame_rate(self) -> float:
        """Frames per second of the final feature (CQT: sr / hop = 31.25; CREPE: 100 / 4 = 25)."""
        if self.kind == "cqt":
            return self.sr / self.hop_length
        return self.sr / (CREPE_HOP * CREPE_POOL)

    @property
    def n_features(self) -> int:
        """Rows of the feature matrix (CQT: n_bins = 84; CREPE: 80)."""
        return self.n_bins if self.kind == "cqt" else CREPE_BINS

    @property
    def min_samples(self) -> int:
        """The shortest input accepted: one output frame period (CQT: hop; CREPE: 4 x 160 samples)."""
        return self.hop_length if self.kind == "cqt" else CREPE_HOP * CREPE_POOL

    def n_frames(self, n_samples: int) -> int:
        """Frames of the feature of ``n_samples`` samples (CQT: 1 + n // hop; CREPE: (1 + n // 160) // 4)."""
        if self.kind == "cqt":
            return 1 + n_samples // self.hop_length
        return (1 + n_samples // CREPE_HOP) // CREPE_POOL

    def to_dict(self) -> dict:
        """A JSON-friendly dict of every field (``from_dict`` reads it back to an equal config)."""
        d = dataclasses.asdict(self)
        for k in ("sr", "hop_length", "n_bins", "bins_per_octave"):
            d[k] = int(d[k])
        d["fmin"] = float(d["fmin"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        """The config of ``to_dict``; unknown keys or bad values raise ``ValueError``/``TypeError``."""
        return from_dict(cls, d, "FeatureConfig dict")


@functools.lru_cache(maxsize=16)
def _cqt_module(sr: int, hop_length: int, fmin: float, n_bins: int, bins_per_octave: int, device: str) -> CQT:
    return CQT(sr, hop_length, fmin, n_bins, bins_per_octave).to(device)


def _check_config(config: Any) -> FeatureConfig:
    if not isinstance(config, FeatureConfig):
        raise TypeError(f"config must be a FeatureConfig, got {type(config).__name__}")
    return config


def extract_features(audio: np.ndarray, config: FeatureConfig, *, device=None) -> np.ndarray:
    """The normalised feature matrix ``(config.n_features, T)`` float32 of one mono clip at ``config.sr``.

    CQT: ``T = 1 + len(audio) // hop_length``; CREPE: ``T = (1 + len(audio) // 160) // 4``.

    Example
    -------
    >>> import numpy as np
    >>> y = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    >>> extract_features(y, FeatureConfig()).shape
    (84, 32)
    """
    return extract_features_batch([audio], config, device=device)[0]


def extract_features_batch(audios: Sequence[np.ndarray], config: FeatureConfig, *, device=None,
                           max_batch_samples: int = 1 << 23) -> list[np.ndarray]:
    """:func:`extract_features` of many clips; equal to calling it clip by clip, but batched.

    CQT: clips are sorted by length and zero-padded into batches of at most ``max_batch_samples``
    samples in all (the padding does not change any clip's frames: each is trimmed to its own length
    and normalised alone). CREPE: the frames of all clips go through the network together.
    """
    config = _check_config(config)
    if isinstance(audios, np.ndarray) or not isinstance(audios, (list, tuple)):
        raise TypeError(f"audios must be a list of 1-D numpy arrays, got {type(audios).__name__}")
    clips = [check_audio(a, f"audios[{i}]", min_samples=config.min_samples) for i, a in enumerate(audios)]
    if not clips:
        return []
    dev = resolve_device(device)
    if config.kind == "crepe":
        return crepe_features_batch(clips, model=config.crepe_model, device=dev)
    cqt = _cqt_module(config.sr, config.hop_length, float(config.fmin), config.n_bins, config.bins_per_octave, str(dev))
    order = np.argsort([-len(c) for c in clips], kind="stable")
    out: list[np.ndarray | None] = [None] * len(clips)
    i = 0
    with torch.inference_mode():
        while i < len(order):
            longest = len(clips[order[i]])
            n = max(1, min(len(order) - i, max_batch_samples // longest))
            idx = order[i:i + n]
            batch = np.zeros((len(idx), longest), dtype=np.float32)
            for r, j in enumerate(idx):
                batch[r, : len(clips[j])] = clips[j]
            mags = cqt(torch.from_numpy(batch).to(dev))
            for r, j in enumerate(idx):
                t = config.n_frames(len(clips[j]))
                out[j] = log_normalize(mags[r, :, :t]).cpu().numpy().astype(np.float32, copy=False)
            i += n
    return out  # type: ignore[return-value]

