"""Algorithm 1 (chadml.mining): fragmentation, uniqueness, matching, resumable mining, engines, bad input."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mining_data as md

import chadsp
from chadml import ChadError
from chadml.mining import (Embedding, MiningConfig, consensus_shift, correlation_matrix, cross_check, embed,
                           fragment_fingerprints, key_shift,
                           fragment_grid, fragmentation, match_fragment, mine, mine_song, mining_precision,
                           read_summary, unique_fragments)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = md.SR


@pytest.fixture(scope="module")
def fp():
    return md.FeatureFingerprinter()


@pytest.fixture(scope="module")
def songs_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("songs")
    table, truth = md.make_songs(str(d), n_songs=3, n_covers=2)
    path = str(d / "songs.csv")
    table.write(path)
    return d, path, table, truth


# ----------------------------------------------------------------------------------------------- config
def test_config_defaults_are_the_papers_and_roundtrip():
    c = MiningConfig()
    assert (c.d_min, c.d_max) == (8.0, 20.0)
    assert c.pauses == (0.5, 1.0, 1.5)
    assert c.db_levels == (52.0, 56.0, 60.0, 64.0, 68.0)
    assert (c.alpha_corr, c.beta_rel, c.beta_irrel) == (0.8, 0.5, 0.3)
    d = json.loads(json.dumps(c.to_dict()))
    assert MiningConfig.from_dict(d) == c
    with pytest.raises(ValueError, match="beta_irrel"):
        MiningConfig(beta_rel=0.3, beta_irrel=0.5)
    with pytest.raises(ValueError, match="d_min"):
        MiningConfig(d_min=21.0)
    with pytest.raises(ValueError, match="embed"):
        MiningConfig(embed="both")
    with pytest.raises(ValueError, match="MiningConfig has unknown key"):
        MiningConfig.from_dict({"dmin": 3})
    # the matching defaults go beyond the paper (measured: see MiningConfig); paper() is the paper's
    assert (c.standardize, c.tempo_scan, c.tempo_range, c.tempo_step, c.peak_margin) == (True, True, (0.8, 1.25), 0.03, 0.05)
    assert (c.block_min, c.context_min, c.cross_check, c.key_check) == (0.7, 0.7, None, False)
    p = MiningConfig.paper()
    assert not (p.center or p.standardize or p.fit_tempo or p.verify_tempo or p.refine or p.key_check or p.tempo_scan)
    assert p.peak_margin is None and p.cross_check is None and p.verify_min is None
    assert p.block_min is None and p.context_min is None
    # rigid(): chad's matching before the tempo scan (the release's loop mines with it)
    r = MiningConfig.rigid()
    assert (r.tempo_scan, r.fit_tempo, r.verify_tempo, r.verify_min, r.cross_check, r.key_check) == \
        (False, True, True, 0.75, 0.05, True)
    assert (r.standardize, r.peak_margin, r.block_min, r.context_min) == (True, 0.05, None, None)
    for bad in ({"tempo_range": (1.1, 1.3)}, {"tempo_range": (0.8,)}, {"tempo_range": (0.1, 1.2)}):
        with pytest.raises(ValueError, match="tempo_range"):
            MiningConfig(**bad)
    for bad in (0.0, float("nan"), True):
        with pytest.raises(ValueError, match="tempo_step"):
            MiningConfig(tempo_step=bad)
    with pytest.raises(ValueError, match="block_min"):
        MiningConfig(block_min=1.5)
    with pytest.raises(ValueError, match="context_min"):
        MiningConfig(context_min=float("nan"))
    with pytest.raises(TypeError, match="tempo_scan"):
        MiningConfig(tempo_scan=1)
    assert (p.d_min, p.beta_rel, p.alpha_corr) == (c.d_min, c.beta_rel, c.alpha_corr)


# ---------------------------------------------------------------------------------------- fragmentation
def test_unique_fragments_drops_the_later_of_each_close_pair():
    c = np.array([[1.0, 0.9375, 0.1, 0.875],
                  [0.9375, 1.0, 0.2, 0.1],
                  [0.1, 0.2, 1.0, 0.3],
                  [0.875, 0.1, 0.3, 1.0]], np.float32)
    # 1 is a copy of 0, 3 of 0: both dropped; 2 kept; exactly alpha stays (not "higher than")
    assert unique_fragments(c, 0.8).tolist() == [0, 2]
    assert unique_fragments(c, 0.875).tolist() == [0, 2, 3]
    assert unique_fragments(np.eye(3), 0.8).tolist() == [0, 1, 2]


def test_correlation_matrix_is_max_pearson_with_shorter_as_query():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 16)).astype(np.float32)
    b = rng.standard_normal((25, 16)).astype(np.float32)
    c = correlation_matrix([a, b, a[7:30] + 0.1 * rng.standard_normal((23, 16)).astype(np.float32)])
    assert c.shape == (3, 3) and np.allclose(c, c.T) and np.allclose(np.diag(c), 1)
    assert c[0, 1] == pytest.approx(chadsp.max_pearson(b, a)[0], abs=1e-6)
    assert c[0, 2] > 0.95 and abs(c[0, 1]) < 0.3


def test_fragmentation_finds_known_phrases_and_drops_the_repeat(fp):
    rng = np.random.default_rng(7)
    p0, p1, p2 = md.phrase(rng, 9.0), md.phrase(rng, 11.0), md.phrase(rng, 8.5)
    # p1 has a 0.3 s breath inside: bridged by every pause length; the repeat of p0 must be dropped
    p1 = np.concatenate([p1[: 5 * SR], md.silence(0.3), p1[5 * SR:]])
    y, bounds = md.vocal([1.0, p0, 2.0, p1, 2.0, p0, 2.0, p2, 1.0])
    grid = fragment_grid(y, MiningConfig())
    assert [g for g, _ in grid][:6] == [(0.5, 52.0), (0.5, 56.0), (0.5, 60.0), (0.5, 64.0), (0.5, 68.0), (1.0, 52.0)]
    assert len(grid) == 15
    emb = embed(fp, y)
    frag = fragmentation(y, emb, MiningConfig(), fingerprinter=fp)
    expect = [bounds[0], bounds[1], bounds[3]]      # bounds[2] is the repeat of p0
    assert frag.fragments.shape == (3, 2)
    # RMS frames of 512 samples with 2048-sample windows: edges within 0.15 s
    assert np.allclose(frag.fragments, np.asarray(expect), atol=0.15), frag.fragments
    # every grid point gives the same 4 candidates here, so the first grid point is kept (line 12 tie rule)
    assert (frag.pause, frag.db_level) == (0.5, 52.0)
    assert all(g["candidates"] == 4 and g["unique"] == 3 for g in frag.grid)
    assert len(frag.fingerprints) == 3 and all(len(f) > 0 for f, _ in frag.fingerprints)


def test_fragmentation_picks_the_grid_point_with_most_unique_fragments(fp):
    rng = np.random.default_rng(11)
    # three 6 s phrases, 0.8 s apart: alone each is shorter than d_min; a 1.0 s pause merges two at a time
    # (12.8 s) but not three (19.6 s <= 20 s: merged as one by 1.0 and 1.5) -- so the count per pause differs
    ps = [md.phrase(rng, 6.0) for _ in range(5)]
    y, _ = md.vocal([1.0, ps[0], 0.8, ps[1], 3.0, ps[2], 0.8, ps[3], 3.0, ps[4], 1.0])
    frag = fragmentation(y, embed(fp, y), MiningConfig(), fingerprinter=fp)
    counts = {(g["pause"], g["db_level"]): g["unique"] for g in frag.grid}
    assert counts[(0.5, 52.0)] == 0            # nothing bridges a 0.8 s pause
    assert counts[(1.0, 52.0)] == 2            # [p0 p1], [p2 p3]
    assert frag.pause == 1.0 and len(frag.fragments) == 2


class _Biased:
    """A fingerprinter whose every window shares a large common component (a weak model)."""

    def __init__(self, fp):
        self.fp, self.window_config = fp, fp.window_config
        self.bias = np.random.default_rng(9).standard_normal(128).astype(np.float32) * 0.5

    def from_audio(self, audio, sr=SR):
        z, s = self.fp.from_audio(audio, sr)
        return z + self.bias, s


def test_center_removes_a_component_shared_by_all_windows(fp):
    rng = np.random.default_rng(7)
    y, bounds = md.vocal([1.0, md.phrase(rng, 9.0), 2.0, md.phrase(rng, 11.0), 2.0, md.phrase(rng, 8.5), 1.0])
    biased = _Biased(fp)
    plain = fragmentation(y, embed(biased, y), MiningConfig(), fingerprinter=biased)
    assert len(plain.fragments) == 1            # every pair of fragments correlates above alpha_corr
    emb = embed(biased, y, center=True)
    assert np.abs(emb.fps.mean(axis=0)).max() < 1e-5
    centred = fragmentation(y, emb, MiningConfig(center=True), fingerprinter=biased)
    assert len(centred.fragments) == 3
    # a fragment embedded on its own has the recording's mean removed too
    own, _ = fragment_fingerprints(emb, 1.0, 10.0, y=y, fingerprinter=biased, mode="fragment")
    assert np.abs(own.mean(axis=0)).max() < 0.2


def test_silent_or_short_original_gives_no_fragment(fp):
    y = md.silence(30.0)
    assert all(len(iv) <= 1 for _, iv in fragment_grid(y))
    rng = np.random.default_rng(0)
    y, _ = md.vocal([1.0, md.phrase(rng, 5.0), 1.0])
    frag = fragmentation(y, embed(fp, y), MiningConfig(), fingerprinter=fp)
    assert len(frag.fragments) == 0 and frag.pause is None


# -------------------------------------------------------------------------------------------- embedding
def test_slice_offsets_and_fallback(fp):
    rng = np.random.default_rng(5)
    y, _ = md.vocal([1.0, md.phrase(rng, 12.0), 1.0])
    emb = embed(fp, y)
    step = emb.step_s
    fps, off = fragment_fingerprints(emb, 1.1, 11.0)
    assert 0 <= off < step + 1e-9
    i0 = int(np.searchsorted(emb.starts, 1.1 - 1e-3))
    assert np.array_equal(fps, emb.fps[i0:i0 + len(fps)])
    assert emb.starts[i0 + len(fps) - 1] + emb.window_s <= 11.0 + 1e-3
    own = fp.from_audio(y[int(1.1 * SR):int(11.0 * SR)])[0]
    assert len(own) - 1 <= len(fps) <= len(own)
    fps2, off2 = fragment_fingerprints(emb, 1.1, 11.0, y=y, fingerprinter=fp, mode="fragment")
    assert off2 == 0.0 and np.array_equal(fps2, own)
    # on the track's window grid the slice is the fragment's own pass up to the features' edge context
    a = float(emb.starts[6])
    fa, oa = fragment_fingerprints(emb, a, a + 9.0)
    own = fp.from_audio(y[int(round(a * SR)):int(round((a + 9.0) * SR))])[0]
    assert oa == 0.0 and len(fa) == len(own)
    cos = np.sum(fa * own, axis=1)
    assert np.median(cos) > 0.95, cos


# --------------------------------------------------------------------------------------------- matching
def _grid(n, step=0.25):
    return np.arange(n) * step


def test_match_finds_planted_fragment_at_the_right_lag():
    """Fingerprint level, no model: the cover is the original's slice plus noise at a known offset."""
    rng = np.random.default_rng(42)
    orig = rng.standard_normal((300, 32)).astype(np.float32)
    frag = orig[100:160]                                  # windows 100..159 of the original
    cover = 0.8 * rng.standard_normal((400, 32)).astype(np.float32)
    cover[230:290] = frag + 0.3 * rng.standard_normal((60, 32)).astype(np.float32)       # relevant
    cover[40:100] = 0.45 * frag + 0.9 * rng.standard_normal((60, 32)).astype(np.float32)  # uncertain
    emb = Embedding(cover, _grid(400), 3.0, 400 * 0.25 + 2.75)
    offset = 0.1                                          # the fragment starts 0.1 s before its first window
    dur = 60 * 0.25 + 2.75 + offset
    m = match_fragment(frag, offset, dur, emb, MiningConfig.rigid())
    assert [x.lag for x in m] == [40, 230]
    assert [x.relevant for x in m] == [False, True]
    assert m[1].score > 0.9 and 0.3 <= m[0].score < 0.5
    assert m[1].start == pytest.approx(230 * 0.25 - offset, abs=0.01)     # fit_tempo: between steps
    assert all(x.end - x.start == pytest.approx(dur, rel=0.01) for x in m)   # tempo ratio 1 (+- 1 %)
    # with beta_irrel above the uncertain match, only the relevant one is left
    m2 = match_fragment(frag, offset, dur, emb, MiningConfig.rigid(MiningConfig(beta_irrel=m[0].score + 0.01)))
    assert [x.lag for x in m2] == [230]
    # the tempo scan finds the same two, the relevant one at ratio 1, in place
    s = match_fragment(frag, offset, dur, emb)
    assert [(x.lag, x.relevant) for x in s] == [(40, False), (230, True)]
    assert s[1].start == pytest.approx(230 * 0.25 - offset) and s[1].end - s[1].start == pytest.approx(dur)


