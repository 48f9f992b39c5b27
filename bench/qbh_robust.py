"""What real recordings do to a query, on the independent evaluation set of ``bench/qbh_eval.py``.

    PYTHONPATH=$PWD python bench/qbh_robust.py padding --eval EVAL [--model CKPT] [--queries 100] [--untrimmed]
    PYTHONPATH=$PWD python bench/qbh_robust.py confidence --eval EVAL [--model CKPT] [--songs 150]

``padding``: the first ``--queries`` hummed and FluidSynth queries, each clean, with 5 s of silence before or
after, 3 s on both sides, and 5 s of -50 dBFS white noise before or after, searched in the index of all
reference songs (max-Pearson and DTW re-ranking); ``--untrimmed`` also searches them with the query's
voicing trim off (``voicing=False``: what chad did before). Top-1 per variant.

``confidence``: an index of the first ``--songs`` reference songs; the hummed and FluidSynth queries of
those songs (in the catalogue), the queries of the other songs (out of the catalogue: no right answer),
and noise, beeps and silence; the shares reported confident with the index's calibration (the built-in
one unless ``chad calibrate`` wrote one). The model: the shipped one unless ``--model``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from qbh_eval import model_index, read_queries, song_list  # noqa: E402

from chadml import audio  # noqa: E402
from chadml.config import SAMPLE_RATE as SR  # noqa: E402

VARIANTS = ("clean", "silence 5 s before", "silence 5 s after", "silence 3 s both sides",
            "-50 dB noise 5 s before", "-50 dB noise 5 s after")


def padded(y: np.ndarray, variant: str, seed: int) -> np.ndarray:
    """``y`` with the silence or noise of ``variant`` around it."""
    rng = np.random.default_rng(seed)
    z5, z3 = np.zeros(5 * SR, np.float32), np.zeros(3 * SR, np.float32)
    n5 = (rng.standard_normal(5 * SR) * 10 ** (-50 / 20)).astype(np.float32)
    return {"clean": y, "silence 5 s before": np.r_[z5, y], "silence 5 s after": np.r_[y, z5],
            "silence 3 s both sides": np.r_[z3, y, z3], "-50 dB noise 5 s before": np.r_[n5, y],
            "-50 dB noise 5 s after": np.r_[y, n5]}[variant]


def junk(seed: int, n: int) -> list[tuple[str, np.ndarray]]:
    """Noise (white, pink-ish, brown-ish), 0.5 s beeps in silence or in noise, and near-silence, 4-12 s."""
    from scipy.signal import lfilter
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        m = int(rng.uniform(4, 12) * SR)
        kind = ("white", "pink", "brown", "beep", "beep+noise", "silence")[j % 6]
        w = rng.standard_normal(m)
        if kind == "white":
            y = w
        elif kind == "pink":
            y = lfilter([0.0499, -0.0960, 0.0506, -0.0044], [1, -2.4950, 2.0173, -0.5222], w)
        elif kind == "brown":
            y = lfilter([1.0], [1, -0.98], w)
        elif kind.startswith("beep"):
            y = np.zeros(m)
            t = np.arange(SR // 2) / SR
            a = int(rng.integers(0, m - len(t)))
            y[a:a + len(t)] = np.sin(2 * np.pi * rng.uniform(400, 2000) * t)
            if kind == "beep+noise":
                y = y + 0.01 * w
        else:
            y = w * 1e-4
        out.append((kind, (y / (np.abs(y).max() + 1e-12) * rng.uniform(0.05, 0.9)).astype(np.float32)))
    return out


def _queries(eval_dir: str, n: int | None, songs: set | None = None) -> list[dict]:
    rows = [r for r in read_queries(eval_dir) if songs is None or r["song"] in songs]
    out = []
    for kind in ("hum", "fluid"):
        out += [r for r in rows if r["kind"].split(":")[0] == kind][:n]
    return out


def padding(eval_dir: str, model: str, n: int, untrimmed: bool, out_json: str | None) -> dict:
    from chadml.search import Searcher
    from chadml.util import progress
    idx = model_index(eval_dir, model, song_list(eval_dir))
    modes = [("trimmed", None)] + ([("untrimmed", False)] if untrimmed else [])
    searchers = {(m, r): Searcher(idx, rerank=r, voicing=v) for m, v in modes for r in ("pearson", "dtw")}
    hits: dict[str, list[bool]] = {}
    rows = _queries(eval_dir, n)
    for i, r in enumerate(progress(rows, desc="padding", unit="query", disable=False)):
        y = audio.load(r["path"])
        kind = r["kind"].split(":")[0]
        for variant in VARIANTS:
            q = padded(y, variant, i)
            for (mode, rerank), s in searchers.items():
                ms = s.query(q, top=1)
                hits.setdefault(f"{kind} | {mode} | {rerank} | {variant}", []).append(
                    bool(ms) and ms[0].song_id == r["song"])
    table = {k: {"top1": float(np.mean(v)), "n": len(v)} for k, v in hits.items()}
    res = {"model": model, "index": idx, "table": table}
    for k, v in sorted(table.items()):
        print(f"{k:60s} top-1 {v['top1']:.3f} (n={v['n']})")
    if out_json:
        with open(out_json, "w") as f:
            json.dump(res, f, indent=1)
    return res


def confidence(eval_dir: str, model: str, n_songs: int, out_json: str | None) -> dict:
    from chadml.search import Searcher
    from chadml.util import progress
    songs = song_list(eval_dir, n_songs)
    idx = model_index(eval_dir, model, songs, f"-first{n_songs}")
    inside = {sid for sid, _, _ in songs}
    rows = read_queries(eval_dir)
    res: dict = {"model": model, "index": idx, "songs": len(songs)}
    for rerank in ("pearson", "dtw"):
        s = Searcher(idx, rerank=rerank)
        counts: dict[str, list] = {}
        items = [(r["kind"].split(":")[0], r["song"], r["path"]) for r in rows] + \
                [("junk:" + k, None, y) for k, y in junk(7, 36)]
        for kind, want, q in progress(items, desc=f"confidence {rerank}", unit="query", disable=False):
            ms = s.query(audio.load(q) if isinstance(q, str) else q, top=1)
            conf = bool(ms) and bool(ms[0].confident)
            if kind.startswith("junk"):
                counts.setdefault("noise, beeps, silence: not confident", []).append(not conf)
            elif want in inside:
                right = bool(ms) and ms[0].song_id == want
                counts.setdefault(f"{kind} in catalogue: right", []).append(right)
                key = "right answers: confident" if right else "wrong answers: confident"
                counts.setdefault(f"{kind} in catalogue, {key}", []).append(conf)
            else:
                counts.setdefault(f"{kind} out of catalogue: not confident", []).append(not conf)
        res[rerank] = {k: {"share": float(np.mean(v)), "n": len(v)} for k, v in counts.items()}
        for k, v in sorted(res[rerank].items()):
            print(f"{rerank:8s} {k:55s} {v['share']:.3f} (n={v['n']})")
    if out_json:
        with open(out_json, "w") as f:
            json.dump(res, f, indent=1)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("padding", "confidence"):
        c = sub.add_parser(name)
        c.add_argument("--eval", required=True, help="the folder of `qbh_eval.py build`")
        c.add_argument("--model", default="builtin:chad-qbh", help="checkpoint (default: the shipped model)")
        c.add_argument("--json", default=None)
        if name == "padding":
            c.add_argument("--queries", type=int, default=100, help="queries of each kind (hum, fluid)")
            c.add_argument("--untrimmed", action="store_true", help="also search with the query trim off")
        else:
            c.add_argument("--songs", type=int, default=150, help="reference songs in the index")
    a = p.parse_args(argv)
    if a.cmd == "padding":
        padding(a.eval, a.model, a.queries, a.untrimmed, a.json)
    else:
        confidence(a.eval, a.model, a.songs, a.json)


if __name__ == "__main__":
    main()
