"""The SQLite catalog of a song index: its schema, the songs table, the metadata and the generation.

``catalog.sqlite`` (WAL journal) holds two tables:

- ``meta (key, value)``: one JSON value per key: ``format_version``, ``chad_version``, ``created``,
  ``model_id``, ``model_path``, ``feature_config``, ``window_config``, ``dim``, ``dtype``, ``kind``,
  ``faiss`` (the FAISS parameters), ``generation``, ``faiss_file``, ``store_file``, ``store_rows``,
  ``dead_rows``, ``previous_files``;
- ``songs (song_id, title, path, duration, n_fingerprints, offset, added)``: one row per song, ``offset``
  being the store row of its first fingerprint.

``format_version`` is 1 for an index any chad since format 1 reads (a float32 or float16 store, FAISS in
one file) and 2 for one that needs this chad: an int8 store, or FAISS inverted lists on disk
(:func:`format_version`); an older chad refuses format 2 with a clear message instead of misreading it.

A reader reads one generation (meta and songs) in one read transaction; a writer changes the songs and
points the meta at the next generation in one transaction (:meth:`Catalog.commit`).
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Sequence

from ..errors import ChadError

__all__ = ["FORMAT_VERSION", "READ_VERSIONS", "format_version", "CATALOG", "SongInfo", "IndexMismatchError", "IndexCorruptError", "Catalog",
           "config_dict", "new_meta", "check_compatible", "describe", "connect"]

FORMAT_VERSION = 2          # the newest format this chad writes (:func:`format_version`: the one an index needs)
READ_VERSIONS = (1, 2)
STORE_DTYPES = ("float32", "float16", "int8")
CATALOG = "catalog.sqlite"

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE songs (song_id TEXT PRIMARY KEY, title TEXT NOT NULL, path TEXT NOT NULL,"
    " duration REAL NOT NULL, n_fingerprints INTEGER NOT NULL, offset INTEGER NOT NULL,"
    " added REAL NOT NULL)",
    "CREATE INDEX songs_offset ON songs(offset)",
)


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


def config_dict(c) -> dict:
    """A feature/window config as a dict: a dict (copied), an object with ``to_dict()``, or None (empty).

    >>> config_dict({"step_s": 0.25}), config_dict(None)
    ({'step_s': 0.25}, {})
    """
    if c is None:
        return {}
    if isinstance(c, dict):
        return dict(c)
    if hasattr(c, "to_dict"):
        return dict(c.to_dict())
    raise TypeError(f"a feature/window config must be a dict or have .to_dict(), got {type(c).__name__}")


def _canon(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _model_ref(model_path) -> str:
    """How the catalog records a model: an absolute path, or a name such as ``builtin:chad-qbh`` as it is."""
    if not model_path:
        return ""
    ref = os.fspath(model_path)
    return ref if ref.startswith("builtin:") else os.path.abspath(ref)


def format_version(dtype: str, faiss_params: dict | None = None) -> int:
    """The format an index needs: 2 with an int8 store or on-disk FAISS lists, else 1 (what every chad reads).

    >>> format_version("float16"), format_version("int8"), format_version("float32", {"ondisk": True})
    (1, 2, 2)
    """
    return 2 if dtype == "int8" or (faiss_params or {}).get("ondisk") else 1


def new_meta(*, model_id: str, model_path, feature_config, window_config, dim: int, dtype: str, kind: str,
             store_file: str, version: str) -> dict:
    """The meta of a new, empty index (generation 0); ``window_config`` must have ``step_s``."""
    if not model_id:
        raise ValueError("SongIndex.create needs a fingerprinter or a model_id (with feature_config and "
                         "window_config)")
    fc, wc = config_dict(feature_config), config_dict(window_config)
    if "step_s" not in wc:
        raise ValueError(f"window_config must have step_s (the fingerprint step in seconds), got {wc}")
    return {
        "format_version": format_version(dtype), "chad_version": version, "created": time.time(),
        "model_id": str(model_id), "model_path": _model_ref(model_path),
        "feature_config": fc, "window_config": wc, "dim": dim, "dtype": dtype,
        "kind": kind, "faiss": {}, "generation": 0, "faiss_file": "",
        "store_file": store_file, "store_rows": 0, "dead_rows": 0, "previous_files": [],
    }


def check_compatible(where: str, meta: dict, *, model_id: str | None = None, config=None) -> None:
    """Raise :class:`IndexMismatchError` naming both sides if ``model_id`` or ``config`` differ from the
    ``meta`` of index ``where``.

    ``config``: ``(feature_config, window_config)`` (objects or dicts) or a fingerprinter (its configs);
    only the keys present in both sides are compared.

    >>> meta = {"model_id": "m1", "feature_config": {"kind": "cqt"}, "window_config": {"step_s": 0.25}}
    >>> check_compatible("ix", meta, model_id="m1", config=({"kind": "cqt", "new_key": 1}, {}))
    >>> check_compatible("ix", meta, config=({}, {"step_s": 0.5}))  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    chadml.index.catalog.IndexMismatchError: index ix was built with window config {'step_s': 0.25}, but the
    one given has {'step_s': 0.5}: rebuild the index or use the matching model
    """
    if model_id is not None and str(model_id) != meta["model_id"]:
        raise IndexMismatchError(
            f"index {where} was built with model {meta['model_id']}, but the model given is {model_id}: "
            "rebuild the index with this model (`chad index build`) or use the model it was built with")
    if config is None:
        return
    if hasattr(config, "feature_config") and hasattr(config, "window_config"):
        config = (config.feature_config, config.window_config)
    if not (isinstance(config, (tuple, list)) and len(config) == 2):
        raise TypeError("expect_config must be (feature_config, window_config) or a fingerprinter, "
                        f"got {type(config).__name__}")
    for name, want, have in (("feature config", config_dict(config[0]), meta["feature_config"]),
                             ("window config", config_dict(config[1]), meta["window_config"])):
        diff = {k for k in set(want) & set(have) if _canon(want[k]) != _canon(have[k])}
        if diff:
            raise IndexMismatchError(
                f"index {where} was built with {name} "
                f"{ {k: have[k] for k in sorted(diff)} }, but the one given has "
                f"{ {k: want[k] for k in sorted(diff)} }: rebuild the index or use the matching model")


def connect(path: str, *, write: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) that waits up to 60 s for a lock."""
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 60000")
    if write:
        conn.execute("PRAGMA synchronous = FULL")
    return conn


