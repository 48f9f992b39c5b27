"""The built-in corpus: real folk melodies from music21's ABC collections, sung by a numpy synthesiser.

A fresh machine has no audio and nothing may be downloaded, so every demo and test of chad runs on this
corpus. It is CHAD-shaped:

- **originals**: a tune sung by a synthetic singer (harmonic voice with vowel formants, vibrato, jitter,
  shimmer, glides, breath pauses at phrase ends) at a tempo and key, repeated to last ~40-90 s;
- **covers**: the same tune by other singers (another key, tempo +-15 %, another voice, an intro, a
  repeated and a skipped section), each with the exact piecewise-linear time map original -> cover
  (:attr:`chadml.data.SongRow.alignment`) so that mining precision can be measured;
- **hummings**: 4-20 s fragments of the originals hummed as amateurs do (``mm`` timbre, pitch errors,
  drift, uneven timing, their own key, background noise, a room), time-aligned with the original
  fragment they imitate: the H part of CHAD, written as a :class:`chadml.data.Manifest`.

The melodies: ``COLLECTIONS`` (O'Neill's 1850, Ryan's Mammoth, Aird's Airs, Nottingham; ~4,200 tunes).
``essenFolksong`` is ``RESERVED`` for independent evaluation: asking for it is a ``ValueError``.

Example
-------
>>> from chadml import corpus
>>> tunes = corpus.load_tunes(limit=2)                       # doctest: +SKIP
>>> paths = corpus.build_corpus("/tmp/chad-corpus", n_songs=8)  # doctest: +SKIP
>>> paths.songs, paths.hummings                               # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
import zlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .. import audio
from ..data import FragmentRow, Manifest, SongRow, SongTable, map_time
from ..util import atomic_write_text, progress

log = logging.getLogger(__name__)

COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs", "nottingham-dataset")
RESERVED = ("essenFolksong",)
TUNE_CACHE_VERSION = 1
CORPUS_FORMAT_VERSION = 1

MIN_NOTES = 16            # a tune with fewer pitched notes is skipped
MIN_BEATS = 8.0           # ... or shorter than this (quarter notes)


# ============================================================================================ tunes

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


def _music21_corpus_dir() -> str:
    import music21
    return os.path.join(os.path.dirname(music21.__file__), "corpus")


def _check_collections(collections: Sequence[str]) -> tuple[str, ...]:
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
    collections = _check_collections(collections)
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


# ======================================================================================= synthesis

# vowel formants (Hz) and bandwidths for an adult male voice; singers scale them (women ~1.15)
VOWELS = {
    "a": ((730, 1090, 2440, 3400), (90, 110, 140, 200), (0.0, -5.0, -14.0, -20.0)),
    "e": ((530, 1840, 2480, 3500), (70, 110, 140, 200), (0.0, -9.0, -12.0, -20.0)),
    "i": ((300, 2290, 3010, 3500), (60, 120, 150, 200), (0.0, -14.0, -10.0, -20.0)),
    "o": ((570, 840, 2410, 3400), (80, 90, 140, 200), (0.0, -3.0, -20.0, -26.0)),
    "u": ((320, 870, 2240, 3400), (60, 90, 140, 200), (0.0, -8.0, -24.0, -30.0)),
    # the nasal murmur of humming ("mm"): one low resonance, weak highs
    "m": ((260, 1100, 2300, 3300), (60, 300, 300, 300), (0.0, -24.0, -30.0, -36.0)),
}
VOWEL_NAMES = tuple(VOWELS)
_VF = np.array([VOWELS[v][0] for v in VOWEL_NAMES], np.float64)
_VB = np.array([VOWELS[v][1] for v in VOWEL_NAMES], np.float64)
_VG = 10 ** (np.array([VOWELS[v][2] for v in VOWEL_NAMES], np.float64) / 20)
HOP = 32                   # control-rate hop (samples): 500 Hz at 16 kHz


@dataclass
class Singer:
    """Voice parameters of one synthetic performer (a singer, or a hummer)."""

    centre: float           # comfortable median MIDI pitch
    formant_scale: float    # 1.0 male .. ~1.2 female
    vib_rate: float         # Hz
    vib_depth: float        # cents (peak)
    vib_delay: float        # s into a note before vibrato
    jitter: float           # cents (sd of slow random f0 wobble)
    shimmer: float          # dB (sd of amplitude wobble)
    breathiness: float      # aspiration noise level (linear, re voice)
    tilt: float             # source spectral tilt, dB per octave
    glide: float            # portamento time constant, s
    scoop: float            # cents below target at a phrase onset
    vowels: tuple = ("a", "o")
    n_harmonics: int = 24
    legato_dip: float = 0.25

    @classmethod
    def random(cls, rng: np.random.Generator, *, hummer: bool = False) -> "Singer":
        female = rng.random() < 0.5
        if hummer:
            return cls(centre=(60.0 if female else 50.0) + rng.uniform(-3, 3),
                       formant_scale=(1.12 if female else 1.0) * rng.uniform(0.95, 1.05),
                       vib_rate=rng.uniform(4.0, 6.0), vib_depth=rng.uniform(0, 15), vib_delay=0.3,
                       jitter=rng.uniform(8, 20), shimmer=rng.uniform(0.5, 1.5), breathiness=rng.uniform(0.02, 0.06),
                       tilt=rng.uniform(-16, -11), glide=rng.uniform(0.04, 0.09), scoop=rng.uniform(20, 80),
                       vowels=("m",), n_harmonics=int(rng.integers(6, 11)), legato_dip=rng.uniform(0.05, 0.2))
        n_v = int(rng.integers(2, 5))
        vowels = tuple(rng.choice(["a", "e", "i", "o", "u"], size=n_v, replace=False))
        return cls(centre=(67.0 if female else 55.0) + rng.uniform(-3, 3),
                   formant_scale=(1.17 if female else 1.0) * rng.uniform(0.95, 1.06),
                   vib_rate=rng.uniform(4.8, 6.4), vib_depth=rng.uniform(15, 60), vib_delay=rng.uniform(0.12, 0.3),
                   jitter=rng.uniform(3, 9), shimmer=rng.uniform(0.2, 0.8), breathiness=rng.uniform(0.005, 0.03),
                   tilt=rng.uniform(-11, -6), glide=rng.uniform(0.015, 0.05), scoop=rng.uniform(0, 40),
                   vowels=vowels, n_harmonics=24, legato_dip=rng.uniform(0.1, 0.35))


@dataclass
class Notes:
    """A performance as note events in seconds (``sound_end`` <= ``onset + dur``: the sung part)."""

    onset: np.ndarray
    dur: np.ndarray
    pitch: np.ndarray          # MIDI (NaN rest)
    sound_end: np.ndarray = None
    gain: np.ndarray = None    # linear

    def __post_init__(self):
        self.onset = np.asarray(self.onset, np.float64)
        self.dur = np.asarray(self.dur, np.float64)
        self.pitch = np.asarray(self.pitch, np.float64)
        if self.sound_end is None:
            self.sound_end = self.onset + self.dur
        if self.gain is None:
            self.gain = np.ones(len(self.onset))

    def __len__(self):
        return len(self.onset)

    def take(self, mask) -> "Notes":
        return Notes(self.onset[mask], self.dur[mask], self.pitch[mask], self.sound_end[mask], self.gain[mask])


def _onepole(x: np.ndarray, tau_frames: float, zero_phase: bool = False) -> np.ndarray:
    from scipy.signal import filtfilt, lfilter
    if tau_frames <= 0:
        return x
    a = math.exp(-1.0 / tau_frames)
    if zero_phase:
        return filtfilt([1 - a], [1, -a], x, padlen=min(len(x) - 1, int(3 * tau_frames) + 1))
    return lfilter([1 - a], [1, -a], x, zi=[x[0] * a] if len(x) else None)[0] if len(x) else x


def _smooth_noise(rng: np.random.Generator, n: int, tau_frames: float) -> np.ndarray:
    """Unit-variance low-pass noise (one-pole)."""
    x = _onepole(rng.standard_normal(n + int(5 * tau_frames)), tau_frames)[int(5 * tau_frames):]
    s = x.std()
    return x / s if s > 0 else x


def _harmonic_sum(A: np.ndarray, ph: np.ndarray, bufs: list) -> np.ndarray:
    """``sum_k A[k-1, f] * sin(k * ph[f, s])`` for k = 1..K by Clenshaw's recurrence (3 array ops a harmonic).

    ``A``: (K, frames) amplitudes, constant within a frame; ``ph``: (frames, hop) phases; ``bufs``: three
    float32 work arrays shaped like ``ph``. With b_{K+1} = b_{K+2} = 0 and
    b_k = A_k + 2 cos(ph) b_{k+1} - b_{k+2}, the sum is b_1 sin(ph).
    """
    c2 = (2 * np.cos(ph)).astype(np.float32)
    b0, b1, b2 = bufs
    b1.fill(0.0)
    b2.fill(0.0)
    for k in range(A.shape[0] - 1, -1, -1):
        np.multiply(c2, b1, out=b0)
        b0 -= b2
        b0 += A[k][:, None]
        b0, b1, b2 = b2, b0, b1
    return b1 * np.sin(ph).astype(np.float32)


def render(notes: Notes, singer: Singer, total: float, rng: np.random.Generator, *, sr: int = audio.SR,
           vowel_seq: np.ndarray | None = None, drift_cents: float = 0.0) -> np.ndarray:
    """Sing ``notes`` with ``singer``: a float32 signal of ``total`` seconds (not normalised).

    The voice: a harmonic source (sum of harmonics by Chebyshev recursion, up to 0.45 ``sr``) whose
    harmonic amplitudes follow a four-formant vowel envelope and a spectral tilt, f0 with glides
    (zero-phase smoothing), onset scoops, delayed vibrato, jitter and optional slow drift; per-note
    attack/release envelopes (legato notes dip, separated notes start from silence), shimmer, and
    aspiration noise. Everything is computed on a 500 Hz control grid and per sample with numpy.
    """
    n_samp = int(round(total * sr))
    nf = n_samp // HOP + 3
    tc = np.arange(nf) * (HOP / sr)
    frame_rate = sr / HOP
    y = np.zeros(n_samp, np.float32)
    if len(notes) == 0 or n_samp == 0:
        return y
    on, se, pitch, gain = notes.onset, notes.sound_end, notes.pitch, notes.gain
    voiced_note = ~np.isnan(pitch) & (se > on + 1e-3)
    idx = np.searchsorted(on, tc, side="right") - 1
    valid = idx >= 0
    idc = np.clip(idx, 0, len(on) - 1)
    since = tc - on[idc]
    until = se[idc] - tc
    in_note = valid & voiced_note[idc] & (until > 0)
    # pitch contour: rests take the previous note's pitch (amplitude is zero there anyway)
    good = ~np.isnan(pitch)
    if not good.any():
        return y
    fill_idx = np.maximum.accumulate(np.where(good, np.arange(len(pitch)), -1))
    pf = np.where(fill_idx >= 0, pitch[np.maximum(fill_idx, 0)], pitch[good][0])
    # legato: a note that starts where the previous sung note ends
    prev_end = np.concatenate([[-1.0], se[:-1]])
    prev_voiced = np.concatenate([[False], voiced_note[:-1]])
    legato = prev_voiced & (on - prev_end < 0.02)
    next_legato = np.concatenate([legato[1:], [False]])
    p = _onepole(pf[idc], singer.glide * frame_rate, zero_phase=True)
    cents = np.zeros(nf)
    # scoop into notes that start a phrase
    sc = np.where(valid & ~legato[idc], -singer.scoop * np.exp(-np.maximum(since, 0) / 0.07), 0.0)
    cents += sc
    # vibrato with a delayed onset on each note and a slightly wandering rate
    rate = singer.vib_rate * (1 + 0.06 * _smooth_noise(rng, nf, 0.5 * frame_rate))
    vph = 2 * np.pi * np.cumsum(rate) / frame_rate + rng.uniform(0, 2 * np.pi)
    vdepth = singer.vib_depth * np.clip((since - singer.vib_delay) / 0.3, 0, 1)
    cents += vdepth * np.sin(vph)
    cents += singer.jitter * _smooth_noise(rng, nf, 0.03 * frame_rate)
    if drift_cents:
        d = np.cumsum(rng.standard_normal(nf))
        d = _onepole(d - d.mean(), 1.5 * frame_rate, zero_phase=True)
        m = np.max(np.abs(d))
        cents += drift_cents * d / m if m > 0 else 0
    f0 = 440.0 * 2 ** ((p + cents / 100 - 69) / 12)
    # amplitude envelope
    att = np.where(legato[idc], 1 - singer.legato_dip * np.exp(-np.maximum(since, 0) / 0.035),
                   np.clip(since / 0.04, 0, 1))
    rel = np.where(next_legato[idc], 1.0, np.clip(until / 0.05, 0, 1))
    sustain = 1 - 0.12 * np.clip(since / 2.0, 0, 1)
    env = np.where(in_note, att * rel * sustain * gain[idc], 0.0)
    env *= 10 ** (singer.shimmer * _smooth_noise(rng, nf, 0.02 * frame_rate) / 20)
    env = _onepole(env, 0.004 * frame_rate)
    env[~in_note & (env < 1e-3)] = 0.0
    # vowel per note -> formant tracks
    if vowel_seq is None:
        vi = np.array([VOWEL_NAMES.index(v) for v in singer.vowels])
        choice = rng.integers(0, len(vi), len(on))
        vowel_seq = vi[choice]
    onehot = np.zeros((len(VOWEL_NAMES), nf))
    onehot[vowel_seq[idc], np.arange(nf)] = 1.0
    from scipy.signal import filtfilt
    a = math.exp(-1.0 / (0.04 * frame_rate))
    w = filtfilt([1 - a], [1, -a], onehot, axis=1, padlen=min(nf - 1, 30))
    F = (w.T @ _VF) * singer.formant_scale            # (nf, 4)
    B = w.T @ _VB
    G = w.T @ _VG
    # harmonic amplitudes on the control grid: (K, nf)
    nyq = 0.45 * sr
    K = int(min(singer.n_harmonics, max(1, nyq // max(np.min(f0[in_note]) if in_note.any() else 100.0, 50.0))))
    # the spectrum is smooth in time: compute it every 4th frame (8 ms) and interpolate linearly
    dec = 4
    fi = np.arange(0, nf + dec, dec).clip(max=nf - 1)
    k = np.arange(1, K + 1, dtype=np.float32)[:, None]
    fk = k * f0[fi].astype(np.float32)[None, :]
    spec = np.full_like(fk, 0.003)
    for j in range(4):
        x = (fk - F[fi, j][None, :].astype(np.float32)) * (2.0 / B[fi, j][None, :].astype(np.float32))
        spec += G[fi, j][None, :].astype(np.float32) / (1 + x * x)
    spec *= np.exp2((singer.tilt / 6.0206) * np.log2(np.maximum(fk, 20.0) / 200.0)).astype(np.float32)
    spec *= np.clip((nyq - fk) / (0.05 * sr), 0, 1)            # fade out harmonics near the band edge
    spec /= np.maximum(np.sqrt((spec ** 2).sum(axis=0, keepdims=True)), 1e-9)   # loudness from env only
    pos = np.arange(nf) / dec
    i0 = np.minimum(pos.astype(np.int64), len(fi) - 2)
    wt = (pos - i0).astype(np.float32)
    A = spec[:, i0] * (1 - wt) + spec[:, i0 + 1] * wt
    A *= env.astype(np.float32)[None, :]
    # per sample, in chunks of whole control frames: amplitudes constant per frame (they are smooth),
    # f0 linearly interpolated, harmonics by the Chebyshev recursion sin((k+1)x) = 2cos(x)sin(kx) - sin((k-1)x)
    frames_total = n_samp // HOP + 1
    chunk_frames = 512
    phase0 = rng.uniform(0, 2 * np.pi)
    out = np.zeros(frames_total * HOP, np.float32)
    frac = (np.arange(HOP) / HOP)[None, :]
    bufs = [np.empty((chunk_frames, HOP), np.float32) for _ in range(3)]
    for c0 in range(0, frames_total, chunk_frames):
        c1 = min(frames_total, c0 + chunk_frames)
        nfr = c1 - c0
        f_s = (f0[c0:c1, None] + frac * (f0[c0 + 1:c1 + 1, None] - f0[c0:c1, None])).ravel()
        ph = phase0 + (2 * np.pi / sr) * np.cumsum(f_s)
        phase0 = float(ph[-1] % (2 * np.pi))
        out[c0 * HOP:c1 * HOP] = _harmonic_sum(A[:, c0:c1], ph.reshape(nfr, HOP), [b[:nfr] for b in bufs]).ravel()
    y = out[:n_samp]
    # aspiration noise, following the envelope, high-passed
    if singer.breathiness > 0:
        env_s = np.repeat(env.astype(np.float32), HOP)[:n_samp]
        nz = rng.standard_normal(n_samp, dtype=np.float32)
        nz[1:] -= 0.9 * nz[:-1]
        nz *= env_s
        nz *= singer.breathiness
        y += nz
    return y.astype(np.float32)


# ============================================================================= performance plans

@dataclass
class Segment:
    """A stretch ``[b0, b1)`` of the song's beat timeline sung from version time ``v0`` at ``spb`` s per beat."""

    b0: float
    b1: float
    v0: float
    spb: float

    @property
    def v1(self) -> float:
        return self.v0 + (self.b1 - self.b0) * self.spb


