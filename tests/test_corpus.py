"""The built-in corpus: tunes, determinism, resumability, and that the stated alignments are true in the audio."""
import json
import os
import time

import numpy as np
import pytest
import soundfile as sf

from chadml import corpus
from chadml.data import Manifest, SongTable, alignment_pieces, inverse_map_time, map_time

SMALL = dict(n_songs=3, n_covers=2, hummings_per_song=2, song_seconds=(16.0, 22.0), humming_seconds=(4.0, 9.0),
             seed=7, test_fraction=0.34)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tune-cache"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("corpus")
    t0 = time.perf_counter()
    paths = corpus.build_corpus(out, workers=1, cache_dir=cache, **SMALL)
    return paths, time.perf_counter() - t0


def test_reserved_and_unknown_collections(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        corpus.load_tunes(["essenFolksong"], limit=1, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="reserved"):
        corpus.build_corpus(tmp_path, n_songs=1, collections=("oneills1850", "essenFolksong"), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="collections must be among"):
        corpus.load_tunes(["bach"], limit=1, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="limit"):
        corpus.load_tunes(limit=-1, cache_dir=tmp_path)
    assert not os.listdir(tmp_path)          # nothing parsed, nothing cached


def test_load_tunes_round_robin_and_cache(cache):
    t0 = time.perf_counter()
    tunes = corpus.load_tunes(limit=5, cache_dir=cache)
    cold = time.perf_counter() - t0
    assert [t.collection for t in tunes] == ["oneills1850", "ryansMammoth", "airdsAirs", "nottingham-dataset",
                                              "oneills1850"]
    assert len({t.id for t in tunes}) == 5
    for t in tunes:
        assert len(t.pitch) == len(t.onset_beats) == len(t.dur_beats) >= corpus.MIN_NOTES
        assert np.all(np.diff(t.onset_beats) > 0) and np.all(t.dur_beats > 0)
        np.testing.assert_allclose(t.onset_beats[1:], (t.onset_beats + t.dur_beats)[:-1], atol=1e-6)  # no gaps
        p = t.pitch[~np.isnan(t.pitch)]
        assert 40 <= p.min() and p.max() <= 100
        assert t.bars[0] == 0 and np.all(np.diff(t.bars) > 0) and 40 <= t.bpm <= 160 and "/" in t.meter
    assert tunes[0].title == "The Enchanted Valley" and tunes[0].meter == "2/4"
    # the cache: versioned JSON per ABC file; a warm load is fast and identical
    f = os.path.join(cache, "tunes-v1", "oneills1850", "0001-0050.json")
    d = json.load(open(f))
    assert d["format_version"] == corpus.TUNE_CACHE_VERSION and len(d["entries"]) == 2
    t1 = time.perf_counter()
    again = corpus.load_tunes(limit=5, cache_dir=cache)
    warm = time.perf_counter() - t1
    assert [a.id for a in again] == [t.id for t in tunes]
    assert all(np.array_equal(a.pitch, t.pitch, equal_nan=True) and np.array_equal(a.onset_beats, t.onset_beats)
               for a, t in zip(again, tunes))
    assert warm < cold / 3, (warm, cold)
    # a corrupt cache file is ignored and rewritten
    open(f, "w").write("{not json")
    assert corpus.load_tunes(["oneills1850"], limit=2, cache_dir=cache)[1].id == tunes[4].id
    assert json.load(open(f))["format_version"] == 1


def test_corpus_layout(built):
    paths, seconds = built
    songs = SongTable.read(paths.songs).validate(check_paths=True)
    hums = Manifest.read(paths.hummings).validate(check_paths=True)
    by_song = songs.songs()
    assert len(by_song) == 3
    assert all(len(c) == 2 for _, c in by_song.values())
    for o, covers in by_song.values():
        assert o.alignment == [[0.0, 0.0], [o.duration, o.duration]]
        assert 16.0 <= o.duration <= 22.0 + 6.0            # target length plus lead-in, gaps and tail
        for r in [o] + covers:
            info = sf.info(r.path)
            assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
            assert abs(info.frames / 16000 - r.duration) < 1e-3
    # split by song: held-out songs never appear in train groups
    test_songs = {r.song_id for r in songs if r.split == "test"}
    assert len(test_songs) == 1
    assert {r.song_id for r in songs if r.split == "train"}.isdisjoint(test_songs)
    for r in hums:
        assert (r.group_id in test_songs) == (r.split == "test")
    meta = json.load(open(os.path.join(paths.root, "corpus.json")))
    assert meta["format_version"] == 1 and meta["timing"]["audio_rendered_s"] > 100


def test_hummings_groups_durations(built):
    paths, _ = built
    songs = SongTable.read(paths.songs).songs()
    groups = Manifest.read(paths.hummings).groups()
    assert len(groups) == 6
    for key, rows in groups.items():
        assert [r.audio_type for r in rows] == ["original", "humming"]
        o, h = rows
        assert o.path == songs[o.group_id][0].path and o.source_id == songs[o.group_id][0].version_id
        assert 4.0 <= o.duration <= 9.0 and o.duration == h.duration
        assert o.end - o.start == pytest.approx(o.duration, abs=1e-9) and o.true_offset == o.start
        assert (h.start, h.end, h.true_offset) == (0.0, h.duration, 0.0)
        assert abs(sf.info(h.path).frames / 16000 - h.duration) <= 1 / 16000
        assert 0 <= o.start and o.end <= songs[o.group_id][0].duration


def _f0(y, sr=16000, hop=160):
    import librosa
    f = librosa.yin(y, fmin=70, fmax=900, sr=sr, frame_length=1024, hop_length=hop)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=hop)[0]
    m = librosa.hz_to_midi(f)
    m[rms < rms.max() * 0.05] = np.nan
    return m


