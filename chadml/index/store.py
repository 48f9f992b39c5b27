"""The fingerprint store of a song index: one raw file of rows, memory-mapped.

``store-<s>.f32`` (or ``.f16``) holds ``store_rows`` rows of ``dim`` float32 (float16) values, the songs
one after the other (a song's rows start at its catalog ``offset``). Rows are only appended, past the
committed end (the catalog's ``store_rows``), and fsync'ed before the catalog points at them; bytes past
the committed end are a crashed writer's and are cut off by the next one (:func:`truncate`). Rows of
removed songs stay as dead space until :func:`write_compacted` copies the live ones into ``store-<s+1>``.

:class:`StoreView` is the reader's view of one generation: the memory map and where each song's rows are.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator, Sequence

import numpy as np

from .catalog import IndexCorruptError, SongInfo

__all__ = ["numpy_dtype", "store_file_name", "next_store_file", "check_fps", "open_rows", "truncate",
           "append_songs", "write_compacted", "live_rows", "sample_rows", "StoreView"]


def numpy_dtype(dtype: str) -> type:
    """The numpy type of a store dtype ("float32" or "float16")."""
    return np.float16 if dtype == "float16" else np.float32


def store_file_name(n: int, dtype: str) -> str:
    """``store-<n>.f32`` or ``store-<n>.f16``.

    >>> store_file_name(0, "float16")
    'store-0.f16'
    """
    return f"store-{n}." + ("f16" if dtype == "float16" else "f32")


def next_store_file(current: str, dtype: str) -> str:
    """The file name of the store that replaces ``current`` at compaction.

    >>> next_store_file("store-3.f32", "float32")
    'store-4.f32'
    """
    return store_file_name(int(current.split("-")[1].split(".")[0]) + 1, dtype)


def check_fps(fps, dim: int, name: str = "fps") -> np.ndarray:
    """``fps`` as a C-contiguous float32 ``(n >= 1, dim)`` array of finite values, or TypeError/ValueError."""
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


def open_rows(path: str, dtype: str, rows: int, dim: int) -> np.ndarray:
    """The first ``rows`` rows of the store file, memory-mapped read-only (an empty array for 0 rows).

    FileNotFoundError when the file is missing; :class:`IndexCorruptError` when it is shorter than
    ``rows`` rows.
    """
    t = numpy_dtype(dtype)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    size = os.path.getsize(path)
    need = rows * dim * np.dtype(t).itemsize
    if size < need:
        raise IndexCorruptError(f"the fingerprint store {path} holds {size} bytes, the catalog "
                                f"expects at least {need}: the index is corrupt")
    return np.memmap(path, dtype=t, mode="r", shape=(rows, dim)) if rows else np.zeros((0, dim), dtype=t)


def truncate(path: str, rows: int, dim: int, dtype: str) -> None:
    """Cut the store file to its committed ``rows`` (drops the bytes a crashed writer appended)."""
    with open(path, "r+b") as f:
        f.truncate(rows * dim * np.dtype(numpy_dtype(dtype)).itemsize)


def _sync(f) -> None:
    f.flush()
    os.fsync(f.fileno())


def append_songs(path: str, dtype: str, items: Iterable[tuple[str, np.ndarray, dict]],
                 first_row: int) -> tuple[list[SongInfo], int]:
    """Append the rows of ``items`` (``(song_id, float32 fps, {"title", "path", "duration"})``, consumed
    lazily) to the store file, the first one at row ``first_row``, and fsync them.

    Returns the songs (their offsets in the store) and the store's row count after them. The catalog
    does not see the rows until it is committed.
    """
    t = numpy_dtype(dtype)
    new: list[SongInfo] = []
    rows = first_row
    with open(path, "ab") as f:
        for song_id, a, meta in items:
            f.write(np.ascontiguousarray(a, dtype=t).tobytes())
            new.append(SongInfo(song_id, meta["title"], meta["path"], meta["duration"], len(a), rows))
            rows += len(a)
        if new:
            _sync(f)
    return new, rows


def write_compacted(store: np.ndarray, live: Sequence[SongInfo], path: str,
                    dtype: str) -> tuple[list[SongInfo], int]:
    """Copy the rows of the ``live`` songs of ``store`` into a new store file ``path`` (fsync'ed).

    Returns the songs at their new offsets and the new file's row count.
    """
    t = numpy_dtype(dtype)
    moved, rows = [], 0
    with open(path, "wb") as f:
        for s in live:
            f.write(np.ascontiguousarray(store[s.offset:s.offset + s.n_fingerprints], dtype=t).tobytes())
            moved.append(SongInfo(s.song_id, s.title, s.path, s.duration, s.n_fingerprints, rows))
            rows += s.n_fingerprints
        _sync(f)
    return moved, rows


def live_rows(store: np.ndarray, songs: Sequence[SongInfo],
              chunk: int = 1 << 18) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(row ids int64, float32 rows)`` of the rows of ``songs``, in chunks of at most ``chunk`` rows."""
    for s in songs:
        for a in range(0, s.n_fingerprints, chunk):
            b = min(s.n_fingerprints, a + chunk)
            yield (np.arange(s.offset + a, s.offset + b, dtype=np.int64),
                   np.asarray(store[s.offset + a:s.offset + b], dtype=np.float32))


def sample_rows(store: np.ndarray, songs: Sequence[SongInfo], n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows of ``songs`` drawn without replacement (all of them if fewer), as float32, in store order."""
    total = sum(s.n_fingerprints for s in songs)
    rng = np.random.default_rng(seed)
    allrows = np.concatenate([np.arange(s.offset, s.offset + s.n_fingerprints) for s in songs])
    pick = np.sort(rng.choice(total, size=min(n, total), replace=False))
    return np.asarray(store[allrows[pick]], dtype=np.float32)


class StoreView:
    """One generation's view of the store: its rows (memory-mapped) and where each song's rows are.

    ``songs`` are the catalog's songs in store order; positions below are indices into them.
    """

    def __init__(self, store: np.ndarray, dtype: str, songs: Sequence[SongInfo]):
        self.store, self.dtype, self.dim = store, dtype, int(store.shape[1])
        self.starts = np.array([s.offset for s in songs], dtype=np.int64)
        self.lengths = np.array([s.n_fingerprints for s in songs], dtype=np.int64)

    def block(self, s: SongInfo) -> np.ndarray:
        """The rows of song ``s`` as float32 (a view of the memory map when the store is float32)."""
        block = self.store[s.offset:s.offset + s.n_fingerprints]
        return np.asarray(block) if self.dtype == "float32" else np.asarray(block, dtype=np.float32)

    def rows_to_positions(self, rows: np.ndarray) -> np.ndarray:
        """Positions of the songs holding store ``rows`` (-1 for -1 or rows of no song)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.starts) == 0:
            return np.full(rows.shape, -1, np.int64)
        p = np.searchsorted(self.starts, rows, side="right") - 1
        pc = np.clip(p, 0, len(self.starts) - 1)
        ok = (rows >= 0) & (p >= 0) & (rows < self.starts[pc] + self.lengths[pc])
        return np.where(ok, pc, -1)

    def packed(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(data float32 (N, dim), offsets int64[n+1])`` of the songs at positions ``pos``, in that order.

        Consecutive songs of a float32 store are the memory map itself; otherwise the rows are gathered.
        """
        starts, lens = self.starts[pos], self.lengths[pos]
        offsets = np.zeros(len(pos) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        if len(pos) == 0:
            return np.zeros((0, self.dim), np.float32), offsets
        contiguous = bool(np.all(starts[1:] == starts[:-1] + lens[:-1]))
        if contiguous and self.dtype == "float32":
            return self.store[starts[0]:starts[0] + offsets[-1]], offsets
        data = np.empty((int(offsets[-1]), self.dim), np.float32)
        for i, (s, n) in enumerate(zip(starts, lens)):
            data[offsets[i]:offsets[i + 1]] = self.store[s:s + n]
        return data, offsets

    def iter_packed(self, positions: np.ndarray, *, max_rows: int = 1 << 20, bridge_rows: int = 4096,
                    min_run_rows: int = 32768) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Chunks ``(data, offsets, which)`` covering the songs at ``positions`` (see
        :meth:`chadml.index.SongIndex.iter_packed`)."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0:
            return
        order = np.argsort(self.starts[positions], kind="stable")
        sp = positions[order]
        starts, lens = self.starts[sp], self.lengths[sp]
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
                data, offsets = self.packed(sp[sel])
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
                yield self.store[base:off[-1]], off - base, np.asarray(which, dtype=np.int64)
            i = j
        yield from flush_gather()
