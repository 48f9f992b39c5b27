"""Query latency of the song index + search (ANN and re-ranking apart), build time and index size.

Synthetic collections: every song is a sequence of random L2-normalised 128-d fingerprints at the
M_short rate (a window every 0.25 s) for a 3-4 minute song; a query is a 10-second hum: 29 consecutive
fingerprints of one song plus noise. Rows (median seconds over the queries):

- ``ann``: FAISS k-NN of the query's fingerprints + candidate voting (the index's own kind: exact
  under 200k fingerprints, IVF + 8-bit SQ above); anchor: exact search (IndexFlatL2) over the same
  vectors where it fits in memory.
- ``rerank``: max-Pearson re-ranking of the top K = min(5000, songs) candidates, in place in the
  memory-mapped store; anchor: re-ranking every song (what a search without ANN costs).
- ``query``: the whole query (ANN + re-ranking).
- ``build``: indexing time for the collection; the note has the size per hour of audio.

Run: ``PYTHONPATH=. python bench/bench_search.py [--quick] [--songs 1000 10000] [--threads 2]``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

try:
    from _timing import row
except ImportError:  # run as a module from the repository root
    from bench._timing import row

STEP_S, WINDOW_S, DIM = 0.25, 3.0, 128


def song_lengths(n_songs: int, seed: int = 0) -> np.ndarray:
    """Fingerprint counts of songs of 180-240 s at the M_short rate."""
    dur = np.random.default_rng(seed).uniform(180.0, 240.0, n_songs)
    return (np.floor((dur - WINDOW_S) / STEP_S) + 1).astype(np.int64)


def _song(seed: int, n: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return a


def build_index(path: str, n_songs: int, *, dtype: str = "float32", kind: str = "auto", seed: int = 0):
    """A synthetic index of ``n_songs`` songs; returns (index, build seconds excluding data generation)."""
    from chadml.index import SongIndex
    lens = song_lengths(n_songs, seed)
    idx = SongIndex.create(path, model_id="synthetic", feature_config={"kind": "synthetic"},
                           window_config={"window_s": WINDOW_S, "step_s": STEP_S}, kind=kind, dtype=dtype)
    gen_s = 0.0

    def items():
        nonlocal gen_s
        for i, n in enumerate(lens):
            t = time.perf_counter()
            fps = _song(seed * 1_000_003 + i, int(n))
            gen_s += time.perf_counter() - t
            yield f"s{i:06d}", fps, {"duration": (n - 1) * STEP_S + WINDOW_S}

    t0 = time.perf_counter()
    idx.add_fingerprint_items(items(), progress_bar=False, total=n_songs)
    return idx, time.perf_counter() - t0 - gen_s


def make_queries(idx, n: int, seed: int = 1, seconds: float = 10.0, noise: float = 0.05):
    rng = np.random.default_rng(seed)
    tq = int((seconds - WINDOW_S) / STEP_S) + 1
    songs = idx.songs()
    out = []
    for _ in range(n):
        s = songs[int(rng.integers(len(songs)))]
        start = int(rng.integers(0, s.n_fingerprints - tq))
        q = idx.fingerprints(s.song_id)[start:start + tq] + noise * rng.standard_normal((tq, DIM)).astype(np.float32)
        out.append((s.song_id, start * STEP_S, np.ascontiguousarray(q, np.float32)))
    return out


def time_searcher(searcher, queries, repeat: int = 1) -> dict:
    t_ann, t_rr, t_tot, hits, tok = [], [], [], 0, 0
    searcher.query_fingerprints(queries[0][2], top=10)        # warm the page cache and the threads
    for _ in range(repeat):
        for sid, t, q in queries:
            t0 = time.perf_counter()
            ms = searcher.query_fingerprints(q, top=10)
            t_tot.append(time.perf_counter() - t0)
            t_ann.append(searcher.last_timing["ann_s"])
            t_rr.append(searcher.last_timing["rerank_s"])
            hits += bool(ms) and ms[0].song_id == sid
            tok += bool(ms) and ms[0].song_id == sid and abs(ms[0].time_s - t) < 1e-6
    n = len(t_tot)
    return {"ann_s": statistics.median(t_ann), "rerank_s": statistics.median(t_rr),
            "total_s": statistics.median(t_tot), "top1": hits / n, "time_ok": tok / n,
            "candidates": searcher.last_timing.get("n_candidates"), "rows": searcher.last_timing.get("n_rows")}


def bench_size(n_songs: int, *, threads: int = 2, n_queries: int = 10, workdir: str | None = None,
               dtype: str = "float32", keep: str | None = None) -> list[dict]:
    """Rows for one collection size; ``keep``: a folder where the built index is kept and reused."""
    import faiss
    from chadml.index import SongIndex
    from chadml.search import Searcher
    faiss.omp_set_num_threads(threads)
    tmp = tempfile.mkdtemp(prefix="chad-bench-", dir=workdir)
    try:
        path = os.path.join(keep, f"synthetic-{n_songs}-{dtype}") if keep else os.path.join(tmp, "ix")
        if keep and os.path.exists(os.path.join(path, "build_s")):
            idx = SongIndex.open(path)
            build_s = float(open(os.path.join(path, "build_s")).read())
        else:
            if keep and os.path.exists(path):
                shutil.rmtree(path)
            idx, build_s = build_index(path, n_songs, dtype=dtype)
            if keep:
                with open(os.path.join(path, "build_s"), "w") as f:
                    f.write(repr(build_s))
        info = idx.info()
        queries = make_queries(idx, n_queries)
        ours = time_searcher(Searcher(idx, threads=threads), queries)
        rows = []
        note = (f"{n_songs} songs, {info['fingerprints']} fps, {info['hours']:.0f} h, faiss {info['faiss']}; "
                f"{threads} threads; top-1 {ours['top1']:.2f}, time exact {ours['time_ok']:.2f}; "
                f"{ours['candidates']} candidates, {ours['rows']} rows re-ranked")
        # anchors: exact FAISS search over the same vectors (when it fits) and re-ranking every song
        ann_anchor_s, ann_anchor = float("nan"), "IndexFlatL2 (skipped: > 2 GB)"
        if info["fingerprints"] * DIM * 4 <= 2e9:
            flat = faiss.IndexFlatL2(DIM)
            data, _ = idx.packed()
            for a in range(0, len(data), 1 << 20):
                flat.add(np.ascontiguousarray(data[a:a + (1 << 20)], np.float32))
            nn = 2 * int(np.ceil(min(5000, n_songs) / len(queries[0][2])))
            ts = []
            for _, _, q in queries:
                t0 = time.perf_counter()
                flat.search(q, max(64, min(2048, nn)))
                ts.append(time.perf_counter() - t0)
            ann_anchor_s, ann_anchor = statistics.median(ts), "IndexFlatL2 exact k-NN"
            del flat
        rows.append(row(f"ann, 10 s hum, {n_songs} songs", ours["ann_s"], ann_anchor, ann_anchor_s, note))
        full = ours if min(5000, n_songs) >= n_songs else time_searcher(Searcher(idx, threads=threads, k=n_songs),
                                                                          queries[:3])
        rows.append(row(f"rerank, 10 s hum, {n_songs} songs (K={min(5000, n_songs)})", ours["rerank_s"],
                        "re-rank every song", full["rerank_s"], ""))
        rows.append(row(f"query total, 10 s hum, {n_songs} songs", ours["total_s"],
                        "no ANN: re-rank every song", full["total_s"],
                        "paper (Table 3, DB90K, 32 CPUs): 1.41 s ANN + 5.37 s re-ranking"))
        if n_songs <= 5000:       # K covers the collection: also time the ANN path with a smaller K
            small = time_searcher(Searcher(idx, threads=threads, k=max(10, n_songs // 10)), queries)
            rows.append(row(f"query total, 10 s hum, {n_songs} songs, K={max(10, n_songs // 10)}", small["total_s"],
                            "K = all songs", ours["total_s"],
                            f"ann {small['ann_s']:.4f} s + rerank {small['rerank_s']:.4f} s; top-1 {small['top1']:.2f}"))
        hours = info["hours"]
        rows.append(row(f"build, {n_songs} songs", build_s, "none", float("nan"),
                        f"{build_s / hours:.2f} s per hour of audio; {info['size_bytes'] / hours / 1e6:.1f} MB "
                        f"per hour ({dtype} store + FAISS + catalog), {info['size_bytes'] / 1e9:.2f} GB in all"))
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cases(quick: bool = False) -> list[dict]:
    sizes = [200] if quick else [1000, 10000]
    out = []
    for n in sizes:
        out += bench_size(n, n_queries=5 if quick else 10)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--songs", type=int, nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float16"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", default=None, help="keep the built indexes in this folder and reuse them")
    args = ap.parse_args(argv)
    sizes = args.songs or ([200] if args.quick else [1000, 10000])
    for n in sizes:
        for r in bench_size(n, threads=args.threads, n_queries=args.queries, workdir=args.workdir, dtype=args.dtype,
                          keep=args.keep):
            print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
