"""The end-to-end demo on the built-in corpus: ``chad demo [--out DIR] [--quick]``.

On a fresh machine, with nothing downloaded, it

1. builds the built-in corpus (folk tunes of music21 sung, covered and hummed: :mod:`chadml.corpus`),
2. trains M_0 on the humming groups (the H part), mines the covers with it (Algorithm 1) and retrains
   M_1 on H + the mined groups (:func:`chadml.loop.run_loop`),
3. indexes every original song with each model (:class:`chadml.index.SongIndex`),
4. runs the held-out hummings (songs never seen in training) as queries, re-ranked by max Pearson and
   by DTW, plus a raw-CQT max-Pearson baseline with no learning (:class:`chadml.search.RawFeatureSearcher`),
5. tabulates top-1 / top-10 / MRR (:func:`format_results`; ``chad demo`` prints it) and writes everything
   to ``DIR``: ``manifest.csv`` (the dataset M_1 was trained on), ``m0.pt``, ``m1.pt``, ``index_m0/``,
   ``index_m1/``, ``queries.csv``, ``results.json``, ``results.md`` and ``plots/``.

Every stage is resumable: rerun the same command after an interruption and finished work is kept.
The trainings run a fixed number of epochs and steps (no wall-clock cap): a slower machine takes longer
and trains the same models. :data:`QUICK` is a smoke test of the pipeline: its models are not usable.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable

from .corpus import build_corpus
from .data import Manifest, SongTable
from .evaluate import evaluate, format_metric
from .index import SongIndex
from .loop import LoopConfig, run_loop
from .mining import MiningConfig
from .models import checkpoint_id, load_fingerprinter
from .search import RawFeatureSearcher, Searcher
from .util import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["DemoConfig", "QUICK", "SMOKE_TEST_NOTE", "run_demo", "hummed_part", "format_table", "format_fragment_table",
           "format_results"]
FORMAT_VERSION = 1


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo, the trainings' budgets in epochs and steps (about 17 minutes in all on a quiet
    2-core machine; no wall-clock cap, so a slower machine gets the same models later). :data:`QUICK` is a
    smoke test of the pipeline (``smoke_test``: its models are too small and too briefly trained to work,
    and the results say so)."""

    n_songs: int = 80
    n_covers: int = 2
    hummings_per_song: int = 3
    song_seconds: tuple = (40.0, 60.0)
    humming_seconds: tuple = (6.0, 16.0)
    test_fraction: float = 0.25
    hummed_share: float = 1 / 3    # share of the train songs whose hummings form the H part (the rest: covers only)
    width: int = 32
    batch_size: int = 32
    epochs0: int = 150
    epochs: int = 80
    steps_per_epoch: int | None = 20
    seed: int = 0
    k: int = 5000
    control: bool = False         # also train M_0 on the hummings alone for M_1's epochs (about 3 more minutes)
    smoke_test: bool = False      # a run that only checks that every stage works: its models are not usable
    extra: dict = field(default_factory=dict)


QUICK = DemoConfig(n_songs=8, n_covers=1, hummings_per_song=2, song_seconds=(16.0, 20.0), humming_seconds=(5.0, 8.0),
                   test_fraction=0.25, hummed_share=0.5, width=4, batch_size=8, epochs0=2, epochs=1,
                   steps_per_epoch=2, smoke_test=True)

#: what a smoke-test run (:data:`QUICK`, ``chad demo --quick``) says before and after it runs
SMOKE_TEST_NOTE = ("--quick is a smoke test of the pipeline: every stage runs, on 8 songs with a tiny model trained "
                   "for a few steps; that model is NOT usable and its scores mean nothing (below raw CQT); run "
                   "`chad demo` for a working model")


