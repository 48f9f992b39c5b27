"""TEMPORARY stand-ins for parts built on other branches (chadsp.rerank, chadml.audio, chadml.train).

Installed only where the real module or function is missing; delete this file once they land on main.
"""
from __future__ import annotations

import importlib
import sys
import types

import numpy as np


def _max_pearson(q, t):
    tq = len(q)
    if len(t) < tq:
        q, t = t, q
        tq = len(q)
    best, lag = -np.inf, 0
    qf = q.ravel() - q.mean()
    qn = np.linalg.norm(qf)
    for l in range(len(t) - tq + 1):
        b = t[l:l + tq].ravel()
        b = b - b.mean()
        d = qn * np.linalg.norm(b)
        s = float(qf @ b / d) if d > 0 else 0.0
        if s > best:
            best, lag = s, l
    return best, lag


def rerank(query, candidates, *, threads=None):
    """Vectorised numpy max-Pearson (one GEMM per chunk + diagonal sums); swaps a shorter target."""
    q = np.ascontiguousarray(query, np.float32)
    if isinstance(candidates, tuple) and len(candidates) == 2 and isinstance(candidates[1], np.ndarray):
        data, off = candidates
    else:
        cs = [np.asarray(c, np.float32) for c in candidates]
        off = np.concatenate([[0], np.cumsum([len(c) for c in cs])]).astype(np.int64)
        data = np.concatenate(cs) if cs else np.zeros((0, q.shape[1]), np.float32)
    n = len(off) - 1
    scores, lags = np.zeros(n, np.float32), np.zeros(n, np.int64)
    tq, d = q.shape
    lens = np.diff(off)
    for i in np.flatnonzero(lens < tq):
        scores[i], _ = _max_pearson(q, np.asarray(data[off[i]:off[i + 1]], np.float32))
    ok = np.flatnonzero(lens >= tq)
    if ok.size == 0:
        return scores, lags
    qc = q - q.mean()
    qn = np.sqrt((qc * qc).sum())
    chunk = 1 << 18
    base, end = int(off[ok[0]]), int(off[ok[-1] + 1])
    best = np.full(n, -np.inf)
    for a in range(base, end, chunk - tq + 1):
        b = min(end, a + chunk)
        x = np.asarray(data[a:b], np.float32)
        g = x @ q.T                                           # (m, tq)
        m = len(x) - tq + 1
        if m <= 0:
            break
        v = np.lib.stride_tricks.as_strided(g, (m, tq), (g.strides[0], g.strides[0] + g.strides[1]))
        dots = v.sum(1, dtype=np.float64)
        rs = np.concatenate([[0.0], np.cumsum(x.sum(1, dtype=np.float64))])
        rss = np.concatenate([[0.0], np.cumsum((x.astype(np.float64) ** 2).sum(1))])
        s1 = rs[tq:tq + m] - rs[:m]
        s2 = rss[tq:tq + m] - rss[:m]
        nn = tq * d
        var = np.maximum(s2 - s1 * s1 / nn, 0)
        num = dots - s1 * q.sum() / nn
        den = qn * np.sqrt(var)
        pear = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
        starts = np.arange(a, a + m)
        for i in ok:
            lo, hi = max(int(off[i]), a), min(int(off[i + 1]) - tq, a + m - 1)
            if lo > hi:
                continue
            seg = pear[lo - a:hi - a + 1]
            j = int(np.argmax(seg))
            if seg[j] > best[i]:
                best[i], lags[i] = seg[j], starts[lo - a + j] - off[i]
        if b == end:
            break
    scores[ok] = best[ok]
    return scores, lags


def _load(path, sr=16000, mono=True):
    import soundfile as sf
    import os
    from chadml import ChadError
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    try:
        y, fsr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:
        raise ChadError(f"cannot read {path}: {exc}") from exc
    if len(y) == 0:
        raise ChadError(f"{path} is empty")
    y = y.mean(axis=1) if mono else y.T
    if fsr != sr:
        import librosa
        y = librosa.resample(y, orig_sr=fsr, target_sr=sr)
    return y.astype(np.float32)


def _module_exists(name):
    try:
        importlib.import_module(name)
        return True
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return False


def install():
    import chadsp
    if not hasattr(chadsp, "rerank"):
        chadsp.rerank = rerank
    if not _module_exists("chadml.audio"):
        m = types.ModuleType("chadml.audio")
        m.SR, m.load = 16000, _load
        sys.modules["chadml.audio"] = m
    install_train()


def _train_module():
    import hashlib
    import json
    import torch
    m = types.ModuleType("chadml.train")

    class TrainConfig:
        def to_dict(self):
            return {}

    def save_checkpoint(path, *, model, feature_config, window_config, train_config, **kw):
        torch.save({"encoder_config": model.config(), "feature_config": feature_config.to_dict(),
                    "window_config": window_config.to_dict(), "model": model.state_dict()}, path)
        return str(path)

    def load_fingerprinter(path, *, device=None):
        enc = sys.modules["chadml.encoder"]
        feat = sys.modules["chadml.features"]
        st = torch.load(path, weights_only=True)
        E = enc.ResNet18Encoder
        model = E.from_config(st["encoder_config"]) if hasattr(E, "from_config") else E(**st["encoder_config"])
        model.load_state_dict(st["model"])
        return enc.Fingerprinter(model, feat.FeatureConfig.from_dict(st["feature_config"]),
                                 feat.WindowConfig.from_dict(st["window_config"]))

    def checkpoint_id(path):
        st = torch.load(path, weights_only=True)
        h = hashlib.sha256()
        h.update(json.dumps({k: st[k] for k in ("encoder_config", "feature_config", "window_config")},
                            sort_keys=True).encode())
        for k in sorted(st["model"]):
            h.update(k.encode())
            h.update(st["model"][k].contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    m.TrainConfig, m.save_checkpoint, m.load_fingerprinter, m.checkpoint_id = (
        TrainConfig, save_checkpoint, load_fingerprinter, checkpoint_id)
    return m


def install_train():
    if not _module_exists("chadml.train"):
        sys.modules["chadml.train"] = _train_module()