def test_match_refine_places_between_steps():
    rng = np.random.default_rng(0)
    # smooth sequences (so neighbouring lags correlate): a half-step shift is recovered by the parabola
    from scipy.ndimage import gaussian_filter1d
    fine = gaussian_filter1d(rng.standard_normal((801, 24)), sigma=2.0, axis=0).astype(np.float32)
    seq, half = fine[0::2], np.ascontiguousarray(fine[1::2])    # a step is 2 fine samples; half: +1/2 step
    frag = seq[100:140]                                         # fine 200.. = half-index 99.5 = 24.875 s
    emb = Embedding(half, _grid(len(half)), 3.0, len(half) * 0.25 + 2.75)
    rigid = dataclasses.replace(MiningConfig.rigid(), beta_irrel=0.9, beta_rel=0.9, fit_tempo=False)
    plain = match_fragment(frag, 0.0, 12.5, emb, rigid)
    refined = match_fragment(frag, 0.0, 12.5, emb, dataclasses.replace(rigid, refine=True))
    assert len(plain) == len(refined) == 1
    assert abs(refined[0].start - 24.875) < abs(plain[0].start - 24.875)
    # the tempo scan places its matches between steps by itself (the line through the best correlation)
    scan = match_fragment(frag, 0.0, 12.5, emb, MiningConfig(beta_irrel=0.9, beta_rel=0.9))
    assert len(scan) == 1 and abs(scan[0].start - 24.875) < 0.07


