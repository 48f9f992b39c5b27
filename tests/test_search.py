"""chadml.search: a song found from its own excerpt (fingerprint level and audio level), the matched
time, ANN vs exhaustive candidates, Pearson and DTW re-ranking, M_fused, robustness, `chad query`."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from _searchkit import fp_index, melody, random_songs, tiny_fingerprinter, unit_rows

from chadml.index import IndexMismatchError, SongIndex
from chadml.search import TIMING_KEYS, FusedSearcher, Match, Searcher


pytestmark = pytest.mark.usefixtures("one_faiss_thread")


@pytest.fixture(scope="module")
def fp_songs(tmp_path_factory):
    rng = np.random.default_rng(0)
    songs = random_songs(rng, 60, 80, 160)
    idx = fp_index(tmp_path_factory.mktemp("fp") / "ix", songs)
    return idx, songs


@pytest.mark.parametrize("k", [5000, 8])          # every song re-ranked / the ANN step picks 8
@pytest.mark.parametrize("rerank", ["pearson", "dtw"])
def test_noisy_slice_finds_its_song_and_time(fp_songs, k, rerank):
    idx, songs = fp_songs
    rng = np.random.default_rng(1)
    for sid, start in (("song007", 13), ("song042", 40), ("song059", 0)):
        q = songs[sid][start:start + 36] + 0.08 * rng.standard_normal((36, 128)).astype(np.float32)
        s = Searcher(idx, k=k, rerank=rerank)
        ms = s.query_fingerprints(q, top=5)
        assert [m.rank for m in ms] == [1, 2, 3, 4, 5]
        assert ms[0].song_id == sid and ms[0].title == sid.upper()
        assert ms[0].time_s == pytest.approx(start * 0.25)
        assert all(a.score >= b.score for a, b in zip(ms, ms[1:]))
        t = s.last_timing
        assert t["n_candidates"] == (60 if k == 5000 else 8) and t["rerank_s"] > 0
        assert (t["ann_s"] > 0) == (k == 8)
    if rerank == "pearson":
        assert ms[0].score > 0.6 and ms[1].score < 0.3     # noise: 1/sqrt(1 + 128 * 0.08**2) = 0.74


def test_pearson_scores_match_a_direct_computation(fp_songs):
    idx, songs = fp_songs
    q = songs["song010"][5:25].copy()
    ms = Searcher(idx).query_fingerprints(q, top=60)
    for m in ms[:5]:
        t = songs[m.song_id]
        lag = int(round(m.time_s / 0.25))
        a, b = q.ravel(), t[lag:lag + len(q)].ravel()
        assert m.score == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-4)


def test_query_longer_than_songs(tmp_path):
    rng = np.random.default_rng(2)
    songs = random_songs(rng, 10, 30, 40)
    idx = fp_index(tmp_path / "ix", songs)
    q = np.concatenate([unit_rows(rng, 20), songs["song004"], unit_rows(rng, 25)])
    ms = Searcher(idx).query_fingerprints(q, top=3)
    assert ms[0].song_id == "song004" and ms[0].score > 0.9 and ms[0].time_s == 0.0


def test_empty_index_and_bad_arguments(tmp_path):
    idx = fp_index(tmp_path / "ix", {})
    s = Searcher(idx)
    assert s.query_fingerprints(unit_rows(np.random.default_rng(0), 12)) == []
    assert s.last_timing["n_candidates"] == 0
    with pytest.raises(ValueError, match="rerank"):
        Searcher(idx, rerank="cosine")
    with pytest.raises(ValueError, match="k must"):
        Searcher(idx, k=0)
    with pytest.raises(ValueError, match="top"):
        s.query_fingerprints(unit_rows(np.random.default_rng(0), 12), top=0)
    with pytest.raises(ValueError, match=r"\(n >= 1, 128\)"):
        s.query_fingerprints(np.zeros((4, 64), np.float32))
    from chadml import ChadError
    with pytest.raises(ChadError, match="no model checkpoint"):
        s.query(np.ones(16000, np.float32))


# ---- audio level ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def audio_index(tmp_path_factory):
    rng = np.random.default_rng(3)
    fp = tiny_fingerprinter()
    audio = {f"tune{i}": melody(rng, 14.0) for i in range(6)}
    idx = SongIndex.create(tmp_path_factory.mktemp("au") / "ix", fingerprinter=fp)
    idx.add_songs([(k, v, k.title()) for k, v in audio.items()], fp, progress_bar=False)
    return idx, fp, audio


def test_excerpt_of_a_song_finds_it(audio_index):
    idx, fp, audio = audio_index
    s = Searcher(idx, fingerprinter=fp)
    rng = np.random.default_rng(4)
    y = audio["tune3"][4 * 16000:11 * 16000]
    y = y + 0.01 * rng.standard_normal(len(y)).astype(np.float32)
    ms = s.query(y, sr=16000, top=3)
    assert ms[0].song_id == "tune3" and ms[0].title == "Tune3"
    assert abs(ms[0].time_s - 4.0) <= 0.3
    t = s.last_timing
    for key in ("load_s", "fingerprint_s", "ann_s", "rerank_s", "total_s"):
        assert key in t and t[key] >= 0
    assert set(TIMING_KEYS) <= set(t)
    assert t["total_s"] >= t["rerank_s"]
    batch = s.query_batch([y, audio["tune1"][:8 * 16000]], top=2)
    assert [b[0].song_id for b in batch] == ["tune3", "tune1"] and len(s.batch_timing) == 2


def test_robustness(audio_index, tmp_path, caplog):
    import soundfile as sf
    from chadml import ChadError
    idx, fp, audio = audio_index
    s = Searcher(idx, fingerprinter=fp)
    with caplog.at_level(logging.WARNING):
        assert s.query(np.zeros(5 * 16000, np.float32)) == []
    assert "silent" in caplog.text and s.last_timing["silent"]
    short = s.query(audio["tune2"][:8000], top=3)            # 0.5 s: one (padded) window
    assert len(short) == 3 and isinstance(short[0], Match)
    # a 5-minute query: cut to max_query_s, still answered
    long = np.tile(audio["tune5"], 22)[:300 * 16000]
    ms = Searcher(idx, fingerprinter=fp, max_query_s=20.0).query(long, top=2)
    assert ms[0].song_id == "tune5"
    # a stereo 44.1 kHz file
    y = audio["tune0"][2 * 16000:10 * 16000]
    import librosa
    y44 = librosa.resample(y, orig_sr=16000, target_sr=44100)
    sf.write(tmp_path / "st.wav", np.stack([y44, 0.5 * y44], axis=1), 44100)
    assert s.query(str(tmp_path / "st.wav"), top=1)[0].song_id == "tune0"
    # a stereo array (channels first) at 16 kHz
    assert s.query(np.stack([y, y]), top=1)[0].song_id == "tune0"
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises((ChadError, ValueError)):
        s.query(str(tmp_path / "bad.wav"))
    with pytest.raises(FileNotFoundError):
        s.query(str(tmp_path / "nope.wav"))
    with pytest.raises(ValueError, match="empty"):
        s.query(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="finite"):
        s.query(np.full(16000, np.nan, np.float32))


def test_wrong_model_is_refused(audio_index):
    idx, _, _ = audio_index
    with pytest.raises(IndexMismatchError):
        Searcher(idx, fingerprinter=tiny_fingerprinter(seed=5))


def test_fused_picks_short_or_long(tmp_path, audio_index):
    idx_short, fp_short, audio = audio_index
    fp_long = tiny_fingerprinter(seed=1, window=(8.0, 0.64))
    idx_long = SongIndex.create(tmp_path / "long", fingerprinter=fp_long)
    idx_long.add_songs(list(audio.items()), fp_long, progress_bar=False)
    fs = FusedSearcher(Searcher(idx_short, fingerprinter=fp_short), Searcher(idx_long, fingerprinter=fp_long))
    assert fs.query(audio["tune4"][:10 * 16000], top=1)[0].song_id == "tune4"
    assert fs.last_timing["model"] == "short"
    assert fs.query(audio["tune4"][:14 * 16000], top=1)[0].song_id == "tune4"
    assert fs.last_timing["model"] == "short"
    long_q = np.concatenate([audio["tune4"], audio["tune4"][:2 * 16000]])     # 16 s
    assert fs.query(long_q, top=1)[0].song_id == "tune4" and fs.last_timing["model"] == "long"
    with pytest.raises(ValueError):
        FusedSearcher(fs.short, fs.long, threshold_s=0)


def test_cli_index_query_evaluate(tmp_path, capsys):
    """`chad index build/add/remove/info`, `chad query`, `chad evaluate` end to end on a tiny model."""
    import soundfile as sf
    from chadml.cli import main
    from chadml.models import checkpoint_id, save_checkpoint
    from chadml.training import TrainConfig

    fp = tiny_fingerprinter()
    ckpt = str(tmp_path / "m.pt")
    save_checkpoint(ckpt, model=fp.model, feature_config=fp.feature_config, window_config=fp.window_config,
                    train_config=TrainConfig())
    mid = checkpoint_id(ckpt)
    rng = np.random.default_rng(9)
    songs = tmp_path / "songs"
    songs.mkdir()
    tunes = {f"t{i}": melody(rng, 10.0) for i in range(4)}
    for k, v in tunes.items():
        sf.write(songs / f"{k}.wav", v, 16000)
    ix = str(tmp_path / "ix")
    assert main(["-q", "index", "build", "--model", ckpt, "--songs", str(songs), "--out", ix]) == 0
    more = tmp_path / "more"
    more.mkdir()
    sf.write(more / "t9.wav", melody(rng, 9.0), 16000)
    assert main(["-q", "index", "add", "--index", ix, "--songs", str(more)]) == 0
    assert main(["-q", "index", "add", "--index", ix, "--songs", str(more)]) == 2      # already there
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    sf.write(mixed / "t7.wav", melody(rng, 8.0), 16000)
    (mixed / "t8.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    assert main(["-q", "index", "add", "--index", ix, "--songs", str(mixed)]) in (1, 2)   # all or none
    assert len(SongIndex.open(ix)) == 5
    assert main(["-q", "index", "add", "--index", ix, "--songs", str(mixed), "--skip-bad"]) == 0
    assert "t7" in SongIndex.open(ix) and "t8" not in SongIndex.open(ix)
    assert main(["-q", "index", "remove", "--index", ix, "t9", "t7"]) == 0
    assert main(["-q", "index", "remove", "--index", ix, "t9"]) == 2
    capsys.readouterr()
    assert main(["-q", "index", "info", "--index", ix, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["songs"] == 4 and info["model_id"] == mid
    queries = tmp_path / "queries"
    queries.mkdir()
    sf.write(queries / "q1.wav", tunes["t2"][3 * 16000:9 * 16000], 16000)
    sf.write(queries / "q2.wav", tunes["t0"][1 * 16000:8 * 16000], 16000)
    assert main(["-q", "query", "--index", ix, str(queries / "q1.wav"), "--top", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert out["matches"][0]["song_id"] == "t2" and abs(out["matches"][0]["time_s"] - 3.0) <= 0.3
    assert main(["-q", "query", "--index", ix, str(queries / "q2.wav")]) == 0
    assert "t0" in capsys.readouterr().out
    assert main(["-q", "query", "--index", ix, str(tmp_path / "missing.wav")]) == 2
    (tmp_path / "truth.csv").write_text("query,song,singer\nq1,t2,a\nq2,t0,b\n")
    rep = tmp_path / "rep.json"
    assert main(["-q", "evaluate", "--index", ix, "--queries", str(queries), "--truth", str(tmp_path / "truth.csv"),
                 "--json", str(rep), "--plot", str(tmp_path / "rep.png")]) == 0
    r = json.loads(rep.read_text())
    assert r["top1"] == 1.0 and r["mrr"] == 1.0 and len(r["per_query"]) == 2
    assert (tmp_path / "rep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["-q", "index", "info", "--index", str(tmp_path / "nope")]) == 2
    with pytest.raises(SystemExit) as e:
        main(["query", "--help"])
    assert e.value.code == 0
    assert "--method" not in capsys.readouterr().out            # that is `chad evaluate`'s option


def test_cli_query_usage_errors_name_the_flag(tmp_path, capsys):
    from chadml.cli import main
    for argv, flag in ((["--top", "0"], "--top"), (["-k", "0"], "--candidates"), ([], "--index"),
                       (["--threads", "-2"], "--threads")):
        index = [] if flag == "--index" else ["--index", str(tmp_path / "ix")]
        assert main(["-q", "query", *index, *argv, str(tmp_path / "q.wav")]) == 2
        err = capsys.readouterr().err
        assert flag in err and len(err.strip().splitlines()) == 1, err


def test_cli_rerank_choices_are_the_searchers():
    from chadml.cli.options import RERANK_CHOICES
    from chadml.search import RERANKERS
    assert RERANK_CHOICES == RERANKERS


def test_raw_feature_searcher_finds_its_song_with_the_timing_keys():
    from chadml.search import RawFeatureSearcher, SearcherProtocol
    rng = np.random.default_rng(5)
    songs = {f"t{i}": melody(rng, 6.0) for i in range(3)}
    s = RawFeatureSearcher(list(songs.items()), threads=1)
    assert isinstance(s, SearcherProtocol) and len(s) == 3
    ms = s.query(songs["t1"][16000:4 * 16000], top=2)
    assert ms[0].song_id == "t1" and abs(ms[0].time_s - 1.0) <= 0.1
    assert set(TIMING_KEYS) <= set(s.last_timing) and s.last_timing["duration_s"] == pytest.approx(3.0)
