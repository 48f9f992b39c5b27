"""chadml.models.encoder: the ResNet18 fingerprint encoder, batched fingerprinting and the Fingerprinter."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from chadml.models.encoder import BasicBlock, Fingerprinter, ResNet18Encoder, fingerprint, model_device

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ResNet18Encoder(width=8).eval()


def test_output_shape_and_unit_norm(model):
    x = torch.randn(4, 84, 94)
    z = model(x)
    assert z.shape == (4, 128) and z.dtype == torch.float32
    assert torch.allclose(z.norm(dim=1), torch.ones(4), atol=1e-5)
    # (B, 1, F, Wf) is the same input as (B, F, Wf)
    assert torch.equal(model(x.unsqueeze(1)), z)


def test_resnet18_layout():
    m = ResNet18Encoder()  # the vanilla width: torchvision resnet18's conv layers + a 512 -> 128 head
    n_params = sum(p.numel() for p in m.parameters())
    # torchvision resnet18 has 11,689,512 parameters with a 3-channel stem and a 512 -> 1000 fc;
    # 1 input channel removes 2*64*7*7 and the 512 -> 128 head replaces 513,000 by 65,664.
    assert n_params == 11_689_512 - 2 * 64 * 49 - 513_000 + 65_664
    blocks = [b for b in m.modules() if isinstance(b, BasicBlock)]
    assert len(blocks) == 8
    assert [m.layer1[0].conv1.out_channels, m.layer2[0].conv1.out_channels, m.layer3[0].conv1.out_channels,
            m.layer4[0].conv1.out_channels] == [64, 128, 256, 512]
    assert m.conv1.kernel_size == (7, 7) and m.conv1.stride == (2, 2)


def test_gradients_flow_to_every_parameter():
    torch.manual_seed(1)
    m = ResNet18Encoder(width=8).train()
    x = torch.randn(6, 84, 40, requires_grad=True)
    z = m(x)
    # a contrastive-like objective: pull 0-1 together, push 0-2 apart
    loss = -(z[0] * z[1]).sum() + (z[0] * z[2]).sum()
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_eval_is_deterministic_and_batch_independent(model):
    torch.manual_seed(2)
    x = torch.randn(5, 84, 94)
    a, b = model(x), model(x)
    assert torch.equal(a, b)
    single = torch.cat([model(x[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(single.detach().numpy(), a.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("shape", [(84, 25), (80, 25), (84, 94), (80, 75), (84, 250), (84, 1), (3, 5)])
def test_small_and_large_inputs_survive_the_strides(model, shape):
    z = model(torch.randn(2, *shape))
    assert z.shape == (2, 128)
    assert torch.isfinite(z).all()
    # the time axis is not pooled away: different content in different frames gives different outputs
    if shape[1] >= 25:
        x = torch.zeros(1, *shape)
        x[0, :, : shape[1] // 2] = 1.0
        y = torch.zeros(1, *shape)
        y[0, :, shape[1] // 2:] = 1.0
        assert not torch.allclose(model(x), model(y), atol=1e-4)


def test_constant_input_gives_finite_unit_vector(model):
    z = model(torch.zeros(2, 84, 94))
    assert torch.isfinite(z).all()
    assert torch.allclose(z.norm(dim=1), torch.ones(2), atol=1e-5)


def test_config_round_trip(model):
    cfg = model.config()
    assert cfg == {"arch": "resnet18", "width": 8, "dim": 128, "in_channels": 1}
    m2 = ResNet18Encoder.from_config(cfg)
    m2.load_state_dict(model.state_dict())
    m2.eval()
    x = torch.randn(3, 84, 94)
    assert torch.equal(m2(x), model(x))
    m3 = ResNet18Encoder.from_config({"width": 4, "dim": 16, "in_channels": 2})
    assert m3(torch.randn(2, 2, 20, 30)).shape == (2, 16)


def test_bad_arguments(model):
    with pytest.raises(TypeError, match="width"):
        ResNet18Encoder(width=8.0)
    with pytest.raises(ValueError, match="dim"):
        ResNet18Encoder(dim=0)
    with pytest.raises(ValueError, match="unknown keys"):
        ResNet18Encoder.from_config({"width": 8, "depth": 34})
    with pytest.raises(ValueError, match="arch"):
        ResNet18Encoder.from_config({"arch": "resnet50"})
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(84, 94))
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(2, 3, 84, 94))
    with pytest.raises(TypeError, match="windows"):
        fingerprint(model, [[1.0]])
    with pytest.raises(ValueError, match=r"\(n, F, Wf\)"):
        fingerprint(model, np.zeros((84, 94), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        fingerprint(model, np.full((1, 84, 94), np.nan, np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        fingerprint(model, np.zeros((1, 84, 94), np.float32), batch_size=0)


def test_fingerprint_batching_equals_unbatched(model):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((13, 84, 30)).astype(np.float32)
    whole = fingerprint(model, w, batch_size=256)
    assert whole.shape == (13, 128) and whole.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    for bs in (1, 4, 5):
        np.testing.assert_allclose(fingerprint(model, w, batch_size=bs), whole, atol=1e-5)
    ref = model(torch.from_numpy(w)).detach().numpy()
    np.testing.assert_allclose(whole, ref, atol=1e-5)
    # float64 and integer windows are accepted (converted to float32)
    np.testing.assert_allclose(fingerprint(model, w.astype(np.float64)), whole, atol=1e-5)
    assert fingerprint(model, np.zeros((0, 84, 30), np.float32)).shape == (0, 128)


def test_fingerprint_restores_train_mode_and_uses_no_grad():
    m = ResNet18Encoder(width=8).train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    fingerprint(m, np.random.default_rng(0).standard_normal((4, 84, 30)).astype(np.float32))
    assert m.training
    # eval mode: BatchNorm running statistics were not updated
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert model_device(m) == torch.device("cpu")


# -- Fingerprinter: plumbing through a stand-in feature module (the real one is chadml.features) -----

class _Cfg:
    sr = 16000
    hop_length = 512
    frame_rate = 16000 / 512
    n_features = 12


class _Win:
    window_s, step_s = 1.0, 0.5


def _fake_features_module():
    mod = types.ModuleType("chadml.features")

    def extract_features(audio, config):
        # a stand-in "spectrogram": frame energies in 12 bands of a 512-hop framing
        n = len(audio) // config.hop_length
        frames = np.asarray(audio[: n * config.hop_length], np.float32).reshape(n, config.hop_length)
        mag = np.abs(np.fft.rfft(frames, axis=1))[:, 1:1 + 12 * 8].reshape(n, 12, 8).sum(-1)
        return np.log1p(mag).T.astype(np.float32)

    def make_windows(features, window, frame_rate):
        wf = int(round(window.window_s * frame_rate))
        sf = int(round(window.step_s * frame_rate))
        T = features.shape[1]
        starts = np.arange(0, max(T - wf, -1) + 1, sf)
        w = np.stack([features[:, s:s + wf] for s in starts]) if len(starts) else \
            np.zeros((0, features.shape[0], wf), np.float32)
        return w, starts / frame_rate

    mod.extract_features, mod.make_windows = extract_features, make_windows
    return mod


@pytest.fixture
def fake_features(monkeypatch):
    import chadml.models.encoder as enc
    mod = _fake_features_module()
    monkeypatch.setattr(enc, "extract_features", mod.extract_features)
    monkeypatch.setattr(enc, "make_windows", mod.make_windows)
    return mod


def test_fingerprinter_from_audio(model, fake_features):
    rng = np.random.default_rng(4)
    audio = rng.standard_normal(16000 * 3).astype(np.float32)
    fp = Fingerprinter(model, _Cfg(), _Win())
    fps, starts = fp.from_audio(audio)
    feats = fake_features.extract_features(audio, _Cfg())
    w, s = fake_features.make_windows(feats, _Win(), _Cfg.frame_rate)
    assert fps.shape == (len(w), 128) and fps.dtype == np.float32 and len(w) >= 3
    np.testing.assert_allclose(starts, s)
    np.testing.assert_allclose(fps, fingerprint(model, w), atol=1e-6)
    np.testing.assert_allclose(fp.from_features(feats)[0], fps, atol=1e-6)
    # another sample rate is resampled to the config's 16 kHz first
    fps8, _ = fp.from_audio(audio[::2], sr=8000)
    assert fps8.shape == fps.shape


def test_fingerprinter_batch_equals_single(model, fake_features):
    rng = np.random.default_rng(5)
    audios = [rng.standard_normal(n).astype(np.float32) for n in (16000 * 2, 16000 * 3, 100, 16000 * 4)]
    fp = Fingerprinter(model, _Cfg(), _Win(), batch_size=3)
    batch = fp.from_audio_batch(audios)
    assert len(batch) == 4
    assert batch[2][0].shape == (0, 128)  # too short for one window
    for (f, s), a in zip(batch, audios):
        f1, s1 = fp.from_audio(a)
        np.testing.assert_allclose(f, f1, atol=1e-5)
        np.testing.assert_allclose(s, s1)
    assert fp.from_audio_batch([]) == []
    with pytest.raises(TypeError, match="sequence"):
        fp.from_audio_batch(audios[0])


def test_fingerprinter_model_id(model):
    assert Fingerprinter(model, _Cfg(), _Win()).model_id is None
    assert Fingerprinter(model, _Cfg(), _Win(), model_id="abc123").model_id == "abc123"


def test_fingerprinter_with_real_features(model):
    features = pytest.importorskip("chadml.features")
    sr = 16000
    t = np.arange(sr * 4) / sr
    audio = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * t))).astype(np.float32)
    cfg = features.FeatureConfig(kind="cqt")
    fp = Fingerprinter(model, cfg, features.SHORT)
    fps, starts = fp.from_audio(audio)
    w, s = features.make_windows(features.extract_features(audio, cfg), features.SHORT, cfg.frame_rate)
    assert fps.shape == (len(w), 128) and len(w) > 0
    np.testing.assert_allclose(starts, s)
    np.testing.assert_allclose(np.linalg.norm(fps, axis=1), 1.0, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fingerprint_on_cuda_matches_cpu(model):
    w = np.random.default_rng(6).standard_normal((20, 84, 94)).astype(np.float32)
    cpu = fingerprint(model, w)
    m = ResNet18Encoder.from_config(model.config())
    m.load_state_dict(model.state_dict())
    gpu = fingerprint(m, w, device="cuda", batch_size=7)
    assert model_device(m).type == "cuda"
    np.testing.assert_allclose(gpu, cpu, atol=2e-3)
