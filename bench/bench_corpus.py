"""The built-in corpus: tune parsing (cold, and from the cache) and the synthesiser's speed.

Anchors: music21's own parse of the same ABC file (what a user would call instead of our cache), and
real time (the audio's duration) for rendering.

    PYTHONPATH=$PWD python bench/bench_corpus.py [--quick]
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_time, row  # noqa: E402

from chadml import corpus  # noqa: E402


def cases(quick: bool = False) -> list[dict]:
    import music21
    from music21 import converter
    rows = []
    n_tunes = 20 if quick else 100
    # cold: a fresh cache, parse n_tunes (round-robin over the collections)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        tunes = corpus.load_tunes(limit=n_tunes, cache_dir=cache)
        cold = time.perf_counter() - t0
        warm = median_time(lambda: corpus.load_tunes(limit=n_tunes, cache_dir=cache), repeat=5)
    rows.append(row(f"load_tunes cold, {len(tunes)} tunes", cold, "real time", float("nan"),
                    f"{len(tunes) / cold:.1f} tunes/s cold"))
    rows.append(row(f"load_tunes cached, {len(tunes)} tunes", warm, "load_tunes cold", cold,
                    f"{cold / warm:.0f}x faster than parsing"))
    # anchor: music21 parsing one 50-tune opus file itself (no music21 pickle cache)
    path = os.path.join(os.path.dirname(music21.__file__), "corpus", "oneills1850", "0001-0050.abc")
    m21 = median_time(lambda: converter.parse(path, forceSource=True), repeat=1 if quick else 3, warmup=0)
    with tempfile.TemporaryDirectory() as cache:
        corpus.load_tunes(["oneills1850"], limit=50, cache_dir=cache)
        ours = median_time(lambda: corpus.load_tunes(["oneills1850"], limit=50, cache_dir=cache), repeat=5)
    rows.append(row("50 tunes of oneills1850/0001-0050.abc", ours, "music21 converter.parse (opus)", m21,
                    "ours from the cache"))
    # rendering: one ~60 s sung original, per singer kind, against real time
    rng = np.random.default_rng(0)
    tune = tunes[1]
    song = corpus.make_song(tune, "bench", 2, max_beats=60 / (60 / tune.bpm))
    perf = corpus.plan_original(song, 60 / tune.bpm, 0.0, rng)
    notes = corpus.sing(song, perf, rng)
    for name, singer in (("singer", corpus.Singer.random(np.random.default_rng(1))),
                         ("hummer", corpus.Singer.random(np.random.default_rng(1), hummer=True))):
        t = median_time(lambda: corpus.render(notes, singer, perf.total, rng), repeat=3 if quick else 7)
        rows.append(row(f"render {perf.total:.0f} s ({name}, {singer.n_harmonics} harmonics max)", t,
                        "real time", perf.total, f"{perf.total / t:.0f}x real time, one process"))
    # a whole small corpus, every file written (FLAC), one process
    with tempfile.TemporaryDirectory() as out:
        n = 3 if quick else 8
        t0 = time.perf_counter()
        corpus.build_corpus(out, n_songs=n, n_covers=2, hummings_per_song=3, workers=1)
        wall = time.perf_counter() - t0
        import json
        audio_s = json.load(open(os.path.join(out, "corpus.json")))["timing"]["audio_rendered_s"]
    rows.append(row(f"build_corpus {n} songs x (1 + 2 covers) + 3 hummings, 1 process", wall, "real time", audio_s,
                    f"{audio_s / wall:.0f}x real time incl. planning and FLAC writes"))
    return rows


if __name__ == "__main__":
    for r in cases(quick="--quick" in sys.argv):
        print(f"{r['case']:<62} ours {r['ours_s']:9.4f} s | {r['anchor']:<32} {r['anchor_s']:9.4f} s | {r['note']}")
