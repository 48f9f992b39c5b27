"""What a real recording does to a query (issue 14, items 1, 2 and 6): silence and noise around the hum
(chadml.features.voicing, the searchers' trimming, songs trimmed at ingest with their start kept),
a calibrated confidence and "no confident match" (chadml.search.confidence), and whistled queries for
the f0 + DTW matcher."""
from __future__ import annotations

import json
import logging
import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from _searchkit import fp_index, melody, random_songs, tiny_fingerprinter, unit_rows

from chadml.errors import UsageError
from chadml.features.voicing import VoicingConfig, aperiodicity, find_voiced, trim_to_voiced, voiced_pitch
from chadml.index import SongIndex
from chadml.search import Match, Searcher
from chadml.search.confidence import (CALIBRATION_FILE, DEFAULT_CALIBRATIONS, Calibration, fit_calibration,
                                      load_calibration, save_calibration, score_features)

pytestmark = pytest.mark.usefixtures("one_faiss_thread")

SR = 16000


def silence(s):
    return np.zeros(int(s * SR), np.float32)


def noise(s, db=-50.0, seed=0):
    """White noise at ``db`` dBFS RMS."""
    return (np.random.default_rng(seed).standard_normal(int(s * SR)) * 10 ** (db / 20)).astype(np.float32)


