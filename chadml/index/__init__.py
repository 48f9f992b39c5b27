"""The song index: a FAISS index over every fingerprint of every song, a SQLite catalog and a fingerprint store.

An index is a directory::

    INDEX/
      catalog.sqlite         meta (format_version, model id, feature/window config, FAISS parameters,
                             the current generation) and the songs (id, title, path, duration,
                             n_fingerprints, offset of the song's first row in the store)
      store-<s>.f32|.f16     the fingerprints of every song, row after row (raw, memory-mapped)
      faiss-<g>.index        the FAISS index of generation g; its ids are store rows
      write.lock             held (flock) by the one writer at a time

Every write makes a new generation: new rows are appended past the committed end of the store (and
fsync'ed), the new FAISS index is written to a fresh file, and then one SQLite transaction inserts the
songs and points the catalog at the new generation. A writer killed at any moment leaves the index at
the old generation (the bytes it appended are invisible and are cut off by the next writer); a reader
opens one generation in one read transaction and keeps using it (``refresh()`` moves it to the newest).

Example
-------
>>> import numpy as np
>>> from chadml.index import SongIndex
>>> idx = SongIndex.create("songs.idx", model_id="m0", feature_config={"kind": "cqt"},
...                        window_config={"window_s": 3.0, "step_s": 0.25})          # doctest: +SKIP
>>> fps = np.random.default_rng(0).standard_normal((800, 128)).astype(np.float32)  # doctest: +SKIP
>>> idx.add_fingerprints("song-1", fps / np.linalg.norm(fps, axis=1, keepdims=True),
...                      {"title": "Song 1"})                                       # doctest: +SKIP
>>> len(idx)                                                                         # doctest: +SKIP
1
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import logging
import math
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .. import ChadError, __version__
from ..util import atomic_path, check_signal, progress

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CATALOG = "catalog.sqlite"
LOCK = "write.lock"
KINDS = ("auto", "flat", "ivf", "ivfsq", "ivfpq", "hnsw")
FLAT_MAX = 200_000          # "auto": exact search up to this many fingerprints, IVF + 8-bit SQ above
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aiff", ".aif", ".au")

__all__ = ["SongIndex", "SongInfo", "IndexMismatchError", "IndexCorruptError", "fingerprinter_id",
           "FORMAT_VERSION", "KINDS", "find_audio_files", "song_items"]

# Called as _crash_hook(stage) at the stages of a write ("appended", "faiss_written", "committed"):
# the atomicity tests kill the process there. None in normal use.
_crash_hook = None


class IndexMismatchError(ChadError):
    """The index was built with another model or feature/window config than the one given."""


class IndexCorruptError(ChadError):
    """The index directory is missing files or holds inconsistent data."""


@dataclass(frozen=True)
class SongInfo:
    """One song of the catalog; ``offset`` is the store row of its first fingerprint."""
    song_id: str
    title: str
    path: str
    duration: float
    n_fingerprints: int
    offset: int


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def _config_dict(c) -> dict:
    if c is None:
        return {}
    if isinstance(c, dict):
        return dict(c)
    if hasattr(c, "to_dict"):
        return dict(c.to_dict())
    raise TypeError(f"a feature/window config must be a dict or have .to_dict(), got {type(c).__name__}")


def _canon(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)


def fingerprinter_id(fingerprinter) -> str:
    """The id of an in-memory fingerprinter's model: the same hash as ``chadml.train.checkpoint_id``.

    sha256 over the encoder/feature/window configs (JSON, sorted keys) and the weights, first 16 hex
    digits; a fingerprinter with a ``model_id`` attribute gives that instead.
    """
    mid = getattr(fingerprinter, "model_id", None)
    if mid:
        return str(mid)
    from ..models import model_id
    return model_id(fingerprinter.model.config(), fingerprinter.feature_config.to_dict(),
                    fingerprinter.window_config.to_dict(), fingerprinter.model.state_dict())


def _connect(path: str, *, write: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 60000")
    if write:
        conn.execute("PRAGMA synchronous = FULL")
    return conn


def _fsync_dir(d: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_fps(fps, dim: int, name: str = "fps") -> np.ndarray:
    if isinstance(fps, (str, bytes)) or fps is None:
        raise TypeError(f"{name} must be a numpy array (n, {dim}), got {type(fps).__name__}")
    a = np.asarray(fps)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must have a real dtype, got {a.dtype}")
    if a.ndim != 2 or a.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one fingerprint, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got NaN/inf values")
    return a


def _faiss():
    import faiss
    return faiss


def _choose_params(kind: str, n: int, dim: int) -> dict:
    """FAISS parameters for ``n`` vectors (``kind`` "auto" picks flat or ivfpq by size)."""
    if kind == "auto":
        kind = "flat" if n <= FLAT_MAX else "ivfsq"
    if kind == "flat":
        return {"kind": "flat"}
    if kind == "hnsw":
        return {"kind": "hnsw", "M": 32, "efConstruction": 80, "efSearch": 128}
    # about sqrt(n)/2 lists (a power of two): 1024 for 10k songs of M_short fingerprints (8M rows);
    # fewer lists than the usual 4*sqrt(n) keep the build (assigning every row) short on few cores
    nlist = int(2 ** math.floor(math.log2(max(16.0, math.sqrt(max(n, 1)) / 2))))
    nlist = max(16, min(nlist, 4096, max(16, n // 39)))
    p = {"kind": kind, "nlist": nlist, "nprobe": min(nlist, max(8, nlist // 64)), "trained_on": int(n)}
    if kind == "ivfpq":
        m = next(m for m in (32, 16, 8, 4, 2, 1) if dim % m == 0)
        p.update(m=m, nbits=8)
    return p


# ----------------------------------------------------------------------------------------------
# the index
# ----------------------------------------------------------------------------------------------

class SongIndex:
    """A song index directory opened at one generation (see the module docstring for the layout).

    Use :meth:`create` or :meth:`open`; then :meth:`add_songs` / :meth:`add_fingerprints`,
    :meth:`remove`, :meth:`info`, ``len(index)``, :meth:`packed` / :meth:`iter_packed` (the re-ranker's
    view of the store) and :meth:`search` (FAISS k-NN of fingerprints, returning store rows).
    """

    # ---- creation / opening ------------------------------------------------------------------

    def __init__(self, directory: str | os.PathLike, *, _state: dict | None = None):
        self.dir = os.path.abspath(os.fspath(directory))
        self._faiss_index = None
        self._faiss_file = None
        self._store = None
        self._store_key = None
        self._load(_state)

    @classmethod
    def create(cls, directory: str | os.PathLike, *, fingerprinter=None, model_id: str | None = None,
               feature_config=None, window_config=None, dim: int = 128, kind: str = "auto",
               dtype: str = "float32", model_path: str | os.PathLike | None = None) -> "SongIndex":
        """Create an empty index at ``directory`` (which must not exist or be empty).

        Give either ``fingerprinter`` (its model id and configs are recorded) or ``model_id`` with
        ``feature_config`` and ``window_config`` (objects with ``to_dict()`` or dicts; the window
        config needs ``step_s``). ``kind``: "auto" (exact search up to 200k fingerprints, IVF with
        8-bit scalar quantisation above), "flat", "ivf" (IVF-Flat), "ivfsq", "ivfpq" or "hnsw". ``dtype``: the store's "float32" or "float16".
        ``model_path``: a checkpoint recorded so that a :class:`chadml.search.Searcher` can load it.

        Example
        -------
        >>> idx = SongIndex.create("songs.idx", fingerprinter=fp)   # doctest: +SKIP
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if fingerprinter is not None:
            model_id = model_id or fingerprinter_id(fingerprinter)
            feature_config = feature_config if feature_config is not None else fingerprinter.feature_config
            window_config = window_config if window_config is not None else fingerprinter.window_config
        if not model_id:
            raise ValueError("SongIndex.create needs a fingerprinter or a model_id (with feature_config and "
                             "window_config)")
        fc, wc = _config_dict(feature_config), _config_dict(window_config)
        if "step_s" not in wc:
            raise ValueError(f"window_config must have step_s (the fingerprint step in seconds), got {wc}")
        directory = os.path.abspath(os.fspath(directory))
        if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
            raise FileExistsError(f"cannot create an index at {directory}: it exists and is not an empty "
                                  "directory (open it with SongIndex.open, or choose another path)")
        parent = os.path.dirname(directory)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".", suffix=".tmp", dir=parent)
        try:
            conn = _connect(os.path.join(tmp, CATALOG), write=True)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN")
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("CREATE TABLE songs (song_id TEXT PRIMARY KEY, title TEXT NOT NULL, path TEXT NOT NULL,"
                         " duration REAL NOT NULL, n_fingerprints INTEGER NOT NULL, offset INTEGER NOT NULL,"
                         " added REAL NOT NULL)")
            conn.execute("CREATE INDEX songs_offset ON songs(offset)")
            meta = {
                "format_version": FORMAT_VERSION, "chad_version": __version__, "created": time.time(),
                "model_id": str(model_id), "model_path": os.path.abspath(os.fspath(model_path)) if model_path else "",
                "feature_config": fc, "window_config": wc, "dim": dim, "dtype": dtype,
                "kind": kind, "faiss": {}, "generation": 0, "faiss_file": "",
                "store_file": "store-0." + ("f16" if dtype == "float16" else "f32"), "store_rows": 0,
                "dead_rows": 0, "previous_files": [],
            }
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            open(os.path.join(tmp, meta["store_file"]), "wb").close()
            open(os.path.join(tmp, LOCK), "wb").close()
            if os.path.isdir(directory):
                os.rmdir(directory)
            os.rename(tmp, directory)
            _fsync_dir(parent)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return cls(directory)

    @classmethod
    def open(cls, directory: str | os.PathLike, *, expect_model_id: str | None = None,
             expect_config=None) -> "SongIndex":
        """Open an existing index; a different model or config than expected is an :class:`IndexMismatchError`.

        ``expect_config``: ``(feature_config, window_config)`` (objects or dicts), or a fingerprinter
        (its configs are compared). Only the keys present in both sides are compared.
        """
        directory = os.path.abspath(os.fspath(directory))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"no index at {directory} (build one with `chad index build`)")
        if not os.path.exists(os.path.join(directory, CATALOG)):
            raise IndexCorruptError(f"{directory} is not a chad index: {CATALOG} is missing")
        idx = cls(directory)
        idx.check_compatible(model_id=expect_model_id, config=expect_config)
        return idx

    def check_compatible(self, *, model_id: str | None = None, config=None) -> None:
        """Raise :class:`IndexMismatchError` naming both sides if ``model_id``/``config`` differ from the index's."""
        if model_id is not None and str(model_id) != self.model_id:
            raise IndexMismatchError(
                f"index {self.dir} was built with model {self.model_id}, but the model given is {model_id}: "
                "rebuild the index with this model (`chad index build`) or use the model it was built with")
        if config is None:
            return
        if hasattr(config, "feature_config") and hasattr(config, "window_config"):
            config = (config.feature_config, config.window_config)
        if not (isinstance(config, (tuple, list)) and len(config) == 2):
            raise TypeError("expect_config must be (feature_config, window_config) or a fingerprinter, "
                            f"got {type(config).__name__}")
        for name, want, have in (("feature config", _config_dict(config[0]), self.feature_config),
                                 ("window config", _config_dict(config[1]), self.window_config)):
            diff = {k for k in set(want) & set(have) if _canon(want[k]) != _canon(have[k])}
            if diff:
                raise IndexMismatchError(
                    f"index {self.dir} was built with {name} "
                    f"{ {k: have[k] for k in sorted(diff)} }, but the one given has "
                    f"{ {k: want[k] for k in sorted(diff)} }: rebuild the index or use the matching model")

    # ---- reading a generation ----------------------------------------------------------------

    def _read_state(self, conn: sqlite3.Connection | None = None) -> dict:
        own = conn is None
        if own:
            conn = _connect(os.path.join(self.dir, CATALOG))
        try:
            conn.execute("BEGIN")
            try:
                meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
                rows = conn.execute("SELECT song_id, title, path, duration, n_fingerprints, offset FROM songs "
                                    "ORDER BY offset").fetchall()
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"cannot read the catalog of index {self.dir}: {exc}") from exc
        finally:
            if own:
                conn.close()
        if meta.get("format_version") != FORMAT_VERSION:
            raise IndexCorruptError(f"index {self.dir} has format_version {meta.get('format_version')}, "
                                    f"this chad reads {FORMAT_VERSION}: rebuild it")
        meta["songs"] = [SongInfo(str(r[0]), r[1], r[2], float(r[3]), int(r[4]), int(r[5])) for r in rows]
        return meta

    def _load(self, state: dict | None = None) -> None:
        for attempt in range(10):
            st = state if state is not None else self._read_state()
            try:
                self._apply(st)
                return
            except FileNotFoundError:
                if state is not None or attempt == 9:
                    raise
                time.sleep(0.05)    # a writer replaced the generation's files between our reads: reread

    def _apply(self, st: dict) -> None:
        faiss_file = st["faiss_file"]
        fidx = None
        if faiss_file:
            path = os.path.join(self.dir, faiss_file)
            if faiss_file != self._faiss_file or self._faiss_index is None:
                if not os.path.exists(path):
                    raise FileNotFoundError(path)
                fidx = _faiss().read_index(path)
            else:
                fidx = self._faiss_index
        store_path = os.path.join(self.dir, st["store_file"])
        dtype = np.float16 if st["dtype"] == "float16" else np.float32
        rows, dim = int(st["store_rows"]), int(st["dim"])
        key = (st["store_file"], rows)
        if key != self._store_key:
            if not os.path.exists(store_path):
                raise FileNotFoundError(store_path)
            size = os.path.getsize(store_path)
            need = rows * dim * np.dtype(dtype).itemsize
            if size < need:
                raise IndexCorruptError(f"the fingerprint store {store_path} holds {size} bytes, the catalog "
                                        f"expects at least {need}: the index is corrupt")
            store = (np.memmap(store_path, dtype=dtype, mode="r", shape=(rows, dim)) if rows
                     else np.zeros((0, dim), dtype=dtype))
        else:
            store = self._store
        self._meta = {k: v for k, v in st.items() if k != "songs"}
        self._songs = st["songs"]
        self._faiss_index, self._faiss_file = fidx, faiss_file
        self._store, self._store_key = store, key
        self._pos = {s.song_id: i for i, s in enumerate(self._songs)}
        self._starts = np.array([s.offset for s in self._songs], dtype=np.int64)
        self._lengths = np.array([s.n_fingerprints for s in self._songs], dtype=np.int64)
        if self._faiss_index is not None:
            self._set_search_params(self._faiss_index, self._meta["faiss"])

    def refresh(self) -> bool:
        """Move to the newest committed generation; True if it changed."""
        conn = _connect(os.path.join(self.dir, CATALOG))
        try:
            gen = json.loads(conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
        finally:
            conn.close()
        if gen == self.generation:
            return False
        self._load()
        return True

    # ---- properties --------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self._meta["model_id"]

    @property
    def model_path(self) -> str | None:
        return self._meta.get("model_path") or None

    @property
    def feature_config(self) -> dict:
        return dict(self._meta["feature_config"])

    @property
    def window_config(self) -> dict:
        return dict(self._meta["window_config"])

    @property
    def step_s(self) -> float:
        """Seconds between consecutive fingerprints of a song (the window step)."""
        return float(self._meta["window_config"]["step_s"])

    @property
    def dim(self) -> int:
        return int(self._meta["dim"])

    @property
    def dtype(self) -> str:
        return self._meta["dtype"]

    @property
    def generation(self) -> int:
        return int(self._meta["generation"])

    @property
    def faiss_params(self) -> dict:
        return dict(self._meta["faiss"])

    @property
    def n_fingerprints(self) -> int:
        return int(self._lengths.sum())

    def __len__(self) -> int:
        return len(self._songs)

    def __contains__(self, song_id: object) -> bool:
        return song_id in self._pos

    def __repr__(self) -> str:
        return (f"SongIndex({self.dir!r}, songs={len(self)}, fingerprints={self.n_fingerprints}, "
                f"generation={self.generation})")

    def songs(self) -> list[SongInfo]:
        """Every song, in store order."""
        return list(self._songs)

    def song(self, song_id: str) -> SongInfo:
        try:
            return self._songs[self._pos[song_id]]
        except KeyError:
            raise KeyError(f"song {song_id!r} is not in index {self.dir}") from None

    def fingerprints(self, song_id: str) -> np.ndarray:
        """The fingerprints of one song as float32 ``(n, dim)`` (a view of the store when it is float32)."""
        s = self.song(song_id)
        block = self._store[s.offset:s.offset + s.n_fingerprints]
        return np.asarray(block) if self.dtype == "float32" else np.asarray(block, dtype=np.float32)

    def info(self) -> dict:
        """Counts, sizes, model and configs, as a JSON-ready dict."""
        files = {}
        for f in sorted(os.listdir(self.dir)):
            p = os.path.join(self.dir, f)
            if os.path.isfile(p):
                files[f] = os.path.getsize(p)
        live = [self._meta["store_file"], CATALOG] + ([self._faiss_file] if self._faiss_file else [])
        size = sum(files.get(f, 0) for f in live) + files.get(CATALOG + "-wal", 0)
        hours = sum(s.duration for s in self._songs) / 3600.0
        return {
            "path": self.dir, "format_version": FORMAT_VERSION, "generation": self.generation,
            "songs": len(self), "fingerprints": self.n_fingerprints, "hours": hours,
            "model_id": self.model_id, "model_path": self.model_path,
            "feature_config": self.feature_config, "window_config": self.window_config,
            "dim": self.dim, "dtype": self.dtype, "kind": self._meta["kind"], "faiss": self.faiss_params,
            "store_rows": int(self._meta["store_rows"]), "dead_rows": int(self._meta["dead_rows"]),
            "size_bytes": size, "bytes_per_hour": (size / hours) if hours > 0 else None, "files": files,
        }

    # ---- the re-ranker's view --------------------------------------------------------------------

    def positions(self, song_ids: Sequence[str]) -> np.ndarray:
        """Catalog positions (store order) of ``song_ids``; KeyError for an unknown id."""
        try:
            return np.array([self._pos[s] for s in song_ids], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"song {exc.args[0]!r} is not in index {self.dir}") from None

    def packed(self, song_ids: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(data float32 (N, dim), offsets int64[n+1])`` of the songs, in the order given (all: store order).

        When the songs are consecutive in the store (e.g. all of them) and the store is float32, ``data``
        is the memory-mapped store itself (no copy); otherwise the rows are gathered (float16 converted).
        For many candidates prefer :meth:`iter_packed`, which never gathers long runs.
        """
        pos = np.arange(len(self)) if song_ids is None else self.positions(song_ids)
        return self._packed_positions(pos)

    def _packed_positions(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts, lens = self._starts[pos], self._lengths[pos]
        offsets = np.zeros(len(pos) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        if len(pos) == 0:
            return np.zeros((0, self.dim), np.float32), offsets
        contiguous = bool(np.all(starts[1:] == starts[:-1] + lens[:-1]))
        if contiguous and self.dtype == "float32":
            return self._store[starts[0]:starts[0] + offsets[-1]], offsets
        data = np.empty((int(offsets[-1]), self.dim), np.float32)
        for i, (s, n) in enumerate(zip(starts, lens)):
            data[offsets[i]:offsets[i + 1]] = self._store[s:s + n]
        return data, offsets

    def iter_packed(self, positions: np.ndarray, *, max_rows: int = 1 << 20, bridge_rows: int = 4096,
                    min_run_rows: int = 32768) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Chunks ``(data, offsets, which)`` covering the songs at catalog ``positions``, for re-ranking.

        ``which[j]`` is the index into ``positions`` of the chunk's j-th candidate, or -1 for a filler
        candidate (rows between two wanted songs, scored and ignored: cheaper than copying). With a
        float32 store, runs of at least ``min_run_rows`` rows (gaps of up to ``bridge_rows`` bridged)
        are scored in place in the memory map; short runs are gathered into float32 chunks of at most
        ``max_rows`` rows. A float16 store is always gathered (converted) chunk by chunk.
        """
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0:
            return
        order = np.argsort(self._starts[positions], kind="stable")
        sp = positions[order]
        starts, lens = self._starts[sp], self._lengths[sp]
        ends = starts + lens
        gather: list[int] = []      # indices into order (short runs) to copy

        def flush_gather():
            i = 0
            while i < len(gather):
                j, rows = i, 0
                while j < len(gather) and (rows == 0 or rows + lens[gather[j]] <= max_rows):
                    rows += int(lens[gather[j]])
                    j += 1
                sel = np.array(gather[i:j], dtype=np.int64)
                data, offsets = self._packed_positions(sp[sel])
                yield data, offsets, order[sel]
                i = j
            gather.clear()

        if self.dtype != "float32":
            gather.extend(range(len(sp)))
            yield from flush_gather()
            return
        i = 0
        while i < len(sp):
            # one run: songs whose gaps are at most bridge_rows, up to max_rows rows
            j = i + 1
            while (j < len(sp) and starts[j] - ends[j - 1] <= bridge_rows
                   and ends[j] - starts[i] <= max_rows):
                j += 1
            run_rows = int(ends[j - 1] - starts[i])
            if run_rows < min_run_rows:
                gather.extend(range(i, j))
            else:
                bounds, which = [int(starts[i])], []
                for t in range(i, j):
                    if starts[t] > bounds[-1]:          # a gap: one filler candidate
                        bounds.append(int(starts[t]))
                        which.append(-1)
                    bounds.append(int(ends[t]))
                    which.append(int(order[t]))
                off = np.asarray(bounds, dtype=np.int64)
                base = off[0]
                yield self._store[base:off[-1]], off - base, np.asarray(which, dtype=np.int64)
            i = j
        yield from flush_gather()

    # ---- FAISS ---------------------------------------------------------------------------------

    @staticmethod
    def _set_search_params(fidx, params: dict, *, nprobe: int | None = None, ef_search: int | None = None):
        faiss = _faiss()
        kind = params.get("kind")
        if kind in ("ivf", "ivfsq", "ivfpq"):
            faiss.extract_index_ivf(fidx).nprobe = int(nprobe or params.get("nprobe", 8))
        elif kind == "hnsw":
            faiss.downcast_index(fidx.index).hnsw.efSearch = int(ef_search or params.get("efSearch", 128))

    def search(self, fps: np.ndarray, k: int, *, nprobe: int | None = None,
               ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """FAISS k-NN of each fingerprint: ``(distances float32 (nq, k), song positions int64 (nq, k), rows)``.

        Returns ``(distances, positions, rows)``; missing neighbours have position -1.
        """
        q = _check_fps(fps, self.dim, "fps")
        nq = len(q)
        if self._faiss_index is None or self._faiss_index.ntotal == 0 or k < 1:
            return (np.zeros((nq, 0), np.float32), np.zeros((nq, 0), np.int64), np.zeros((nq, 0), np.int64))
        k = int(min(k, self._faiss_index.ntotal))
        if nprobe is not None or ef_search is not None:
            self._set_search_params(self._faiss_index, self._meta["faiss"], nprobe=nprobe, ef_search=ef_search)
        dist, rows = self._faiss_index.search(q, k)
        pos = self.rows_to_positions(rows)
        return dist, pos, rows

    def rows_to_positions(self, rows: np.ndarray) -> np.ndarray:
        """Catalog positions of store rows (-1 for -1 or rows of no live song)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self._songs) == 0:
            return np.full(rows.shape, -1, np.int64)
        p = np.searchsorted(self._starts, rows, side="right") - 1
        pc = np.clip(p, 0, len(self._starts) - 1)
        ok = (rows >= 0) & (p >= 0) & (rows < self._starts[pc] + self._lengths[pc])
        return np.where(ok, pc, -1)

    def _new_faiss(self, params: dict, train_rows: np.ndarray | None):
        faiss = _faiss()
        d = self.dim
        kind = params["kind"]
        if kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatL2(d))
        if kind == "hnsw":
            h = faiss.IndexHNSWFlat(d, int(params["M"]))
            h.hnsw.efConstruction = int(params["efConstruction"])
            return faiss.IndexIDMap2(h)
        quant = faiss.IndexFlatL2(d)
        if kind == "ivf":
            idx = faiss.IndexIVFFlat(quant, d, int(params["nlist"]))
        elif kind == "ivfsq":
            idx = faiss.IndexIVFScalarQuantizer(quant, d, int(params["nlist"]), faiss.ScalarQuantizer.QT_8bit)
        else:
            idx = faiss.IndexIVFPQ(quant, d, int(params["nlist"]), int(params["m"]), int(params["nbits"]))
            idx.pq.cp.niter = 10
        idx.cp.niter = 15
        idx.own_fields = True
        quant.this.disown()
        # small k-means runs are slower with several OpenMP threads than with one
        threads = faiss.omp_get_max_threads()
        if len(train_rows) < 50_000:
            faiss.omp_set_num_threads(1)
        try:
            idx.train(train_rows)
        finally:
            faiss.omp_set_num_threads(threads)
        return idx

    def _live_rows(self, songs: Sequence[SongInfo]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) of ``songs``' store rows, in chunks."""
        chunk = 1 << 18
        for s in songs:
            for a in range(0, s.n_fingerprints, chunk):
                b = min(s.n_fingerprints, a + chunk)
                yield (np.arange(s.offset + a, s.offset + b, dtype=np.int64),
                       np.asarray(self._store_w[s.offset + a:s.offset + b], dtype=np.float32))

    def _sample_rows(self, songs: Sequence[SongInfo], n: int, seed: int = 0) -> np.ndarray:
        total = sum(s.n_fingerprints for s in songs)
        rng = np.random.default_rng(seed)
        allrows = np.concatenate([np.arange(s.offset, s.offset + s.n_fingerprints) for s in songs])
        pick = np.sort(rng.choice(total, size=min(n, total), replace=False))
        return np.asarray(self._store_w[allrows[pick]], dtype=np.float32)

    # ---- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writer(self):
        """The write lock, a fresh state, and the store opened for appending past the committed end."""
        lock = open(os.path.join(self.dir, LOCK), "a+b")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            st = self._read_state()
            self._apply(st)
            path = os.path.join(self.dir, st["store_file"])
            isz = np.dtype(np.float16 if st["dtype"] == "float16" else np.float32).itemsize
            with open(path, "r+b") as f:
                f.truncate(int(st["store_rows"]) * int(st["dim"]) * isz)   # drop a crashed writer's bytes
            yield st
        finally:
            self._store_w = None
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            lock.close()

    def _commit(self, st: dict, *, new_songs: Sequence[SongInfo] = (), removed: Sequence[str] = (),
                new_faiss=None, faiss_params: dict | None = None, store_rows: int | None = None,
                dead_rows: int | None = None, store_file: str | None = None, kind: str | None = None,
                relocated: Sequence[SongInfo] = ()) -> None:
        gen = int(st["generation"]) + 1
        faiss_file = st["faiss_file"]
        old_files = [f for f in (st["faiss_file"],) if f]
        if new_faiss is not None:
            faiss_file = f"faiss-{gen}.index"
            with atomic_path(os.path.join(self.dir, faiss_file), suffix=".tmp") as tmp:
                _faiss().write_index(new_faiss, tmp)
        if _crash_hook:
            _crash_hook("faiss_written")
        if store_file and store_file != st["store_file"]:
            old_files.append(st["store_file"])
        conn = _connect(os.path.join(self.dir, CATALOG), write=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if removed:
                conn.executemany("DELETE FROM songs WHERE song_id = ?", [(s,) for s in removed])
            now = time.time()
            conn.executemany("INSERT INTO songs VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(s.song_id, s.title, s.path, s.duration, s.n_fingerprints, s.offset, now)
                              for s in new_songs])
            conn.executemany("UPDATE songs SET offset = ? WHERE song_id = ?",
                             [(s.offset, s.song_id) for s in relocated])
            upd = {"generation": gen, "faiss_file": faiss_file,
                   "previous_files": [f for f in old_files if f not in (faiss_file, store_file or st["store_file"])]}
            if faiss_params is not None:
                upd["faiss"] = faiss_params
            if store_rows is not None:
                upd["store_rows"] = int(store_rows)
            if dead_rows is not None:
                upd["dead_rows"] = int(dead_rows)
            if store_file is not None:
                upd["store_file"] = store_file
            if kind is not None:
                upd["kind"] = kind
            conn.executemany("UPDATE meta SET value = ? WHERE key = ?", [(json.dumps(v), k) for k, v in upd.items()])
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        if _crash_hook:
            _crash_hook("committed")
        if new_faiss is not None:       # keep the index just written instead of reading it back
            self._faiss_index, self._faiss_file = new_faiss, faiss_file
        # files of generations before the previous one are no longer read by anyone who reads the catalog
        keep = {faiss_file, store_file or st["store_file"], *upd["previous_files"], CATALOG, LOCK,
                CATALOG + "-wal", CATALOG + "-shm"}
        for f in os.listdir(self.dir):
            if (f.startswith("faiss-") or f.startswith("store-")) and f not in keep:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.dir, f))
        self._load()

    def _next_faiss(self, st: dict, removed: Sequence[SongInfo], new: Sequence[SongInfo],
                    live_after: Sequence[SongInfo], *, rebuild: bool = False):
        """The FAISS index of the next generation and its params: the current one minus ``removed`` plus
        ``new``, or a rebuild from ``live_after`` where the size calls for another kind (or a retrain)."""
        faiss = _faiss()
        n_after = sum(s.n_fingerprints for s in live_after)
        params = dict(st["faiss"])
        want = _choose_params(st["kind"], n_after, int(st["dim"]))
        rebuild = (rebuild or not params or self._faiss_index is None or params.get("kind") != want["kind"]
                   or (want["kind"] in ("ivf", "ivfsq", "ivfpq") and st["kind"] == "auto"
                       and n_after > 4 * int(params.get("trained_on", 0)))
                   or (removed and params.get("kind") == "hnsw"))     # HNSW cannot remove
        if rebuild:
            params = want
            train = None
            if params["kind"] in ("ivf", "ivfsq", "ivfpq"):
                if n_after < params["nlist"]:
                    params = {"kind": "flat"}
                else:
                    train = self._sample_rows(live_after, max(40 * params["nlist"], 20000))
            fidx = self._new_faiss(params, train)
            songs = live_after
        else:
            fidx = faiss.clone_index(self._faiss_index)
            for s in removed:
                fidx.remove_ids(faiss.IDSelectorRange(s.offset, s.offset + s.n_fingerprints))
            songs = new
        total = sum(s.n_fingerprints for s in songs)
        bar = progress(total=total, desc="indexing", unit="fp", leave=False) if total > 500_000 else None
        for ids, vecs in self._live_rows(songs):
            fidx.add_with_ids(vecs, ids)
            if bar is not None:
                bar.update(len(ids))
        if bar is not None:
            bar.close()
        return fidx, params

    def add_fingerprint_items(self, items: Iterable[tuple[str, np.ndarray, dict | None]], *,
                              on_exists: str = "error", progress_bar: bool = True,
                              total: int | None = None) -> list[str]:
        """Add many songs' fingerprints in one atomic write: all of them are added or none.

        ``items``: ``(song_id, fps (n, dim), meta)`` with optional meta keys ``title``, ``path``,
        ``duration`` (seconds; default: from the fingerprint count and the window config). Items are
        consumed lazily (the fingerprints are streamed to the store), so a generator of a large
        collection does not need to fit in memory. ``on_exists``: "error" (ValueError naming the ids),
        "skip" or "replace". Returns the ids added.
        """
        if on_exists not in ("error", "skip", "replace"):
            raise ValueError(f"on_exists must be 'error', 'skip' or 'replace', got {on_exists!r}")
        with self._writer() as st:
            dim = int(st["dim"])
            np_dtype = np.float16 if st["dtype"] == "float16" else np.float32
            wc = st["window_config"]
            existing = {s.song_id for s in st["songs"]}
            rows = int(st["store_rows"])
            new: list[SongInfo] = []
            seen: set[str] = set()
            replaced: list[str] = []
            path = os.path.join(self.dir, st["store_file"])
            with open(path, "ab") as f:
                for item in progress(items, total=total, desc="adding songs", unit="song",
                                     disable=not progress_bar or None):
                    song_id, fps, meta = (tuple(item) + (None,))[:3]
                    if not isinstance(song_id, str) or not song_id:
                        raise TypeError(f"song_id must be a non-empty str, got {song_id!r}")
                    if song_id in seen:
                        raise ValueError(f"song_id {song_id!r} is given twice in one add")
                    seen.add(song_id)
                    if song_id in existing:
                        if on_exists == "error":
                            raise ValueError(f"song {song_id!r} is already in index {self.dir} "
                                             "(use on_exists='skip' or 'replace', or remove it first)")
                        if on_exists == "skip":
                            continue
                        replaced.append(song_id)
                    a = _check_fps(fps, dim, f"fingerprints of {song_id!r}")
                    meta = dict(meta or {})
                    n = len(a)
                    dur = meta.get("duration")
                    if dur is None:
                        dur = (n - 1) * float(wc["step_s"]) + float(wc.get("window_s", wc["step_s"]))
                    f.write(np.ascontiguousarray(a, dtype=np_dtype).tobytes())
                    new.append(SongInfo(song_id, str(meta.get("title") or song_id), str(meta.get("path") or ""),
                                        float(dur), n, rows))
                    rows += n
                if not new:
                    return []
                f.flush()
                os.fsync(f.fileno())
            if _crash_hook:
                _crash_hook("appended")
            self._store_w = np.memmap(path, dtype=np_dtype, mode="r", shape=(rows, dim))
            rep = set(replaced)
            gone = [s for s in st["songs"] if s.song_id in rep]
            dead = int(st["dead_rows"]) + sum(s.n_fingerprints for s in gone)
            live_after = [s for s in st["songs"] if s.song_id not in rep] + new
            fidx, params = self._next_faiss(st, gone, new, live_after)
            self._commit(st, new_songs=new, removed=replaced, new_faiss=fidx, faiss_params=params,
                         store_rows=rows, dead_rows=dead)
        return [s.song_id for s in new]

    def add_fingerprints(self, song_id: str, fps: np.ndarray, meta: dict | None = None, *,
                         on_exists: str = "error") -> None:
        """Add one song's fingerprints ``(n, dim)`` (atomic). ``meta``: title, path, duration."""
        self.add_fingerprint_items([(song_id, fps, meta)], on_exists=on_exists, progress_bar=False)

    def add_songs(self, items: Iterable, fingerprinter, *, sr: int = 16000, on_exists: str = "error",
                  on_error: str = "raise", progress_bar: bool = True, total: int | None = None,
                  separator=None) -> list[str]:
        """Fingerprint and add songs in one atomic write (all or none).

        ``items``: ``(song_id, audio or path, title)`` (title optional). A path is read with
        :func:`chadml.audio.load` (any format soundfile reads, resampled to 16 kHz mono); an array is
        mono audio at ``sr``. The fingerprinter must be the index's model (same id and configs).
        ``on_error``: "raise" (a song that cannot be read aborts the whole add) or "skip" (it is
        left out with a warning). ``separator``: a :class:`chadml.separation.Separator` (or name) applied
        to each song before fingerprinting (default: identity). Returns the ids added.
        """
        from ..separation import get_separator
        separator = get_separator(separator)
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.check_compatible(model_id=fingerprinter_id(fingerprinter), config=fingerprinter)
        if total is None and hasattr(items, "__len__"):
            total = len(items)

        def gen():
            from .. import audio as _audio
            for item in items:
                item = tuple(item)
                if len(item) not in (2, 3):
                    raise ValueError(f"an item must be (song_id, audio or path, title), got {len(item)} fields")
                song_id, src = item[0], item[1]
                title = item[2] if len(item) == 3 and item[2] else None
                path = ""
                try:
                    if isinstance(src, (str, os.PathLike)):
                        path = os.path.abspath(os.fspath(src))
                        y, y_sr = _audio.load(path, sr=16000), 16000
                        title = title or os.path.splitext(os.path.basename(path))[0]
                    else:
                        y, y_sr = check_signal(src, "audio"), sr
                    if len(y) == 0:
                        raise ValueError(f"song {song_id!r} has no audio")
                    y = separator.separate(y, y_sr)
                    fps, _ = fingerprinter.from_audio(y, sr=y_sr)
                except (ChadError, ValueError, FileNotFoundError, RuntimeError) as exc:
                    if on_error == "raise":
                        raise
                    log.warning("skipping song %r: %s", song_id, exc)
                    continue
                yield song_id, fps, {"title": title or song_id, "path": path, "duration": len(y) / y_sr}

        return self.add_fingerprint_items(gen(), on_exists=on_exists, progress_bar=progress_bar, total=total)

    def remove(self, song_ids: Iterable[str], *, missing: str = "error", compact: bool | None = None) -> int:
        """Remove songs (atomic); returns how many were removed.

        ``missing``: "error" (KeyError naming the unknown ids) or "ignore". The store rows of removed
        songs stay as dead space until compaction: ``compact=None`` compacts when over half the store
        is dead, True always, False never.
        """
        if missing not in ("error", "ignore"):
            raise ValueError(f"missing must be 'error' or 'ignore', got {missing!r}")
        if isinstance(song_ids, str):
            song_ids = [song_ids]
        ids = list(dict.fromkeys(song_ids))
        with self._writer() as st:
            have = {s.song_id for s in st["songs"]}
            unknown = [s for s in ids if s not in have]
            if unknown and missing == "error":
                raise KeyError(f"not in index {self.dir}: {', '.join(map(repr, unknown[:10]))}"
                               + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""))
            ids = [s for s in ids if s in have]
            if not ids and not compact:
                return 0
            self._store_w = self._store
            rm = set(ids)
            live = [s for s in st["songs"] if s.song_id not in rm]
            dead = int(st["dead_rows"]) + sum(s.n_fingerprints for s in st["songs"] if s.song_id in rm)
            rows = int(st["store_rows"])
            if compact or (compact is None and dead > rows // 2 and dead > 0):
                self._compact(st, ids, live)
            else:
                gone = [s for s in st["songs"] if s.song_id in rm]
                fidx, params = self._next_faiss(st, gone, [], live)
                self._commit(st, removed=ids, new_faiss=fidx, faiss_params=params, dead_rows=dead)
        return len(ids)

    def compact(self) -> None:
        """Rewrite the store without the rows of removed songs (a new store file; atomic)."""
        self.remove([], compact=True)

    def _compact(self, st: dict, removed: list[str], live: list[SongInfo]) -> None:
        np_dtype = np.float16 if st["dtype"] == "float16" else np.float32
        n = int(st["store_file"].split("-")[1].split(".")[0]) + 1
        new_file = f"store-{n}." + ("f16" if st["dtype"] == "float16" else "f32")
        path = os.path.join(self.dir, new_file)
        moved, rows = [], 0
        with open(path, "wb") as f:
            for s in live:
                f.write(np.ascontiguousarray(self._store[s.offset:s.offset + s.n_fingerprints], dtype=np_dtype).tobytes())
                moved.append(SongInfo(s.song_id, s.title, s.path, s.duration, s.n_fingerprints, rows))
                rows += s.n_fingerprints
            f.flush()
            os.fsync(f.fileno())
        self._store_w = (np.memmap(path, dtype=np_dtype, mode="r", shape=(rows, int(st["dim"])))
                         if rows else np.zeros((0, int(st["dim"])), np_dtype))
        fidx, params = self._next_faiss(st, [], moved, moved, rebuild=True)
        self._commit(st, removed=removed, relocated=moved, new_faiss=fidx, faiss_params=params,
                     store_rows=rows, dead_rows=0, store_file=new_file)


# ----------------------------------------------------------------------------------------------
# song sources and the command line
# ----------------------------------------------------------------------------------------------

def find_audio_files(directory: str | os.PathLike) -> list[str]:
    """Audio files under ``directory`` (recursive, sorted)."""
    out = []
    for root, _, files in os.walk(os.fspath(directory)):
        out += [os.path.join(root, f) for f in files if f.lower().endswith(AUDIO_EXTENSIONS)]
    return sorted(out)


def song_items(source: str | os.PathLike) -> list[tuple[str, str, str]]:
    """``(song_id, path, title)`` of the songs in a folder (id = file stem) or a song table (originals).

    A song table is what :meth:`chadml.data.SongTable.read` reads; its rows with ``audio_type``
    "original" are the songs (id = song_id).
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        files = find_audio_files(source)
        if not files:
            raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {source}")
        items = [(os.path.splitext(os.path.basename(p))[0], p, os.path.splitext(os.path.basename(p))[0])
                 for p in files]
        ids = [i[0] for i in items]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"song ids (file stems) must be unique under {source}; repeated: {dup[:10]}")
        return items
    if not os.path.exists(source):
        raise FileNotFoundError(f"no such folder or song table: {source}")
    from ..data import SongTable
    table = SongTable.read(source)
    base = os.path.dirname(os.path.abspath(source))
    items = []
    for r in _rows(table):
        if str(_get(r, "audio_type")) != "original":
            continue
        p = str(_get(r, "path"))
        p = p if os.path.isabs(p) else os.path.join(base, p)
        sid = str(_get(r, "song_id"))
        extra = _get(r, "extra", None) or {}
        items.append((sid, p, str(_get(r, "title", None) or extra.get("title") or sid)))
    if not items:
        raise ValueError(f"the song table {source} has no rows with audio_type 'original'")
    return items


def _rows(table):
    for attr in ("rows", "records"):
        v = getattr(table, attr, None)
        if v is not None:
            return v() if callable(v) else v
    return list(table)


def _get(r, key, default=None):
    if isinstance(r, dict):
        return r.get(key, default)
    return getattr(r, key, default)


def add_cli(sub) -> None:
    from ..separation import add_separator_args
    p = sub.add_parser("index", help="build, extend, shrink or describe a song index",
                       description="Song index: FAISS over every fingerprint of every song, a SQLite catalog "
                                   "and a memory-mapped fingerprint store.")
    s = p.add_subparsers(dest="index_command", metavar="ACTION")
    b = s.add_parser("build", help="fingerprint a folder of songs (or a song table) into a new index",
                     description="Fingerprint every song of a folder (song id = file stem) or of a song table "
                                 "(rows with audio_type 'original') with a trained model, into a new index.")
    b.add_argument("--model", required=True, help="encoder checkpoint (.pt)")
    b.add_argument("--songs", required=True, help="folder of audio files, or a song table (CSV/Parquet)")
    b.add_argument("--out", required=True, help="index directory to create")
    b.add_argument("--kind", choices=KINDS, default="auto", help="FAISS index type (default: by size)")
    b.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="fingerprint store type")
    b.add_argument("--skip-bad", action="store_true", help="leave out unreadable songs (default: abort)")
    b.add_argument("--device", default=None)
    add_separator_args(b)
    b.set_defaults(func=_cli_build)
    a = s.add_parser("add", help="add songs to an index (all or none)",
                     description="Fingerprint songs and add them to an index in one atomic write.")
    a.add_argument("--index", required=True)
    a.add_argument("--songs", required=True, help="folder of audio files, or a song table")
    a.add_argument("--model", default=None, help="checkpoint (default: the one the index was built with)")
    a.add_argument("--skip-existing", action="store_true", help="skip song ids already in the index")
    a.add_argument("--replace", action="store_true", help="replace song ids already in the index")
    a.add_argument("--skip-bad", action="store_true", help="leave out unreadable songs (default: abort)")
    a.add_argument("--device", default=None)
    a.set_defaults(func=_cli_add)
    r = s.add_parser("remove", help="remove songs by id", description="Remove songs from an index (atomic).")
    r.add_argument("--index", required=True)
    r.add_argument("song_ids", nargs="+", metavar="SONG_ID")
    r.add_argument("--ignore-missing", action="store_true")
    r.set_defaults(func=_cli_remove)
    i = s.add_parser("info", help="describe an index", description="Songs, fingerprints, sizes, model, configs.")
    i.add_argument("--index", required=True)
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_cli_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _quiet(args) -> bool:
    return bool(getattr(args, "quiet", False))


def _cli_build(args) -> int:
    from ..separation import separator_from_args
    from ..models import checkpoint_id, load_fingerprinter
    separator = separator_from_args(args)
    items = song_items(args.songs)
    fp = load_fingerprinter(args.model, device=args.device)
    idx = SongIndex.create(args.out, fingerprinter=fp, model_id=checkpoint_id(args.model),
                           kind=args.kind, dtype=args.dtype, model_path=args.model)
    fp.model_id = idx.model_id
    t0 = time.perf_counter()
    try:
        idx.add_songs(items, fp, progress_bar=not _quiet(args), on_error="skip" if args.skip_bad else "raise",
                      separator=separator)
    except BaseException:
        shutil.rmtree(idx.dir, ignore_errors=True)     # we created it: leave no half-built index behind
        raise
    info = idx.info()
    print(f"indexed {info['songs']} songs ({info['hours']:.2f} h, {info['fingerprints']} fingerprints) into "
          f"{idx.dir} in {time.perf_counter() - t0:.1f} s; {info['size_bytes'] / 1e6:.1f} MB")
    return 0


def _cli_add(args) -> int:
    from ..models import checkpoint_id, load_fingerprinter
    idx = SongIndex.open(args.index)
    model = args.model or idx.model_path
    if not model:
        raise ValueError(f"index {idx.dir} records no model path: give --model")
    mid = checkpoint_id(model)
    idx.check_compatible(model_id=mid)
    fp = load_fingerprinter(model, device=args.device)
    fp.model_id = mid
    if args.skip_existing and args.replace:
        raise ValueError("give at most one of --skip-existing and --replace")
    added = idx.add_songs(song_items(args.songs), fp, progress_bar=not _quiet(args),
                          on_error="skip" if args.skip_bad else "raise", on_exists="skip" if args.skip_existing else "replace" if args.replace else "error")
    print(f"added {len(added)} songs; the index holds {len(idx)}")
    return 0


def _cli_remove(args) -> int:
    idx = SongIndex.open(args.index)
    try:
        n = idx.remove(args.song_ids, missing="ignore" if args.ignore_missing else "error")
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    print(f"removed {n} songs; the index holds {len(idx)}")
    return 0


def _cli_info(args) -> int:
    info = SongIndex.open(args.index).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"index         {info['path']}  (format {info['format_version']}, generation {info['generation']})")
    print(f"songs         {info['songs']}  ({info['hours']:.2f} h of audio)")
    print(f"fingerprints  {info['fingerprints']}  x {info['dim']} {info['dtype']}  "
          f"(dead rows {info['dead_rows']})")
    print(f"faiss         {info['faiss'] or '(empty)'}")
    print(f"model         {info['model_id']}  {info['model_path'] or ''}")
    print(f"features      {info['feature_config']}")
    print(f"windows       {info['window_config']}")
    bph = info["bytes_per_hour"]
    print(f"size          {info['size_bytes'] / 1e6:.2f} MB" + (f"  ({bph / 1e6:.2f} MB per hour)" if bph else ""))
    return 0
