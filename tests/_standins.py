"""TEMPORARY stand-ins for parts built on other branches (chadsp kernels, chadml.audio/features/encoder/
data/train). ``install()`` fills in only what is missing, so the real modules win as soon as they land.
Delete this file once main has them all.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import sys
import types

import numpy as np


def _chadsp_fill():
    import chadsp
    import librosa
    import scipy.signal

    def split_by_silence(y, top_db, frame_length=2048, hop_length=512):
        return librosa.effects.split(np.asarray(y, np.float32), top_db=top_db, frame_length=frame_length,
                                     hop_length=hop_length).astype(np.int64).reshape(-1, 2)

    def merge_fragments(intervals, max_pause, min_len, max_len):
        out = []
        cur = None
        for s, e in np.asarray(intervals, np.int64).reshape(-1, 2):
            if cur is not None and s - cur[1] <= max_pause and e - cur[0] <= max_len:
                cur[1] = e
            else:
                if cur is not None:
                    out.append(cur)
                cur = [int(s), int(e)]
        if cur is not None:
            out.append(cur)
        out = [f for f in out if min_len <= f[1] - f[0] <= max_len]
        return np.asarray(out, np.int64).reshape(-1, 2)

    def xcorr(query, target, method="auto"):
        q = np.asarray(query, np.float64)
        t = np.asarray(target, np.float64)
        if q.ndim == 1:
            q, t = q[:, None], t[:, None]
        tq = len(q)
        n = len(t) - tq + 1
        if n < 1:
            raise ValueError("query longer than target")
        out = np.zeros(n, np.float32)
        qf = q.ravel() - q.mean()
        qn = np.sqrt((qf ** 2).sum())
        for lag in range(n):
            b = t[lag:lag + tq].ravel()
            b = b - b.mean()
            bn = np.sqrt((b ** 2).sum())
            out[lag] = 0.0 if qn == 0 or bn == 0 else float(qf @ b / (qn * bn))
        return out

    def xcorr_match(fragment, target, *, rel=0.5, irrel=0.3, distance=None):
        c = xcorr(fragment, target)
        distance = len(fragment) if distance is None else distance
        peaks, _ = scipy.signal.find_peaks(np.r_[-np.inf, c, -np.inf], height=irrel, distance=max(1, distance))
        peaks = peaks - 1
        out = np.zeros(len(peaks), dtype=[("lag", np.int64), ("score", np.float32), ("relevant", bool)])
        out["lag"] = peaks
        out["score"] = c[peaks]
        out["relevant"] = c[peaks] >= rel
        return out

    def max_pearson(query, target):
        c = xcorr(query, target)
        i = int(np.argmax(c))
        return float(c[i]), i

    for name, f in dict(split_by_silence=split_by_silence, merge_fragments=merge_fragments, xcorr=xcorr,
                        xcorr_match=xcorr_match, max_pearson=max_pearson).items():
        if not callable(getattr(chadsp, name, None)):
            setattr(chadsp, name, f)


def _module(name):
    try:
        __import__(name)
        return None
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    setattr(sys.modules["chadml"], name.split(".")[1], mod)
    return mod


def _audio(m):
    import soundfile as sf
    m.SR = 16000

    def load(path, sr=16000):
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        y, r = sf.read(path, dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        if r != sr:
            import scipy.signal
            y = scipy.signal.resample_poly(y, sr, r).astype(np.float32)
        return y

    def save(path, y, sr=16000):
        sf.write(path, np.asarray(y, np.float32), sr)
    m.load, m.save = load, save


def _features(m):
    @dataclasses.dataclass(frozen=True)
    class FeatureConfig:
        kind: str = "cqt"

        @property
        def frame_rate(self):
            return 16000 / 512

        def to_dict(self):
            return {"kind": self.kind}

        @classmethod
        def from_dict(cls, d):
            return cls(**d)

    @dataclasses.dataclass(frozen=True)
    class WindowConfig:
        window_s: float
        step_s: float

    def extract_features(audio, config):
        import librosa
        c = np.abs(librosa.cqt(np.asarray(audio, np.float32), sr=16000, hop_length=512, n_bins=84,
                               bins_per_octave=12, fmin=32.7))
        return np.log1p(100 * c).astype(np.float32)

    def make_windows(features, window, frame_rate):
        wf = int(round(window.window_s * frame_rate))
        sf_ = int(round(window.step_s * frame_rate))
        t = features.shape[1]
        n = 0 if t < wf else (t - wf) // sf_ + 1
        w = np.stack([features[:, k * sf_:k * sf_ + wf] for k in range(n)]) if n else \
            np.zeros((0, features.shape[0], wf), np.float32)
        return w, np.arange(n) * sf_ / frame_rate

    m.FeatureConfig, m.WindowConfig, m.extract_features, m.make_windows = \
        FeatureConfig, WindowConfig, extract_features, make_windows
    m.SHORT, m.LONG = WindowConfig(3.0, 0.25), WindowConfig(8.0, 0.64)


def _encoder(m):
    import torch
    from torch import nn

    class ResNet18Encoder(nn.Module):
        def __init__(self, width=64, dim=128):
            super().__init__()
            self.width, self.dim = width, dim
            self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d((4, 4)))
            self.head = nn.Linear(width * 16, dim)

        def forward(self, x):
            return nn.functional.normalize(self.head(self.body(x).flatten(1)), dim=1)

    class Fingerprinter:
        def __init__(self, model, feature_config, window_config, device=None):
            self.model, self.feature_config, self.window_config = model.eval(), feature_config, window_config

        def from_audio(self, audio, sr=16000):
            import chadml.features as F
            feats = F.extract_features(audio, self.feature_config)
            w, starts = F.make_windows(feats, self.window_config, self.feature_config.frame_rate)
            if len(w) == 0:
                return np.zeros((0, self.model.dim), np.float32), np.zeros(0)
            with torch.no_grad():
                z = self.model(torch.from_numpy(np.ascontiguousarray(w))[:, None]).numpy()
            return z.astype(np.float32), starts
    m.ResNet18Encoder, m.Fingerprinter = ResNet18Encoder, Fingerprinter


def _data(m):
    F = ["group_id", "fragment_id", "id", "audio_type", "source_id", "start", "end", "correlation",
         "check_by_crowdsource", "duration", "path", "true_offset", "split"]

    @dataclasses.dataclass
    class FragmentRow:
        group_id: str
        fragment_id: str
        id: str
        audio_type: str
        source_id: str
        start: float
        end: float
        correlation: float = 1.0
        check_by_crowdsource: bool = False
        duration: float = 0.0
        path: str = ""
        true_offset: float = float("nan")
        split: str = "train"

        @property
        def key(self):
            return f"{self.group_id}/{self.fragment_id}"

        def __eq__(self, o):
            return all((a == b) or (a != a and b != b) for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(o)))

    class Manifest:
        def __init__(self, rows=()):
            self.rows = list(rows)

        def groups(self):
            g = {}
            for r in self.rows:
                g.setdefault(r.key, []).append(r)
            return g

        def write(self, path):
            from chadml.progress import atomic_path
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(F)
                for r in self.rows:
                    w.writerow([getattr(r, k) for k in F])

        @classmethod
        def read(cls, path):
            rows = []
            with open(path) as f:
                for d in csv.DictReader(f):
                    rows.append(FragmentRow(d["group_id"], d["fragment_id"], d["id"], d["audio_type"],
                                            d["source_id"], float(d["start"]), float(d["end"]),
                                            float(d["correlation"]), d["check_by_crowdsource"] == "True",
                                            float(d["duration"]), d["path"], float(d["true_offset"]), d["split"]))
            return cls(rows)

    @dataclasses.dataclass
    class SongRow:
        song_id: str
        version_id: str
        audio_type: str
        path: str
        duration: float
        split: str = "train"
        alignment: list = dataclasses.field(default_factory=list)

    class SongTable:
        def __init__(self, rows=()):
            self.rows = list(rows)

        def songs(self):
            out = {}
            for r in self.rows:
                o, c = out.get(r.song_id, (None, []))
                if r.audio_type == "original":
                    o = r
                else:
                    c.append(r)
                out[r.song_id] = (o, c)
            return out

        def write(self, path):
            from chadml.progress import atomic_path
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["song_id", "version_id", "audio_type", "path", "duration", "split", "alignment"])
                for r in self.rows:
                    w.writerow([r.song_id, r.version_id, r.audio_type, r.path, r.duration, r.split,
                                json.dumps(np.asarray(r.alignment).tolist())])

        @classmethod
        def read(cls, path):
            with open(path) as f:
                return cls([SongRow(d["song_id"], d["version_id"], d["audio_type"], d["path"], float(d["duration"]),
                                    d["split"], json.loads(d["alignment"])) for d in csv.DictReader(f)])

    def map_time(alignment, t_original, *, all=False):
        a = np.asarray(alignment, float).reshape(-1, 2)
        t = np.asarray(t_original, float)
        if len(a) < 2:
            v = np.full_like(t, np.nan)
        else:
            v = np.interp(t, a[:, 0], a[:, 1])
            v = np.where((t < a[0, 0]) | (t > a[-1, 0]), np.nan, v)
        return v[..., None] if all else v
    m.FragmentRow, m.Manifest, m.SongRow, m.SongTable, m.map_time = FragmentRow, Manifest, SongRow, SongTable, map_time


def _train(m):
    import torch

    def load_fingerprinter(ckpt_path, device=None):
        import chadml.encoder as E
        import chadml.features as F
        if not os.path.exists(ckpt_path):
            raise FileNotFoundError(ckpt_path)
        d = torch.load(ckpt_path, weights_only=False)
        model = E.ResNet18Encoder(width=d["width"], dim=128)
        model.load_state_dict(d["state"])
        return E.Fingerprinter(model, F.FeatureConfig.from_dict(d["features"]), F.WindowConfig(*d["window"]))

    def checkpoint_id(path):
        return hashlib.sha1(open(path, "rb").read()).hexdigest()[:16]

    @dataclasses.dataclass(frozen=True)
    class TrainConfig:
        epochs: int = 100
        width: int = 64
        max_minutes: float = None
        seed: int = 0
        batch_size: int = 32
        augment: bool = True
        steps_per_epoch: int = None

    def train(manifest, out, *, feature_config=None, window_config=None, config=None, init=None, resume=False,
              progress_bar=True, **kw):
        import chadml.encoder as E
        config = config or TrainConfig()
        if resume and os.path.exists(out):
            return out
        torch.manual_seed(config.seed + len(manifest.rows))
        model = E.ResNet18Encoder(width=config.width, dim=128)
        from chadml.progress import atomic_path
        with atomic_path(out) as tmp:
            torch.save({"width": config.width, "state": model.state_dict(), "features": feature_config.to_dict(),
                        "window": (window_config.window_s, window_config.step_s)}, tmp)
        return out

    def fragment_retrieval(fingerprinter, manifest, *, split="test", methods=("model",), **kw):
        return {m: {"top1": 0.0, "top10": 0.0, "mrr": 0.0, "queries": 0, "targets": 0} for m in methods}
    m.TrainConfig = TrainConfig
    m.load_fingerprinter, m.checkpoint_id, m.train, m.fragment_retrieval = \
        load_fingerprinter, checkpoint_id, train, fragment_retrieval


def install():
    import chadml
    _chadsp_fill()
    for name, fill in [("chadml.audio", _audio), ("chadml.features", _features), ("chadml.encoder", _encoder),
                       ("chadml.data", _data), ("chadml.train", _train)]:
        mod = _module(name)
        if mod is not None:
            fill(mod)
    return chadml
