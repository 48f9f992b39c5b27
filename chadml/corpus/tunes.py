"""The melodies of the built-in corpus: folk tunes parsed from music21's ABC collections (cached as JSON).

``COLLECTIONS`` (O'Neill's 1850, Ryan's Mammoth, Aird's Airs, Nottingham; ~4,200 tunes) are used;
``essenFolksong`` is ``RESERVED`` for independent evaluation: asking for it is a ``ValueError``.

Example
-------
>>> check_collections("oneills1850")
('oneills1850',)
>>> [t.collection for t in load_tunes(limit=3)]          # doctest: +SKIP
['oneills1850', 'ryansMammoth', 'airdsAirs']
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import zlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..util import atomic_write_text

__all__ = ["held_out", "HELD_OUT_MODULUS", "COLLECTIONS", "RESERVED", "TUNE_CACHE_VERSION", "MIN_NOTES", "MIN_BEATS", "Tune", "load_tunes",
           "load_tune", "tune_notes_json", "default_cache_dir", "check_collections"]

log = logging.getLogger(__name__)

COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs", "nottingham-dataset")
RESERVED = ("essenFolksong",)
TUNE_CACHE_VERSION = 1

HELD_OUT_MODULUS = 10     # held_out(): one tune in ten is never used for training (release evaluation)
MIN_NOTES = 16            # a tune with fewer pitched notes is skipped
MIN_BEATS = 8.0           # ... or shorter than this (quarter notes)


@dataclass(eq=False)
class Tune:
    """A monophonic melody parsed from an ABC collection.

    Attributes
    ----------
    id : str
        ``"collection/file-stem/reference-number"``, stable across runs.
    title, collection : str
    pitch : float64 array
        MIDI pitch per event, NaN for a rest.
    onset_beats, dur_beats : float64 arrays
        Onset and duration of each event in quarter notes, repeats expanded, ties merged.
    bars : float64 array
        Onsets of the bars in quarter notes (for phrasing).
    meter : str
        Time signature, e.g. ``"6/8"``.
    bpm : float
        A singable tempo hint (quarter notes per minute), from the tune's note density.
    """

    id: str
    title: str
    collection: str
    pitch: np.ndarray
    onset_beats: np.ndarray
    dur_beats: np.ndarray
    bars: np.ndarray
    meter: str
    bpm: float

    @property
    def length_beats(self) -> float:
        return float(self.onset_beats[-1] + self.dur_beats[-1])

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "collection": self.collection, "meter": self.meter,
                "bpm": self.bpm, "bars": self.bars.tolist(), "onset": self.onset_beats.tolist(),
                "dur": self.dur_beats.tolist(), "pitch": [None if math.isnan(p) else p for p in self.pitch]}

    @classmethod
    def from_json(cls, d: dict) -> "Tune":
        return cls(d["id"], d["title"], d["collection"],
                   np.array([np.nan if p is None else p for p in d["pitch"]], np.float64),
                   np.asarray(d["onset"], np.float64), np.asarray(d["dur"], np.float64),
                   np.asarray(d["bars"], np.float64), d["meter"], float(d["bpm"]))


def held_out(tune_id: str) -> bool:
    """Whether a tune belongs to the fixed held-out set of release evaluation (about one tune in ten, by a
    hash of its id, so the split never changes): release training (:mod:`chadml.release`) never uses these.

    Example
    -------
    >>> held_out("oneills1850/0001-0050/1"), held_out("oneills1850/0001-0050/2")
    (False, False)
    """
    return zlib.crc32(str(tune_id).encode("utf-8")) % HELD_OUT_MODULUS == 0


def _music21_corpus_dir() -> str:
    import music21
    return os.path.join(os.path.dirname(music21.__file__), "corpus")

def check_collections(collections: Sequence[str]) -> tuple[str, ...]:
    """``collections`` (a name or names) as a tuple, after refusing the reserved and unknown ones (``ValueError``)."""
    if isinstance(collections, str):
        collections = (collections,)
    collections = tuple(collections)
    for c in collections:
        if c in RESERVED:
            raise ValueError(f"collection {c!r} is reserved for independent evaluation (never train, tune or "
                             f"test on it); choose among {COLLECTIONS}")
        if c not in COLLECTIONS:
            raise ValueError(f"collections must be among {COLLECTIONS}, got {c!r}")
    if not collections:
        raise ValueError("collections must name at least one collection")
    return collections


def default_cache_dir() -> str:
    """``$CHAD_CACHE`` or ``~/.cache/chad``."""
    return os.environ.get("CHAD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "chad")


def _score_to_tune(score, tid: str, collection: str) -> Tune:
    """The melody of a music21 score (first part, repeats expanded) -> Tune; ValueError with a reason."""
    from music21 import chord, meter, note
    parts = list(score.parts)
    if not parts:
        raise ValueError("no parts")
    part = parts[0]
    try:
        part = part.expandRepeats()
    except Exception as exc:        # music21 raises several types on odd repeat marks
        log.debug("%s: repeats not expanded (%s)", tid, exc)
    bars = np.array(sorted({float(m.offset) for m in part.getElementsByClass("Measure")}), np.float64)
    ts = [t for t in part.recurse().getElementsByClass(meter.TimeSignature)]
    meter_s = ts[0].ratioString if ts else "4/4"
    events = []   # (onset, dur, pitch)
    prev_tie = False
    for n in part.flatten().notesAndRests:
        ql = float(n.quarterLength)
        if ql <= 0:                                    # grace notes
            continue
        on = float(n.offset)
        if isinstance(n, note.Rest):
            p = math.nan
        elif isinstance(n, chord.Chord):
            p = float(max(x.midi for x in n.pitches)) if n.pitches else math.nan
        elif isinstance(n, note.Note):
            p = float(n.pitch.midi)
        else:
            continue
        if events and on < events[-1][0] + events[-1][1] - 1e-6:    # overlapping voice: keep the first
            continue
        if events and prev_tie and not math.isnan(p) and events[-1][2] == p:
            events[-1][1] = on + ql - events[-1][0]                 # tied: one longer note
        elif events and math.isnan(p) and math.isnan(events[-1][2]) \
                and abs(events[-1][0] + events[-1][1] - on) < 1e-6:
            events[-1][1] += ql                                     # merge rests
        else:
            events.append([on, ql, p])
        tie = getattr(n, "tie", None)
        prev_tie = tie is not None and tie.type in ("start", "continue")
    # drop leading/trailing rests
    while events and math.isnan(events[0][2]):
        events.pop(0)
    while events and math.isnan(events[-1][2]):
        events.pop()
    if not events:
        raise ValueError("no notes")
    ev = np.array(events, np.float64)
    onset, dur, pitch = ev[:, 0] - ev[0, 0], ev[:, 1], ev[:, 2]
    bars = bars - ev[0, 0]
    bars = bars[(bars > -1e-6) & (bars < onset[-1] + dur[-1] - 1e-6)]
    if len(bars) == 0 or bars[0] > 1e-6:
        bars = np.concatenate([[0.0], bars])
    pitched = ~np.isnan(pitch)
    if pitched.sum() < MIN_NOTES:
        raise ValueError(f"too short: {int(pitched.sum())} notes (< {MIN_NOTES})")
    if onset[-1] + dur[-1] < MIN_BEATS:
        raise ValueError(f"too short: {onset[-1] + dur[-1]:.1f} beats (< {MIN_BEATS})")
    span = np.nanmax(pitch) - np.nanmin(pitch)
    if span > 30:
        raise ValueError(f"pitch range {span:.0f} semitones is not a singable melody")
    med = float(np.median(dur[pitched]))
    bpm = float(np.clip(60.0 * med / 0.3, 40.0, 160.0))     # median note ~0.3 s: singable
    title = (score.metadata.title if score.metadata is not None and score.metadata.title else "") or tid
    return Tune(tid, str(title), collection, pitch, onset, dur, bars, meter_s, bpm)


class _FileCache:
    """Parsed tunes of one ABC file, parsed on demand in file order and cached as JSON."""

    def __init__(self, abc_path: str, collection: str, cache_root: str) -> None:
        self.abc_path = abc_path
        self.collection = collection
        stem = os.path.splitext(os.path.basename(abc_path))[0]
        self.stem = stem
        self.cache_path = os.path.join(cache_root, collection, stem + ".json")
        self._handlers = None
        self.dirty = False
        with open(abc_path, "rb") as f:
            raw = f.read()
        self.sha1 = hashlib.sha1(raw).hexdigest()
        self.entries: list[dict] = []     # {"ref": .., "tune": {...}} or {"ref": .., "skip": reason}
        self.n_refs: int | None = None
        self._raw = raw
        import music21
        self.m21 = music21.__version__
        try:
            with open(self.cache_path, encoding="utf-8") as f:
                d = json.load(f)
            if (d.get("format_version") == TUNE_CACHE_VERSION and d.get("sha1") == self.sha1
                    and d.get("music21") == self.m21):
                self.entries, self.n_refs = d["entries"], d["n_refs"]
        except (OSError, ValueError, KeyError):
            pass

    def _parse_handlers(self):
        if self._handlers is None:
            if not self._raw:
                with open(self.abc_path, "rb") as f:
                    self._raw = f.read()
            from music21 import abcFormat
            text = self._raw.decode("utf-8", errors="replace")
            handler = abcFormat.ABCHandler()
            handler.process(text)
            if handler.definesReferenceNumbers():
                d = handler.splitByReferenceNumber()
                self._handlers = [(k, d[k]) for k in sorted(d, key=lambda x: (x is None, x)) if k is not None]
            else:
                self._handlers = [(1, handler)]
            self.n_refs = len(self._handlers)
        return self._handlers

    def entry(self, i: int) -> dict | None:
        """The i-th tune entry of the file (parsing it if needed); None past the end."""
        if i < len(self.entries):
            return self.entries[i]
        if self.n_refs is not None and i >= self.n_refs:
            return None
        from music21.abcFormat import translate
        handlers = self._parse_handlers()
        while len(self.entries) <= i and len(self.entries) < len(handlers):
            ref, h = handlers[len(self.entries)]
            tid = f"{self.collection}/{self.stem}/{ref}"
            try:
                score = translate.abcToStreamScore(h)
                e = {"ref": ref, "tune": _score_to_tune(score, tid, self.collection).to_json()}
            except Exception as exc:      # music21 raises many types on malformed ABC
                reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                log.info("skipping tune %s: %s", tid, reason)
                e = {"ref": ref, "skip": reason}
            self.entries.append(e)
            self.dirty = True
        return self.entries[i] if i < len(self.entries) else None

    def release(self) -> None:
        """Drop the parsed music21 objects and the file's bytes (the entries stay)."""
        self._handlers = None
        self._raw = b""

    def flush(self) -> None:
        if self.dirty:
            d = {"format_version": TUNE_CACHE_VERSION, "sha1": self.sha1, "music21": self.m21,
                 "source": os.path.relpath(self.abc_path, _music21_corpus_dir()),
                 "n_refs": self.n_refs, "entries": self.entries}
            atomic_write_text(self.cache_path, json.dumps(d, separators=(",", ":")))
            self.dirty = False


