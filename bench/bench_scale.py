"""Search at catalogue scale: synthetic catalogues of 1k, 10k and 100k songs (no audio).

A song is a sequence of 128-d unit-norm fingerprints at the index's rate (a 3 s window every 0.25 s) for
2-6 minutes, with the statistics of an encoder's fingerprints (:class:`Catalogue`), calibrated on those
of the release model (``chad-qbh``) on bench/qbh_eval.py's 300 held-out songs and its hummed queries
(bench/README.md, scale block, has both side by side):

- the content of each 0.25 s frame is a point of a 48-d latent space, mapped to 128-d by a fixed
  projection with gains falling as ``i^-0.75`` (an effective dimension of about 6, as the model's), plus a
  direction shared by every fingerprint (fingerprints are not centred: two random ones have a cosine of
  about 0.45) and a small one per song (its timbre);
- a fingerprint is the mean content of 4 frames: the cosine of consecutive ones is 0.87, falling to the
  song's plateau (about 0.5) within 1 s, as the model's;
- songs share phrases: half of each song's segments (of 2-6 s) are drawn from a common vocabulary of
  5,000 phrases (Zipf-distributed), so that other songs hold near-copies of pieces of any query (the
  hard negatives of a catalogue of one genre).

A query is 10 s of one song at a known offset, hummed: time-warped (tempo x0.85-1.15), its content
perturbed (noise of 0.15x the content's spread: a query fingerprint's best cosine with its song is about
0.96, the model's 0.98), the song's timbre replaced by the hummer's; 29 fingerprints. Everything is deterministic from the seed: a song is regenerated from
its number alone, so the catalogue is generated (and written) one song at a time, never held in memory.

For each size: build time (store + FAISS, data generation excluded), bytes on disk, and, measured in a
separate query process: its resident memory (psutil RSS after the queries, and its peak), p50/p95
latency of ``Searcher.query_fingerprints`` on a 10 s query (fingerprints given: the encoder is not timed),
candidate recall (the true song among the re-ranked candidates), top-1 correct (song and offset within
1 s); and the agreement of the top-1 with re-ranking every song of the catalogue (exhaustive, max
Pearson with ``chadsp.rerank``, one pass over the store for all queries; on a subset of the queries for
the largest sizes).

Run: ``python bench/bench_scale.py --songs 1000 10000 --store i8 --workdir /tmp/scale --keep``
(``--songs 100000`` needs ~14 GB of disk for the int8 store). Prints one JSON line per size and, with
``--markdown FILE``, writes the table between the ``bench:scale`` markers of FILE.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

# run as a script: the songs are generated in worker processes, one BLAS thread each (set before numpy loads)
if __name__ == "__main__":
    for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

STEP_S, WINDOW_S, DIM = 0.25, 3.0, 128
WIN = int(round(WINDOW_S / STEP_S))      # 12 frames per window
LATENT = 48
QUERY_S = 10.0
# the statistics, calibrated on the fingerprints of the release model (bench/README.md, scale block)
SMOOTH, GAIN_POWER, MEAN_NORM, TIMBRE, QUERY_NOISE, SHARED, VOCAB = 4, 0.75, 1.45, 0.3, 0.15, 0.5, 5000
# the first generator (before that calibration): Catalogue(n, **V1)
V1 = {"smooth": 12, "gain_power": 0.5, "mean_norm": 1.0, "timbre": 0.7, "query_noise": 0.8, "shared": 0.33,
      "vocab": 20000}


class Catalogue:
    """The synthetic songs and queries (see the module docstring); ``seed`` fixes everything."""

    def __init__(self, n_songs: int, seed: int = 0, shared: float = SHARED, vocab: int = VOCAB,
                 query_noise: float = QUERY_NOISE, warp: float = 0.15, smooth: int = SMOOTH,
                 gain_power: float = GAIN_POWER, mean_norm: float = MEAN_NORM, timbre: float = TIMBRE):
        self.n, self.seed, self.shared, self.query_noise, self.warp = n_songs, seed, shared, query_noise, warp
        self.smooth, self.timbre = smooth, timbre
        rng = np.random.default_rng([seed, 0])
        q, _ = np.linalg.qr(rng.standard_normal((DIM, LATENT)))
        gains = (np.arange(1, LATENT + 1) ** -gain_power).astype(np.float32)
        self.proj = (q.T * gains[:, None]).astype(np.float32) * np.float32(math.sqrt(smooth))  # (LATENT, DIM)
        mean = rng.standard_normal(DIM).astype(np.float32)
        self.mean = mean / np.linalg.norm(mean) * np.float32(mean_norm)
        self.vocab = rng.standard_normal((vocab, 24, LATENT), dtype=np.float32)
        zipf = 1.0 / np.arange(1, vocab + 1) ** 0.8
        self.vocab_p = np.cumsum(zipf / zipf.sum())
        dur = rng.uniform(120.0, 360.0, n_songs)
        self.lengths = (np.floor((dur - WINDOW_S) / STEP_S) + 1).astype(np.int64)

    def song_id(self, i: int) -> str:
        return f"s{i:06d}"

    def _content(self, i: int) -> np.ndarray:
        """The frame content (n + WIN - 1, LATENT) of song ``i``."""
        rng = np.random.default_rng([self.seed, 1, i])
        t = int(self.lengths[i]) + WIN - 1
        e = rng.standard_normal((t, LATENT), dtype=np.float32)
        seg = rng.integers(8, 25, size=t // 8 + 2)
        starts = np.concatenate(([0], np.cumsum(seg)[:-1]))
        starts = starts[starts < t]
        shared = rng.random(len(starts)) < self.shared
        phrase = np.searchsorted(self.vocab_p, rng.random(len(starts)))
        for s, ln, p in zip(starts[shared], seg[:len(starts)][shared], phrase[shared]):
            ln = min(int(ln), t - int(s), 24)
            e[s:s + ln] = self.vocab[p, :ln]
        return e

    def _timbre(self, rng) -> np.ndarray:
        v = rng.standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v) * np.float32(self.timbre)

    def _fingerprints(self, e: np.ndarray, timbre: np.ndarray) -> np.ndarray:
        c = np.cumsum(e, axis=0, dtype=np.float64)
        c = np.concatenate((np.zeros((1, LATENT)), c))
        w = self.smooth
        z = ((c[w:] - c[:-w]) / w).astype(np.float32)[:len(e) - WIN + 1]   # the window's content
        f = z @ self.proj
        f += self.mean + timbre
        f /= np.linalg.norm(f, axis=1, keepdims=True)
        return f

    def song(self, i: int) -> np.ndarray:
        """The fingerprints (n, 128) of song ``i``."""
        return self._fingerprints(self._content(i), self._timbre(np.random.default_rng([self.seed, 2, i])))

    def items(self, gen_s: list | None = None, workers: int = 2):
        """``(song_id, fps, meta)`` of every song in order, generated by ``workers`` processes a few songs
        ahead (``gen_s[0]``: seconds the consumer waited for them)."""
        import multiprocessing as mp
        with mp.get_context("fork").Pool(workers, initializer=_worker_init, initargs=(self,)) as pool:
            it = pool.imap(_worker_song, range(self.n), chunksize=16)
            for i in range(self.n):
                t0 = time.perf_counter()
                fps = next(it)
                if gen_s is not None:
                    gen_s[0] += time.perf_counter() - t0
                yield self.song_id(i), fps, {"duration": (len(fps) - 1) * STEP_S + WINDOW_S}

    def queries(self, n: int, seed: int = 1) -> list[tuple[int, float, np.ndarray]]:
        """``(song, offset s, fingerprints (29, 128))`` of ``n`` hummed 10 s excerpts."""
        rng = np.random.default_rng([self.seed, 3, seed])
        tq = int((QUERY_S - WINDOW_S) / STEP_S) + 1
        out = []
        for _ in range(n):
            i = int(rng.integers(self.n))
            rate = float(rng.uniform(1 - self.warp, 1 + self.warp))
            frames = tq + WIN - 1
            span = int(math.ceil(frames * rate)) + 1
            start = int(rng.integers(0, max(1, int(self.lengths[i]) + WIN - 1 - span)))
            e = self._content(i)
            pos = start + np.arange(frames) * rate
            lo = np.floor(pos).astype(np.int64)
            w = (pos - lo).astype(np.float32)[:, None]
            eq = e[lo] * (1 - w) + e[np.minimum(lo + 1, len(e) - 1)] * w
            eq = eq + self.query_noise * rng.standard_normal(eq.shape).astype(np.float32)
            out.append((i, start * STEP_S, self._fingerprints(eq, self._timbre(rng))))
        return out


_CAT: Catalogue | None = None


def _worker_init(cat: Catalogue) -> None:
    global _CAT
    _CAT = cat


def _worker_song(i: int) -> np.ndarray:
    return _CAT.song(i)


# ---- building -------------------------------------------------------------------------------------

def build(path: str, cat: Catalogue, dtype: str) -> dict:
    from chadml.index import SongIndex
    idx = SongIndex.create(path, model_id="synthetic", feature_config={"kind": "synthetic"},
                           window_config={"window_s": WINDOW_S, "step_s": STEP_S}, dtype=dtype)
    gen = [0.0]
    t0 = time.perf_counter()
    idx.add_fingerprint_items(cat.items(gen), progress_bar=sys.stderr.isatty(), total=cat.n)
    total = time.perf_counter() - t0
    return {"build_s": total - gen[0], "generate_s": gen[0]}


# ---- the query process ------------------------------------------------------------------------------

def serve_queries(index: str, queries: str, out: str, k: int, threads: int, warm: int = 3,
                  tempo_scan: bool = False, nprobe: int | None = None) -> None:
    """Run in its own process: open the index, time each query, write the results to ``out``."""
    import psutil
    from chadml.search import Searcher
    t0 = time.perf_counter()
    s = Searcher(index, k=k, threads=threads, auto_refresh=False, tempo_scan=tempo_scan, nprobe=nprobe)
    open_s = time.perf_counter() - t0
    rss_open = psutil.Process().memory_info().rss
    z = np.load(queries)
    fps, songs = z["fps"], z["songs"]
    idx = s.index
    ids = [x.song_id for x in idx.songs()]
    pos_of = {sid: i for i, sid in enumerate(ids)}
    for q in fps[:warm]:
        s.query_fingerprints(q, top=10)
    lat, top1, top1_score, top1_time, recall, ann, rr, ncand = [], [], [], [], [], [], [], []
    for q, sid in zip(fps, songs):
        t = time.perf_counter()
        m = s.query_fingerprints(q, top=10)
        lat.append(time.perf_counter() - t)
        ann.append(s.last_timing.get("ann_s", 0.0))
        rr.append(s.last_timing.get("rerank_s", 0.0))
        ncand.append(s.last_timing.get("n_candidates", 0))
        top1.append(m[0].song_id if m else "")
        top1_score.append(m[0].score if m else float("nan"))
        top1_time.append(m[0].time_s if m else float("nan"))
        cand = s.candidates(q)          # untimed: is the true song among the re-ranked candidates?
        recall.append(bool(np.isin(pos_of[str(sid)], cand)))
    mi = psutil.Process().memory_full_info()
    res = {"open_s": open_s, "rss_open": rss_open, "rss": mi.rss, "uss": mi.uss,
           "peak_rss": _vm_hwm(),
           "latency": lat, "ann_s": ann, "rerank_s": rr, "n_candidates": ncand, "top1": top1,
           "top1_score": top1_score, "top1_time": top1_time, "recall": recall, "faiss": idx.faiss_params,
           "k": k}
    with open(out, "w") as f:
        json.dump(res, f)


def _vm_hwm() -> int:
    """This process's peak resident memory (VmHWM: since its exec; ``ru_maxrss`` would also count the
    parent's memory at the fork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# ---- exhaustive re-ranking ------------------------------------------------------------------------

