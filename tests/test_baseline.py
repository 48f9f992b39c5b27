"""The classical f0 + DTW matcher (chadml.search.f0): contours of known pitches, the F0 index on disk,
retrieval on the built-in corpus, queries without a melody, and the dtw-f0 re-ranker of chadml.search."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from chadml import ChadError
from chadml.search.f0 import (F0Config, F0DtwSearcher, F0Index, F0IndexError, contour_from_f0, f0_contour)

SR = 16000
RATE = 100.0   # CREPE frames per second at hop 160


def midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69) / 12)


def f0_of_notes(notes, note_s=0.4, gap_s=0.0):
    """Per-frame f0 (Hz) and periodicity of notes (MIDI numbers), with optional unvoiced gaps."""
    f0, per = [], []
    for m in notes:
        f0 += [midi_hz(m)] * int(note_s * RATE)
        per += [0.9] * int(note_s * RATE)
        f0 += [100.0] * int(gap_s * RATE)
        per += [0.05] * int(gap_s * RATE)
    return np.array(f0), np.array(per)


def tones(notes, note_s=0.4, sr=SR):
    """Sung-like tones (3 harmonics, 20 ms ramps) of MIDI notes."""
    t = np.arange(int(note_s * sr)) / sr
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    out = [env * sum(np.sin(2 * np.pi * midi_hz(m) * h * t) / h for h in (1, 2, 3)) for m in notes]
    y = np.concatenate(out)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


MELODY = [60, 62, 64, 65, 67, 65, 64, 62, 60, 67, 64, 60]


# ---------------------------------------------------------------------------------------------- contours

def test_contour_of_known_notes_is_their_intervals_around_the_median():
    f0, per = f0_of_notes(MELODY)
    c, t = contour_from_f0(f0, per, F0Config(frame_rate=10.0))
    assert len(c) == len(MELODY) * 4 and c.dtype == np.float32
    expected = np.repeat(np.array(MELODY, float) - np.median(MELODY), 4)
    np.testing.assert_allclose(c, expected, atol=1e-4)
    np.testing.assert_allclose(t, np.arange(len(c)) * 0.1, atol=1e-6)


def test_transposed_melody_gives_the_same_contour():
    cfg = F0Config(frame_rate=10.0)
    a = contour_from_f0(*f0_of_notes(MELODY), cfg)[0]
    for shift in (-7.0, 2.5, 12.0):
        b = contour_from_f0(*f0_of_notes(np.array(MELODY) + shift), cfg)[0]
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_key_invariance_on_real_audio_through_crepe():
    cfg = F0Config(crepe_model="tiny", frame_rate=10.0)
    a, _ = f0_contour(tones(MELODY), SR, cfg)
    b, _ = f0_contour(tones(np.array(MELODY) + 5), SR, cfg)
    n = min(len(a), len(b))
    assert n >= len(MELODY) * 3
    # every note within a quarter tone of the same contour (onsets blur by a frame)
    assert np.median(np.abs(a[:n] - b[:n])) < 0.25
    exp = np.repeat(np.array(MELODY, float) - np.median(MELODY), 4)[:n]
    assert np.mean(np.abs(a[:n] - exp) < 0.5) > 0.85


def test_octave_jumps_are_repaired():
    cfg = F0Config(frame_rate=10.0)
    f0, per = f0_of_notes(MELODY)
    clean = contour_from_f0(f0, per, cfg)[0]
    bad = f0.copy()
    bad[100:130] *= 2.0          # 0.3 s an octave up (CREPE on the 2nd harmonic)
    bad[300:320] /= 2.0          # 0.2 s an octave down
    bad[400:410] *= 3.0          # 0.1 s on the 3rd harmonic (a twelfth up)
    np.testing.assert_allclose(contour_from_f0(bad, per, cfg)[0], clean, atol=1e-4)


def test_outliers_are_repaired_and_real_steps_kept():
    cfg = F0Config(frame_rate=10.0)
    f0, per = f0_of_notes(MELODY)
    clean = contour_from_f0(f0, per, cfg)[0]
    bad = f0.copy()
    bad[205:213] *= 2 ** (5.5 / 12)    # an 80 ms excursion of 5.5 semitones inside a note
    bad[350:352] = 900.0               # a 20 ms blip
    np.testing.assert_allclose(contour_from_f0(bad, per, cfg)[0], clean, atol=1e-4)
    # an excursion as long as a note is a note: kept
    long = f0.copy()
    long[200:240] *= 2 ** (5 / 12)
    c = contour_from_f0(long, per, cfg)[0]
    assert np.abs(c - clean).max() > 4


def test_unvoiced_frames_bridged_or_dropped():
    f0, per = f0_of_notes([60, 64, 67], note_s=0.5, gap_s=0.3)
    c_fill, t_fill = contour_from_f0(f0, per, F0Config(frame_rate=10.0, gaps="fill"))
    c_drop, t_drop = contour_from_f0(f0, per, F0Config(frame_rate=10.0, gaps="drop"))
    assert len(c_drop) == 15                       # 3 notes x 0.5 s voiced
    assert len(c_fill) == 21                       # first to last voiced frame: 2.1 s
    np.testing.assert_allclose(t_fill, np.arange(21) * 0.1, atol=1e-6)
    assert t_drop[5] == pytest.approx(0.8)         # the 2nd note starts after the 0.3 s pause
    # periodicity below the threshold everywhere: no melody
    c, t = contour_from_f0(f0, np.full(len(f0), 0.2), F0Config())
    assert c.shape == (0,) and t.shape == (0,)
    # loud enough is also required
    c, _ = contour_from_f0(f0, per, F0Config(), level_db=np.full(len(f0), -60.0))
    assert len(c) == 0


def test_f0_config_checks():
    for bad in (dict(crepe_model="small"), dict(hop_length=0), dict(fmin=500, fmax=100), dict(voicing_threshold=2),
                dict(frame_rate=500.0), dict(gaps="keep"), dict(smooth_s=-1), dict(min_frames=0)):
        with pytest.raises(ValueError):
            F0Config(**bad)
    cfg = F0Config(crepe_model="full", frame_rate=20.0)
    assert F0Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown"):
        F0Config.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="1-D"):
        contour_from_f0(np.ones(5), np.ones(4))


def test_silence_and_noise_have_no_contour():
    cfg = F0Config(crepe_model="tiny")
    assert len(f0_contour(np.zeros(SR * 2, np.float32), SR, cfg)[0]) == 0
    noise = np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32) * 0.3
    assert len(f0_contour(noise, SR, cfg)[0]) == 0


# ---------------------------------------------------------------------------------------------- the index

def _items(rng, n=3):
    out = []
    for i in range(n):
        k = int(rng.integers(20, 40))
        out.append((f"s{i}", rng.standard_normal(k).astype(np.float32), np.arange(k, dtype=np.float32) / 10,
                    f"Song {i}", f"/x/s{i}.flac", k / 10))
    return out


def test_f0_index_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    items = _items(rng)
    cfg = F0Config(crepe_model="full", hop_length=320, frame_rate=10.0)
    idx = F0Index.write(tmp_path / "f0", items, cfg)
    back = F0Index.open(tmp_path / "f0")
    assert back.config == cfg and len(back) == 3 and "s1" in back and "zz" not in back
    for sid, p, t, title, path, dur in items:
        np.testing.assert_array_equal(back.contour(sid), p)
        np.testing.assert_array_equal(back.times(sid), t)
    assert back.titles == ["Song 0", "Song 1", "Song 2"]
    cat = json.load(open(tmp_path / "f0" / "f0_catalog.json"))
    assert cat["format_version"] == 1 and cat["config"]["crepe_model"] == "full" and cat["config"]["hop_length"] == 320
    assert idx.offsets.tolist() == back.offsets.tolist()
    with pytest.raises(KeyError, match="zz"):
        back.contour("zz")


def test_f0_index_writes_are_atomic(tmp_path, monkeypatch):
    from chadml.search import f0_index
    d = tmp_path / "f0"
    rng = np.random.default_rng(2)
    old = _items(rng)
    F0Index.write(d, old, F0Config())
    files_before = sorted(os.listdir(d))

    def crash(path, text):
        raise OSError("disk full")
    monkeypatch.setattr(f0_index, "atomic_write_text", crash)
    with pytest.raises(OSError, match="disk full"):
        F0Index.write(d, _items(rng, 5), F0Config())
    monkeypatch.undo()
    back = F0Index.open(d)                              # still the old, complete index
    assert len(back) == 3
    np.testing.assert_array_equal(back.contour("s0"), old[0][1])
    # the next write removes the orphaned data file of the failed one
    F0Index.write(d, _items(rng, 4), F0Config())
    assert len([f for f in os.listdir(d) if f.endswith(".npz")]) == 1
    assert len(files_before) == 2


def test_f0_index_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="f0-index build"):
        F0Index.open(tmp_path / "none")
    d = tmp_path / "f0"
    F0Index.write(d, _items(np.random.default_rng(3)), F0Config())
    data = [f for f in os.listdir(d) if f.endswith(".npz")][0]
    with open(d / data, "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(F0IndexError, match="checksum"):
        F0Index.open(d)
    cat = json.load(open(d / "f0_catalog.json"))
    cat["format_version"] = 99
    (d / "f0_catalog.json").write_text(json.dumps(cat))
    with pytest.raises(F0IndexError, match="format_version"):
        F0Index.open(d)
    assert issubclass(F0IndexError, ChadError)
    with pytest.raises(ValueError, match="twice"):
        F0Index.write(tmp_path / "dup", [_items(np.random.default_rng(4))[0]] * 2, F0Config())


# ---------------------------------------------------------------------------------------------- retrieval

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from chadml.corpus import build_corpus
    root = tmp_path_factory.mktemp("f0corpus")
    return build_corpus(root, n_songs=4, n_covers=0, hummings_per_song=1, song_seconds=(14, 16),
                        humming_seconds=(6, 7), test_fraction=0.25, workers=1)


@pytest.fixture(scope="module")
def f0_index(corpus, tmp_path_factory):
    from chadml.index import song_items
    d = tmp_path_factory.mktemp("idx") / "f0"
    return F0Index.build(d, song_items(corpus.songs), F0Config(crepe_model="tiny"), progress_bar=False)


def _originals(corpus):
    from chadml.index import song_items
    from chadml.audio import load
    return [(sid, load(p)) for sid, p, _ in song_items(corpus.songs)]


def test_f0_index_build_records_crepe_and_refuses_to_overwrite(f0_index, corpus):
    assert len(f0_index) == 4 and f0_index.config.crepe_model == "tiny"
    assert f0_index.catalog["separator"] == "identity" and f0_index.catalog["audio_seconds"] > 50
    assert all(len(f0_index.contour(s)) > 50 for s in f0_index.song_ids)
    with pytest.raises(FileExistsError):
        F0Index.build(f0_index.dir, [("a", np.zeros(SR, np.float32))])


def test_f0_dtw_finds_the_song_of_a_sung_excerpt_and_of_a_humming(f0_index, corpus):
    from chadml.data import Manifest
    s = F0DtwSearcher(f0_index, threads=2)
    for sid, y in _originals(corpus):
        ex = y[int(4.0 * SR):int(11.0 * SR)]             # 7 s from the middle of the sung song
        m = s.query(ex, sr=SR, top=4)
        assert m[0].song_id == sid and m[0].rank == 1
        assert abs(m[0].time_s - 4.0) < 1.0              # where in the song it matched
        assert s.last_reason is None and s.last_timing["rerank_s"] >= 0
    hums = [r for r in Manifest.read(corpus.hummings).rows if r.audio_type == "humming"]
    ranks = []
    for r in hums:
        m = s.query(r.path, top=4)
        ranks.append(next(x.rank for x in m if x.song_id == str(r.group_id)))
    assert np.mean(np.array(ranks) <= 2) >= 0.75, ranks  # hummed: pitch errors, drift, noise, a room


def test_query_without_melody_gives_empty_result_with_reason(f0_index, caplog):
    s = F0DtwSearcher(f0_index, threads=1)
    for y in (np.zeros(SR * 3, np.float32), np.random.default_rng(5).standard_normal(SR * 3).astype(np.float32) * 0.2):
        with caplog.at_level("WARNING"):
            assert s.query(y, sr=SR) == []
        assert "no melody" in s.last_reason and "no melody" in caplog.text
    with pytest.raises(ValueError, match="empty"):
        s.query(np.zeros(0, np.float32), sr=SR)
    with pytest.raises(ValueError):
        F0DtwSearcher(f0_index, key_shifts=())
    with pytest.raises(ValueError):
        F0DtwSearcher(f0_index, band_fraction=2.0)


def test_key_shifts_and_scores(f0_index):
    c = f0_index.contour(f0_index.song_ids[1])[40:110].copy()
    s = F0DtwSearcher(f0_index, threads=1, key_shifts=(-1.0, 0.0, 1.0), refine=0)
    scores, starts = s.score(c)
    assert np.argmax(scores) == 1 and scores[1] == pytest.approx(0.0, abs=1e-5) and starts[1] == 40
    shifted = s.score(c + 1.0)[0]                        # a semitone off: the -1 shift recovers it
    assert shifted[1] == pytest.approx(0.0, abs=1e-5)
    assert F0DtwSearcher(f0_index, key_shifts=(0.0,), refine=0).score(c + 1.0)[0][1] < -0.5   # DTW cannot undo it


def test_searcher_rerank_dtw_f0(f0_index, corpus, tmp_path):
    import shutil
    from tests._searchkit import tiny_fingerprinter
    from chadml.index import SongIndex
    from chadml.search import Searcher
    fp = tiny_fingerprinter()
    fp.model_id = "tiny-test"
    idx = SongIndex.create(tmp_path / "idx", fingerprinter=fp, model_id="tiny-test")
    songs = _originals(corpus)
    idx.add_songs([(sid, y, sid) for sid, y in songs], fp, progress_bar=False)
    shutil.copytree(f0_index.dir, tmp_path / "idx" / "f0")            # the default place: INDEX/f0
    s = Searcher(tmp_path / "idx", fingerprinter=fp, rerank="dtw-f0", threads=2)
    for sid, y in songs:
        m = s.query(y[int(3 * SR):int(10 * SR)], sr=SR, top=4)
        assert m[0].song_id == sid and abs(m[0].time_s - 3.0) <= 1.0
        assert "f0_s" in s.last_timing
    with pytest.raises(ValueError, match="query audio"):
        s.query_fingerprints(idx.fingerprints(songs[0][0])[:5])
    # noise: no melody (and no voiced audio) -> the encoder's ranking, none of it confident, with the reason
    noise = np.random.default_rng(6).standard_normal(SR * 4).astype(np.float32) * 0.2
    found = s.query(noise, sr=SR, top=2)
    assert len(found) == 2 and not any(m.confident for m in found)
    assert "max Pearson" in s.last_reason or "no voiced audio" in s.last_reason
    with pytest.raises(FileNotFoundError, match="F0 index"):
        Searcher(tmp_path / "idx", fingerprinter=fp, rerank="dtw-f0", f0_index=tmp_path / "nope")


def test_cli_evaluate_f0_dtw_and_f0_index(corpus, tmp_path, capsys):
    from chadml.cli import main
    from chadml.data import Manifest
    hums = [r for r in Manifest.read(corpus.hummings).rows if r.audio_type == "humming"][:1]
    qdir = tmp_path / "q"
    qdir.mkdir()
    with open(tmp_path / "truth.csv", "w") as f:
        f.write("query,song\n")
        for r in hums:
            os.symlink(os.path.abspath(r.path), qdir / f"{r.id}.flac")
            f.write(f"{r.id},{r.group_id}\n")
    songs_dir = tmp_path / "songs"
    songs_dir.mkdir()
    from chadml.index import song_items
    for sid, p, _ in song_items(corpus.songs):
        if sid == str(hums[0].group_id):
            os.symlink(os.path.abspath(p), songs_dir / f"{sid}.flac")
    assert main(["-q", "f0-index", "build", "--songs", str(songs_dir), "--out", str(tmp_path / "f0")]) == 0
    assert "1 songs" in capsys.readouterr().out
    assert main(["-q", "evaluate", "--method", "f0-dtw", "--f0-index", str(tmp_path / "f0"), "--queries", str(qdir),
                 "--truth", str(tmp_path / "truth.csv"), "--json", str(tmp_path / "r.json")]) == 0
    rep = json.load(open(tmp_path / "r.json"))
    assert rep["queries"] == 1 and rep["meta"]["rerank"] == "f0-dtw" and rep["top1"] == 1.0
    assert main(["-q", "evaluate", "--method", "f0-dtw", "--queries", str(qdir),
                 "--truth", str(tmp_path / "truth.csv")]) == 2
    assert "--f0-index" in capsys.readouterr().err