def _agreement(p_ref, t_ref, p, shift, tol):
    """Share of voiced frames of ``p`` whose pitch is within ``tol`` semitones of p_ref at times t_ref + shift."""
    idx = np.round(t_ref / 0.01)
    ok = ~np.isnan(idx) & (idx >= 0) & (idx < len(p_ref))
    a = p_ref[idx[ok].astype(int)] + shift
    b = p[ok]
    g = ~np.isnan(a) & ~np.isnan(b)
    d = np.abs((a[g] - b[g] + 6) % 12 - 6)       # octave errors of the pitch tracker do not count
    return float(np.mean(d < tol)), int(g.sum())


def test_cover_time_maps_are_true_in_the_audio(built):
    """The pitch sung in a cover at time v equals the original's at inverse_map(v), transposed; a map that is
    off by 0.3 s or 1 s does not fit."""
    paths, _ = built
    songs = SongTable.read(paths.songs).songs()
    n_checked = 0
    structures = set()
    for o, covers in songs.values():
        po = _f0(sf.read(o.path, dtype="float32")[0])
        for c in covers:
            structures.update(k for k in ("intro", "skipped", "repeated") if k in c.extra)
            pc = _f0(sf.read(c.path, dtype="float32")[0])
            dk = float(c.extra["key_shift"]) - float(o.extra["key_shift"])
            assert 1 <= abs(dk) <= 5
            tv = np.arange(len(pc)) * 0.01
            to = inverse_map_time(c.alignment, tv)
            good, n = _agreement(po, to, pc, dk, 0.5)
            assert n > 500 and good > 0.75, (c.version_id, good)
            for off in (0.3, 1.0):
                bad, _ = _agreement(po, to + off, pc, dk, 0.5)
                assert bad < good - 0.3, (c.version_id, off, bad, good)
            # the pieces stay inside both files and the map is consistent forwards and backwards
            pcs = alignment_pieces(c.alignment)
            assert pcs[:, 1].max() <= o.duration + 1e-6 and pcs[:, 3].max() <= c.duration + 1e-6
            mid = (pcs[:, 0] + pcs[:, 1]) / 2
            np.testing.assert_allclose(inverse_map_time(c.alignment, map_time(c.alignment, mid)), mid, atol=1e-6)
            n_checked += 1
    assert n_checked == 6
    assert structures >= {"intro", "skipped", "repeated"}, structures


def test_hummings_are_aligned_with_their_original_fragment(built):
    paths, _ = built
    songs = SongTable.read(paths.songs).songs()
    cache = {}
    for key, (o, h) in Manifest.read(paths.hummings).groups().items():
        if o.path not in cache:
            cache[o.path] = _f0(sf.read(o.path, dtype="float32")[0])
        po = cache[o.path]
        ph = _f0(sf.read(h.path, dtype="float32")[0])
        t = np.arange(len(ph)) * 0.01
        shift = float(h.extra["key_shift"])
        good, n = _agreement(po, o.start + t, ph, shift, 1.0)
        off = max(_agreement(po, o.start + t + d, ph, shift, 1.0)[0] for d in (-1.0, 1.0))
        assert n > 100 and good > 0.55 and good > off + 0.15, (key, good, off)


