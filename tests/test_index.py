"""chadml.index: round trips, add/remove/reopen, FAISS kinds, config mismatch, atomicity under SIGKILL,
a reader beside a writer."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from _searchkit import FEATURES, WINDOW, fp_index, random_songs, tiny_fingerprinter, unit_rows

from chadml import ChadError
from chadml.index import IndexCorruptError, IndexMismatchError, SongIndex, fingerprinter_id

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")


def test_roundtrip_reopen_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    songs = random_songs(rng, 12)
    idx = fp_index(tmp_path / "ix", songs)
    assert len(idx) == 12 and idx.n_fingerprints == sum(len(v) for v in songs.values())
    again = SongIndex.open(tmp_path / "ix", expect_model_id="test-model", expect_config=(FEATURES, WINDOW))
    assert [s.song_id for s in again.songs()] == list(songs)
    for k, v in songs.items():
        np.testing.assert_array_equal(again.fingerprints(k), v)
        assert again.song(k).title == k.upper()
        # duration defaults to the span of the windows
        assert again.song(k).duration == pytest.approx((len(v) - 1) * 0.25 + 3.0)
    info = again.info()
    assert info["songs"] == 12 and info["format_version"] == 1 and info["faiss"]["kind"] == "flat"
    assert info["feature_config"] == FEATURES and info["window_config"] == WINDOW
    assert info["bytes_per_hour"] > 0 and json.dumps(info)


def test_float16_store_and_packed(tmp_path):
    rng = np.random.default_rng(1)
    songs = random_songs(rng, 6)
    idx = fp_index(tmp_path / "ix", songs, dtype="float16")
    ids = ["song004", "song001"]
    data, off = idx.packed(ids)
    assert data.dtype == np.float32 and off.tolist() == [0, len(songs[ids[0]]), len(songs[ids[0]]) + len(songs[ids[1]])]
    np.testing.assert_allclose(data[off[1]:off[2]], songs["song001"], atol=1e-3)
    # float32 store, all songs: the memory map itself, no copy
    idx32 = fp_index(tmp_path / "ix32", songs)
    data, off = idx32.packed()
    assert not data.flags.owndata and not data.flags.writeable and off[-1] == idx32.n_fingerprints


def test_iter_packed_covers_every_song_once(tmp_path):
    rng = np.random.default_rng(2)
    songs = random_songs(rng, 40, 20, 60)
    idx = fp_index(tmp_path / "ix", songs)
    pos = rng.permutation(len(idx))[:25]
    seen = {}
    # small thresholds: both in-place runs (with fillers) and gathered chunks occur
    for data, off, which in idx.iter_packed(pos, min_run_rows=100, bridge_rows=80, max_rows=400):
        assert off[0] == 0 and off[-1] == len(data)
        for j, w in enumerate(which):
            if w < 0:
                continue
            sid = idx.songs()[pos[w]].song_id
            assert sid not in seen
            seen[sid] = np.asarray(data[off[j]:off[j + 1]])
    assert sorted(seen) == sorted(idx.songs()[p].song_id for p in pos)
    for sid, block in seen.items():
        np.testing.assert_array_equal(block, songs[sid])


def test_add_remove_compact_reopen(tmp_path):
    rng = np.random.default_rng(3)
    songs = random_songs(rng, 10)
    idx = fp_index(tmp_path / "ix", songs)
    assert idx.remove(["song002", "song005"]) == 2
    assert "song002" not in idx and len(idx) == 8
    # removed songs never come back from FAISS
    _, pos, _ = idx.search(songs["song002"][:5], 20)
    assert all(idx.songs()[p].song_id != "song002" for p in pos.ravel() if p >= 0)
    more = random_songs(np.random.default_rng(4), 3)
    more = {"x" + k: v for k, v in more.items()}
    idx.add_fingerprint_items([(k, v, None) for k, v in more.items()], progress_bar=False)
    idx.compact()
    again = SongIndex.open(tmp_path / "ix")
    assert again.info()["dead_rows"] == 0 and len(again) == 11
    for k, v in {**songs, **more}.items():
        if k in ("song002", "song005"):
            assert k not in again
        else:
            np.testing.assert_array_equal(again.fingerprints(k), v)
            _, pos, _ = again.search(v[3:4], 1)
            assert again.songs()[pos[0, 0]].song_id == k
    # only the live generation's files (and the previous one's) remain
    stores = [f for f in os.listdir(tmp_path / "ix") if f.startswith("store-")]
    assert len(stores) <= 2
    with pytest.raises(KeyError, match="nope"):
        again.remove(["nope"])
    assert again.remove(["nope"], missing="ignore") == 0


def test_duplicates_and_bad_input(tmp_path):
    rng = np.random.default_rng(5)
    idx = fp_index(tmp_path / "ix", random_songs(rng, 3))
    with pytest.raises(ValueError, match="already in index"):
        idx.add_fingerprints("song000", unit_rows(rng, 10))
    idx.add_fingerprints("song000", unit_rows(rng, 10), on_exists="skip")
    assert idx.song("song000").n_fingerprints != 10
    new = unit_rows(rng, 10)
    idx.add_fingerprints("song000", new, {"title": "Replaced"}, on_exists="replace")
    np.testing.assert_array_equal(idx.fingerprints("song000"), new)
    assert idx.song("song000").title == "Replaced" and len(idx) == 3
    with pytest.raises(ValueError, match=r"shape \(n, 128\)"):
        idx.add_fingerprints("bad", np.zeros((5, 64), np.float32))
    with pytest.raises(ValueError, match="finite"):
        idx.add_fingerprints("bad", np.full((5, 128), np.nan, np.float32))
    with pytest.raises(TypeError):
        idx.add_fingerprints("bad", "not an array")
    with pytest.raises(ValueError, match="twice"):
        idx.add_fingerprint_items([("a", unit_rows(rng, 4), None), ("a", unit_rows(rng, 4), None)])
    assert len(SongIndex.open(tmp_path / "ix")) == 3      # the failed adds left nothing


def test_create_open_errors_and_mismatch(tmp_path):
    fp_index(tmp_path / "ix", {})
    with pytest.raises(FileExistsError):
        fp_index(tmp_path / "ix", {})
    with pytest.raises(FileNotFoundError):
        SongIndex.open(tmp_path / "missing")
    (tmp_path / "notix").mkdir()
    with pytest.raises(IndexCorruptError):
        SongIndex.open(tmp_path / "notix")
    with pytest.raises(IndexMismatchError, match="test-model.*other-model"):
        SongIndex.open(tmp_path / "ix", expect_model_id="other-model")
    with pytest.raises(IndexMismatchError, match="step_s"):
        SongIndex.open(tmp_path / "ix", expect_config=(FEATURES, {"window_s": 8.0, "step_s": 0.64}))
    assert issubclass(IndexMismatchError, ChadError)
    with pytest.raises(ValueError, match="kind"):
        SongIndex.create(tmp_path / "k", model_id="m", feature_config={}, window_config=WINDOW, kind="lsh")


def test_fingerprinter_id_matches_and_add_songs(tmp_path):
    import soundfile as sf
    from _searchkit import melody
    fp = tiny_fingerprinter()
    idx = SongIndex.create(tmp_path / "ix", fingerprinter=fp)
    assert idx.model_id == fingerprinter_id(fp) == fingerprinter_id(tiny_fingerprinter())
    assert fingerprinter_id(tiny_fingerprinter(seed=1)) != idx.model_id
    rng = np.random.default_rng(6)
    a, b = melody(rng, 6.0), melody(rng, 5.0)
    sf.write(tmp_path / "b.wav", b, 16000)
    idx.add_songs([("a", a, "Song A"), ("b", str(tmp_path / "b.wav"))], fp, progress_bar=False)
    assert idx.song("a").title == "Song A" and idx.song("b").title == "b"
    assert idx.song("a").duration == pytest.approx(6.0) and idx.song("b").path.endswith("b.wav")
    np.testing.assert_allclose(idx.fingerprints("a"), fp.from_audio(a)[0], atol=1e-6)
    with pytest.raises(IndexMismatchError):
        idx.add_songs([("c", a)], tiny_fingerprinter(seed=1))


@pytest.mark.parametrize("kind", ["ivf", "ivfsq", "ivfpq", "hnsw"])
def test_ann_kinds_find_exact_rows(tmp_path, kind):
    rng = np.random.default_rng(7)
    songs = random_songs(rng, 30, 60, 80)
    idx = fp_index(tmp_path / "ix", songs, kind=kind)
    p = idx.faiss_params
    assert p["kind"] == kind and (kind == "hnsw" or p["nlist"] >= 16)
    again = SongIndex.open(tmp_path / "ix")
    hits = 0
    for k in list(songs)[:10]:
        _, pos, rows = again.search(songs[k][10:14], 5)
        hits += np.mean([again.songs()[q].song_id == k for q in pos[:, 0]])
        assert rows[0, 0] >= 0
    assert hits >= 9.0
    again.remove(["song001"])
    _, pos, _ = again.search(songs["song001"][:3], 10)
    assert all(again.songs()[q].song_id != "song001" for q in pos.ravel() if q >= 0)


def test_auto_kind_switches_with_size(tmp_path, monkeypatch):
    import chadml.index.ann as ann
    monkeypatch.setattr(ann, "FLAT_MAX", 3000)
    rng = np.random.default_rng(8)
    idx = fp_index(tmp_path / "ix", random_songs(rng, 10, 100, 101))
    assert idx.faiss_params["kind"] == "flat"
    more = {f"m{i}": unit_rows(rng, 100) for i in range(25)}
    idx.add_fingerprint_items([(k, v, None) for k, v in more.items()], progress_bar=False)
    assert idx.faiss_params["kind"] == "ivfsq" and idx.faiss_params["trained_on"] == 3500
    _, pos, _ = idx.search(more["m7"][50:51], 3)
    assert idx.songs()[pos[0, 0]].song_id == "m7"


_CHILD = r"""
import os, signal, sys, time
sys.path[:0] = [{repo!r}, {tests!r}]
import numpy as np
import chadml.index as ci
import chadml.index.song_index as si
def unit_rows(rng, n):
    a = rng.standard_normal((n, 128)).astype(np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)
