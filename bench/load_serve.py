"""Load test of ``chad serve``: N clients query a server on 127.0.0.1 for a fixed time; latency, errors, memory.

The server is started as ``chad serve`` (a real process, the way it is run), warmed up with a few queries
(each worker's first query loads its searcher), then ``--clients`` threads POST recordings to
``/api/query`` back to back for ``--seconds`` and the script stops everything by itself. It prints the
request count, throughput, p50/p95/p99/max latency, the errors, and the server's resident memory
(sampled every second: at the start of the timed window, its maximum and at the end).

The index: ``--index DIR`` (e.g. ``chad-demo/index_m1``; queries are 6-12 s excerpts of its songs with
noise, or the files of ``--queries DIR``), or by default one built here of the demo's shape (80 songs
of 40-70 s, synthetic melodies, an untrained ResNet18 of the demo's width 32; kept in ``--work`` so a
second run does not rebuild it).

Usage::

    python bench/load_serve.py                                   # 8 clients, 60 s, the built index
    python bench/load_serve.py --index chad-demo/index_m1 --clients 8 --seconds 60 --json out.json
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np

SR = 16000


def melody(rng: np.random.Generator, seconds: float, note_s: float = 0.4) -> np.ndarray:
    """A random melody of sung-like tones (three harmonics), peak 0.5."""
    n = int(np.ceil(seconds / note_s))
    t = np.arange(int(note_s * SR)) / SR
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    out = [env * sum(np.sin(2 * np.pi * 440.0 * 2 ** ((m - 69) / 12) * h * t) / h for h in (1, 2, 3))
           for m in 55 + rng.integers(0, 20, n)]
    y = np.concatenate(out)[:int(seconds * SR)]
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def build_index(work: str, n_songs: int, seed: int = 0) -> str:
    """An index of ``n_songs`` synthetic songs (40-70 s) with an untrained width-32 ResNet18; reused if built."""
    import soundfile as sf
    import torch
    from chadml.features import FeatureConfig, WindowConfig
    from chadml.index import SongIndex
    from chadml.models import checkpoint_id, load_fingerprinter, save_checkpoint
    from chadml.models.encoder import Fingerprinter, ResNet18Encoder
    from chadml.training import TrainConfig
    ix = os.path.join(work, f"index-{n_songs}")
    if os.path.exists(os.path.join(ix, "catalog.sqlite")):
        return ix
    os.makedirs(os.path.join(work, "songs"), exist_ok=True)
    torch.manual_seed(seed)
    fp = Fingerprinter(ResNet18Encoder(width=32, dim=128), FeatureConfig(), WindowConfig(3.0, 0.25))
    ckpt = os.path.join(work, "m.pt")
    save_checkpoint(ckpt, model=fp.model, feature_config=fp.feature_config, window_config=fp.window_config,
                    train_config=TrainConfig(width=32))
    fp = load_fingerprinter(ckpt)
    fp.model_id = checkpoint_id(ckpt)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_songs):
        path = os.path.join(work, "songs", f"song{i:03d}.flac")
        if not os.path.exists(path):
            sf.write(path, melody(rng, float(rng.uniform(40, 70))), SR)
        items.append((f"song{i:03d}", path, f"Song {i}"))
    t0 = time.perf_counter()
    SongIndex.create(ix, fingerprinter=fp, model_path=ckpt).add_songs(items, fp, progress_bar=False)
    print(f"built {ix}: {n_songs} songs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return ix


def make_queries(index: str, queries_dir: str | None, n: int, seed: int = 1) -> list[bytes]:
    """WAV bytes of the query recordings: the files of ``queries_dir``, or 6-12 s noisy excerpts of songs."""
    import soundfile as sf
    from chadml.audio import load
    from chadml.index import SongIndex
    rng = np.random.default_rng(seed)
    clips = []
    if queries_dir:
        files = sorted(os.path.join(queries_dir, f) for f in os.listdir(queries_dir))
        clips = [load(f) for f in files[:n]]
    else:
        songs = [s for s in SongIndex.open(index).songs() if s.path and os.path.exists(s.path)]
        for _ in range(n):
            s = songs[int(rng.integers(len(songs)))]
            y = load(s.path)
            d = float(rng.uniform(6, 12))
            a = int(rng.uniform(0, max(0.0, len(y) / SR - d)) * SR)
            q = y[a:a + int(d * SR)]
            clips.append(q + 0.02 * rng.standard_normal(len(q)).astype(np.float32))
    out = []
    for y in clips:
        buf = io.BytesIO()
        sf.write(buf, y, SR, format="WAV", subtype="PCM_16")
        out.append(buf.getvalue())
    return out


def start_server(index: str, workers: int | None, rerank: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "chadml.cli.main", "-q", "serve", "--index", index, "--port", "0",
           "--rerank", rerank] + (["--workers", str(workers)] if workers else [])
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    t0 = time.time()
    for line in proc.stderr:
        m = re.search(r"(http://\S+?:\d+)/", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()   # drain
            return proc, m.group(1)
        if time.time() - t0 > 120:
            break
    proc.kill()
    raise RuntimeError("chad serve did not start")


def run(args) -> dict:
    import httpx
    import psutil
    index = args.index or build_index(args.work, args.songs)
    queries = make_queries(index, args.queries, args.n_queries)
    proc, url = start_server(index, args.workers, args.rerank)
    ps = psutil.Process(proc.pid)
    rss: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                rss.append((time.time(), ps.memory_info().rss / 2 ** 20))
            except psutil.Error:
                return
            stop.wait(1.0)

    lat: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def post(client, i) -> tuple[int, float]:
        t0 = time.perf_counter()
        r = client.post("/api/query", files={"audio": ("q.wav", queries[i % len(queries)], "audio/wav")},
                        data={"top": "10"})
        return r.status_code, time.perf_counter() - t0

    try:
        with httpx.Client(base_url=url, timeout=120) as c:            # warm-up: every worker's first query
            for i in range(2 * (args.workers or min(8, os.cpu_count() or 1))):
                post(c, i)
        t_end = time.time() + args.seconds
        threading.Thread(target=sample, daemon=True).start()

        def client_loop(k: int):
            with httpx.Client(base_url=url, timeout=120) as c:
                i = k * 7
                while time.time() < t_end:
                    try:
                        status, dt = post(c, i)
                        key = None if status == 200 else f"HTTP {status}"
                    except httpx.HTTPError as exc:
                        dt, key = 0.0, type(exc).__name__
                    with lock:
                        if key is None:
                            lat.append(dt)
                        else:
                            errors[key] = errors.get(key, 0) + 1
                    i += 1

        t0 = time.time()
        threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t0
    finally:
        stop.set()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    a = np.array(lat) * 1e3
    mem = np.array([m for _, m in rss]) if rss else np.zeros(1)
    half = mem[len(mem) // 2:]
    return {
        "index": index, "clients": args.clients, "seconds": round(wall, 1), "server_workers": args.workers or
        min(8, os.cpu_count() or 1), "rerank": args.rerank, "cpus": os.cpu_count(), "requests": int(len(a)),
        "throughput_per_s": round(len(a) / wall, 2), "errors": errors, "n_errors": int(sum(errors.values())),
        "latency_ms": {"p50": round(float(np.percentile(a, 50)), 1), "p95": round(float(np.percentile(a, 95)), 1),
                       "p99": round(float(np.percentile(a, 99)), 1), "max": round(float(a.max()), 1)} if len(a) else {},
        "rss_mb": {"start": round(float(mem[0]), 1), "max": round(float(mem.max()), 1),
                   "end": round(float(mem[-1]), 1), "second_half_range": round(float(half.max() - half.min()), 1)},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", default=None, help="index to serve (default: build one of the demo's shape)")
    p.add_argument("--queries", default=None, help="folder of query recordings (default: song excerpts)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the timed run (default 60)")
    p.add_argument("--workers", type=int, default=None, help="the server's --workers (default: its own)")
    p.add_argument("--rerank", default="pearson", help="the server's --rerank (default pearson)")
    p.add_argument("--songs", type=int, default=80, help="songs of the built index (default 80)")
    p.add_argument("--n-queries", type=int, default=32, help="distinct query recordings (default 32)")
    p.add_argument("--work", default=os.path.join("runs", "load_serve"), help="where the built index is kept")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    res = run(args)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0 if res["n_errors"] == 0 and res["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