@dataclass
class Performance:
    """How one recording sings the song: segments of the beat timeline, extra (non-song) notes, length."""

    segments: list
    total: float
    key_shift: float
    extra_notes: Notes | None = None     # intro vocalise (not in the original)


@dataclass
class Song:
    """A tune repeated into a song: its notes on a beat timeline (quarter notes)."""

    song_id: str
    tune: Tune
    onset: np.ndarray
    dur: np.ndarray
    pitch: np.ndarray
    bars: np.ndarray
    n_beats: float
    pass_beats: float


def make_song(tune: Tune, song_id: str, n_passes: int, max_beats: float | None = None) -> Song:
    L = tune.length_beats
    on = np.concatenate([tune.onset_beats + i * L for i in range(n_passes)])
    du = np.tile(tune.dur_beats, n_passes)
    pi = np.tile(tune.pitch, n_passes)
    bars = np.concatenate([tune.bars + i * L for i in range(n_passes)])
    n_beats = L * n_passes
    if max_beats is not None and n_beats > max_beats:
        cut = bars[bars <= max_beats]
        end = float(cut[-1]) if len(cut) and cut[-1] > 0 else max_beats
        keep = on < end - 1e-9
        on, du, pi = on[keep], np.minimum(du[keep], end - on[keep]), pi[keep]
        bars = bars[bars < end - 1e-9]
        n_beats = end
    return Song(song_id, tune, on, du, pi, bars, float(n_beats), float(L))


