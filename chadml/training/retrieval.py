"""Fragment retrieval on held-out groups: the measure of the encoder (and of each model of the loop).

Each humming window is matched against every original window of the held-out groups; it hits when the
best-scoring window belongs to its group (:func:`rank_metrics`: top-1, top-10, MRR).

Example
-------
>>> import numpy as np
>>> rank_metrics(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), np.array([0, 1]))["top1"]
0.5
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..features import make_windows
from ..models.encoder import ResNet18Encoder, fingerprint
from .sampler import FragmentBank

__all__ = ["fragment_retrieval", "rank_metrics", "pearson_matrix"]


def fragment_retrieval(fingerprinter, manifest, *, split: str | None = "test", bank: FragmentBank | None = None,
                       methods: Sequence[str] = ("model",), progress_bar: bool = False) -> dict:
    """Each humming window against all original windows of the held-out groups: top-1, top-10, MRR.

    A query window (a humming fragment's analysis window) hits when the best-scoring original window
    belongs to its group. ``methods`` may add ``"raw"``: the same windows matched by the Pearson
    correlation of their raw features (the no-learning baseline), and ``"untrained"``: an encoder of
    the same architecture with freshly initialised weights (seed 0). Returns
    ``{method: {"top1", "top10", "mrr", "queries", "targets"}}``.
    """
    bank = bank or FragmentBank(manifest, fingerprinter.feature_config, split=split, progress_bar=progress_bar)
    fr = bank.feature_config.frame_rate
    qw, ql, tw, tl = [], [], [], []
    for gi, g in enumerate(bank.group_ids):
        for feat, row in zip(bank.features[gi], bank.rows[gi]):
            typ = row.audio_type
            w, _ = make_windows(feat, fingerprinter.window_config, fr)
            if typ == "humming":
                qw.append(w)
                ql.extend([gi] * len(w))
            elif typ == "original":
                tw.append(w)
                tl.extend([gi] * len(w))
    if not qw or not tw:
        raise ValueError("fragment_retrieval needs groups with both humming and original fragments "
                         f"in split {split!r}")
    qw, tw = np.concatenate(qw), np.concatenate(tw)
    ql, tl = np.asarray(ql), np.asarray(tl)
    out = {}
    for m in methods:
        if m in ("model", "untrained"):
            model = fingerprinter.model
            if m == "untrained":
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    model = ResNet18Encoder.from_config(model.config())
            qe = fingerprint(model, qw, device=fingerprinter.device)
            te = fingerprint(model, tw, device=fingerprinter.device)
            sim = qe @ te.T
        elif m == "raw":
            sim = pearson_matrix(qw.reshape(len(qw), -1), tw.reshape(len(tw), -1))
        else:
            raise ValueError(f"unknown method {m!r}; expected 'model', 'untrained' or 'raw'")
        out[m] = rank_metrics(sim, ql, tl)
    return out


def pearson_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlations ``(n, m)`` of the rows of ``a`` (n, d) with the rows of ``b`` (m, d)."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def rank_metrics(sim: np.ndarray, ql: np.ndarray, tl: np.ndarray) -> dict:
    """Top-1, top-10 and MRR of queries ``(n,)`` labelled ``ql`` against targets labelled ``tl`` by their
    similarities ``sim`` (n, m): a query's rank is that of its group's best window among every group's best
    window (group-level ranking). Returns ``{"top1", "top10", "mrr", "queries", "targets"}``.
    """
    n_groups = int(max(ql.max(), tl.max())) + 1
    best = np.full((sim.shape[0], n_groups), -np.inf, dtype=np.float64)
    for g in np.unique(tl):
        best[:, g] = sim[:, tl == g].max(axis=1)
    truth = best[np.arange(len(ql)), ql]
    ranks = 1 + (best > truth[:, None]).sum(axis=1)
    return {"top1": float(np.mean(ranks <= 1)), "top10": float(np.mean(ranks <= 10)),
            "mrr": float(np.mean(1.0 / ranks)), "queries": int(len(ql)), "targets": int(len(np.unique(tl)))}