def _sung_at(fp, tempo, standardize=False):
    """An original singing a 14 s melody from 1 s, and a cover singing it ``tempo`` times slower from 2 s:
    their embeddings."""
    rng = np.random.default_rng(21)
    notes = md.melody(rng, 14.0)
    y, _ = md.vocal([1.0, md.sing(notes), 1.0])
    cover, _ = md.vocal([2.0, md.sing(notes, tempo=tempo), 4.0])
    return embed(fp, y, standardize=standardize), embed(fp, cover, standardize=standardize)


@pytest.mark.parametrize("tempo", [0.87, 1.15])
def test_fit_tempo_places_the_start_of_a_faster_or_slower_cover(fp, tempo):
    emb, emb_c = _sung_at(fp, tempo)
    a, b = 1.0, 15.0
    fps, off = fragment_fingerprints(emb, a, b)
    truth = 2.0                                        # the cover sings the fragment's start at 2.0 s
    paper = MiningConfig.paper(MiningConfig(beta_rel=0.4, beta_irrel=0.3))
    rigid = match_fragment(fps, off, b - a, emb_c, paper)
    fitted = match_fragment(fps, off, b - a, emb_c, dataclasses.replace(paper, fit_tempo=True))
    assert len(rigid) == len(fitted) == 1
    # a rigid match aligns the middle: the start is off by about (tempo - 1) * d / 2
    assert abs(rigid[0].start - truth) > 0.5
    assert abs(fitted[0].start - truth) < 0.3, (rigid[0].start, fitted[0].start)
    # the fitted cover fragment spans the fragment's music at the cover's tempo (md.sing: tempo x slower)
    assert rigid[0].end - rigid[0].start == pytest.approx(b - a)
    assert fitted[0].end - fitted[0].start == pytest.approx((b - a) * tempo, rel=0.04)
    assert abs(fitted[0].end - (truth + (b - a) * tempo)) < 0.5


def _smooth(rng, n, d=24, sigma=2.0):
    from scipy.ndimage import gaussian_filter1d
    return np.ascontiguousarray(gaussian_filter1d(rng.standard_normal((n, d)), sigma=sigma, axis=0), dtype=np.float32)


