"""What goes into a song index: song sources (a folder of audio files or a song table), the
fingerprinting of their audio (read, separated, fingerprinted), and the checks of the items added.

>>> find_audio_files("/nonexistent/folder")
[]
"""
from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np

from .. import audio
from ..config import SAMPLE_RATE
from ..data import SongTable
from ..errors import ChadError, UsageError
from ..features.voicing import VoicingConfig, trim_to_voiced
from ..models import model_id
from ..models.threads import available_cpus
from ..util import check_signal
from .store import check_fps

__all__ = ["AUDIO_EXTENSIONS", "find_audio_files", "song_items", "fingerprinter_id", "fingerprint_items",
           "checked_items", "SONG_VOICING", "SONG_ERRORS", "voiced_song"]

log = logging.getLogger(__name__)

#: the extensions of the audio files a folder's songs or queries are taken from: the formats soundfile
#: (libsndfile >= 1.1) reads; not .m4a/AAC, which it cannot read (tests/test_cli_edges.py reads each one)
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".au")


def find_audio_files(directory: str | os.PathLike) -> list[str]:
    """Audio files under ``directory`` (recursive, sorted); hidden files and folders (a leading dot, such
    as macOS's ``._x.flac`` AppleDouble files) and ``__MACOSX`` folders are not audio."""
    out = []
    for root, dirs, files in os.walk(os.fspath(directory)):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__MACOSX"]
        out += [os.path.join(root, f) for f in files
                if not f.startswith(".") and f.lower().endswith(AUDIO_EXTENSIONS)]
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


def fingerprinter_id(fingerprinter) -> str:
    """The id of an in-memory fingerprinter's model: the same hash as :func:`chadml.models.checkpoint_id`.

    sha256 over the encoder/feature/window configs (JSON, sorted keys) and the weights, first 16 hex
    digits; a fingerprinter with a ``model_id`` attribute gives that instead.
    """
    mid = getattr(fingerprinter, "model_id", None)
    if mid:
        return str(mid)
    return model_id(fingerprinter.model.config(), fingerprinter.feature_config.to_dict(),
                    fingerprinter.window_config.to_dict(), fingerprinter.model.state_dict())


#: how songs are trimmed at ingest (:mod:`chadml.features.voicing`): silence and noise before and after
#: the voice cut off (0.25 s kept; pauses inside kept whole, they are the song's), and a song with less than
#: 3 s of voiced audio (one M_short window) refused: no query could find it, and its fingerprints of
#: silence would answer noise
SONG_VOICING = VoicingConfig(min_voiced_s=3.0)


def voiced_song(y: np.ndarray, sr: int, song_id: str, where: str = "",
                voicing: VoicingConfig | None = SONG_VOICING) -> tuple[np.ndarray, float]:
    """``(the song's voiced part, where it starts in seconds)``; a silent song, or one with less than
    ``voicing.min_voiced_s`` of voiced audio, is a :class:`chadml.errors.UsageError` naming it.
    ``voicing`` None: the song as it is, from 0 s.

    >>> voiced_song(np.zeros(16000, np.float32), 16000, "s1")
    Traceback (most recent call last):
    ...
    chadml.errors.UsageError: song 's1' is silent: not indexed (leave such songs out with --skip-bad / on_error='skip')
    """
    if voicing is None:
        return y, 0.0
    name = f"song {song_id!r}" + (f" ({where})" if where else "")
    hint = "not indexed (leave such songs out with --skip-bad / on_error='skip')"
    kept, part = trim_to_voiced(y, sr, voicing)
    if part.silent or not part.voiced:
        raise UsageError(f"{name} is {'silent' if part.silent else 'not voiced (no sung or hummed pitch)'}: {hint}")
    if not part.enough:
        raise UsageError(f"{name} has only {part.voiced_s:.2f} s of voiced audio (at least {part.min_voiced_s:g} s "
                         f"are needed for a query to find it): {hint}")
    if part.trimmed():
        log.debug("%s trimmed to its voiced part: %.2f s from %.2f s", name, len(kept) / sr, part.start_s)
    return kept, part.start_s


def _prepare(item, separator, sr: int, voicing):
    """The work of one song before its fingerprinter: read, separate, trim. Returns ``(song_id, (the voiced
    audio, its rate), meta)``; raises what the song's problem raises. (The features are computed after,
    in the calling thread: torch's GEMMs round differently in other threads, and an index's fingerprints
    must not depend on how its songs were scheduled.)"""
    item = tuple(item)
    if len(item) not in (2, 3):
        raise ValueError(f"an item must be (song_id, audio or path, title), got {len(item)} fields")
    song_id, src = item[0], item[1]
    title = item[2] if len(item) == 3 and item[2] else None
    path = ""
    if isinstance(src, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(src))
        y, y_sr = audio.load(path, sr=SAMPLE_RATE), SAMPLE_RATE
        title = title or os.path.splitext(os.path.basename(path))[0]
    else:
        y, y_sr = check_signal(src, "audio"), sr
    if len(y) == 0:
        raise ValueError(f"song {song_id!r} has no audio")
    y = separator.separate(y, y_sr)
    kept, start = voiced_song(y, y_sr, song_id, path, voicing)
    return song_id, (kept, y_sr), {"title": title or song_id, "path": path, "duration": len(y) / y_sr,
                                   "start": start}


