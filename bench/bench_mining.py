"""Mining (Algorithm 1) on the built-in corpus: precision/recall against the true alignments, and throughput.

    PYTHONPATH=$PWD python bench/bench_mining.py --corpus /tmp/chad-corpus --model m0.pt [--songs 30]

Builds the corpus when ``--corpus`` has no ``songs.csv`` (``--n-songs``, ``--n-covers``), mines its
train-split songs with the model (one process, torch on the machine's cores), and prints:

- mining precision / recall (same-music truth and the strict ``map_time`` truth, tolerance 0.5 s),
  uncertain fragments apart;
- songs per minute of the whole mining and of its DSP part (everything but fingerprinting: audio
  loading, silence splitting, merging, fragment correlation, cross-correlation matching), from the
  per-song timings that ``mine`` records;
- with ``--compare-embed``: the same for ``embed="fragment"`` (every fragment fingerprinted on its own)
  against the default ``embed="slice"``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(songs, fp, ids, config, label):
    from chadml.mining import mine, mining_precision, read_summary
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        man = mine(songs, fp, os.path.join(d, "m.csv"), config=config, progress=False, song_ids=ids)
        wall = time.perf_counter() - t
        s = read_summary(os.path.join(d, "m.csv.work"))
    p = mining_precision(man, songs)
    n = s["songs"]
    tm = s["timing"]
    row = {"embed": label, "songs": n, "skipped": len(s["skipped"]), "groups": s["groups"],
           "relevant": p["relevant"], "uncertain": p["uncertain"], "precision": p["precision"],
           "recall": p["recall"], "precision_strict": p["precision_strict"], "recall_strict": p["recall_strict"],
           "uncertain_precision": p["uncertain_precision"], "recall_with_uncertain": p["recall_with_uncertain"],
           "songs_per_min": 60 * n / wall, "dsp_songs_per_min": 60 * n / max(tm["dsp"], 1e-9),
           "encoder_s": tm["encoder"], "dsp_s": tm["dsp"], "load_s": tm["load"], "wall_s": wall}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--model", required=True, help="encoder checkpoint (chad train)")
    ap.add_argument("--songs", type=int, default=None, help="mine only the first N train-split songs")
    ap.add_argument("--n-songs", type=int, default=40)
    ap.add_argument("--n-covers", type=int, default=3)
    ap.add_argument("--split", default="train")
    ap.add_argument("--refine", action="store_true")
    ap.add_argument("--center", action="store_true")
    ap.add_argument("--fit-tempo", action="store_true")
    ap.add_argument("--compare-embed", action="store_true")
    ap.add_argument("--json", default=None, help="write the rows here")
    a = ap.parse_args(argv)
    from chadml.data import SongTable
    from chadml.mining import MiningConfig
    from chadml.training.train import load_fingerprinter
    path = os.path.join(a.corpus, "songs.csv")
    if not os.path.exists(path):
        from chadml.corpus import build_corpus
        build_corpus(a.corpus, n_songs=a.n_songs, n_covers=a.n_covers)
    songs = SongTable.read(path)
    ids = sorted(s for s, (o, _) in songs.songs().items() if a.split == "all" or o.split == a.split)
    if a.songs:
        ids = ids[:a.songs]
    fp = load_fingerprinter(a.model)
    rows = [run(songs, fp, ids, MiningConfig(refine=a.refine, center=a.center, fit_tempo=a.fit_tempo), "slice")]
    if a.compare_embed:
        rows.append(run(songs, fp, ids, MiningConfig(refine=a.refine, center=a.center, fit_tempo=a.fit_tempo,
                                                  embed="fragment"),
                        "fragment"))
    cols = ["embed", "songs", "groups", "relevant", "uncertain", "precision", "recall", "precision_strict",
            "recall_strict", "uncertain_precision", "songs_per_min", "dsp_songs_per_min"]
    print(" ".join(f"{c:>14}" for c in cols))
    for r in rows:
        print(" ".join(f"{r[c]:>14.3f}" if isinstance(r[c], float) else f"{r[c]:>14}" for c in cols))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