def test_silence_splitting_finds_the_phrases(built):
    """Breath pauses are digital near-silence: librosa-style splitting at 52-68 dB finds 2-9 s phrases,
    and merging them over pauses <= 1 s gives 8-20 s fragments (what mining expects)."""
    import librosa
    paths, _ = built
    for r in SongTable.read(paths.songs):
        y = sf.read(r.path, dtype="float32")[0]
        counts = []
        for top_db in (52, 60, 68):
            iv = librosa.effects.split(y, top_db=top_db)
            counts.append(len(iv))
            lens = (iv[:, 1] - iv[:, 0]) / 16000
            assert 2.0 <= np.median(lens) <= 9.0, (r.version_id, top_db, lens)
            # merge like chadsp.merge_fragments(max_pause=1 s, min_len=8 s, max_len=20 s)
            frags, cur = [], list(iv[0])
            for s, e in iv[1:]:
                if s - cur[1] <= 16000 and e - cur[0] <= 20 * 16000:
                    cur[1] = e
                else:
                    frags.append(cur)
                    cur = [s, e]
            frags.append(cur)
            good = [f for f in frags if 8 * 16000 <= f[1] - f[0] <= 20 * 16000]
            assert len(good) >= 1, (r.version_id, top_db, frags)
        assert max(counts) - min(counts) <= 2    # the pauses are silent at every level
    # the pauses are more than 68 dB below the loudest frame
    y = sf.read(SongTable.read(paths.songs).rows[0].path, dtype="float32")[0]
    rms = librosa.amplitude_to_db(librosa.feature.rms(y=y)[0], ref=np.max)
    assert np.mean(rms < -68) > 0.05


def test_deterministic_resumable_and_worker_independent(built, tmp_path, cache):
    paths, _ = built
    # the same seed in another folder with 2 workers: the same manifests (paths are stored relative) and audio
    other = corpus.build_corpus(tmp_path / "again", workers=2, cache_dir=cache, **SMALL)
    assert open(other.songs, "rb").read() == open(paths.songs, "rb").read()
    assert open(other.hummings, "rb").read() == open(paths.hummings, "rb").read()
    a, b = SongTable.read(paths.songs), SongTable.read(other.songs)
    for ra, rb in zip(a, b):
        assert np.array_equal(sf.read(ra.path)[0], sf.read(rb.path)[0])
    # resume: a missing file is rendered again (identically); finished files are not touched
    victim = b.rows[1].path
    ref = sf.read(victim)[0]
    os.remove(victim)
    mtimes = {r.path: os.stat(r.path).st_mtime_ns for r in b if r.path != victim}
    corpus.build_corpus(tmp_path / "again", workers=1, cache_dir=cache, **SMALL)
    assert np.array_equal(sf.read(victim)[0], ref)
    assert all(os.stat(p).st_mtime_ns == m for p, m in mtimes.items())
    # another seed gives other music
    third = corpus.build_corpus(tmp_path / "seed8", workers=1, cache_dir=cache, **{**SMALL, "seed": 8, "n_songs": 1})
    assert SongTable.read(third.songs).rows[0].duration != a.rows[0].duration


def test_same_music_times_finds_every_pass(built):
    paths, _ = built
    songs = SongTable.read(paths.songs).songs()
    for o, covers in songs.values():
        c = covers[0]
        t = np.array([o.alignment[1][0] / 2])
        allpos = corpus.same_music_times(o, c, t)
        first = map_time(c.alignment, t, all=True)
        # every place the same moment of the original is sung is among the musically identical places
        for v in first[0][~np.isnan(first[0])]:
            assert np.nanmin(np.abs(allpos[0] - v)) < 1e-6
    with pytest.raises(ValueError, match="score_map"):
        from chadml.data import SongRow
        corpus.same_music_times(SongRow("s", "a", "original"), SongRow("s", "b", "cover"), 1.0)


def test_build_corpus_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_songs"):
        corpus.build_corpus(tmp_path, n_songs=0)
    with pytest.raises(ValueError, match="test_fraction"):
        corpus.build_corpus(tmp_path, n_songs=2, test_fraction=1.0)
    with pytest.raises(ValueError, match="song_seconds"):
        corpus.build_corpus(tmp_path, n_songs=2, song_seconds=(30, 20))
    with pytest.raises(ValueError, match="ext"):
        corpus.build_corpus(tmp_path, n_songs=2, ext=".mp3")


