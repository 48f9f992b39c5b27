"""The search service behind ``chad serve``, free of HTTP: queries, the song catalog, the song audio and the
alignment picture, over one or more song indexes, with the limits and the errors a web service needs.

- Each query runs on a worker thread of :attr:`SearchService.pool` (the re-rankers, FAISS and torch
  release the GIL, so queries run side by side); each worker has its own
  :class:`chadml.search.Searcher` per index and re-ranker (a searcher holds the state of its last
  query), all sharing one loaded model per index.
- The indexes are only read: a searcher moves to the newest generation of its index before every
  query, so songs added with ``chad index add`` while the service runs are found without a restart
  (the catalog endpoints refresh the same way).
- An index with an M_long partner (:class:`Collection` ``long_dir``) is searched as M_fused
  (:class:`chadml.search.FusedSearcher`).
- Every refusal is a :class:`ServiceError` (HTTP status + one-line message).

Example
-------
>>> svc = SearchService([Collection("demo", "chad-demo/index_m1")])        # doctest: +SKIP
>>> svc.query(open("hum.wav", "rb").read(), top=3)["matches"][0]["title"]  # doctest: +SKIP
"""
from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
import uuid
from urllib.parse import quote
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..config import SAMPLE_RATE
from ..errors import ChadError, UsageError
from ..index import CATALOG, IndexCorruptError, IndexMismatchError, SongIndex
from ..search import RERANKERS, FusedSearcher, Searcher
from .alignment import align_contours, pitch_contour, song_contour
from .upload import ServiceError, decode_query

log = logging.getLogger(__name__)

__all__ = ["ServeConfig", "Collection", "SearchService", "MEDIA_TYPES", "audio_url"]

#: the Content-Type of song files by extension (others: application/octet-stream)
MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
               ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aiff": "audio/aiff",
               ".aif": "audio/aiff"}


