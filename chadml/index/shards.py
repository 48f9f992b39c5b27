"""An index split by song into shards: one :class:`~chadml.index.SongIndex` per shard, for a search fanned
out over machines (:class:`chadml.search.ShardedSearcher`, one Ray actor per shard).

A sharded index is a directory::

    INDEX/
      shards.json        {"kind": "chad-shards", "format_version": 1, "shards": ["shard-000", ...]}
      shard-000/         a song index (its own catalog, store, FAISS index, lock and generations)
      shard-001/
      ...

A song lives in shard ``crc32(song_id) % N`` (:func:`shard_of`), so that adding or removing a song
later finds its shard from its id alone. Each shard keeps every guarantee of a song index (an add or a
removal is atomic per shard); a write that touches several shards is one atomic write per shard, and a
build is made in steps that a rerun continues (:func:`build_sharded`, as
:func:`chadml.index.build_songs`). Every shard has the same model, configs, store format and FAISS kind.

Fingerprinting can run on Ray workers (:func:`fingerprint_items_ray`): each worker loads the model once
and fingerprints the songs it is given; the songs come back in order to the one process that writes.

>>> [shard_of(s, 3) for s in ("song-1", "song-2", "song-3")]
[0, 0, 2]
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zlib
from typing import Iterable, Iterator, Sequence

from ..errors import ChadError, UsageError
from ..models import load_fingerprinter
from ..separation import get_separator
from ..util import progress
from .catalog import IndexCorruptError
from .ingest import fingerprint_items, fingerprinter_id
from .song_index import SongIndex

__all__ = ["SHARDS", "shard_of", "is_sharded", "ShardedIndex", "build_sharded", "fingerprint_items_ray", "ray_connect"]

SHARDS = "shards.json"


def shard_of(song_id: str, n_shards: int) -> int:
    """The shard (0..n_shards-1) of a song: ``crc32(song_id) % n_shards``."""
    return zlib.crc32(str(song_id).encode("utf-8")) % int(n_shards)


def is_sharded(directory) -> bool:
    """Whether ``directory`` is a sharded index (it holds :data:`SHARDS`)."""
    return os.path.isfile(os.path.join(os.fspath(directory), SHARDS))


class ShardedIndex:
    """A sharded index directory (see the module docstring). :meth:`create` or :meth:`open` it."""

    def __init__(self, directory):
        self.dir = os.path.abspath(os.fspath(directory))
        path = os.path.join(self.dir, SHARDS)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"no sharded index at {self.dir} ({SHARDS} is missing)") from None
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read {path}: {exc}") from None
        if d.get("kind") != "chad-shards" or d.get("format_version") != 1 or not d.get("shards"):
            raise IndexCorruptError(f"{path} is not a chad shard list (format 1)")
        self.names: list[str] = [str(s) for s in d["shards"]]
        self.paths = [os.path.join(self.dir, s) for s in self.names]
        self._open: dict[int, SongIndex] = {}

    @classmethod
    def create(cls, directory, n_shards: int, **create_kw) -> "ShardedIndex":
        """Create an empty index of ``n_shards`` shards at ``directory`` (which must not exist or be empty);
        ``create_kw`` go to :meth:`SongIndex.create` of every shard (model, configs, ``dtype``, ``kind``,
        ``building``). Made in a temporary folder beside it and renamed into place."""
        if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
            raise ValueError(f"n_shards must be an integer >= 1, got {n_shards!r}")
        directory = os.path.abspath(os.fspath(directory))
        if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
            raise FileExistsError(f"cannot create an index at {directory}: it exists and is not an empty directory")
        parent = os.path.dirname(directory)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".", suffix=".tmp", dir=parent)
        try:
            names = [f"shard-{i:03d}" for i in range(n_shards)]
            for name in names:
                SongIndex.create(os.path.join(tmp, name), **create_kw)
            with open(os.path.join(tmp, SHARDS), "w", encoding="utf-8") as f:
                json.dump({"kind": "chad-shards", "format_version": 1, "shards": names}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            if os.path.isdir(directory):
                os.rmdir(directory)
            os.rename(tmp, directory)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return cls(directory)

    @classmethod
    def open(cls, directory) -> "ShardedIndex":
        return cls(directory)

    def __len__(self) -> int:
        return sum(len(self.shard(i)) for i in range(len(self.paths)))

    def __contains__(self, song_id: object) -> bool:
        return isinstance(song_id, str) and song_id in self.shard(shard_of(song_id, len(self.paths)))

    @property
    def n_shards(self) -> int:
        return len(self.paths)

    def shard(self, i: int) -> SongIndex:
        """Shard ``i``, opened (once; :meth:`SongIndex.refresh` moves it to its newest generation)."""
        if i not in self._open:
            self._open[i] = SongIndex.open(self.paths[i])
        return self._open[i]

    @property
    def model_id(self) -> str:
        return self.shard(0).model_id

    @property
    def model_path(self) -> str | None:
        return self.shard(0).model_path

    @property
    def dtype(self) -> str:
        return self.shard(0).dtype

    @property
    def unfinished_build(self) -> dict | None:
        """What an unfinished build was building (any shard still marked), or None."""
        marks = [self.shard(i).unfinished_build for i in range(self.n_shards)]
        return next((m for m in marks if m is not None), None)

    def check_compatible(self, *, model_id: str | None = None, config=None) -> None:
        for i in range(self.n_shards):
            self.shard(i).check_compatible(model_id=model_id, config=config)

    def refresh(self) -> bool:
        return any([self.shard(i).refresh() for i in range(self.n_shards)])

    def info(self) -> dict:
        """The first shard's description with the counts and sizes of all, and ``shards``: each one's."""
        parts = [self.shard(i).info() for i in range(self.n_shards)]
        out = dict(parts[0])
        for key in ("songs", "fingerprints", "hours", "size_bytes", "store_rows", "dead_rows"):
            out[key] = sum(p[key] for p in parts)
        out.update(path=self.dir, files={}, n_shards=self.n_shards, unfinished_build=self.unfinished_build,
                   bytes_per_hour=(out["size_bytes"] / out["hours"]) if out["hours"] > 0 else None,
                   shards=[{k: p[k] for k in ("path", "generation", "songs", "fingerprints", "size_bytes", "faiss")}
                           for p in parts])
        return out

    def add_fingerprint_items(self, items: Iterable[tuple[str, object, dict | None]], *, on_exists: str = "error",
                              step_songs: int = 256) -> list[str]:
        """Add songs' fingerprints, each to its shard: every ``step_songs`` songs, one atomic add per shard
        of the songs gathered for it (a crash keeps the steps committed). Returns the ids added."""
        added: list[str] = []
        buf: list[list] = [[] for _ in self.paths]
        n = 0

        def flush():
            for i, b in enumerate(buf):
                if b:
                    added.extend(self.shard(i).add_fingerprint_items(b, on_exists=on_exists, progress_bar=False))
                    b.clear()

        for item in items:
            buf[shard_of(item[0], self.n_shards)].append(item)
            n += 1
            if n % step_songs == 0:
                flush()
        flush()
        return added

    def remove(self, song_ids: Iterable[str], *, missing: str = "error", compact: bool | None = None) -> int:
        """Remove songs from their shards (one atomic removal per shard touched); returns how many."""
        ids = list(dict.fromkeys([song_ids] if isinstance(song_ids, str) else song_ids))
        if missing == "error":
            unknown = [s for s in ids if s not in self]
            if unknown:
                raise KeyError(f"not in index {self.dir}: {', '.join(map(repr, unknown[:10]))}")
        by: dict[int, list[str]] = {}
        for s in ids:
            by.setdefault(shard_of(s, self.n_shards), []).append(s)
        return sum(self.shard(i).remove(v, missing="ignore", compact=compact) for i, v in by.items())

    def finish(self) -> None:
        """End a build: each shard's FAISS index as one add of its songs would make it, the marks removed."""
        for i in range(self.n_shards):
            self.shard(i).rebuild_ann()
            self.shard(i).finish_build()