def _phrase_len_bars(bar_s: float, rng) -> int:
    opts = [n for n in (2, 3, 4) if 2.5 <= n * bar_s <= 8.0]
    if not opts:
        opts = [1] if bar_s > 8.0 else [max(1, int(math.ceil(2.5 / bar_s)))]
    return int(rng.choice(opts))


def sing(song: Song, perf: Performance, rng: np.random.Generator) -> Notes:
    """Notes of a performance in seconds, with breath pauses carved at phrase ends (timing kept)."""
    ons, durs, pits, forced = [], [], [], []
    bar_times = []
    for seg in perf.segments:
        m = (song.onset >= seg.b0 - 1e-9) & (song.onset < seg.b1 - 1e-9)
        o = song.onset[m]
        ons.append(seg.v0 + (o - seg.b0) * seg.spb)
        durs.append(np.minimum(song.dur[m], seg.b1 - o) * seg.spb)
        pits.append(song.pitch[m] + perf.key_shift)
        bb = song.bars[(song.bars > seg.b0 + 1e-9) & (song.bars < seg.b1 - 1e-9)]
        bar_times.append(seg.v0 + (bb - seg.b0) * seg.spb)
        forced.append(seg.v1)
    if perf.extra_notes is not None and len(perf.extra_notes):
        ons.append(perf.extra_notes.onset)
        durs.append(perf.extra_notes.dur)
        pits.append(perf.extra_notes.pitch)
    onset = np.concatenate(ons)
    order = np.argsort(onset, kind="stable")
    notes = Notes(onset[order], np.concatenate(durs)[order], np.concatenate(pits)[order])
    # phrase boundaries: every 2-4 bars (2.5-8 s), preferring bars whose last note is long; forced at
    # segment ends (a jump or a gap)
    bars_v = np.sort(np.concatenate(bar_times)) if bar_times else np.zeros(0)
    forced = np.array(sorted(forced))
    bounds = []
    for seg in perf.segments:
        bar_s = seg.spb * (np.median(np.diff(song.bars)) if len(song.bars) > 1 else 4.0)
        cands = bars_v[(bars_v > seg.v0 + 1e-6) & (bars_v < seg.v1 - 1e-6)]
        cur = seg.v0
        while True:
            n = _phrase_len_bars(bar_s, rng)
            target = cur + n * bar_s
            win = cands[(cands > cur + 0.6 * n * bar_s) & (cands < cur + 1.4 * n * bar_s) & (cands < seg.v1 - 2.0)]
            if len(win) == 0:
                break
            # weight by the length of the note ending there
            j = np.searchsorted(notes.onset, win, side="left") - 1
            last_len = np.where(j >= 0, notes.dur[np.clip(j, 0, None)], 0.1)
            wts = last_len ** 2 * np.exp(-np.abs(win - target) / bar_s)
            b = float(rng.choice(win, p=wts / wts.sum()))
            bounds.append(b)
            cur = b
        bounds.append(seg.v1)
    se = notes.sound_end.copy()
    pitch = notes.pitch.copy()
    seg_starts = np.array([s.v0 for s in perf.segments])
    for b in bounds:
        # a gap already follows a segment end: no breath needs carving there
        if np.any(np.isclose(forced, b)) and not np.any(np.abs(seg_starts - b) < 0.05):
            continue
        pause = rng.uniform(0.3, 0.6)
        cut = b - pause
        before = (notes.onset < b - 1e-9) & (se > cut)
        drop = before & (notes.onset > cut - 0.08)
        se[before] = np.minimum(se[before], cut)
        pitch[drop] = np.nan
    se = np.maximum(se, notes.onset)
    out = Notes(notes.onset, notes.dur, pitch, se)
    # dynamics: accents on bar starts, random per note, a gentle arch per phrase
    g = 10 ** (rng.normal(0, 1.0, len(out)) / 20)
    on_bar = np.isin(np.round(out.onset, 4), np.round(bars_v, 4))
    g[on_bar] *= 10 ** (1.5 / 20)
    out.gain = g
    return out


