"""The searcher's tempo re-scoring (chadml.search.encoder.tempo_rescore) against a plain reference, and its
effect on a query hummed faster or slower than its song; the shared sequence helpers it uses
(chadml.features.windows: lerp_rows, stretch, tempo_grid)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import chadsp
import reference as ref
from _searchkit import fp_index, random_songs
from chadml.features.windows import lerp_rows, stretch, tempo_grid
from chadml.search import Searcher
from chadml.search.encoder import TEMPO_RANGE, TEMPO_STEP, tempo_rescore


def smooth_song(rng, n, dim=32, smooth=6):
    """Unit rows that change slowly (a fingerprint sequence: neighbours overlap)."""
    e = rng.standard_normal((n + smooth, dim)).astype(np.float32)
    c = np.cumsum(e, axis=0)
    x = (c[smooth:] - c[:-smooth])[:n]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def warped_excerpt(song, start, n, rate):
    """``n`` rows of ``song`` from row ``start``, read ``rate`` song rows per query row."""
    return np.ascontiguousarray(lerp_rows(song, start + np.arange(n) * rate), dtype=np.float32)


def reference_rescore(q, data, starts, lengths, scores, lags, ratios, top, slack):
    """The re-scoring written plainly: each selected song, each ratio, each lag of its window, with the
    reference Pearson (tests/reference.py)."""
    scores, lags = np.array(scores, np.float32), np.array(lags, np.int64)
    n = len(q)
    order = [int(i) for i in np.argsort(-scores, kind="stable")[:top]]
    sel = [i for i in order if np.isfinite(scores[i]) and lengths[i] >= n]
    best = {i: (float(scores[i]), int(lags[i])) for i in sel}
    for r in ratios:
        if abs(r - 1.0) < 1e-9:
            continue
        qs = stretch(q, float(r))
        m = len(qs)
        for i in sel:
            centre = lags[i] + (n - 1) / 2.0
            w0 = int(np.round(centre - (m - 1) / 2.0)) - slack
            lo, hi = min(max(w0, 0), lengths[i]), min(max(w0 + m + 2 * slack, 0), lengths[i])
            if hi - lo < m:
                continue
            sc, lg = ref.max_pearson(qs, data[starts[i] + lo:starts[i] + hi])
            if sc > best[i][0] + 1e-5:
                best[i] = (sc, lo + lg)
    for i, (sc, lg) in best.items():
        scores[i], lags[i] = sc, lg
    return scores, lags


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_q=st.integers(2, 14), top=st.integers(0, 6), slack=st.integers(0, 3))
def test_tempo_rescore_matches_the_plain_reference(seed, n_q, top, slack):
    rng = np.random.default_rng(seed)
    songs = [smooth_song(rng, int(rng.integers(1, 40)), dim=8) for _ in range(6)]
    data = np.concatenate(songs)
    lengths = np.array([len(s) for s in songs], np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    q = warped_excerpt(songs[0], 0, n_q, float(rng.uniform(0.8, 1.2))) if len(songs[0]) > 20 else \
        smooth_song(rng, n_q, dim=8)
    scores, lags = chadsp.rerank_ranges(q, data, starts, lengths)
    ratios = tempo_grid(0.8, 1.25, 0.07)
    got_s, got_l = tempo_rescore(q, data, starts, lengths, scores, lags, ratios=ratios, top=top, slack=slack)
    want_s, want_l = reference_rescore(q, data, starts, lengths, scores, lags, ratios, top, slack)
    assert np.allclose(got_s, want_s, atol=1e-4)
    # a lag may differ only where two lags score the same to rounding
    for i in np.flatnonzero(got_l != want_l):
        assert abs(float(got_s[i]) - float(want_s[i])) < 1e-4
    # never below the rigid score; songs outside the top and songs shorter than the query untouched
    assert np.all(got_s >= scores - 1e-6)
    outside = np.argsort(-scores, kind="stable")[top:]
    assert np.array_equal(got_s[outside], scores[outside]) and np.array_equal(got_l[outside], lags[outside])
    short = lengths < n_q
    assert np.array_equal(got_s[short], scores[short])


def test_a_slow_or_fast_query_scores_higher_at_its_tempo_and_keeps_its_place():
    rng = np.random.default_rng(3)
    songs = [smooth_song(rng, 400) for _ in range(5)]
    data = np.concatenate(songs)
    lengths = np.full(5, 400, np.int64)
    starts = np.arange(5, dtype=np.int64) * 400
    for rate in (0.86, 1.16):                    # hummed slower / faster than the song
        q = warped_excerpt(songs[2], 150, 29, rate)
        scores, lags = chadsp.rerank_ranges(q, data, starts, lengths)
        new_s, new_l = tempo_rescore(q, data, starts, lengths, scores, lags)
        assert int(np.argmax(new_s)) == 2
        assert new_s[2] > scores[2] + 0.03 and new_s[2] > 0.97
        assert abs(int(new_l[2]) - 150) <= 1          # the query's start, not the rigid match's
        others = np.delete(np.arange(5), 2)
        assert np.all(new_s[others] < 0.9)
    # a query at the song's tempo keeps its rigid score and lag
    q = warped_excerpt(songs[1], 40, 29, 1.0)
    scores, lags = chadsp.rerank_ranges(q, data, starts, lengths)
    new_s, new_l = tempo_rescore(q, data, starts, lengths, scores, lags)
    assert np.isclose(new_s[1], scores[1]) and new_l[1] == lags[1] == 40
    # nothing to re-score
    e_s, e_l = tempo_rescore(q, data, starts, lengths, scores, lags, top=0)
    assert np.array_equal(e_s, scores) and np.array_equal(e_l, lags)


def test_searcher_tempo_scan_finds_the_start_of_a_slow_query(tmp_path):
    rng = np.random.default_rng(7)
    songs = random_songs(rng, 12, 80, 140)
    songs["target"] = smooth_song(rng, 300, dim=128)
    idx = fp_index(str(tmp_path / "idx"), songs)
    q = warped_excerpt(songs["target"], 100, 29, 0.85)
    rigid = Searcher(idx, k=5).query_fingerprints(q, top=3)
    scan = Searcher(idx, k=5, tempo_scan=True).query_fingerprints(q, top=3)
    assert rigid[0].song_id == scan[0].song_id == "target"
    assert scan[0].score > rigid[0].score
    assert abs(scan[0].time_s - 100 * 0.25) <= 0.25
    with pytest.raises(ValueError, match="tempo_scan"):
        Searcher(idx, tempo_scan="yes")


def test_tempo_grid_and_stretch():
    r = tempo_grid(*TEMPO_RANGE, TEMPO_STEP)
    assert np.isclose(r, 1.0).sum() == 1 and r.min() >= TEMPO_RANGE[0] and r.max() <= TEMPO_RANGE[1]
    assert np.allclose(r[1:] / r[:-1], 1 + TEMPO_STEP)
    assert np.allclose(tempo_grid(1.0, 1.0, 0.1), [1.0])
    for bad in ((1.1, 1.2, 0.1), (0.9, 0.95, 0.1), (0.9, 1.1, 0.0), (0.0, 1.1, 0.1)):
        with pytest.raises(ValueError, match="tempo scan"):
            tempo_grid(*bad)
    x = np.arange(6.0, dtype=np.float32)[:, None]
    assert np.allclose(stretch(x, 2.0)[:, 0], np.arange(11) / 2.0)
    assert np.allclose(lerp_rows(x, np.array([0.25, 4.5, 5.0]))[:, 0], [0.25, 4.5, 5.0])
    with pytest.raises(ValueError, match="ratio"):
        stretch(x, float("nan"))