class Catalog:
    """The catalog file of the index directory ``directory``."""

    def __init__(self, directory: str):
        self.dir = directory
        self.path = os.path.join(directory, CATALOG)

    @staticmethod
    def create(directory: str, meta: dict) -> None:
        """Write a new catalog (the schema, ``meta``, no songs) into ``directory``."""
        conn = connect(os.path.join(directory, CATALOG), write=True)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN")
        for sql in _SCHEMA:
            conn.execute(sql)
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    def read(self) -> dict:
        """The newest committed generation: the meta values, plus ``songs`` (:class:`SongInfo` in store order)."""
        conn = connect(self.path)
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
            conn.close()
        if meta.get("format_version") not in READ_VERSIONS:
            raise IndexCorruptError(f"index {self.dir} has format_version {meta.get('format_version')}, "
                                    f"this chad reads {', '.join(map(str, READ_VERSIONS))}: rebuild it (or use "
                                    "the chad that made it)")
        if meta.get("dtype") not in STORE_DTYPES:
            raise IndexCorruptError(f"index {self.dir} stores its fingerprints as {meta.get('dtype')!r}; this chad "
                                    f"reads {', '.join(STORE_DTYPES)}: rebuild it (or use the chad that made it)")
        meta["songs"] = [SongInfo(str(r[0]), r[1], r[2], float(r[3]), int(r[4]), int(r[5])) for r in rows]
        return meta

    def generation(self) -> int:
        """The newest committed generation number."""
        conn = connect(self.path)
        try:
            return json.loads(conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
        finally:
            conn.close()

    def commit(self, st: dict, *, faiss_file: str, faiss_params: dict, new_songs: Sequence[SongInfo] = (),
               removed: Sequence[str] = (), relocated: Sequence[SongInfo] = (), store_file: str | None = None,
               store_rows: int | None = None, dead_rows: int | None = None) -> list[str]:
        """Commit the generation after ``st`` (the current one, as :meth:`read` gave it) in one transaction.

        Deletes ``removed``, inserts ``new_songs``, moves ``relocated`` to their new offsets, and points
        the meta at ``faiss_file`` (with ``faiss_params``) and at ``store_file`` (default: the current one)
        with ``store_rows``/``dead_rows`` where given. Returns ``previous_files``: the files of the current
        generation that the new one does not use (its readers may still read them).
        """
        store_file = store_file or st["store_file"]
        old_files = [f for f in (st["faiss_file"],) if f]
        if store_file != st["store_file"]:
            old_files.append(st["store_file"])
        update = {"generation": int(st["generation"]) + 1, "faiss_file": faiss_file,
                  "previous_files": [f for f in old_files if f not in (faiss_file, store_file)],
                  "faiss": faiss_params,
                  # an index moves to format 2 when it starts to need it (never back: older readers)
                  "format_version": max(int(st["format_version"]), format_version(st["dtype"], faiss_params))}
        for key, value in (("store_rows", store_rows), ("dead_rows", dead_rows)):
            if value is not None:
                update[key] = int(value)
        if store_file != st["store_file"]:
            update["store_file"] = store_file
        conn = connect(self.path, write=True)
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
            conn.executemany("UPDATE meta SET value = ? WHERE key = ?",
                             [(json.dumps(v), k) for k, v in update.items()])
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        return update["previous_files"]


def describe(directory: str, meta: dict, songs: Sequence[SongInfo]) -> dict:
    """Counts, sizes, model and configs of the generation ``meta``/``songs`` of the index at
    ``directory``, as a JSON-ready dict (:meth:`chadml.index.SongIndex.info`)."""
    files = {}
    for f in sorted(os.listdir(directory)):
        p = os.path.join(directory, f)
        if os.path.isfile(p):
            files[f] = os.path.getsize(p)
    # the generation's files: the catalog, the store (and an int8 store's scales: store-<s>.i8.scale), the
    # FAISS index (and its on-disk lists: faiss-<g>.ivfdata)
    stems = [meta["store_file"] + "."] + ([meta["faiss_file"].rsplit(".", 1)[0] + "."] if meta["faiss_file"] else [])
    live = [f for f in files if f in (meta["store_file"], CATALOG, meta["faiss_file"])
            or any(f.startswith(p) for p in stems)]
    size = sum(files.get(f, 0) for f in live) + files.get(CATALOG + "-wal", 0)
    hours = sum(s.duration for s in songs) / 3600.0
    return {
        "path": directory, "format_version": int(meta["format_version"]), "generation": int(meta["generation"]),
        "songs": len(songs), "fingerprints": int(sum(s.n_fingerprints for s in songs)), "hours": hours,
        "model_id": meta["model_id"], "model_path": meta.get("model_path") or None,
        "feature_config": dict(meta["feature_config"]), "window_config": dict(meta["window_config"]),
        "dim": int(meta["dim"]), "dtype": meta["dtype"], "kind": meta["kind"], "faiss": dict(meta["faiss"]),
        "store_rows": int(meta["store_rows"]), "dead_rows": int(meta["dead_rows"]),
        "size_bytes": size, "bytes_per_hour": (size / hours) if hours > 0 else None, "files": files,
    }