def _aabb_rows(seed=3):
    """An AABB tune (8 quarter notes per section), sung twice, by an original and one cover (faster, with an
    intro and a skipped or repeated section)."""
    from chadml.data import SongRow
    a = [60, 62, 64, 65, 67, 65, 64, 62]
    b = [69, 71, 72, 71, 69, 67, 65, 64]
    pitch = np.array(a + a + b + b[:-1] + [60], float)      # AABB' (the second ending differs)
    tune = corpus.Tune("test/aabb/1", "AABB", "test", pitch, np.arange(32.0), np.ones(32), np.arange(0, 32, 4.0),
                       "4/4", 120.0)
    song = corpus.make_song(tune, "aabb", 2)
    rng = np.random.default_rng(seed)
    orig = corpus.plan_original(song, 0.5, 0.0, rng)
    cov, _ = corpus.plan_cover(song, 0.5, 2.0, rng)
    extra = {"pass_beats": repr(song.pass_beats), "tune_id": tune.id}
    o = SongRow("aabb", "aabb-o", "original", alignment=[[0.0, 0.0], [orig.total, orig.total]],
                extra={**extra, "score_map": json.dumps(corpus.score_map(orig)),
                       "tune_notes": corpus.tune_notes_json(tune)})
    c = SongRow("aabb", "aabb-c0", "cover", alignment=corpus.cover_alignment(orig, cov),
                extra={**extra, "score_map": json.dumps(corpus.score_map(cov))})
    return o, c


def test_same_music_times_counts_repeats_within_the_tune():
    o, c = _aabb_rows()
    om, cm = json.loads(o.extra["score_map"]), json.loads(c.extra["score_map"])
    at = lambda m, beats: np.sort(np.concatenate([v[np.isfinite(v)] for v in map_time(m, np.asarray(beats, float), all=True)]))
    t0 = float(map_time(om, 0.5))                    # half a beat into the first A, 3 beats long
    got = corpus.same_music_times(o, c, t0, duration=1.5)
    # the same notes: both A sections of both passes, wherever the cover sings them
    assert np.allclose(got, at(cm, [0.5, 8.5, 32.5, 40.5]), atol=1e-6)
    # the moment itself is among them (the strict truth is a subset)
    for v in map_time(c.alignment, t0, all=True):
        if np.isfinite(v):
            assert np.min(np.abs(got - v)) < 1e-6
    # 6 beats from beat 4 reach into the second A; from beat 12 the same span reaches B: only the passes,
    # and only where the cover sings the span whole: its second pass skips from beat 40 (the second A) to
    # 56 (B'), so at beat 36 it sings 4 beats of the span and then other notes
    assert [int(x) for x in map(float, json.loads(c.extra["score_map"])[4])] == [40, 25] and \
        [int(x) for x in json.loads(c.extra["score_map"])[5]] == [56, 25]
    t1 = float(map_time(om, 4.0))
    assert np.allclose(corpus.same_music_times(o, c, t1, duration=3.0), at(cm, [4.0]), atol=1e-6)
    # B and B' differ in their last note: a span over it is found once per pass, one covering B's start twice
    t2 = float(map_time(om, 28.0))
    assert np.allclose(corpus.same_music_times(o, c, t2, duration=2.0), at(cm, [28.0, 60.0]), atol=1e-6)
    t3 = float(map_time(om, 16.0))
    assert np.allclose(corpus.same_music_times(o, c, t3, duration=2.0), at(cm, [16.0, 24.0, 48.0, 56.0]), atol=1e-6)
    # without a duration: the places of the same moment of the tune (whole passes)
    assert np.allclose(np.sort(corpus.same_music_times(o, c, np.array([t0]))[0]), at(cm, [0.5, 32.5]), atol=1e-6)
    # a moment between passes of the original is sung nowhere
    gap = float(map_time(om, 32.0)) + 0.2           # after the end of the first pass
    assert np.all(np.isnan(corpus.same_music_times(o, c, gap, duration=2.0)))
    with pytest.raises(ValueError, match="duration"):
        corpus.same_music_times(o, c, t0, duration=0)