def exhaustive(index: str, fps: np.ndarray, threads: int, chunk_songs: int = 2048,
               tempo: bool = False) -> dict[bool, list[tuple[str, float]]]:
    """The top-1 ``(song_id, score)`` of re-ranking every song for each query: one pass over the store
    (chunks of songs, every query scored on each chunk while its rows are in the page cache) with
    ``chadsp.rerank_ranges`` on the store's rows as they are; ``{False: rigid}``, and with ``tempo`` also
    ``{True: ...}``: the searcher's tempo re-scoring (:func:`chadml.search.encoder.tempo_rescore`) applied to
    the rigid scores of every song."""
    import chadsp
    from chadml.index import SongIndex
    from chadml.search.encoder import tempo_rescore
    idx = SongIndex.open(index)
    songs = idx.songs()
    rows = idx.rows
    all_pos = np.arange(len(songs))
    starts, lengths = idx.ranges(all_pos)
    scores = np.zeros((len(fps), len(songs)), np.float32)
    lags = np.zeros((len(fps), len(songs)), np.int64)
    for i in range(0, len(songs), chunk_songs):
        pos = all_pos[i:i + chunk_songs]
        for qi, q in enumerate(fps):
            scores[qi, pos], lags[qi, pos] = chadsp.rerank_ranges(q, rows.data, starts[pos], lengths[pos],
                                                                  scales=rows.scale, threads=threads)
        idx.release(pos)
    out = {False: [(songs[int(b)].song_id, float(sc[b])) for sc in scores for b in [int(np.argmax(sc))]]}
    if tempo:
        out[True] = []
        for qi, q in enumerate(fps):
            sc, _ = tempo_rescore(q, rows.data, starts, lengths, scores[qi], lags[qi], scales=rows.scale,
                                  threads=threads)
            b = int(np.argmax(sc))
            out[True].append((songs[b].song_id, float(sc[b])))
    return out


