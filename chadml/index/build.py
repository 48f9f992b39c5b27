"""Building an index from many songs in steps, each one an atomic add: a build killed midway keeps the
songs of the steps it committed, and running it again adds the rest (``chad index build`` on the same
``--out``).

A build's index is created with ``building=`` (:meth:`chadml.index.SongIndex.create`): the file
``building.json`` marks it unfinished until :func:`build_songs` has added every song (readers can tell a
partial index from a finished one: :attr:`~chadml.index.SongIndex.unfinished_build`).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Sequence

from ..errors import ChadError
from ..separation import get_separator
from ..util import progress
from .ingest import fingerprint_items, fingerprinter_id
from .song_index import BUILDING, SongIndex

__all__ = ["build_songs", "STEP_SONGS", "STEP_SECONDS"]

#: a step of a build commits after this many songs, or after this many seconds, whichever comes first
STEP_SONGS = 500
STEP_SECONDS = 120.0


def build_songs(index: SongIndex, items: Sequence, fingerprinter, *, separator=None, on_error: str = "raise",
                progress_bar: bool = True, step_songs: int | None = None,
                step_seconds: float | None = None) -> list[str]:
    """Fingerprint and add the songs of ``items`` that ``index`` does not hold yet, committing a step
    (an atomic add) every ``step_songs`` songs or ``step_seconds`` seconds (default :data:`STEP_SONGS`,
    :data:`STEP_SECONDS`); then rebuild the FAISS index where a build in one add would have made another
    one (:meth:`~chadml.index.SongIndex.rebuild_ann`) and mark the build finished
    (:meth:`~chadml.index.SongIndex.finish_build`). Returns the ids added.

    ``items``: ``(song_id, path or audio[, title])`` as :meth:`~chadml.index.SongIndex.add_songs` takes
    them; ``on_error``: "raise" (a song that cannot be read stops the build: the songs before it are
    committed, and its error is raised) or "skip". Killed or interrupted, the index keeps the committed
    steps and stays marked unfinished: calling this again with the same items continues where it stopped.
    The songs end up in the same store order, and the index searches the same, as with one
    :meth:`add_songs` of them all. One build at a time: a second one on the same index while the first
    runs is a :class:`chadml.errors.ChadError`.
    """
    step_songs = STEP_SONGS if step_songs is None else step_songs
    step_seconds = STEP_SECONDS if step_seconds is None else step_seconds
    if step_songs < 1 or not step_seconds > 0:
        raise ValueError(f"step_songs must be >= 1 and step_seconds > 0, got {step_songs}, {step_seconds}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    index.check_compatible(model_id=fingerprinter_id(fingerprinter), config=fingerprinter)
    with _one_build(index):
        return _build(index, [tuple(i) for i in items], fingerprinter, get_separator(separator), on_error,
                      progress_bar, step_songs, step_seconds)


@contextlib.contextmanager
def _one_build(index: SongIndex):
    """Hold the build's mark (:data:`BUILDING`, made here for an index that has none) locked while it runs."""
    f = open(os.path.join(index.dir, BUILDING), "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ChadError(f"another build is adding songs to {index.dir} right now: let it finish (or stop it) "
                            "and run this one again") from None
        yield
    finally:
        f.close()


def _build(index, items, fingerprinter, separator, on_error, progress_bar, step_songs, step_seconds) -> list[str]:
    todo = [i for i in items if i[0] not in index]
    bar = progress(total=len(items), initial=len(items) - len(todo), desc="indexing songs", unit="song",
                   disable=not progress_bar or None)
    fps = iter(fingerprint_items(_counted(todo, bar), fingerprinter, separator, on_error=on_error))
    added: list[str] = []
    done, error = False, None

    def step():
        nonlocal done, error
        t0, n = time.monotonic(), 0
        while True:
            try:
                item = next(fps)
            except StopIteration:
                done = True
                return
            except Exception as exc:  # noqa: BLE001 - a song that stops the build: the songs before it are committed
                done, error = True, exc
                return
            yield item
            n += 1
            if n >= step_songs or time.monotonic() - t0 >= step_seconds:
                return

    try:
        while not done:
            added += index.add_fingerprint_items(step(), on_exists="skip", progress_bar=False)
    finally:
        bar.close()
    if error is not None:
        raise error
    index.rebuild_ann()
    index.finish_build()
    return added


def _counted(items, bar):
    """``items``, advancing ``bar`` as each one is taken (when the one before it is done)."""
    for i, item in enumerate(items):
        if i:
            bar.update(1)
        yield item
    if items:
        bar.update(1)
