"""The fingerprint store of a song index: one raw file of rows, memory-mapped.

``store-<s>.f32`` (``.f16``, ``.i8``) holds ``store_rows`` rows of ``dim`` float32 (float16, int8) values,
the songs one after the other (a song's rows start at its catalog ``offset``). An int8 store has a
companion ``store-<s>.i8.scale``: one float32 per row, the row being ``int8 values * scale`` (symmetric
quantisation per row: ``scale = max|x| / 127``; a unit-norm 128-d row comes back within about 1e-3 per
value). Rows are only appended, past the committed end (the catalog's ``store_rows``), and fsync'ed
before the catalog points at them; bytes past the committed end are a crashed writer's and are cut off by
the next one (:func:`truncate`). Rows of removed songs stay as dead space until :func:`write_compacted`
copies the live ones into ``store-<s+1>``.

:class:`Rows` is the memory map of a store (any format: it hands out float32 rows, and the raw rows and
scales to a kernel that reads them as they are); :class:`StoreView` is the reader's view of one
generation: the rows and where each song's rows are. Nothing here reads every row of a store unless asked
for every row: opening a store maps it, a query reads the pages of its candidates' rows only (and a
large store gives them back after gathering them: :attr:`Rows.release_above`).
"""
from __future__ import annotations

import mmap
import os
from typing import Iterable, Iterator, Sequence

import numpy as np

from .catalog import IndexCorruptError, SongInfo

__all__ = ["DTYPES", "DTYPE_NAMES", "store_dtype", "numpy_dtype", "store_file_name", "scale_file_name",
           "store_files", "next_store_file", "check_fps", "quantize_int8", "create_store", "open_rows", "truncate",
           "append_songs", "write_compacted", "live_rows", "sample_rows", "Rows", "StoreView"]

#: the store formats: catalog ``dtype`` -> file extension
DTYPES = {"float32": "f32", "float16": "f16", "int8": "i8"}
#: the short names (``chad index build --store``) of the formats
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def store_dtype(name: str) -> str:
    """The catalog ``dtype`` of a store format given by its name or short name.

    >>> store_dtype("i8"), store_dtype("float16")
    ('int8', 'float16')
    """
    if name in DTYPES:
        return name
    if name in DTYPE_NAMES:
        return DTYPE_NAMES[name]
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (or {', '.join(DTYPE_NAMES)}), got {name!r}")


def numpy_dtype(dtype: str) -> type:
    """The numpy type of a store dtype ("float32", "float16" or "int8")."""
    return {"float16": np.float16, "int8": np.int8}.get(dtype, np.float32)


def store_file_name(n: int, dtype: str) -> str:
    """``store-<n>.f32``, ``.f16`` or ``.i8``.

    >>> store_file_name(0, "float16"), store_file_name(2, "int8")
    ('store-0.f16', 'store-2.i8')
    """
    return f"store-{n}.{DTYPES[dtype]}"


def scale_file_name(store_file: str) -> str | None:
    """The companion file of the per-row scales of an int8 store file (None for the other formats).

    >>> scale_file_name("store-3.i8"), scale_file_name("store-3.f32")
    ('store-3.i8.scale', None)
    """
    return store_file + ".scale" if store_file.endswith(".i8") else None


def store_files(store_file: str) -> list[str]:
    """The files of one store: the rows file and, for int8, its scales.

    >>> store_files("store-0.i8")
    ['store-0.i8', 'store-0.i8.scale']
    """
    scale = scale_file_name(store_file)
    return [store_file] + ([scale] if scale else [])


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


