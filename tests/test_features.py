"""chadml.features: configs, the torch CQT against librosa, normalisation, extraction, windows."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from chadml.features import (CQT, LONG, SHORT, C1_HZ, FeatureConfig, WindowConfig, check_audio,
                             cqt_frequencies, extract_features, extract_features_batch, log_normalize,
                             make_windows, window_starts)

SR = 16000


def chirp(duration=6.0, f0=35.0, f1=3900.0, sr=SR):
    t = np.arange(int(duration * sr)) / sr
    k = np.log(f1 / f0) / duration
    return (0.5 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)).astype(np.float32)


def sung_tune(sr=SR, seed=0):
    """A synthetic voice singing a short tune: harmonic source, vowel-like formants, vibrato, pauses."""
    rng = np.random.default_rng(seed)
    midi = [60, 62, 64, 65, 67, 67, 69, 67, 65, 64, 62, 60, 55, 57]
    out = []
    formants = np.array([[700, 1200, 2600], [400, 2000, 2550], [300, 870, 2250]])
    for i, m in enumerate(midi):
        dur = rng.choice([0.25, 0.4, 0.6])
        t = np.arange(int(dur * sr)) / sr
        f0 = 440.0 * 2 ** ((m - 69) / 12) * 2 ** (0.3 * np.sin(2 * np.pi * 5.5 * t) / 12)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        y = np.zeros_like(t)
        fm = formants[i % 3]
        for h in range(1, 25):
            fh = h * f0
            gain = sum(np.exp(-0.5 * ((fh - f) / 120.0) ** 2) for f in fm) + 0.05 / h
            y += np.where(fh < sr / 2, gain, 0.0) * np.sin(h * phase)
        env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.03)
        out += [y * env, np.zeros(int(0.05 * sr))]
    y = np.concatenate(out)
    y += 0.002 * rng.standard_normal(len(y))
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


def librosa_cqt(y):
    librosa = pytest.importorskip("librosa")
    return np.abs(librosa.cqt(y, sr=SR, hop_length=512, fmin=C1_HZ, n_bins=84, bins_per_octave=12))


def frame_correlations(a, b):
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))


@pytest.fixture(scope="module")
def cqt():
    return CQT()


# ---------------------------------------------------------------- configs

def test_feature_config_defaults_and_roundtrip():
    cqt_cfg = FeatureConfig()
    assert (cqt_cfg.kind, cqt_cfg.sr, cqt_cfg.hop_length, cqt_cfg.n_bins,
            cqt_cfg.bins_per_octave) == ("cqt", 16000, 512, 84, 12)
    assert cqt_cfg.fmin == pytest.approx(32.70, abs=0.01)
    assert cqt_cfg.frame_rate == 31.25 and cqt_cfg.n_features == 84
    crepe_cfg = FeatureConfig(kind="crepe", crepe_model="tiny")
    assert crepe_cfg.frame_rate == 25.0 and crepe_cfg.n_features == 80
    for cfg in (cqt_cfg, crepe_cfg):
        d = cfg.to_dict()
        assert FeatureConfig.from_dict(d) == cfg
        assert FeatureConfig.from_dict(json.loads(json.dumps(d))) == cfg
    d = FeatureConfig(hop_length=np.int64(256)).to_dict()
    assert type(d["hop_length"]) is int and json.dumps(d)
    # the top bin (B7 = 3951 Hz) stays under Nyquist at 16 kHz
    assert cqt_frequencies()[-1] == pytest.approx(3951.07, abs=0.01)


@pytest.mark.parametrize("bad, err, match", [
    ({"kind": "mfcc"}, ValueError, "kind"),
    ({"crepe_model": "large"}, ValueError, "crepe_model"),
    ({"hop_length": 500}, ValueError, "divisible"),
    ({"n_bins": 96}, ValueError, "Nyquist"),
    ({"sr": 16000.0}, TypeError, "sr"),
    ({"fmin": -1.0}, ValueError, "fmin"),
    ({"kind": "crepe", "sr": 22050}, ValueError, "16000"),
])
def test_feature_config_rejects_bad_values(bad, err, match):
    with pytest.raises(err, match=match):
        FeatureConfig(**bad)
    with pytest.raises(err, match=match):
        FeatureConfig.from_dict({**FeatureConfig().to_dict(), **bad})


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown key.*'n_mels'"):
        FeatureConfig.from_dict({**FeatureConfig().to_dict(), "n_mels": 128})
    with pytest.raises(ValueError, match="unknown key"):
        WindowConfig.from_dict({"window_s": 3.0, "step_s": 0.25, "hop": 1})
    with pytest.raises(TypeError):
        FeatureConfig.from_dict("cqt")


def test_window_config():
    assert SHORT == WindowConfig(3.0, 0.25) and LONG == WindowConfig(8.0, 0.64)
    assert SHORT.frames(31.25) == (94, 7.8125)
    assert LONG.frames(31.25) == (250, 20.0)
    assert SHORT.frames(25.0) == (75, 6.25) and LONG.frames(25.0) == (200, 16.0)
    assert WindowConfig.from_dict(LONG.to_dict()) == LONG
    with pytest.raises(ValueError, match="window_s"):
        WindowConfig(0.0, 0.25)


# ---------------------------------------------------------------- CQT vs librosa

@pytest.mark.parametrize("signal", ["chirp", "sung"])
def test_cqt_matches_librosa(cqt, signal):
    """Per-frame correlation >= 0.99 with librosa.cqt on every frame within 40 dB of the loudest.

    Quieter frames (the 50 ms pauses of the tune) are compared with librosa's exact transform
    (sparsity=0): librosa's default drops 1% of each filter's spectrum, which leaks loud notes
    50 ms away into a silent frame at about -60 dB; ours does not sparsify.
    """
    librosa = pytest.importorskip("librosa")
    y = chirp() if signal == "chirp" else sung_tune()
    ref = librosa_cqt(y)
    ours = cqt(torch.from_numpy(y))[0].numpy()
    assert ours.shape == ref.shape == (84, 1 + len(y) // 512)
    energy = ref.sum(axis=0)
    loud = energy >= 1e-2 * energy.max()
    assert loud.sum() > 0.8 * ref.shape[1]
    corr = frame_correlations(ref[:, loud], ours[:, loud])
    assert corr.min() >= 0.99, corr.min()
    # same scaling too (librosa's scale=True): the strong bins agree to a few percent
    strong = (ref > 0.1 * ref.max(axis=0, keepdims=True)) & loud
    ratio = ours[strong] / ref[strong]
    assert np.median(np.abs(ratio - 1)) < 0.01
    assert np.percentile(np.abs(ratio - 1), 95) < 0.05
    exact = np.abs(librosa.cqt(y, sr=SR, hop_length=512, fmin=C1_HZ, n_bins=84, bins_per_octave=12, sparsity=0))
    audible = energy >= 1e-3 * energy.max()
    audible[-1] = False  # the last frame is where the two resamplers' edge handling differs
    assert frame_correlations(exact[:, audible], ours[:, audible]).min() >= 0.99
    assert frame_correlations(exact[:, loud], ours[:, loud]).min() >= 0.999


def test_cqt_pure_tones_peak_at_their_bin(cqt):
    freqs = cqt_frequencies()
    t = np.arange(SR) / SR
    for k in (0, 13, 40, 57, 83):
        y = torch.from_numpy(np.sin(2 * np.pi * freqs[k] * t).astype(np.float32))
        mag = cqt(y)[0]
        assert int(mag[:, 10:-10].mean(dim=1).argmax()) == k


@pytest.mark.parametrize("n", [512, 1000, 16000, 16001, 23457])
def test_cqt_shapes_and_batch_equals_single(cqt, n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n + 3000).astype(np.float32)
    single = cqt(torch.from_numpy(a))
    assert single.shape == (1, 84, 1 + n // 512)
    batch = torch.zeros(2, n + 3000)
    batch[0, :n] = torch.from_numpy(a)
    batch[1] = torch.from_numpy(b)
    both = cqt(batch)
    assert both.shape == (2, 84, 1 + (n + 3000) // 512)
    # zero padding at the end does not change the padded clip's own frames
    torch.testing.assert_close(both[0, :, : single.shape[-1]], single[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both[1], cqt(torch.from_numpy(b))[0], rtol=1e-4, atol=1e-5)


def test_cqt_bad_input(cqt):
    with pytest.raises(TypeError, match="floating"):
        cqt(torch.zeros(100, dtype=torch.int16))
    with pytest.raises(ValueError, match="shape"):
        cqt(torch.zeros(1, 2, 100))
    with pytest.raises(TypeError, match="Tensor"):
        cqt(np.zeros(100, np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cqt_gpu_equals_cpu(cqt):
    y = torch.from_numpy(sung_tune())
    gpu = CQT().cuda()(y.cuda()).cpu()
    torch.testing.assert_close(gpu, cqt(y), rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- normalisation and extraction

def test_log_normalize():
    mag = np.array([[1.0, 0.1, 1e-2], [1e-3, 1e-5, 0.0]], np.float32)  # 0, -20, -40, -60, -100 dB
    out = log_normalize(mag)
    np.testing.assert_allclose(out, [[1.0, 0.75, 0.5], [0.25, 0.0, 0.0]], atol=1e-6)
    # gain invariant; an all-zero clip gives zeros; batches normalise each clip alone
    np.testing.assert_allclose(log_normalize(mag * 37.0), out, atol=1e-6)
    assert not log_normalize(np.zeros((3, 4), np.float32)).any()
    batch = torch.from_numpy(np.stack([mag, mag * 1e-3]))
    torch.testing.assert_close(log_normalize(batch)[1], torch.from_numpy(out))


def test_extract_features_cqt():
    y = sung_tune()
    cfg = FeatureConfig()
    f = extract_features(y, cfg, device="cpu")
    assert f.dtype == np.float32 and f.shape == (84, 1 + len(y) // 512)
    assert f.max() == pytest.approx(1.0) and f.min() >= 0.0
    librosa = pytest.importorskip("librosa")
    exact = np.abs(librosa.cqt(y, sr=SR, hop_length=512, fmin=C1_HZ, n_bins=84, bins_per_octave=12, sparsity=0))
    expected = log_normalize(exact.astype(np.float32))
    assert np.abs(f - expected).mean() < 0.005
    # float64 input and a louder copy give the same features
    np.testing.assert_allclose(extract_features(3 * y.astype(np.float64), cfg, device="cpu"), f, atol=1e-4)
    assert not extract_features(np.zeros(4000, np.float32), cfg, device="cpu").any()


def test_extract_features_batch_equals_single():
    rng = np.random.default_rng(1)
    clips = [sung_tune(seed=s)[: int(n)] for s, n in zip(range(4), rng.integers(600, 60000, size=4))]
    cfg = FeatureConfig()
    batch = extract_features_batch(clips, cfg, device="cpu", max_batch_samples=100000)
    assert len(batch) == 4
    for clip, f in zip(clips, batch):
        np.testing.assert_allclose(f, extract_features(clip, cfg, device="cpu"), atol=1e-4)
    assert extract_features_batch([], cfg) == []


@pytest.mark.parametrize("audio, err, match", [
    (np.full(4000, np.nan, np.float32), ValueError, "finite"),
    (np.zeros((2, 4000), np.float32), ValueError, "1-D"),
    (np.zeros(100, np.float32), ValueError, "too short"),
    (np.zeros(4000, np.int16), TypeError, "32768"),
    (np.zeros(4000, np.complex64), TypeError, "float32"),
    ([0.0] * 4000, TypeError, "numpy array"),
])
def test_extract_features_bad_input(audio, err, match):
    with pytest.raises(err, match=match):
        extract_features(audio, FeatureConfig(), device="cpu")


def test_extract_features_bad_config_and_batch():
    with pytest.raises(TypeError, match="FeatureConfig"):
        extract_features(np.zeros(4000, np.float32), {"kind": "cqt"})
    with pytest.raises(ValueError, match=r"audios\[1\]"):
        extract_features_batch([np.zeros(4000, np.float32), np.zeros(10, np.float32)], FeatureConfig())
    with pytest.raises(TypeError, match="list"):
        extract_features_batch(np.zeros((2, 4000), np.float32), FeatureConfig())
    assert check_audio(np.zeros(5, np.float64)).dtype == np.float32


# ---------------------------------------------------------------- windows

def test_window_starts_rule():
    starts = window_starts(200, SHORT, 31.25)
    win, step = SHORT.frames(31.25)
    np.testing.assert_array_equal(starts, np.round(np.arange(len(starts)) * step).astype(np.int64))
    assert starts[-1] + win <= 200 and round(len(starts) * step) + win > 200
    np.testing.assert_array_equal(window_starts(94, SHORT, 31.25), [0])
    np.testing.assert_array_equal(window_starts(50, SHORT, 31.25), [0])
    np.testing.assert_array_equal(window_starts(290, LONG, 31.25), [0, 20, 40])


@pytest.mark.parametrize("window, rate, n_frames", [(SHORT, 31.25, 200), (LONG, 31.25, 937), (SHORT, 25.0, 76),
                                                    (LONG, 25.0, 1000)])
def test_make_windows_are_slices(window, rate, n_frames):
    feats = np.random.default_rng(0).random((7, n_frames)).astype(np.float32)
    w, starts_s = make_windows(feats, window, rate)
    win, _ = window.frames(rate)
    assert w.dtype == np.float32 and starts_s.dtype == np.float64
    assert w.shape == (len(starts_s), 7, win) and w.flags.c_contiguous
    for i, s in enumerate(starts_s):
        f = int(round(s * rate))
        assert f == pytest.approx(s * rate)
        np.testing.assert_array_equal(w[i], feats[:, f:f + win])
    assert np.all(np.diff(starts_s) > 0)


def test_make_windows_pads_short_clip():
    feats = np.ones((84, 40), np.float32)
    w, s = make_windows(feats, SHORT, 31.25)
    assert w.shape == (1, 84, 94) and s.tolist() == [0.0]
    assert w[0, :, :40].all() and not w[0, :, 40:].any()


def test_make_windows_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        make_windows(np.zeros((2, 3, 4), np.float32), SHORT, 31.25)
    with pytest.raises(TypeError, match="WindowConfig"):
        make_windows(np.zeros((2, 300), np.float32), (3.0, 0.25), 31.25)
    with pytest.raises(ValueError, match="frame_rate"):
        make_windows(np.zeros((2, 300), np.float32), SHORT, 0.0)