path, stage = sys.argv[1], sys.argv[2]
idx = ci.SongIndex.open(path)
si._crash_hook = lambda s: os.kill(os.getpid(), signal.SIGKILL) if s == stage else None
rng = np.random.default_rng(123)
def items():
    for i in range(8):
        if stage == "midway" and i == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        yield ("new%d" % i, unit_rows(rng, 50), None)
idx.add_fingerprint_items(items(), progress_bar=False)
print("done")
"""


@pytest.mark.parametrize("stage", ["midway", "appended", "faiss_written", "committed"])
def test_sigkill_leaves_all_or_none(tmp_path, stage):
    rng = np.random.default_rng(9)
    songs = random_songs(rng, 6)
    fp_index(tmp_path / "ix", songs)
    code = _CHILD.format(repo=REPO, tests=TESTS)
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ix"), stage], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == -9, r.stderr
    idx = SongIndex.open(tmp_path / "ix")
    want = 14 if stage == "committed" else 6
    assert len(idx) == want
    expect = np.random.default_rng(123)
    new = {f"new{i}": unit_rows(expect, 50) for i in range(8)}
    for k, v in songs.items():
        np.testing.assert_array_equal(idx.fingerprints(k), v)
    if want == 14:
        for k, v in new.items():
            np.testing.assert_array_equal(idx.fingerprints(k), v)
    # the index stays writable: a crashed writer's bytes are cut off, the next add is consistent
    extra = unit_rows(rng, 30)
    idx.add_fingerprints("after", extra)
    again = SongIndex.open(tmp_path / "ix")
    np.testing.assert_array_equal(again.fingerprints("after"), extra)
    assert again.info()["store_rows"] == again.n_fingerprints
    _, pos, _ = again.search(extra[:2], 1)
    assert again.songs()[pos[0, 0]].song_id == "after"


_WRITER = r"""
import sys, time
sys.path[:0] = [{repo!r}, {tests!r}]
import numpy as np
from chadml.index import SongIndex
def unit_rows(rng, n):
    a = rng.standard_normal((n, 128)).astype(np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)