def _alignment(orig: Performance, cov: Performance) -> list:
    """Breakpoints [t_original, t_version] of the map original -> cover (see chadml.data.map_time)."""
    bps: list[list] = []
    if cov.segments and cov.segments[0].v0 > 0:
        bps.append([None, 0.0])
    for cs in cov.segments:
        pieces = []
        for os_ in orig.segments:
            lo, hi = max(cs.b0, os_.b0), min(cs.b1, os_.b1)
            if hi - lo > 1e-9:
                pieces.append((lo, hi, os_))
        pieces.sort(key=lambda x: x[0])
        for lo, hi, os_ in pieces:
            o0 = os_.v0 + (lo - os_.b0) * os_.spb
            o1 = os_.v0 + (hi - os_.b0) * os_.spb
            v0 = cs.v0 + (lo - cs.b0) * cs.spb
            v1 = cs.v0 + (hi - cs.b0) * cs.spb
            if bps:
                lo_, lv = bps[-1]
                if lo_ is not None and v0 > lv + 1e-9:
                    bps.append([None, lv])          # a gap in the cover: content not from the original
                elif lo_ is not None and abs(lo_ - o0) < 1e-9 and abs(lv - v0) < 1e-9:
                    bps.pop()                       # contiguous: one breakpoint
            bps.append([o0, v0])
            bps.append([o1, v1])
    if bps and bps[-1][1] < cov.total:
        bps.append([None, bps[-1][1]])
    return [[None if o is None else round(o, 6), round(v, 6)] for o, v in bps]


def _score_map(perf: Performance) -> list:
    """Breakpoints [song_beat, t_version] (the same format as an alignment, in beats)."""
    bps: list[list] = []
    for s in perf.segments:
        if bps and s.v0 > bps[-1][1] + 1e-9:
            bps.append([None, bps[-1][1]])
        bps.append([s.b0, s.v0])
        bps.append([s.b1, s.v1])
    return [[None if b is None else round(b, 6), round(v, 6)] for b, v in bps]


def plan_original(song: Song, spb: float, key_shift: float, rng) -> Performance:
    lead = rng.uniform(0.3, 1.0)
    segs, v = [], lead
    L = song.pass_beats
    n_passes = int(math.ceil(song.n_beats / L - 1e-9))
    for i in range(n_passes):
        b0, b1 = i * L, min((i + 1) * L, song.n_beats)
        s = spb * rng.uniform(0.98, 1.02)
        segs.append(Segment(b0, b1, v, s))
        v = segs[-1].v1 + rng.uniform(0.6, 1.2)
    total = segs[-1].v1 + rng.uniform(0.5, 1.0)
    return Performance(segs, total, key_shift)


def _bar_span(song: Song, rng, n_bars: int, lo_beat: float) -> tuple[float, float] | None:
    bars = np.concatenate([song.bars, [song.n_beats]])
    starts = [i for i in range(len(bars) - n_bars) if bars[i] >= lo_beat]
    if not starts:
        return None
    i = int(rng.choice(starts))
    return float(bars[i]), float(bars[i + n_bars])


