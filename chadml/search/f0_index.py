"""The F0 index: the songs' pitch contours (:func:`chadml.search.contour.f0_contour`) packed in one file.

:class:`F0Index` serves :class:`chadml.search.F0DtwSearcher` and the ``dtw-f0`` re-ranker of
:class:`chadml.search.Searcher`; ``chad f0-index build`` writes one.

Example
-------
>>> from chadml.search import F0Index
>>> idx = F0Index.build("songs.f0", [("a", "a.flac"), ("b", "b.flac")])     # doctest: +SKIP
>>> len(F0Index.open("songs.f0"))                                            # doctest: +SKIP
2
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from typing import Iterable, Sequence

import numpy as np

from .. import __version__
from ..audio import load
from ..config import SAMPLE_RATE
from ..errors import ChadError
from ..separation import get_separator
from ..util import atomic_path, atomic_write_text, progress
from .contour import F0Config, f0_contour

log = logging.getLogger(__name__)

__all__ = ["F0Index", "F0IndexError", "F0_FORMAT_VERSION", "F0_CATALOG"]

F0_FORMAT_VERSION = 1
F0_CATALOG = "f0_catalog.json"


class F0IndexError(ChadError):
    """A missing, corrupt or foreign F0 index."""


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class F0Index:
    """The songs' pitch contours, for :class:`chadml.search.F0DtwSearcher` and the ``dtw-f0`` re-ranker.

    A directory::

        DIR/
          f0_catalog.json       format_version, the F0Config (CREPE model and parameters), the songs
                                (id, title, path, offset, frames, duration), the data file and its sha256
          f0-<hash>.npz         pitch (N,) float32 and time (N,) float32 of every song, packed;
                                offsets (n + 1,) int64

    Written atomically: the data file is new each time and the catalog (renamed into place last) is the
    commit point; files the catalog does not name are removed after the commit.

    Example
    -------
    >>> idx = F0Index.build("songs.f0", [("a", "a.flac", "Song A")], F0Config(crepe_model="tiny"))  # doctest: +SKIP
    >>> F0Index.open("songs.f0").contour("a").shape                                              # doctest: +SKIP
    """

    def __init__(self, directory: str, catalog: dict, pitch: np.ndarray, time_s: np.ndarray, offsets: np.ndarray):
        self.dir = directory
        self.catalog = catalog
        self.config = F0Config.from_dict(catalog["config"])
        self.pitch, self.time_s, self.offsets = pitch, time_s, offsets
        self.song_ids = [s["song_id"] for s in catalog["songs"]]
        self.titles = [s.get("title") or s["song_id"] for s in catalog["songs"]]
        self._pos = {sid: i for i, sid in enumerate(self.song_ids)}

    # ---- reading -------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | os.PathLike) -> "F0Index":
        directory = os.fspath(directory)
        cat_path = os.path.join(directory, F0_CATALOG)
        if not os.path.isfile(cat_path):
            raise FileNotFoundError(f"no F0 index at {directory} (no {F0_CATALOG}); build one with "
                                    "`chad f0-index build --songs SONGS --out DIR` or F0Index.build(...)")
        try:
            with open(cat_path, encoding="utf-8") as f:
                cat = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise F0IndexError(f"{cat_path} is not readable JSON: {exc}") from exc
        if cat.get("kind") != "chad-f0-index":
            raise F0IndexError(f"{cat_path} is not a chad F0 index catalog")
        if cat.get("format_version") != F0_FORMAT_VERSION:
            raise F0IndexError(f"{cat_path}: F0 index format_version {cat.get('format_version')!r}, this chad "
                               f"reads {F0_FORMAT_VERSION}: rebuild it")
        data_path = os.path.join(directory, cat["data_file"])
        if not os.path.isfile(data_path):
            raise F0IndexError(f"F0 index {directory}: its data file {cat['data_file']} is missing")
        if _sha256(data_path) != cat["data_sha256"]:
            raise F0IndexError(f"F0 index {directory}: {cat['data_file']} does not match its checksum (corrupt)")
        with np.load(data_path, allow_pickle=False) as z:
            pitch, time_s, offsets = z["pitch"], z["time"], z["offsets"]
        if len(offsets) != len(cat["songs"]) + 1 or offsets[-1] != len(pitch) or len(time_s) != len(pitch):
            raise F0IndexError(f"F0 index {directory}: data and catalog disagree (corrupt)")
        return cls(directory, cat, pitch, time_s, offsets)

    def __len__(self) -> int:
        return len(self.song_ids)

    def __contains__(self, song_id: object) -> bool:
        return song_id in self._pos

    def __repr__(self) -> str:
        return f"F0Index({self.dir!r}, songs={len(self)}, frames={len(self.pitch)}, crepe={self.config.crepe_model})"

    def position(self, song_id: str) -> int:
        try:
            return self._pos[song_id]
        except KeyError:
            raise KeyError(f"song {song_id!r} is not in the F0 index {self.dir}") from None

    def contour(self, song_id: str) -> np.ndarray:
        """The contour (semitones, median removed) of one song."""
        i = self.position(song_id)
        return self.pitch[self.offsets[i]:self.offsets[i + 1]]

    def times(self, song_id: str) -> np.ndarray:
        """Start time (s) in the song of each contour frame."""
        i = self.position(song_id)
        return self.time_s[self.offsets[i]:self.offsets[i + 1]]

    # ---- writing -------------------------------------------------------------------------------

    @classmethod
    def write(cls, directory: str | os.PathLike, items: Iterable[tuple], config: F0Config, *,
              extra: dict | None = None) -> "F0Index":
        """Write contours given as ``(song_id, pitch, times_s, title, path, duration_s)`` (replacing an
        existing F0 index there, atomically)."""
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        songs, pitches, times = [], [], []
        offset = 0
        seen = set()
        for sid, p, t, title, path, dur in items:
            sid = str(sid)
            if sid in seen:
                raise ValueError(f"song id {sid!r} appears twice")
            seen.add(sid)
            p = np.asarray(p, np.float32)
            t = np.asarray(t, np.float32)
            if p.ndim != 1 or t.shape != p.shape or not np.isfinite(p).all():
                raise ValueError(f"song {sid!r}: pitch and times must be finite 1-D arrays of one length")
            songs.append({"song_id": sid, "title": title or sid, "path": path, "offset": offset,
                          "frames": int(len(p)), "duration_s": None if dur is None else float(dur)})
            pitches.append(p)
            times.append(t)
            offset += len(p)
        offsets = np.array([0] + [s["offset"] + s["frames"] for s in songs], np.int64)
        pitch = np.concatenate(pitches) if pitches else np.zeros(0, np.float32)
        time_s = np.concatenate(times) if times else np.zeros(0, np.float32)
        buf = io.BytesIO()
        np.savez(buf, pitch=pitch, time=time_s, offsets=offsets)
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        data_file = f"f0-{digest[:16]}.npz"
        with atomic_path(os.path.join(directory, data_file)) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
        cat = {"kind": "chad-f0-index", "format_version": F0_FORMAT_VERSION, "chad_version": __version__,
               "config": config.to_dict(), "data_file": data_file, "data_sha256": digest,
               "frames": int(len(pitch)), "songs": songs, **(extra or {})}
        atomic_write_text(os.path.join(directory, F0_CATALOG), json.dumps(cat, indent=1) + "\n")
        for f in os.listdir(directory):
            if f.startswith("f0-") and f.endswith(".npz") and f != data_file:
                try:
                    os.remove(os.path.join(directory, f))
                except OSError:
                    pass
        return cls.open(directory)

    @classmethod
    def build(cls, directory: str | os.PathLike, songs: Iterable[Sequence], config: F0Config | None = None, *,
              separator=None, overwrite: bool = False, on_error: str = "raise", progress_bar: bool = True,
              device=None) -> "F0Index":
        """Compute the contour of every song and write the index.

        Parameters
        ----------
        songs : iterable of (song_id, path or 16 kHz array[, title])
        config : F0Config (default: CREPE tiny, 20 contour frames per second)
        separator : a :class:`chadml.separation.Separator` (or its name) applied to each song first
            (real mixes: vocals only); None: identity (vocal stems, the built-in corpus).
        overwrite : replace an existing F0 index at ``directory`` (default: ``FileExistsError``).
        on_error : "raise", or "skip" (an unreadable song is left out, with a warning).
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        cfg = config or F0Config()
        sep = None if separator is None else get_separator(separator)
        directory = os.fspath(directory)
        if os.path.exists(os.path.join(directory, F0_CATALOG)) and not overwrite:
            raise FileExistsError(f"an F0 index already exists at {directory} (pass overwrite=True / --overwrite)")
        items = list(songs)
        if not items:
            raise ValueError("F0Index.build needs at least one song")
        out = []
        t0 = time.perf_counter()
        audio_s = 0.0
        for item in progress(items, desc="f0 contours", unit="song", disable=not progress_bar or None):
            sid, src = str(item[0]), item[1]
            title = str(item[2]) if len(item) > 2 and item[2] else sid
            try:
                y = src if isinstance(src, np.ndarray) else load(src, sr=SAMPLE_RATE)
                if sep is not None:
                    y = sep.separate(np.asarray(y, np.float32), SAMPLE_RATE)
                pitch, times = f0_contour(y, SAMPLE_RATE, cfg, device=device)
            except Exception as exc:  # noqa: BLE001 - per song, by on_error
                if on_error == "raise" or isinstance(exc, (ImportError, ChadError)):
                    raise
                log.warning("song %s left out: %s", sid, exc)
                continue
            if len(pitch) == 0:
                log.warning("song %s has no voiced frames: it can never be found by f0 matching", sid)
            audio_s += len(y) / SAMPLE_RATE
            out.append((sid, pitch, times, title, None if isinstance(src, np.ndarray) else os.fspath(src),
                        len(y) / SAMPLE_RATE))
        dt = time.perf_counter() - t0
        sep_name = "identity" if sep is None else getattr(sep, "name", type(sep).__name__)
        return cls.write(directory, out, cfg, extra={"separator": sep_name, "build_seconds": dt,
                                                     "audio_seconds": audio_s})