#: the errors a song may raise that ``on_error="skip"`` leaves it out for
SONG_ERRORS = (ChadError, ValueError, FileNotFoundError, RuntimeError)


def fingerprint_items(items: Iterable, fingerprinter, separator, *, sr: int = SAMPLE_RATE,
                      on_error: str = "raise", voicing: VoicingConfig | None = SONG_VOICING,
                      workers: int | None = None) -> Iterator[tuple[str, np.ndarray, dict]]:
    """``(song_id, fps, {"title", "path", "duration", "start"})`` of each ``(song_id, audio or path[, title])``.

    A path is read with :func:`chadml.audio.load` (16 kHz mono; the title defaults to its stem); an
    array is mono audio at ``sr``. Each song goes through ``separator`` (a
    :class:`chadml.separation.Separator`), is trimmed to its voiced part (:func:`voiced_song` with
    ``voicing``; ``start``: where that part begins, in seconds) and then goes through
    ``fingerprinter.from_audio``. ``on_error``: "raise", or "skip" (a song that cannot be
    read or fingerprinted, or is silent or too little voiced, is left out with a warning).

    ``workers``: threads that read, separate and trim the next songs (a few ahead at most) while this one
    is fingerprinted (those steps and the encoder release the GIL); None: the CPUs this process may use
    (:func:`chadml.models.threads.available_cpus`), 0 or 1: one song after the other. Songs come out in
    their order whatever ``workers`` is, with the same fingerprints.
    """
    workers = available_cpus() if workers is None else int(workers)
    prep = lambda item: _prepare(item, separator, sr, voicing)    # noqa: E731
    if workers <= 1:
        results = (_attempt(prep, item) for item in items)
        yield from _encoded(results, fingerprinter, on_error)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="chad-ingest") as pool:
        ahead: deque = deque()
        it = iter(items)

        def fill():
            while len(ahead) < 2 * workers:
                try:
                    item = next(it)
                except StopIteration:
                    return
                ahead.append((item, pool.submit(_attempt, prep, item)))

        def results():
            fill()
            while ahead:
                _, fut = ahead.popleft()
                fill()
                yield fut.result()

        try:
            yield from _encoded(results(), fingerprinter, on_error)
        finally:
            for _, fut in ahead:
                fut.cancel()


def _attempt(prep, item):
    """``prep(item)``, or ``(song_id, the exception)`` where the song raised one of :data:`SONG_ERRORS`."""
    try:
        return prep(item)
    except SONG_ERRORS as exc:
        sid = tuple(item)[0] if isinstance(item, (tuple, list)) and len(item) else None
        return sid, exc, None


def _encoded(results, fingerprinter, on_error):
    for song_id, voiced, meta in results:
        try:
            if isinstance(voiced, BaseException):
                raise voiced
            fps, _ = fingerprinter.from_audio(*voiced)
        except SONG_ERRORS as exc:
            if on_error == "raise":
                raise
            log.warning("skipping song %r: %s", song_id, exc)
            continue
        yield song_id, fps, meta


def checked_items(items: Iterable, *, dim: int, window_config: dict, existing: set[str], on_exists: str,
                  where: str) -> Iterator[tuple[str, np.ndarray, dict]]:
    """The items of an add, checked: ``(song_id, float32 fps (n, dim), {"title", "path", "duration", "start"})``.

    ``items``: ``(song_id, fps, meta)`` (meta optional, or None). A song id must be a non-empty str
    given once; one in ``existing`` is an error, skipped or passed on (replaced) by ``on_exists``
    ("error", "skip", "replace"). The duration defaults to the span of the windows. ``where``: the
    index, for the messages.
    """
    seen: set[str] = set()
    for item in items:
        song_id, fps, meta = (tuple(item) + (None,))[:3]
        if not isinstance(song_id, str) or not song_id:
            raise TypeError(f"song_id must be a non-empty str, got {song_id!r}")
        if song_id in seen:
            raise ValueError(f"song_id {song_id!r} is given twice in one add")
        seen.add(song_id)
        if song_id in existing:
            if on_exists == "error":
                raise ValueError(f"song {song_id!r} is already in index {where} "
                                 "(use on_exists='skip' or 'replace', or remove it first)")
            if on_exists == "skip":
                continue
        a = check_fps(fps, dim, f"fingerprints of {song_id!r}")
        meta = dict(meta or {})
        dur = meta.get("duration")
        if dur is None:
            dur = (len(a) - 1) * float(window_config["step_s"]) + float(window_config.get("window_s",
                                                                                        window_config["step_s"]))
        start = float(meta.get("start") or 0.0)
        if not (np.isfinite(start) and start >= 0):
            raise ValueError(f"the start of {song_id!r} must be a number of seconds >= 0, got {meta.get('start')!r}")
        yield song_id, a, {"title": str(meta.get("title") or song_id), "path": str(meta.get("path") or ""),
                           "duration": float(dur), "start": start}