def _collection_tunes(collection: str, cache_root: str, opened: list) -> Iterator[Tune]:
    folder = os.path.join(_music21_corpus_dir(), collection)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"music21's corpus has no collection folder {folder}; reinstall music21 (>= 9)")
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(".abc"))
    for fname in files:
        fc = _FileCache(os.path.join(folder, fname), collection, cache_root)
        opened.append(fc)
        i = 0
        while True:
            e = fc.entry(i)
            if e is None:
                break
            if "tune" in e:
                yield Tune.from_json(e["tune"])
            i += 1
        fc.flush()            # a finished file is cached at once (an interrupted full parse keeps it)
        fc.release()


def load_tunes(collections: Sequence[str] = COLLECTIONS, *, limit: int | None = None,
               cache_dir: str | os.PathLike | None = None) -> list[Tune]:
    """Parse the melodies of music21's ABC ``collections`` (cached), taking the collections in turn.

    Tunes come round-robin from the collections (one from each in turn, each in file order) so that a
    small ``limit`` still mixes them; only what ``limit`` needs is parsed. Parsed note lists are cached
    as versioned JSON under ``cache_dir/tunes-v1`` (default :func:`default_cache_dir`), one file per ABC
    file, written atomically and extended on demand. Unparsable or too-short tunes are skipped with a
    logged reason.

    Raises
    ------
    ValueError
        A reserved (``essenFolksong``) or unknown collection, or a bad ``limit``.

    Example
    -------
    >>> [t.collection for t in load_tunes(limit=3)]          # doctest: +SKIP
    ['oneills1850', 'ryansMammoth', 'airdsAirs']
    """
    collections = check_collections(collections)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    cache_root = os.path.join(os.fspath(cache_dir or default_cache_dir()), f"tunes-v{TUNE_CACHE_VERSION}")
    opened: list[_FileCache] = []
    gens = [_collection_tunes(c, cache_root, opened) for c in collections]
    out: list[Tune] = []
    try:
        while gens and (limit is None or len(out) < limit):
            for g in list(gens):
                if limit is not None and len(out) >= limit:
                    break
                try:
                    out.append(next(g))
                except StopIteration:
                    gens.remove(g)
    finally:
        for fc in opened:
            fc.flush()
    return out