def plan_cover(song: Song, orig_spb: float, key_shift: float, rng, *, tempo_range=(0.85, 1.15)) -> tuple[Performance, dict]:
    """A cover's structure: intro, a skipped and a repeated section, its own tempo; returns (plan, info)."""
    ratio = rng.uniform(*tempo_range)                 # > 1: faster
    spb = orig_spb / ratio
    # beat ranges sung, in order
    ranges = [[i * song.pass_beats, min((i + 1) * song.pass_beats, song.n_beats)]
              for i in range(int(math.ceil(song.n_beats / song.pass_beats - 1e-9)))]
    info = {"tempo_ratio": round(ratio, 4), "key_shift": round(key_shift, 3)}
    bar_beats = float(np.median(np.diff(song.bars))) if len(song.bars) > 1 else 4.0
    n_sec = int(np.clip(round(8.0 / (bar_beats * spb)), 2, 8))       # a section of ~8 s
    u = rng.random()
    do_skip, do_repeat = u < 0.7, u >= 0.35          # skip only, repeat only, or both
    if do_skip:
        span = _bar_span(song, rng, n_sec, lo_beat=min(song.pass_beats, song.n_beats / 3))
        if span is not None:
            s0, s1 = span
            new = []
            for a, b in ranges:
                if b <= s0 or a >= s1:
                    new.append([a, b])
                else:
                    if a < s0:
                        new.append([a, s0])
                    if b > s1:
                        new.append([s1, b])
            ranges = new
            info["skipped"] = [s0, s1]
    if do_repeat:
        # a section inside one of the sung ranges, sung twice in a row
        bars = np.concatenate([song.bars, [song.n_beats]])
        opts = [(i, r) for r, (a, b) in enumerate(ranges) for i in range(len(bars) - n_sec)
                if bars[i] >= a - 1e-9 and bars[i + n_sec] <= b + 1e-9]
        if opts:
            i, r = opts[int(rng.integers(len(opts)))]
            s0, s1 = float(bars[i]), float(bars[i + n_sec])
            a, b = ranges[r]
            ranges[r:r + 1] = [x for x in ([a, s1], [s0, b]) if x[1] - x[0] > 1e-9]
            info["repeated"] = [s0, s1]
    intro = rng.uniform(2.0, 6.0) if rng.random() < 0.7 else 0.0
    v = intro + rng.uniform(0.3, 0.8)
    segs = []
    prev_end_beat = None
    for a, b in ranges:
        if prev_end_beat is not None and abs(a - prev_end_beat) > 1e-9:
            v += 0.0      # a jump (skip/repeat) is sung straight on: the carved breath marks it
        elif prev_end_beat is not None:
            pass
        s = spb * rng.uniform(0.97, 1.03)
        segs.append(Segment(a, b, v, s))
        prev_end_beat = b
        v = segs[-1].v1
        # a gap at the end of each pass
        if abs(b % song.pass_beats) < 1e-9 or abs(b - song.n_beats) < 1e-9:
            v += rng.uniform(0.4, 1.2)
    total = segs[-1].v1 + rng.uniform(0.5, 1.0)
    extra = None
    if intro > 0:
        pset = np.unique(song.pitch[~np.isnan(song.pitch)])
        t, on, du, pi = 0.3, [], [], []
        while t < intro - 0.6:
            d = min(rng.uniform(0.5, 1.2), intro - 0.3 - t)
            on.append(t)
            du.append(d)
            pi.append(float(rng.choice(pset)) + key_shift)
            t += d
        extra = Notes(on, du, pi)
        info["intro"] = round(intro, 4)
    return Performance(segs, total, key_shift, extra), info


def _pitch_centre(song: Song) -> float:
    return float(np.nanmedian(song.pitch))


def _finish(y: np.ndarray, rng, floor_db: float = -85.0) -> np.ndarray:
    """Peak-normalise to 0.9 and add a noise floor ``floor_db`` below the peak (digital near-silence)."""
    y = audio.peak_normalise(y, 0.9)
    block = rng.standard_normal(1 << 15, dtype=np.float32) * np.float32(0.9 * 10 ** (floor_db / 20))
    reps = -(-len(y) // len(block))
    y += np.tile(np.roll(block, int(rng.integers(len(block)))), reps)[:len(y)]
    return y


def _room(y: np.ndarray, rng, sr: int) -> np.ndarray:
    from scipy.signal import fftconvolve
    rt60 = rng.uniform(0.15, 0.5)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 / rng.uniform(0.15, 0.4)         # direct-to-reverberant ratio
    rir /= np.sqrt((rir ** 2).sum())
    return fftconvolve(y, rir)[:len(y)].astype(np.float32)


def _background(n: int, rng, sr: int) -> np.ndarray:
    from scipy.signal import lfilter
    w = rng.standard_normal(n)
    brown = lfilter([1.0], [1, -0.98], w)
    x = 0.6 * brown / (brown.std() + 1e-12) + 0.4 * w
    if rng.random() < 0.3:                        # mains hum
        t = np.arange(n) / sr
        f = rng.choice([50.0, 60.0])
        x = x + 0.5 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 3 * f * t)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def hum(notes: Notes, fs: float, fe: float, key_shift: float, rng, sr: int = audio.SR) -> np.ndarray:
    """An amateur's humming of the original's notes in ``[fs, fe)``, ``fe - fs`` seconds long, aligned."""
    L = fe - fs
    keep = (notes.sound_end > fs + 0.08) & (notes.onset < fe - 0.1) & ~np.isnan(notes.pitch)
    n = notes.take(keep)
    on = np.maximum(n.onset, fs) - fs
    se = np.minimum(n.sound_end, fe) - fs
    dur = np.minimum(n.onset + n.dur, fe) - fs - on
    # uneven timing: a smooth warp fixed at both ends, |shift| <= ~0.12 s, monotone
    amps = rng.uniform(-1, 1, 3) * np.array([0.08, 0.04, 0.025]) * min(1.0, L / 6)
    def warp(t):
        return t + sum(a * np.sin(np.pi * (m + 1) * t / L) for m, a in enumerate(amps))
    on_w, se_w = warp(on), warp(se)
    end_w = warp(on + dur)
    # hesitant start, early stop
    start_delay = rng.uniform(0.0, 0.25)
    on_w = np.maximum(on_w, start_delay)
    se_w = np.minimum(se_w, L - rng.uniform(0.0, 0.2))
    # pitch: own key, per-note errors, occasional wrong notes, compressed intervals
    pitch = n.pitch + key_shift
    centre = np.median(pitch) if len(pitch) else 60.0
    pitch = centre + (pitch - centre) * rng.uniform(0.85, 1.0)
    pitch = pitch + rng.normal(0, rng.uniform(15, 45), len(pitch)) / 100
    wrong = rng.random(len(pitch)) < rng.uniform(0.02, 0.08)
    pitch[wrong] += rng.choice([-2, -1, 1, 2], wrong.sum())
    hn = Notes(on_w, np.maximum(end_w - on_w, 0.0), pitch, np.maximum(se_w, on_w),
               10 ** (rng.normal(0, 2.0, len(pitch)) / 20))
    hummer = Singer.random(rng, hummer=True)
    y = render(hn, hummer, L, rng, sr=sr, drift_cents=rng.uniform(20, 70))
    y = audio.peak_normalise(y, 0.7) if np.any(y) else y
    y = _room(y, rng, sr)
    sig_rms = float(np.sqrt(np.mean(y ** 2))) or 1e-3
    snr = rng.uniform(10, 30)
    y = y + _background(len(y), rng, sr) * (sig_rms * 10 ** (-snr / 20))
    return audio.peak_normalise(y, rng.uniform(0.3, 0.95))


