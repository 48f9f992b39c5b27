"""The encoder's timbre front ends (chadml.models.front) against plain numpy references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chadml.models.encoder import ResNet18Encoder
from chadml.models.checkpoint import model_id
from chadml.models.front import FRONTS, TimbreFront


def ref_whiten(x: np.ndarray, bpo: int = 12) -> np.ndarray:
    """relu(x - the mean of the bins within half an octave), per frame, edges averaged over what exists."""
    b, f, t = x.shape
    width = bpo + 1 if bpo % 2 == 0 else bpo
    half = width // 2
    out = np.zeros_like(x, dtype=np.float64)
    for k in range(f):
        lo, hi = max(0, k - half), min(f, k + half + 1)
        env = x[:, lo:hi, :].mean(axis=1)
        out[:, k, :] = np.maximum(x[:, k, :] - env, 0.0)
    return out


def ref_salience(x: np.ndarray, bpo: int = 12) -> np.ndarray:
    w = ref_whiten(x, bpo)
    b, f, t = x.shape
    s = np.zeros_like(w)
    for h in range(1, 9):
        off = int(round(bpo * math.log2(h)))
        for k in range(f):
            if k + off < f:
                s[:, k, :] += 0.8 ** (h - 1) * w[:, k + off, :]
    top = s.reshape(b, -1).max(axis=1).reshape(b, 1, 1)
    return s / np.maximum(top, 1e-6)


@settings(deadline=None, max_examples=30)
@given(b=st.integers(1, 3), f=st.integers(1, 40), t=st.integers(1, 6), seed=st.integers(0, 2 ** 16))
def test_fronts_match_reference(b, f, t, seed):
    x = np.random.default_rng(seed).random((b, f, t)).astype(np.float32)
    x[x < 0.3] = 0.0                                         # silent bins, as in the dB-normalised CQT
    w = TimbreFront("whiten")(torch.from_numpy(x)).numpy()
    assert w.shape == (b, 1, f, t)
    np.testing.assert_allclose(w[:, 0], ref_whiten(x), atol=1e-6)
    s = TimbreFront("salience")(torch.from_numpy(x)).numpy()
    assert s.shape == (b, 2, f, t)
    np.testing.assert_allclose(s[:, 0], ref_whiten(x), atol=1e-6)
    np.testing.assert_allclose(s[:, 1], ref_salience(x), atol=1e-5)
    none = TimbreFront("none")(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(none[:, 0], x)


def test_silence_stays_silent_and_finite():
    x = torch.zeros(2, 84, 10)
    y = TimbreFront("salience")(x)
    assert torch.isfinite(y).all() and float(y.abs().max()) == 0.0


def _harmonic_frame(f0_bin: int, envelope) -> np.ndarray:
    """A dB-normalised CQT frame of a harmonic voice: partial h at f0_bin + 12 log2 h, level from ``envelope``."""
    x = np.zeros(84, np.float32)
    for h in range(1, 13):
        k = f0_bin + int(round(12 * math.log2(h)))
        if k < 84:
            x[k] = max(x[k], envelope(k))
    return x


def test_salience_finds_the_fundamental_whatever_the_timbre():
    """A bright voice (a formant far above f0, a weak fundamental) and a dark one: the raw frame's loudest
    bin is a different partial for each; the salience peaks at the fundamental for both."""
    f0 = 30
    dark = _harmonic_frame(f0, lambda k: 1.0 - 0.012 * (k - f0))
    bright = _harmonic_frame(f0, lambda k: 0.55 + 0.45 * math.exp(-((k - (f0 + 31)) / 4.0) ** 2))
    x = torch.from_numpy(np.stack([dark, bright])[:, :, None].repeat(3, axis=2))
    raw_peaks = x[:, :, 0].argmax(dim=1).tolist()
    assert raw_peaks[0] == f0 and raw_peaks[1] != f0
    sal = TimbreFront("salience")(x)[:, 1, :, 0]
    assert sal.argmax(dim=1).tolist() == [f0, f0]


def test_encoder_config_round_trip_and_ids():
    torch.manual_seed(0)
    m = ResNet18Encoder(width=4, front="salience")
    assert m.config()["front"] == "salience" and m.conv1.in_channels == 2
    m2 = ResNet18Encoder.from_config(m.config())
    m2.load_state_dict(m.state_dict())
    x = torch.rand(3, 84, 20)
    m.eval(), m2.eval()
    assert torch.allclose(m(x), m2(x))
    assert torch.allclose(m.inference_copy()(x), m(x), atol=1e-5)
    plain = ResNet18Encoder(width=4)
    assert "front" not in plain.config()      # the paper's network: model ids of older checkpoints unchanged
    assert ResNet18Encoder.from_config({"arch": "resnet18", "width": 4, "dim": 128, "in_channels": 1}).front is None
    a = model_id(plain.config(), {}, {}, plain.state_dict())
    b = model_id({**plain.config(), "front": "whiten"}, {}, {}, plain.state_dict())
    assert a != b


@pytest.mark.parametrize("kwargs, match", [
    ({"front": "cepstrum"}, "front must be one of"),
    ({"front": "whiten", "in_channels": 2}, "needs in_channels=1"),
])
def test_bad_front(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet18Encoder(width=4, **kwargs)


def test_front_input_checks():
    with pytest.raises(ValueError, match="one channel"):
        TimbreFront("whiten")(torch.zeros(1, 2, 84, 5))
    with pytest.raises(ValueError, match="must be"):
        TimbreFront("whiten")(torch.zeros(84))
    assert set(FRONTS) == {"none", "whiten", "salience"}


@pytest.mark.parametrize("kind", ["salience", "whiten"])
def test_fingerprinter_runs_the_front_once_per_frame_with_the_same_fingerprints(kind):
    """from_features puts a clip's frames through the front once and cuts windows after: the same
    fingerprints as the windows through the whole model, also for a clip shorter than one window."""
    from chadml.features import SHORT, FeatureConfig
    from chadml.models import Fingerprinter
    torch.manual_seed(1)
    m = ResNet18Encoder(width=4, front=kind).eval()
    fp = Fingerprinter(m, FeatureConfig(), SHORT, batch_size=7)
    rng = np.random.default_rng(2)
    for frames in (300, 40):
        feats = rng.random((84, frames)).astype(np.float32)
        a, sa = fp.from_features(feats)
        w, sb = fp.windows(feats)
        b = fp.encode(w)
        assert a.shape == b.shape and np.array_equal(sa, sb)
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        fp.from_features(np.full((84, 200), np.nan, np.float32))