# ---- shards on Ray ----------------------------------------------------------------------------------

def shard_compare(path: str, n_shards: int, queries: np.ndarray, k: int, address: str = "auto") -> dict:
    """p50/p95 of the same queries on the index at ``path`` (this process, 2 threads) and on a copy of it
    split into ``n_shards`` shards, each searched by a Ray actor (1 thread each), with its build time."""
    import ray
    from chadml.index import ShardedIndex, SongIndex, shard_of
    from chadml.search import Searcher
    from chadml.search.sharded import ShardedSearcher
    idx = SongIndex.open(path)
    out = f"{path}.shards{n_shards}"
    t0 = time.perf_counter()
    if not os.path.exists(os.path.join(out, "shards.json")):
        shutil.rmtree(out, ignore_errors=True)
        sh = ShardedIndex.create(out, n_shards, model_id=idx.model_id, feature_config=idx.feature_config,
                                 window_config=idx.window_config, dtype=idx.dtype)
        songs = idx.songs()
        for i in range(n_shards):
            sh.shard(i).add_fingerprint_items(((x.song_id, idx.fingerprints(x.song_id), {"duration": x.duration})
                                               for x in songs if shard_of(x.song_id, n_shards) == i),
                                              progress_bar=False)
    build_s = time.perf_counter() - t0

    def timed(searcher):
        for q in queries[:3]:
            searcher.query_fingerprints(q, top=10)
        lat = []
        for q in queries:
            t = time.perf_counter()
            searcher.query_fingerprints(q, top=10)
            lat.append(time.perf_counter() - t)
        return float(np.percentile(lat, 50)), float(np.percentile(lat, 95))

    one = timed(Searcher(idx, k=k, threads=2, auto_refresh=False))
    ray.init(address=None if address == "auto" else address, num_cpus=os.cpu_count(), include_dashboard=False,
             log_to_driver=False, runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}})
    try:
        s = ShardedSearcher(out, ray_address=address, k=k, threads=1, auto_refresh=False)
        many = timed(s)
        s.close()
    finally:
        ray.shutdown()
    return {"n_shards": n_shards, "one_p50_s": one[0], "one_p95_s": one[1], "shards_p50_s": many[0],
            "shards_p95_s": many[1], "shards_build_s": build_s, "k_per_shard": k}


