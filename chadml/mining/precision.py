"""Mining precision and recall against the true alignments of generated data (:func:`mining_precision`),
and the true places of an original's moment in a version that it and the per-song results use."""
from __future__ import annotations

import math

import numpy as np

from ..corpus import same_music_times
from ..data import map_time

__all__ = ["mining_precision", "true_starts", "shifted_starts", "nearest"]


def true_starts(alignment, t: float) -> list[float]:
    """Every place in a version where original time ``t`` is sung (a repeated section: several)."""
    if not alignment:
        return []
    v = np.asarray(map_time(alignment, float(t), all=True), dtype=np.float64).ravel()
    return [float(x) for x in v if math.isfinite(x)]


def shifted_starts(fn, t: float, max_shift: float = 2.0, step: float = 0.05) -> list[float]:
    """``fn(t)`` (true places of original time ``t``), or where ``t`` falls where the map is undefined (a
    fragment starting in the breath before the first note, or in a pause between passes), ``fn(t + s) - s``
    for the smallest ``s`` (in ``step`` s, up to ``max_shift``) where it is defined."""
    for k in range(int(round(max_shift / step)) + 1):
        xs = fn(t + k * step)
        if xs:
            return [x - k * step for x in xs]
    return []


def nearest(xs: list[float], x: float):
    """The element of ``xs`` closest to ``x`` (None for no element)."""
    return min(xs, key=lambda y: abs(y - x)) if xs else None


def _same_music_starts(original, version, t: float, duration: float) -> list[float] | None:
    """Every place in ``version`` where the ``duration`` s of music from original time ``t`` are sung with
    the same notes (built-in corpus rows, whose tunes repeat: see ``chadml.corpus.same_music_times``); None
    for rows without that metadata."""
    extra_o, extra_v = getattr(original, "extra", {}) or {}, getattr(version, "extra", {}) or {}
    if not all(k in extra_o and k in extra_v for k in ("score_map", "pass_beats")):
        return None
    v = np.asarray(same_music_times(original, version, float(t), duration=max(float(duration), 1e-3)),
                   dtype=np.float64).ravel()
    return [float(x) for x in v if math.isfinite(x)]


def mining_precision(manifest, songs, tol: float = 0.5) -> dict:
    """Mining precision and recall against the true alignments of generated data.

    A cover fragment is *correct* when its start is within ``tol`` seconds of a true position of its
    original fragment's start in that cover (a start in a breath before the music, where the time map is
    undefined, is mapped through the first defined moment after it, at most 2 s later). Two truths are
    counted:

    - ``*_strict``: the places where that moment of the original recording is sung in the cover
      (``chadml.data.map_time(..., all=True)`` of the cover's alignment: a repeated section counts twice);
    - the headline ``precision``/``recall``: the places where the same *music* is sung: the fragment's
      notes (pitches and durations, over its length in beats) are the notes sung from there. The built-in
      corpus's songs repeat their tune and the tunes repeat their phrases (AABB), and the fragmentation
      keeps only the first of repeated fragments, so a fragment of the first A rightly matches the second
      A and every later pass of the cover (in CHAD such a cover fragment is a correct aligned fragment);
      ``chadml.corpus.same_music_times`` (with ``duration``) gives those places for corpus rows
      (``score_map`` metadata). For other song tables the two truths are the same.

    Precision: the share of relevant cover fragments that are correct. Recall: of the true aligned
    fragments (each mined original fragment x each cover of its song x each true place with the whole
    fragment inside the cover), the share found by a correct relevant fragment. Uncertain fragments are
    counted apart (``uncertain_precision``, ``recall_with_uncertain``).

    Example
    -------
    >>> mining_precision(Manifest.read("mined.csv"), SongTable.read("songs.csv"))   # doctest: +SKIP
    {'precision': 0.97, 'recall': 0.88, 'relevant': 412, 'uncertain': 61, ...}
    """
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0 (seconds), got {tol!r}")
    table = songs.songs()
    version = {}
    for sid, (o, covers) in table.items():
        for c in covers:
            version[str(c.version_id)] = (sid, c)
    cnt = {k: 0 for k in ("rel", "rel_ok", "unc", "unc_ok", "true", "found", "found_any",
                          "rel_ok_s", "unc_ok_s", "true_s", "found_s", "found_any_s")}
    music_used = False
    for key, grows in manifest.groups().items():
        origs = [r for r in grows if r.audio_type == "original"]
        covs = [r for r in grows if r.audio_type == "cover"]
        if not origs or not covs:
            continue
        o = origs[0]
        a, d = float(o.start), float(o.duration)
        for r in covs:
            if str(r.source_id) not in version:
                raise ValueError(f"manifest row {r.id}: source_id {r.source_id!r} is not a cover in the song table")
        sid = version[str(covs[0].source_id)][0]
        orig_row = table[sid][0]
        truths = {}
        for c in table[sid][1]:
            strict = shifted_starts(lambda t: true_starts(c.alignment, t), a)
            music = None
            if _same_music_starts(orig_row, c, a, d) is not None:
                music = shifted_starts(lambda t: _same_music_starts(orig_row, c, t, d - (t - a)), a)
                music_used = True
            truths[str(c.version_id)] = (music if music is not None else strict, strict, float(c.duration))
        for r in covs:
            music, strict, _ = truths[str(r.source_id)]
            ok = any(abs(float(r.start) - x) <= tol for x in music)
            ok_s = any(abs(float(r.start) - x) <= tol for x in strict)
            if r.check_by_crowdsource:
                cnt["unc"] += 1
                cnt["unc_ok"] += ok
                cnt["unc_ok_s"] += ok_s
            else:
                cnt["rel"] += 1
                cnt["rel_ok"] += ok
                cnt["rel_ok_s"] += ok_s
        for vid, (music, strict, dur) in truths.items():
            mine_ = [(float(r.start), bool(r.check_by_crowdsource)) for r in covs if str(r.source_id) == vid]
            for xs, sfx in ((music, ""), (strict, "_s")):
                for x in xs:
                    if x < -tol or x + d > dur + tol:
                        continue
                    cnt["true" + sfx] += 1
                    found = [u for s, u in mine_ if abs(s - x) <= tol]
                    cnt["found" + sfx] += any(not u for u in found)
                    cnt["found_any" + sfx] += bool(found)

    def ratio(x, y):
        return cnt[x] / cnt[y] if cnt[y] else float("nan")
    return {"precision": ratio("rel_ok", "rel"), "recall": ratio("found", "true"),
            "precision_strict": ratio("rel_ok_s", "rel"), "recall_strict": ratio("found_s", "true_s"),
            "relevant": cnt["rel"], "relevant_correct": cnt["rel_ok"], "uncertain": cnt["unc"],
            "uncertain_correct": cnt["unc_ok"], "uncertain_precision": ratio("unc_ok", "unc"),
            "recall_with_uncertain": ratio("found_any", "true"), "true_fragments": cnt["true"],
            "found": cnt["found"], "truth": "same_music" if music_used else "map_time", "tol": float(tol)}
