"""Input features of the encoder: the CQT and the CREPE-f0 activations, and analysis windows.

The paper (section 5.1) uses two kinds of features, both computed on 16 kHz mono audio:

- ``"cqt"``: the constant-Q transform, 12 bins per octave, 7 octaves (84 bins from C1 = 32.70 Hz
  to B7 = 3951 Hz), Hann window, hop 512 (31.25 frames per second). :class:`CQT` computes it in
  torch (CPU or GPU, batched) with the magnitudes of ``librosa.cqt`` (same filters and scaling).
- ``"crepe"``: CREPE's 360-bin pitch activations (10 ms hop), trimmed to 3 octaves around the
  clip's mean pitch and downscaled to 80 bins x T/4 frames (25 frames per second); see
  :func:`chadml.features.crepe.crepe_features`.

Normalisation (what the encoder sees). A CQT magnitude ``M`` of one clip becomes
``clip((20 log10(max(M, 1e-10)) - ref_db + top_db) / top_db, 0, 1)`` with ``ref_db`` the clip's
loudest bin (so the loudest bin is 1.0 and everything ``top_db`` = 80 dB or more below it is 0.0):
log compression, then per-clip normalisation to ``[0, 1]`` that is invariant to the clip's gain.
An all-zero clip gives all zeros. CREPE activations are probabilities in ``[0, 1]`` already and
are used as they are. In both kinds 0.0 means "nothing here", which is the value windows are
padded with.

The modules: :mod:`~chadml.features.base` (input checks), :mod:`~chadml.features.cqt`,
:mod:`~chadml.features.crepe`, :mod:`~chadml.features.extract` (:class:`FeatureConfig`,
:func:`extract_features`), :mod:`~chadml.features.windows` and :mod:`~chadml.features.voicing` (where a
recording is voiced: queries and songs are trimmed to it). This package only re-exports them.

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

from .base import check_audio, resolve_device
from .cqt import C1_HZ, CQT, cqt_frequencies, log_normalize
from .extract import FeatureConfig, extract_features, extract_features_batch
from .voicing import VoicedPart, VoicingConfig, find_voiced, trim_to_voiced
from .windows import LONG, SHORT, WindowConfig, make_windows, window_starts

__all__ = [
    "FeatureConfig", "WindowConfig", "SHORT", "LONG", "CQT", "cqt_frequencies", "log_normalize",
    "check_audio", "extract_features", "extract_features_batch", "window_starts", "make_windows",
    "resolve_device", "C1_HZ", "VoicingConfig", "VoicedPart", "find_voiced", "trim_to_voiced",
]
