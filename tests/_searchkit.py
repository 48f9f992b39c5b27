"""Helpers shared by tests/test_index.py, test_search.py and test_evaluate.py: synthetic fingerprints,
tiny fingerprinters and melodies whose right answer is known by construction."""
from __future__ import annotations

import numpy as np

WINDOW = {"window_s": 3.0, "step_s": 0.25}
FEATURES = {"kind": "cqt", "sr": 16000}


def unit_rows(rng: np.random.Generator, n: int, dim: int = 128) -> np.ndarray:
    """``n`` random L2-normalised rows (float32)."""
    a = rng.standard_normal((n, dim)).astype(np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def random_songs(rng: np.random.Generator, n: int, lo: int = 60, hi: int = 120, dim: int = 128) -> dict:
    return {f"song{i:03d}": unit_rows(rng, int(rng.integers(lo, hi)), dim) for i in range(n)}


def fp_index(path, songs: dict, **kw):
    from chadml.index import SongIndex
    idx = SongIndex.create(path, model_id="test-model", feature_config=FEATURES, window_config=WINDOW, **kw)
    if songs:
        idx.add_fingerprint_items([(k, v, {"title": k.upper()}) for k, v in songs.items()], progress_bar=False)
    return idx


def tiny_fingerprinter(seed: int = 0, window=(3.0, 0.25)):
    import torch
    from chadml.models.encoder import Fingerprinter, ResNet18Encoder
    from chadml.features import FeatureConfig, WindowConfig
    torch.manual_seed(seed)
    return Fingerprinter(ResNet18Encoder(width=8, dim=128), FeatureConfig(), WindowConfig(*window))


def melody(rng: np.random.Generator, seconds: float, sr: int = 16000, note_s: float = 0.4) -> np.ndarray:
    """A random melody of sung-like tones (harmonics, vibrato-free), peak 0.5."""
    n_notes = int(np.ceil(seconds / note_s))
    midi = 55 + rng.integers(0, 20, n_notes)
    t = np.arange(int(note_s * sr)) / sr
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    out = []
    for m in midi:
        f = 440.0 * 2 ** ((m - 69) / 12)
        out.append(env * sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3)))
    y = np.concatenate(out)[:int(seconds * sr)]
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)