def tune_notes_json(tune: Tune) -> str:
    """One pass of ``tune`` as compact JSON ``[[onset_beats, dur_beats, midi], ...]`` (pitched notes only)."""
    m = ~np.isnan(tune.pitch)
    rows = [[round(float(o), 6), round(float(d), 6), round(float(p), 3)]
            for o, d, p in zip(tune.onset_beats[m], tune.dur_beats[m], tune.pitch[m])]
    return json.dumps(rows, separators=(",", ":"))


def load_tune(tune_id: str, *, cache_dir: str | os.PathLike | None = None) -> Tune:
    """The tune ``"collection/file-stem/reference-number"`` (a :attr:`Tune.id`), parsed or from the cache.

    Example
    -------
    >>> load_tune("oneills1850/0001-0050/1").collection           # doctest: +SKIP
    'oneills1850'
    """
    parts = str(tune_id).split("/")
    if len(parts) != 3:
        raise ValueError(f"tune_id must be 'collection/file-stem/reference', got {tune_id!r}")
    collection, stem, ref = parts
    check_collections((collection,))
    path = os.path.join(_music21_corpus_dir(), collection, stem + ".abc")
    if not os.path.exists(path):
        raise FileNotFoundError(f"tune {tune_id!r}: no ABC file {path}")
    cache_root = os.path.join(os.fspath(cache_dir or default_cache_dir()), f"tunes-v{TUNE_CACHE_VERSION}")
    fc = _FileCache(path, collection, cache_root)
    try:
        i = 0
        while (e := fc.entry(i)) is not None:
            if str(e["ref"]) == ref:
                if "tune" not in e:
                    raise ValueError(f"tune {tune_id!r} was skipped when parsing: {e['skip']}")
                return Tune.from_json(e["tune"])
            i += 1
    finally:
        fc.flush()
        fc.release()
    raise ValueError(f"tune {tune_id!r}: no reference {ref} in {path}")
