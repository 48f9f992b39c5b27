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

from .build import (CORPUS_FORMAT_VERSION, CorpusPaths, build_corpus, derived_rng, original_notes, phrase_starts,
                    plan_song, song_slug)
from .plans import (Performance, Segment, Song, cover_alignment, make_song, pitch_centre, plan_cover, plan_original,
                    score_map, sing)
from .truth import same_music_beats, same_music_times
from .tunes import (COLLECTIONS, HELD_OUT_MODULUS, held_out, MIN_BEATS, MIN_NOTES, RESERVED, TUNE_CACHE_VERSION, Tune, check_collections,
                    default_cache_dir, load_tune, load_tunes, tune_notes_json)
from .voice import (CHOIR_VOICES, HOP, HUM_STYLES, SAMPLED_STYLES, VOWEL_NAMES, VOWELS, WHISTLE_SHIFT, Notes, Singer, amateur_notes, choir, hum, hummer_voice,
                    phone_channel, render, room_and_noise)

__all__ = ["COLLECTIONS", "RESERVED", "Tune", "load_tunes", "default_cache_dir", "Singer", "Notes", "render",
           "build_corpus", "CorpusPaths", "same_music_times", "same_music_beats", "load_tune",
           "tune_notes_json", "VOWELS",
           # the pieces of the builder, for tests and experiments
           "CORPUS_FORMAT_VERSION", "TUNE_CACHE_VERSION", "MIN_NOTES", "MIN_BEATS", "check_collections", "HOP",
           "VOWEL_NAMES", "hum", "Performance", "Segment", "Song", "make_song", "sing", "plan_original",
           "plan_cover", "cover_alignment", "score_map", "pitch_centre", "HUM_STYLES", "SAMPLED_STYLES", "CHOIR_VOICES", "WHISTLE_SHIFT", "choir", "hummer_voice",
           "phone_channel", "room_and_noise", "amateur_notes", "held_out", "HELD_OUT_MODULUS", "plan_song",
           "original_notes", "derived_rng", "song_slug", "phrase_starts"]
