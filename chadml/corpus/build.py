"""The corpus builder: :func:`build_corpus` plans and renders every song, its covers and its hummings.

Everything is a deterministic function of the seed and the tune (not of the number of processes or
their order); audio files that exist are not rendered again, so an interrupted build resumes.

Example
-------
>>> p = build_corpus("/tmp/tiny-corpus", n_songs=2, n_covers=1, song_seconds=(15, 20))  # doctest: +SKIP
>>> p.songs, p.hummings                                                                  # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import re
import time
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import audio
from ..data import FragmentRow, Manifest, SongRow, SongTable
from ..util import atomic_write_text, progress
from .plans import cover_alignment, make_song, pitch_centre, plan_cover, plan_original, score_map, sing
from .tunes import COLLECTIONS, Tune, check_collections, load_tunes, tune_notes_json
from . import fluid
from .voice import HUM_STYLES, SAMPLED_STYLES, Notes, Singer, hum, render

__all__ = ["CorpusPaths", "build_corpus", "CORPUS_FORMAT_VERSION", "plan_song", "original_notes", "derived_rng",
           "song_slug", "phrase_starts"]

log = logging.getLogger(__name__)

CORPUS_FORMAT_VERSION = 1


def _finish(y: np.ndarray, rng, floor_db: float = -85.0) -> np.ndarray:
    """Peak-normalise to 0.9 and add a noise floor ``floor_db`` below the peak (digital near-silence)."""
    y = audio.peak_normalise(y, 0.9)
    block = rng.standard_normal(1 << 15, dtype=np.float32) * np.float32(0.9 * 10 ** (floor_db / 20))
    reps = -(-len(y) // len(block))
    y += np.tile(np.roll(block, int(rng.integers(len(block)))), reps)[:len(y)]
    return y


@dataclass
class CorpusPaths:
    """Where :func:`build_corpus` wrote its outputs."""

    root: str
    songs: str         # SongTable CSV: originals and covers, with alignments
    hummings: str      # Manifest CSV: groups of one original fragment and its hummings


def song_slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")


def derived_rng(seed: int, *keys) -> np.random.Generator:
    """The corpus's random stream for ``keys`` (a deterministic function of the seed and the keys)."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def phrase_starts(notes: Notes) -> np.ndarray:
    """Onsets of notes sung after a silence (phrase starts)."""
    sung = ~np.isnan(notes.pitch) & (notes.sound_end > notes.onset)
    on, se = notes.onset[sung], notes.sound_end[sung]
    gap_before = np.concatenate([[np.inf], on[1:] - se[:-1]])
    return on[gap_before > 0.2]


def plan_song(tune: Tune, song_id: str, seed: int, song_seconds: tuple[float, float]):
    """The song and its original performance as :func:`build_corpus` plans them (deterministic from the
    seed): ``(song, seconds per beat, singer, key shift, original plan)``."""
    rng = derived_rng(seed, song_id, "plan")
    spb = 60.0 / (tune.bpm * rng.uniform(0.9, 1.1))
    pass_s = tune.length_beats * spb
    target = rng.uniform(*song_seconds)
    n_passes = int(np.clip(round(target / pass_s), 1, 12))
    song = make_song(tune, song_id, n_passes, max_beats=song_seconds[1] / spb)
    singer = Singer.random(derived_rng(seed, song_id, "singer", 0))
    key0 = round(singer.centre - pitch_centre(song))
    return song, spb, singer, key0, plan_original(song, spb, key0, rng)


def original_notes(tune: Tune, song_id: str, seed: int, song_seconds: tuple[float, float] = (40.0, 70.0)):
    """The note events of a song's original recording as :func:`build_corpus` renders them (same plan, same
    seeds), and its length in seconds: ``(Notes, total)``. For other renderings of the same performance."""
    song, _spb, _singer, _key0, orig = plan_song(tune, song_id, seed, tuple(song_seconds))
    return sing(song, orig, derived_rng(seed, f"{song_id}-o", "perform")), orig.total


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
    hum_styles: tuple = ("mm",)
    channel_p: float = 0.0