def run_demo(out_dir: str | os.PathLike = "chad-demo", *, config: DemoConfig | None = None, progress: bool = True,
             device=None, echo: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) the demo into ``out_dir``; returns the results (also in ``results.json``).

    ``echo``: called with the name of each stage as it starts (the CLI prints them); the stages are
    logged (INFO) either way. :func:`format_results` gives the tables of the returned results as text.
    """
    def _stage(name: str) -> None:
        log.info("demo: %s", name)
        if echo is not None:
            echo(f"== {name}")

    config = config or DemoConfig()
    if config.smoke_test and echo is not None:
        echo(f"note: {SMOKE_TEST_NOTE}")
    out = os.path.abspath(os.fspath(out_dir))
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    t_all = time.perf_counter()
    timings: dict[str, float] = {}

    _stage("1/5 the built-in corpus")
    t = time.perf_counter()
    paths = build_corpus(os.path.join(out, "corpus"), n_songs=config.n_songs, n_covers=config.n_covers,
                         hummings_per_song=config.hummings_per_song, song_seconds=config.song_seconds,
                         humming_seconds=config.humming_seconds, test_fraction=config.test_fraction,
                         seed=config.seed)
    songs, hummings = SongTable.read(paths.songs), Manifest.read(paths.hummings)
    hummings = hummed_part(hummings, config.hummed_share)
    timings["corpus"] = time.perf_counter() - t

    _stage(f"2/5 M_0 on the hummings ({config.epochs0} epochs of {config.steps_per_epoch or 'all'} steps), mining "
           f"the covers, M_1 ({config.epochs} epochs): the semi-supervised loop")
    t = time.perf_counter()
    lcfg = LoopConfig(iterations=1, epochs0=config.epochs0, epochs=config.epochs,
                      mining=MiningConfig(), control=config.control,
                      train_kwargs={"width": config.width, "batch_size": config.batch_size,
                                    "steps_per_epoch": config.steps_per_epoch, "seed": config.seed,
                                    "lr_schedule": "cosine", "groups_per_song": 2})
    logs = run_loop(songs, hummings, os.path.join(out, "loop"), config=lcfg, progress=progress, device=device)
    for i in (0, 1):
        src = os.path.join(out, "loop", f"M{i}.pt")
        _copy(src, os.path.join(out, f"m{i}.pt"))
        png = os.path.splitext(src)[0] + ".loss.png"
        if os.path.exists(png):
            _copy(png, os.path.join(out, "plots", f"m{i}_loss.png"))
    _copy(os.path.join(out, "loop", "iter_01", "train.csv"), os.path.join(out, "manifest.csv"))
    timings["loop"] = time.perf_counter() - t

    _stage("3/5 indexing the songs with M_0 and M_1")
    t = time.perf_counter()
    song_list = [(sid, orig.path, sid) for sid, (orig, _) in sorted(songs.songs().items())]
    for i in (0, 1):
        _build_index(os.path.join(out, f"index_m{i}"), os.path.join(out, f"m{i}.pt"), song_list, progress, device)
    timings["index"] = time.perf_counter() - t

    _stage("4/5 held-out hummings as queries")
    queries, truth = _queries(hummings)
    with atomic_path(os.path.join(out, "queries.csv")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("query,song,path\n")
            for (qid, path) in queries:
                f.write(f"{qid},{truth[qid]},{path}\n")
    t = time.perf_counter()
    rows = _evaluate_all(out, queries, truth, song_list, config, progress, device)
    timings["queries"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all

    _stage("5/5 results")
    first, last = logs[0], (logs[1] if len(logs) > 1 else None)
    results = {"format_version": FORMAT_VERSION, "config": _jsonable(dataclasses.asdict(config)),
               "songs": len(song_list), "queries": len(queries), "table": rows,
               "fragment_retrieval": {"M0": first.get("retrieval"), "M1": last and last.get("retrieval"),
                                      "control": last and last.get("retrieval_control"),
                                      "untrained": first.get("retrieval_untrained"), "raw": first.get("retrieval_raw")},
               "mining": {k: last.get(k) for k in ("groups", "relevant", "uncertain", "precision", "recall",
                                                    "hours")} if last else None,
               "seconds": timings, "out": out}
    atomic_write_text(os.path.join(out, "results.json"), json.dumps(results, indent=1, sort_keys=True))
    table = format_table(rows)
    frag = format_fragment_table(results["fragment_retrieval"])
    atomic_write_text(os.path.join(out, "results.md"), "## Songs (held-out hummings as queries)\n\n" + table +
                      "\n\n## Fragments (each held-out humming window against all original windows)\n\n" + frag + "\n")
    return results


def hummed_part(hummings, share: float):
    """The H part of the demo: the held-out (non-train) humming groups, and the train-split groups of
    ``share`` of the train songs (evenly spaced in song-id order).

    As in CHAD, where crowdsourced hummings cover far fewer songs than the mined covers (the paper's H
    part: 2.1 hours of originals, its C part: 49.5), M_0 learns from the hummings of some songs and M_1
    also from the covers of all of them.

    Example
    -------
    >>> from chadml.data import FragmentRow
    >>> rows = [FragmentRow(f"song{s}", "0", f"song{s}/0/humming", "humming", source_id=f"v{s}", start=0.0,
    ...                     end=5.0, duration=5.0, split="train" if s < 6 else "test") for s in range(9)]
    >>> sorted({r.group_id for r in hummed_part(Manifest(rows), 1 / 3).rows})   # 2 of the 6 train songs
    ['song0', 'song3', 'song6', 'song7', 'song8']
    """
    if not (isinstance(share, (int, float)) and 0 < share <= 1):
        raise ValueError(f"hummed_share must be in (0, 1], got {share!r}")
    songs = sorted({str(r.group_id) for r in hummings.rows if r.split == "train"})
    n = max(1, int(round(share * len(songs)))) if songs else 0
    keep = {songs[int(i * len(songs) / n)] for i in range(n)}
    return Manifest([r for r in hummings.rows if r.split != "train" or str(r.group_id) in keep])


def _copy(src: str, dst: str) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _build_index(index_dir: str, ckpt: str, song_list, progress: bool, device) -> None:
    mid = checkpoint_id(ckpt)
    if os.path.isdir(index_dir) and os.listdir(index_dir):
        try:
            idx = SongIndex.open(index_dir, expect_model_id=mid)
            if len(idx) == len(song_list):
                return
        except Exception as exc:  # noqa: BLE001 - a stale or partial index is rebuilt
            log.warning("rebuilding %s: %s", index_dir, exc)
        shutil.rmtree(index_dir)
    fp = load_fingerprinter(ckpt, device=device)
    idx = SongIndex.create(index_dir, fingerprinter=fp, model_path=ckpt)
    idx.add_songs(song_list, fp, progress_bar=progress)


def _queries(hummings):
    queries, truth = [], {}
    for r in hummings.rows:
        if r.audio_type == "humming" and r.split == "test":
            queries.append((str(r.id), r.path))
            truth[str(r.id)] = str(r.group_id)
    if not queries:
        raise ValueError("the corpus has no held-out (split 'test') hummings to query with")
    return queries, truth


def _evaluate_all(out, queries, truth, song_list, config, progress, device) -> list[dict]:
    rows = []
    methods = [(f"M{i} + {rr}", lambda i=i, rr=rr: Searcher(os.path.join(out, f"index_m{i}"), rerank=rr, k=config.k,
                                                            device=device))
               for i in (0, 1) for rr in ("pearson", "dtw")]
    methods.append(("raw CQT + pearson (no learning)", lambda: RawFeatureSearcher(song_list)))
    for name, make in methods:
        searcher = make()
        t = time.perf_counter()
        rep = evaluate(searcher, queries, truth, top=100, progress_bar=progress)
        dt = (time.perf_counter() - t) / max(len(queries), 1)
        slug = name.split(" (")[0].replace(" + ", "_").replace(" ", "_").lower()
        rep.to_json(os.path.join(out, f"eval_{slug}.json"))
        rep.plot(os.path.join(out, "plots", f"hitrate_{slug}.png"))
        o = rep.overall
        rows.append({"method": name, "top1": o["top1"], "top10": o["top10"], "mrr": o["mrr"],
                     "seconds_per_query": dt})
    return rows


def _metric_cells(r: dict) -> str:
    return " | ".join(format_metric(r[k]) for k in ("top1", "top10", "mrr"))


def format_table(rows: list[dict]) -> str:
    """The Markdown table of the song queries (the ``table`` of :func:`run_demo`'s results)."""
    lines = ["| method | top-1 | top-10 | MRR | s/query |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {_metric_cells(r)} | {r['seconds_per_query']:.3f} |")
    return "\n".join(lines)


def format_fragment_table(frag: dict) -> str:
    """The Markdown table of the fragment retrieval of each encoder (``fragment_retrieval`` of the results)."""
    lines = ["| encoder | top-1 | top-10 | MRR | query windows |", "|---|---|---|---|---|"]
    names = {"M0": "M0 (trained on hummings)", "M1": "M1 (hummings + mined covers)",
             "control": "M0 + M1's epochs on the hummings alone (control)",
             "untrained": "untrained ResNet18", "raw": "raw CQT, Pearson (no encoder)"}
    for key, name in names.items():
        r = frag.get(key)
        if r:
            lines.append(f"| {name} | {_metric_cells(r)} | {int(r['queries'])} |")
    return "\n".join(lines)


def _jsonable(d):
    return json.loads(json.dumps(d, default=list))


def format_results(results: dict) -> str:
    """The text ``chad demo`` prints at the end: the song and fragment tables, the mining, the totals."""
    lines = ["songs: held-out hummings against every original song", format_table(results["table"]),
             "\nfragments: each held-out humming window against all original windows",
             format_fragment_table(results["fragment_retrieval"])]
    if results["mining"]:
        m = results["mining"]
        lines.append(f"\nmining with M_0: {m['groups']} groups ({m['relevant']} relevant, {m['uncertain']} uncertain), "
                     f"precision {format_metric(m['precision'])}, recall {format_metric(m['recall'])}")
    out = results["out"]
    lines.append(f"\n{results['queries']} held-out hummings against {results['songs']} songs; "
                 f"total {results['seconds']['total']:.0f} s. Outputs in {out} (plots in {os.path.join(out, 'plots')})")
    if results.get("config", {}).get("smoke_test"):
        lines.append(f"\nNOTE: {SMOKE_TEST_NOTE}")
    return "\n".join(lines)