def test_tempo_ratios_and_stretch():
    from chadml.mining import stretch, tempo_ratios
    r = tempo_ratios(MiningConfig())
    assert np.isclose(r, 1.0).sum() == 1 and r.min() >= 0.8 and r.max() <= 1.25
    assert np.allclose(r[1:] / r[:-1], 1.03)
    assert np.allclose(tempo_ratios(MiningConfig(tempo_range=(1.0, 1.0))), [1.0])
    x = np.arange(10.0, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    assert np.array_equal(stretch(x, 1.0), x)
    y = stretch(x, 2.0)                                   # sung twice as slow: every half step interpolated
    assert len(y) == 19 and np.allclose(y[:, 0], np.arange(19) / 2.0)
    z = stretch(x, 0.5)                                   # twice as fast: every other row
    assert np.allclose(z[:, 0], [0, 2, 4, 6, 8])
    with pytest.raises(ValueError, match="ratio"):
        stretch(x, 0.0)


@pytest.mark.parametrize("k", [-5, 0, 4])
def test_tempo_curve_finds_a_stretched_copy_at_its_ratio(k):
    from chadml.mining import stretch, tempo_curve, tempo_ratios
    rng = np.random.default_rng(30 + k)
    frag = _smooth(rng, 48)
    ratio = 1.03 ** k
    sung = stretch(frag, ratio)
    cover = _smooth(rng, 300)
    cover[120:120 + len(sung)] = sung
    curve, best = tempo_curve(frag, cover, tempo_ratios(MiningConfig()))
    assert int(np.argmax(curve)) == 120 and curve[120] > 0.999 and best[120] == pytest.approx(ratio)
    # lags where no stretch of the fragment fits are -inf
    shortest = len(stretch(frag, tempo_ratios(MiningConfig())[0]))
    assert np.all(np.isinf(curve[len(cover) - shortest + 1:])) and np.all(np.isfinite(curve[:len(cover) - shortest + 1]))


@pytest.mark.parametrize("tempo", [0.87, 1.15])
def test_tempo_scan_places_and_scores_a_faster_or_slower_cover(fp, tempo):
    emb, emb_c = _sung_at(fp, tempo, standardize=True)
    a, b = 1.0, 15.0
    fps, off = fragment_fingerprints(emb, a, b)
    rigid = match_fragment(fps, off, b - a, emb_c, MiningConfig.paper(MiningConfig(standardize=True)))
    scan = [m for m in match_fragment(fps, off, b - a, emb_c, context=(emb, a, b)) if m.relevant]
    assert len(scan) == 1
    assert abs(scan[0].start - 2.0) < 0.3, scan             # the cover sings the fragment's start at 2.0 s
    assert scan[0].end - scan[0].start == pytest.approx((b - a) * tempo, rel=0.04)
    assert scan[0].score > max(m.score for m in rigid) + 0.05    # the whole fragment in line, not its middle


def test_block_check_demotes_a_cover_that_jumps_inside_the_fragment():
    from chadml.mining import block_score
    rng = np.random.default_rng(8)
    frag = _smooth(rng, 60)
    cover = _smooth(rng, 400)
    cover[50:110] = frag                                   # sung whole
    cover[200:260] = frag
    cover[228:240] = _smooth(rng, 12)                      # sung with 3 s of other music in its middle
    emb = Embedding(cover, _grid(400), 3.0, 400 * 0.25 + 2.75)
    cfg = MiningConfig(block_min=0.7, peak_margin=None, context_min=None)
    m = {x.lag: x for x in match_fragment(frag, 0.0, 17.75, emb, cfg)}
    assert m[50].relevant and not m[200].relevant and m[200].score > 0.5
    assert block_score(frag, 0.0, emb, 12.5, 1.0) > 0.99 > 0.5 > block_score(frag, 0.0, emb, 50.0, 1.0)
    off = {x.lag: x.relevant for x in match_fragment(frag, 0.0, 17.75, emb, dataclasses.replace(cfg, block_min=None))}
    assert off[50] and off[200]


def test_context_check_demotes_a_near_repeat_among_other_phrases():
    from chadml.mining import context_score
    rng = np.random.default_rng(9)
    x, a_, y_, z = _smooth(rng, 40), _smooth(rng, 40), _smooth(rng, 40), _smooth(rng, 40)
    orig = np.concatenate([x, a_, y_, z])                  # X A Y Z; the fragment is A (windows 40..79)
    emb_o = Embedding(orig, _grid(160), 3.0, 160 * 0.25 + 2.75)
    a, b = 10.0, 10.0 + 39 * 0.25 + 3.0
    cover = np.concatenate([_smooth(rng, 40), x, a_, y_, _smooth(rng, 40), a_, _smooth(rng, 40)])
    emb_c = Embedding(cover, _grid(len(cover)), 3.0, len(cover) * 0.25 + 2.75)
    cfg = MiningConfig(context_min=0.7, peak_margin=None)
    m = {x_.lag: x_.relevant for x_ in match_fragment(a_, 0.0, b - a, emb_c, cfg, context=(emb_o, a, b))}
    assert m == {80: True, 200: False}                     # A among X and Y, and A among other music
    assert context_score(emb_o, a, b, emb_c, 20.0, 1.0) > 0.99
    assert context_score(emb_o, a, b, emb_c, 50.0, 1.0) < 0.5
    # without the original (no context given) or with the check off, both are relevant
    assert all(x_.relevant for x_ in match_fragment(a_, 0.0, b - a, emb_c, cfg))
    assert all(x_.relevant for x_ in match_fragment(a_, 0.0, b - a, emb_c, dataclasses.replace(cfg, context_min=None),
                                                     context=(emb_o, a, b)))
    # a fragment that is the whole original has no context: the check passes it
    whole = Embedding(a_, _grid(40), 3.0, 40 * 0.25 + 2.75)
    assert context_score(whole, 0.0, 12.75, emb_c, 50.0, 1.0) is None


def test_tempo_scan_degenerate_inputs_give_no_crash_and_no_nan():
    rng = np.random.default_rng(12)
    one = rng.standard_normal((1, 8)).astype(np.float32)
    m = match_fragment(one, 0.0, 3.0, Embedding(one.copy(), np.array([0.0]), 3.0, 3.0))
    assert len(m) == 1 and not m[0].relevant and np.isfinite([m[0].start, m[0].end, m[0].score]).all()
    frag = _smooth(rng, 40, d=8)
    whole = Embedding(frag, _grid(40), 3.0, 40 * 0.25 + 2.75)          # the fragment is the whole original
    m = match_fragment(frag, 0.0, 12.75, whole, context=(whole, 0.0, 12.75))
    assert [(x.lag, x.relevant) for x in m] == [(0, True)] and m[0].score > 0.999
    with pytest.raises(ValueError, match="fewer than the fragment"):
        match_fragment(frag, 0.0, 12.75, Embedding(frag[:30], _grid(30), 3.0, 30 * 0.25 + 2.75))


def test_standardize_gives_unit_variance_dimensions_also_to_fragments_embedded_alone(fp):
    rng = np.random.default_rng(7)
    y, _ = md.vocal([1.0, md.phrase(rng, 9.0), 2.0, md.phrase(rng, 11.0), 1.0])
    biased = _Biased(fp)
    emb = embed(biased, y, standardize=True)
    assert np.abs(emb.fps.mean(axis=0)).max() < 1e-4
    moving = emb.fps.std(axis=0) > 0
    assert np.allclose(emb.fps.std(axis=0)[moving], 1.0, atol=1e-3)
    raw = biased.from_audio(y)[0]
    own, _ = fragment_fingerprints(emb, 1.0, 10.0, y=y, fingerprinter=biased, mode="fragment")
    sliced, off = fragment_fingerprints(emb, 1.0, 10.0, y=y, fingerprinter=biased)
    # the fragment's own pass gets the recording's mean and scale: it matches its slice near perfectly
    assert np.allclose(emb.fps, (raw - emb.mean) / emb.scale, atol=1e-4)
    assert chadsp.max_pearson(own[1:-1], sliced)[0] > 0.9
    with pytest.raises(TypeError, match="standardize"):
        MiningConfig(standardize=1)


def _cover_with(frag, places, rng, n=200, noise=None):
    c = rng.standard_normal((n, frag.shape[1])).astype(np.float32)
    for lag, amount in places:
        c[lag:lag + len(frag)] = frag + amount * rng.standard_normal(frag.shape).astype(np.float32)
    return Embedding(c, _grid(n), 3.0, n * 0.25 + 2.75)


def test_peak_margin_keeps_true_repeats_and_demotes_weaker_side_peaks():
    rng = np.random.default_rng(3)
    frag = rng.standard_normal((30, 16)).astype(np.float32)
    cover = _cover_with(frag, [(20, 0.05), (80, 0.05), (140, 1.2)], rng)     # two repeats, one side peak
    paper = MiningConfig.paper()
    plain = match_fragment(frag, 0.0, 10.0, cover, paper)
    assert [(m.lag, m.relevant) for m in plain] == [(20, True), (80, True), (140, True)]
    assert 0.5 < plain[2].score < 0.8
    margin = match_fragment(frag, 0.0, 10.0, cover, dataclasses.replace(paper, peak_margin=0.1))
    assert [(m.lag, m.relevant) for m in margin] == [(20, True), (80, True), (140, False)]
    assert [m.score for m in margin] == [m.score for m in plain]
    with pytest.raises(ValueError, match="peak_margin"):
        MiningConfig(peak_margin=-0.1)


def test_verify_tempo_demotes_a_peak_whose_ends_do_not_match():
    rng = np.random.default_rng(4)
    frag = rng.standard_normal((30, 16)).astype(np.float32)
    half = frag.copy()
    half[:10] = rng.standard_normal((10, 16))            # only the middle and the end are in the cover
    cover = _cover_with(half, [(50, 0.05)], rng)
    cover.fps[100:130] = frag                            # ... and the whole fragment later
    fit = dataclasses.replace(MiningConfig.paper(), fit_tempo=True)
    plain = match_fragment(frag, 0.0, 10.0, cover, fit)
    verified = match_fragment(frag, 0.0, 10.0, cover, dataclasses.replace(fit, verify_tempo=True))
    assert [(m.lag, m.relevant) for m in plain] == [(50, True), (100, True)]
    assert [(m.lag, m.relevant) for m in verified] == [(50, False), (100, True)]


def test_cross_check_passes_true_places_and_repeats_and_fails_confusions():
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal((30, 16)).astype(np.float32) for _ in range(2))
    o = rng.standard_normal((200, 16)).astype(np.float32)
    o[10:40], o[70:100], o[130:160] = a, b, a               # the original: A at 10, B at 70, A again at 130
    original = Embedding(o, _grid(200), 3.0, 52.75)
    c = rng.standard_normal((220, 16)).astype(np.float32)
    c[30:60] = b + 0.3 * rng.standard_normal((30, 16)).astype(np.float32)     # the cover sings B at 30 ...
    c[120:150] = a + 0.3 * rng.standard_normal((30, 16)).astype(np.float32)   # ... and A at 120
    cover = Embedding(c, _grid(220), 3.0, 57.75)
    assert cross_check(original, 70, cover, 30, 30, 0.05)          # B -> B: B is its best place in the original
    assert cross_check(original, 10, cover, 120, 30, 0.05)         # A -> A at its first place ...
    assert cross_check(original, 130, cover, 120, 30, 0.05)        # ... and at the repeat (equal scores)
    assert not cross_check(original, 10, cover, 30, 30, 0.05)      # A matched to B's place: B explains it better
    assert cross_check(original, 10, cover, 30, 30, 2.0)           # any place passes with a margin of 2
    assert not cross_check(original, 10, cover, 200, 30, 0.05)     # a block past the cover's end: no
    with pytest.raises(ValueError, match="cross_check"):
        MiningConfig(cross_check=-0.1)
    assert MiningConfig.paper().cross_check is None


