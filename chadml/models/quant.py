"""Static int8 inference of the encoder (CPU): the convolutional trunk and the projection in int8, the fixed
timbre front and the final normalisation in float32.

Static quantisation needs the range of every activation. Those ranges are *calibrated once*, on fixed
windows, and stored with the model (a checkpoint's ``extra["int8_ranges"]``: one ``[min, max]`` tensor per
activation observer), so every machine that loads the model builds exactly the same int8 network: no
calibration at load time, no dependence on what is indexed first. :func:`calibrate` measures the ranges
(min/max observers: deterministic, order-independent); :func:`quantize` builds the int8 copy from them
(``torch.ao.quantization`` FX graph mode, x86/fbgemm kernels, per-channel weights).

The int8 fingerprints are within a cosine of about 0.999 of the float32 ones (``tests/test_quant.py``,
``bench/README.md`` for retrieval and speed). :func:`int8_supported` says whether this CPU's torch has the
kernels; where it has not, a :class:`chadml.models.Fingerprinter` runs float32.
"""
from __future__ import annotations

import copy
import hashlib
import warnings
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import QConfig, QConfigMapping
from torch.ao.quantization.observer import MinMaxObserver, default_per_channel_weight_observer
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

__all__ = ["RANGES_KEY", "int8_supported", "calibrate", "quantize", "Int8Encoder"]

#: where a checkpoint keeps its int8 activation ranges (in its ``extra`` dict)
RANGES_KEY = "int8_ranges"
_PREFIX = "activation_post_process_"


def int8_supported() -> bool:
    """Whether torch has quantised CPU kernels here (fbgemm/x86: an x86-64 CPU)."""
    engines = getattr(torch.backends.quantized, "supported_engines", [])
    return "x86" in engines or "fbgemm" in engines


class _Trunk(nn.Module):
    """The encoder after its front and before its normalisation, as a module of its own for FX to trace: the
    encoder's submodules under the same names, run by the encoder class's own ``project`` (the layout is
    written once, in ``ResNet18Encoder.project``)."""

    def __init__(self, enc: nn.Module) -> None:
        super().__init__()
        self.conv1, self.bn1, self.maxpool = enc.conv1, enc.bn1, enc.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = enc.layer1, enc.layer2, enc.layer3, enc.layer4
        self.fc = enc.fc
        self._project = type(enc).project

    def forward(self, x):
        return self._project(self, x)


def _qconfig_mapping():
    # reduce_range: 7-bit activations, what fbgemm needs on CPUs without VNNI to avoid overflow
    act = MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=True)
    return QConfigMapping().set_global(QConfig(activation=act, weight=default_per_channel_weight_observer))


