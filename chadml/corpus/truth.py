"""The truth of "the same music" in the built-in corpus: where else a moment or a fragment is sung.

Songs repeat their tune and tunes repeat their phrases, so a fragment of an original is sung at several
places of each version. :func:`same_music_times` finds them from the corpus rows' score maps and the
tune's notes; :func:`same_music_beats` compares spans of notes on the song's beat timeline.
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..data import SongRow, alignment_pieces, inverse_map_time, map_time
from .tunes import load_tune, tune_notes_json

__all__ = ["same_music_times", "same_music_beats"]

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
    out = [float(c) for c in _start_beats(notes, b, span)
           if abs(c - b) < 1e-6 or _same_notes(_window(notes, float(c), span), ref, tol)]
    return np.asarray(out)


def _same_notes(w: np.ndarray, ref: np.ndarray, tol: float) -> bool:
    return w.shape == ref.shape and bool(np.all(np.abs(w - ref) <= tol))


def _start_beats(notes: np.ndarray, b: float, span: float) -> np.ndarray:
    """The song beats (sorted, ``b`` among them) from which the notes of ``b..b+span`` could be sung: where
    a note of the pitch of the window's first note that starts inside it (else its first note) would line
    up. :func:`same_music_beats` keeps those whose own ``span`` beats hold those notes; a version that
    jumps inside the span can sing them from another of these beats (:func:`same_music_times`)."""
    ref = _window(notes, b, span)
    if len(ref) == 0:
        return np.asarray([float(b)])
    inside = ref[ref[:, 0] > 1e-6]
    first = inside[0] if len(inside) else ref[0]
    cands = np.unique(np.round(notes[np.abs(notes[:, 2] - first[2]) < 1e-3, 0] - first[0], 6))
    cands = cands[cands >= -1e-6]
    if not np.any(np.abs(cands - b) < 1e-6):
        cands = np.append(cands, float(b))
    return np.sort(cands)


def _sung_from(pieces: np.ndarray, v: float, b2: float, span: float, tol: float = 1e-6):
    """The song beats a version sings from version time ``v`` (where it sings beat ``b2``) for ``span``
    beats, as ``[(beat, length), ...]`` following its score map's pieces (a pause between pieces keeps
    the beat, a skip or a repeat jumps to the next piece's first beat); None when the version ends first."""
    o0, o1, v0, v1 = pieces.T
    at = np.flatnonzero((v0 - tol <= v) & (v <= v1 + tol) & (o0 - tol <= b2) & (b2 < o1 - tol))
    if len(at) == 0:
        return None
    i, cur, left, out = int(at[0]), b2, span, []
    while True:
        take = min(float(o1[i]) - cur, left)
        out.append((cur, take))
        left -= take
        if left <= tol:
            return out
        i += 1
        if i >= len(pieces):
            return None
        cur = float(o0[i])


def _sings_same(notes: np.ndarray, pieces: np.ndarray, v: float, b2: float, b: float, span: float,
                tol: float = 1e-4) -> bool:
    """True when the version, from version time ``v`` on, sings the notes of song beats ``b..b+span``: its
    path through the score map (:func:`_sung_from`), piece by piece, holds the same notes as the same
    stretch of the reference. A place where the version jumps (a skipped or repeated section) inside the
    span is the same music only if the notes after the jump are the ones the reference goes on with."""
    path = _sung_from(pieces, v, b2, span)
    if path is None:
        return False
    u = 0.0
    for beat, length in path:
        if length > 1e-6:
            w, ref = _window(notes, beat, length), _window(notes, b + u, length)
            if not _same_notes(w, ref, tol):
                return False
        u += length
    return True


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
      passes skipped) is compared, note by note (pitch, onset and length in beats), with what the version
      sings from each place where it could start those notes, following the version's own path: where it
      skips or repeats a section inside the span, the notes after the jump must be the ones the fragment
      goes on with, and a jump onto the fragment's next notes makes a place count although the song's
      straight continuation differs. Within-tune repeats count. Only scalar ``t_original``.

    Uses the corpus's ``score_map`` and ``pass_beats`` extras (and the tune: ``tune_notes`` or
    ``tune_id``). Returns shape ``t.shape + (k,)`` sorted, NaN-padded; all NaN where the moment is a pause
    between passes of the original or absent from the version.

    Example
    -------
    >>> same_music_times(orig_row, cover_row, 3.0, duration=10.0)      # doctest: +SKIP
    array([ 5.12, 17.9 , 41.3 ])
    """
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
        span = max(span, 1e-6)
        pieces = alignment_pieces(vm)
        vals = []
        for b2 in _start_beats(notes, b, span):
            for v in np.ravel(map_time(vm, float(b2), all=True)):
                if math.isfinite(v) and _sings_same(notes, pieces, float(v), float(b2), b, span):
                    vals.append(v)
        vals = np.unique(np.round(np.asarray(vals, np.float64), 6))
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
