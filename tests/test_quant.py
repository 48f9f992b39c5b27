"""Static int8 inference (chadml.models.quant): calibrated ranges stored with a model, the int8 copy close
to float32, deterministic, and the Fingerprinter's precision choice; atomic writes keep permissions."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from chadml.errors import UsageError
from chadml.features import SHORT, FeatureConfig
from chadml.models import Fingerprinter, ResNet18Encoder, load_fingerprinter, save_checkpoint
from chadml.models import quant
from chadml.util import atomic_write_bytes

pytestmark = pytest.mark.skipif(not quant.int8_supported(), reason="no int8 kernels in this torch")


def _windows(n, seed=0):
    """CQT-like windows: smooth partials on a noise floor (dB-normalised like the features)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.1, (n, 84, 94)).astype(np.float32)
    for i in range(n):
        f = rng.integers(10, 60, 3)
        w[i, f] += 1.0
        w[i, f + 12] += 0.6
    return w


@pytest.fixture(scope="module")
def trained():
    """A small encoder with a salience front whose BatchNorm statistics are not the identity."""
    torch.manual_seed(0)
    m = ResNet18Encoder(width=8, front="salience")
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.from_numpy(_windows(16, 9)))
    return m.eval()


def _cos(a, b):
    return (a * b).sum(1)


def test_int8_copy_is_close_to_float32(trained):
    ranges = quant.calibrate(trained, _windows(64, 1))
    assert ranges and all(r.shape == (2,) and r[0] <= r[1] for r in ranges.values())
    q = quant.quantize(trained, ranges)
    x = torch.from_numpy(_windows(32, 2))
    with torch.no_grad():
        a, b = trained(x), q(x)
    assert b.shape == a.shape == (32, 128)
    assert torch.allclose(b.norm(dim=1), torch.ones(32), atol=1e-5)
    assert _cos(a, b).min() > 0.99
    # also through fingerprint() with (n, F, Wf) numpy windows, as the Fingerprinter calls it
    fp = Fingerprinter(trained, FeatureConfig("cqt"), SHORT, precision="int8", int8_ranges=ranges)
    out = fp.encode(_windows(5, 3))
    ref = Fingerprinter(trained, FeatureConfig("cqt"), SHORT, precision="fp32").encode(_windows(5, 3))
    assert out.dtype == np.float32 and (out * ref).sum(1).min() > 0.99


def test_ranges_are_order_and_batch_independent_and_the_copy_deterministic(trained):
    w = _windows(40, 4)
    r1 = quant.calibrate(trained, w, batch_size=16)
    r2 = quant.calibrate(trained, w[::-1].copy(), batch_size=16)
    assert r1.keys() == r2.keys() and all(torch.equal(r1[k], r2[k]) for k in r1)
    # another batching: equal up to float32 rounding (a CPU's convolution may round by batch size)
    r3 = quant.calibrate(trained, w, batch_size=7)
    assert r1.keys() == r3.keys() and all(torch.allclose(r1[k], r3[k], rtol=1e-5, atol=1e-6) for k in r1)
    with pytest.raises(ValueError, match="batch_size"):
        quant.calibrate(trained, w, batch_size=0)
    x = torch.from_numpy(_windows(8, 5))
    with torch.no_grad():
        assert torch.equal(quant.quantize(trained, r1)(x), quant.quantize(trained, r2)(x))


def test_ranges_travel_with_the_checkpoint_and_make_int8_the_default(trained, tmp_path, monkeypatch):
    from chadml.training import TrainConfig
    monkeypatch.delenv("CHAD_PRECISION", raising=False)
    ranges = quant.calibrate(trained, _windows(32, 6))
    p = save_checkpoint(tmp_path / "m.pt", model=trained, feature_config=FeatureConfig("cqt"),
                        window_config=SHORT, train_config=TrainConfig(), extra={quant.RANGES_KEY: ranges})
    fp = load_fingerprinter(p)
    assert fp.precision == "int8" and fp.int8_encoder() is not None
    plain = save_checkpoint(tmp_path / "plain.pt", model=trained, feature_config=FeatureConfig("cqt"),
                            window_config=SHORT, train_config=TrainConfig())
    assert load_fingerprinter(plain).precision == "fp32"
    assert load_fingerprinter(plain).model_id == fp.model_id      # the ranges are not part of the model id
    monkeypatch.setenv("CHAD_PRECISION", "fp32")
    assert load_fingerprinter(p).precision == "fp32"
    monkeypatch.setenv("CHAD_PRECISION", "int8")
    with pytest.raises(UsageError, match="CHAD_PRECISION=int8 needs a model with int8 ranges"):
        load_fingerprinter(plain)


def test_the_shipped_model_runs_int8_close_to_float32(monkeypatch):
    monkeypatch.delenv("CHAD_PRECISION", raising=False)
    fp = load_fingerprinter("builtin:chad-qbh")
    assert fp.precision == "int8"
    w = _windows(16, 7)
    ref = Fingerprinter(fp.model, fp.feature_config, fp.window_config, precision="fp32").encode(w)
    assert (fp.encode(w) * ref).sum(1).min() > 0.98


def test_bad_ranges_and_precisions_are_named(trained):
    ranges = quant.calibrate(trained, _windows(8, 8))
    with pytest.raises(ValueError, match="ranges do not fit this model"):
        quant.quantize(trained, dict(list(ranges.items())[:-1]))
    k = next(iter(ranges))
    with pytest.raises(ValueError, match="min <= max"):
        quant.quantize(trained, {**ranges, k: torch.tensor([1.0, -1.0])})
    with pytest.raises(ValueError, match="non-empty dict"):
        quant.quantize(trained, {})
    with pytest.raises(ValueError, match="needs int8_ranges"):
        Fingerprinter(trained, FeatureConfig("cqt"), SHORT, precision="int8")
    with pytest.raises(TypeError, match="ResNet18Encoder"):
        quant.calibrate(torch.nn.Linear(2, 2), _windows(2))
    with pytest.raises(ValueError, match="windows must have shape"):
        quant.calibrate(trained, np.zeros((0, 84, 94), np.float32))


def test_atomic_writes_keep_permissions(tmp_path):
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"a")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~umask
    os.chmod(p, 0o640)
    atomic_write_bytes(p, b"b")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640 and p.read_bytes() == b"b"

