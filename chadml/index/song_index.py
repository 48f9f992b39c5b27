"""The song index: a FAISS index over every fingerprint of every song, a SQLite catalog and a fingerprint store.

An index is a directory::

    INDEX/
      catalog.sqlite         meta (format_version, model id, feature/window config, FAISS parameters,
                             the current generation) and the songs (id, title, path, duration,
                             n_fingerprints, offset of the song's first row in the store)
      store-<s>.f32|.f16|.i8 the fingerprints of every song, row after row (raw, memory-mapped)
      store-<s>.i8.scale     an int8 store's per-row scales (float32)
      faiss-<g>.index        the FAISS index of generation g; its ids are store rows
      faiss-<g>.ivfdata      its inverted lists, where they are on disk (catalogue scale: :mod:`.ann`)
      write.lock             held (flock) by the one writer at a time
      starts-<g>.json        where the songs of generation g start in their recordings (the silence
                             trimmed at ingest; absent: all at 0 s): :mod:`chadml.index.starts`
      building.json          only while a build (``chad index build``) is unfinished: what it was
                             building (songs, model); it is removed when the build has added every song


Every write makes a new generation: new rows are appended past the committed end of the store (and
fsync'ed), the new FAISS index is written to a fresh file, and then one SQLite transaction inserts the
songs and points the catalog at the new generation. A writer killed at any moment leaves the index at
the old generation (the bytes it appended are invisible and are cut off by the next writer); a reader
opens one generation in one read transaction and keeps using it (``refresh()`` moves it to the newest).

:class:`SongIndex` composes the parts: :mod:`.catalog` (SQLite), :mod:`.store` (the rows file),
:mod:`.ann` (FAISS) and :mod:`.ingest` (what is added); it holds the lock and generation protocol.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from typing import Iterable, Iterator, Sequence

import numpy as np

from .. import __version__
from ..separation import get_separator
from ..util import progress
from . import ann
from .catalog import CATALOG, Catalog, IndexCorruptError, SongInfo, check_compatible, describe, new_meta
from .ingest import SONG_VOICING, checked_items, fingerprint_items, fingerprinter_id
from .starts import read_starts, remove_old_starts, write_starts
from .store import (DTYPES, StoreView, append_songs, check_fps, create_store, next_store_file, open_rows,
                    store_dtype, store_file_name, store_files, truncate, write_compacted)

__all__ = ["SongIndex", "LOCK", "BUILDING"]

LOCK = "write.lock"
BUILDING = "building.json"

# Called as _crash_hook(stage) at the stages of a write ("appended", "faiss_written", "committed"):
# the atomicity tests kill the process there. None in normal use.
_crash_hook = None


def _fsync_dir(d: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_directory(directory: str, meta: dict, building: dict | None = None) -> None:
    """Make the index directory of a new index with ``meta`` (the catalog, an empty store, the lock file,
    and :data:`BUILDING` holding ``building`` when given), all at once: it is built in a temporary folder
    beside it and renamed into place."""
    if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
        raise FileExistsError(f"cannot create an index at {directory}: it exists and is not an empty "
                              "directory (open it with SongIndex.open, or choose another path)")
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".", suffix=".tmp", dir=parent)
    try:
        Catalog.create(tmp, meta)
        create_store(tmp, meta["store_file"])
        open(os.path.join(tmp, LOCK), "wb").close()
        if building is not None:
            with open(os.path.join(tmp, BUILDING), "w", encoding="utf-8") as f:
                json.dump(building, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
        if os.path.isdir(directory):
            os.rmdir(directory)
        os.rename(tmp, directory)
        _fsync_dir(parent)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_files(directory: str, keep: set[str]) -> None:
    """Delete the FAISS and store files of ``directory`` not in ``keep`` nor belonging to a file in it (an
    int8 store's scales, a FAISS index's on-disk lists): no reader of the catalog uses them."""
    keep = {g for f in keep for g in (store_files(f) if f.startswith("store-") else [f, ann.lists_file(f)])}
    for f in os.listdir(directory):
        if (f.startswith("faiss-") or f.startswith("store-")) and f not in keep:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, f))


class SongIndex:
    """A song index directory opened at one generation (see the module docstring for the layout).

    Use :meth:`create` or :meth:`open`; then :meth:`add_songs` / :meth:`add_fingerprints`,
    :meth:`remove`, :meth:`info`, ``len(index)``, :meth:`packed` / :meth:`iter_packed` (the re-ranker's
    view of the store) and :meth:`search` (FAISS k-NN of fingerprints, returning store rows).
    """

    # ---- creation / opening ------------------------------------------------------------------

    def __init__(self, directory: str | os.PathLike):
        self.dir = os.path.abspath(os.fspath(directory))
        self._catalog = Catalog(self.dir)
        self._faiss_index = self._faiss_file = None
        self._store = self._store_key = self._store_w = None
        self._pending_starts: dict[str, float] = {}
        self._load()

    @classmethod
    def create(cls, directory: str | os.PathLike, *, fingerprinter=None, model_id: str | None = None,
               feature_config=None, window_config=None, dim: int = 128, kind: str = "auto",
               dtype: str = "float32", model_path: str | os.PathLike | None = None,
               building: dict | None = None) -> "SongIndex":
        """Create an empty index at ``directory`` (which must not exist or be empty).

        Give either ``fingerprinter`` (its model id and configs are recorded) or ``model_id`` with
        ``feature_config`` and ``window_config`` (objects with ``to_dict()`` or dicts; the window
        config needs ``step_s``). ``kind``: "auto" (exact search up to 200k fingerprints, IVF with
        8-bit scalar quantisation above), "flat", "ivf" (IVF-Flat), "ivfsq", "ivfpq" or "hnsw".
        ``dtype``: the store's "float32", "float16" or "int8" (per-row scale; or "f32", "f16", "i8"): 4, 2
        or 1 byte per value (int8 indexes are format 2: :func:`chadml.index.catalog.format_version`).
        ``model_path``: a checkpoint recorded so that a :class:`chadml.search.Searcher` can load it.
        ``building``: the new index is an unfinished build of these songs (a JSON-ready dict, e.g. the
        song source and model: :attr:`unfinished_build`) until :meth:`finish_build`.

        Example
        -------
        >>> idx = SongIndex.create("songs.idx", fingerprinter=fp)   # doctest: +SKIP
        """
        if kind not in ann.KINDS:
            raise ValueError(f"kind must be one of {ann.KINDS}, got {kind!r}")
        dtype = store_dtype(dtype)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if fingerprinter is not None:
            model_id = model_id or fingerprinter_id(fingerprinter)
            feature_config = feature_config if feature_config is not None else fingerprinter.feature_config
            window_config = window_config if window_config is not None else fingerprinter.window_config
        meta = new_meta(model_id=model_id, model_path=model_path, feature_config=feature_config,
                        window_config=window_config, dim=dim, dtype=dtype, kind=kind,
                        store_file=store_file_name(0, dtype), version=__version__)
        directory = os.path.abspath(os.fspath(directory))
        _create_directory(directory, meta, building)
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
        check_compatible(self.dir, self._meta, model_id=model_id, config=config)

    # ---- reading a generation ----------------------------------------------------------------

    def _load(self) -> None:
        for attempt in range(10):
            st = self._catalog.read()
            try:
                self._apply(st)
                return
            except FileNotFoundError as exc:
                if attempt == 9:
                    name = os.path.basename(exc.filename or str(exc))
                    what = "FAISS index" if name.startswith("faiss-") else "fingerprint store"
                    raise IndexCorruptError(
                        f"index {self.dir} is corrupt: its {what} file {name} (generation {st['generation']}) "
                        "is missing; build the index again (`chad index build` into a new --out)") from None
                time.sleep(0.05)    # a writer replaced the generation's files between our reads: reread

    def _apply(self, st: dict) -> None:
        faiss_file, fidx = st["faiss_file"], None
        if faiss_file:
            path = os.path.join(self.dir, faiss_file)
            if faiss_file != self._faiss_file or self._faiss_index is None:
                if not os.path.exists(path):
                    raise FileNotFoundError(2, "No such file", path)
                try:
                    fidx = ann.read_index(path)
                except RuntimeError as exc:      # FAISS cannot read it (truncated, overwritten)
                    raise IndexCorruptError(
                        f"index {self.dir} is corrupt: its FAISS index file {faiss_file} cannot be read "
                        f"({(str(exc).strip().splitlines() or ['?'])[-1][:120]}); build the index again "
                        "(`chad index build` into a new --out)") from None
            else:
                fidx = self._faiss_index
        if not st["store_file"].endswith("." + DTYPES[st["dtype"]]):
            raise IndexCorruptError(f"index {self.dir} is corrupt: its catalog says {st['dtype']} fingerprints but "
                                    f"its store is {st['store_file']}; build the index again")
        key = (st["store_file"], int(st["store_rows"]))
        store = (self._store if key == self._store_key else
                 open_rows(os.path.join(self.dir, st["store_file"]), st["dtype"], key[1], int(st["dim"])))
        self._meta = {k: v for k, v in st.items() if k != "songs"}
        self._songs = st["songs"]
        self._faiss_index, self._faiss_file = fidx, faiss_file
        self._store, self._store_key = store, key
        self._view = StoreView(store, st["dtype"], self._songs)
        self._pos = {s.song_id: i for i, s in enumerate(self._songs)}
        self._starts = read_starts(self.dir, int(st["generation"]))
        self._start_arr = np.array([self._starts.get(s.song_id, 0.0) for s in self._songs], np.float64)
        if self._faiss_index is not None:
            ann.set_search_params(self._faiss_index, self._meta["faiss"])

    def refresh(self) -> bool:
        """Move to the newest committed generation; True if it changed."""
        if self._catalog.generation() == self.generation:
            return False
        self._load()
        return True

    # ---- properties --------------------------------------------------------------------------

    model_id = property(lambda self: self._meta["model_id"], doc="The id of the model that made the fingerprints.")
    model_path = property(lambda self: self._meta.get("model_path") or None, doc="Its checkpoint, if recorded.")
    feature_config = property(lambda self: dict(self._meta["feature_config"]))
    window_config = property(lambda self: dict(self._meta["window_config"]))
    step_s = property(lambda self: float(self._meta["window_config"]["step_s"]),
                      doc="Seconds between consecutive fingerprints of a song (the window step).")
    dim = property(lambda self: int(self._meta["dim"]))
    dtype = property(lambda self: self._meta["dtype"], doc='The store\'s "float32", "float16" or "int8".')
    generation = property(lambda self: int(self._meta["generation"]))
    faiss_params = property(lambda self: dict(self._meta["faiss"]))
    lengths = property(lambda self: self._view.lengths,
                       doc="The fingerprint count of each song, in catalog (store) order (int64; do not modify).")
    _lengths = lengths      # the name the re-rankers of chadml.search used
    n_fingerprints = property(lambda self: int(self._view.lengths.sum()))

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

    def starts(self, positions=None) -> np.ndarray:
        """Where the fingerprints of the songs at catalog ``positions`` (default: all) start in their
        recordings, in seconds (the silence trimmed at ingest; 0 for songs added untrimmed): a song's
        fingerprint ``i`` is at ``start + i * step_s`` in the original recording (:mod:`.starts`)."""
        return self._start_arr.copy() if positions is None else self._start_arr[np.asarray(positions, np.int64)]

    def fingerprints(self, song_id: str) -> np.ndarray:
        """The fingerprints of one song as float32 ``(n, dim)`` (a view of the store when it is float32)."""
        return self._view.block(self.song(song_id))

    def info(self) -> dict:
        """Counts, sizes, model and configs, as a JSON-ready dict (``unfinished_build``: see
        :attr:`unfinished_build`)."""
        return {**describe(self.dir, self._meta, self._songs), "unfinished_build": self.unfinished_build}

    # ---- a build in steps -----------------------------------------------------------------------

    @property
    def unfinished_build(self) -> dict | None:
        """What an unfinished build of this index was building (the ``building`` given to :meth:`create`),
        or None when the index is not one (the build finished, or it was made otherwise). A build killed
        midway leaves its index unfinished, holding the songs its steps committed
        (:func:`chadml.index.build_songs` resumes it)."""
        path = os.path.join(self.dir, BUILDING)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return d if isinstance(d, dict) else {}

    def finish_build(self) -> None:
        """Mark the build of this index finished (:attr:`unfinished_build` becomes None)."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.dir, BUILDING))
        _fsync_dir(self.dir)

    def rebuild_ann(self) -> bool:
        """Rebuild the FAISS index from every song where its parameters differ from those of an index
        built in one add of them all (:func:`chadml.index.ann.target_params`: an IVF index trained on an
        early part of a build made in steps); True if it was rebuilt (a new generation)."""
        with self._writer() as st:
            n = sum(s.n_fingerprints for s in st["songs"])
            if not st["songs"] or ann.target_params(st["kind"], n, int(st["dim"])) == st["faiss"]:
                return False
            self._store_w = self._store
            fidx, params = self._next_faiss(st, [], [], st["songs"], rebuild=True)
            self._commit(st, fidx, params)
        return True

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
        return self._view.packed(np.arange(len(self)) if song_ids is None else self.positions(song_ids))

    def iter_packed(self, positions: np.ndarray, *, max_rows: int = 1 << 20, bridge_rows: int = 4096,
                    min_run_rows: int = 32768) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Chunks ``(data, offsets, which)`` covering the songs at catalog ``positions``, for re-ranking.

        ``which[j]`` is the index into ``positions`` of the chunk's j-th candidate, or -1 for a filler
        candidate (rows between two wanted songs, scored and ignored: cheaper than copying). With a
        float32 store, runs of at least ``min_run_rows`` rows (gaps of up to ``bridge_rows`` bridged)
        are scored in place in the memory map; short runs are gathered into float32 chunks of at most
        ``max_rows`` rows. A float16 store is always gathered (converted) chunk by chunk.
        """
        return self._view.iter_packed(positions, max_rows=max_rows, bridge_rows=bridge_rows,
                                      min_run_rows=min_run_rows)

    @property
    def rows(self):
        """The store's rows, memory-mapped (:class:`chadml.index.store.Rows`): ``rows.data`` as stored
        (float32, float16 or int8), ``rows.scale`` (int8: one float32 per row, else None). For a kernel
        that reads candidates in place (``chadsp.rerank_ranges`` with :meth:`ranges`)."""
        return self._view.rows

    def ranges(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(first store row int64, row count int64)`` of the songs at catalog ``positions``."""
        return self._view.ranges(positions)

    def release(self, positions: np.ndarray) -> None:
        """Give back the memory pages of the rows of the songs at ``positions`` where the store is large
        (:attr:`chadml.index.store.Rows.release_above`; the page cache keeps them): a query process's
        resident memory stays the size of one query's candidates, not the store's."""
        rows = self._view.rows
        if rows.nbytes > rows.release_above:
            rows.release(*self._view.ranges(positions))

    def search(self, fps: np.ndarray, k: int, *, nprobe: int | None = None,
               ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """FAISS k-NN of each fingerprint: ``(distances float32 (nq, k), song positions int64 (nq, k), rows)``.

        Returns ``(distances, positions, rows)``; missing neighbours have position -1.
        """
        q = check_fps(fps, self.dim, "fps")
        found = ann.search(self._faiss_index, self._meta["faiss"], q, k, nprobe=nprobe, ef_search=ef_search)
        if found is None:
            empty = np.zeros((len(q), 0), np.int64)
            return np.zeros((len(q), 0), np.float32), empty, empty.copy()
        dist, rows = found
        return dist, self.rows_to_positions(rows), rows

    def rows_to_positions(self, rows: np.ndarray) -> np.ndarray:
        """Catalog positions of store rows (-1 for -1 or rows of no live song)."""
        return self._view.rows_to_positions(rows)

    # ---- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writer(self):
        """The write lock, a fresh state, and the store cut back to its committed end."""
        lock = open(os.path.join(self.dir, LOCK), "a+b")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            st = self._catalog.read()
            self._apply(st)
            truncate(os.path.join(self.dir, st["store_file"]), int(st["store_rows"]), int(st["dim"]), st["dtype"])
            yield st
        finally:
            self._store_w = None
            self._pending_starts = {}
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            lock.close()

    def _next_faiss(self, st: dict, removed: Sequence[SongInfo], new: Sequence[SongInfo],
                    live_after: Sequence[SongInfo], *, rebuild: bool = False):
        nxt = f"faiss-{int(st['generation']) + 1}.index"
        return ann.next_index(self._faiss_index, st["faiss"], st["kind"], int(st["dim"]), self._store_w,
                              removed, new, live_after, rebuild=rebuild,
                              lists_path=os.path.join(self.dir, ann.lists_file(nxt)),
                              current_path=os.path.join(self.dir, st["faiss_file"]) if st["faiss_file"] else None)

    def _commit(self, st: dict, new_faiss, faiss_params: dict, **changes) -> None:
        """Write the next generation's FAISS file, commit the catalog (``changes``: the songs and store
        changes of :meth:`Catalog.commit`), drop the files no reader needs any more, reload."""
        faiss_file = f"faiss-{int(st['generation']) + 1}.index"
        ann.write_index(new_faiss, os.path.join(self.dir, faiss_file))
        if _crash_hook:
            _crash_hook("faiss_written")
        gone = set(changes.get("removed") or ())
        write_starts(self.dir, int(st["generation"]) + 1,
                     {**{k: v for k, v in self._starts.items() if k not in gone}, **self._pending_starts})
        previous = self._catalog.commit(st, faiss_file=faiss_file, faiss_params=faiss_params, **changes)
        if _crash_hook:
            _crash_hook("committed")
        self._faiss_index, self._faiss_file = new_faiss, faiss_file   # keep it instead of reading it back
        # files of generations before the previous one are no longer read by anyone who reads the catalog
        _remove_stale_files(self.dir, {faiss_file, changes.get("store_file") or st["store_file"], *previous})
        remove_old_starts(self.dir, int(st["generation"]) + 1)
        self._load()

    def add_fingerprint_items(self, items: Iterable[tuple[str, np.ndarray, dict | None]], *,
                              on_exists: str = "error", progress_bar: bool = True,
                              total: int | None = None) -> list[str]:
        """Add many songs' fingerprints in one atomic write: all of them are added or none.

        ``items``: ``(song_id, fps (n, dim), meta)`` with optional meta keys ``title``, ``path``,
        ``duration`` (seconds; default: from the fingerprint count and the window config), ``start``
        (seconds of the recording before the first fingerprint's window: silence trimmed; default 0). Items are
        consumed lazily (the fingerprints are streamed to the store), so a generator of a large
        collection does not need to fit in memory. ``on_exists``: "error" (ValueError naming the ids),
        "skip" or "replace". Returns the ids added.
        """
        if on_exists not in ("error", "skip", "replace"):
            raise ValueError(f"on_exists must be 'error', 'skip' or 'replace', got {on_exists!r}")
        with self._writer() as st:
            path = os.path.join(self.dir, st["store_file"])
            existing = {s.song_id for s in st["songs"]}
            items = progress(items, total=total, desc="adding songs", unit="song", disable=not progress_bar or None)
            checked = checked_items(items, dim=int(st["dim"]), window_config=st["window_config"],
                                    existing=existing, on_exists=on_exists, where=self.dir)
            new, rows = append_songs(path, st["dtype"], self._record_starts(checked), int(st["store_rows"]))
            if not new:
                return []
            if _crash_hook:
                _crash_hook("appended")
            self._store_w = open_rows(path, st["dtype"], rows, int(st["dim"]))
            replaced = [s.song_id for s in new if s.song_id in existing]
            rep = set(replaced)
            gone = [s for s in st["songs"] if s.song_id in rep]
            dead = int(st["dead_rows"]) + sum(s.n_fingerprints for s in gone)
            live_after = [s for s in st["songs"] if s.song_id not in rep] + new
            fidx, params = self._next_faiss(st, gone, new, live_after)
            self._commit(st, fidx, params, new_songs=new, removed=replaced, store_rows=rows, dead_rows=dead)
        return [s.song_id for s in new]

    def _record_starts(self, items):
        """Pass the checked items on, keeping each song's ``start`` (seconds trimmed at ingest) for the commit."""
        for song_id, fps, meta in items:
            self._pending_starts[song_id] = float(meta.get("start", 0.0))
            yield song_id, fps, meta

    def add_fingerprints(self, song_id: str, fps: np.ndarray, meta: dict | None = None, *,
                         on_exists: str = "error") -> None:
        """Add one song's fingerprints ``(n, dim)`` (atomic). ``meta``: title, path, duration."""
        self.add_fingerprint_items([(song_id, fps, meta)], on_exists=on_exists, progress_bar=False)

    def add_songs(self, items: Iterable, fingerprinter, *, sr: int = 16000, on_exists: str = "error",
                  on_error: str = "raise", progress_bar: bool = True, total: int | None = None,
                  separator=None, voicing=SONG_VOICING) -> list[str]:
        """Fingerprint and add songs in one atomic write (all or none).

        ``items``: ``(song_id, audio or path, title)`` (title optional). A path is read with
        :func:`chadml.audio.load` (any format soundfile reads, resampled to 16 kHz mono); an array is
        mono audio at ``sr``. The fingerprinter must be the index's model (same id and configs).
        ``on_error``: "raise" (a song that cannot be read aborts the whole add) or "skip" (it is
        left out with a warning). ``separator``: a :class:`chadml.separation.Separator` (or name) applied
        to each song before fingerprinting (default: identity). ``voicing``: how songs are trimmed to
        their voiced part, and refused when silent or too little voiced (:data:`.ingest.SONG_VOICING`;
        None: neither). Returns the ids added.
        """
        separator = get_separator(separator)
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.check_compatible(model_id=fingerprinter_id(fingerprinter), config=fingerprinter)
        if total is None and hasattr(items, "__len__"):
            total = len(items)
        fps = fingerprint_items(items, fingerprinter, separator, sr=sr, on_error=on_error, voicing=voicing)
        return self.add_fingerprint_items(fps, on_exists=on_exists, progress_bar=progress_bar, total=total)

    def remove(self, song_ids: Iterable[str], *, missing: str = "error", compact: bool | None = None) -> int:
        """Remove songs (atomic); returns how many were removed.

        ``missing``: "error" (KeyError naming the unknown ids) or "ignore". The store rows of removed
        songs stay as dead space until compaction: ``compact=None`` compacts when over half the store
        is dead, True always, False never.
        """
        if missing not in ("error", "ignore"):
            raise ValueError(f"missing must be 'error' or 'ignore', got {missing!r}")
        ids = list(dict.fromkeys([song_ids] if isinstance(song_ids, str) else song_ids))
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
            gone = [s for s in st["songs"] if s.song_id in rm]
            dead = int(st["dead_rows"]) + sum(s.n_fingerprints for s in gone)
            if compact or (compact is None and dead > int(st["store_rows"]) // 2 and dead > 0):
                self._compact(st, ids, live)
            else:
                fidx, params = self._next_faiss(st, gone, [], live)
                self._commit(st, fidx, params, removed=ids, dead_rows=dead)
        return len(ids)

    def compact(self) -> None:
        """Rewrite the store without the rows of removed songs (a new store file; atomic)."""
        self.remove([], compact=True)

    def _compact(self, st: dict, removed: list[str], live: list[SongInfo]) -> None:
        new_file = next_store_file(st["store_file"], st["dtype"])
        path = os.path.join(self.dir, new_file)
        moved, rows = write_compacted(self._store, live, path, st["dtype"])
        self._store_w = open_rows(path, st["dtype"], rows, int(st["dim"]))
        fidx, params = self._next_faiss(st, [], moved, moved, rebuild=True)
        self._commit(st, fidx, params, removed=removed, relocated=moved, store_rows=rows, dead_rows=0,
                     store_file=new_file)
