"""Search over a sharded index (:mod:`chadml.index.shards`): a query fanned out to every shard, their top
lists merged.

Each shard is searched by a :class:`~chadml.search.Searcher` of its own: in this process, or in a Ray
actor that holds the shard memory-mapped (``ray_address``: a cluster's address, or "auto" for the running
one or a new local one). The query's fingerprints are computed once, here (the model is the shards'); each
shard re-ranks up to ``k`` candidates of its own songs and returns them scored, and the merged list is
ranked by score. With every song re-ranked (``k`` at least the songs of a shard) the ranking is exactly
that of one index of all the songs; with fewer, each shard's ANN step picks its own candidates (a
superset of what one index would re-rank, ``k`` per shard).

Example
-------
>>> from chadml.search.sharded import ShardedSearcher
>>> s = ShardedSearcher("songs.idx", ray_address="auto")   # doctest: +SKIP
>>> s.query("hum.wav", top=3)[0].song_id                   # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..config import check_top
from ..errors import UsageError
from ..index import ShardedIndex, ray_connect
from ..util import map_threads
from .base import Match
from .encoder import Searcher

__all__ = ["ShardedSearcher", "ShardWorker"]


class ShardWorker:
    """One shard's searcher (what a Ray actor holds): :meth:`rank` gives every candidate it re-ranked."""

    def __init__(self, path: str, searcher_kw: dict):
        self.searcher = Searcher(path, **searcher_kw)

    def rank(self, fps: np.ndarray) -> tuple[list[tuple[str, str, float, float]], dict]:
        """``([(song_id, title, score, time_s)] of every candidate, best first), timing``."""
        s = self.searcher
        out = s.query_fingerprints(fps, top=max(1, min(s.k, len(s.index))))
        return [(m.song_id, m.title, m.score, m.time_s) for m in out], dict(s.last_timing)

    def generation(self) -> int:
        return self.searcher.index.generation


class ShardedSearcher(Searcher):
    """Query-by-humming over a sharded index (see the module docstring).

    ``index``: the sharded index directory (or a :class:`chadml.index.ShardedIndex`); ``ray_address``:
    None (the shards are searched in this process, one thread each) or a Ray address / "auto". The other
    arguments are :class:`Searcher`'s (``k``: candidates per shard; the model is loaded here only).
    """

    def __init__(self, index, *, ray_address: str | None = None, k: int = 5000, neighbors: int | None = None,
                 nprobe: int | None = None, threads: int | None = None, auto_refresh: bool = True, **kw):
        self.shards = index if isinstance(index, ShardedIndex) else ShardedIndex.open(index)
        if kw.get("rerank", "pearson") != "pearson":
            raise ValueError("a sharded index is re-ranked by max Pearson (rerank='pearson')")
        super().__init__(self.shards.shard(0), k=k, neighbors=neighbors, nprobe=nprobe, threads=threads,
                         auto_refresh=False, **kw)
        # with tempo_scan each shard re-scores its own best TEMPO_TOP: a song just outside the single
        # index's best may be re-scored here too (the rankings agree where the two sets do)
        shard_kw = {"k": k, "neighbors": neighbors, "nprobe": nprobe, "threads": threads,
                    "auto_refresh": auto_refresh, "tempo_scan": bool(kw.get("tempo_scan", False))}
        self.ray_address = ray_address
        self._ray = None
        if ray_address is not None:
            self._actors = self._start_actors(ray_address, shard_kw)
        else:
            self._workers = [ShardWorker(p, shard_kw) for p in self.shards.paths]

    def _start_actors(self, address: str, shard_kw: dict) -> list:
        try:
            import ray
        except ImportError as exc:
            raise UsageError("--ray needs Ray: pip install 'chad[distributed]' (or ray>=2.9)") from exc
        if not ray.is_initialized():
            ray_connect(address)
        self._ray = ray
        actor = ray.remote(num_cpus=0)(ShardWorker)
        actors = [actor.remote(p, shard_kw) for p in self.shards.paths]
        ray.get([a.generation.remote() for a in actors])        # wait until every shard is open
        return actors

    def query_fingerprints(self, fps: np.ndarray, top: int = 10) -> list[Match]:
        """The ``top`` songs of all shards for a query given as fingerprints, best first."""
        top = check_top(top)
        q = np.ascontiguousarray(np.asarray(fps, dtype=np.float32))
        if q.ndim != 2 or q.shape[1] != self.index.dim or q.shape[0] == 0:
            raise ValueError(f"fps must have shape (n >= 1, {self.index.dim}), got {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError("fps must be finite, got NaN/inf values")
        t0 = time.perf_counter()
        if self._ray is not None:
            ref = self._ray.put(q)
            results = self._ray.get([a.rank.remote(ref) for a in self._actors])
        else:
            results = map_threads(lambda w: w.rank(q), self._workers, len(self._workers))
        # best first; ties by shard, then by each shard's own order
        merged = [(-sc, i, j, sid, title, sc, t) for i, (ranked, _) in enumerate(results)
                  for j, (sid, title, sc, t) in enumerate(ranked)]
        merged.sort(key=lambda r: r[:3])
        scores = np.array([r[5] for r in merged], np.float32)
        cal = getattr(self, "calibration", None)
        conf = cal.rank_confidences(scores, min(top, len(merged))) if cal is not None and len(merged) else None
        out = []
        for r, row in enumerate(merged[:top]):
            m = Match(row[3], row[4], float(row[5]), float(row[6]), r + 1)
            if conf is not None:
                m = dataclasses.replace(m, confidence=conf[r][0], confident=conf[r][1])
            out.append(m)
        timings = [t for _, t in results]
        self.last_timing = {"n_query_fps": len(q), "n_songs": sum(t.get("n_songs", 0) for t in timings),
                            "n_shards": len(results), "n_candidates": sum(t.get("n_candidates", 0) for t in timings),
                            "ann_s": max(t.get("ann_s", 0.0) for t in timings),
                            "rerank_s": max(t.get("rerank_s", 0.0) for t in timings),
                            "fanout_s": time.perf_counter() - t0}
        return out

    def close(self) -> None:
        """Stop the shards' Ray actors (the cluster stays)."""
        if self._ray is not None:
            for a in self._actors:
                self._ray.kill(a)
            self._actors = []

