"""Performance plans of the built-in corpus: how each recording sings its song.

A :class:`Song` is a tune repeated on a beat timeline; a :class:`Performance` maps stretches of it
(:class:`Segment`) to version time. :func:`plan_original` sings the passes in order with gaps;
:func:`plan_cover` adds an intro, skips and repeats a section and takes its own tempo and key.
:func:`sing` turns a plan into :class:`~chadml.corpus.voice.Notes` with breath pauses, and
:func:`cover_alignment` / :func:`score_map` give the exact time maps (the truth of mining).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .tunes import Tune
from .voice import Notes

__all__ = ["Segment", "Performance", "Song", "make_song", "sing", "cover_alignment", "score_map",
           "plan_original", "plan_cover", "pitch_centre"]

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


def cover_alignment(orig: Performance, cov: Performance) -> list:
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


def score_map(perf: Performance) -> list:
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


def pitch_centre(song: Song) -> float:
    """The median MIDI pitch of the song's notes."""
    return float(np.nanmedian(song.pitch))
