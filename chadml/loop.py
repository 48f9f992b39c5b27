"""The semi-supervised loop of the paper (section 4.1, Figure 2): M_0 on the H part, then M_i -> M_{i+1}.

Iteration 0 trains M_0 on the humming groups (the H part, train split). Iteration i >= 1 mines cover songs
(train split only; all of them, or the i-th batch of ``songs_per_iteration``) with M_{i-1}
(:func:`chadml.mining.mine`), adds the new groups to the training set (H plus, for every song, its most
recent mining), and trains M_i: fine-tuned from M_{i-1} (default) or from scratch. Each iteration ends with
a JSON log, written atomically: groups and hours mined, relevant/uncertain counts, mining precision and
recall against the songs' true alignments (generated data), and the retrieval quality of the new model on
held-out hummings (:func:`chadml.training.fragment_retrieval`, split "test").

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

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field

from .data import Manifest
from .errors import ChadError
from .features import LONG, SHORT, FeatureConfig
from .mining import MiningConfig, mine, mining_precision, read_summary
from .models import checkpoint_id, load_fingerprinter
from .training import TrainConfig, fragment_retrieval
from .training import train as train_encoder
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
        Fields of :class:`chadml.training.TrainConfig` (e.g. ``width``, ``batch_size``, ``seed``); ``epochs``
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
    config = config or LoopConfig()
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, "config": config.to_dict()}
    meta_path = os.path.join(out_dir, "loop.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            old = json.load(f)
        new = json.loads(json.dumps(meta))
        # more (or fewer) iterations of the same run continue it: M_0 .. M_k are kept
        same = {**old, "config": {**old.get("config", {}), "iterations": None}} == \
            {**new, "config": {**new["config"], "iterations": None}}
        if not same:
            raise ChadError(f"{out_dir} holds a loop run with another config ({old['config']}); "
                            "use another --out or delete it")
        if old != new:
            atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True))
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
        tc = TrainConfig(**{**config.train_kwargs, "epochs": config.epochs0 if i == 0 else config.epochs,
                              "max_minutes": config.max_minutes})
        # resume=True: a checkpoint left by an interrupted training is continued (a finished one is kept)
        train_encoder(manifest, ckpt(i, suffix), feature_config=fcfg, window_config=wcfg, config=tc, init=init,
                resume=True, device=device, progress_bar=progress)
        return time.perf_counter() - t

    def evaluate(i, methods=("model",), suffix=""):
        t = time.perf_counter()
        fp = load_fingerprinter(ckpt(i, suffix), device=device)
        r = fragment_retrieval(fp, hummings, split="test", methods=methods)
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
        write_log(0, {"model": ckpt(0), "model_id": checkpoint_id(ckpt(0)), "trained_on": "H",
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
        fp = load_fingerprinter(ckpt(i - 1), device=device)
        mined = mine(songs, fp, mined_path, config=config.mining, engine=engine, address=address,
                     progress=progress, song_ids=batch, model_id=checkpoint_id(ckpt(i - 1)))
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
            "model": ckpt(i), "model_id": checkpoint_id(ckpt(i)), "mined_with": ckpt(i - 1),
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
    return logs[: config.iterations + 1]        # a run continued with fewer iterations: its first ones


def _collect(mined, latest: dict, include_uncertain: bool) -> None:
    """Put a mining's groups into ``latest`` (song -> rows), replacing that song's older mining."""
    by_song: dict[str, list] = {}
    for rows in mined.groups().values():
        keep = [r for r in rows if r.audio_type == "original" or include_uncertain or not r.check_by_crowdsource]
        if sum(r.audio_type != "original" for r in keep) == 0:
            continue
        by_song.setdefault(str(rows[0].group_id), []).extend(keep)
    latest.update(by_song)
