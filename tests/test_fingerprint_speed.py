"""The fast fingerprinting path: the encoder's inference copy (BatchNorm folded, channels last) gives the
reference fingerprints, the Fingerprinter keeps it in step with the model's weights, bf16 is opt-in,
torch's threads are capped to the CPUs the process may use, and importing chadml makes idle OpenMP
threads sleep. No wall-clock assertions: speed is measured by bench/bench_fingerprint.py."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from chadml.errors import UsageError
from chadml.features import SHORT, FeatureConfig
from chadml.models import threads
from chadml.models.encoder import (PRECISIONS, Fingerprinter, ResNet18Encoder, bf16_supported, fingerprint,
                                   precision_from_env)

RTOL, ATOL = 1e-4, 1e-6


def _trained_like(width: int = 8, seed: int = 0) -> ResNet18Encoder:
    """An encoder with non-trivial BatchNorm statistics and affine parameters (as after training)."""
    torch.manual_seed(seed)
    m = ResNet18Encoder(width=width)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.3, 3.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.2)
    return m.eval()


@pytest.fixture(scope="module")
def model():
    return _trained_like()


@pytest.fixture(scope="module")
def song():
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 6) / 16000
    f0 = 220 * 2 ** (rng.integers(0, 12, t.size // 4000 + 1).repeat(4000)[:t.size] / 12)
    return (0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_inference_copy_matches_model(model):
    x = torch.randn(5, 84, 94)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = model.inference_copy()
    with torch.no_grad():
        ref = model(x)
        for inp in (x, x.unsqueeze(1), x.unsqueeze(1).contiguous(memory_format=torch.channels_last)):
            assert torch.allclose(fast(inp), ref, rtol=RTOL, atol=ATOL)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert fast.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not fast.training and not any(p.requires_grad for p in fast.parameters())
    assert fast.dim == model.dim and fast.config() == model.config()
    # the original is untouched: same weights, still has its BatchNorms, still trainable
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("shape", [(84, 25), (84, 250)])
def test_inference_copy_other_window_sizes(model, shape):
    x = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    assert np.allclose(fingerprint(model.inference_copy(), x), fingerprint(model, x), rtol=RTOL, atol=ATOL)


def test_fast_fingerprinter_matches_reference(model, song):
    fast = Fingerprinter(model, FeatureConfig(), SHORT)
    ref = Fingerprinter(model, FeatureConfig(), SHORT, fast=False)
    assert fast.fast and not ref.fast
    assert ref.encoder() is model and fast.encoder() is not model
    a, sa = fast.from_audio(song)
    b, sb = ref.from_audio(song)
    assert a.shape == b.shape and a.dtype == np.float32
    assert np.array_equal(sa, sb) and np.allclose(a, b, rtol=RTOL, atol=ATOL)
    batch_fast = fast.from_audio_batch([song, song[:16000 * 4]])
    batch_ref = ref.from_audio_batch([song, song[:16000 * 4]])
    for (fa, _), (fb, _) in zip(batch_fast, batch_ref):
        assert np.allclose(fa, fb, rtol=RTOL, atol=ATOL)


def test_fast_copy_follows_weight_changes(song):
    m = _trained_like(seed=3)
    fp = Fingerprinter(m, FeatureConfig(), SHORT)
    first = fp.encoder()
    assert fp.encoder() is first                      # reused while the weights stay
    before, _ = fp.from_audio(song)
    with torch.no_grad():                              # an optimizer step changes weights in place
        m.layer1[0].conv1.weight.mul_(1.5)
    assert fp.encoder() is not first
    after, _ = fp.from_audio(song)
    ref, _ = Fingerprinter(m, FeatureConfig(), SHORT, fast=False).from_audio(song)
    assert not np.allclose(after, before, rtol=RTOL, atol=ATOL)
    assert np.allclose(after, ref, rtol=RTOL, atol=ATOL)
    m.load_state_dict(_trained_like(seed=4).state_dict())   # loading new weights, too
    ref, _ = Fingerprinter(m, FeatureConfig(), SHORT, fast=False).from_audio(song)
    assert np.allclose(fp.from_audio(song)[0], ref, rtol=RTOL, atol=ATOL)


def test_other_models_run_as_they_are():
    class Tiny(torch.nn.Module):
        dim = 4

        def forward(self, x):
            return torch.nn.functional.normalize(x.flatten(1)[:, :4] + 1.0, dim=1)

    m = Tiny()
    fp = Fingerprinter(m, FeatureConfig(), SHORT)
    assert fp.encoder() is m


def test_precision(model, song):
    with pytest.raises(ValueError, match="precision"):
        Fingerprinter(model, FeatureConfig(), SHORT, precision="fp16")
    assert PRECISIONS == ("fp32", "bf16", "int8")
    ref, _ = Fingerprinter(model, FeatureConfig(), SHORT).from_audio(song)
    bf, _ = Fingerprinter(model, FeatureConfig(), SHORT, precision="bf16").from_audio(song)
    assert bf.dtype == np.float32 and np.allclose(np.linalg.norm(bf, axis=1), 1.0, atol=1e-2)
    if bf16_supported("cpu"):   # lossy but close: cosine to the fp32 rows
        assert float((bf * ref).sum(1).min()) > 0.98
    else:                       # without native bf16 it runs fp32
        assert np.array_equal(bf, ref)
    assert bf16_supported("meta") is False


def test_precision_from_env(monkeypatch, model):
    assert precision_from_env({}) == "fp32"
    assert precision_from_env({"CHAD_PRECISION": " BF16 "}) == "bf16"
    with pytest.raises(UsageError, match="CHAD_PRECISION"):
        precision_from_env({"CHAD_PRECISION": "int4"})
    monkeypatch.setenv("CHAD_PRECISION", "bf16")
    assert Fingerprinter(model, FeatureConfig(), SHORT).precision == "bf16"
    assert Fingerprinter(model, FeatureConfig(), SHORT, precision="fp32").precision == "fp32"   # argument wins
    monkeypatch.delenv("CHAD_PRECISION")
    assert Fingerprinter(model, FeatureConfig(), SHORT).precision == "fp32"


def test_available_cpus_and_quota(monkeypatch):
    n = threads.available_cpus()
    assert 1 <= n <= len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 0.5)
    assert threads.available_cpus() == 1
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1000.0)
    assert threads.available_cpus() == n


def test_threads_from_env():
    assert threads.threads_from_env({}) is None
    assert threads.threads_from_env({"CHAD_THREADS": " "}) is None
    assert threads.threads_from_env({"CHAD_THREADS": "2"}) == 2
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(UsageError, match="CHAD_THREADS"):
            threads.threads_from_env({"CHAD_THREADS": bad})


def test_cap_threads(monkeypatch):
    old = torch.get_num_threads()
    try:
        monkeypatch.setenv("CHAD_THREADS", "1")
        assert threads.cap_threads(force=True) == 1 == torch.get_num_threads()
        monkeypatch.setenv("CHAD_THREADS", "2")
        assert threads.cap_threads() == 1              # once per process unless forced
        monkeypatch.delenv("CHAD_THREADS")
        torch.set_num_threads(1)
        assert threads.cap_threads(force=True) == 1    # never raised above what the caller chose
        monkeypatch.setattr(threads, "available_cpus", lambda: 1)
        torch.set_num_threads(2)
        assert threads.cap_threads(force=True) == 1    # lowered to the CPUs the process may use
    finally:
        torch.set_num_threads(old)


def _env_after_import(env: dict) -> str:
    code = "import os, chadml, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_chadml_makes_openmp_threads_sleep():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _env_after_import(env) == "PASSIVE"
    assert _env_after_import({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"   # the user's setting wins