def _prepared(model: nn.Module, example: torch.Tensor):
    trunk = _Trunk(copy.deepcopy(model).float().eval()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch.ao.quantization's deprecation notes
        return prepare_fx(trunk, _qconfig_mapping(), (example,))


def _check_encoder(model: nn.Module) -> None:
    # the encoder's layout (chadml.models.encoder.ResNet18Encoder, which imports this module)
    if not all(hasattr(model, a) for a in ("front", "conv1", "layer4", "fc", "project")):
        raise TypeError(f"model must be a ResNet18Encoder, got {type(model).__name__}")


def _front(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return model.front(x) if model.front is not None else x


@torch.no_grad()
def calibrate(model: nn.Module, windows: np.ndarray, *, batch_size: int = 128) -> dict[str, torch.Tensor]:
    """The int8 activation ranges of ``model`` (a :class:`ResNet18Encoder`) over feature windows
    ``(n, F, Wf)``: ``{observer name: tensor([min, max])}``, to store with the model (:data:`RANGES_KEY`).

    Min/max observers over forward passes of ``batch_size`` windows. The same windows in any order give
    the same ranges to the last bit: they are put in a canonical order (by their bytes) and every pass has
    exactly ``batch_size`` windows (the last one filled up with repeats, which leave a min/max unchanged),
    since a CPU's convolution may round differently for another batch size. Another ``batch_size`` gives
    ranges equal up to float32 rounding."""
    _check_encoder(model)
    windows = np.asarray(windows, np.float32)
    if windows.ndim != 3 or len(windows) == 0:
        raise ValueError(f"windows must have shape (n >= 1, F, Wf), got {windows.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    keys = [hashlib.blake2b(np.ascontiguousarray(w).tobytes(), digest_size=16).digest() for w in windows]
    windows = windows[sorted(range(len(windows)), key=lambda i: keys[i])]
    pad = (-len(windows)) % batch_size if len(windows) > batch_size else batch_size - len(windows)
    windows = np.concatenate([windows, np.repeat(windows[-1:], pad, axis=0)]) if pad else windows
    model = model.eval()
    x0 = _front(model, torch.from_numpy(windows[:1]))
    prep = _prepared(model, x0)
    for i in range(0, len(windows), batch_size):
        prep(_front(model, torch.from_numpy(windows[i:i + batch_size])))
    ranges = {}
    for name, mod in prep.named_modules():
        if name.startswith(_PREFIX) and hasattr(mod, "min_val"):
            ranges[name] = torch.stack([mod.min_val.detach().clone(), mod.max_val.detach().clone()]).float()
    return ranges


class Int8Encoder(nn.Module):
    """An encoder's int8 copy (:func:`quantize`): float32 front, int8 trunk, float32 L2 normalisation.
    Takes ``(B, F, Wf)`` or ``(B, C, F, Wf)`` windows like the encoder and has its ``dim``."""

    def __init__(self, front: nn.Module | None, trunk: nn.Module, dim: int) -> None:
        super().__init__()
        self.front = front
        self.trunk = trunk
        self.dim = int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if self.front is not None:
            x = self.front(x)
        return self.after_front(x)

    def after_front(self, x: torch.Tensor) -> torch.Tensor:
        """The int8 network after the front: ``(B, C, F, Wf)`` fronted windows -> fingerprints."""
        return F.normalize(self.trunk(x.float().contiguous()), dim=1)


def quantize(model: nn.Module, ranges: Mapping[str, torch.Tensor]) -> Int8Encoder:
    """The int8 copy of ``model`` (a :class:`ResNet18Encoder`) with the activation ``ranges`` that
    :func:`calibrate` measured for it. Ranges that do not fit the model (other observers, a min above
    its max, non-finite values) raise ValueError naming the problem."""
    _check_encoder(model)
    if not isinstance(ranges, Mapping) or not ranges:
        raise ValueError("ranges must be a non-empty dict of activation ranges (chadml.models.quant.calibrate)")
    model = model.eval()
    f = model.front
    ch = f.out_channels if f is not None else model.in_channels
    example = torch.zeros(1, ch, 84, 94)
    prep = _prepared(model, example)
    observers = {n: m for n, m in prep.named_modules() if n.startswith(_PREFIX) and hasattr(m, "min_val")}
    if set(observers) != set(ranges):
        missing, extra = sorted(set(observers) - set(ranges)), sorted(set(ranges) - set(observers))
        raise ValueError(f"ranges do not fit this model: missing {missing[:3]}, unknown {extra[:3]} "
                         f"({len(observers)} observers expected)")
    for name, mod in observers.items():
        r = torch.as_tensor(ranges[name], dtype=torch.float32).reshape(-1)
        if r.numel() != 2 or not torch.isfinite(r).all() or r[0] > r[1]:
            raise ValueError(f"ranges[{name!r}] must be finite [min, max] with min <= max, got {r.tolist()}")
        mod.min_val = r[0].clone()
        mod.max_val = r[1].clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trunk = convert_fx(prep)
    front = copy.deepcopy(f).eval() if f is not None else None
    return Int8Encoder(front, trunk, getattr(model, "dim", 128)).eval()
