"""The semi-supervised loop of the paper (section 4.1, Figure 2): M_0 on the H part, then M_i -> M_{i+1}.

Iteration 0 trains M_0 on the humming groups (the H part, train split). Iteration i >= 1 mines cover songs
(train split only; all of them, or the i-th batch of ``songs_per_iteration``) with M_{i-1}
(:func:`chadml.mining.mine`), adds the new groups to the training set (H plus, for every song, its most
recent mining), and trains M_i: fine-tuned from M_{i-1} (default) or from scratch. Each iteration ends with
a JSON log, written atomically: groups and hours mined, relevant/uncertain counts, mining precision and
recall against the songs' true alignments (generated data), and the retrieval quality of the new model on
held-out hummings (:func:`chadml.train.fragment_retrieval`, split "test").

Everything lives in one output directory; finished iterations are not redone, an interrupted mining
resumes from its per-song results, and an interrupted training resumes from its checkpoint.

Layout of ``out_dir``::

    loop.json            the loop's config (a rerun with another config is refused)
    M0.pt, M1.pt, ...    the models
    iter_01/mined.csv    the groups mined with M_0 (iter_01/mined.csv.work: per-song results)
    iter_01/train.csv    the training manifest of M_1
    log_00.json, ...     one log per iteration
    log.json             all logs so far, in order

Example
-------
>>> from chadml.loop import LoopConfig, run_loop
>>> cfg = LoopConfig(iterations=2, epochs0=5, epochs=2)                     # doctest: +SKIP
>>> logs = run_loop(SongTable.read("corpus/songs.csv"),
...                 Manifest.read("corpus/hummings.csv"), "runs/loop", config=cfg)  # doctest: +SKIP
>>> [round(l["retrieval"]["top10"], 3) for l in logs]                      # doctest: +SKIP
[0.41, 0.47, 0.52]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field

from . import ChadError
from .mining import MiningConfig, add_mining_options, config_from_args, mine, mining_precision, read_summary
from .util import atomic_write_text

__all__ = ["LoopConfig", "run_loop", "read_logs", "FORMAT_VERSION"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LoopConfig:
    """The loop's settings.

    Parameters
    ----------
    iterations : int
        How many M_i -> M_{i+1} steps after M_0.
    songs_per_iteration : int or None
        Mine this many train-split songs per iteration (batches in song-id order, cycling); None: every
        train-split song each iteration (its newest mining replaces the older one in the training set).
    features : {"cqt", "crepe"}; window : {"short", "long"}
        The encoder's input features and analysis windows (M_short: 3 s / 0.25 s, M_long: 8 s / 0.64 s).
    epochs0, epochs : int
        Training epochs of M_0 and of each M_{i+1}.
    fine_tune : bool
        M_{i+1} starts from M_i's weights (True) or from scratch.
    include_uncertain : bool
        Train on uncertain cover fragments too (the paper has them checked by crowdsourcing first; default:
        relevant only).
    max_minutes : float or None
        A time limit for each training.
    control : bool
        Also train, each iteration, a control model ``M{i}_control.pt``: M_{i-1} trained the same way on
        the humming groups alone, logged as ``retrieval_control``. M_i above its control shows that the
        mined groups help, not just the extra training.
    mining : MiningConfig
    train_kwargs : dict
        Fields of :class:`chadml.train.TrainConfig` (e.g. ``width``, ``batch_size``, ``seed``); ``epochs``
        and ``max_minutes`` come from this config.
    """

    iterations: int = 2
    songs_per_iteration: int | None = None
    features: str = "cqt"
    window: str = "short"
    epochs0: int = 100
    epochs: int = 20
    fine_tune: bool = True
    include_uncertain: bool = False
    max_minutes: float | None = None
    control: bool = False
    mining: MiningConfig = field(default_factory=MiningConfig)
    train_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("iterations", "epochs0", "epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"LoopConfig.{name} must be an int >= 0, got {v!r}")
        v = self.songs_per_iteration
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"LoopConfig.songs_per_iteration must be None or an int >= 1, got {v!r}")
        if self.features not in ("cqt", "crepe"):
            raise ValueError(f"LoopConfig.features must be 'cqt' or 'crepe', got {self.features!r}")
        if self.window not in ("short", "long"):
            raise ValueError(f"LoopConfig.window must be 'short' or 'long', got {self.window!r}")
        if self.max_minutes is not None and not (self.max_minutes > 0):
            raise ValueError(f"LoopConfig.max_minutes must be None or > 0, got {self.max_minutes!r}")
        if not isinstance(self.control, bool):
            raise TypeError(f"LoopConfig.control must be a bool, got {type(self.control).__name__}")
        if not isinstance(self.mining, MiningConfig):
            raise TypeError(f"LoopConfig.mining must be a MiningConfig, got {type(self.mining).__name__}")

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["mining"] = self.mining.to_dict()
        d["train_kwargs"] = dict(self.train_kwargs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LoopConfig":
        d = dict(d)
        d["mining"] = MiningConfig.from_dict(d.get("mining", {}))
        return cls(**d)


def _feature_window(config: LoopConfig):
    from .features import LONG, SHORT, FeatureConfig
    return FeatureConfig(kind=config.features), (SHORT if config.window == "short" else LONG)


def _train_ids(songs) -> list[str]:
    table = songs.songs()
    out = []
    for sid, (o, _) in table.items():
        if o is not None and str(getattr(o, "split", "train")) == "train":
            out.append(str(sid))
    return sorted(out)


def _batch(ids: list[str], i: int, k: int | None) -> list[str]:
    if k is None or k >= len(ids):
        return list(ids)
    start = ((i - 1) * k) % len(ids)
    return [ids[(start + j) % len(ids)] for j in range(k)]


def _finite(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def read_logs(out_dir: str | os.PathLike) -> list[dict]:
    """The iteration logs written so far, in order."""
    out_dir = os.fspath(out_dir)
    logs = []
    i = 0
    while os.path.exists(p := os.path.join(out_dir, f"log_{i:02d}.json")):
        with open(p) as f:
            logs.append(json.load(f))
        i += 1
    return logs


def run_loop(songs, hummings, out_dir: str | os.PathLike, *, config: LoopConfig | None = None,
             engine: str = "local", address: str | None = None, progress: bool = True,
             device: str | None = None) -> list[dict]:
    """Run (or resume) the semi-supervised loop; return the logs of iterations 0..N.

    Parameters
    ----------
    songs : chadml.data.SongTable
        The C part: originals and covers (only train-split songs are mined).
    hummings : chadml.data.Manifest
        The H part: humming groups (train split for training, test split for the retrieval measure).
    out_dir : path
        Models, manifests and logs (see the module docstring). Rerun with the same arguments to resume.
    config : LoopConfig
    engine, address : the mining engine (see :func:`chadml.mining.mine`).
    """
    from . import train as T
    from .data import Manifest
    config = config or LoopConfig()
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, "config": config.to_dict()}
    meta_path = os.path.join(out_dir, "loop.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            old = json.load(f)
        if old != json.loads(json.dumps(meta)):
            raise ChadError(f"{out_dir} holds a loop run with another config ({old['config']}); "
                            "use another --out or delete it")
    else:
        atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True))

    fcfg, wcfg = _feature_window(config)
    hum_rows = list(hummings.rows)
    hum_groups = {r.key for r in hum_rows}
    ids = _train_ids(songs)
    if config.iterations and not ids:
        raise ValueError("songs: no song of the train split to mine")
    logs = read_logs(out_dir)

    def ckpt(i, suffix=""):
        return os.path.join(out_dir, f"M{i}{suffix}.pt")

    def train_model(i, manifest, init, suffix=""):
        t = time.perf_counter()
        tc = T.TrainConfig(**{**config.train_kwargs, "epochs": config.epochs0 if i == 0 else config.epochs,
                              "max_minutes": config.max_minutes})
        # resume=True: a checkpoint left by an interrupted training is continued (a finished one is kept)
        T.train(manifest, ckpt(i, suffix), feature_config=fcfg, window_config=wcfg, config=tc, init=init,
                resume=True, device=device, progress_bar=progress)
        return time.perf_counter() - t

    def evaluate(i, methods=("model",), suffix=""):
        t = time.perf_counter()
        fp = T.load_fingerprinter(ckpt(i, suffix), device=device)
        r = T.fragment_retrieval(fp, hummings, split="test", methods=methods)
        return {m: {k: float(v) for k, v in r[m].items()} for m in methods}, time.perf_counter() - t

    def write_log(i, entry):
        entry = {"format_version": FORMAT_VERSION, "iteration": i, **entry}
        atomic_write_text(os.path.join(out_dir, f"log_{i:02d}.json"), json.dumps(entry, indent=1, sort_keys=True))
        logs.append(entry)
        atomic_write_text(os.path.join(out_dir, "log.json"), json.dumps(logs, indent=1, sort_keys=True))
        r = entry["retrieval"]
        log.info("iteration %d: %s top1 %.3f top10 %.3f mrr %.3f", i, os.path.basename(ckpt(i)),
                 r.get("top1", float("nan")), r.get("top10", float("nan")), r.get("mrr", float("nan")))

    if not logs:
        train_s = train_model(0, Manifest(hum_rows), None)
        ret, eval_s = evaluate(0, ("model", "raw", "untrained"))
        n_train = sum(r.split == "train" for r in hum_rows)
        write_log(0, {"model": ckpt(0), "model_id": T.checkpoint_id(ckpt(0)), "trained_on": "H",
                      "train_groups": len({r.key for r in hum_rows if r.split == "train"}),
                      "train_fragments": n_train, "retrieval": ret["model"], "retrieval_raw": ret["raw"],
                      "retrieval_untrained": ret["untrained"],
                      "seconds": {"train": train_s, "eval": eval_s}})

    latest: dict[str, list] = {}     # song -> its rows from the newest mining
    for i in range(1, config.iterations + 1):
        it_dir = os.path.join(out_dir, f"iter_{i:02d}")
        mined_path = os.path.join(it_dir, "mined.csv")
        batch = _batch(ids, i, config.songs_per_iteration)
        if i < len(logs) and os.path.exists(mined_path):    # finished: only rebuild the training set
            _collect(Manifest.read(mined_path), latest, config.include_uncertain)
            continue
        t = time.perf_counter()
        fp = T.load_fingerprinter(ckpt(i - 1), device=device)
        mined = mine(songs, fp, mined_path, config=config.mining, engine=engine, address=address,
                     progress=progress, song_ids=batch, model_id=T.checkpoint_id(ckpt(i - 1)))
        mine_s = time.perf_counter() - t
        summary = read_summary(mined_path + ".work")
        prec = mining_precision(mined, songs)
        _collect(mined, latest, config.include_uncertain)
        train_rows = hum_rows + [r for rows in latest.values() for r in rows]
        clash = hum_groups & {r.key for rows in latest.values() for r in rows}
        if clash:
            raise ChadError(f"mined group ids clash with humming group ids: {sorted(clash)[:5]}")
        train_path = os.path.join(it_dir, "train.csv")
        train_manifest = Manifest(train_rows)
        train_manifest.write(train_path)
        init = ckpt(i - 1) if config.fine_tune else None
        train_s = train_model(i, train_manifest, init)
        ret, eval_s = evaluate(i)
        extra = {}
        if config.control:     # the same training on the hummings alone
            control_s = train_model(i, Manifest(hum_rows), init, "_control")
            ret_c, _ = evaluate(i, suffix="_control")
            extra = {"retrieval_control": ret_c["model"], "control_model": ckpt(i, "_control"),
                     "seconds_control": control_s}
        mined_rows = mined.rows
        write_log(i, {**extra,
            "model": ckpt(i), "model_id": T.checkpoint_id(ckpt(i)), "mined_with": ckpt(i - 1),
            "songs_mined": len(batch), "songs_skipped": summary["skipped"],
            "groups": summary["groups"], "hours": summary["hours"], "cover_hours": summary["cover_hours"],
            "relevant": summary["relevant"], "uncertain": summary["uncertain"],
            "precision": _finite(prec["precision"]), "recall": _finite(prec["recall"]),
            "uncertain_precision": _finite(prec["uncertain_precision"]),
            "recall_with_uncertain": _finite(prec["recall_with_uncertain"]),
            "mining": {k: _finite(v) for k, v in prec.items()},
            "train_groups": len({r.key for r in train_rows if r.split == "train"}),
            "train_fragments": len(train_rows), "mined_fragments": len(mined_rows),
            "retrieval": ret["model"], "retrieval_prev": logs[i - 1]["retrieval"],
            "seconds": {"mine": mine_s, "train": train_s, "eval": eval_s,
                        "mine_encoder": summary["timing"]["encoder"], "mine_dsp": summary["timing"]["dsp"]},
        })
    return logs


def _collect(mined, latest: dict, include_uncertain: bool) -> None:
    """Put a mining's groups into ``latest`` (song -> rows), replacing that song's older mining."""
    by_song: dict[str, list] = {}
    for rows in mined.groups().values():
        keep = [r for r in rows if r.audio_type == "original" or include_uncertain or not r.check_by_crowdsource]
        if sum(r.audio_type != "original" for r in keep) == 0:
            continue
        by_song.setdefault(str(rows[0].group_id), []).extend(keep)
    latest.update(by_song)


# ------------------------------------------------------------------------------------------------ CLI
def _cli_loop(args) -> int:
    from .data import Manifest, SongTable
    from . import util as prog
    for name, p in (("--songs", args.songs), ("--hummings", args.hummings)):
        if not os.path.exists(p):
            raise FileNotFoundError(f"{name}: no such file: {p}")
    train_kwargs = {}
    for name in ("width", "batch_size", "steps_per_epoch", "seed", "groups_per_song"):
        if getattr(args, name) is not None:
            train_kwargs[name] = getattr(args, name)
    if args.no_augment:
        train_kwargs["augment"] = False
    if args.lr_schedule != "constant":
        train_kwargs["lr_schedule"] = args.lr_schedule
    config = LoopConfig(iterations=args.iterations, songs_per_iteration=args.songs_per_iteration,
                        features=args.features, window=args.window, epochs0=args.epochs0, epochs=args.epochs,
                        fine_tune=not args.from_scratch, include_uncertain=args.include_uncertain,
                        control=args.control,
                        max_minutes=args.max_minutes, mining=config_from_args(args), train_kwargs=train_kwargs)
    logs = run_loop(SongTable.read(args.songs), Manifest.read(args.hummings), args.out, config=config,
                    engine=args.engine, address=args.address,
                    progress=not (prog.QUIET or getattr(args, "quiet", False)))
    print(f"{'iter':>4} {'groups':>6} {'hours':>6} {'rel':>5} {'unc':>5} {'prec':>6} {'recall':>6} "
          f"{'top1':>6} {'top10':>6} {'mrr':>6}")
    for e in logs:
        r = e["retrieval"]

        def f(x):
            return "     -" if x is None else f"{x:6.3f}"
        print(f"{e['iteration']:>4} {e.get('groups', 0):>6} {e.get('hours', 0.0):>6.2f} {e.get('relevant', 0):>5} "
              f"{e.get('uncertain', 0):>5} {f(e.get('precision'))} {f(e.get('recall'))} "
              f"{f(r.get('top1'))} {f(r.get('top10'))} {f(r.get('mrr'))}")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "loop", help="the semi-supervised loop: M_0 on hummings, then mine covers and retrain, N times",
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
    p.set_defaults(func=_cli_loop)