def quantize_int8(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(int8 values (n, dim), float32 scales (n,))`` of float rows: ``values * scale[:, None]`` is within
    ``scale / 2`` of ``a`` (``scale = max|row| / 127``; an all-zero row has scale 0).

    >>> q, s = quantize_int8(np.array([[0.5, -1.0, 0.25]], np.float32))
    >>> q.tolist(), float(s[0] * 127)
    ([[64, -127, 32]], 1.0)
    """
    a = np.asarray(a, dtype=np.float32)
    scale = (np.abs(a).max(axis=1) / np.float32(127.0)).astype(np.float32) if a.size else np.zeros(len(a), np.float32)
    inv = np.divide(np.float32(1.0), scale, out=np.zeros_like(scale), where=scale > 0)
    q = np.rint(a * inv[:, None])
    np.clip(q, -127, 127, out=q)
    return q.astype(np.int8), scale


def create_store(directory: str, store_file: str) -> None:
    """Create the empty files of a new store ``store_file`` in ``directory``."""
    for f in store_files(store_file):
        open(os.path.join(directory, f), "wb").close()


def _map(path: str, nbytes: int):
    """A read-only memory map of the first ``nbytes`` of ``path`` (None for 0 bytes)."""
    if nbytes == 0:
        return None
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), nbytes, access=mmap.ACCESS_READ)


def open_rows(path: str, dtype: str, rows: int, dim: int) -> "Rows":
    """The first ``rows`` rows of the store file (and, int8, of its scales), memory-mapped read-only.

    FileNotFoundError when a file is missing; :class:`IndexCorruptError` when one is shorter than
    ``rows`` rows. Nothing is read: pages come in as rows are used.
    """
    t = np.dtype(numpy_dtype(dtype))
    files = [(path, rows * dim * t.itemsize)]
    scale_path = scale_file_name(path)
    if dtype == "int8":
        if scale_path is None:
            raise IndexCorruptError(f"the fingerprint store {path} is not an int8 store (.i8) as the catalog says")
        files.append((scale_path, rows * 4))
    for p, need in files:
        if not os.path.exists(p):
            raise FileNotFoundError(2, "No such file", p)
        size = os.path.getsize(p)
        if size < need:
            raise IndexCorruptError(f"the fingerprint store {p} holds {size} bytes, the catalog "
                                    f"expects at least {need}: the index is corrupt")
    maps = [_map(p, need) for p, need in files]
    # a view of our own map (not np.memmap: its pages can be given back, :meth:`Rows.release`)
    data = (np.frombuffer(maps[0], dtype=t, count=rows * dim).reshape(rows, dim) if rows
            else np.zeros((0, dim), dtype=t))
    scale = None
    if dtype == "int8":
        scale = np.frombuffer(maps[1], dtype=np.float32, count=rows) if rows else np.zeros(0, np.float32)
    return Rows(data, scale, maps=[m for m in maps if m is not None])


def truncate(path: str, rows: int, dim: int, dtype: str) -> None:
    """Cut the store file (and its scales) to its committed ``rows`` (drops the bytes a crashed writer appended)."""
    with open(path, "r+b") as f:
        f.truncate(rows * dim * np.dtype(numpy_dtype(dtype)).itemsize)
    scale = scale_file_name(path)
    if dtype == "int8" and scale:
        with open(scale, "a+b") as f:
            f.truncate(rows * 4)


def _sync(f) -> None:
    f.flush()
    os.fsync(f.fileno())


def _encode(a: np.ndarray, dtype: str) -> tuple[bytes, bytes]:
    """The bytes of rows ``a`` in the store format, and of their scales (b"" but for int8)."""
    if dtype == "int8":
        q, s = quantize_int8(a)
        return q.tobytes(), s.tobytes()
    return np.ascontiguousarray(a, dtype=numpy_dtype(dtype)).tobytes(), b""


def append_songs(path: str, dtype: str, items: Iterable[tuple[str, np.ndarray, dict]],
                 first_row: int) -> tuple[list[SongInfo], int]:
    """Append the rows of ``items`` (``(song_id, float32 fps, {"title", "path", "duration"})``, consumed
    lazily) to the store file (int8: quantised, their scales to the scales file), the first one at row
    ``first_row``, and fsync them.

    Returns the songs (their offsets in the store) and the store's row count after them. The catalog
    does not see the rows until it is committed.
    """
    new: list[SongInfo] = []
    rows = first_row
    scale_path = scale_file_name(path) if dtype == "int8" else None
    with open(path, "ab") as f, open(scale_path or os.devnull, "ab") as fs:
        for song_id, a, meta in items:
            data, scales = _encode(a, dtype)
            f.write(data)
            if scale_path:
                fs.write(scales)
            new.append(SongInfo(song_id, meta["title"], meta["path"], meta["duration"], len(a), rows))
            rows += len(a)
        if new:
            _sync(f)
            if scale_path:
                _sync(fs)
    return new, rows


def write_compacted(store: "Rows", live: Sequence[SongInfo], path: str,
                    dtype: str) -> tuple[list[SongInfo], int]:
    """Copy the rows of the ``live`` songs of ``store`` into a new store file ``path`` (and its scales;
    fsync'ed). Rows of the same format are copied as they are (int8 is not quantised again).

    Returns the songs at their new offsets and the new file's row count.
    """
    store = as_rows(store)
    scale_path = scale_file_name(path) if dtype == "int8" else None
    moved, rows = [], 0
    with open(path, "wb") as f, open(scale_path or os.devnull, "wb") as fs:
        for s in live:
            a, b = s.offset, s.offset + s.n_fingerprints
            if store.dtype == dtype:
                f.write(np.ascontiguousarray(store.data[a:b]).tobytes())
                if scale_path:
                    fs.write(np.ascontiguousarray(store.scale[a:b]).tobytes())
            else:
                data, scales = _encode(store[a:b], dtype)
                f.write(data)
                if scale_path:
                    fs.write(scales)
            moved.append(SongInfo(s.song_id, s.title, s.path, s.duration, s.n_fingerprints, rows))
            rows += s.n_fingerprints
        _sync(f)
        if scale_path:
            _sync(fs)
    return moved, rows


def live_rows(store: "Rows", songs: Sequence[SongInfo], chunk: int = 1 << 18,
              stride: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(row ids int64, float32 rows)`` of the rows of ``songs`` (every ``stride``-th row of each song,
    from its first), in chunks of about ``chunk`` rows (several short songs share a chunk)."""
    store = as_rows(store)
    ids: list[np.ndarray] = []
    n = 0
    for s in songs:
        for a in range(0, s.n_fingerprints, chunk * stride):
            r = np.arange(s.offset + a, s.offset + min(s.n_fingerprints, a + chunk * stride), stride, dtype=np.int64)
            ids.append(r)
            n += len(r)
            if n >= chunk:
                yield _gathered(store, ids)
                _read(store, ids)
                ids, n = [], 0
    if n:
        yield _gathered(store, ids)
        _read(store, ids)


def _read(store: "Rows", ids: list[np.ndarray]) -> None:
    """Give back the pages of rows read once (a large store read whole, by a writer building FAISS)."""
    if store.nbytes > store.release_above:
        store.release(np.array([r[0] for r in ids]), np.array([r[-1] - r[0] + 1 for r in ids]))


def _gathered(store: "Rows", ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    r = np.concatenate(ids)
    if len(ids) == 1 and len(r) > 1 and r[-1] - r[0] == len(r) - 1:
        return r, np.ascontiguousarray(store[int(r[0]):int(r[-1]) + 1])
    return r, np.ascontiguousarray(store[r])


def sample_rows(store: "Rows", songs: Sequence[SongInfo], n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows of ``songs`` drawn without replacement (all of them if fewer), as float32, in store order
    (every row of the songs counted, none of them read but the ones drawn)."""
    lens = np.array([s.n_fingerprints for s in songs], dtype=np.int64)
    offs = np.array([s.offset for s in songs], dtype=np.int64)
    first = np.zeros(len(songs) + 1, np.int64)
    np.cumsum(lens, out=first[1:])
    total = int(first[-1])
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(total, size=min(n, total), replace=False))
    song = np.searchsorted(first, pick, side="right") - 1
    return np.ascontiguousarray(as_rows(store)[offs[song] + (pick - first[song])])


def as_rows(store) -> "Rows":
    """``store`` as :class:`Rows` (a float array of rows is wrapped)."""
    return store if isinstance(store, Rows) else Rows(np.asarray(store))


_PAGE = mmap.PAGESIZE
_AROUND = 1 << 17


class Rows:
    """The rows of a store, memory-mapped: ``data`` (N, dim) in the store's format and, for int8, ``scale``
    (N,) float32. Indexing gives float32 rows (``rows[a:b]``, ``rows[ids]``; a view of the map for a float32
    slice, a converted copy otherwise); :meth:`raw` gives the rows as they are stored.

    ``release_above``: a store of more bytes than this gives back the pages of rows gathered by
    :meth:`gather` right after copying them (the page cache keeps them; the process's resident memory
    stays the size of one query's candidates instead of growing to the whole store).
    """

    release_above = 1 << 30

    def __init__(self, data: np.ndarray, scale: np.ndarray | None = None, *, maps: Sequence = ()):
        if data.ndim != 2:
            raise ValueError(f"rows must be 2-d, got shape {data.shape}")
        self.data, self.scale, self._maps = data, scale, list(maps)
        self.dtype = {np.dtype(np.float16): "float16", np.dtype(np.int8): "int8"}.get(data.dtype, "float32")
        if self.dtype == "int8" and (scale is None or len(scale) != len(data)):
            raise ValueError("int8 rows need one float32 scale per row")
        self.shape = data.shape
        self.nbytes = int(data.nbytes + (scale.nbytes if scale is not None else 0))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key) -> np.ndarray:
        a = self.data[key]
        if self.dtype == "float32":
            return a
        out = a.astype(np.float32)
        if self.scale is not None:
            out *= self.scale[key][..., None]
        return out

    def raw(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows ``a:b`` as stored, and their scales (None but for int8): views of the memory map."""
        return self.data[a:b], (self.scale[a:b] if self.scale is not None else None)

    def gather(self, starts: np.ndarray, lengths: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The rows ``starts[i]:starts[i] + lengths[i]`` one after the other, as float32 ``(sum lengths, dim)``."""
        starts, lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
        total = int(lengths.sum())
        if out is None:
            out = np.empty((total, self.shape[1]), np.float32)
        if total == 0:
            return out
        if len(starts) <= 8 or self.dtype == "float32":
            o = 0
            for s, n in zip(starts.tolist(), lengths.tolist()):
                out[o:o + n] = self.data[s:s + n]
                if self.scale is not None:
                    out[o:o + n] *= self.scale[s:s + n, None]
                o += n
        else:       # many short songs: one fancy-indexed gather and one conversion
            ids = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(total)
            if self.scale is not None:
                np.multiply(self.data[ids], self.scale[ids, None], out=out)
            else:
                np.copyto(out, self.data[ids], casting="unsafe")
        if self.nbytes > self.release_above:
            self.release(starts, lengths)
        return out

    def release(self, starts: np.ndarray, lengths: np.ndarray) -> None:
        """Give back the pages of rows ``starts[i]:starts[i] + lengths[i]`` (they stay in the page cache)."""
        if not self._maps or not hasattr(mmap, "MADV_DONTNEED"):
            return
        specs = [(self._maps[0], self.data.strides[0])]
        if self.scale is not None and len(self._maps) > 1:
            specs.append((self._maps[1], 4))
        for m, row_bytes in specs:
            for s, n in zip(np.asarray(starts).tolist(), np.asarray(lengths).tolist()):
                # with the pages the kernel mapped around the ones read (fault-around, 64 KiB)
                a = max(0, s * row_bytes - _AROUND) // _PAGE * _PAGE
                b = min(len(m), (s + n) * row_bytes + _AROUND)
                if b > a:
                    try:
                        m.madvise(mmap.MADV_DONTNEED, a, b - a)
                    except (OSError, ValueError):
                        return


class StoreView:
    """One generation's view of the store: its rows (memory-mapped) and where each song's rows are.

    ``songs`` are the catalog's songs in store order; positions below are indices into them.
    """

    def __init__(self, store, dtype: str, songs: Sequence[SongInfo]):
        self.rows = as_rows(store)
        self.store = self.rows
        self.dtype, self.dim = dtype, int(self.rows.shape[1])
        self.starts = np.array([s.offset for s in songs], dtype=np.int64)
        self.lengths = np.array([s.n_fingerprints for s in songs], dtype=np.int64)

    def block(self, s: SongInfo) -> np.ndarray:
        """The rows of song ``s`` as float32 (a view of the memory map when the store is float32)."""
        return self.rows[s.offset:s.offset + s.n_fingerprints]

    def rows_to_positions(self, rows: np.ndarray) -> np.ndarray:
        """Positions of the songs holding store ``rows`` (-1 for -1 or rows of no song)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.starts) == 0:
            return np.full(rows.shape, -1, np.int64)
        p = np.searchsorted(self.starts, rows, side="right") - 1
        pc = np.clip(p, 0, len(self.starts) - 1)
        ok = (rows >= 0) & (p >= 0) & (rows < self.starts[pc] + self.lengths[pc])
        return np.where(ok, pc, -1)

    def ranges(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(first store row, row count)`` of the songs at positions ``pos`` (for a kernel reading the
        store in place)."""
        pos = np.asarray(pos, dtype=np.int64)
        return self.starts[pos], self.lengths[pos]

    def packed(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(data float32 (N, dim), offsets int64[n+1])`` of the songs at positions ``pos``, in that order.

        Consecutive songs of a float32 store are the memory map itself; otherwise only these songs' rows
        are gathered (and converted).
        """
        starts, lens = self.starts[pos], self.lengths[pos]
        offsets = np.zeros(len(pos) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        if len(pos) == 0:
            return np.zeros((0, self.dim), np.float32), offsets
        contiguous = bool(np.all(starts[1:] == starts[:-1] + lens[:-1]))
        if contiguous and self.dtype == "float32":
            return self.rows.data[starts[0]:starts[0] + offsets[-1]], offsets
        return self.rows.gather(starts, lens), offsets

    def iter_packed(self, positions: np.ndarray, *, max_rows: int = 1 << 20, bridge_rows: int = 4096,
                    min_run_rows: int = 32768,
                    max_gather_rows: int = 1 << 18) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Chunks ``(data, offsets, which)`` covering the songs at ``positions`` (see
        :meth:`chadml.index.SongIndex.iter_packed`); gathered chunks hold at most ``max_gather_rows`` rows
        (more where one song is longer)."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0:
            return
        order = np.argsort(self.starts[positions], kind="stable")
        sp = positions[order]
        starts, lens = self.starts[sp], self.lengths[sp]
        ends = starts + lens
        gather: list[int] = []      # indices into order (short runs) to copy
        cap = min(max_rows, max_gather_rows)

        def flush_gather():
            i = 0
            while i < len(gather):
                j, rows = i, 0
                while j < len(gather) and (rows == 0 or rows + lens[gather[j]] <= cap):
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
                yield self.rows.data[base:off[-1]], off - base, np.asarray(which, dtype=np.int64)
            i = j
        yield from flush_gather()