def fingerprint_items_ray(items: Sequence, model: str, *, separator=None, on_error: str = "raise",
                          device: str | None = None, address: str | None = "auto",
                          workers: int | None = None) -> Iterator[tuple[str, object, dict]]:
    """:func:`chadml.index.ingest.fingerprint_items` on Ray workers: ``(song_id, fps, meta)`` of each item,
    in the order of ``items``. Each of ``workers`` actors (default: the cluster's CPUs, at most the
    songs) loads the checkpoint ``model`` once; paths in ``items`` must be readable on the workers.
    ``address``: the Ray cluster ("auto": the running one, or a local one; None: start a local one)."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        raise ChadError("fingerprinting on Ray needs Ray: pip install 'chad[distributed]' (or ray>=2.9)") from exc
    items = [tuple(i) for i in items]
    if not items:
        return
    started = False
    if not ray.is_initialized():
        ray_connect(address)
        started = True
    try:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1)(_FingerprintWorker)
        pool = ActorPool([actor.remote(str(model), device, getattr(separator, "name", separator), on_error)
                          for _ in range(min(n, len(items)))])
        for out in pool.map(lambda a, item: a.run.remote(item), items):
            yield from out
    finally:
        if started:
            ray.shutdown()


def ray_connect(address: str | None) -> None:
    """Connect this process to the Ray cluster at ``address`` ("auto": a running one, else a new local one;
    None: a new local one); a cluster that cannot be reached is a :class:`chadml.errors.UsageError`."""
    import ray
    if address == "auto":
        try:
            ray.init(address="auto", include_dashboard=False, log_to_driver=False)
            return
        except (ConnectionError, RuntimeError):
            address = None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {exc}") from None


class _FingerprintWorker:
    """A Ray actor's state: the model, loaded once."""

    def __init__(self, model: str, device, separator, on_error: str):
        self.fp = load_fingerprinter(model, device=device)
        self.separator = get_separator(separator)
        self.on_error = on_error

    def run(self, item) -> list:
        return list(fingerprint_items([item], self.fp, self.separator, on_error=self.on_error))