idx = SongIndex.open(sys.argv[1])
for b in range(6):
    idx.add_fingerprint_items([("w%02d" % (5 * b + j), unit_rows(np.random.default_rng(5 * b + j), 40), None)
                               for j in range(5)], progress_bar=False)
    time.sleep(0.05)
"""


def test_reader_sees_whole_generations_while_a_writer_adds(tmp_path):
    from chadml.search import Searcher
    fp_index(tmp_path / "ix", {})
    proc = subprocess.Popen([sys.executable, "-c", _WRITER.format(repo=REPO, tests=TESTS), str(tmp_path / "ix")],
                            stderr=subprocess.PIPE, text=True)
    searcher = Searcher(tmp_path / "ix", k=3)
    seen = set()
    deadline = time.time() + 120
    while time.time() < deadline:
        done = proc.poll() is not None
        idx = searcher.index
        ms = searcher.query_fingerprints(unit_rows(np.random.default_rng(7), 40)[5:25], top=1)
        n = len(idx)
        assert n % 5 == 0
        seen.add(n)
        if n > 7:       # w07 is in this generation: the query (its own rows) finds it
            assert ms and ms[0].song_id == "w07"
            for s in idx.songs():
                np.testing.assert_array_equal(idx.fingerprints(s.song_id),
                                              unit_rows(np.random.default_rng(int(s.song_id[1:])), 40))
        if done:
            break
    assert proc.wait() == 0, proc.stderr.read()
    searcher.index.refresh()
    assert len(searcher.index) == 30 and 30 in seen


def test_song_items_from_folder_and_song_table(tmp_path):
    import soundfile as sf
    from chadml.data import SongRow, SongTable
    from chadml.index import song_items
    (tmp_path / "a").mkdir()
    for name in ("x.wav", "sub/y.flac"):
        (tmp_path / "a" / name).parent.mkdir(exist_ok=True)
        sf.write(tmp_path / "a" / name, np.zeros(1600, np.float32), 16000)
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    assert sorted((i[0], os.path.basename(i[1])) for i in song_items(tmp_path / "a")) == [("x", "x.wav"), ("y", "y.flac")]
    x, y = str(tmp_path / "a" / "x.wav"), str(tmp_path / "a" / "sub" / "y.flac")
    t = SongTable([SongRow("s1", "s1-o", "original", x, 0.1), SongRow("s1", "s1-c", "cover", x, 0.1),
                   SongRow("s2", "s2-o", "original", y, 0.1)])
    t.write(tmp_path / "songs.csv")
    items = song_items(tmp_path / "songs.csv")
    assert [(i[0], i[1]) for i in items] == [("s1", x), ("s2", y)]
    with pytest.raises(FileNotFoundError):
        song_items(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        song_items(tmp_path / "empty")
