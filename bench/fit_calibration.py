"""Fit the built-in confidence calibrations (``chadml.search.confidence.DEFAULT_CALIBRATIONS``) for a model.

The data comes from the built-in corpus only, from tunes that neither the release training
(``chadml.release.training_tunes(RELEASE.n_songs)``) nor the independent evaluation (held-out tunes) nor music21's
essenFolksong ever use: the next 200 training tunes. 100 of their songs are indexed; the positives are hums
of those songs (every hum style, 30 % through a phone channel), the negatives hums of the other 100 songs
(no right answer in the index) and the positives whose best match is wrong. Prints the coefficients and the
fit's counts for each re-ranker (max Pearson, DTW), to paste into ``DEFAULT_CALIBRATIONS``.

    PYTHONPATH=$PWD python bench/fit_calibration.py --out WORKDIR [--model builtin:chad-qbh]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="work folder (the corpus and the index; reused when rerun)")
    ap.add_argument("--model", default="builtin:chad-qbh")
    ap.add_argument("--songs", type=int, default=200, help="songs rendered: half indexed, half not")
    a = ap.parse_args(argv)
    from chadml.corpus import HUM_STYLES, build_corpus
    from chadml.data import Manifest, SongTable
    from chadml.index import SongIndex, song_items
    from chadml.models import load_fingerprinter
    from chadml.release import RELEASE, training_tunes
    from chadml.search import Searcher
    from chadml.search.confidence import calibrate

    n = RELEASE.n_songs
    tunes = training_tunes(n + a.songs)[n:]                # never in the release training corpus
    paths = build_corpus(os.path.join(a.out, "corpus"), tunes=tunes, n_songs=len(tunes), n_covers=0,
                         hummings_per_song=2, hummers=1, seed=11, test_fraction=0.5, song_seconds=(40.0, 70.0),
                         humming_seconds=(8.0, 15.0), hum_styles=HUM_STYLES, channel_p=0.3)
    songs = SongTable.read(paths.songs)
    indexed = sorted(sid for sid, (o, _) in songs.songs().items() if o.split == "train")
    items = [it for it in song_items(paths.songs) if it[0] in set(indexed)]
    idx_dir = os.path.join(a.out, "index")
    if not os.path.isdir(idx_dir):
        fp = load_fingerprinter(a.model)
        idx = SongIndex.create(idx_dir, fingerprinter=fp, model_path=a.model)
        idx.add_songs(items, fp, progress_bar=True)
    hums = [r for r in Manifest.read(paths.hummings) if r.audio_type == "humming"]
    inside = set(indexed)
    positives = [(r.path, r.group_id) for r in hums if r.group_id in inside]
    negatives = [r.path for r in hums if r.group_id not in inside]
    out = {}
    for rerank in ("pearson", "dtw"):
        cal = calibrate(Searcher(idx_dir, rerank=rerank), positives, negatives, rerank=rerank, progress=True)
        out[rerank] = {"coef": [round(float(c), 3) for c in cal.coef], "stats": cal.stats}
        print(rerank, json.dumps(out[rerank]), flush=True)
    with open(os.path.join(a.out, "calibration_fit.json"), "w") as f:
        json.dump({"model": a.model, "indexed": len(indexed), "positives": len(positives),
                   "negatives": len(negatives), "fits": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