def test_mine_song_cross_check_keeps_true_matches(songs_dir, fp):
    d, path, table, truth = songs_dir
    o, covers = table.songs()["song000"]
    plain = mine_song("song000", o, covers, fp, config=MiningConfig(cross_check=None))
    checked = mine_song("song000", o, covers, fp, config=MiningConfig(cross_check=0.0))
    pm = [m for g in plain["groups"] for m in g["matches"]]
    cm = [m for g in checked["groups"] for m in g["matches"]]
    # the same peaks, scores and places; on these clean songs every relevant match is true and stays so
    assert [(m["version_id"], m["start"], m["score"]) for m in pm] == [(m["version_id"], m["start"], m["score"])
                                                                       for m in cm]
    assert [m["relevant"] for m in pm] == [m["relevant"] for m in cm]
    assert sum(m["relevant"] for m in cm) == 4             # 2 phrases x 2 covers


def _melody_frames(rng, n=160, base=40):
    x = np.full((n, 84), 0.05, np.float32)
    notes = base + rng.integers(0, 8, size=n // 8).repeat(8)[:n]
    x[np.arange(n), notes] = 1.0
    x[np.arange(n), notes + 12] = 0.5                     # a harmonic an octave up
    return x + 0.02 * rng.random((n, 84), dtype=np.float32)


@pytest.mark.parametrize("shift,stretch", [(0, 1.0), (3, 1.2), (-5, 0.85)])
def test_key_shift_finds_the_transposition_of_a_stretched_cover(shift, stretch):
    rng = np.random.default_rng(11)
    rate = 31.25
    x = _melody_frames(rng)
    pos = np.minimum(np.arange(int(len(x) * stretch)) / stretch, len(x) - 1).astype(int)
    cover = np.roll(x[pos], shift, axis=1)                        # slower or faster, transposed
    cover = np.concatenate([np.full((40, 84), 0.05, np.float32), cover])   # 1.28 s of intro
    start = 40 / rate
    assert key_shift(x, 0.0, len(x) / rate, cover, start, start + len(pos) / rate, rate) == shift
    # a phrase sung a step higher (a sequence) is not the cover's key
    assert key_shift(x, 0.0, len(x) / rate, np.roll(cover, 2, axis=1), start, start + len(pos) / rate,
                     rate) == shift + 2
    assert key_shift(x, 0.0, 0.0, cover, start, start + 1.0, rate) is None


def test_consensus_of_shifts_pools_octaves_and_refuses_ties():
    assert consensus_shift([3, 3, 15, 2]) == 3
    assert consensus_shift([-9, 3, 2]) == 3
    assert consensus_shift([1, 2]) is None and consensus_shift([]) is None
    with pytest.raises(TypeError, match="key_check"):
        MiningConfig(key_check=1)


def test_mine_song_key_check_keeps_true_matches_and_records_shifts(songs_dir, fp):
    d, path, table, truth = songs_dir
    o, covers = table.songs()["song000"]
    plain = mine_song("song000", o, covers, fp, config=MiningConfig(key_check=False))
    checked = mine_song("song000", o, covers, fp, config=MiningConfig(key_check=True))
    pm = [m for g in plain["groups"] for m in g["matches"]]
    cm = [m for g in checked["groups"] for m in g["matches"]]
    assert [m["relevant"] for m in pm] == [m["relevant"] for m in cm]
    assert all(m["key_shift"] == 0 for m in cm if m["relevant"])     # these covers keep the key
    assert all("key_shift" not in m for m in pm)


def test_verify_min_demotes_a_peak_whose_last_third_matches_weakly():
    rng = np.random.default_rng(6)
    frag = rng.standard_normal((30, 16)).astype(np.float32)
    part = frag.copy()
    part[20:] = 0.8 * part[20:] + 0.9 * rng.standard_normal((10, 16)).astype(np.float32)  # goes on differently
    cover = _cover_with(part, [(60, 0.05)], rng)
    fit = dataclasses.replace(MiningConfig.paper(), fit_tempo=True, verify_tempo=True, beta_rel=0.5)
    loose = match_fragment(frag, 0.0, 10.0, cover, fit)
    strict = match_fragment(frag, 0.0, 10.0, cover, dataclasses.replace(fit, verify_min=0.8))
    assert [(m.lag, m.relevant) for m in loose] == [(60, True)]
    assert [(m.lag, m.relevant) for m in strict] == [(60, False)]
    assert strict[0].score == loose[0].score
    with pytest.raises(ValueError, match="verify_min"):
        MiningConfig(verify_min=float("nan"))


def test_match_cover_shorter_than_fragment_raises():
    rng = np.random.default_rng(0)
    frag = rng.standard_normal((50, 8)).astype(np.float32)
    emb = Embedding(frag[:30].copy(), _grid(30), 3.0, 10.0)
    with pytest.raises(ValueError, match="fewer than the fragment"):
        match_fragment(frag, 0.0, 15.0, emb)


def test_match_drops_matches_running_past_the_cover():
    rng = np.random.default_rng(1)
    frag = rng.standard_normal((20, 8)).astype(np.float32)
    cover = rng.standard_normal((60, 8)).astype(np.float32)
    cover[0:20] = frag
    emb = Embedding(cover, _grid(60), 3.0, 60 * 0.25 + 2.75)
    # the fragment starts 2 s before its first window: a match at lag 0 would start at -2 s
    assert match_fragment(frag, 2.0, 10.0, emb) == []
    assert len(match_fragment(frag, 0.1, 10.0, emb)) == 1        # within half a step: moved to 0


# ---------------------------------------------------------------------------------------- whole songs
def test_mine_song_groups_are_aligned_and_as_long_as_the_music(songs_dir, fp):
    d, path, table, truth = songs_dir
    o, covers = table.songs()["song000"]
    res = mine_song("song000", o, covers, fp)
    assert res["status"] == "ok" and res["skipped"] == []
    assert len(res["groups"]) == 2
    for g, (a, b) in zip(res["groups"], truth["song000"]):
        assert g["start"] == pytest.approx(a, abs=0.15) and g["end"] == pytest.approx(b, abs=0.15)
        assert len(g["matches"]) >= 2
        for m in g["matches"]:
            # these covers keep the original's tempo: the fitted length is the fragment's within 2 %
            assert m["end"] - m["start"] == pytest.approx(g["end"] - g["start"], rel=0.02)
        for c in covers:
            off = c.alignment[0][1]
            ms = [m for m in g["matches"] if m["version_id"] == c.version_id and m["relevant"]]
            assert len(ms) == 1 and ms[0]["start"] == pytest.approx(g["start"] + off, abs=0.2)
    assert res["timing"]["encoder"] > 0


def test_mine_writes_manifest_precision_and_plots(songs_dir, fp, tmp_path):
    d, path, table, truth = songs_dir
    out = tmp_path / "mined.csv"
    man = mine(table, fp, out, workdir=tmp_path / "work", plots_dir=tmp_path / "plots", progress=False)
    assert out.exists()
    groups = man.groups()
    assert len(groups) == 6
    for rows in groups.values():
        assert rows[0].audio_type == "original" and rows[0].id == rows[0].key + "/0"
        assert all(r.audio_type == "cover" for r in rows[1:])
        assert [r.true_offset for r in rows[1:] if not r.check_by_crowdsource] == \
            pytest.approx([r.start for r in rows[1:] if not r.check_by_crowdsource], abs=0.3)
        assert all(r.duration == pytest.approx(rows[0].duration, rel=0.02) for r in rows)
        assert all(r.duration == pytest.approx(r.end - r.start, abs=1e-3) for r in rows)
        assert all(r.start >= 0 for r in rows)
    pr = mining_precision(man, table)
    assert pr["precision"] == 1.0 and pr["recall"] == 1.0, pr
    assert pr["relevant"] == 12 and pr["true_fragments"] == 12
    s = read_summary(tmp_path / "work")
    assert s["songs"] == 3 and s["skipped"] == [] and s["groups"] == 6 and s["relevant"] == 12
    pngs = sorted(os.listdir(tmp_path / "plots"))
    assert len(pngs) == 3 and all(open(tmp_path / "plots" / p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # a rerun does not mine again (and gives the same manifest, byte for byte)
    before = out.read_bytes()
    t = time.perf_counter()
    mine(table, fp, out, workdir=tmp_path / "work", progress=False)
    assert out.read_bytes() == before and read_summary(tmp_path / "work")["timing"]["songs_this_run"] == 0
    assert time.perf_counter() - t < 2.0
    # another config on the same workdir is refused
    with pytest.raises(ChadError, match="another mining config"):
        mine(table, fp, out, workdir=tmp_path / "work", config=MiningConfig(beta_rel=0.6), progress=False)


def test_mining_precision_counts_wrong_and_uncertain_apart(songs_dir, fp, tmp_path):
    d, path, table, truth = songs_dir
    man = mine(table, fp, tmp_path / "m.csv", workdir=tmp_path / "w", progress=False, song_ids=["song001"])
    pr0 = mining_precision(man, table)
    rel = [r for r in man.rows if r.audio_type == "cover" and not r.check_by_crowdsource]
    n = len(rel)
    assert pr0["precision"] == 1.0 and pr0["relevant"] == n == pr0["true_fragments"] == 4
    u0, u0_ok = pr0["uncertain"], pr0["uncertain_correct"]
    rel[0].start += 1.0                           # now wrong
    rel[1].check_by_crowdsource = True            # now uncertain (still at the right place)
    pr = mining_precision(man, table)
    assert pr["relevant"] == n - 1 and pr["relevant_correct"] == n - 2
    assert pr["precision"] == pytest.approx((n - 2) / (n - 1))
    assert pr["uncertain"] == u0 + 1 and pr["uncertain_correct"] == u0_ok + 1
    assert pr["recall"] == pytest.approx((n - 2) / n) and pr["recall_with_uncertain"] == pytest.approx((n - 1) / n)


def test_bad_inputs_are_skipped_and_the_rest_mined(songs_dir, fp, tmp_path):
    from chadml.audio import save
    from chadml.data import SongTable
    d, path, table, truth = songs_dir
    good = [r for r in table.rows if r.song_id == "song000"]
    o, covers = table.songs()["song000"]
    silent = str(tmp_path / "silent.wav")
    save(silent, md.silence(30.0), SR)
    corrupt = str(tmp_path / "corrupt.wav")
    with open(corrupt, "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    short = str(tmp_path / "short.wav")
    save(short, md.tone(60, 5.0), SR)
    rows = list(good)
    rows += md.song_rows("bad-silent", silent, 30.0, [("bad-silent-c", covers[0].path, covers[0].duration, 0.0)])
    rows += md.song_rows("bad-nocovers", o.path, o.duration, [])
    rows += md.song_rows("bad-corrupt-orig", corrupt, 30.0, [("bad-corrupt-orig-c", covers[0].path, 30.0, 0.0)])
    # song000 again, with a corrupt cover and a cover shorter than every fragment, beside a good cover
    rows += md.song_rows("mixed", o.path, o.duration,
                         [("mixed-c0", covers[0].path, covers[0].duration, covers[0].alignment[0][1]),
                          ("mixed-corrupt", corrupt, 30.0, 0.0), ("mixed-short", short, 5.0, 0.0)])
    rows += md.song_rows("bad-missing", str(tmp_path / "nope.wav"), 30.0, [("bad-missing-c", covers[0].path, 30.0, 0.0)])
    t = SongTable(rows)
    man = mine(t, fp, tmp_path / "m.csv", workdir=tmp_path / "w", progress=False)
    s = read_summary(tmp_path / "w")
    reasons = {k["song_id"]: k["reason"] for k in s["skipped"]}
    assert set(reasons) == {"bad-silent", "bad-nocovers", "bad-corrupt-orig", "bad-missing"}
    assert "silent" in reasons["bad-silent"]
    assert reasons["bad-nocovers"] == "no covers"
    assert "unreadable" in reasons["bad-corrupt-orig"] and "unreadable" in reasons["bad-missing"]
    cov = {k["version_id"]: k["reason"] for k in s["skipped_covers"]}
    assert "unreadable" in cov["mixed-corrupt"] and "shorter than 2 of 2" in cov["mixed-short"]
    songs_mined = {r.group_id for r in man.rows}
    assert songs_mined == {"song000", "mixed"}
    assert {r.source_id for r in man.rows if r.group_id == "mixed"} == {"mixed-o", "mixed-c0"}


# ---------------------------------------------------------------------------------- interruption, engines
_SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import mining_data
from chadml.data import SongTable
from chadml.mining import mine
mine(SongTable.read(sys.argv[1]), mining_data.FeatureFingerprinter(), sys.argv[2], workdir=sys.argv[3],
     progress=False)
"""


def test_sigkill_midway_then_rerun_gives_the_same_manifest(tmp_path, fp):
    table, _ = md.make_songs(str(tmp_path / "audio"), n_songs=5, n_covers=1, seed=3)
    songs = str(tmp_path / "songs.csv")
    table.write(songs)
    script = tmp_path / "run_mine.py"
    script.write_text(_SCRIPT.format(root=ROOT, tests=os.path.join(ROOT, "tests")))
    # the reference: an uninterrupted run in this process
    ref = tmp_path / "ref.csv"
    mine(table, fp, ref, workdir=tmp_path / "ref.work", progress=False)

    out, work = tmp_path / "out.csv", tmp_path / "out.work"
    proc = subprocess.Popen([sys.executable, str(script), songs, str(out), str(work)])
    done_dir = work / "songs"
    deadline = time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None:
            if done_dir.exists() and any(p.endswith(".json") for p in os.listdir(done_dir)):
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the mining process ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    n_done = len([p for p in os.listdir(done_dir) if p.endswith(".json")])
    assert 1 <= n_done < 5
    assert not out.exists()
    # no half-written files are taken for results
    for p in os.listdir(done_dir):
        if p.endswith(".json"):
            json.load(open(done_dir / p))
    r = subprocess.run([sys.executable, str(script), songs, str(out), str(work)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ref.read_bytes()
    assert read_summary(work)["timing"]["songs_this_run"] == 5 - n_done


def test_ray_engine_gives_the_same_manifest_as_local(songs_dir, fp, tmp_path):
    ray = pytest.importorskip("ray")
    d, path, table, truth = songs_dir
    local = tmp_path / "local.csv"
    mine(table, fp, local, workdir=tmp_path / "lw", progress=False)
    os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = tmp_path / "ray.csv"
        mine(table, fp, remote, workdir=tmp_path / "rw", engine="ray", progress=False)
    finally:
        ray.shutdown()
    assert remote.read_bytes() == local.read_bytes()
    assert read_summary(tmp_path / "rw")["groups"] == read_summary(tmp_path / "lw")["groups"] > 0


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_help_and_usage_errors(tmp_path, capsys):
    from chadml.cli import main
    with pytest.raises(SystemExit) as e:
        main(["mine", "--help"])
    assert e.value.code == 0
    assert "--engine" in capsys.readouterr().out
    assert main(["mine", "--model", str(tmp_path / "no.pt"), "--songs", str(tmp_path / "no.csv"),
                 "--out", str(tmp_path / "o.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["mine", "--songs", "x"])
    assert e.value.code == 2


def test_cli_mining_options_reach_the_config():
    import argparse
    from chadml.cli.options import add_mining_options, config_from_args
    p = argparse.ArgumentParser()
    add_mining_options(p)
    assert config_from_args(p.parse_args([])) == MiningConfig()
    assert config_from_args(p.parse_args(["--paper-matching"])) == MiningConfig.paper()
    c = config_from_args(p.parse_args(["--no-standardize", "--center", "--peak-margin", "-1", "--no-verify-tempo"]))
    assert (c.standardize, c.center, c.peak_margin, c.verify_tempo, c.fit_tempo) == (False, True, None, False, True)
    c = config_from_args(p.parse_args(["--cross-check", "0.02", "--key-check", "--verify-min", "0.6"]))
    assert (c.cross_check, c.key_check, c.verify_min) == (0.02, True, 0.6)
    c = config_from_args(p.parse_args(["--cross-check", "-1", "--no-key-check"]))
    assert (c.cross_check, c.key_check) == (None, False)
    c = config_from_args(p.parse_args(["--tempo-range", "0.9", "1.1", "--tempo-step", "0.02", "--block-min", "-2",
                                       "--context-min", "0.5"]))
    assert (c.tempo_range, c.tempo_step, c.block_min, c.context_min, c.tempo_scan) == ((0.9, 1.1), 0.02, None, 0.5, True)
    assert config_from_args(p.parse_args(["--rigid-matching"])) == MiningConfig.rigid()
    assert config_from_args(p.parse_args(["--no-tempo-scan"])).tempo_scan is False
    from chadml.errors import UsageError
    with pytest.raises(UsageError, match="--tempo-range"):
        config_from_args(p.parse_args(["--tempo-range", "1.2", "1.3"]))
    with pytest.raises(UsageError, match="--rigid-matching"):
        config_from_args(p.parse_args(["--rigid-matching", "--paper-matching"]))
