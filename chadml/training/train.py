"""Training of the fingerprint encoder: NT-Xent (tau 0.05) with a multi-similarity miner.

A batch is K groups x up to ``per_group`` fragments; every fragment of a group gets the same random
window start (the fragments of a group are time-aligned), so the windows of a group are variations of
the same music and form the positives of the contrastive loss (the paper's section 3 and 5.1). The
batches come from :class:`chadml.training.sampler.GroupBatchSampler`; the model, the loss, the miner and
the sampler can be replaced (:func:`train`'s ``model``, ``loss``, ``miner``, ``sampler``).

Checkpoints hold the weights, the optimiser, the epoch, the RNG states, the loss history and the
feature/window/encoder/training configs; they are written atomically and ``resume=True`` continues
exactly where the last finished epoch left off.

Example
-------
>>> from chadml.data import Manifest
>>> from chadml.training import TrainConfig, train, load_fingerprinter
>>> ckpt = train(Manifest.read("hummings.csv"), "m0.pt", config=TrainConfig(epochs=5))  # doctest: +SKIP
>>> fp = load_fingerprinter(ckpt)                                                        # doctest: +SKIP
>>> TrainConfig().lr_at(0), TrainConfig(lr_schedule="cosine", epochs=10).lr_at(10)
(0.001, 5e-05)
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from pytorch_metric_learning import losses, miners

from ..config import from_dict
from ..errors import ChadError
from ..features import SHORT, FeatureConfig, WindowConfig, resolve_device
from ..models.checkpoint import (FORMAT_VERSION, build_model, checkpoint_id, load_checkpoint, load_fingerprinter,
                                 model_id, save_checkpoint)
from ..models.encoder import ResNet18Encoder
from ..models.front import FRONTS
from ..util import atomic_path, progress
from .augment import Augment
from .retrieval import fragment_retrieval
from .sampler import FragmentBank, GroupBatchSampler

log = logging.getLogger(__name__)

# the checkpoint functions and fragment_retrieval are re-exported here for the old ``chadml.train`` path
__all__ = [
    "TrainConfig", "FragmentBank", "GroupBatchSampler", "train", "save_checkpoint", "load_checkpoint",
    "load_fingerprinter", "checkpoint_id", "model_id", "fragment_retrieval", "FORMAT_VERSION", "plot_loss",
    "make_augment",
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
    ``semitones``, ``p_pitch``: the range of the pitch-shift augmentation and its probability per example
    (the paper: +-4 semitones, 0.5; the release model: a whole octave, 0.8). ``p_timbre``: the probability
    of :class:`chadml.training.augment.Timbre` (another voice's spectral envelope; 0 = off, the paper),
    ``timbre_db`` its envelope's peak and ``formant_db`` its largest formant bump (dB).
    ``front``: the encoder's fixed timbre front end (:mod:`chadml.models.front`; ``"none"``, the paper).
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
    semitones: tuple = (-4.0, 4.0)
    p_pitch: float = 0.5
    p_timbre: float = 0.0
    timbre_db: float = 15.0
    formant_db: float = 0.0
    front: str = "none"

    def __post_init__(self) -> None:
        if self.front not in FRONTS:
            raise ValueError(f"TrainConfig.front must be one of {FRONTS}, got {self.front!r}")
        object.__setattr__(self, "semitones", tuple(float(x) for x in self.semitones))
        if len(self.semitones) != 2 or not self.semitones[0] <= self.semitones[1]:
            raise ValueError(f"TrainConfig.semitones must be (low, high) with low <= high, got {self.semitones!r}")
        if not (self.timbre_db >= 0 and self.formant_db >= 0):
            raise ValueError(f"TrainConfig.timbre_db and formant_db must be >= 0, got {self.timbre_db}, {self.formant_db}")
        for name in ("p_pitch", "p_timbre"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
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
        return from_dict(cls, d, "TrainConfig")


def train(manifest, out: str | os.PathLike, *, feature_config=None, window_config=None,
          config: TrainConfig | None = None, init: str | os.PathLike | None = None, resume: bool = False,
          device=None, split: str | None = "train", bank: FragmentBank | None = None,
          loss_plot: str | os.PathLike | None = None, progress_bar: bool = True,
          model: torch.nn.Module | None = None, loss=None, miner=None, sampler=None) -> str:
    """Train (or fine-tune from ``init``) an encoder on the groups of ``manifest``; returns ``out``.

    The checkpoint at ``out`` is rewritten atomically after every epoch. With ``resume=True`` and an
    existing ``out``, training continues from its last epoch with its configs, optimiser and RNG states
    (the other arguments must agree with it, or ``ChadError``). ``loss_plot`` (default: ``out`` with
    ``.loss.png``) receives the loss curve.

    The parts of the training can be replaced (``None``: the paper's):

    - ``model``: the encoder to train (default: :class:`~chadml.models.encoder.ResNet18Encoder` of
      ``config.width``/``config.dim``, or the ``init`` checkpoint's); it needs ``config()`` and
      ``from_config`` as ``ResNet18Encoder`` has, for the checkpoint. Not together with ``init``.
    - ``loss``: ``loss(embeddings, labels, indices_tuple) -> scalar`` (default: pytorch-metric-learning's
      ``NTXentLoss(temperature=config.temperature)``);
    - ``miner``: ``miner(embeddings, labels) -> indices_tuple`` (default: ``MultiSimilarityMiner(epsilon=
      config.ms_epsilon)``);
    - ``sampler``: ``sampler.sample(rng) -> (windows (N, F, Wf), labels (N,))`` (default:
      :class:`~chadml.training.sampler.GroupBatchSampler` over ``bank``); an epoch is
      ``config.steps_per_epoch`` steps, or ``ceil(len(bank) / sampler.k)``.
    """
    if model is not None and init is not None:
        raise ValueError("train takes either model= or init=, not both")
    out = os.fspath(out)
    dev = resolve_device(device)
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
    elif model is None:
        model = ResNet18Encoder(width=config.width, dim=config.dim, front=config.front)
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

    if bank is None and sampler is not None:
        bank = getattr(sampler, "bank", None)
    bank = bank or FragmentBank(manifest, feature_config, split=split, progress_bar=progress_bar)
    if sampler is None:
        wf, _ = window_config.frames(feature_config.frame_rate)
        sampler = GroupBatchSampler(bank, wf, config.groups_per_batch, config.per_group, config.groups_per_song)
    steps = config.steps_per_epoch or math.ceil(len(bank) / getattr(sampler, "k", config.groups_per_batch))
    loss_fn = losses.NTXentLoss(temperature=config.temperature) if loss is None else loss
    if miner is None:
        miner = miners.MultiSimilarityMiner(epsilon=config.ms_epsilon)
    aug = make_augment(feature_config, config, dev)
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


def make_augment(feature_config, config: TrainConfig, device) -> Augment | None:
    """The paper's augmentations matched to ``feature_config`` (seeded by ``config.seed``) on ``device``;
    ``None`` when ``config.augment`` is off."""
    if not config.augment:
        return None
    return Augment.for_features(feature_config, generator=config.seed, semitones=config.semitones,
                                p_pitch=config.p_pitch,
                                p_timbre=config.p_timbre if feature_config.kind == "cqt" else 0.0,
                                timbre_db=config.timbre_db, formant_db=config.formant_db).to(device)


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