def beep(s=0.5, hz=1000.0):
    t = np.arange(int(s * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


# ------------------------------------------------------------------------------------ voicing

def test_voiced_part_of_a_padded_hum():
    hum = melody(np.random.default_rng(0), 6.0)
    for pre, post, start in ((silence(5), silence(0), 5.0), (silence(0), silence(5), 0.0),
                             (silence(3), silence(3), 3.0), (noise(5), silence(0), 5.0)):
        y = np.r_[pre, hum, post]
        part = find_voiced(y, SR)
        assert part.voiced and part.enough and not part.silent
        assert part.start_s == pytest.approx(max(0.0, start - 0.25), abs=0.1)
        assert part.end / SR == pytest.approx(start + 6.0 + 0.25 if post.size else len(y) / SR, abs=0.1)
        assert part.voiced_s == pytest.approx(6.0, abs=0.4)
        kept, _ = trim_to_voiced(y, SR)
        assert len(kept) == part.kept_samples and part.to_original(1.0) == pytest.approx(part.start_s + 1.0)


def test_noise_silence_and_beeps_are_not_enough_voice():
    assert find_voiced(silence(4), SR).silent
    white = np.random.default_rng(1).standard_normal(4 * SR).astype(np.float32) * 0.3
    assert not find_voiced(white, SR).voiced and float(np.median(aperiodicity(white, SR))) > 0.7
    b = find_voiced(np.r_[silence(1), beep(0.5), silence(1)], SR)
    assert b.voiced and not b.enough and b.voiced_s == pytest.approx(0.5, abs=0.15)


def test_long_pauses_are_shortened_and_times_map_back():
    rng = np.random.default_rng(2)
    a, b = melody(rng, 3.0), melody(rng, 3.0)
    y = np.r_[a, silence(6), b]
    part = find_voiced(y, SR, VoicingConfig(max_gap_s=2.0))
    assert len(part.segments) == 2 and part.kept_samples / SR == pytest.approx(8.0, abs=0.2)
    # the first sample of b, in the trimmed signal, maps back to 9 s in the recording
    t_b = (part.segments[0, 1] - part.segments[0, 0]) / SR + (9 * SR - part.segments[1, 0]) / SR
    assert part.to_original(t_b) == pytest.approx(9.0, abs=1e-6)
    whole = find_voiced(y, SR)                                   # songs: pauses kept
    assert len(whole.segments) == 1


def test_voicing_config_is_checked():
    for bad in (dict(top_db=0), dict(fmin=3000), dict(hop_length=0), dict(max_gap_s=-1), dict(min_voiced_s=-1)):
        with pytest.raises(ValueError):
            VoicingConfig(**bad)
    assert VoicingConfig.from_dict(VoicingConfig(max_gap_s=2.0).to_dict()).max_gap_s == 2.0


def test_whistle_pitch_is_measured():
    t = np.arange(SR) / SR
    assert voiced_pitch((0.3 * np.sin(2 * np.pi * 2200 * t)).astype(np.float32), SR) == pytest.approx(2200, rel=0.02)
    assert voiced_pitch(silence(1), SR) is None


# ------------------------------------------------------------------------- the encoder searcher

@pytest.fixture(scope="module")
def tunes_index(tmp_path_factory):
    rng = np.random.default_rng(3)
    fp = tiny_fingerprinter()
    audio = {f"tune{i}": melody(rng, 14.0) for i in range(8)}
    idx = SongIndex.create(tmp_path_factory.mktemp("rob") / "ix", fingerprinter=fp)
    idx.add_songs([(k, v, k.title()) for k, v in audio.items()], fp, progress_bar=False)
    return idx, fp, audio


@pytest.mark.parametrize("rerank", ["pearson", "dtw"])
def test_padded_queries_score_like_clean_ones(tunes_index, rerank):
    """Issue 14's table: 5 s of silence before/after, 3 s on both sides, 5 s of -50 dB noise before."""
    idx, fp, audio = tunes_index
    s = Searcher(idx, fingerprinter=fp, rerank=rerank)
    hum = audio["tune5"][3 * SR:10 * SR] + noise(7, -40, seed=5)
    clean = s.query(hum, top=3)
    assert clean[0].song_id == "tune5" and abs(clean[0].time_s - 3.0) <= 0.3
    for pre, post in ((silence(5), silence(0)), (silence(0), silence(5)), (silence(3), silence(3)),
                      (noise(5), silence(0))):
        ms = s.query(np.r_[pre, hum, post], top=3)
        assert ms[0].song_id == "tune5"
        assert ms[0].score == pytest.approx(clean[0].score, abs=0.02)
        assert abs(ms[0].time_s - clean[0].time_s) <= 0.3                 # the song's time of the hum
        assert s.last_timing["query_start_s"] == pytest.approx(max(0.0, len(pre) / SR - 0.25), abs=0.1)
    # without trimming, the padding drags the score down (what issue 14 measured)
    raw = Searcher(idx, fingerprinter=fp, rerank=rerank, voicing=False).query(np.r_[silence(5), hum], top=1)
    assert raw[0].score < clean[0].score - 0.02 or raw[0].song_id != "tune5"


def test_queries_without_enough_voice_are_not_confident(tunes_index, caplog):
    idx, fp, audio = tunes_index
    s = Searcher(idx, fingerprinter=fp)
    assert s.query(silence(5)) == []
    with caplog.at_level(logging.WARNING):
        ms = s.query(np.random.default_rng(4).standard_normal(5 * SR).astype(np.float32) * 0.2, top=3)
    assert len(ms) == 3 and not any(m.confident for m in ms) and all(m.confidence == 0.0 for m in ms)
    assert "no voiced audio" in s.last_reason and "no voiced audio" in caplog.text
    ms = s.query(np.r_[silence(2), beep(0.5), silence(2)], top=3)
    assert not any(m.confident for m in ms) and "only 0.5" in s.last_reason
    ms = s.query(audio["tune2"][2 * SR:9 * SR], top=3)            # a real excerpt: answered, reason cleared
    assert ms[0].song_id == "tune2" and s.last_reason is None and ms[0].confidence is not None


def test_songs_are_trimmed_at_ingest_and_match_times_stay_the_recordings(tmp_path, tunes_index):
    _, fp, audio = tunes_index
    idx = SongIndex.create(tmp_path / "ix", fingerprinter=fp)
    padded = {k: np.r_[silence(4.0), v, silence(3.0)] for k, v in audio.items()}
    idx.add_songs(list(padded.items()), fp, progress_bar=False)
    starts = idx.starts()
    assert starts == pytest.approx(np.full(len(audio), 3.75), abs=0.1)
    assert idx.song("tune1").duration == pytest.approx(21.0)          # the recording's length
    assert abs(idx.song("tune1").n_fingerprints - tunes_index[0].song("tune1").n_fingerprints) <= 4
    s = Searcher(idx, fingerprinter=fp)
    ms = s.query(audio["tune1"][5 * SR:11 * SR], top=1)
    assert ms[0].song_id == "tune1" and abs(ms[0].time_s - 9.0) <= 0.3       # 4 s of silence + 5 s
    # the starts live per generation: kept through an add, a remove and a compaction
    idx.add_fingerprints("extra", np.ones((20, idx.dim), np.float32), {"start": 1.5})
    idx.remove(["tune0"], compact=True)
    re = SongIndex.open(idx.dir)
    assert re.starts(re.positions(["tune1", "extra"])) == pytest.approx([starts[1], 1.5])
    files = sorted(f for f in os.listdir(idx.dir) if f.startswith("starts-"))
    assert len(files) <= 2 and files[-1] == f"starts-{re.generation}.json"
    # an index made before songs were trimmed (no starts file) answers in the recording's time too
    old = SongIndex.create(tmp_path / "old", fingerprinter=fp)
    old.add_fingerprint_items([(k, fp.from_audio(v)[0], {"title": k}) for k, v in audio.items()], progress_bar=False)
    assert not any(f.startswith("starts-") for f in os.listdir(old.dir)) and not old.starts().any()
    assert Searcher(old, fingerprinter=fp).query(np.r_[silence(5), audio["tune1"][5 * SR:11 * SR]], top=1)[0].song_id \
        == "tune1"


def test_a_killed_writers_starts_file_is_not_read(tmp_path):
    from chadml.index.starts import write_starts
    idx = fp_index(tmp_path / "ix", random_songs(np.random.default_rng(5), 3))
    g = idx.generation
    write_starts(idx.dir, g + 1, {"song000": 7.0})              # written, then the writer died before commit
    idx.add_fingerprints("new", unit_rows(np.random.default_rng(6), 30))
    assert idx.generation == g + 1 and not idx.starts().any()


def test_silent_and_short_songs_are_refused_or_skipped(tmp_path, caplog, tunes_index):
    _, fp, audio = tunes_index
    idx = SongIndex.create(tmp_path / "ix", fingerprinter=fp)
    for y, what in ((silence(8), "silent"), (np.r_[silence(1), audio["tune0"][:8000]], "0.5"),
                    (np.random.default_rng(7).standard_normal(8 * SR).astype(np.float32) * 0.1, "not voiced")):
        with pytest.raises(UsageError, match=what) as e:
            idx.add_songs([("bad", y), ("good", audio["tune0"])], fp, progress_bar=False)
        assert "--skip-bad" in str(e.value) and "'bad'" in str(e.value)
    assert len(idx) == 0                                          # all or none
    with caplog.at_level(logging.WARNING):
        added = idx.add_songs([("bad", silence(8)), ("good", audio["tune0"])], fp, progress_bar=False,
                              on_error="skip")
    assert added == ["good"] and "skipping song 'bad'" in caplog.text and "silent" in caplog.text


# ------------------------------------------------------------------------------ confidence

def test_score_features_and_calibration_fit():
    rng = np.random.default_rng(8)
    null = [score_features(rng.normal(0.4, 0.05, 300)) for _ in range(200)]
    hit = [score_features(np.r_[0.4 + rng.uniform(0.2, 0.5), rng.normal(0.4, 0.05, 299)]) for _ in range(200)]
    assert np.mean([f[0] for f in null]) == pytest.approx(0.0, abs=0.5)     # z: the chance maximum removed
    cal = fit_calibration(hit, null, "pearson", fitted_on="synthetic")
    assert cal.stats["positives_confident"] > 0.95 and cal.stats["negatives_not_confident"] > 0.95
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    assert score_features([0.9, 0.1]) is None and cal.confidence([0.9, 0.1]) == 0.0      # too few songs
    with pytest.raises(ValueError):
        fit_calibration(hit[:1], null, "pearson")
    with pytest.raises(ValueError):
        Calibration("pearson", (1.0, 2.0))
    assert set(DEFAULT_CALIBRATIONS) == {"pearson", "dtw", "dtw-f0", "f0-dtw", "pearson+tempo"}
    # the tempo re-scored max Pearson has no fit of its own: max Pearson's, under its own name
    assert DEFAULT_CALIBRATIONS["pearson+tempo"].coef == DEFAULT_CALIBRATIONS["pearson"].coef
    assert DEFAULT_CALIBRATIONS["pearson+tempo"].rerank == "pearson+tempo"


def test_calibration_is_stored_with_the_index(tmp_path):
    idx = fp_index(tmp_path / "ix", random_songs(np.random.default_rng(9), 8))
    assert load_calibration(idx.dir, "pearson") is DEFAULT_CALIBRATIONS["pearson"]
    mine = Calibration("pearson", (-1.0, 0.5, 0.5), threshold=0.9, fitted_on="this index")
    save_calibration(idx.dir, mine)
    save_calibration(idx.dir, Calibration("dtw", (-2.0, 1.0, 1.0)))
    assert load_calibration(idx.dir, "pearson") == mine and load_calibration(idx.dir, "dtw").coef[0] == -2.0
    assert Searcher(idx).calibration == mine and Searcher(idx, rerank="dtw").calibration.coef[0] == -2.0
    assert json.load(open(os.path.join(idx.dir, CALIBRATION_FILE)))["kind"] == "chad-calibration"
    assert len(SongIndex.open(idx.dir)) == 8                                    # the index opens as before


def test_calibrate_a_searcher_on_its_own_index(tmp_path, tunes_index):
    from chadml.search import calibrate
    idx, fp, audio = tunes_index
    s = Searcher(idx, fingerprinter=fp)
    rng = np.random.default_rng(14)
    pos = [(audio[k][a * SR:(a + 6) * SR] + noise(6, -35, seed=a), k) for a, k in ((1, "tune1"), (4, "tune3"),
                                                                                   (2, "tune6"), (6, "tune7"))]
    neg = [melody(rng, 6.0) for _ in range(4)] + [beep(0.5)]
    cal = calibrate(s, pos, neg, fitted_on="4 excerpts and 4 other melodies")
    assert cal.rerank == "pearson" and cal.stats["positives"] == 4
    assert cal.stats["negatives"] == 4                                   # the beep: too little voice, left out
    assert s.last_features is not None and len(s.last_features) == 2
    save_calibration(tmp_path, cal)
    assert load_calibration(tmp_path, "pearson") == cal


def smooth_rows(rng, n, rho=0.95, dim=128):
    """L2-normalised fingerprints that change slowly from window to window, as those of overlapping
    analysis windows do (AR(1) per dimension)."""
    x = rng.standard_normal((n, dim))
    for i in range(1, n):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho ** 2) * x[i]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("rerank", ["pearson", "dtw"])
def test_in_catalogue_confident_out_of_catalogue_not(tmp_path, rerank):
    rng = np.random.default_rng(10)
    songs = {f"song{i:03d}": smooth_rows(rng, int(rng.integers(80, 400))) for i in range(80)}
    idx = fp_index(tmp_path / "ix", songs)
    s = Searcher(idx, rerank=rerank)
    hits = []
    for i in range(10):
        sid = f"song{i * 7:03d}"
        q = songs[sid][10:46] + 0.7 * smooth_rows(rng, 36)
        ms = s.query_fingerprints(q, top=3)
        assert ms[0].song_id == sid
        hits.append(ms[0])
        assert not any(m.confident for m in ms[1:]) and all(m.confidence <= 1 - ms[0].confidence + 1e-9 for m in ms[1:])
    assert all(m.confident and m.confidence > 0.9 for m in hits)
    # tunes the index lacks, as pure chance (songs of 20 s to 100 s). The built-in calibration, fitted on real
    # hums, reports 2-3 % of hums of other tunes as confident; chance fingerprints are a harder case for it
    misses = [s.query_fingerprints(smooth_rows(rng, 36), top=3)[0] for _ in range(40)]
    assert np.mean([m.confident for m in misses]) <= 0.3 and np.median([m.confidence for m in misses]) < 0.3
    assert max(m.confidence for m in misses) < min(m.confidence for m in hits)
    d = hits[0].to_dict()
    assert list(d)[:5] == ["song_id", "title", "score", "time_s", "rank"] and {"confidence", "confident"} <= set(d)


def test_cli_query_says_no_confident_match(tmp_path, capsys, tunes_index):
    import soundfile as sf
    from chadml.cli import main
    from chadml.models import save_checkpoint
    from chadml.training import TrainConfig
    _, fp, audio = tunes_index
    ckpt = str(tmp_path / "m.pt")
    save_checkpoint(ckpt, model=fp.model, feature_config=fp.feature_config, window_config=fp.window_config,
                    train_config=TrainConfig())
    idx = SongIndex.create(tmp_path / "ix", fingerprinter=fp, model_path=ckpt)
    idx.add_songs(list(audio.items()), fp, progress_bar=False)
    sf.write(tmp_path / "noise.wav", np.random.default_rng(11).standard_normal(6 * SR).astype(np.float32) * 0.2, SR)
    sf.write(tmp_path / "beep.wav", np.r_[silence(1), beep(0.5), silence(1)], SR)
    capsys.readouterr()
    assert main(["-q", "query", "--index", str(idx.dir), str(tmp_path / "noise.wav"), str(tmp_path / "beep.wav"),
                 "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("no confident match") == 2 and "no voiced audio" in out and "only 0.5" in out
    assert main(["-q", "query", "--index", str(idx.dir), str(tmp_path / "beep.wav"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["confident"] is False and "only 0.5" in d["reason"] and d["matches"][0]["confident"] is False


def test_contours_of_padded_recordings_keep_their_times():
    from chadml.search import F0Config, f0_contour
    cfg = F0Config(crepe_model="tiny", hop_length=320)
    y = melody(np.random.default_rng(15), 4.0)
    c0, t0 = f0_contour(y, SR, cfg)
    c1, t1 = f0_contour(np.r_[silence(3), y, noise(2)], SR, cfg)
    assert len(c0) > 20 and abs(len(c1) - len(c0)) <= 2
    assert t1[0] == pytest.approx(t0[0] + 3.0, abs=0.05)
    n = min(len(c0), len(c1)) - 2
    assert np.median(np.abs(c1[1:n] - c0[1:n])) < 0.5


# ------------------------------------------------------------------------------ whistles

def _tune(rng, seconds=14.0, note_s=0.45):
    """A folk-like line: steps and small leaps on a major scale (a reflected random walk of degrees)."""
    from chadml.corpus import Notes
    n = int(seconds / note_s)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    deg = np.abs(np.cumsum(rng.choice([-2, -1, 1, 2, 3], size=n)) + 4) % 18
    deg = np.where(deg > 9, 18 - deg, deg)
    pitch = 55.0 + scale[deg]
    on = np.arange(n) * note_s
    return Notes(on, np.full(n, note_s * 0.95), pitch)


@pytest.fixture(scope="module")
def whistle_setup(tmp_path_factory):
    """Four sung songs in an F0 index, and whistled and hummed excerpts of them (chadml.corpus.hum)."""
    from chadml.corpus import Singer, hum, render
    from chadml.search import F0Config, F0Index
    rng = np.random.default_rng(12)
    tunes = {f"song{i}": _tune(rng) for i in range(4)}
    songs = [(k, render(n, Singer.random(rng), 14.0, rng)) for k, n in tunes.items()]
    idx = F0Index.build(tmp_path_factory.mktemp("f0") / "f0", songs, F0Config(crepe_model="tiny", hop_length=320),
                        progress_bar=False)
    queries = {style: {k: hum(n, 3.0, 10.0, 2.0, np.random.default_rng(13), style=style) for k, n in tunes.items()}
               for style in ("whistle", "mm")}
    return idx, queries


def test_whistled_queries_are_found_by_the_f0_matcher(whistle_setup, monkeypatch):
    import chadml.search.contour as contour
    from chadml.search import F0DtwSearcher
    idx, queries = whistle_setup
    s = F0DtwSearcher(idx)

    def found(style):
        return [sid for sid, y in queries[style].items() if (ms := s.query(y, top=4)) and ms[0].song_id == sid
                and abs(ms[0].time_s - 3.0) <= 1.0]

    for y in queries["whistle"].values():
        assert voiced_pitch(y, SR) > 700                          # two octaves above the songs' voices
        assert contour.octave_shift(y, SR, idx.config.fmax) >= 1
    hummed, whistled = found("mm"), found("whistle")
    assert len(hummed) >= 3 and set(whistled) == set(hummed)      # whistles found as the hums of the same notes
    # without the octave shift CREPE (range ending at 2 kHz, fmax 1000 Hz) loses the whistles' tunes
    monkeypatch.setattr(contour, "octave_shift", lambda *a: 0)
    assert len(found("whistle")) < len(whistled)


def test_evaluate_reports_the_confident_shares():
    from chadml.evaluate import evaluate

    class Fake:
        last_timing: dict = {}

        def query(self, audio, sr=16000, top=10):
            best, sure = {"a": ("x", True), "b": ("y", True), "c": ("z", False)}[audio]
            return [Match(best, best, 0.9, 0.0, 1, 0.9 if sure else 0.1, sure)]

    rep = evaluate(Fake(), [("qa", "a"), ("qb", "b"), ("qc", "c")], {"qa": "x", "qb": "x", "qc": "z"},
                   progress_bar=False)
    assert [q["confident"] for q in rep.per_query] == [True, True, False] and rep.per_query[2]["confidence"] == 0.1
    assert rep.meta["confident"] == pytest.approx(2 / 3)
    assert rep.meta["confident_right"] == pytest.approx(1 / 3) and rep.meta["confident_wrong"] == pytest.approx(1 / 3)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2 ** 16), f0=st.floats(70.0, 2400.0), noise=st.floats(0.0, 1.0), n=st.integers(1, 40000))
def test_aperiodicity_alone_is_yins_aperiodicity(seed, f0, noise, n):
    """`aperiodicity` skips YIN's f0 step: the same values as `yin(...)[0]`, for tones, noise and mixtures."""
    from chadml.features.voicing import yin
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    y = (np.sin(2 * np.pi * f0 * t) + noise * rng.standard_normal(n)).astype(np.float32)
    ap, hz = yin(y, SR)
    np.testing.assert_array_equal(aperiodicity(y, SR), ap)
    ap2, hz2 = yin(y, SR, want_f0=False)
    np.testing.assert_array_equal(ap2, ap)
    assert not hz2.any()
