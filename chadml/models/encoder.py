"""The fingerprint encoder: a ResNet18 over feature windows -> 128-d, L2-normalised fingerprints.

The paper's model M (section 3): features (CQT or CREPE) are cut into analysis windows of W seconds
with step S; each window goes through a vanilla ResNet18 with one input channel and the output is
L2-normalised. This module holds the network (own code, torchvision layout), :func:`fingerprint`
(windows -> fingerprints, batched, no grad) and :class:`Fingerprinter` (audio -> fingerprints with
their start times), which is what mining, indexing and search call.

Example
-------
>>> import numpy as np
>>> from chadml.models.encoder import ResNet18Encoder, fingerprint
>>> model = ResNet18Encoder(width=8)
>>> fps = fingerprint(model, np.random.rand(5, 84, 94).astype("float32"))
>>> fps.shape, fps.dtype
((5, 128), dtype('float32'))
"""
from __future__ import annotations

import contextlib
import copy
import os
from math import gcd
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from ..features import extract_features, make_windows
from ..features.windows import window_starts
from .front import FRONTS, TimbreFront
from .quant import int8_supported, quantize
from .threads import cap_threads

__all__ = ["fold_conv_bn_", "BasicBlock", "ResNet18Encoder", "fingerprint", "Fingerprinter", "model_device", "PRECISIONS",
           "PRECISION_ENV", "precision_from_env", "bf16_supported"]