# ============================================================================== the corpus builder

@dataclass
class CorpusPaths:
    """Where :func:`build_corpus` wrote its outputs."""

    root: str
    songs: str         # SongTable CSV: originals and covers, with alignments
    hummings: str      # Manifest CSV: groups of one original fragment and its hummings


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")


def _rng(seed: int, *keys) -> np.random.Generator:
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def _phrase_starts(notes: Notes) -> np.ndarray:
    """Onsets of notes sung after a silence (phrase starts)."""
    sung = ~np.isnan(notes.pitch) & (notes.sound_end > notes.onset)
    on, se = notes.onset[sung], notes.sound_end[sung]
    gap_before = np.concatenate([[np.inf], on[1:] - se[:-1]])
    return on[gap_before > 0.2]


@dataclass
class _SongJob:
    index: int
    song_id: str
    tune: Tune
    out_dir: str
    seed: int
    n_covers: int
    hummings_per_song: int
    hummers: int
    sr: int
    song_seconds: tuple
    humming_seconds: tuple
    split: str
    ext: str


def _plan_and_render(job: _SongJob) -> tuple[list[SongRow], list[FragmentRow], float, float]:
    """Plan one song (deterministic from the seed) and render the files that do not exist yet.

    Returns (song rows, fragment rows, seconds of audio rendered, seconds spent rendering)."""
    rng = _rng(job.seed, job.song_id, "plan")
    tune = job.tune
    spb = 60.0 / (tune.bpm * rng.uniform(0.9, 1.1))
    pass_s = tune.length_beats * spb
    target = rng.uniform(*job.song_seconds)
    n_passes = int(np.clip(round(target / pass_s), 1, 12))
    song = make_song(tune, job.song_id, n_passes, max_beats=job.song_seconds[1] / spb)
    singer = Singer.random(_rng(job.seed, job.song_id, "singer", 0))
    key0 = round(singer.centre - _pitch_centre(song))
    orig = plan_original(song, spb, key0, rng)
    perfs = [("original", f"{job.song_id}-o", orig, singer, {"key_shift": key0, "tempo_ratio": 1.0})]
    for j in range(job.n_covers):
        crng = _rng(job.seed, job.song_id, "cover", j)
        shift = key0 + int(crng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]))
        cplan, info = plan_cover(song, spb, shift, crng)
        csinger = Singer.random(_rng(job.seed, job.song_id, "singer", j + 1))
        perfs.append(("cover", f"{job.song_id}-c{j}", cplan, csinger, info))
    song_dir = os.path.join(job.out_dir, "audio", job.song_id)
    rendered = 0.0
    t_render = 0.0
    song_rows = []
    orig_notes = None
    for kind, vid, perf, sgr, info in perfs:
        prng = _rng(job.seed, vid, "perform")
        notes = sing(song, perf, prng)
        if kind == "original":
            orig_notes = notes
        path = os.path.join(song_dir, vid + job.ext)
        if not os.path.exists(path):
            t0 = time.perf_counter()
            y = _finish(render(notes, sgr, perf.total, _rng(job.seed, vid, "voice"), sr=job.sr),
                        _rng(job.seed, vid, "floor"))
            audio.save(path, y, job.sr)
            t_render += time.perf_counter() - t0
            rendered += perf.total
        al = [[0.0, 0.0], [round(orig.total, 6), round(orig.total, 6)]] if kind == "original" else _alignment(orig, perf)
        extra = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in info.items()}
        extra.update({"tune_id": tune.id, "title": tune.title, "pass_beats": repr(song.pass_beats),
                      "score_map": json.dumps(_score_map(perf), separators=(",", ":"))})
        if kind == "original":      # the tune's notes: the truth of "the same music" (same_music_times)
            extra["tune_notes"] = tune_notes_json(tune)
        song_rows.append(SongRow(job.song_id, vid, kind, path, round(perf.total, 6), job.split, al, extra=extra))
    # hummings: fragments of the original starting at phrase starts
    frag_rows = []
    hrng = _rng(job.seed, job.song_id, "hummings")
    starts = _phrase_starts(orig_notes)
    last_sound = float(np.max(orig_notes.sound_end[~np.isnan(orig_notes.pitch)]))
    hrng.shuffle(starts)
    taken: list[tuple[float, float]] = []
    k = 0
    for s in starts:
        if k >= job.hummings_per_song:
            break
        fs = max(0.0, float(s) - 0.1)
        L = hrng.uniform(*job.humming_seconds)
        fe = min(fs + L, last_sound + 0.2, orig.total)
        fs = round(fs, 4)
        L = math.floor((fe - fs) * 1e4) / 1e4
        fe = round(fs + L, 4)
        if L < job.humming_seconds[0] or any(fs < b and a < fe for a, b in taken):
            continue
        taken.append((fs, fe))
        gid, fid = job.song_id, str(k)
        frag_rows.append(FragmentRow(gid, fid, f"{gid}-{fid}-o", "original", source_id=f"{job.song_id}-o",
                                     start=fs, end=fe, duration=L,
                                     path=os.path.join(song_dir, f"{job.song_id}-o{job.ext}"),
                                     true_offset=fs, split=job.split))
        for h in range(job.hummers):
            hid = f"{gid}-{fid}-h{h}"
            hpath = os.path.join(job.out_dir, "hummings", job.song_id, hid + job.ext)
            hr = _rng(job.seed, hid, "hum")
            shift = float(hr.uniform(-5, 5))
            if not os.path.exists(hpath):
                t0 = time.perf_counter()
                y = hum(orig_notes, fs, fs + L, shift, hr, sr=job.sr)
                audio.save(hpath, y, job.sr)
                t_render += time.perf_counter() - t0
                rendered += L
            frag_rows.append(FragmentRow(gid, fid, hid, "humming", source_id=hid, start=0.0, end=L, duration=L,
                                         path=hpath, true_offset=0.0, split=job.split,
                                         extra={"key_shift": f"{shift:.3f}"}))
        k += 1
    if k < job.hummings_per_song:
        log.info("song %s: %d humming fragments (asked %d): too few phrase starts", job.song_id, k,
                 job.hummings_per_song)
    return song_rows, frag_rows, rendered, t_render


