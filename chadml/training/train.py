"""Training of the fingerprint encoder: NT-Xent (tau 0.05) with a multi-similarity miner.

A batch is K groups x up to ``per_group`` fragments; every fragment of a group gets the same random
window start (the fragments of a group are time-aligned), so the windows of a group are variations of
the same music and form the positives of the contrastive loss (the paper's section 3 and 5.1).

Checkpoints hold the weights, the optimiser, the epoch, the RNG states, the loss history and the
feature/window/encoder/training configs; they are written atomically and ``resume=True`` continues
exactly where the last finished epoch left off.

Example
-------
>>> from chadml.data import Manifest
>>> from chadml.train import TrainConfig, train, load_fingerprinter
>>> ckpt = train(Manifest.read("hummings.csv"), "m0.pt", config=TrainConfig(epochs=5))  # doctest: +SKIP
>>> fp = load_fingerprinter(ckpt)                                                        # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .. import ChadError
from ..models.checkpoint import (FORMAT_VERSION, build_model, checkpoint_id, load_checkpoint, load_fingerprinter,
                                 model_id, save_checkpoint)
from ..util import atomic_path, atomic_write_bytes, progress

log = logging.getLogger(__name__)


__all__ = [
    "TrainConfig", "FragmentBank", "GroupBatchSampler", "train", "save_checkpoint", "load_checkpoint",
    "load_fingerprinter", "checkpoint_id", "model_id", "fragment_retrieval", "FORMAT_VERSION",
]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (the paper's defaults: Adam 1e-3, batch 32, 100 epochs, tau 0.05).

    ``steps_per_epoch=None`` means one pass over the groups (``ceil(n_groups / groups_per_batch)``).
    ``max_minutes`` stops after the first epoch that ends past that wall time (the checkpoint is
    complete and resumable). ``width`` is the encoder's base channel count (64 = ResNet18).
    ``groups_per_song``: a batch's K groups come as K / ``groups_per_song`` songs with that many groups
    each (a group's song is its ``group_id``), so that other phrases of the same song are negatives: the
    hardest ones, and the ones fragment retrieval and mining must tell apart. 1: K groups at random (the
    paper).
    ``lr_schedule``: ``"constant"`` (the paper) or ``"cosine"``: epoch ``e`` (from 0) of ``epochs`` runs at
    ``lr * (0.05 + 0.95 * (1 + cos(pi * e / epochs)) / 2)``, from ``lr`` down to 5 % of it (set per epoch,
    so a resumed run follows the same schedule).
    """

    epochs: int = 100
    batch_size: int = 32
    per_group: int = 4
    lr: float = 1e-3
    temperature: float = 0.05
    ms_epsilon: float = 0.1
    augment: bool = True
    width: int = 64
    dim: int = 128
    steps_per_epoch: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    lr_schedule: str = "constant"
    groups_per_song: int = 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "per_group", "width", "dim", "groups_per_song"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {v!r}")
        if self.per_group < 2:
            raise ValueError(f"TrainConfig.per_group must be >= 2 (positives need pairs), got {self.per_group}")
        if self.batch_size < 2 * self.per_group:
            raise ValueError(f"TrainConfig.batch_size must hold at least 2 groups of per_group={self.per_group}, "
                             f"got {self.batch_size}")
        if not (self.lr > 0 and self.temperature > 0):
            raise ValueError(f"TrainConfig.lr and temperature must be > 0, got {self.lr}, {self.temperature}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"TrainConfig.lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"TrainConfig.steps_per_epoch must be >= 1 or None, got {self.steps_per_epoch}")

    @property
    def groups_per_batch(self) -> int:
        return self.batch_size // self.per_group

    def lr_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (0-based) under ``lr_schedule``."""
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        from ..config import from_dict
        return from_dict(cls, d, "TrainConfig")


# ----------------------------------------------------------------------------------------------
# Data: features of every fragment, computed once; the K-groups sampler with aligned random windows
# ----------------------------------------------------------------------------------------------

class FragmentBank:
    """Features of every fragment of a manifest, grouped, computed once (the training set in memory).

    Parameters
    ----------
    manifest : chadml.data.Manifest
        Fragment rows (path + start/end seconds). Groups with fewer than two fragments are dropped
        (they give no positive pair).
    feature_config : chadml.features.FeatureConfig
    split : str or None
        Keep only rows of that split ("train"); ``None`` keeps all.
    """

    def __init__(self, manifest, feature_config, *, split: str | None = "train", progress_bar: bool = True):
        from ..audio import load
        from ..features import extract_features

        groups = {g: rs for g, rs in _select(manifest, split).groups().items() if len(rs) >= 2}
        if not groups:
            raise ValueError(f"the manifest has no group with two or more fragments"
                             f"{'' if split is None else f' in split {split!r}'}: nothing to train on")
        self.feature_config = feature_config
        self.group_ids: list[str] = sorted(groups)
        self.rows: list[list] = [sorted(groups[g], key=lambda r: str(r.id)) for g in self.group_ids]
        self.features: list[list[np.ndarray]] = []
        for rows in progress(self.rows, desc="features", unit="group", disable=not progress_bar or None):
            feats = []
            for r in rows:
                seg = load(r.path, sr=feature_config.sr, start=float(r.start), end=float(r.end))
                if seg.size < feature_config.min_samples:
                    raise ChadError(f"fragment {r.id} of {r.path} [{r.start}, {r.end}] s is too short or outside "
                                    f"the file ({seg.size} samples)")
                feats.append(extract_features(seg, feature_config))
            self.features.append(feats)

    def __len__(self) -> int:
        return len(self.group_ids)

    @property
    def n_fragments(self) -> int:
        return sum(len(f) for f in self.features)


class GroupBatchSampler:
    """K groups x up to ``per_group`` fragments, one random window position per group.

    ``sample(rng)`` returns ``(windows float32 (N, F, Wf), labels int64 (N,))``. The fragments of a group
    are aligned: they hold the same music from start to end, at their own tempo (a mined cover fragment
    is as long as the cover takes to sing the original's fragment). One relative position ``u`` in
    ``[0, 1)`` is drawn per group, and each fragment's window starts ``floor(u * (T - Wf + 1))`` frames in
    (``T``: its length in frames): the same start in every fragment of one length (the paper's equal-
    duration groups), the same place in the music in fragments of different tempi.
    """

    def __init__(self, bank: FragmentBank, window_frames: int, groups_per_batch: int, per_group: int,
                 groups_per_song: int = 1):
        if len(bank) < 2:
            raise ValueError(f"training needs at least 2 groups (negatives), got {len(bank)}")
        self.bank = bank
        self.wf = int(window_frames)
        self.k = min(groups_per_batch, len(bank))
        self.per_group = per_group
        self.groups_per_song = int(groups_per_song)
        songs: dict[str, list[int]] = {}
        if self.groups_per_song > 1:
            for g, rows in enumerate(bank.rows):
                songs.setdefault(str(rows[0].group_id), []).append(g)
        self.songs = [v for _, v in sorted(songs.items()) if len(v) >= self.groups_per_song]

    def _groups(self, rng: np.random.Generator) -> np.ndarray:
        """The batch's groups: ``groups_per_song`` from each of random songs that have as many, then random
        other groups up to K."""
        if self.groups_per_song <= 1 or not self.songs:
            return rng.choice(len(self.bank), size=self.k, replace=False)
        n_songs = min(self.k // self.groups_per_song, len(self.songs))
        gs: list[int] = []
        for s in rng.choice(len(self.songs), size=n_songs, replace=False):
            gs += rng.choice(self.songs[s], size=self.groups_per_song, replace=False).tolist()
        if len(gs) < self.k:
            rest = np.setdiff1d(np.arange(len(self.bank)), gs)
            gs += rng.choice(rest, size=self.k - len(gs), replace=False).tolist()
        return np.asarray(gs, dtype=np.int64)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        gs = self._groups(rng)
        out, labels = [], []
        for g in gs:
            feats = self.bank.features[g]
            n = min(self.per_group, len(feats))
            pick = rng.choice(len(feats), size=n, replace=False)
            u = float(rng.random())
            for i in pick:
                span = max(feats[i].shape[1] - self.wf, 0) + 1
                out.append(_crop(feats[i], min(int(u * span), span - 1), self.wf))
                labels.append(g)
        return np.stack(out), np.asarray(labels, dtype=np.int64)


def _crop(feat: np.ndarray, start: int, wf: int) -> np.ndarray:
    w = feat[:, start:start + wf]
    if w.shape[1] < wf:  # a fragment shorter than the window: pad with its minimum (silence in log scale)
        pad = np.full((feat.shape[0], wf - w.shape[1]), feat.min() if feat.size else 0.0, dtype=feat.dtype)
        w = np.concatenate([w, pad], axis=1)
    return w


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def _default_device(device):
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train(manifest, out: str | os.PathLike, *, feature_config=None, window_config=None,
          config: TrainConfig | None = None, init: str | os.PathLike | None = None, resume: bool = False,
          device=None, split: str | None = "train", bank: FragmentBank | None = None,
          loss_plot: str | os.PathLike | None = None, progress_bar: bool = True) -> str:
    """Train (or fine-tune from ``init``) an encoder on the groups of ``manifest``; returns ``out``.

    The checkpoint at ``out`` is rewritten atomically after every epoch. With ``resume=True`` and an
    existing ``out``, training continues from its last epoch with its configs, optimiser and RNG states
    (the other arguments must agree with it, or ``ChadError``). ``loss_plot`` (default: ``out`` with
    ``.loss.png``) receives the loss curve.
    """
    from pytorch_metric_learning import losses, miners

    from ..models.encoder import ResNet18Encoder
    from ..features import SHORT, FeatureConfig, WindowConfig

    out = os.fspath(out)
    dev = _default_device(device)
    state = None
    if resume and os.path.exists(out):
        state = load_checkpoint(out)
        saved = (FeatureConfig.from_dict(state["feature_config"]), WindowConfig.from_dict(state["window_config"]))
        for given, have, what in ((feature_config, saved[0], "feature"), (window_config, saved[1], "window")):
            if given is not None and given != have:
                raise ChadError(f"--resume: {out} was trained with {what} config {have}, not {given}")
        feature_config, window_config = saved
        config = TrainConfig.from_dict(state["train_config"]) if config is None else config
    feature_config = feature_config or FeatureConfig()
    window_config = window_config or SHORT
    config = config or TrainConfig()

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if init is not None and state is None:
        init_state = load_checkpoint(init)
        if init_state["feature_config"] != feature_config.to_dict():
            raise ChadError(f"cannot fine-tune from {init}: it was trained on features "
                            f"{init_state['feature_config']}, not {feature_config.to_dict()}")
        model = build_model(init_state)
    else:
        model = ResNet18Encoder(width=config.width, dim=config.dim)
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    start_epoch, history = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        if state["optimizer"] is not None:
            opt.load_state_dict(state["optimizer"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
        if start_epoch >= config.epochs:
            log.info("%s already trained for %d epochs", out, start_epoch)
            return out

    bank = bank or FragmentBank(manifest, feature_config, split=split, progress_bar=progress_bar)
    wf, _ = window_config.frames(feature_config.frame_rate)
    sampler = GroupBatchSampler(bank, wf, config.groups_per_batch, config.per_group, config.groups_per_song)
    steps = config.steps_per_epoch or math.ceil(len(bank) / sampler.k)
    loss_fn = losses.NTXentLoss(temperature=config.temperature)
    miner = miners.MultiSimilarityMiner(epsilon=config.ms_epsilon)
    aug = _make_augment(feature_config, config, dev)
    if state is not None and state.get("rng_state"):     # continue every random stream exactly
        rs = state["rng_state"]
        rng.bit_generator.state = json.loads(rs["numpy"])
        torch.set_rng_state(rs["torch"])
        if aug is not None and aug.generator is not None and rs.get("augment") is not None:
            aug.generator.set_state(rs["augment"])
    t_start = time.monotonic()
    log.info("training on %d groups (%d fragments), %d steps/epoch, device %s", len(bank), bank.n_fragments,
             steps, dev)
    for epoch in range(start_epoch, config.epochs):
        for g in opt.param_groups:
            g["lr"] = config.lr_at(epoch)
        model.train()
        losses_epoch, n_frag, t0 = [], 0, time.monotonic()
        bar = progress(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="step",
                       disable=not progress_bar or None, leave=False)
        for _ in bar:
            x, labels = sampler.sample(rng)
            xb = torch.from_numpy(x).to(dev)
            yb = torch.from_numpy(labels).to(dev)
            if aug is not None:
                xb = aug(xb, yb)   # labels keep mixing partners in other groups
            emb = model(xb)
            pairs = miner(emb, yb)
            loss = loss_fn(emb, yb, pairs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses_epoch.append(float(loss.detach()))
            n_frag += len(labels)
        dt = time.monotonic() - t0
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses_epoch)), "seconds": dt,
                        "fragments_per_s": n_frag / dt if dt > 0 else float("nan")})
        log.info("epoch %d: loss %.4f (%.1f fragments/s)", epoch + 1, history[-1]["loss"],
                 history[-1]["fragments_per_s"])
        rng_state = {"numpy": json.dumps(rng.bit_generator.state), "torch": torch.get_rng_state(),
                     "augment": aug.generator.get_state() if aug is not None and aug.generator is not None else None}
        save_checkpoint(out, model=model, feature_config=feature_config, window_config=window_config,
                        train_config=config, optimizer=opt, epoch=epoch + 1, history=history,
                        rng_state=rng_state)
        if config.max_minutes is not None and (time.monotonic() - t_start) / 60.0 >= config.max_minutes:
            log.info("stopping after epoch %d: max_minutes=%s reached", epoch + 1, config.max_minutes)
            break
    plot_loss(history, loss_plot or os.path.splitext(out)[0] + ".loss.png")
    return out


def _make_augment(feature_config, config: TrainConfig, device):
    if not config.augment:
        return None
    from .augment import Augment
    return Augment.for_features(feature_config, generator=config.seed).to(device)


def plot_loss(history: Sequence[dict], path: str | os.PathLike) -> str | None:
    """PNG of the loss per epoch (written atomically); ``None`` when there is no history."""
    if not history:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o", ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("NT-Xent loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return os.fspath(path)


# ----------------------------------------------------------------------------------------------
# Fragment retrieval on held-out groups (the measure of the encoder issue and of the loop)
# ----------------------------------------------------------------------------------------------

def fragment_retrieval(fingerprinter, manifest, *, split: str | None = "test", bank: FragmentBank | None = None,
                       methods: Sequence[str] = ("model",), progress_bar: bool = False) -> dict:
    """Each humming window against all original windows of the held-out groups: top-1, top-10, MRR.

    A query window (a humming fragment's analysis window) hits when the best-scoring original window
    belongs to its group. ``methods`` may add ``"raw"``: the same windows matched by the Pearson
    correlation of their raw features (the no-learning baseline), and ``"untrained"``: an encoder of
    the same architecture with freshly initialised weights (seed 0). Returns
    ``{method: {"top1", "top10", "mrr", "queries", "targets"}}``.
    """
    from ..features import make_windows
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
            from ..models.encoder import ResNet18Encoder, fingerprint
            model = fingerprinter.model
            if m == "untrained":
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    model = ResNet18Encoder.from_config(model.config())
            qe = fingerprint(model, qw, device=fingerprinter.device)
            te = fingerprint(model, tw, device=fingerprinter.device)
            sim = qe @ te.T
        elif m == "raw":
            sim = _pearson_matrix(qw.reshape(len(qw), -1), tw.reshape(len(tw), -1))
        else:
            raise ValueError(f"unknown method {m!r}; expected 'model', 'untrained' or 'raw'")
        out[m] = _rank_metrics(sim, ql, tl)
    return out


def _select(manifest, split):
    return manifest if split is None else manifest.select(split=split)


def _pearson_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def _rank_metrics(sim: np.ndarray, ql: np.ndarray, tl: np.ndarray) -> dict:
    """Rank of the best window of the right group among the groups' best windows (group-level ranking)."""
    n_groups = int(max(ql.max(), tl.max())) + 1
    best = np.full((sim.shape[0], n_groups), -np.inf, dtype=np.float64)
    for g in np.unique(tl):
        best[:, g] = sim[:, tl == g].max(axis=1)
    truth = best[np.arange(len(ql)), ql]
    ranks = 1 + (best > truth[:, None]).sum(axis=1)
    return {"top1": float(np.mean(ranks <= 1)), "top10": float(np.mean(ranks <= 10)),
            "mrr": float(np.mean(1.0 / ranks)), "queries": int(len(ql)), "targets": int(len(np.unique(tl)))}


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def add_cli(sub) -> None:
    p = sub.add_parser("train", help="train the fingerprint encoder on a manifest of aligned fragment groups",
                       description="Train (or resume) the ResNet18 fingerprint encoder with NT-Xent + "
                                   "multi-similarity mining on the groups of a dataset manifest.")
    p.add_argument("--data", required=True, help="dataset manifest (CSV/Parquet) of fragment groups")
    p.add_argument("--out", required=True, help="checkpoint to write (rewritten atomically every epoch)")
    p.add_argument("--features", choices=("cqt", "crepe"), default="cqt")
    p.add_argument("--crepe-model", choices=("full", "tiny"), default="full")
    p.add_argument("--window", choices=("short", "long"), default="short")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="constant (the paper) or cosine decay to 5%% of --lr over the epochs (%(default)s)")
    p.add_argument("--width", type=int, default=64, help="encoder base channels (64 = ResNet18)")
    p.add_argument("--groups-per-song", type=int, default=1,
                   help="draw each batch's groups in sets of N from one song (hard negatives; %(default)s)")
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--init", default=None, help="checkpoint to fine-tune from")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint at --out")
    p.add_argument("--split", default="train", help="manifest split to train on ('' for all rows)")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cli_train)


def _cli_train(args: argparse.Namespace) -> int:
    from ..data import Manifest
    from ..features import LONG, SHORT, FeatureConfig
    fc = FeatureConfig(kind=args.features, crepe_model=args.crepe_model)
    wc = SHORT if args.window == "short" else LONG
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width=args.width,
                      steps_per_epoch=args.steps_per_epoch, max_minutes=args.max_minutes,
                      augment=not args.no_augment, seed=args.seed, lr_schedule=args.lr_schedule,
                      groups_per_song=args.groups_per_song)
    manifest = Manifest.read(args.data)
    out = train(manifest, args.out, feature_config=fc, window_config=wc, config=cfg, init=args.init,
                resume=args.resume, device=args.device, split=args.split or None,
                progress_bar=not getattr(args, "quiet", False))
    state = load_checkpoint(out)
    last = state["history"][-1] if state["history"] else {}
    print(json.dumps({"checkpoint": out, "epoch": state["epoch"], **{k: last.get(k) for k in ("loss", "fragments_per_s")}}))
    return 0