def fold_conv_bn_(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``conv`` made to compute ``bn(conv(x))`` (eval-mode statistics) by itself, in place: new weight and
    bias parameters (no gradients, the weight channels-last); ``bn`` is left as it is. Returns ``conv``."""
    with torch.no_grad():
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        w = torch.empty_like(conv.weight, memory_format=torch.channels_last)
        torch.mul(conv.weight, scale.reshape(-1, 1, 1, 1), out=w)
        b = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            b = b + conv.bias * scale
    conv.weight = nn.Parameter(w, requires_grad=False)
    conv.bias = nn.Parameter(b, requires_grad=False)
    return conv


class BasicBlock(nn.Module):
    """The two-conv residual block of ResNet18/34 (3x3 conv-bn-relu, 3x3 conv-bn, + shortcut, relu)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels))

    def fold_batchnorm_(self) -> None:
        """Fold each BatchNorm (eval statistics) into the conv before it, in place: the BNs become
        ``nn.Identity`` and the convs get the scale and a bias. For inference copies only."""
        self.conv1, self.bn1 = fold_conv_bn_(self.conv1, self.bn1), nn.Identity()
        self.conv2, self.bn2 = fold_conv_bn_(self.conv2, self.bn2), nn.Identity()
        if self.downsample is not None:
            self.downsample = fold_conv_bn_(self.downsample[0], self.downsample[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity, inplace=True)


class ResNet18Encoder(nn.Module):
    """ResNet18 (BasicBlock, [2, 2, 2, 2]) on feature windows -> ``dim``-d L2-normalised fingerprints.

    The layout is torchvision's ``resnet18``: a 7x7 stride-2 conv + BN + ReLU + 3x3 stride-2 max pool,
    four stages of two BasicBlocks with ``width, 2*width, 4*width, 8*width`` channels (stages 2-4 start
    with stride 2), global average pooling, then a linear projection to ``dim`` (the paper's 128) and
    ``F.normalize(dim=1)``. ``width=64`` is the vanilla ResNet18 (11.2 M parameters with ``dim=128``);
    smaller widths are for tests and quick experiments.

    The total stride is 32, but every conv and pool is padded, so any input of at least 1 x 1 yields a
    feature map of at least 1 x 1: windows of 84 x 25 frames (the smallest: CQT at W = 0.8 s) reach
    stage 4 as 3 x 1; the paper's 84 x 94 (W = 3 s) as 3 x 3; 84 x 250 (W = 8 s) as 3 x 8. The stem is
    therefore kept as in torchvision (no adaptation needed).

    Parameters
    ----------
    width : int
        Base channel count (64 for ResNet18).
    dim : int
        Fingerprint dimension (128 in the paper).
    in_channels : int
        Input channels (1 for a CQT or CREPE feature window).
    front : {"none", "whiten", "salience"}
        A fixed front end before the first convolution that takes the voice's timbre out of a CQT
        window (:class:`chadml.models.front.TimbreFront`; the release model's ``"salience"``); needs
        ``in_channels == 1``. ``"none"``: the paper's network.

    Input is ``(B, in_channels, F, Wf)``, or ``(B, F, Wf)`` when ``in_channels == 1``; output ``(B, dim)``
    with unit L2 norm (a row of zeros in, a finite unit vector out).

    Example
    -------
    >>> import torch
    >>> m = ResNet18Encoder(width=8).eval()
    >>> z = m(torch.randn(2, 84, 94))
    >>> tuple(z.shape), bool(torch.allclose(z.norm(dim=1), torch.ones(2)))
    ((2, 128), True)
    """

    def __init__(self, width: int = 64, dim: int = 128, in_channels: int = 1, front: str = "none") -> None:
        super().__init__()
        if front not in FRONTS:
            raise ValueError(f"front must be one of {FRONTS}, got {front!r}")
        for name, v in (("width", width), ("dim", dim), ("in_channels", in_channels)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {type(v).__name__} {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        self.width, self.dim, self.in_channels = int(width), int(dim), int(in_channels)
        if front != "none" and self.in_channels != 1:
            raise ValueError(f"front={front!r} needs in_channels=1, got {self.in_channels}")
        self.front = TimbreFront(front) if front != "none" else None
        w = self.width
        stem_in = self.front.out_channels if self.front is not None else self.in_channels
        self.conv1 = nn.Conv2d(stem_in, w, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(w, w, 1)
        self.layer2 = self._stage(w, 2 * w, 2)
        self.layer3 = self._stage(2 * w, 4 * w, 2)
        self.layer4 = self._stage(4 * w, 8 * w, 2)
        self.fc = nn.Linear(8 * w, self.dim)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _stage(in_channels: int, channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(in_channels, channels, stride), BasicBlock(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 3 and self.in_channels == 1:
            x = x.unsqueeze(1)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            want = "(B, F, Wf) or (B, 1, F, Wf)" if self.in_channels == 1 else f"(B, {self.in_channels}, F, Wf)"
            raise ValueError(f"x must have shape {want}, got {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f"x must be non-empty in batch, frequency and time, got {tuple(x.shape)}")
        if self.front is not None:
            x = self.front(x)
        return self.after_front(x)

    def after_front(self, x: torch.Tensor) -> torch.Tensor:
        """The network after its front: ``(B, C, F, Wf)`` windows that went through ``front`` -> the
        fingerprints (no checks: :meth:`forward` is the public entry)."""
        return F.normalize(self.project(x), dim=1)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, four stages, pooling and projection of fronted windows, before the L2 normalisation (the
        part :mod:`chadml.models.quant` runs in int8)."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def inference_copy(self) -> "ResNet18Encoder":
        """A copy for fast CPU inference: eval mode, no gradients, each BatchNorm folded into the conv
        before it, weights in channels-last layout (oneDNN's direct path).

        It computes this model's eval-mode outputs to float rounding (about 1e-7; see
        ``tests/test_fingerprint_speed.py``) 1.4-2x faster on CPU (``bench/README.md``). Its
        ``state_dict`` is not this model's: save and identify the original, never the copy.

        Example
        -------
        >>> m = ResNet18Encoder(width=8).eval()
        >>> x = torch.randn(3, 84, 94)
        >>> bool(torch.allclose(m.inference_copy()(x), m(x), atol=1e-5))
        True
        """
        # copy the modules, not the tensors: the copy's parameters share the original's storage (read
        # only, no gradients) until folding gives the convs new ones
        memo: dict = {id(t): nn.Parameter(t.detach(), requires_grad=False) for t in self.parameters()}
        memo.update({id(t): t.detach() for t in self.buffers()})
        fast = copy.deepcopy(self, memo).eval()
        fast.conv1, fast.bn1 = fold_conv_bn_(fast.conv1, fast.bn1), nn.Identity()
        for m in fast.modules():
            if isinstance(m, BasicBlock):
                m.fold_batchnorm_()
        return fast

    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable, for checkpoints (see :meth:`from_config`)."""
        cfg = {"arch": "resnet18", "width": self.width, "dim": self.dim, "in_channels": self.in_channels}
        if self.front is not None:      # absent for the paper's network: older model ids stay the same
            cfg["front"] = self.front.kind
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ResNet18Encoder":
        """A new (untrained) encoder from :meth:`config`'s dict; unknown keys or another arch raise."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        cfg = dict(config)
        arch = cfg.pop("arch", "resnet18")
        if arch != "resnet18":
            raise ValueError(f"config['arch'] must be 'resnet18', got {arch!r}")
        unknown = set(cfg) - {"width", "dim", "in_channels", "front"}
        if unknown:
            raise ValueError(f"config has unknown keys {sorted(unknown)}; expected width, dim, in_channels, front")
        return cls(**cfg)


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


#: the precisions a :class:`Fingerprinter` runs its encoder in
PRECISIONS = ("fp32", "bf16", "int8")
#: the environment variable giving a :class:`Fingerprinter`'s default precision (one of PRECISIONS)
PRECISION_ENV = "CHAD_PRECISION"


def precision_from_env(environ: Mapping[str, str] | None = None, default: str = "fp32") -> str:
    """The precision ``CHAD_PRECISION`` asks for, ``default`` when unset; another value is a UsageError.

    >>> precision_from_env({}), precision_from_env({"CHAD_PRECISION": "bf16"})
    ('fp32', 'bf16')
    """
    raw = (os.environ if environ is None else environ).get(PRECISION_ENV, "").strip().lower()
    if not raw:
        return default
    if raw not in PRECISIONS:
        raise UsageError(f"{PRECISION_ENV} must be one of {', '.join(PRECISIONS)}, got {raw!r}")
    return raw


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively (a CPU with AVX512-BF16 or AMX through
    oneDNN; a CUDA device that supports bf16)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    check = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def _as_windows(windows: Any) -> np.ndarray:
    if isinstance(windows, torch.Tensor):
        windows = windows.detach().cpu().numpy()
    if not isinstance(windows, np.ndarray):
        raise TypeError(f"windows must be a numpy array (n, F, Wf), got {type(windows).__name__}")
    if windows.dtype.kind not in "fiu":
        raise TypeError(f"windows must be a real numeric array, got dtype {windows.dtype}")
    if windows.ndim != 3:
        raise ValueError(f"windows must have shape (n, F, Wf), got {windows.shape}")
    if windows.shape[0] and (windows.shape[1] == 0 or windows.shape[2] == 0):
        raise ValueError(f"windows must have F >= 1 and Wf >= 1, got {windows.shape}")
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    if not np.isfinite(windows).all():
        raise ValueError("windows contain NaN or infinite values")
    return windows


@torch.no_grad()
def fingerprint(model: nn.Module, windows: np.ndarray, *, batch_size: int = 256,
                device: str | torch.device | None = None) -> np.ndarray:
    """Fingerprints of feature windows: ``(n, F, Wf)`` -> ``(n, dim)`` float32, unit L2 norm.

    Runs ``model`` in eval mode without gradients, ``batch_size`` windows at a time; the model's
    train/eval mode is restored afterwards. Eval-mode BatchNorm makes every row independent of the
    batch it is computed in, so any ``batch_size`` gives the same result (to float rounding).

    Parameters
    ----------
    model : nn.Module
        An encoder mapping ``(B, F, Wf)`` to ``(B, dim)`` (e.g. :class:`ResNet18Encoder`).
    windows : np.ndarray
        ``(n, F, Wf)`` feature windows (``make_windows``'s first output); ``n`` may be 0.
    batch_size : int
        Windows per forward pass.
    device : str or torch.device, optional
        Where to run. ``None``: the model's own device. Otherwise the model is moved there (in place).

    Example
    -------
    >>> import numpy as np
    >>> fingerprint(ResNet18Encoder(width=8), np.zeros((0, 84, 94), "float32")).shape
    (0, 128)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    windows = _as_windows(windows)
    if device is not None:
        model.to(device)
    dev = model_device(model)
    dim = getattr(model, "dim", None)
    if windows.shape[0] == 0:
        if dim is None:
            raise ValueError("windows is empty and the model has no `dim` attribute to size the output")
        return np.zeros((0, int(dim)), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        out = []
        for i in range(0, windows.shape[0], int(batch_size)):
            xb = torch.from_numpy(windows[i:i + int(batch_size)]).to(dev, non_blocking=True)
            out.append(model(xb).float().cpu())
        return torch.cat(out).numpy()
    finally:
        model.train(was_training)


def _resample(audio: np.ndarray, sr: int, target: int) -> np.ndarray:
    from scipy.signal import resample_poly
    g = gcd(int(sr), int(target))
    return resample_poly(audio, int(target) // g, int(sr) // g).astype(np.float32)


class Fingerprinter:
    """Audio -> fingerprints with their window start times: features, windows, then the encoder.

    Parameters
    ----------
    model : nn.Module
        The encoder (e.g. a trained :class:`ResNet18Encoder`); it is put in eval mode.
    feature_config : chadml.features.FeatureConfig
        How features are computed (must be the config the model was trained with).
    window_config : chadml.features.WindowConfig
        Analysis windows (W, S): ``SHORT`` (3 s, 0.25 s) for M_short, ``LONG`` (8 s, 0.64 s) for M_long.
    device : str or torch.device, optional
        Where the model runs; ``None`` keeps the model's device.
    batch_size : int
        Windows per forward pass.
    model_id : str, optional
        The id of the model (:func:`chadml.models.checkpoint.checkpoint_id` of the checkpoint it was
        loaded from); ``None`` (the default) lets :func:`chadml.index.fingerprinter_id` hash the
        weights instead. Indexes record it and refuse queries by another model.
    fast : bool
        Encode with the model's :meth:`ResNet18Encoder.inference_copy` (BatchNorm folded, channels
        last: the same fingerprints to float rounding, 1.4-2x faster on CPU), made on first use
        and again whenever the model's weights change. ``False``: the model itself. Models other than
        :class:`ResNet18Encoder` always run as they are.

    precision : str, optional
        "fp32"; "bf16": the encoder under ``torch.autocast`` in bfloat16, where the device computes
        it natively (:func:`bf16_supported`; elsewhere "bf16" runs fp32), fingerprints within about
        2e-3 per element of fp32; "int8": the encoder's static int8 copy
        (:mod:`chadml.models.quant`, built from ``int8_ranges``; on a CPU without torch's int8 kernels
        it runs fp32), fingerprints within a cosine of about 0.999 of fp32, several times faster
        (``bench/README.md``: retrieval and speed of each). ``None`` (the default): the environment
        variable ``CHAD_PRECISION``, else "int8" when the model comes with ``int8_ranges`` (the shipped
        model does), else "fp32".
    int8_ranges : dict, optional
        The model's calibrated int8 activation ranges (a checkpoint's ``extra["int8_ranges"]``,
        :func:`chadml.models.quant.calibrate`); needed for "int8".

    Making one also caps torch's CPU threads for the process (:func:`chadml.models.threads.cap_threads`:
    ``CHAD_THREADS``, or no more than the CPUs the process may use).

    Example
    -------
    >>> from chadml.features import FeatureConfig, SHORT                      # doctest: +SKIP
    >>> fp = Fingerprinter(ResNet18Encoder(width=8), FeatureConfig("cqt"), SHORT)  # doctest: +SKIP
    >>> fps, starts = fp.from_audio(audio)   # (n, 128) float32, (n,) seconds    # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, feature_config: Any, window_config: Any,
                 device: str | torch.device | None = None, *, batch_size: int = 256,
                 model_id: str | None = None, fast: bool = True, precision: str | None = None,
                 int8_ranges: Mapping[str, torch.Tensor] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if device is not None:
            model.to(device)
        if precision is None:
            precision = precision_from_env(default="int8" if int8_ranges else "fp32")
            if precision == "int8" and not int8_ranges:
                raise UsageError(f"{PRECISION_ENV}=int8 needs a model with int8 ranges (the shipped model, or "
                                 "one exported by `chad train --preset release`); this model has none")
        elif precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        elif precision == "int8" and not int8_ranges:
            raise ValueError("precision 'int8' needs int8_ranges (chadml.models.quant.calibrate)")
        if precision == "int8" and not isinstance(model, ResNet18Encoder):
            raise ValueError(f"precision 'int8' needs a ResNet18Encoder, got {type(model).__name__}")
        self.int8_ranges = dict(int8_ranges) if int8_ranges else None
        self._int8_model: nn.Module | None = None
        self._int8_key: tuple | None = None
        cap_threads()
        self.model = model.eval()
        self.precision = precision
        self.fast = bool(fast)
        self._fast_model: nn.Module | None = None
        self._fast_key: tuple | None = None
        self.feature_config = feature_config
        self.window_config = window_config
        self.batch_size = int(batch_size)
        self.model_id: str | None = None if model_id is None else str(model_id)

    @property
    def device(self) -> torch.device:
        """The device the model runs on."""
        return model_device(self.model)

    @property
    def dim(self) -> int:
        """Fingerprint dimension."""
        return int(getattr(self.model, "dim", 128))

    def features(self, audio: np.ndarray, sr: int | None = None) -> np.ndarray:
        """The ``(F, T)`` features of ``audio`` (resampled to the feature config's rate when ``sr`` differs)."""
        audio = np.asarray(audio)
        if audio.dtype.kind not in "fiu":
            raise TypeError(f"audio must be a real numeric array, got dtype {audio.dtype}")
        target = int(getattr(self.feature_config, "sr", 16000))
        if sr is not None and int(sr) != target:
            if int(sr) <= 0:
                raise ValueError(f"sr must be > 0, got {sr}")
            audio = _resample(np.asarray(audio, dtype=np.float32), int(sr), target)
        return extract_features(audio, self.feature_config)

    def encoder(self) -> nn.Module:
        """The module that computes the fingerprints: the model's inference copy (``fast``; rebuilt when
        its weights or their device changed since the last call) or the model itself."""
        if not self.fast or not isinstance(self.model, ResNet18Encoder):
            return self.model
        key = tuple((t.device, t.data_ptr(), t._version)
                    for t in (*self.model.parameters(), *self.model.buffers()))
        if self._fast_model is None or key != self._fast_key:
            self._fast_model, self._fast_key = self.model.inference_copy(), key
        return self._fast_model

    def int8_encoder(self) -> nn.Module | None:
        """The model's int8 copy (built on first use and again when its weights change), or None where it
        cannot run (not precision "int8", a model off the CPU, no int8 kernels in this torch)."""
        if self.precision != "int8" or model_device(self.model).type != "cpu" or not int8_supported():
            return None
        key = tuple((t.data_ptr(), t._version) for t in (*self.model.parameters(), *self.model.buffers()))
        if self._int8_model is None or key != self._int8_key:
            self._int8_model, self._int8_key = quantize(self.model, self.int8_ranges), key
        return self._int8_model

    def _runner(self) -> tuple[nn.Module, Any]:
        """The module that computes the fingerprints at this precision and the context it runs in: the int8
        copy; or :meth:`encoder` under bf16 autocast where asked for and native; or :meth:`encoder`."""
        q = self.int8_encoder()
        if q is not None:
            return q, contextlib.nullcontext()
        model = self.encoder()
        dev = model_device(model)
        if self.precision == "bf16" and bf16_supported(dev):
            return model, torch.autocast(dev.type, dtype=torch.bfloat16)
        return model, contextlib.nullcontext()

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Fingerprints ``(n, dim)`` float32 of feature windows ``(n, F, Wf)`` (see :func:`fingerprint`)."""
        model, context = self._runner()
        with context:
            return fingerprint(model, windows, batch_size=self.batch_size)

    def windows(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(windows (n, F, Wf), starts_s (n,))`` of a ``(F, T)`` feature matrix."""
        return make_windows(features, self.window_config, self.feature_config.frame_rate)

    def from_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fingerprints ``(n, dim)`` float32 and window starts ``(n,)`` in seconds of ``(F, T)`` features.

        With a timbre front (:class:`chadml.models.front.TimbreFront`) on the CPU, the front runs once
        over the clip's frames and the windows are cut from its output (each frame is in 12 windows at
        chad's hop): the same fingerprints as :meth:`encode` of the windows, to float rounding, with a
        twelfth of the front's work."""
        front = getattr(self.model, "front", None)
        if (not self.fast or front is None or front.kind == "none" or not isinstance(self.model, ResNet18Encoder)
                or self.device.type != "cpu"):
            w, starts = self.windows(features)
            return self.encode(w), np.asarray(starts, dtype=np.float64)
        w, starts = self.windows(np.asarray(features)[:1])            # checks, and the window starts
        return self._encode_per_frame(front, np.asarray(features, np.float32), len(w)), \
            np.asarray(starts, dtype=np.float64)

    @torch.no_grad()
    def _encode_per_frame(self, front, features: np.ndarray, n: int) -> np.ndarray:
        rate = self.feature_config.frame_rate
        win, _ = self.window_config.frames(rate)
        if not np.isfinite(features).all():
            raise ValueError("windows contain NaN or infinite values")
        x = features if features.shape[1] >= win else np.pad(features, ((0, 0), (0, win - features.shape[1])))
        maps = front.per_frame(torch.from_numpy(np.ascontiguousarray(x))[None])[0]       # (C, F, T)
        starts = window_starts(features.shape[1], self.window_config, rate)
        view = maps.unfold(2, win, 1)                                                   # (C, F, T-win+1, win)
        model, context = self._runner()          # the int8 copy or the inference copy: both have after_front
        out = []
        with context:
            for i in range(0, n, self.batch_size):
                idx = torch.from_numpy(np.asarray(starts[i:i + self.batch_size], np.int64))
                xb = front.scale_windows_(view[:, :, idx].permute(2, 0, 1, 3).contiguous())
                out.append(model.after_front(xb).float())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    def from_audio(self, audio: np.ndarray, sr: int = 16000) -> tuple[np.ndarray, np.ndarray]:
        """Fingerprints ``(n, dim)`` float32 and window starts ``(n,)`` in seconds of a mono waveform."""
        return self.from_features(self.features(audio, sr))

    def from_audio_batch(self, audios: Sequence[np.ndarray], sr: int = 16000
                         ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`from_audio` of each waveform, with the windows of all of them encoded together."""
        if isinstance(audios, np.ndarray) and audios.ndim == 1:
            raise TypeError("audios must be a sequence of waveforms; for one waveform call from_audio")
        parts = [self.windows(self.features(a, sr)) for a in audios]
        if not parts:
            return []
        counts = [len(w) for w, _ in parts]
        shapes = {w.shape[1:] for w, _ in parts if len(w)}
        if len(shapes) > 1:  # windows of different sizes cannot share a batch
            return [(self.encode(w), np.asarray(s, np.float64)) for w, s in parts]
        nonempty = [w for w, _ in parts if len(w)]
        if not nonempty:
            allw = np.zeros((0, 1, 1), np.float32)
        else:
            allw = np.concatenate(nonempty)
        fps = self.encode(allw)
        out, i = [], 0
        for (w, s), n in zip(parts, counts):
            out.append((fps[i:i + n], np.asarray(s, dtype=np.float64)))
            i += n
        return out

    def __repr__(self) -> str:
        return (f"Fingerprinter(model={type(self.model).__name__}, feature_config={self.feature_config!r}, "
                f"window_config={self.window_config!r}, device={self.device})")
