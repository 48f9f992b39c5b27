"""Small shared helpers: progress bars, atomic writes, a thread-pool map, mono conversion.

Example
-------
>>> map_threads(lambda x: x * x, [1, 2, 3], threads=2)
[1, 4, 9]
>>> check_signal([[0.0, 1.0], [1.0, 0.0]], "audio").tolist()
[0.5, 0.5]
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator, Sequence

import numpy as np

__all__ = ["progress", "atomic_path", "atomic_write_bytes", "atomic_write_text", "map_threads", "check_signal",
           "set_quiet"]

QUIET = False  # set by the command line's --quiet


def progress(iterable=None, **kw):
    """tqdm, disabled when quiet or when stderr is not a terminal."""
    from tqdm.auto import tqdm
    kw.setdefault("disable", QUIET or not sys.stderr.isatty())
    kw.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kw)


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


_UMASK = _umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. The file gets the
    permissions of the ``path`` it replaces, or a new file's (0666 less the umask), not the temporary
    file's private 0600.
    """
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix or ".tmp", dir=d)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_UMASK
        with contextlib.suppress(OSError):
            os.chmod(tmp, mode)
        os.replace(tmp, path)
        with contextlib.suppress(OSError):
            dfd = os.open(d, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def set_quiet(quiet: bool) -> None:
    """Disable (or re-enable) every progress bar of the process (the CLI's ``--quiet``)."""
    global QUIET
    QUIET = bool(quiet)


def map_threads(fn, items: Sequence, threads: int | None = None) -> list:
    """``[fn(x) for x in items]`` on ``threads`` worker threads (None: one per core), in order. For work
    that releases the GIL (the ``chadsp`` kernels); one item or one thread runs inline."""
    from concurrent.futures import ThreadPoolExecutor
    workers = threads or os.cpu_count() or 1
    if workers > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))
    return [fn(x) for x in items]


def check_signal(audio, name: str = "audio") -> np.ndarray:
    """A validated float32 mono signal from an array argument (1-D, or 2-D channels-first/last: averaged); a
    one-line TypeError/ValueError naming ``name`` otherwise (see ``chadml.audio.to_mono`` for file data)."""
    if isinstance(audio, (str, bytes)) or audio is None:
        raise TypeError(f"{name} must be a numpy array or a path, got {type(audio).__name__}")
    a = np.asarray(audio)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must have a real dtype, got {a.dtype}")
    if a.ndim == 2:
        a = a.mean(axis=0 if a.shape[0] <= a.shape[1] else 1)
    elif a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (mono) or 2-D (channels), got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got NaN/inf samples")
    return a