# ---- one size -----------------------------------------------------------------------------------------

def bench_size(n_songs: int, *, workdir: str, dtype: str, n_queries: int, n_exhaustive: int, k: int,
               threads: int, keep: bool, seed: int = 0, shards: int = 0, v1: bool = False,
               tempo_modes=(False,)) -> list[dict]:
    from chadml.index import SongIndex
    cat = Catalogue(n_songs, seed=seed, **(V1 if v1 else {}))
    path = os.path.join(workdir, f"scale-{n_songs}-{dtype}")
    stamp = os.path.join(workdir, f"scale-{n_songs}-{dtype}.build.json")
    if keep and os.path.exists(stamp) and os.path.exists(path):
        built = json.load(open(stamp))
    else:
        if os.path.exists(path):
            shutil.rmtree(path)
        built = build(path, cat, dtype)
        with open(stamp, "w") as f:
            json.dump(built, f)
    info = SongIndex.open(path).info()
    qs = cat.queries(n_queries)
    qfile = os.path.join(workdir, f"queries-{n_songs}.npz")
    np.savez(qfile, fps=np.stack([q[2] for q in qs]), songs=np.array([cat.song_id(q[0]) for q in qs]),
             offsets=np.array([q[1] for q in qs]))
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    truth = [cat.song_id(q[0]) for q in qs]
    offsets = [q[1] for q in qs]
    # the query processes first, while the build's FAISS lists are in the page cache (the exhaustive pass
    # reads the whole store and pushes them out)
    served = {}
    for tempo in tempo_modes:
        out = os.path.join(workdir, f"results-{n_songs}-{dtype}{'-tempo' if tempo else ''}.json")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, os.path.abspath(__file__), "--serve", path, qfile, out, "--k", str(k),
                        "--threads", str(threads)] + (["--tempo-scan", "on"] if tempo else []), check=True, env=env)
        served[tempo] = (json.load(open(out)), time.perf_counter() - t0)
    t0 = time.perf_counter()
    # the exhaustive pass costs queries x fingerprints: at most n_exhaustive fingerprint-queries, 20 queries at least
    ne = min(n_queries, max(20, int(n_exhaustive // max(1, info["fingerprints"]))))
    exs = exhaustive(path, np.stack([q[2] for q in qs[:ne]]), threads, tempo=True in tempo_modes) if ne else {}
    ex_s = time.perf_counter() - t0
    ray_row = shard_compare(path, shards, np.stack([q[2] for q in qs]), k) if shards else None
    disk = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    rows = []
    for tempo in tempo_modes:
        r, serve_s = served[tempo]
        correct = [a == b and abs(t - o) <= 1.0 for a, b, t, o in zip(r["top1"], truth, r["top1_time"], offsets)]
        ex = exs.get(tempo, [])
        agree = [e[0] == t for e, t in zip(ex, r["top1"])]
        lat = np.array(r["latency"])
        rows.append({
            "songs": n_songs, "dtype": dtype, "tempo_scan": tempo, "fingerprints": info["fingerprints"],
            "hours": info["hours"], "faiss": r["faiss"], "k": k, "build_s": built["build_s"],
            "generate_s": built["generate_s"], "disk_bytes": disk, "rss": r["rss"], "uss": r["uss"],
            "peak_rss": r["peak_rss"], "open_s": r["open_s"],
            "p50_s": float(np.percentile(lat, 50)), "p95_s": float(np.percentile(lat, 95)),
            "ann_p50_s": float(np.median(r["ann_s"])), "rerank_p50_s": float(np.median(r["rerank_s"])),
            "candidates": int(np.median(r["n_candidates"])), "recall": float(np.mean(r["recall"])),
            "top1_correct": float(np.mean(correct)), "queries": n_queries, "exhaustive_queries": ne,
            "exhaustive_truth": float(np.mean([e[0] == t for e, t in zip(ex, truth)])) if ne else None,
            "agree": float(np.mean(agree)) if ne else None, "exhaustive_s": ex_s, "serve_s": serve_s,
            "exhaustive_top1": [[sid, sc] for sid, sc in ex], "top1": r["top1"], "top1_score": r["top1_score"],
            "truth": truth,
            "shards": ray_row if tempo == tempo_modes[0] else None,
        })
    return rows


def _mb(b: float) -> str:
    return f"{b / 2**20:.0f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def table(rows: list[dict]) -> str:
    head = ("| songs | store | fingerprints | FAISS | build | on disk | query RSS (peak) | p50 | p95 | "
            "ANN / re-rank p50 | K | candidate recall | top-1 = exhaustive | top-1 correct |")
    head = head.replace("| FAISS |", "| FAISS | re-rank |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: (r["songs"], r.get("tempo_scan", False))):
        f = r["faiss"]
        fa = f["kind"] + (f"/{f['quantizer']}" if "quantizer" in f else "") + (
            f" stride {f['stride']}" if f.get("stride", 1) > 1 else "") + (" on disk" if f.get("ondisk") else "")
        ag = "-" if r["agree"] is None else f"{r['agree']:.3f} ({r['exhaustive_queries']} q)"
        out.append(f"| {r['songs']:,} | {r['dtype']} | {r['fingerprints']:,} | {fa} | "
                   f"{'Pearson + tempo' if r.get('tempo_scan') else 'Pearson'} | {r['build_s']:.0f} s | "
                   f"{_mb(r['disk_bytes'])} | {_mb(r['rss'])} ({_mb(r['peak_rss']) if r['peak_rss'] else 'n/a'}) | {r['p50_s'] * 1e3:.0f} ms | "
                   f"{r['p95_s'] * 1e3:.0f} ms | {r['ann_p50_s'] * 1e3:.0f} / {r['rerank_p50_s'] * 1e3:.0f} ms | "
                   f"{r['k']} | {r['recall']:.3f} | {ag} | {r['top1_correct']:.3f} |")
    ray_rows = [r for r in rows if r.get("shards")]
    if ray_rows:
        out += ["", "| songs | one index, in process (2 threads): p50 / p95 | N shards on Ray (1 thread each): p50 / p95 |",
                "|---|---|---|"]
        for r in sorted(ray_rows, key=lambda r: r["songs"]):
            s = r["shards"]
            out.append(f"| {r['songs']:,} | {s['one_p50_s'] * 1e3:.0f} / {s['one_p95_s'] * 1e3:.0f} ms | "
                       f"{s['n_shards']} shards: {s['shards_p50_s'] * 1e3:.0f} / {s['shards_p95_s'] * 1e3:.0f} ms |")
    return "\n".join(out)


def write_markdown(path: str, rows: list[dict], cmd: str) -> None:
    start, end = "<!-- bench:scale:start -->", "<!-- bench:scale:end -->"
    block = (f"{start}\n### scale\n\n{table(rows)}\n\n`{cmd}` on {time.strftime('%Y-%m-%d')} "
             f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}).\n{end}")
    text = open(path).read() if os.path.exists(path) else ""
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--store", default="i8", choices=("f32", "f16", "i8"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--exhaustive", type=float, default=5e8,
                    help="budget of the exhaustive check, in queries x fingerprints (at least 20 queries)")
    ap.add_argument("--k", type=int, default=300, help="candidates re-ranked")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the indexes in --workdir and reuse them")
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--shards", type=int, default=0,
                    help="also time the queries on a copy of each index split into this many shards on Ray")
    ap.add_argument("--table-from", nargs="*", default=None, metavar="JSON",
                    help="no run: the table (and --markdown) from the result rows that earlier runs wrote to "
                         "--workdir (row-SONGS-DTYPE.json)")
    ap.add_argument("--v1", action="store_true", help="the first generator (V1: noisier queries) instead")
    ap.add_argument("--tempo-scan", choices=("off", "on", "both"), default="off",
                    help="re-rank with the searcher's tempo re-scoring (tempo_scan=True), or time both")
    ap.add_argument("--nprobe", type=int, default=None, help="IVF lists visited (default: the index's)")
    ap.add_argument("--serve", nargs=3, metavar=("INDEX", "QUERIES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve_queries(*args.serve, k=args.k, threads=args.threads, tempo_scan=args.tempo_scan == "on",
                      nprobe=args.nprobe)
        return 0
    from chadml.index.store import store_dtype
    workdir = args.workdir or tempfile.mkdtemp(prefix="chad-scale-")
    os.makedirs(workdir, exist_ok=True)
    rows = []
    if args.table_from is not None:
        rows = [json.load(open(f)) for f in args.table_from]
        print(table(rows))
        if args.markdown:
            write_markdown(args.markdown, rows, "python bench/bench_scale.py " + " ".join(argv or sys.argv[1:]))
        return 0
    modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.tempo_scan]
    for n in args.songs:
        rs = bench_size(n, workdir=workdir, dtype=store_dtype(args.store), n_queries=args.queries,
                        n_exhaustive=args.exhaustive, k=args.k, threads=args.threads, keep=args.keep,
                        shards=args.shards, v1=args.v1, tempo_modes=modes)
        for r in rs:
            rows.append(r)
            print(json.dumps(r), flush=True)
            with open(os.path.join(workdir, f"row-{n}-{r['dtype']}{'-tempo' if r['tempo_scan'] else ''}.json"), "w") as f:
                json.dump(r, f)
        if not args.keep:
            shutil.rmtree(os.path.join(workdir, f"scale-{n}-{rs[0]['dtype']}"), ignore_errors=True)
    print(table(rows))
    if args.markdown:
        write_markdown(args.markdown, rows, "python bench/bench_scale.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