def _plan_and_render(job: _SongJob) -> tuple[list[SongRow], list[FragmentRow], float, float]:
    """Plan one song (deterministic from the seed) and render the files that do not exist yet.

    Returns (song rows, fragment rows, seconds of audio rendered, seconds spent rendering)."""
    tune = job.tune
    song, spb, singer, key0, orig = plan_song(tune, job.song_id, job.seed, job.song_seconds)
    perfs = [("original", f"{job.song_id}-o", orig, singer, {"key_shift": key0, "tempo_ratio": 1.0})]
    for j in range(job.n_covers):
        crng = derived_rng(job.seed, job.song_id, "cover", j)
        shift = key0 + int(crng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]))
        cplan, info = plan_cover(song, spb, shift, crng)
        csinger = Singer.random(derived_rng(job.seed, job.song_id, "singer", j + 1))
        perfs.append(("cover", f"{job.song_id}-c{j}", cplan, csinger, info))
    song_dir = os.path.join(job.out_dir, "audio", job.song_id)
    rendered = 0.0
    t_render = 0.0
    song_rows = []
    orig_notes = None
    for kind, vid, perf, sgr, info in perfs:
        prng = derived_rng(job.seed, vid, "perform")
        notes = sing(song, perf, prng)
        if kind == "original":
            orig_notes = notes
        path = os.path.join(song_dir, vid + job.ext)
        if not os.path.exists(path):
            t0 = time.perf_counter()
            y = _finish(render(notes, sgr, perf.total, derived_rng(job.seed, vid, "voice"), sr=job.sr),
                        derived_rng(job.seed, vid, "floor"))
            audio.save(path, y, job.sr)
            t_render += time.perf_counter() - t0
            rendered += perf.total
        al = [[0.0, 0.0], [round(orig.total, 6), round(orig.total, 6)]] if kind == "original" else cover_alignment(orig, perf)
        extra = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in info.items()}
        extra.update({"tune_id": tune.id, "title": tune.title, "pass_beats": repr(song.pass_beats),
                      "score_map": json.dumps(score_map(perf), separators=(",", ":"))})
        if kind == "original":      # the tune's notes: the truth of "the same music" (same_music_times)
            extra["tune_notes"] = tune_notes_json(tune)
        song_rows.append(SongRow(job.song_id, vid, kind, path, round(perf.total, 6), job.split, al, extra=extra))
    # hummings: fragments of the original starting at phrase starts
    frag_rows = []
    hrng = derived_rng(job.seed, job.song_id, "hummings")
    starts = phrase_starts(orig_notes)
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
            hr = derived_rng(job.seed, hid, "hum")
            shift = float(hr.uniform(-5, 5))
            srng = derived_rng(job.seed, hid, "style")
            style = str(job.hum_styles[int(srng.integers(len(job.hum_styles)))]) if len(job.hum_styles) > 1 \
                else job.hum_styles[0]
            channel = bool(job.channel_p > 0 and srng.random() < job.channel_p)
            if not os.path.exists(hpath):
                t0 = time.perf_counter()
                y = hum(orig_notes, fs, fs + L, shift, hr, sr=job.sr, style=style, channel=channel)
                audio.save(hpath, y, job.sr)
                t_render += time.perf_counter() - t0
                rendered += L
            frag_rows.append(FragmentRow(gid, fid, hid, "humming", source_id=hid, start=0.0, end=L, duration=L,
                                         path=hpath, true_offset=0.0, split=job.split,
                                         extra={"key_shift": f"{shift:.3f}",
                                                **({"style": style} if style != "mm" else {})}))
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
                 cache_dir: str | os.PathLike | None = None, tunes: Sequence[Tune] | None = None,
                 hum_styles: Sequence[str] = ("mm",), channel_p: float = 0.0) -> CorpusPaths:
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
    tunes : sequence of Tune, optional
        The melodies (the first ``n_songs``) instead of the first ``n_songs`` of ``collections``.
    hum_styles : sequence of str
        The voices of the hummings (:data:`chadml.corpus.HUM_STYLES`), one drawn per humming; the default
        ``("mm",)`` is the demo's closed-mouth humming.
    channel_p : float
        The share of hummings recorded through a phone-like channel (band limits, clipping).

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
    hum_styles = tuple(hum_styles)
    bad = [s for s in hum_styles if s not in HUM_STYLES]
    if not hum_styles or bad:
        raise ValueError(f"hum_styles must be a non-empty subset of {HUM_STYLES}, got {hum_styles!r}")
    if any(s in SAMPLED_STYLES for s in hum_styles):
        fluid.training_soundfonts()          # fluidsynth and a training soundfont, or one line saying so
    if not 0.0 <= float(channel_p) <= 1.0:
        raise ValueError(f"channel_p must be in [0, 1], got {channel_p!r}")
    if ext not in (".flac", ".wav"):
        raise ValueError(f"ext must be '.flac' or '.wav', got {ext!r}")
    collections = check_collections(collections)
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    tunes = list(tunes)[:n_songs] if tunes is not None else load_tunes(collections, limit=n_songs, cache_dir=cache_dir)
    t_tunes = time.perf_counter() - t0
    if len(tunes) < n_songs:
        log.warning("only %d usable tunes in %s (asked %d songs)", len(tunes), collections, n_songs)
    ids = [song_slug(t.id) for t in tunes]
    perm = derived_rng(seed, "split").permutation(len(tunes))
    n_test = int(round(test_fraction * len(tunes)))
    if test_fraction > 0 and n_test == 0 and len(tunes) >= 2:
        n_test = 1
    test_ids = {ids[i] for i in perm[:n_test]}
    jobs = [_SongJob(i, ids[i], t, out_dir, seed, n_covers, hummings_per_song, hummers, sr,
                     (float(lo), float(hi)), (float(hlo), float(hhi)), "test" if ids[i] in test_ids else "train", ext,
                     tuple(hum_styles), float(channel_p))
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
