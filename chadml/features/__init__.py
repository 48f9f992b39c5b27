"""Input features of the encoder: the CQT and the CREPE-f0 activations, and analysis windows.

The paper (section 5.1) uses two kinds of features, both computed on 16 kHz mono audio:

- ``"cqt"``: the constant-Q transform, 12 bins per octave, 7 octaves (84 bins from C1 = 32.70 Hz
  to B7 = 3951 Hz), Hann window, hop 512 (31.25 frames per second). :class:`CQT` computes it in
  torch (CPU or GPU, batched) with the magnitudes of ``librosa.cqt`` (same filters and scaling).
- ``"crepe"``: CREPE's 360-bin pitch activations (10 ms hop), trimmed to 3 octaves around the
  clip's mean pitch and downscaled to 80 bins x T/4 frames (25 frames per second); see
  :func:`chadml.crepe.crepe_features`.

Normalisation (what the encoder sees). A CQT magnitude ``M`` of one clip becomes
``clip((20 log10(max(M, 1e-10)) - ref_db + top_db) / top_db, 0, 1)`` with ``ref_db`` the clip's
loudest bin (so the loudest bin is 1.0 and everything ``top_db`` = 80 dB or more below it is 0.0):
log compression, then per-clip normalisation to ``[0, 1]`` that is invariant to the clip's gain.
An all-zero clip gives all zeros. CREPE activations are probabilities in ``[0, 1]`` already and
are used as they are. In both kinds 0.0 means "nothing here", which is the value windows are
padded with.

Analysis windows (:class:`WindowConfig`, :func:`make_windows`): ``M_short`` W = 3 s, S = 0.25 s and
``M_long`` W = 8 s, S = 0.64 s. A window is ``round(W * frame_rate)`` frames long and window ``k``
starts at frame ``round(k * S * frame_rate)`` (Python's round-half-even), so the step may be a
fractional number of frames (CQT: 0.25 s = 7.8125 frames) without drifting.

Example
-------
>>> import numpy as np
>>> from chadml.features import FeatureConfig, SHORT, extract_features, make_windows
>>> cfg = FeatureConfig(kind="cqt")
>>> y = np.sin(2 * np.pi * 220 * np.arange(5 * 16000) / 16000).astype(np.float32)
>>> feats = extract_features(y, cfg)
>>> feats.shape
(84, 157)
>>> windows, starts = make_windows(feats, SHORT, cfg.frame_rate)
>>> windows.shape, starts[:3].tolist()
((9, 84, 94), [0.0, 0.256, 0.512])
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import CREPE_BINS, CREPE_HOP, CREPE_POOL, check_number, from_dict

__all__ = [
    "FeatureConfig", "WindowConfig", "SHORT", "LONG", "CQT", "cqt_frequencies", "log_normalize",
    "check_audio", "extract_features", "extract_features_batch", "window_starts", "make_windows",
    "resolve_device",
]

C1_HZ = 32.70319566257483  # librosa.note_to_hz("C1")
_HANN_BANDWIDTH = 1.50018310546875  # librosa.filters.window_bandwidth("hann")
_KINDS = ("cqt", "crepe")
_CREPE_MODELS = ("full", "tiny")
_DEC_BLOCK = 32     # outputs per row of the CQT's decimation GEMM


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------

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
            _cqt_geometry(self.sr, self.hop_length, float(self.fmin), self.n_bins, self.bins_per_octave)

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


@dataclasses.dataclass(frozen=True)
class WindowConfig:
    """Analysis windows of ``window_s`` seconds every ``step_s`` seconds.

    Example
    -------
    >>> LONG.frames(31.25)
    (250, 20.0)
    """

    window_s: float
    step_s: float

    def __post_init__(self) -> None:
        check_number("WindowConfig.window_s", self.window_s)
        check_number("WindowConfig.step_s", self.step_s)

    def frames(self, frame_rate: float) -> tuple[int, float]:
        """``(win_frames, step_frames)``: the window in whole frames (rounded), the step possibly fractional.

        Window ``k`` starts at frame ``round(k * step_frames)``.
        """
        check_number("frame_rate", frame_rate)
        win = int(round(self.window_s * frame_rate))
        if win < 1:
            raise ValueError(f"window_s={self.window_s} is shorter than one frame at frame_rate={frame_rate}")
        step = float(self.step_s * frame_rate)
        if step < 0.5:
            raise ValueError(f"step_s={self.step_s} is under half a frame at frame_rate={frame_rate}")
        return win, step

    def to_dict(self) -> dict:
        return {"window_s": float(self.window_s), "step_s": float(self.step_s)}

    @classmethod
    def from_dict(cls, d: dict) -> "WindowConfig":
        return from_dict(cls, d, "WindowConfig dict")


SHORT = WindowConfig(3.0, 0.25)  # M_short: queries under 15 s
LONG = WindowConfig(8.0, 0.64)   # M_long


# --------------------------------------------------------------------------------------------
# CQT
# --------------------------------------------------------------------------------------------

def cqt_frequencies(n_bins: int = 84, fmin: float = C1_HZ, bins_per_octave: int = 12) -> np.ndarray:
    """Centre frequencies (Hz) of the CQT bins: ``fmin * 2 ** (k / bins_per_octave)``."""
    return fmin * 2.0 ** (np.arange(n_bins, dtype=np.float64) / bins_per_octave)


def _cqt_geometry(sr: int, hop_length: int, fmin: float, n_bins: int, bins_per_octave: int):
    """Frequencies, relative bandwidths, filter lengths (at ``sr``) and octave count; validates."""
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")
    freqs = cqt_frequencies(n_bins, fmin, bins_per_octave)
    # librosa.filters._relative_bandwidth for equally spaced bins
    bpo = np.empty_like(freqs)
    logf = np.log2(freqs)
    bpo[0] = 1 / (logf[1] - logf[0])
    bpo[-1] = 1 / (logf[-1] - logf[-2])
    bpo[1:-1] = 2 / (logf[2:] - logf[:-2])
    alpha = (2.0 ** (2 / bpo) - 1) / (2.0 ** (2 / bpo) + 1)
    q = 1.0 / alpha
    lengths = q * sr / freqs
    cutoff = float(np.max(freqs * (1 + 0.5 * _HANN_BANDWIDTH / q)))
    if cutoff > sr / 2:
        raise ValueError(
            f"CQT top bin {freqs[-1]:.1f} Hz (filter cutoff {cutoff:.1f} Hz) exceeds the Nyquist frequency "
            f"{sr / 2:.1f} Hz of sr={sr}: lower fmin={fmin} or n_bins={n_bins}")
    n_octaves = int(math.ceil(n_bins / bins_per_octave))
    if hop_length % (2 ** (n_octaves - 1)):
        raise ValueError(
            f"hop_length={hop_length} must be divisible by 2**(n_octaves-1) = {2 ** (n_octaves - 1)} "
            f"for {n_octaves} octaves (the CQT halves the sample rate and the hop once per octave)")
    return freqs, alpha, lengths, cutoff, n_octaves


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _octave_kernel(freqs_oct: np.ndarray, alpha_oct: np.ndarray, lengths_full: np.ndarray,
                   sr: float, k: int) -> np.ndarray:
    """Time-domain kernels ``(2 * n_filters, n_fft)`` (real rows, then imaginary rows) of one octave.

    They reproduce librosa's octave response exactly up to its sparsification of the basis: librosa
    sums ``fft_basis[:, :n_fft//2+1] @ stft(frame)``, which equals a dot product of the frame with
    ``h[p] = sum_{m <= n_fft/2} B[m] exp(-2 pi i m p / n_fft)``. The scaling folds in librosa's
    ``basis *= lengths / n_fft``, ``fft_basis *= sqrt(sr / my_sr)``, the ``sqrt(2)`` per octave of
    its energy-preserving resampler (ours preserves amplitude) and the final ``/ sqrt(lengths)``.
    """
    my_sr = sr / 2 ** k
    lengths = (1.0 / alpha_oct) * my_sr / freqs_oct
    n_fft = int(2.0 ** np.ceil(np.log2(lengths.max())))
    basis = np.zeros((len(freqs_oct), n_fft), dtype=np.complex128)
    for i, (ilen, f) in enumerate(zip(lengths, freqs_oct)):
        t = np.arange(-ilen // 2, ilen // 2, dtype=np.float64)
        sig = np.exp(1j * 2 * np.pi * f * t / my_sr) * _periodic_hann(len(t))
        sig /= np.abs(sig).sum()
        lpad = (n_fft - len(sig)) // 2
        basis[i, lpad:lpad + len(sig)] = sig
    basis *= lengths[:, None] / n_fft
    spec = np.fft.fft(basis, axis=1)[:, : n_fft // 2 + 1]
    spec *= np.sqrt(sr / my_sr) * (2.0 ** (k / 2)) / np.sqrt(lengths_full)[:, None]
    m = np.arange(n_fft // 2 + 1)
    p = np.arange(n_fft)
    h = spec @ np.exp(-2j * np.pi * np.outer(m, p) / n_fft)  # (n_filters, n_fft)
    return np.concatenate([h.real, h.imag], axis=0)


def _halfband_lowpass(passband: float) -> np.ndarray:
    """Zero-phase FIR for decimation by 2: flat to ``passband`` (fraction of the input rate), >= 100 dB
    stopband from ``0.5 - passband`` (what would alias into the passband after decimation)."""
    from scipy.signal import firwin, kaiserord
    width = max(0.5 - 2 * passband, 0.05)  # fraction of the sample rate
    numtaps, beta = kaiserord(100.0, 2 * width)
    numtaps |= 1
    return firwin(numtaps, 0.5, window=("kaiser", beta)).astype(np.float64)


class CQT(torch.nn.Module):
    """Constant-Q transform magnitudes in torch, batched, on CPU or GPU.

    The recursive-downsampling algorithm of ``librosa.cqt`` (Schoerkhuber et al. 2014): the top octave
    is computed at ``sr``, then the signal is low-passed and decimated by 2 (a zero-phase Kaiser FIR,
    >= 100 dB stopband, applied as a block-Toeplitz GEMM) and the hop halved for each lower octave.
    Each octave's 12 filters are one small real matrix (real and imaginary parts) that multiplies
    the frames (128 samples with the default parameters; an ``unfold`` view, no copy of the audio).
    Same filters, centring (zero-padded, frame ``t`` centred at sample ``t * hop``) and scaling
    (``scale=True``) as ``librosa.cqt(y, sr=sr, hop_length=hop, fmin=fmin, n_bins=n_bins,
    bins_per_octave=bins_per_octave)`` with ``tuning=0``. librosa also drops 1% of each filter's
    spectrum (``sparsity=0.01``), which leaks loud notes into nearby near-silent frames at about
    -60 dB; ours does not sparsify. Tested: per-frame correlation >= 0.99 with ``librosa.cqt`` on
    every frame within 40 dB of the loudest (>= 0.999 with ``sparsity=0``), bin magnitudes within 1%.

    Parameters
    ----------
    sr, hop_length, fmin, n_bins, bins_per_octave :
        As :class:`FeatureConfig` (defaults: the paper's).

    Example
    -------
    >>> import torch
    >>> cqt = CQT()
    >>> x = torch.randn(2, 16000)
    >>> cqt(x).shape
    torch.Size([2, 84, 32])
    """

    def __init__(self, sr: int = 16000, hop_length: int = 512, fmin: float = C1_HZ, n_bins: int = 84,
                 bins_per_octave: int = 12) -> None:
        super().__init__()
        for name, v in (("sr", sr), ("hop_length", hop_length), ("n_bins", n_bins),
                        ("bins_per_octave", bins_per_octave)):
            check_number(name, v, integer=True)
        check_number("fmin", fmin)
        freqs, alpha, lengths, cutoff, n_octaves = _cqt_geometry(sr, hop_length, float(fmin), n_bins, bins_per_octave)
        self.sr, self.hop_length, self.fmin = int(sr), int(hop_length), float(fmin)
        self.n_bins, self.bins_per_octave, self.n_octaves = int(n_bins), int(bins_per_octave), n_octaves
        self.frequencies = freqs
        self._octaves: list[tuple[int, int, int]] = []  # (first bin, last bin + 1, n_fft)
        for k in range(n_octaves):
            hi = n_bins - k * bins_per_octave
            lo = max(0, hi - bins_per_octave)
            kern = _octave_kernel(freqs[lo:hi], alpha[lo:hi], lengths[lo:hi], sr, k)
            self.register_buffer(f"kernel{k}", torch.from_numpy(np.ascontiguousarray(kern.T, dtype=np.float32)),
                                 persistent=False)
            self._octaves.append((lo, hi, kern.shape[1]))
        lp = _halfband_lowpass(cutoff / (2 * sr))  # next octave's content, relative to this octave's rate
        self._taps = len(lp)
        # Decimation as a GEMM: blocks of _DEC_BLOCK outputs, each from 2 * (_DEC_BLOCK - 1) + taps inputs
        # (several times faster on CPU than a 1-channel strided conv1d, which oneDNN handles poorly).
        m = _DEC_BLOCK
        dec = np.zeros((2 * (m - 1) + len(lp), m), dtype=np.float32)
        for i in range(m):
            dec[2 * i: 2 * i + len(lp), i] = lp
        self.register_buffer("decimator", torch.from_numpy(dec), persistent=False)

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, N)`` or ``(N,)`` float audio at ``sr``; returns ``(B, n_bins, 1 + N // hop)`` magnitudes."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise ValueError(f"x must be (B, N) or (N,), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        if x.shape[1] < 1:
            raise ValueError("x must have at least one sample")
        x = x.to(self.kernel0.dtype)
        b, n = x.shape
        t = self.n_frames(n)
        out = x.new_empty((b, self.n_bins, t))
        y = x  # (B, N_k): the signal at sr / 2**k
        for k, (lo, hi, n_fft) in enumerate(self._octaves):
            hop = self.hop_length >> k
            # centred frames: frame j covers y[j*hop - n_fft//2 : j*hop + n_fft//2] (zeros outside)
            need = (t - 1) * hop + n_fft
            yp = F.pad(y, (n_fft // 2, max(0, need - n_fft // 2 - y.shape[-1])))
            frames = yp.unfold(-1, n_fft, hop)[:, :t]  # (B, t, n_fft), a view
            kern = getattr(self, f"kernel{k}")  # (n_fft, 2 * n_filters)
            resp = torch.matmul(frames, kern)  # (B, t, 2 * n_filters)
            nf = hi - lo
            out[:, lo:hi] = torch.sqrt(resp[..., :nf] ** 2 + resp[..., nf:] ** 2).transpose(1, 2)
            if k + 1 < len(self._octaves):
                y = self._decimate(y)
        return out

    def _decimate(self, y: torch.Tensor) -> torch.Tensor:
        """Low-pass and keep every other sample: ``out[m]`` is centred on ``y[2m]``.

        The filter's tail past the end of ``y`` is kept (``ceil((N + taps//2) / 2)`` outputs), so a
        clip's frames do not depend on whether zeros follow it (single clip == zero-padded batch row).
        """
        m = _DEC_BLOCK
        n = y.shape[-1]
        c = self._taps // 2
        n_out = (n + c + 1) // 2
        n_blocks = -(-n_out // m)
        frame = self.decimator.shape[0]
        yp = F.pad(y, (c, (n_blocks - 1) * 2 * m + frame - n - c))
        blocks = yp.unfold(-1, frame, 2 * m)  # (B, n_blocks, frame)
        return torch.matmul(blocks, self.decimator).reshape(y.shape[0], -1)[:, :n_out]

    def extra_repr(self) -> str:
        return (f"sr={self.sr}, hop_length={self.hop_length}, fmin={self.fmin:.2f}, n_bins={self.n_bins}, "
                f"bins_per_octave={self.bins_per_octave}")


@functools.lru_cache(maxsize=16)
def _cqt_module(sr: int, hop_length: int, fmin: float, n_bins: int, bins_per_octave: int, device: str) -> CQT:
    return CQT(sr, hop_length, fmin, n_bins, bins_per_octave).to(device)


def log_normalize(mag, top_db: float = 80.0):
    """Per-clip log compression to ``[0, 1]``: ``clip((dB - max dB + top_db) / top_db, 0, 1)``.

    ``mag`` is a magnitude array ``(F, T)`` (numpy or torch) or a batch ``(B, F, T)`` (each clip
    normalised by its own maximum). A clip whose magnitudes are all below 1e-10 becomes zeros.
    """
    is_np = isinstance(mag, np.ndarray)
    m = torch.from_numpy(mag) if is_np else mag
    if m.ndim not in (2, 3):
        raise ValueError(f"mag must be (F, T) or (B, F, T), got shape {tuple(m.shape)}")
    check_number("top_db", top_db)
    amin = 1e-10
    db = 20.0 * torch.log10(torch.clamp(m, min=amin))
    ref = db.amax(dim=(-2, -1), keepdim=True)
    out = torch.clamp((db - ref + top_db) / top_db, 0.0, 1.0)
    out = torch.where(ref > 20.0 * math.log10(amin), out, torch.zeros_like(out))
    return out.numpy() if is_np else out


# --------------------------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------------------------

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
        from .crepe import _crepe_features_many
        return _crepe_features_many(clips, model=config.crepe_model, device=dev)
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


# --------------------------------------------------------------------------------------------
# Analysis windows
# --------------------------------------------------------------------------------------------

def window_starts(n_frames: int, window: WindowConfig, frame_rate: float) -> np.ndarray:
    """Start frames (int64) of every analysis window of a feature of ``n_frames`` frames.

    Window ``k`` starts at ``round(k * step_s * frame_rate)``; all windows lie inside the clip
    (start + win_frames <= n_frames). A clip shorter than one window has one window at 0.
    """
    if not isinstance(window, WindowConfig):
        raise TypeError(f"window must be a WindowConfig, got {type(window).__name__}")
    check_number("n_frames", n_frames, integer=True)
    win, step = window.frames(frame_rate)
    if n_frames <= win:
        return np.zeros(1, dtype=np.int64)
    n = int(math.floor((n_frames - win) / step)) + 2
    starts = np.round(np.arange(n) * step).astype(np.int64)
    return starts[starts + win <= n_frames]


def make_windows(features: np.ndarray, window: WindowConfig, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Every analysis window of a feature matrix.

    Parameters
    ----------
    features : float array (F, T)
    window : WindowConfig (e.g. ``SHORT`` or ``LONG``)
    frame_rate : float
        Frames per second of ``features`` (``FeatureConfig.frame_rate``).

    Returns
    -------
    windows : float32 (n, F, win_frames)
        A copy. A clip shorter than one window is zero-padded at the end to one window (0.0 is
        silence / no activation in normalised features).
    starts_s : float64 (n,)
        Start of each window in seconds (``start_frame / frame_rate``).

    Example
    -------
    >>> import numpy as np
    >>> w, s = make_windows(np.zeros((84, 200), np.float32), SHORT, 31.25)
    >>> w.shape, float(s[1])
    ((14, 84, 94), 0.256)
    """
    if not isinstance(window, WindowConfig):
        raise TypeError(f"window must be a WindowConfig (e.g. SHORT or LONG), got {type(window).__name__}")
    if not isinstance(features, np.ndarray):
        raise TypeError(f"features must be a numpy array (F, T), got {type(features).__name__}")
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (F, T), got shape {features.shape}")
    if features.shape[0] < 1 or features.shape[1] < 1:
        raise ValueError(f"features must have at least one row and one frame, got shape {features.shape}")
    if features.dtype.kind != "f":
        raise TypeError(f"features must be a float array, got {features.dtype}")
    win, _ = window.frames(frame_rate)
    n_feat, n_frames = features.shape
    starts = window_starts(n_frames, window, frame_rate)
    x = features.astype(np.float32, copy=False)
    if n_frames < win:
        x = np.pad(x, ((0, 0), (0, win - n_frames)))
    view = np.lib.stride_tricks.sliding_window_view(x, win, axis=1)  # (F, T - win + 1, win)
    windows = np.ascontiguousarray(view[:, starts].transpose(1, 0, 2))
    return windows, starts.astype(np.float64) / float(frame_rate)