def build_sharded(index: ShardedIndex, items: Sequence, fingerprinter=None, *, model: str | None = None,
                  separator=None, on_error: str = "raise", progress_bar: bool = True,
                  ray_address: str | None = None, step_songs: int = 256, device: str | None = None) -> list[str]:
    """Fingerprint and add the songs of ``items`` that ``index`` does not hold yet, each to its shard, in
    steps of ``step_songs`` songs (a rerun continues a killed build); then finish the build
    (:meth:`ShardedIndex.finish`). Fingerprinting runs here with ``fingerprinter``, or on Ray workers
    (``ray_address`` given: the checkpoint ``model`` is loaded by each worker). Returns the ids added."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if fingerprinter is not None:
        index.check_compatible(model_id=fingerprinter_id(fingerprinter), config=fingerprinter)
    items = [tuple(i) for i in items]
    todo = [i for i in items if i[0] not in index]
    bar = progress(total=len(items), initial=len(items) - len(todo), desc="indexing songs", unit="song",
                   disable=not progress_bar or None)
    if ray_address is not None:
        if not model:
            raise ValueError("fingerprinting on Ray needs the model checkpoint (model=)")
        fps = fingerprint_items_ray(todo, model, separator=separator, on_error=on_error, device=device,
                                    address=ray_address)
    else:
        if fingerprinter is None:
            raise ValueError("build_sharded needs a fingerprinter (or ray_address and model)")
        fps = fingerprint_items(todo, fingerprinter, get_separator(separator), on_error=on_error)

    def counted():
        t0 = time.monotonic()
        for item in fps:
            bar.update(1)
            yield item
        bar.set_postfix_str(f"{time.monotonic() - t0:.0f} s")

    try:
        added = index.add_fingerprint_items(counted(), on_exists="skip", step_songs=step_songs)
    finally:
        bar.close()
    index.finish()
    return added
