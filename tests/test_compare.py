"""The CREPE feature path end to end (train -> index -> query with a tiny CREPE model) and `chad compare`
(f0-DTW, CQT and CREPE encoders in one table, saved as Markdown, JSON and PNG)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from chadml.features import SHORT, FeatureConfig
from chadml.training.train import TrainConfig, checkpoint_id, load_fingerprinter, train

TINY = TrainConfig(epochs=1, batch_size=8, per_group=2, width=4, steps_per_epoch=2)
SR = 16000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from chadml.search.f0 import F0Config, F0Index
    from chadml.corpus import build_corpus
    from chadml.data import Manifest
    from chadml.index import SongIndex, song_items
    root = tmp_path_factory.mktemp("cmp")
    corpus = build_corpus(root / "corpus", n_songs=3, n_covers=0, hummings_per_song=2, song_seconds=(10, 12),
                          humming_seconds=(4, 5), test_fraction=0.34, workers=1)
    man = Manifest.read(corpus.hummings)
    songs = song_items(corpus.songs)
    out = {"root": root, "corpus": corpus, "songs": songs}
    for name, fc in (("cqt", FeatureConfig()), ("crepe", FeatureConfig(kind="crepe", crepe_model="tiny"))):
        ckpt = train(man, root / f"{name}.pt", feature_config=fc, window_config=SHORT, config=TINY, split=None,
                     progress_bar=False)
        fp = load_fingerprinter(ckpt)
        fp.model_id = checkpoint_id(ckpt)
        idx = SongIndex.create(root / f"{name}.idx", fingerprinter=fp, model_id=fp.model_id, model_path=ckpt)
        idx.add_songs(songs, fp, progress_bar=False)
        out[name] = idx
    F0Index.build(root / "cqt.idx" / "f0", songs, F0Config(crepe_model="tiny"), progress_bar=False)
    hums = [r for r in man.rows if r.audio_type == "humming"][:3]
    qdir = root / "q"
    qdir.mkdir()
    with open(root / "truth.csv", "w") as f:
        f.write("query,song\n")
        for r in hums:
            os.symlink(os.path.abspath(r.path), qdir / f"{r.id}.flac")
            f.write(f"{r.id},{r.group_id}\n")
    out["queries"], out["truth"] = qdir, root / "truth.csv"
    return out


def test_crepe_model_trains_indexes_and_answers_queries(setup):
    from chadml.audio import load
    from chadml.search import Searcher
    idx = setup["crepe"]
    assert idx.feature_config["kind"] == "crepe" and idx.feature_config["crepe_model"] == "tiny"
    assert len(idx) == 3 and idx.dim == 128
    sid, path, _ = setup["songs"][1]
    y = load(path)
    fps = idx.fingerprints(sid)
    # 25 CREPE frames per second, a 3 s window every 0.25 s, over the song's voiced part (the index trims
    # leading and trailing silence)
    from chadml.features.voicing import trim_to_voiced
    voiced, part = trim_to_voiced(y, SR)
    assert abs(len(fps) - (len(voiced) / SR - 3.0) / 0.25) <= 2
    np.testing.assert_allclose(np.linalg.norm(fps, axis=1), 1.0, atol=1e-4)
    for rerank in ("pearson", "dtw"):
        s = Searcher(idx, rerank=rerank)
        m = s.query(y, sr=SR, top=3)           # the whole song as its own query
        # the match is at the start of the song's voiced part, in the song's own time
        assert m[0].song_id == sid and abs(m[0].time_s - part.start / SR) <= 0.3 and [x.rank for x in m] == [1, 2, 3]
        assert s.last_timing["fingerprint_s"] > 0
    # a CQT model cannot query the CREPE index
    from chadml.index import IndexMismatchError
    with pytest.raises(IndexMismatchError):
        Searcher(idx, fingerprinter=setup["root"] / "cqt.pt")


def test_compare_library_and_cli(setup, tmp_path, capsys):
    from chadml.cli import main
    out = tmp_path / "out"
    rc = main(["-q", "compare", "--index", str(setup["root"] / "cqt.idx"), "--crepe-index",
               str(setup["root"] / "crepe.idx"), "--queries", str(setup["queries"]), "--truth", str(setup["truth"]),
               "--out", str(out), "--threads", "2"])
    assert rc == 0
    printed = capsys.readouterr().out
    methods = ["f0-DTW (no learning)", "CQT encoder + Pearson", "CQT encoder + DTW", "CREPE encoder + Pearson",
               "CREPE encoder + DTW"]
    for m in methods:
        assert f"| {m} |" in printed
    md = (out / "compare.md").read_text()
    assert md.splitlines()[0].startswith("| method | top-1 | top-10 | MRR | median s/query")
    data = json.load(open(out / "compare.json"))
    assert data["format_version"] == 1 and [r["method"] for r in data["rows"]] == methods
    for r in data["rows"]:
        assert r["queries"] == 3 and r["failed"] == 0 and 0 <= r["top1"] <= r["top10"] <= 1
        assert r["median_query_s"] > 0 and len(r["report"]["per_query"]) == 3
        assert r["top10"] == 1.0                                  # 3 songs: every song is in the top 10
    assert data["rows"][0]["top1"] >= 2 / 3                      # f0-DTW finds the hummed songs
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(out) if f.startswith(".")]   # no temporary files left


def test_compare_needs_something_to_compare(setup, capsys):
    from chadml.cli import main
    from chadml.compare import compare
    with pytest.raises(ValueError, match="nothing to compare"):
        compare([("q", np.zeros(SR, np.float32))], {"q": "a"})
    rc = main(["-q", "compare", "--queries", str(setup["queries"]), "--truth", str(setup["truth"])])
    assert rc == 2 and "nothing to compare" in capsys.readouterr().err
