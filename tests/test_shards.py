"""Sharded indexes (chadml.index.shards) and their search (chadml.search.sharded): songs routed by id,
the ranking of a 3-shard index equal to that of one index (in process and on a local Ray cluster), a build
whose fingerprinting runs on Ray workers, and ``chad index build --shards`` / ``chad query --ray``."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from _searchkit import FEATURES, WINDOW, fp_index, melody, tiny_fingerprinter, unit_rows

from chadml.index import ShardedIndex, SongIndex, is_sharded, shard_of

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def smooth(rng, n: int) -> np.ndarray:
    e = rng.standard_normal((n + 11, 128)).astype(np.float32)
    c = np.concatenate((np.zeros((1, 128), np.float32), np.cumsum(e, axis=0)))
    a = c[12:] - c[:-12]
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def songs():
    rng = np.random.default_rng(0)
    return {f"song{i:03d}": smooth(rng, int(rng.integers(60, 120))) for i in range(24)}


def _sharded(path, songs, n=3, **kw):
    sh = ShardedIndex.create(path, n, model_id="test-model", feature_config=FEATURES, window_config=WINDOW, **kw)
    sh.add_fingerprint_items([(k, v, {"title": k.upper()}) for k, v in songs.items()], step_songs=5)
    sh.finish()
    return ShardedIndex.open(path)


def _queries(songs, n=8):
    rng = np.random.default_rng(1)
    out = []
    for k in list(songs)[:n]:
        start = int(rng.integers(0, len(songs[k]) - 29))
        out.append(songs[k][start:start + 29] + 0.4 * unit_rows(rng, 29))
    return out


def test_songs_go_to_their_shard_and_come_back(tmp_path, songs):
    sh = _sharded(tmp_path / "sh", songs, dtype="int8")
    assert is_sharded(sh.dir) and not is_sharded(sh.paths[0]) and sh.n_shards == 3 and len(sh) == len(songs)
    for k in songs:
        assert k in sh and k in sh.shard(shard_of(k, 3))
    info = sh.info()
    assert info["songs"] == len(songs) and info["dtype"] == "int8" and len(info["shards"]) == 3
    assert sh.unfinished_build is None
    assert sh.remove(["song001", "song002"]) == 2 and len(ShardedIndex.open(sh.dir)) == len(songs) - 2
    with pytest.raises(KeyError, match="song001"):
        sh.remove(["song001"])
    with pytest.raises(FileExistsError):
        ShardedIndex.create(sh.dir, 2, model_id="m", feature_config=FEATURES, window_config=WINDOW)


def _same_ranking(single, sharded, queries, top=10):
    for q in queries:
        a, b = single.query_fingerprints(q, top=top), sharded.query_fingerprints(q, top=top)
        assert [(m.song_id, m.rank) for m in a] == [(m.song_id, m.rank) for m in b]
        np.testing.assert_array_equal([m.score for m in a], [m.score for m in b])
        np.testing.assert_array_equal([m.time_s for m in a], [m.time_s for m in b])
        assert [m.confidence for m in a] == [m.confidence for m in b]


def test_three_shards_rank_as_one_index_in_process(tmp_path, songs):
    from chadml.search import Searcher
    from chadml.search.sharded import ShardedSearcher
    one = fp_index(tmp_path / "one", songs)
    sh = _sharded(tmp_path / "sh", songs)
    k = len(songs)           # every song re-ranked: the same candidates in both
    _same_ranking(Searcher(one, k=k, threads=1), ShardedSearcher(sh, k=k, threads=1), _queries(songs))


ray = pytest.importorskip("ray", reason="Ray is an optional dependency (pip install 'chad[distributed]')")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_three_shards_on_ray_rank_as_one_index(tmp_path, songs, local_ray):
    from chadml.search import Searcher
    from chadml.search.sharded import ShardedSearcher
    one = fp_index(tmp_path / "one", songs)
    sh = _sharded(tmp_path / "sh", songs)
    k = len(songs)
    s = ShardedSearcher(sh, ray_address="auto", k=k, threads=1)
    try:
        _same_ranking(Searcher(one, k=k, threads=1), s, _queries(songs))
        assert s.last_timing["n_shards"] == 3 and s.last_timing["n_candidates"] == len(songs)
    finally:
        s.close()


def test_build_fingerprints_on_ray_and_cli(tmp_path, local_ray, capsys):
    import soundfile as sf
    from chadml.cli import main
    from chadml.models import save_checkpoint
    from chadml.training import TrainConfig
    fp = tiny_fingerprinter()
    ckpt = str(tmp_path / "m.pt")
    save_checkpoint(ckpt, model=fp.model, feature_config=fp.feature_config, window_config=fp.window_config,
                    train_config=TrainConfig())
    rng = np.random.default_rng(3)
    folder = tmp_path / "songs"
    folder.mkdir()
    tunes = {f"t{i}": melody(rng, 8.0) for i in range(5)}
    for k, v in tunes.items():
        sf.write(folder / f"{k}.wav", v, 16000)
    ix, one = str(tmp_path / "ix"), str(tmp_path / "one")
    assert main(["-q", "index", "build", "--model", ckpt, "--songs", str(folder), "--out", ix, "--shards", "3",
                 "--ray", "auto", "--store", "i8"]) == 0
    assert main(["-q", "index", "build", "--model", ckpt, "--songs", str(folder), "--out", one, "--store", "i8"]) == 0
    sh, single = ShardedIndex.open(ix), SongIndex.open(one)
    assert len(sh) == 5 and sh.dtype == "int8"
    for k in tunes:         # the workers' fingerprints are this process's
        np.testing.assert_array_equal(sh.shard(shard_of(k, 3)).fingerprints(k), single.fingerprints(k))
    capsys.readouterr()
    q = tmp_path / "q.wav"
    sf.write(q, tunes["t3"][2 * 16000:7 * 16000], 16000)
    assert main(["-q", "query", "--index", ix, "--ray", "auto", str(q), "--top", "3", "--json"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert main(["-q", "query", "--index", one, str(q), "--top", "3", "--json"]) == 0
    want = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert [m["song_id"] for m in got["matches"]] == [m["song_id"] for m in want["matches"]]
    assert got["matches"][0]["song_id"] == "t3"
    assert main(["-q", "index", "info", "--index", ix, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_shards"] == 3
    assert main(["-q", "query", "--index", one, "--ray", "auto", str(q)]) == 2       # not sharded
    assert "--ray" in capsys.readouterr().err
    assert os.path.isdir(os.path.join(ix, "shard-002"))
