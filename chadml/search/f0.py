"""Retrieval baselines with no learning.

``RawFeatureSearcher``: every song's raw feature sequence (CQT frames, ``(T, 84)``) kept in one packed
array, a query's raw features matched against all of them by max Pearson over lags
(:func:`chadsp.rerank`, the same re-ranker the learned system uses). It answers "what does the
encoder add over its own input features?".

``F0DtwSearcher``: the classical query-by-humming matcher the paper compares with (Stasiak's f0 + DTW,
Table 1): a pitch contour from CREPE (:func:`chadml.crepe.predict_f0`), voiced frames only, in semitones,
key-invariant (median removed), octave jumps and outliers repaired, median-smoothed and downsampled
(:func:`f0_contour`); the songs' contours are kept in an :class:`F0Index` and a query's contour is
aligned inside every song by open-begin/open-end DTW (:func:`chadsp.subsequence_dtw`), with an optional
key-shift search and a re-centring pass on the matched segment.

Both have the :class:`chadml.search.Searcher` query API, so :func:`chadml.evaluate.evaluate` runs them
unchanged.

Example
-------
>>> from chadml.baseline import F0Index, F0DtwSearcher
>>> idx = F0Index.build("songs.f0", [("a", "a.flac"), ("b", "b.flac")])     # doctest: +SKIP
>>> F0DtwSearcher(idx).query("hum.wav", top=1)[0].song_id                     # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .. import ChadError

log = logging.getLogger(__name__)

__all__ = ["RawFeatureSearcher", "F0Config", "f0_contour", "contour_from_f0", "F0Index",
           "F0IndexError", "F0DtwSearcher", "F0_FORMAT_VERSION"]


class RawFeatureSearcher:
    """Max-Pearson matching of raw feature frames against every song (exhaustive, no index).

    Parameters
    ----------
    songs : iterable of (song_id, path or audio array at 16 kHz[, title])
    feature_config : chadml.features.FeatureConfig (default: the paper's CQT)
    threads : re-ranker threads (None: all cores)

    Example
    -------
    >>> s = RawFeatureSearcher([("a", "a.flac"), ("b", "b.flac")])   # doctest: +SKIP
    >>> s.query(hum, sr=16000, top=1)[0].song_id                     # doctest: +SKIP
    """

    def __init__(self, songs: Iterable[Sequence], feature_config=None, *, threads: int | None = None):
        from ..audio import load
        from ..features import FeatureConfig, extract_features
        self.feature_config = feature_config or FeatureConfig()
        self.threads = threads
        ids, titles, seqs = [], [], []
        for item in songs:
            sid, src = str(item[0]), item[1]
            y = load(src, sr=self.feature_config.sr) if not isinstance(src, np.ndarray) else src
            seqs.append(np.ascontiguousarray(extract_features(y, self.feature_config).T))
            ids.append(sid)
            titles.append(str(item[2]) if len(item) > 2 and item[2] else sid)
        if not seqs:
            raise ValueError("RawFeatureSearcher needs at least one song")
        self.song_ids, self.titles = ids, titles
        self.offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum([len(s) for s in seqs])
        self.data = np.ascontiguousarray(np.concatenate(seqs))
        self.last_timing: dict = {}

    def __len__(self) -> int:
        return len(self.song_ids)

    def query(self, audio, sr: int = 16000, top: int = 10) -> list:
        import chadsp

        from ..audio import resample
        from ..features import extract_features
        from ..config import check_top as _check_top
        from . import Match, load_query_audio
        t0 = time.perf_counter()
        top = _check_top(top)
        y, y_sr = load_query_audio(audio, sr)
        if y_sr != self.feature_config.sr:
            y = resample(y, y_sr, self.feature_config.sr)
        q = np.ascontiguousarray(extract_features(y, self.feature_config).T)
        t1 = time.perf_counter()
        scores, lags = chadsp.rerank(q, (self.data, self.offsets), threads=self.threads)
        order = np.argsort(-scores, kind="stable")[:top]
        self.last_timing = {"features": t1 - t0, "rerank": time.perf_counter() - t1}
        fr = self.feature_config.frame_rate
        return [Match(self.song_ids[i], self.titles[i], float(scores[i]), float(lags[i]) / fr, r + 1)
                for r, i in enumerate(order)]


# ================================================================================================
# f0 + DTW (Stasiak-style tune matching)
# ================================================================================================

F0_FORMAT_VERSION = 1
F0_CATALOG = "f0_catalog.json"
_SILENCE_PEAK = 1e-4          # peak amplitude below this (-80 dBFS): silence, no f0 is computed
# pitch errors repaired against the running median: octaves and twelfths (CREPE locking onto the 2nd/3rd
# harmonic or the sub-octave), in semitones
_HARMONIC_JUMPS = np.array([0.0, 12.0, -12.0, 12 * math.log2(3), -12 * math.log2(3), 24.0, -24.0])


@dataclass(frozen=True)
class F0Config:
    """How a recording becomes a pitch contour (recorded in every :class:`F0Index`).

    Parameters
    ----------
    crepe_model : {"tiny", "full"}
        The CREPE network. tiny is ~10x faster on CPU and tracks clean voices nearly as well.
    hop_length : int
        CREPE hop in samples at 16 kHz (160 = 10 ms; 320 halves the cost).
    fmin, fmax : float
        Pitch search range in Hz (voices: 65-1000 Hz).
    voicing_threshold : float
        A frame is voiced when CREPE's periodicity (the activation of its pitch bin) is at least this ...
    silence_db : float
        ... and its RMS (1024-sample frames) is within ``silence_db`` dB of the loudest frame.
    min_voiced_s : float
        Voiced runs shorter than this are dropped (spurious blips between notes).
    octave_window_s, octave_tolerance : float
        Octave repair: a frame within ``octave_tolerance`` semitones of a whole number of octaves
        (+-12, +-24) away from the running median over ``octave_window_s`` is moved back by those octaves.
    outlier_window_s, outlier_st, outlier_max_s : float
        Outlier repair: runs of frames more than ``outlier_st`` semitones from the running median over
        ``outlier_window_s`` that last at most ``outlier_max_s`` are replaced by the median (a median
        filter keeps real note changes: a step is not an outlier).
    smooth_s : float
        Median filter of the repaired contour (seconds; 0 disables).
    gaps : {"fill", "drop"}
        Unvoiced frames between the first and the last voiced one: "fill" bridges them linearly (the
        contour keeps the recording's time axis, so a DTW band bounds the tempo difference), "drop"
        leaves them out (the voiced frames concatenated).
    frame_rate : float
        Frames per second of the final contour: voiced frames are averaged in blocks
        (100 / frame_rate frames at hop 160; 10 per second by default).
    min_frames : int
        A contour with fewer frames is "no melody" (an empty result with a reason, for a query).

    Example
    -------
    >>> F0Config(crepe_model="full").frames_per_block     # 100 CREPE frames/s -> 10 contour frames/s
    10
    """

    crepe_model: str = "tiny"
    hop_length: int = 160
    fmin: float = 65.0
    fmax: float = 1000.0
    voicing_threshold: float = 0.5
    silence_db: float = 40.0
    min_voiced_s: float = 0.05
    octave_window_s: float = 1.51
    octave_tolerance: float = 2.0
    outlier_window_s: float = 0.31
    outlier_st: float = 4.0
    outlier_max_s: float = 0.12
    smooth_s: float = 0.07
    gaps: str = "fill"
    frame_rate: float = 10.0
    min_frames: int = 5

    def __post_init__(self) -> None:
        if self.gaps not in ("fill", "drop"):
            raise ValueError(f"F0Config.gaps must be 'fill' or 'drop', got {self.gaps!r}")
        if self.crepe_model not in ("tiny", "full"):
            raise ValueError(f"F0Config.crepe_model must be 'tiny' or 'full', got {self.crepe_model!r}")
        if isinstance(self.hop_length, bool) or not isinstance(self.hop_length, (int, np.integer)) \
                or not 1 <= self.hop_length <= 1600:
            raise ValueError(f"F0Config.hop_length must be an integer in 1..1600 (samples at 16 kHz), "
                             f"got {self.hop_length!r}")
        if not (0 < float(self.fmin) < float(self.fmax)):
            raise ValueError(f"F0Config needs 0 < fmin < fmax, got fmin={self.fmin!r}, fmax={self.fmax!r}")
        if not 0.0 <= float(self.voicing_threshold) <= 1.0:
            raise ValueError(f"F0Config.voicing_threshold must be in [0, 1], got {self.voicing_threshold!r}")
        for name in ("silence_db", "octave_tolerance", "outlier_st", "frame_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"F0Config.{name} must be a finite number > 0, got {v!r}")
        for name in ("min_voiced_s", "octave_window_s", "outlier_window_s", "outlier_max_s", "smooth_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"F0Config.{name} must be a finite number >= 0 (seconds), got {v!r}")
        if self.frame_rate > self.f0_rate:
            raise ValueError(f"F0Config.frame_rate ({self.frame_rate}) cannot exceed CREPE's frame rate "
                             f"16000 / hop_length = {self.f0_rate}")
        if isinstance(self.min_frames, bool) or not isinstance(self.min_frames, (int, np.integer)) \
                or self.min_frames < 1:
            raise ValueError(f"F0Config.min_frames must be an integer >= 1, got {self.min_frames!r}")

    @property
    def f0_rate(self) -> float:
        """CREPE frames per second (16000 / hop_length)."""
        return 16000.0 / self.hop_length

    @property
    def frames_per_block(self) -> int:
        """Voiced CREPE frames averaged into one contour frame."""
        return max(1, int(round(self.f0_rate / self.frame_rate)))

    def _odd(self, seconds: float) -> int:
        n = int(round(seconds * self.f0_rate))
        return n + 1 if n % 2 == 0 else n

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "F0Config":
        from ..config import from_dict
        return from_dict(cls, d, "F0Config")


def _runs(mask: np.ndarray) -> np.ndarray:
    """``(k, 2)`` [start, end) of the runs of True in a 1-D bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return d.reshape(-1, 2)


def _median_filter(x: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import median_filter
    if size <= 1 or len(x) <= 1:
        return x.copy()
    return median_filter(x, size=size, mode="nearest")


def contour_from_f0(f0_hz: np.ndarray, periodicity: np.ndarray, config: F0Config | None = None, *,
                    level_db: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pitch contour of per-frame f0 estimates: ``(semitones (n,) float32, times_s (n,) float32)``.

    Steps (on the voiced frames):

    1. voiced = ``periodicity >= voicing_threshold`` (and ``level_db >= -silence_db`` when given), f0 > 0;
       voiced runs shorter than ``min_voiced_s`` dropped;
    2. to semitones (MIDI numbers: ``69 + 12 log2(f0 / 440)``);
    3. octave (and twelfth) jumps repaired against a running median; then outliers (short excursions)
       replaced by it;
    4. median-smoothed; the median pitch subtracted (key invariance);
    5. pauses bridged (``gaps="fill"``) or left out (``"drop"``);
    6. averaged in blocks of ``frames_per_block`` frames (``frame_rate`` frames per second).

    ``times_s`` is where each contour frame starts in the recording (CREPE frame ``i`` is at
    ``i * hop_length / 16000`` s). Fewer than ``min_frames`` frames: both arrays are empty.

    Example
    -------
    >>> import numpy as np
    >>> f0 = np.r_[np.full(50, 220.0), np.full(50, 440.0 * 2 ** (2 / 12))]   # A3, then B4 (an octave + 2 up)
    >>> c, t = contour_from_f0(f0, np.ones(100), F0Config(frame_rate=10))
    >>> np.round(c, 2).tolist()          # 5 frames at A3, 5 at B4; median removed
    [-7.0, -7.0, -7.0, -7.0, -7.0, 7.0, 7.0, 7.0, 7.0, 7.0]
    """
    cfg = config or F0Config()
    f0 = np.asarray(f0_hz, dtype=np.float64)
    per = np.asarray(periodicity, dtype=np.float64)
    if f0.ndim != 1 or per.shape != f0.shape:
        raise ValueError(f"f0_hz and periodicity must be 1-D of the same length, got {f0.shape} and {per.shape}")
    voiced = (per >= cfg.voicing_threshold) & np.isfinite(f0) & (f0 > 0)
    if level_db is not None:
        lv = np.asarray(level_db, dtype=np.float64)
        if lv.shape != f0.shape:
            raise ValueError(f"level_db must have the shape of f0_hz {f0.shape}, got {lv.shape}")
        voiced &= lv >= -cfg.silence_db
    min_run = int(round(cfg.min_voiced_s * cfg.f0_rate))
    for s, e in _runs(voiced):
        if e - s < min_run:
            voiced[s:e] = False
    idx = np.flatnonzero(voiced)
    empty = (np.zeros(0, np.float32), np.zeros(0, np.float32))
    if len(idx) < cfg.min_frames * cfg.frames_per_block:
        return empty
    st = 69.0 + 12.0 * np.log2(f0[idx] / 440.0)
    # octave jumps (and CREPE's twelfth errors, the 3rd harmonic): moved back by the interval they are
    # away from the running median (twice: a long wrong stretch moves the median the first time)
    for _ in range(2):
        ref = _median_filter(st, cfg._odd(cfg.octave_window_s))
        d = st - ref
        jump = _HARMONIC_JUMPS[np.argmin(np.abs(d[:, None] - _HARMONIC_JUMPS[None, :]), axis=1)]
        fix = (jump != 0) & (np.abs(d - jump) <= cfg.octave_tolerance)
        if not fix.any():
            break
        st = st - jump * fix
    # outliers: short excursions far from the running median
    ref = _median_filter(st, cfg._odd(cfg.outlier_window_s))
    far = np.abs(st - ref) > cfg.outlier_st
    max_run = max(1, int(round(cfg.outlier_max_s * cfg.f0_rate)))
    for s, e in _runs(far):
        if e - s <= max_run:
            st[s:e] = ref[s:e]
    if cfg.smooth_s > 0:
        st = _median_filter(st, cfg._odd(cfg.smooth_s))
    st = st - np.median(st)
    if cfg.gaps == "fill":       # back on the time grid: pauses bridged linearly from note to note
        grid = np.arange(idx[0], idx[-1] + 1)
        st, idx = np.interp(grid, idx, st), grid
    b = cfg.frames_per_block
    n = len(st) // b
    if n < cfg.min_frames:
        return empty
    contour = st[: n * b].reshape(n, b).mean(axis=1)
    times = idx[: n * b: b] / cfg.f0_rate
    return contour.astype(np.float32), times.astype(np.float32)


def f0_contour(audio, sr: int = 16000, config: F0Config | None = None, *, device=None) -> tuple[np.ndarray, np.ndarray]:
    """The key-invariant pitch contour of a recording (array at ``sr`` or a file path):
    ``(semitones (n,) float32, times_s (n,) float32)``; empty arrays when it has no melody (silence,
    noise, fewer than ``config.min_frames`` voiced frames). See :func:`contour_from_f0`.

    Example
    -------
    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> y = np.r_[np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)].astype(np.float32)
    >>> c, _ = f0_contour(y, 16000)
    >>> float(np.round(np.median(c[-10:]) - np.median(c[:10])))   # a fifth up: 7 semitones
    7.0
    """
    import chadsp

    from ..features.crepe import predict_f0
    from . import load_query_audio
    cfg = config or F0Config()
    y, sr = load_query_audio(audio, sr)
    if sr != 16000:
        from ..audio import resample
        y, sr = resample(y, sr, 16000).astype(np.float32, copy=False), 16000
    empty = (np.zeros(0, np.float32), np.zeros(0, np.float32))
    if len(y) == 0 or float(np.max(np.abs(y))) < _SILENCE_PEAK:
        return empty
    f0, per = predict_f0(y, 16000, model=cfg.crepe_model, hop_length=cfg.hop_length, fmin=cfg.fmin,
                         fmax=cfg.fmax, device=device)
    level = chadsp.rms_db(y, frame_length=1024, hop_length=cfg.hop_length, center=True)[: len(f0)]
    if len(level) < len(f0):
        level = np.pad(level, (0, len(f0) - len(level)), constant_values=-np.inf)
    return contour_from_f0(f0, per, cfg, level_db=level)


class F0IndexError(ChadError):
    """A missing, corrupt or foreign F0 index."""


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class F0Index:
    """The songs' pitch contours, for :class:`F0DtwSearcher` and the ``dtw-f0`` re-ranker.

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
        from ..util import atomic_path, atomic_write_text
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
        import io
        buf = io.BytesIO()
        np.savez(buf, pitch=pitch, time=time_s, offsets=offsets)
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        data_file = f"f0-{digest[:16]}.npz"
        with atomic_path(os.path.join(directory, data_file)) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
        from .. import __version__
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
        from ..audio import load
        from ..util import progress
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        cfg = config or F0Config()
        if separator is None:
            sep = None
        else:
            from ..separation import get_separator
            sep = get_separator(separator)
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
                y = src if isinstance(src, np.ndarray) else load(src, sr=16000)
                if sep is not None:
                    y = sep.separate(np.asarray(y, np.float32), 16000)
                pitch, times = f0_contour(y, 16000, cfg, device=device)
            except Exception as exc:  # noqa: BLE001 - per song, by on_error
                if on_error == "raise" or isinstance(exc, (ImportError, ChadError)):
                    raise
                log.warning("song %s left out: %s", sid, exc)
                continue
            if len(pitch) == 0:
                log.warning("song %s has no voiced frames: it can never be found by f0 matching", sid)
            audio_s += len(y) / 16000
            out.append((sid, pitch, times, title, None if isinstance(src, np.ndarray) else os.fspath(src),
                        len(y) / 16000))
        dt = time.perf_counter() - t0
        return cls.write(directory, out, cfg, extra={"separator": "identity" if sep is None else getattr(sep, "name", type(sep).__name__),
                                                     "build_seconds": dt, "audio_seconds": audio_s})


def _as_f0_index(index) -> F0Index:
    if isinstance(index, F0Index):
        return index
    if isinstance(index, (str, os.PathLike)):
        return F0Index.open(index)
    raise TypeError(f"index must be an F0Index or a path, got {type(index).__name__}")


class F0DtwSearcher:
    """Classical query-by-humming: the query's pitch contour aligned inside every song's by subsequence DTW.

    Parameters
    ----------
    index : F0Index or its directory
    key_shifts : semitone offsets tried for the query (the contours are median-removed, so the key is
        already matched to the song's overall median; an excerpt's median can differ from it).
    refine : passes that re-centre the query on the median of the segment it matched, then realign
        (Stasiak's adaptive tuning, in its simplest form). 0: none.
    band_fraction : the DTW band as a fraction of the query's length (``ceil(band_fraction * n)`` frames:
        the alignment may drift that far from a straight line, i.e. a tempo difference of about that
        fraction); None: unbanded (any tempo, but wrong songs then match too easily).
    threads : worker threads over songs (None: all cores); each DTW runs on one thread.
    device : torch device for CREPE.

    ``score`` of a match is minus the DTW cost divided by sqrt(query frames): minus the root-mean-square
    semitone error along the path. ``time_s`` is where the matched segment starts in the song.
    A query with no melody (silence, noise, too few voiced frames) gives ``[]`` and the reason in
    :attr:`last_reason` (logged); timings are in :attr:`last_timing`.

    Example
    -------
    >>> s = F0DtwSearcher("songs.f0")                 # doctest: +SKIP
    >>> s.query("hum.wav", top=3)[0].song_id          # doctest: +SKIP
    """

    rerank = "f0-dtw"

    def __init__(self, index, *, key_shifts: Sequence[float] = (0.0,), refine: int = 1,
                 band_fraction: float | None = 0.15,
                 threads: int | None = None, device=None):
        self.index = _as_f0_index(index)
        shifts = tuple(float(s) for s in key_shifts)
        if not shifts or not all(math.isfinite(s) and abs(s) <= 12 for s in shifts):
            raise ValueError(f"key_shifts must be a non-empty sequence of semitone offsets in [-12, 12], got {key_shifts!r}")
        if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or refine < 0:
            raise ValueError(f"refine must be an integer >= 0, got {refine!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                    or threads < 0):
            raise ValueError(f"threads must be an integer >= 0 or None, got {threads!r}")
        if band_fraction is not None and (isinstance(band_fraction, bool) or not isinstance(band_fraction, (int, float))
                                          or not 0 <= band_fraction <= 1):
            raise ValueError(f"band_fraction must be a number in [0, 1] or None, got {band_fraction!r}")
        self.key_shifts, self.refine, self.threads, self.device = shifts, int(refine), threads, device
        self.band_fraction = band_fraction
        self.config = self.index.config
        self.last_reason: str | None = None
        self.last_timing: dict = {}

    def __len__(self) -> int:
        return len(self.index)

    def contour(self, audio, sr: int = 16000) -> np.ndarray:
        """The query's contour (semitones, median removed; empty when it has no melody)."""
        return f0_contour(audio, sr, self.config, device=self.device)[0]

    def score(self, contour: np.ndarray, positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores float32[k], starts int64[k])`` of a query contour against the songs at ``positions``
        (default: all); ``-inf`` for a song with no contour. ``starts`` index the song's contour frames."""
        import chadsp
        q0 = np.ascontiguousarray(contour, dtype=np.float32)
        if q0.ndim != 1 or len(q0) == 0:
            raise ValueError(f"contour must be a non-empty 1-D array, got shape {q0.shape}")
        idx = self.index
        pos = np.arange(len(idx), dtype=np.int64) if positions is None else np.asarray(positions, np.int64)
        offs = idx.offsets
        n = len(q0)
        band = None if self.band_fraction is None else int(math.ceil(self.band_fraction * n))

        def one(p):
            t = idx.pitch[offs[p]:offs[p + 1]]
            if len(t) == 0 or (band is not None and len(t) < n - band):
                return math.inf, 0
            best = (math.inf, 0, 0, 0.0)
            for s in self.key_shifts:
                c, a, b = chadsp.subsequence_dtw(q0 + np.float32(s), t, band=band, metric="euclidean", threads=1)
                if c < best[0]:
                    best = (c, a, b, s)
            for _ in range(self.refine):
                c0, a, b, s = best
                shift = float(np.median(t[a:b])) - float(np.median(q0))
                if abs(shift - s) < 0.05:
                    break
                c, a2, b2 = chadsp.subsequence_dtw(q0 + np.float32(shift), t, band=band, metric="euclidean",
                                                   threads=1)
                if c >= c0:
                    break
                best = (c, a2, b2, shift)
            return best[0], best[1]

        from ..util import map_threads
        res = map_threads(one, pos, self.threads)
        cost = np.array([r[0] for r in res], np.float64)
        scores = (-cost / math.sqrt(n)).astype(np.float32)
        return scores, np.array([r[1] for r in res], np.int64)

    def query(self, audio, sr: int = 16000, top: int = 10) -> list:
        """The ``top`` songs for a query (array at ``sr`` or a path), best first (``chadml.search.Match``)."""
        from ..config import check_top as _check_top
        from . import load_query_audio
        t0 = time.perf_counter()
        top = _check_top(top)
        y, y_sr = load_query_audio(audio, sr)
        if len(y) == 0:
            raise ValueError("the query audio is empty (0 samples)")
        q, _ = f0_contour(y, y_sr, self.config, device=self.device)
        t1 = time.perf_counter()
        return self._finish(q, top, t0, t1, len(y) / y_sr)

    def query_contour(self, contour: np.ndarray, top: int = 10) -> list:
        """:meth:`query` from a precomputed contour."""
        from ..config import check_top as _check_top
        t0 = time.perf_counter()
        return self._finish(np.asarray(contour, np.float32), _check_top(top), t0, t0, None)

    def _finish(self, q: np.ndarray, top: int, t0: float, t1: float, dur) -> list:
        from . import Match
        self.last_reason = None
        timing = {"duration_s": dur, "f0_s": t1 - t0, "n_query_frames": int(len(q)), "n_songs": len(self.index)}
        if len(q) == 0:
            self.last_reason = (f"no melody in the query: fewer than {self.config.min_frames} voiced contour frames "
                                f"(periodicity >= {self.config.voicing_threshold}; silence or noise?)")
            log.warning("f0-dtw: %s", self.last_reason)
            self.last_timing = {**timing, "rerank_s": 0.0, "total_s": time.perf_counter() - t0}
            return []
        scores, starts = self.score(q)
        t2 = time.perf_counter()
        ok = np.isfinite(scores)
        order = np.flatnonzero(ok)[np.argsort(-scores[ok], kind="stable")][:top]
        idx = self.index
        out = []
        for r, i in enumerate(order):
            ts = idx.time_s[idx.offsets[i] + starts[i]] if idx.offsets[i + 1] > idx.offsets[i] else 0.0
            out.append(Match(idx.song_ids[i], idx.titles[i], float(scores[i]), float(ts), r + 1))
        self.last_timing = {**timing, "rerank_s": t2 - t1, "total_s": time.perf_counter() - t0}
        return out


# ------------------------------------------------------------------------------------------------
# command line: chad f0-index
# ------------------------------------------------------------------------------------------------

def add_cli(sub) -> None:
    from ..separation import add_separator_args
    p = sub.add_parser("f0-index", help="pitch contours of songs for the f0 + DTW matcher",
                       description="The classical query-by-humming baseline's index: a CREPE pitch contour of "
                                   "every song (for `chad evaluate --method f0-dtw`, `chad compare` and "
                                   "`chad query --rerank dtw-f0`).")
    s = p.add_subparsers(dest="f0_command", metavar="ACTION")
    b = s.add_parser("build", help="compute the songs' contours into a new F0 index")
    b.add_argument("--songs", required=True, help="folder of audio files, or a song table (originals)")
    b.add_argument("--out", required=True, help="F0 index directory (e.g. INDEX/f0, beside a song index)")
    b.add_argument("--crepe-model", choices=("tiny", "full"), default="tiny",
                   help="CREPE network (tiny: ~10x real time on 2 CPU cores; full: ~0.3x)")
    b.add_argument("--hop", type=int, default=160, help="CREPE hop in samples at 16 kHz (default 160 = 10 ms)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing F0 index")
    b.add_argument("--skip-bad", action="store_true", help="leave out unreadable songs (default: abort)")
    b.add_argument("--device", default=None)
    add_separator_args(b)
    b.set_defaults(func=_cli_build)
    i = s.add_parser("info", help="describe an F0 index")
    i.add_argument("--index", required=True)
    i.set_defaults(func=_cli_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _cli_build(args) -> int:
    from ..index import song_items
    from ..separation import separator_from_args
    sep = separator_from_args(args)
    cfg = F0Config(crepe_model=args.crepe_model, hop_length=args.hop)
    idx = F0Index.build(args.out, song_items(args.songs), cfg, separator=sep, overwrite=args.overwrite,
                        on_error="skip" if args.skip_bad else "raise",
                        progress_bar=not getattr(args, "quiet", False), device=args.device)
    c = idx.catalog
    rt = c["audio_seconds"] / c["build_seconds"] if c.get("build_seconds") else float("nan")
    print(f"{len(idx)} songs ({c['audio_seconds'] / 3600:.2f} h, {len(idx.pitch)} contour frames) -> {idx.dir} in "
          f"{c['build_seconds']:.1f} s ({rt:.1f}x real time, CREPE {cfg.crepe_model})")
    return 0


def _cli_info(args) -> int:
    idx = F0Index.open(args.index)
    c = idx.catalog
    print(json.dumps({k: c[k] for k in ("format_version", "chad_version", "config", "frames", "separator",
                                        "audio_seconds", "build_seconds") if k in c} | {"songs": len(idx)},
                     indent=1))
    return 0
