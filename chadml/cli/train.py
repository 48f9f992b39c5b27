"""``chad train``: train (or fine-tune, or resume) the fingerprint encoder on a manifest of fragment groups.

Prints one JSON line: the checkpoint, its epoch, and the last epoch's loss and speed.
"""
from __future__ import annotations

import argparse
import os

from .options import BUILTIN_MODEL, common

# TrainConfig's fields set by flags: its messages name the field, the CLI names the flag
_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr_schedule": "--lr-schedule", "lr": "--lr",
          "width": "--width", "groups_per_song": "--groups-per-song", "steps_per_epoch": "--steps-per-epoch",
          "max_minutes": "--max-minutes", "seed": "--seed"}


def register(sub) -> None:
    p = sub.add_parser("train", parents=[common()],
                       help="train the fingerprint encoder on a manifest of aligned fragment groups",
                       description="Train (or resume) the ResNet18 fingerprint encoder with NT-Xent + "
                                   "multi-similarity mining on the groups of a dataset manifest.")
    p.add_argument("--data", default=None, help="dataset manifest (CSV/Parquet) of fragment groups")
    p.add_argument("--out", required=True, help="checkpoint to write (rewritten atomically every epoch); with "
                                                "--preset release, the folder of the whole run")
    p.add_argument("--preset", choices=("release",), default=None,
                   help="release: build the model chad ships, from scratch (corpus of the built-in tunes minus "
                        "the held-out ones, varied voices, M_0 (and the loop with --loop), fp16 export with its int8 "
                        "ranges; budgets in steps; resumes when rerun; see chadml.release; its sampled voices need "
                        "apt-get install fluidsynth timgm6mb-soundfont csound-soundfont). Takes no --data")
    p.add_argument("--loop", type=int, default=None, metavar="N",
                   help="with --preset release: iterations of the paper's semi-supervised loop after M_0 (mine "
                        "the covers with M_i, train M_i+1 on hummings + mined groups); default: the preset's "
                        "(1: the shipped model is M_1; see chadml/assets/MODEL_CARD.md)")
    p.add_argument("--features", choices=("cqt", "crepe"), default="cqt", help="input features (%(default)s)")
    p.add_argument("--crepe-model", choices=("full", "tiny"), default="full",
                   help="the CREPE network for --features crepe (%(default)s)")
    p.add_argument("--window", choices=("short", "long"), default="short",
                   help="analysis windows: short (3 s every 0.25 s) or long (8 s every 0.64 s) (%(default)s)")
    p.add_argument("--epochs", type=int, default=100, help="epochs (%(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="fragments per batch (%(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (%(default)s)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="constant (the paper) or cosine decay to 5%% of --lr over the epochs (%(default)s)")
    p.add_argument("--width", type=int, default=64, help="encoder base channels (64 = ResNet18)")
    p.add_argument("--groups-per-song", type=int, default=1,
                   help="draw each batch's groups in sets of N from one song (hard negatives; %(default)s)")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="batches per epoch (default: one pass over the groups)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after the first epoch that ends past this wall time (resumable)")
    p.add_argument("--no-augment", action="store_true", help="train without the paper's augmentations")
    p.add_argument("--init", default=None,
                   help="checkpoint to fine-tune from (builtin:chad-qbh: the model chad ships)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint at --out")
    p.add_argument("--split", default="train", help="manifest split to train on ('' for all rows)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random stream (%(default)s)")
    p.set_defaults(func=run, interrupt_message="interrupted: --out holds the last finished epoch; "
                                               "continue with --resume")


def train_config(args: argparse.Namespace):
    """The :class:`chadml.training.TrainConfig` of the flags; a bad value is a UsageError naming its flag."""
    from ..errors import UsageError
    from ..training import TrainConfig
    try:
        return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width=args.width,
                           steps_per_epoch=args.steps_per_epoch, max_minutes=args.max_minutes,
                           augment=not args.no_augment, seed=args.seed, lr_schedule=args.lr_schedule,
                           groups_per_song=args.groups_per_song)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        for field, flag in _FLAGS.items():
            msg = msg.replace(f"TrainConfig.{field}", flag)
        raise UsageError(msg) from None


def run(args: argparse.Namespace) -> int:
    import json

    from ..errors import UsageError
    from .options import check_device
    check_device(args.device)
    if args.preset is not None:
        if args.data is not None:
            raise UsageError("--preset release builds its own data: drop --data")
        import dataclasses

        from ..release import RELEASE, run_release
        config = RELEASE
        if args.loop is not None:
            if isinstance(args.loop, bool) or args.loop < 0:
                raise UsageError(f"--loop must be an integer >= 0, got {args.loop}")
            config = dataclasses.replace(RELEASE, iterations=int(args.loop))
        summary = run_release(args.out, config=config, progress=not getattr(args, "quiet", False),
                              device=args.device, log=lambda m: print(m, flush=True))
        print(json.dumps({"model": summary["model"], "seconds": summary["seconds"]}))
        return 0
    if args.loop is not None:
        raise UsageError("--loop goes with --preset release (the loop of a run on your data: `chad loop`)")
    if args.data is None:
        raise UsageError("--data is required (or --preset release)")

    from ..data import Manifest
    from ..errors import UsageError
    from ..features import LONG, SHORT, FeatureConfig
    from ..training import load_checkpoint, train

    if not os.path.isfile(args.data):
        raise UsageError(f"--data: no such file {args.data}")
    if args.init is not None and args.init != BUILTIN_MODEL and not os.path.isfile(args.init):
        raise UsageError(f"--init: no such file {args.init}")
    cfg = train_config(args)
    fc = FeatureConfig(kind=args.features, crepe_model=args.crepe_model)
    wc = SHORT if args.window == "short" else LONG
    manifest = Manifest.read(args.data)
    out = train(manifest, args.out, feature_config=fc, window_config=wc, config=cfg, init=args.init,
                resume=args.resume, device=args.device, split=args.split or None,
                progress_bar=not getattr(args, "quiet", False))
    state = load_checkpoint(out)
    last = state["history"][-1] if state["history"] else {}
    print(json.dumps({"checkpoint": out, "epoch": state["epoch"],
                      **{k: last.get(k) for k in ("loss", "fragments_per_s")}}))
    return 0
