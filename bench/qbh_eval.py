"""The independent query-by-humming evaluation: held-out tunes, and a voice source training never used.

    PYTHONPATH=$PWD python bench/qbh_eval.py build --out EVAL [--songs 300] [--engine fluidsynth|timidity]
    PYTHONPATH=$PWD python bench/qbh_eval.py run --eval EVAL --method model:CKPT|f0-dtw|raw-cqt [--json OUT]
    PYTHONPATH=$PWD python bench/qbh_eval.py speed --eval EVAL --model CKPT --limit 100 [--queries 40]

``build`` renders, from tunes that release training never sees (:func:`chadml.corpus.held_out`):

- ``refs/``: one reference vocal track per tune (the built-in singer; 40-70 s),
- ``queries/hum``: a humming of each song by the built-in hummer (8-15 s, another key and tempo feel),
- ``queries/fluid``: a fragment of each song by FluidSynth's General-MIDI voices (choir "aah", voice
  "ooh", synth voice; and whistle/ocarina two octaves up), with the same amateur pitch and timing
  errors, room and noise, from a soundfont no part of chad trains on (release training plays the samples
  of other soundfonts, ``chadml.corpus.fluid.TRAINING_SOUNDFONTS``, and refuses these).

``run`` indexes the references with a method and reports top-1 / top-10 / MRR and seconds per query for
each query kind. FluidSynth uses the system's General-MIDI soundfont, or ``$CHAD_SOUNDFONT`` (another
soundfont gives another, fresh set of FluidSynth voices). ``speed`` times the model's search and the f0 + DTW matcher's on the same queries in one
process, alternating (the indexes of an earlier ``run --limit N`` of both are reused), and reports the
median seconds per query of each and their ratio. Everything is deterministic from ``--seed``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chadml import audio, corpus  # noqa: E402
from chadml.data import Manifest, SongTable  # noqa: E402
from chadml.corpus import fluid  # noqa: E402

FLUID_VOICES = (("choir_aahs", 0), ("voice_oohs", 0), ("synth_voice", 0), ("whistle", 24), ("ocarina", 24))


def build(out: str, n_songs: int, seed: int, engine: str = "fluidsynth") -> None:
    tunes = [t for t in corpus.load_tunes() if corpus.held_out(t.id)][:n_songs]
    print(f"{len(tunes)} held-out tunes", flush=True)
    paths = corpus.build_corpus(os.path.join(out, "refs"), tunes=tunes, n_songs=len(tunes), n_covers=0,
                                hummings_per_song=1, seed=seed, test_fraction=0.0, song_seconds=(40.0, 70.0),
                                humming_seconds=(8.0, 15.0))
    songs = SongTable.read(paths.songs)
    hums = Manifest.read(paths.hummings)
    by_id = {corpus.song_slug(t.id): t for t in tunes}
    rows = []
    for r in hums.rows:
        if r.audio_type == "humming":
            rows.append(("hum", r.id, str(r.group_id), r.path))
    os.makedirs(os.path.join(out, "queries", "fluid"), exist_ok=True)
    originals = {sid: o for sid, (o, _) in songs.songs().items()}
    for i, (sid, orow) in enumerate(sorted(originals.items())):
        qid = f"{sid}-fluid"
        path = os.path.join(out, "queries", "fluid", qid + ".flac")
        voice, octave = FLUID_VOICES[i % len(FLUID_VOICES)]
        rows.append(("fluid:" + voice, qid, sid, path))
        if os.path.exists(path):
            continue
        rng = corpus.derived_rng(seed, qid, "fluid")
        notes, total = corpus.original_notes(by_id[sid], sid, seed, (40.0, 70.0))
        starts = corpus.phrase_starts(notes)
        last = float(np.max(notes.sound_end[~np.isnan(notes.pitch)]))
        L = float(rng.uniform(8.0, 15.0))
        ok = [s for s in starts if s + L <= last + 0.2] or [0.0]
        fs = max(0.0, float(rng.choice(ok)) - 0.1)
        fe = min(fs + L, total)
        shift = float(rng.uniform(-6, 6)) + octave
        hn = corpus.amateur_notes(notes, fs, fe, shift, rng)
        y = fluid.render_performance(hn, fe - fs, program=fluid.PROGRAMS[voice], engine=engine)
        y = corpus.room_and_noise(y, rng)
        audio.save(path, y, audio.SR)
    with open(os.path.join(out, "queries.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "query", "song", "path"])
        w.writerows(rows)
    print(f"{len(originals)} songs, {len(rows)} queries in {out}", flush=True)


def song_list(eval_dir: str, limit: int | None = None) -> list:
    """``(song id, path, title)`` of the reference songs, in id order (the first ``limit``)."""
    songs = SongTable.read(os.path.join(eval_dir, "refs", "songs.csv"))
    return [(sid, o.path, sid) for sid, (o, _) in sorted(songs.songs().items())][:limit]


def model_index(eval_dir: str, ckpt: str, songs: list, tag: str = "") -> str:
    """The index of ``songs`` made with the model ``ckpt`` (built once, then reused): its directory; its
    name has the fingerprinter's precision where it is not fp32 (``CHAD_PRECISION``; the shipped model
    runs int8 by default)."""
    from chadml.index import SongIndex
    from chadml.models import load_fingerprinter
    fp = load_fingerprinter(ckpt)
    prec = "" if fp.precision == "fp32" else f"-{fp.precision}"
    idx_dir = os.path.join(eval_dir, "index-" + fp.model_id + prec + tag)
    if not os.path.isdir(idx_dir):
        idx = SongIndex.create(idx_dir, fingerprinter=fp, model_path=ckpt)
        idx.add_songs(songs, fp, progress_bar=True)
    return idx_dir


def read_queries(eval_dir):
    with open(os.path.join(eval_dir, "queries.csv")) as f:
        return list(csv.DictReader(f))


def run(eval_dir: str, method: str, out_json: str | None, top: int = 100, k: int = 5000,
        limit: int | None = None, tempo_scan: bool = False) -> dict:
    """Index the references with ``method`` and score both query kinds; ``limit``: only the first ``limit``
    songs (in id order) and their queries (a smaller catalogue for the slow f0-DTW baseline)."""
    from chadml.evaluate import evaluate
    songs = song_list(eval_dir, limit)
    tag = f"-first{limit}" if limit else ""
    t0 = time.perf_counter()
    if method.startswith("model:"):
        from chadml.search import Searcher
        searcher = Searcher(model_index(eval_dir, method.split(":", 1)[1], songs, tag), k=k, tempo_scan=tempo_scan)
    elif method == "f0-dtw":
        from chadml.search import F0DtwSearcher, F0Index
        idx_dir = os.path.join(eval_dir, "f0-index" + tag)
        if not os.path.isdir(idx_dir):
            F0Index.build(idx_dir, songs)
        searcher = F0DtwSearcher(idx_dir)
    elif method == "raw-cqt":
        from chadml.search import RawFeatureSearcher
        searcher = RawFeatureSearcher(songs)
    else:
        raise SystemExit(f"--method must be model:CKPT, f0-dtw or raw-cqt, got {method!r}")
    t_index = time.perf_counter() - t0
    in_catalogue = {sid for sid, _, _ in songs}
    rows = [r for r in read_queries(eval_dir) if r["song"] in in_catalogue]
    res = {"method": method, "songs": len(songs), "index_s": round(t_index, 1), "kinds": {}}
    if tempo_scan:
        res["tempo_scan"] = True
    for kind in ("hum", "fluid"):
        sel = [r for r in rows if r["kind"].split(":")[0] == kind]
        t = time.perf_counter()
        rep = evaluate(searcher, [(r["query"], r["path"]) for r in sel], {r["query"]: r["song"] for r in sel},
                       top=top, progress_bar=False)
        dt = (time.perf_counter() - t) / max(len(sel), 1)
        o = rep.overall
        res["kinds"][kind] = {"queries": len(sel), "top1": o["top1"], "top10": o["top10"], "mrr": o["mrr"],
                              "s_per_query": round(dt, 4)}
        # per voice for the fluid queries
        if kind == "fluid":
            ranks = {row["query"]: row["rank"] for row in rep.per_query}
            per = {}
            for r in sel:
                v = r["kind"].split(":")[1]
                rk = ranks.get(r["query"])
                per.setdefault(v, []).append(rk)
            res["kinds"][kind]["per_voice_top10"] = {
                v: float(np.mean([x is not None and x <= 10 for x in rk])) for v, rk in per.items()}
    print(json.dumps(res, indent=1), flush=True)
    if out_json:
        with open(out_json, "w") as f:
            json.dump(res, f, indent=1)
    return res


def speed(eval_dir: str, ckpt: str, limit: int, n_queries: int) -> dict:
    """Median seconds per query of the model (max Pearson) and of the f0 + DTW matcher, timed alternately."""
    from chadml.search import F0DtwSearcher, F0Index, Searcher
    songs = song_list(eval_dir, limit)
    tag = f"-first{limit}" if limit else ""
    model = Searcher(model_index(eval_dir, ckpt, songs, tag))
    f0_dir = os.path.join(eval_dir, "f0-index" + tag)
    if not os.path.isdir(f0_dir):
        F0Index.build(f0_dir, songs)
    f0 = F0DtwSearcher(f0_dir)
    inside = {sid for sid, _, _ in songs}
    rows = [r for r in read_queries(eval_dir) if r["song"] in inside][:n_queries]
    clips = [audio.load(r["path"]) for r in rows]
    model.query(clips[0]), f0.query(clips[0])                    # warm up (models loaded, caches)
    times: dict = {"model": [], "f0-dtw": []}
    for y in clips:
        for name, s in (("model", model), ("f0-dtw", f0)):
            t = time.perf_counter()
            s.query(y, top=10)
            times[name].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    res = {"songs": len(songs), "queries": len(clips), "median_s": med, "ratio": med["f0-dtw"] / med["model"]}
    print(json.dumps(res, indent=1), flush=True)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--songs", type=int, default=300)
    b.add_argument("--seed", type=int, default=2026)
    b.add_argument("--engine", choices=fluid.ENGINES, default="fluidsynth",
                   help="the renderer of the soundfont queries (timidity: an engine training never uses)")
    r = sub.add_parser("run")
    r.add_argument("--eval", required=True)
    r.add_argument("--method", required=True)
    r.add_argument("--json", default=None)
    r.add_argument("--limit", type=int, default=None, help="only the first N songs and their queries")
    r.add_argument("--tempo-scan", action="store_true", help="model methods: re-rank with the tempo re-scoring")
    sp = sub.add_parser("speed")
    sp.add_argument("--eval", required=True)
    sp.add_argument("--model", required=True)
    sp.add_argument("--limit", type=int, default=100)
    sp.add_argument("--queries", type=int, default=40)
    a = p.parse_args(argv)
    if a.cmd == "speed":
        speed(a.eval, a.model, a.limit, a.queries)
    elif a.cmd == "build":
        build(a.out, a.songs, a.seed, a.engine)
    else:
        run(a.eval, a.method, a.json, limit=a.limit, tempo_scan=a.tempo_scan)


if __name__ == "__main__":
    main()