@dataclass(frozen=True)
class ServeConfig:
    """The service's settings.

    Parameters
    ----------
    rerank : the default re-ranker of a query (a request may ask for another of :data:`RERANKERS`).
    k : candidate songs re-ranked (capped by the index size).
    threads : threads for FAISS and the re-ranker within one query (None: all cores).
    workers : queries answered at once (None: the CPU count, at most 8).
    max_upload_bytes, max_query_s, min_query_s : limits of an upload (413, 413, 422 beyond them).
    silence_dbfs : a query whose loudest 50 ms is quieter is refused as silent (422).
    top_max : the largest ``top`` a request may ask for.
    token : when set, the API asks for ``Authorization: Bearer <token>``.
    model, device : the checkpoint (default: each index's own) and the torch device.
    recent_queries : queries whose audio is kept for the alignment picture (least recent dropped).
    """

    rerank: str = "pearson"
    k: int = 5000
    threads: int | None = 1
    workers: int | None = None
    max_upload_bytes: int = 10_000_000
    max_query_s: float = 30.0
    min_query_s: float = 0.5
    silence_dbfs: float = -60.0
    top_max: int = 100
    token: str | None = None
    model: str | None = None
    device: str | None = None
    recent_queries: int = 16

    def __post_init__(self):
        if self.rerank not in RERANKERS:
            raise UsageError(f"rerank must be one of {RERANKERS}, got {self.rerank!r}")
        for name in ("k", "top_max", "max_upload_bytes", "recent_queries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UsageError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("threads", "workers"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise UsageError(f"{name} must be an integer >= 1 or None, got {v!r}")
        if not (0 < self.min_query_s < self.max_query_s):
            raise UsageError(f"need 0 < min_query_s < max_query_s, got {self.min_query_s}, {self.max_query_s}")

    @property
    def n_workers(self) -> int:
        return self.workers or min(8, os.cpu_count() or 1)


@dataclass(frozen=True)
class Collection:
    """An index served under ``name``; with ``long_dir``, the M_long index of the same songs (M_fused)."""
    name: str
    dir: str
    long_dir: str | None = None

    @property
    def f0_dir(self) -> str:
        """The F0 index that ``rerank="dtw-f0"`` uses (``<dir>/f0``)."""
        return os.path.join(self.dir, "f0")


def _finite(v):
    """A JSON-safe number: NaN and infinities become None."""
    return v if not isinstance(v, float) or math.isfinite(v) else None


def audio_url(song_id: str, index: str) -> str:
    """The API path of a song's recording.

    >>> audio_url("a b/c", "demo")
    '/api/songs/a%20b%2Fc/audio?index=demo'
    """
    return f"/api/songs/{quote(song_id, safe='')}/audio?index={quote(index, safe='')}"


def _present(path: str) -> bool:
    return os.path.isdir(path) and os.path.exists(os.path.join(path, CATALOG))


class SearchService:
    """Queries, songs, song audio and alignment pictures over :class:`Collection` indexes (see the module
    docstring). The indexes are opened at once (a missing one is a :class:`chadml.errors.UsageError`) and
    each one's model is loaded once. :meth:`close` stops the worker pool."""

    def __init__(self, collections_: list[Collection], config: ServeConfig | None = None):
        self.config = config or ServeConfig()
        if not collections_:
            raise UsageError("give at least one index to serve")
        names = [c.name for c in collections_]
        if len(set(names)) != len(names):
            raise UsageError(f"index names must differ, got {names}")
        self.collections = {c.name: c for c in collections_}
        self.default = collections_[0].name
        self._catalog: dict[str, SongIndex] = {}
        self._catalog_lock = threading.Lock()
        self._models: dict[tuple[str, str], object] = {}
        for c in collections_:
            for d in (c.dir, c.long_dir):
                if d is not None and not _present(d):
                    raise UsageError(f"no index at {d} (build one with `chad index build`)")
            if self.config.rerank not in self.rerankers(c):
                raise UsageError(f"rerank dtw-f0 needs an F0 index at {c.f0_dir} (`chad f0-index build`); "
                                 f"index {c.name!r} has none")
            self._catalog[c.name] = SongIndex.open(c.dir)
            for which, d in (("short", c.dir), ("long", c.long_dir)):
                if d is not None:     # load each model once, here: a missing checkpoint shows at start
                    s = Searcher(d, fingerprinter=self.config.model, device=self.config.device,
                                 auto_refresh=False)
                    self._models[(c.name, which)] = s.fingerprinter
        self.pool = ThreadPoolExecutor(self.config.n_workers, thread_name_prefix="chad-query")
        self._local = threading.local()
        self._recent: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self._recent_lock = threading.Lock()
        self.started = time.time()

    def warm_up(self) -> float:
        """Fingerprint a few seconds of noise with each model once (the first pass builds the feature
        kernels and warms torch), so that the first person to hum does not wait for it; returns seconds."""
        t0 = time.perf_counter()
        noise = np.random.default_rng(0).standard_normal(4 * SAMPLE_RATE).astype(np.float32) * 0.1
        for fp in self._models.values():
            fp.from_audio(noise, sr=SAMPLE_RATE)
        return time.perf_counter() - t0

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # ---- indexes ---------------------------------------------------------------------------------

    def collection(self, name: str | None) -> Collection:
        """The collection ``name`` (None: the first); a 404 for an unknown name or a vanished index."""
        name = name or self.default
        c = self.collections.get(name)
        if c is None:
            raise ServiceError(404, f"no index named {name!r} (this server has: {', '.join(self.collections)})")
        for d in (c.dir, c.long_dir):
            if d is not None and not _present(d):
                raise ServiceError(404, f"index {name!r} is missing: nothing at {d} (was it moved or deleted?)")
        return c

    def rerankers(self, c: Collection) -> list[str]:
        """The re-rankers a query of collection ``c`` may ask for (dtw-f0 only with an F0 index)."""
        return [r for r in RERANKERS if r != "dtw-f0" or os.path.isdir(c.f0_dir)]

    def _searcher(self, c: Collection, rerank: str):
        """This worker thread's searcher of collection ``c`` with ``rerank`` (made on first use)."""
        cache = getattr(self._local, "searchers", None)
        if cache is None:
            cache = self._local.searchers = {}
        key = (c.name, rerank)
        s = cache.get(key)
        if s is None:
            cfg = self.config
            kw = dict(rerank=rerank, k=cfg.k, threads=cfg.threads, device=cfg.device,
                      max_query_s=cfg.max_query_s)
            s = Searcher(c.dir, fingerprinter=self._models[(c.name, "short")], **kw)
            if c.long_dir is not None:
                s = FusedSearcher(s, Searcher(c.long_dir, fingerprinter=self._models[(c.name, "long")], **kw))
            cache[key] = s
        return s

    def _index(self, c: Collection) -> SongIndex:
        """The catalog reader of ``c`` at its newest generation (call with ``_catalog_lock`` held)."""
        idx = self._catalog[c.name]
        try:
            idx.refresh()
        except (OSError, IndexCorruptError) as exc:
            raise ServiceError(404, f"index {c.name!r} cannot be read: {exc}") from None
        return idx

    # ---- queries ---------------------------------------------------------------------------------

    def query(self, data: bytes, *, index: str | None = None, top: int = 10, rerank: str | None = None) -> dict:
        """Answer an uploaded recording: the JSON of the ranked songs, the query's length and the
        timing of each step (seconds). Runs in the calling thread (the HTTP layer calls it on :attr:`pool`)."""
        t0 = time.perf_counter()
        cfg = self.config
        c = self.collection(index)
        rerank = rerank or cfg.rerank
        if rerank not in RERANKERS:
            raise ServiceError(400, f"rerank must be one of {', '.join(RERANKERS)}, got {rerank!r}")
        if rerank not in self.rerankers(c):
            raise ServiceError(400, f"rerank dtw-f0 needs an F0 index at {c.f0_dir} (`chad f0-index build`); "
                                    f"index {c.name!r} has none")
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= cfg.top_max:
            raise ServiceError(400, f"top must be an integer in 1..{cfg.top_max}, got {top!r}")
        if len(data) > cfg.max_upload_bytes:
            raise ServiceError(413, f"the upload is {len(data) / 1e6:.1f} MB; the limit is "
                                    f"{cfg.max_upload_bytes / 1e6:g} MB")
        y = decode_query(data, max_seconds=cfg.max_query_s, min_seconds=cfg.min_query_s,
                         silence_dbfs=cfg.silence_dbfs)
        t_decode = time.perf_counter() - t0
        searcher = self._searcher(c, rerank)
        try:
            matches = searcher.query(y, sr=SAMPLE_RATE, top=top)
        except ServiceError:
            raise
        except (IndexMismatchError, IndexCorruptError, FileNotFoundError) as exc:
            raise ServiceError(503, f"index {c.name!r} cannot be searched: {exc}") from None
        except (ValueError, ChadError) as exc:
            raise ServiceError(422, f"the recording cannot be searched: {exc}") from None
        timing = dict(searcher.last_timing)
        if timing.get("silent"):
            raise ServiceError(422, "the recording is silent: check the microphone and hum louder or closer")
        qid = uuid.uuid4().hex
        with self._recent_lock:
            # the matched time is where the searched (voice-trimmed) part of the recording starts in the song
            self._recent[qid] = {"audio": y, "index": c.name, "contour": None,
                                 "start_s": float(timing.get("query_start_s") or 0.0)}
            while len(self._recent) > cfg.recent_queries:
                self._recent.popitem(last=False)
        timing["decode_s"] = t_decode
        timing["total_s"] = time.perf_counter() - t0
        out_timing = {k: _finite(v.item() if isinstance(v, np.number) else v) for k, v in timing.items()
                      if isinstance(v, (int, float, str, bool, np.number))}
        return {
            "query_id": qid, "index": c.name, "rerank": rerank, "duration_s": len(y) / SAMPLE_RATE,
            "generation": self._searched(searcher, timing).index.generation,
            "matches": [{**{k: _finite(v) for k, v in m.to_dict().items()},
                         "audio_url": audio_url(m.song_id, c.name)} for m in matches],
            "timing": out_timing,
        }

    @staticmethod
    def _searched(searcher, timing: dict) -> Searcher:
        """The :class:`Searcher` that answered the last query (of a FusedSearcher: the one it chose)."""
        if isinstance(searcher, FusedSearcher):
            return searcher.long if timing.get("model") == "long" else searcher.short
        return searcher

    def alignment(self, query_id: str, song_id: str, time_s: float, *, index: str | None = None) -> dict:
        """The picture of a match of a recent query: the pitch contours of the query and of the song over
        the matched segment (see :mod:`chadml.serve.alignment`); 404 for a forgotten query."""
        with self._recent_lock:
            q = self._recent.get(query_id)
            if q is not None:
                self._recent.move_to_end(query_id)
        if q is None:
            raise ServiceError(404, f"no recent query {query_id!r} (only the last "
                                    f"{self.config.recent_queries} are kept): query again")
        c = self.collection(index or q["index"])
        if not (isinstance(time_s, (int, float)) and math.isfinite(time_s) and time_s >= 0):
            raise ServiceError(400, f"time_s must be a number of seconds >= 0, got {time_s!r}")
        info = self.song(song_id, index=c.name)
        start = q["start_s"]
        if q["contour"] is None:
            t, st = pitch_contour(q["audio"])
            q["contour"] = (t - start, st)      # on the song's time axis from time_s
        duration = len(q["audio"]) / SAMPLE_RATE
        song = None
        path = self._song_path(c, song_id, must_exist=False)
        if path is not None:
            t, st, _ = song_contour(path, time_s, duration - start)
            song = (t, st)
        out = align_contours(q["contour"], song)
        out.update(song_id=song_id, title=info["title"], time_s=float(time_s), duration_s=duration,
                   query_start_s=start, song_duration_s=info["duration_s"])
        return out

    # ---- the catalog ---------------------------------------------------------------------------

    @staticmethod
    def _song_json(s, c: Collection) -> dict:
        has_audio = bool(s.path) and os.path.isfile(s.path)
        return {"song_id": s.song_id, "title": s.title or s.song_id, "duration_s": _finite(float(s.duration)),
                "n_fingerprints": int(s.n_fingerprints), "has_audio": has_audio,
                "audio_url": audio_url(s.song_id, c.name) if has_audio else None}

    def songs(self, *, index: str | None = None, offset: int = 0, limit: int = 50, q: str | None = None) -> dict:
        """One page of the songs (store order; ``q``: only ids or titles containing it, any case)."""
        c = self.collection(index)
        if offset < 0 or not 1 <= limit <= 1000:
            raise ServiceError(400, f"need offset >= 0 and 1 <= limit <= 1000, got offset={offset}, limit={limit}")
        with self._catalog_lock:
            idx = self._index(c)
            songs, gen = idx.songs(), idx.generation
        if q:
            ql = q.lower()
            songs = [s for s in songs if ql in s.song_id.lower() or ql in (s.title or "").lower()]
        page = songs[offset:offset + limit]
        return {"index": c.name, "generation": gen, "total": len(songs), "offset": offset, "limit": limit,
                "songs": [self._song_json(s, c) for s in page]}

    def song(self, song_id: str, *, index: str | None = None) -> dict:
        """One song's catalog entry; 404 when the index does not hold it."""
        c = self.collection(index)
        with self._catalog_lock:
            idx = self._index(c)
            if song_id not in idx:
                raise ServiceError(404, f"no song {song_id!r} in index {c.name!r}")
            s = idx.song(song_id)
        return {**self._song_json(s, c), "index": c.name}

    def _song_path(self, c: Collection, song_id: str, *, must_exist: bool = True) -> str | None:
        with self._catalog_lock:
            idx = self._index(c)
            if song_id not in idx:
                raise ServiceError(404, f"no song {song_id!r} in index {c.name!r}")
            path = idx.song(song_id).path
        if path and os.path.isfile(path):
            return path
        if must_exist:
            raise ServiceError(404, f"the audio of song {song_id!r} is not available"
                                    + (f" (its file {os.path.basename(path)} is missing)" if path else
                                       " (the index records no file for it)"))
        return None

    def audio_file(self, song_id: str, *, index: str | None = None) -> tuple[str, str]:
        """``(path, media type)`` of a song's recording; 404 when the index records none or it is missing."""
        path = self._song_path(self.collection(index), song_id)
        return path, MEDIA_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")

    # ---- health -----------------------------------------------------------------------------------

    def health(self) -> dict:
        """Status, version, each index (songs, generation, M_fused, re-rankers) and the limits."""
        indexes, ok = [], True
        for c in self.collections.values():
            entry = {"name": c.name, "fused": c.long_dir is not None}
            try:
                self.collection(c.name)
                with self._catalog_lock:
                    idx = self._index(c)
                    entry.update(songs=len(idx), generation=idx.generation, model_id=idx.model_id,
                                 rerankers=self.rerankers(c), present=True)
            except ServiceError as exc:
                ok = False
                entry.update(present=False, error=exc.message)
            indexes.append(entry)
        cfg = self.config
        return {"status": "ok" if ok else "degraded", "version": __version__, "indexes": indexes,
                "default_index": self.default, "default_rerank": cfg.rerank, "workers": cfg.n_workers,
                "auth": cfg.token is not None, "uptime_s": round(time.time() - self.started, 1),
                "limits": {"max_upload_bytes": cfg.max_upload_bytes, "max_query_s": cfg.max_query_s,
                           "min_query_s": cfg.min_query_s, "top_max": cfg.top_max}}