def build_corpus(out_dir: str | os.PathLike, *, n_songs: int = 100, n_covers: int = 2, hummings_per_song: int = 3,
                 hummers: int = 1, seed: int = 0, test_fraction: float = 0.25, sr: int = audio.SR,
                 collections: Sequence[str] = COLLECTIONS, workers: int | None = None,
                 song_seconds: tuple[float, float] = (40.0, 70.0),
                 humming_seconds: tuple[float, float] = (4.0, 20.0), ext: str = ".flac",
                 cache_dir: str | os.PathLike | None = None) -> CorpusPaths:
    """Render the built-in corpus into ``out_dir``: ``songs.csv`` (originals + covers) and ``hummings.csv``.

    Parameters
    ----------
    out_dir : path
        Created if needed. Audio goes to ``audio/<song>/<version>.flac`` and ``hummings/<song>/<id>.flac``.
    n_songs : int
        Songs (one tune each, taken round-robin from ``collections``).
    n_covers : int
        Cover versions per song.
    hummings_per_song, hummers : int
        Humming fragments per song, and hummings per fragment (each a group with the original fragment).
    seed : int
        Everything is a deterministic function of the seed and the tune (not of ``workers`` or order).
    test_fraction : float
        Share of songs held out (``split="test"`` for all their recordings and groups).
    workers : int or None
        Processes rendering songs (None: ``os.cpu_count()``; 0 or 1: in this process).
    song_seconds, humming_seconds : (low, high)
        Target song length, and the length range of humming fragments (seconds).

    Resumable: audio files that exist are finished (written atomically) and are not rendered again; the
    two manifests are written atomically at the end, with ``corpus.json`` (parameters and timings).

    Example
    -------
    >>> p = build_corpus("/tmp/tiny-corpus", n_songs=2, n_covers=1, song_seconds=(15, 20))  # doctest: +SKIP
    """
    for name, v in (("n_songs", n_songs), ("n_covers", n_covers), ("hummings_per_song", hummings_per_song),
                    ("hummers", hummers), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    if n_songs < 1:
        raise ValueError(f"n_songs must be >= 1, got {n_songs}")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    lo, hi = song_seconds
    if not 5.0 <= lo <= hi:
        raise ValueError(f"song_seconds must be (low, high) with 5 <= low <= high, got {song_seconds!r}")
    hlo, hhi = humming_seconds
    if not 1.0 <= hlo <= hhi:
        raise ValueError(f"humming_seconds must be (low, high) with 1 <= low <= high, got {humming_seconds!r}")
    if ext not in (".flac", ".wav"):
        raise ValueError(f"ext must be '.flac' or '.wav', got {ext!r}")
    collections = _check_collections(collections)
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    tunes = load_tunes(collections, limit=n_songs, cache_dir=cache_dir)
    t_tunes = time.perf_counter() - t0
    if len(tunes) < n_songs:
        log.warning("only %d usable tunes in %s (asked %d songs)", len(tunes), collections, n_songs)
    ids = [_slug(t.id) for t in tunes]
    perm = _rng(seed, "split").permutation(len(tunes))
    n_test = int(round(test_fraction * len(tunes)))
    if test_fraction > 0 and n_test == 0 and len(tunes) >= 2:
        n_test = 1
    test_ids = {ids[i] for i in perm[:n_test]}
    jobs = [_SongJob(i, ids[i], t, out_dir, seed, n_covers, hummings_per_song, hummers, sr,
                     (float(lo), float(hi)), (float(hlo), float(hhi)), "test" if ids[i] in test_ids else "train", ext)
            for i, t in enumerate(tunes)]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    results: list = [None] * len(jobs)
    t1 = time.perf_counter()
    bar = progress(total=len(jobs), desc="rendering corpus", unit="song")
    try:
        if workers <= 1 or len(jobs) == 1:
            for j in jobs:
                results[j.index] = _plan_and_render(j)
                bar.update(1)
        else:
            import multiprocessing as mp
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            with ctx.Pool(min(workers, len(jobs))) as pool:
                for j, res in zip(jobs, pool.imap(_plan_and_render, jobs, chunksize=1)):
                    results[j.index] = res
                    bar.update(1)
    finally:
        bar.close()
    wall = time.perf_counter() - t1
    song_rows = [r for res in results for r in res[0]]
    frag_rows = [r for res in results for r in res[1]]
    rendered = sum(res[2] for res in results)
    cpu_render = sum(res[3] for res in results)
    paths = CorpusPaths(out_dir, os.path.join(out_dir, "songs.csv"), os.path.join(out_dir, "hummings.csv"))
    SongTable(song_rows).write(paths.songs)
    Manifest(frag_rows).write(paths.hummings)
    info = {"format_version": CORPUS_FORMAT_VERSION, "seed": seed, "n_songs": len(jobs), "n_covers": n_covers,
            "hummings_per_song": hummings_per_song, "hummers": hummers, "test_fraction": test_fraction, "sr": sr,
            "collections": list(collections), "song_seconds": [lo, hi], "humming_seconds": [hlo, hhi],
            "tunes": [t.id for t in tunes], "timing": {"load_tunes_s": round(t_tunes, 3), "render_wall_s": round(wall, 3),
                                                         "audio_rendered_s": round(rendered, 1),
                                                         "render_cpu_s": round(cpu_render, 3)}}
    atomic_write_text(os.path.join(out_dir, "corpus.json"), json.dumps(info, indent=1))
    if rendered:
        log.info("rendered %.0f s of audio in %.1f s wall (%.0fx real time per process)", rendered, wall,
                 rendered / max(cpu_render, 1e-9))
    return paths


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
    _check_collections((collection,))
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


_SONG_NOTES: dict = {}


def _song_notes(original: SongRow, n_beats: float, L: float) -> np.ndarray:
    """The song's pitched notes (k, 3) ``onset, end, midi`` in song beats: the tune of ``original`` (its
    ``tune_notes`` extra, else :func:`load_tune` of its ``tune_id``) repeated and cut at ``n_beats``."""
    key = (original.extra.get("tune_notes") or original.extra.get("tune_id"), round(n_beats, 6), round(L, 6))
    if key not in _SONG_NOTES:
        if original.extra.get("tune_notes"):
            one = np.asarray(json.loads(original.extra["tune_notes"]), np.float64).reshape(-1, 3)
        elif original.extra.get("tune_id"):
            t = load_tune(original.extra["tune_id"])
            one = np.asarray(json.loads(tune_notes_json(t)), np.float64).reshape(-1, 3)
        else:
            raise ValueError(f"same_music_times needs the tune: version {original.version_id!r} has neither a "
                             "'tune_notes' nor a 'tune_id' extra")
        n_pass = int(math.ceil(n_beats / L - 1e-9))
        on = np.concatenate([one[:, 0] + k * L for k in range(n_pass)])
        end = np.concatenate([one[:, 0] + one[:, 1] + k * L for k in range(n_pass)])
        pit = np.tile(one[:, 2], n_pass)
        keep = on < n_beats - 1e-9
        if len(_SONG_NOTES) > 4096:
            _SONG_NOTES.clear()
        _SONG_NOTES[key] = np.stack([on[keep], np.minimum(end[keep], n_beats), pit[keep]], axis=1)
    return _SONG_NOTES[key]


def _window(notes: np.ndarray, b: float, span: float) -> np.ndarray:
    """The notes sounding in beats ``[b, b + span)``, clipped to it, relative to ``b`` (k, 3)."""
    m = (notes[:, 0] < b + span - 1e-6) & (notes[:, 1] > b + 1e-6)
    w = notes[m].copy()
    w[:, 0] = np.maximum(w[:, 0], b) - b
    w[:, 1] = np.minimum(w[:, 1], b + span) - b
    return w


def same_music_beats(notes: np.ndarray, b: float, span: float, tol: float = 1e-4) -> np.ndarray:
    """Every song beat ``b2`` whose ``span`` beats hold the same notes (pitches and timing) as ``b..b+span``.

    ``notes``: (k, 3) ``onset, end, midi`` in beats. Sorted; includes ``b`` itself.

    Example
    -------
    >>> import numpy as np
    >>> a = [[0, 1, 60], [1, 2, 62], [2, 4, 64]]            # A (4 beats), then B, then A again
    >>> n = np.array(a + [[4, 6, 65], [6, 8, 67]] + [[o + 8, e + 8, p] for o, e, p in a], float)
    >>> same_music_beats(n, 0.5, 3.0).tolist()
    [0.5, 8.5]
    """
    ref = _window(notes, b, span)
    if len(ref) == 0:
        return np.asarray([b])
    # candidates: where a note of the first pitch starting inside the window would line up
    inside = ref[ref[:, 0] > 1e-6]
    first = inside[0] if len(inside) else ref[0]
    cands = notes[np.abs(notes[:, 2] - first[2]) < 1e-3, 0] - first[0]
    out = []
    for c in np.unique(np.round(cands, 6)):
        if c < -1e-6:
            continue
        w = _window(notes, float(c), span)
        if w.shape == ref.shape and np.all(np.abs(w - ref) <= tol):
            out.append(float(c))
    if not any(abs(x - b) < 1e-6 for x in out):
        out.append(float(b))
    return np.asarray(sorted(out))


def same_music_times(original: SongRow, version: SongRow, t_original: float | np.ndarray,
                     duration: float | None = None) -> np.ndarray:
    """Every time in ``version`` where the music sung at ``t_original`` in the original is sung.

    Songs repeat their tune, and tunes repeat their phrases (AABB form, repeats expanded): a fragment of
    the original's first A is the same melody as the second A and as every later pass, so a match there
    is musically right although :func:`chadml.data.map_time` (the same moment of the original
    recording) points elsewhere.

    - ``duration=None``: the places where the same *moment of the tune* is sung (whole passes repeat).
    - ``duration`` (seconds): the places where a fragment of that length starting at ``t_original`` is
      sung with the same notes: its span in song beats (from the original's score map, pauses between
      passes skipped) is compared, note by note (pitch, onset and length in beats), with every other span
      of the song (:func:`same_music_beats`); within-tune repeats count. Only scalar ``t_original``.

    Uses the corpus's ``score_map`` and ``pass_beats`` extras (and the tune: ``tune_notes`` or
    ``tune_id``). Returns shape ``t.shape + (k,)`` sorted, NaN-padded; all NaN where the moment is a pause
    between passes of the original or absent from the version.

    Example
    -------
    >>> same_music_times(orig_row, cover_row, 3.0, duration=10.0)      # doctest: +SKIP
    array([ 5.12, 17.9 , 41.3 ])
    """
    from ..data import inverse_map_time
    t = np.asarray(t_original, np.float64)
    try:
        om = json.loads(original.extra["score_map"])
        vm = json.loads(version.extra["score_map"])
        L = float(version.extra["pass_beats"])
    except KeyError as exc:
        raise ValueError(f"same_music_times needs corpus rows with a {exc.args[0]!r} extra "
                         f"(versions {original.version_id!r}, {version.version_id!r})") from None
    if duration is not None:
        if t.ndim != 0:
            raise ValueError(f"same_music_times with a duration takes one time, got shape {t.shape}")
        if not (isinstance(duration, (int, float)) and duration > 0):
            raise ValueError(f"duration must be a number > 0 (seconds), got {duration!r}")
        b = float(inverse_map_time(om, float(t)))
        if not math.isfinite(b):
            return np.full((1,), np.nan)
        grid = float(t) + np.linspace(0.0, float(duration), max(2, int(math.ceil(duration / 0.02)) + 1))
        beats = inverse_map_time(om, grid)
        span = float(np.nanmax(beats)) - b
        n_beats = max(x for x, _ in om if x is not None)
        notes = _song_notes(original, n_beats, L)
        b2 = same_music_beats(notes, b, max(span, 1e-6))
        vals = map_time(vm, b2, all=True).ravel()
        vals = np.unique(np.round(vals[np.isfinite(vals)], 6))
        return vals if len(vals) else np.full((1,), np.nan)
    beat = inverse_map_time(om, t.ravel())
    pos = np.mod(beat, L)
    n_pass = int(math.ceil(max(b for b, _ in vm if b is not None) / L)) + 1
    cand = pos[:, None] + L * np.arange(n_pass)[None, :]
    vals = map_time(vm, cand.ravel(), all=True).reshape(len(pos), -1)
    vals = np.sort(vals, axis=1)
    keep = ~np.all(np.isnan(vals), axis=0)
    if keep.any():
        vals = vals[:, keep]
    else:
        vals = vals[:, :1]
    # de-duplicate equal times
    if vals.shape[1] > 1:
        dup = np.zeros_like(vals, dtype=bool)
        dup[:, 1:] = np.abs(np.diff(vals, axis=1)) < 1e-6
        vals = np.sort(np.where(dup, np.nan, vals), axis=1)
    return vals.reshape(t.shape + (vals.shape[1],))


__all__ = ["COLLECTIONS", "RESERVED", "Tune", "load_tunes", "default_cache_dir", "Singer", "Notes", "render",
           "build_corpus", "CorpusPaths", "same_music_times", "same_music_beats", "load_tune",
           "tune_notes_json", "VOWELS"]
