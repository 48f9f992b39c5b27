"""The release model: one reproducible command that trains, from scratch, the model chad ships.

``chad train --preset release --out DIR`` (or :func:`run_release`):

1. renders a training corpus from the built-in tunes **minus the held-out ones**
   (:func:`chadml.corpus.held_out`, one tune in ten, kept for independent evaluation; music21's
   ``essenFolksong`` is never used), with voices far more varied than the demo's: hummed ``mm``, sung
   syllables (oo, la, da, na, doo), whistling two octaves up, small choirs, and the recorded voices and
   instruments of two training soundfonts played by FluidSynth (:data:`chadml.corpus.SAMPLED_STYLES`),
   vibrato, pitch errors and drift, uneven rhythm, rooms, background noise, phone-like band limits and
   clipping;
2. trains M_0 on the humming groups and, for ``iterations`` > 0 (the preset: 1), mines the covers with
   it and trains M_1 on hummings + mined groups (the semi-supervised loop of the paper,
   :func:`chadml.loop.run_loop`); pitch augmentation over a whole octave;
3. exports the last model with fp16 weights (:func:`export_model`) and writes its model card, with the
   ranges of its static int8 copy (:mod:`chadml.models.quant`) calibrated on fixed clips of the training
   corpus (:func:`calibration_windows`).

Budgets are steps and epochs, never minutes: a slower machine gets the same model, later. Every stage
resumes after an interruption. The seeds, the configuration and the timings are logged in
``DIR/release.json``.

Example
-------
>>> cfg = ReleaseConfig(n_songs=8, epochs0=1, steps_per_epoch=1)      # a tiny run, for tests
>>> cfg.n_songs
8
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from . import audio
from .config import from_dict
from .corpus import HUM_STYLES, build_corpus, held_out, load_tunes
from .data import Manifest, SongTable
from .loop import LoopConfig, run_loop
from .mining import MiningConfig
from .models import load_checkpoint, load_fingerprinter, model_id, write_state
from .models.quant import RANGES_KEY, calibrate
from .util import atomic_write_text

__all__ = ["ReleaseConfig", "RELEASE", "RELEASE_MINING", "run_release", "export_model", "training_tunes",
           "calibration_windows", "int8_calibration"]


@dataclass(frozen=True)
class ReleaseConfig:
    """What the release model is trained on, and for how long (steps, not minutes)."""

    n_songs: int = 2000                   # training tunes (held-out tunes excluded)
    n_covers: int = 1                     # cover versions per song (the C part, for the loop's mining)
    hummings_per_song: int = 4
    hummers: int = 2                      # hummings per fragment: a group is the original + these
    song_seconds: tuple = (30.0, 50.0)
    humming_seconds: tuple = (6.0, 14.0)
    hum_styles: tuple = HUM_STYLES        # every style, the sampled ones too (fluidsynth + training soundfonts)
    channel_p: float = 0.3                # share of queries through a phone-like channel
    test_fraction: float = 0.05           # songs kept out of training for the fragment-retrieval log
    iterations: int = 1                   # loop iterations after M_0 (mining the covers; `chad train --loop N`)
    epochs0: int = 60
    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 32
    width: int = 32
    lr: float = 1e-3
    semitones: tuple = (-6.0, 6.0)
    p_pitch: float = 0.8
    p_timbre: float = 0.8                 # another voice's spectral envelope (training.augment.Timbre)
    timbre_db: float = 30.0               # Timbre's envelope peak (dB)
    formant_db: float = 0.0               # Timbre's largest formant bump (dB; 0: none)
    front: str = "salience"               # the encoder's timbre front end (models.front.TimbreFront)
    groups_per_song: int = 2
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "ReleaseConfig":
        d = dict(d)
        for k in ("song_seconds", "humming_seconds", "hum_styles", "semitones"):
            if k in d:
                d[k] = tuple(d[k])
        return from_dict(cls, d, "ReleaseConfig")


RELEASE = ReleaseConfig()

#: the matching the release's loop mines its covers with: chad's rigid matching (``MiningConfig.rigid()``),
#: the one the shipped model was trained with, so that ``chad train --preset release`` rebuilds that model;
#: the default matching (``MiningConfig()``, the tempo scan) is more precise on the built-in corpus's covers
#: and is what ``chad mine``, ``chad loop`` and the demo use
RELEASE_MINING = MiningConfig.rigid()


def training_tunes(n: int, *, cache_dir=None) -> list:
    """The first ``n`` tunes of the built-in collections that are not held out (round-robin order)."""
    limit = n + n // 5 + 20
    while True:
        tunes = load_tunes(limit=limit, cache_dir=cache_dir)
        out = [t for t in tunes if not held_out(t.id)]
        if len(out) >= n or len(tunes) < limit:
            return out[:n]
        limit *= 2


def calibration_windows(hummings: str | os.PathLike, fingerprinter, *, clips: int = 64,
                        max_windows: int = 2048) -> np.ndarray:
    """Fixed feature windows to calibrate a model's int8 ranges on: ``clips`` rows of a corpus manifest
    (``hummings.csv``: hummings and the original fragments they sing), evenly spaced in its order, their
    windows evenly thinned to at most ``max_windows``. The same corpus gives the same windows."""
    rows = list(Manifest.read(hummings))
    if not rows:
        raise ValueError(f"{hummings}: no rows to calibrate on")
    pick = [rows[i] for i in np.unique(np.linspace(0, len(rows) - 1, min(clips, len(rows))).round().astype(int))]
    sr = int(getattr(fingerprinter.feature_config, "sr", 16000))
    parts = []
    for r in pick:
        y = audio.load(r.path, sr=sr)
        if r.audio_type == "original" and r.end is not None:
            y = y[int(float(r.start or 0.0) * sr):int(float(r.end) * sr)]
        w, _ = fingerprinter.windows(fingerprinter.features(y, sr))
        if len(w):
            parts.append(w)
    if not parts:
        raise ValueError(f"{hummings}: no clip long enough for one window")
    w = np.concatenate(parts)
    keep = np.unique(np.linspace(0, len(w) - 1, min(max_windows, len(w))).round().astype(int))
    return np.ascontiguousarray(w[keep], dtype=np.float32)


def int8_calibration(checkpoint: str | os.PathLike, hummings: str | os.PathLike, **kw) -> dict:
    """The int8 ranges of the model in ``checkpoint`` (:func:`chadml.models.quant.calibrate`) over
    :func:`calibration_windows` of the corpus manifest ``hummings``."""
    fp = load_fingerprinter(checkpoint)
    return calibrate(fp.model, calibration_windows(hummings, fp, **kw))


def export_model(checkpoint: str | os.PathLike, out: str | os.PathLike, *, card: dict | None = None,
                 int8_ranges: dict | None = None) -> dict:
    """Write ``checkpoint`` as a release model: fp16 weights, no optimiser state, with ``card`` (and the
    model's ``int8_ranges``, :mod:`chadml.models.quant`) in its ``extra``; returns ``{"path", "bytes",
    "model_id"}``. The file is a normal checkpoint: :func:`chadml.models.load_fingerprinter` reads it
    (weights in fp32 again; int8 inference where ranges are given)."""
    state = load_checkpoint(checkpoint)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()}
    slim = {k: state[k] for k in ("format_version", "kind", "encoder_config", "feature_config", "window_config",
                                  "train_config")}
    slim.update({"model": half, "optimizer": None, "epoch": state["epoch"],
                 "history": state.get("history", [])[-1:], "rng_state": None, "extra": {"card": card or {}}})
    if int8_ranges:
        slim["extra"][RANGES_KEY] = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in int8_ranges.items()}
    write_state(out, slim)
    mid = model_id(slim["encoder_config"], slim["feature_config"], slim["window_config"], half)
    return {"path": os.fspath(out), "bytes": os.path.getsize(out), "model_id": mid}


def _earlier_seconds(meta_path: str, config: ReleaseConfig) -> dict:
    """The stage times an earlier run into the same folder recorded, where it had this configuration."""
    try:
        with open(meta_path, encoding="utf-8") as f:
            prev = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(prev, dict) or prev.get("config") != config.to_dict():
        return {}
    return {k: float(v) for k, v in (prev.get("seconds") or {}).items() if isinstance(v, (int, float))}


def run_release(out_dir: str | os.PathLike, *, config: ReleaseConfig | None = None, progress: bool = True,
                device: str | None = None, log=None) -> dict:
    """Run (or resume) the release training into ``out_dir``; returns the summary (``release.json``).

    The model is ``out_dir/chad-qbh.pt``; copy it to ``chadml/assets/`` to ship it."""
    config = config or RELEASE
    log = log or logging.getLogger(__name__).info
    out = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out, exist_ok=True)
    meta_path = os.path.join(out, "release.json")
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    # a resumed run adds its time to the time the earlier runs of the same configuration recorded
    before = _earlier_seconds(meta_path, config)
    log(f"release 1/3: corpus of {config.n_songs} training tunes (held-out tunes excluded)")
    t = time.perf_counter()
    tunes = training_tunes(config.n_songs)
    paths = build_corpus(os.path.join(out, "corpus"), tunes=tunes, n_songs=len(tunes), n_covers=config.n_covers,
                         hummings_per_song=config.hummings_per_song, hummers=config.hummers, seed=config.seed,
                         test_fraction=config.test_fraction, song_seconds=config.song_seconds,
                         humming_seconds=config.humming_seconds, hum_styles=config.hum_styles,
                         channel_p=config.channel_p)
    timings["corpus_s"] = time.perf_counter() - t + before.get("corpus_s", 0.0)
    log(f"release 2/3: M_0 and {config.iterations} loop iteration(s)")
    t = time.perf_counter()
    lcfg = LoopConfig(iterations=config.iterations, epochs0=config.epochs0, epochs=config.epochs,
                      mining=RELEASE_MINING,
                      train_kwargs={"width": config.width, "batch_size": config.batch_size, "lr": config.lr,
                                    "steps_per_epoch": config.steps_per_epoch, "seed": config.seed,
                                    "lr_schedule": "cosine", "groups_per_song": config.groups_per_song,
                                    "semitones": list(config.semitones), "p_pitch": config.p_pitch,
                                    "p_timbre": config.p_timbre, "timbre_db": config.timbre_db,
                                    "formant_db": config.formant_db, "front": config.front})
    logs = run_loop(SongTable.read(paths.songs), Manifest.read(paths.hummings), os.path.join(out, "loop"),
                    config=lcfg, progress=progress, device=device)
    timings["train_s"] = time.perf_counter() - t + before.get("train_s", 0.0)
    last = os.path.join(out, "loop", f"M{config.iterations}.pt")
    log("release 3/3: export")
    card = {"name": "chad-qbh", "config": config.to_dict(), "command": "chad train --preset release",
            "held_out_rule": "chadml.corpus.held_out (crc32(tune id) % 10 == 0)",
            "retrieval": logs[-1].get("retrieval"), "timings_s": {k: round(v, 1) for k, v in timings.items()}}
    shipped = os.path.join(out, "chad-qbh.pt")
    export_model(last, shipped, card=card)
    # the ranges of the model as shipped (fp16 weights), so that they are exactly those of its int8 copy
    info = export_model(last, shipped, card=card, int8_ranges=int8_calibration(shipped, paths.hummings))
    timings["total_s"] = time.perf_counter() - t_all + before.get("total_s", 0.0)
    summary = {"config": config.to_dict(), "model": info, "retrieval": [lg.get("retrieval") for lg in logs],
               "seconds": {k: round(v, 1) for k, v in timings.items()}, "torch_threads": torch.get_num_threads()}
    atomic_write_text(meta_path, json.dumps(summary, indent=1, sort_keys=True))
    return summary
