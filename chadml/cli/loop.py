"""``chad loop``: the semi-supervised loop of :mod:`chadml.loop` (M_0 on hummings, then mine and retrain)."""
from __future__ import annotations

import argparse
import os

from .options import add_mining_options, common, config_from_args

# LoopConfig.train_kwargs that the command line sets when given (the training's defaults otherwise)
_TRAIN_OPTIONS = ("width", "batch_size", "steps_per_epoch", "seed", "groups_per_song")


def register(sub) -> None:
    p = sub.add_parser(
        "loop", parents=[common()],
        help="the semi-supervised loop: M_0 on hummings, then mine covers and retrain, N times",
        description="Train M_0 on the humming groups, then N times: mine the train-split cover songs with "
                    "M_i (Algorithm 1), add the groups, train M_{i+1}; a JSON log per iteration in OUT. "
                    "Resumable: rerun the same command. Exit codes: 0 done, 1 a failure, 2 bad usage or input.")
    p.add_argument("--iterations", type=int, required=True, metavar="N", help="M_i -> M_{i+1} steps after M_0")
    p.add_argument("--songs", required=True, metavar="SONGS_CSV", help="the song table (originals + covers)")
    p.add_argument("--hummings", required=True, metavar="MANIFEST", help="the humming groups (H part)")
    p.add_argument("--out", required=True, metavar="DIR", help="models, manifests and logs")
    p.add_argument("--songs-per-iteration", type=int, default=None, metavar="K",
                   help="mine K songs per iteration (default: all train-split songs every iteration)")
    p.add_argument("--features", choices=("cqt", "crepe"), default="cqt")
    p.add_argument("--window", choices=("short", "long"), default="short")
    p.add_argument("--epochs0", type=int, default=100, help="epochs of M_0 (%(default)s)")
    p.add_argument("--epochs", type=int, default=20, help="epochs of each M_{i+1} (%(default)s)")
    p.add_argument("--from-scratch", action="store_true", help="train each M_{i+1} from scratch (default: fine-tune)")
    p.add_argument("--include-uncertain", action="store_true", help="train on uncertain cover fragments too")
    p.add_argument("--control", action="store_true",
                   help="also train each M_i on the hummings alone (logged as retrieval_control)")
    p.add_argument("--max-minutes", type=float, default=None, help="time limit of each training")
    p.add_argument("--width", type=int, default=None, help="encoder width (default: train's)")
    p.add_argument("--batch-size", type=int, default=None, help="fragments per batch (default: train's)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="batches per epoch (default: one pass)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: train's)")
    p.add_argument("--groups-per-song", type=int, default=None,
                   help="draw each batch's groups in sets of N from one song (hard negatives; default: train's)")
    p.add_argument("--no-augment", action="store_true", help="train without the augmentations")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="learning rate over each training: constant (the paper) or cosine decay (%(default)s)")
    add_mining_options(p)
    p.set_defaults(func=run)


def _check_counts(args: argparse.Namespace) -> None:
    """The counts, checked here so that a bad one is named by its flag (the configs name their fields)."""
    from ..errors import UsageError
    from ..training import TrainConfig
    min_batch = 2 * TrainConfig().per_group      # two groups of per_group fragments: positives and negatives
    for flag, value, least in (("--iterations", args.iterations, 0), ("--epochs0", args.epochs0, 1),
                               ("--epochs", args.epochs, 1), ("--songs-per-iteration", args.songs_per_iteration, 1),
                               ("--width", args.width, 1), ("--batch-size", args.batch_size, min_batch),
                               ("--steps-per-epoch", args.steps_per_epoch, 1),
                               ("--groups-per-song", args.groups_per_song, 1)):
        if value is not None and value < least:
            raise UsageError(f"{flag} must be >= {least}, got {value}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise UsageError(f"--max-minutes must be > 0, got {args.max_minutes}")


def format_logs(logs: list[dict]) -> str:
    """One line per iteration: mined groups and hours, their precision and recall, the retrieval."""
    def f(x):
        return "     -" if x is None else f"{x:6.3f}"
    lines = [f"{'iter':>4} {'groups':>6} {'hours':>6} {'rel':>5} {'unc':>5} {'prec':>6} {'recall':>6} "
             f"{'top1':>6} {'top10':>6} {'mrr':>6}"]
    for e in logs:
        r = e["retrieval"]
        lines.append(f"{e['iteration']:>4} {e.get('groups', 0):>6} {e.get('hours', 0.0):>6.2f} "
                     f"{e.get('relevant', 0):>5} {e.get('uncertain', 0):>5} {f(e.get('precision'))} "
                     f"{f(e.get('recall'))} {f(r.get('top1'))} {f(r.get('top10'))} {f(r.get('mrr'))}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..data import Manifest, SongTable
    from ..errors import UsageError
    from ..loop import LoopConfig, run_loop
    for flag, path in (("--songs", args.songs), ("--hummings", args.hummings)):
        if not os.path.exists(path):
            raise UsageError(f"{flag}: no such file: {path}")
    _check_counts(args)
    train_kwargs = {name: getattr(args, name) for name in _TRAIN_OPTIONS if getattr(args, name) is not None}
    if args.no_augment:
        train_kwargs["augment"] = False
    if args.lr_schedule != "constant":
        train_kwargs["lr_schedule"] = args.lr_schedule
    config = LoopConfig(iterations=args.iterations, songs_per_iteration=args.songs_per_iteration,
                        features=args.features, window=args.window, epochs0=args.epochs0, epochs=args.epochs,
                        fine_tune=not args.from_scratch, include_uncertain=args.include_uncertain,
                        control=args.control, max_minutes=args.max_minutes,
                        mining=config_from_args(args), train_kwargs=train_kwargs)
    args.interrupt_message = "interrupted; rerun the same command to resume"
    logs = run_loop(SongTable.read(args.songs), Manifest.read(args.hummings), args.out, config=config,
                    engine=args.engine, address=args.address, progress=not args.quiet)
    print(format_logs(logs))
    return 0