def _rows_with_score_maps(pitches, cover_map):
    """An original singing a tune of one quarter note per beat once at 1 s a beat, and a cover whose score
    map is ``cover_map`` (``[[beat, seconds], ...]``: a jump is two breakpoints at one time)."""
    from chadml.data import SongRow
    n = float(len(pitches))
    extra = {"pass_beats": repr(n), "tune_notes": json.dumps([[float(i), 1.0, float(p)] for i, p in enumerate(pitches)])}
    o = SongRow("s", "s-o", "original", extra={**extra, "score_map": json.dumps([[0.0, 0.0], [n, n]])})
    c = SongRow("s", "s-c0", "cover", extra={**extra, "score_map": json.dumps(cover_map)})
    return o, c


def test_same_music_times_follows_the_covers_jumps():
    # 16 different notes; the cover sings beats 0..8, repeats from beat 4 and sings 4..16 (at 1 s a beat)
    o, c = _rows_with_score_maps(range(60, 76), [[0.0, 0.0], [8.0, 8.0], [4.0, 8.0], [16.0, 20.0]])
    # beats 2..6 are sung whole before the jump, and again after it
    assert np.allclose(corpus.same_music_times(o, c, 2.0, duration=4.0), [2.0])
    assert np.allclose(corpus.same_music_times(o, c, 4.5, duration=2.0), [4.5, 8.5])
    # beats 6..10: where the first pass sings beat 6 it jumps back to 4 after two beats: not the same music
    assert np.allclose(corpus.same_music_times(o, c, 6.0, duration=4.0), [10.0])
    # a skip that lands on the notes the fragment goes on with is the same music: A A' with A == A' on
    # their first 4 beats; the cover sings beats 0..4 then skips to beat 12 (the second half of A')
    a = [60, 62, 64, 65, 67, 69, 71, 72]
    o2, c2 = _rows_with_score_maps(a + a[:4] + a[4:], [[0.0, 0.0], [4.0, 4.0], [12.0, 4.0], [16.0, 8.0]])
    assert np.allclose(corpus.same_music_times(o2, c2, 0.0, duration=6.0), [0.0])
    # and one that lands elsewhere is not: A then B, the cover skips from the middle of A into B
    o3, c3 = _rows_with_score_maps(a + [50, 51, 52, 53, 54, 55, 56, 57], [[0.0, 0.0], [4.0, 4.0], [12.0, 4.0], [16.0, 8.0]])
    assert np.all(np.isnan(corpus.same_music_times(o3, c3, 0.0, duration=6.0)))


def test_same_music_times_counts_a_jump_onto_the_fragments_notes():
    # X Y X Z (4 beats each): the fragment X Y is sung straight only from beat 0 in the song (X Z follows
    # beat 8); the cover sings 0..12 and repeats from beat 4 (Y), so from beat 8 it sings X, then Y
    x, y, z = [60, 62, 64, 65], [67, 69, 71, 72], [50, 51, 52, 53]
    o, c = _rows_with_score_maps(x + y + x + z, [[0.0, 0.0], [12.0, 12.0], [4.0, 12.0], [16.0, 24.0]])
    notes = np.array([[i, i + 1, p] for i, p in enumerate(x + y + x + z)], float)
    assert corpus.same_music_beats(notes, 0.0, 8.0).tolist() == [0.0]
    assert np.allclose(corpus.same_music_times(o, c, 0.0, duration=8.0), [0.0, 8.0])
    # a fragment that starts half a beat in: the cover's place also starts half a beat into its X
    assert np.allclose(corpus.same_music_times(o, c, 0.5, duration=7.0), [0.5, 8.5])
    # not where the notes after the jump differ: X Z (from beat 8) is not sung from the cover's beat 8,
    # which jumps into Y, but where its second pass sings beats 8..16 straight
    assert np.allclose(corpus.same_music_times(o, c, 8.0, duration=8.0), [16.0])


def test_same_music_beats_compares_pitch_and_timing():
    n = np.array([[0, 1, 60], [1, 2, 62], [2, 3, 60], [3, 4, 62], [4, 5.5, 60], [5.5, 6, 62]], float)
    assert corpus.same_music_beats(n, 0.0, 2.0).tolist() == [0.0, 2.0]      # 4..6 has other durations
    assert corpus.same_music_beats(n, 0.0, 3.5).tolist() == [0.0]          # 2..5.5 runs into the long note
    assert corpus.same_music_beats(n, 0.25, 1.5).tolist() == [0.25, 2.25]  # mid-note starts line up too
