"""chadml.index's compact formats: float16 and int8 stores (per-row scale), the catalogue-scale FAISS index
(IVF-PQ over an inverted multi-index, a stride of fingerprints, lists on disk); their crash safety, the
errors for a store of another format, and that a query reads only its candidates' rows."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from _searchkit import FEATURES, WINDOW, fp_index, random_songs, unit_rows

from chadml.index import IndexCorruptError, SongIndex
from chadml.index import ann, store

pytestmark = pytest.mark.usefixtures("one_faiss_thread")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")


def smooth_songs(rng, n: int, lo: int = 80, hi: int = 140) -> dict:
    """Songs whose consecutive fingerprints are alike (a window encoder's), unit norm."""
    out = {}
    for i in range(n):
        t = int(rng.integers(lo, hi))
        e = rng.standard_normal((t + 11, 128)).astype(np.float32)
        c = np.concatenate((np.zeros((1, 128), np.float32), np.cumsum(e, axis=0)))
        a = c[12:] - c[:-12]
        out[f"song{i:03d}"] = a / np.linalg.norm(a, axis=1, keepdims=True)
    return out


def test_quantize_int8_error_and_zero_rows():
    rng = np.random.default_rng(0)
    a = unit_rows(rng, 200)
    a[3] = 0.0
    q, s = store.quantize_int8(a)
    assert q.dtype == np.int8 and s.dtype == np.float32 and s[3] == 0 and not q[3].any()
    back = q.astype(np.float32) * s[:, None]
    assert np.all(np.abs(back - a) <= s[:, None] / 2 + 1e-7)
    assert np.abs(back - a).max() < 2e-3 and np.abs(q).max() == 127


@pytest.mark.parametrize("dtype,short,ext,version,atol", [("float16", "f16", "f16", 1, 1e-3),
                                                          ("int8", "i8", "i8", 2, 2e-3)])
def test_compact_store_roundtrip_add_remove_compact(tmp_path, dtype, short, ext, version, atol):
    rng = np.random.default_rng(1)
    songs = random_songs(rng, 10)
    idx = fp_index(tmp_path / "ix", songs, dtype=short)
    assert idx.dtype == dtype and idx.info()["format_version"] == version
    files = sorted(os.listdir(idx.dir))
    assert f"store-0.{ext}" in files and (f"store-0.{ext}.scale" in files) == (dtype == "int8")
    for k, v in songs.items():
        np.testing.assert_allclose(idx.fingerprints(k), v, atol=atol)
    data, off = idx.packed(["song007", "song002"])
    np.testing.assert_allclose(data[off[1]:off[2]], songs["song002"], atol=atol)
    raw = {k: idx.fingerprints(k).copy() for k in songs}
    # remove, add, compact: the rows that stay are copied as they are (bit-exact), scales with them
    idx.remove(["song001", "song004"], compact=False)
    extra = unit_rows(rng, 40)
    idx.add_fingerprints("new", extra)
    idx.compact()
    again = SongIndex.open(tmp_path / "ix")
    assert len(again) == 9 and again.info()["dead_rows"] == 0 and again.info()["store_rows"] == again.n_fingerprints
    for k in songs:
        if k not in ("song001", "song004"):
            np.testing.assert_array_equal(again.fingerprints(k), raw[k])
    np.testing.assert_allclose(again.fingerprints("new"), extra, atol=atol)
    left = sorted(f for f in os.listdir(again.dir) if f.startswith("store-"))
    # the new store and its scales; the previous one stays for the readers of the previous generation
    assert set(store.store_files(f"store-1.{ext}")) <= set(left) <= set(store.store_files(f"store-0.{ext}")
                                                                          + store.store_files(f"store-1.{ext}")), left
    # the size counts the scales
    info = again.info()
    assert info["size_bytes"] >= sum(os.path.getsize(os.path.join(again.dir, f))
                                     for f in store.store_files(f"store-1.{ext}"))


def test_int8_search_matches_float32(tmp_path):
    from chadml.search import Searcher
    rng = np.random.default_rng(2)
    songs = smooth_songs(rng, 25)
    ix32 = fp_index(tmp_path / "f32", songs)
    ix8 = fp_index(tmp_path / "i8", songs, dtype="int8")
    s32, s8 = Searcher(ix32, k=25, threads=1), Searcher(ix8, k=25, threads=1)
    for i, (k, v) in enumerate(list(songs.items())[:8]):
        q = v[10:39] + 0.3 * unit_rows(rng, 29)
        a, b = s32.query_fingerprints(q, top=5), s8.query_fingerprints(q, top=5)
        assert a[0].song_id == b[0].song_id == k and a[0].time_s == b[0].time_s
        assert abs(a[0].score - b[0].score) < 1e-2
        assert [m.song_id for m in a[:3]] == [m.song_id for m in b[:3]]


def test_store_of_another_format_or_dtype_is_a_clear_error(tmp_path):
    songs = random_songs(np.random.default_rng(3), 3)
    fp_index(tmp_path / "ix", songs, dtype="int8")

    def set_meta(key, value):
        conn = sqlite3.connect(tmp_path / "ix" / "catalog.sqlite")
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), key))
        conn.commit()
        conn.close()

    set_meta("dtype", "float32")        # the catalog says float32, the store is int8
    with pytest.raises(IndexCorruptError, match="float32.*store-0.i8"):
        SongIndex.open(tmp_path / "ix")
    set_meta("dtype", "bfloat16")
    with pytest.raises(IndexCorruptError, match="'bfloat16'.*float32, float16, int8"):
        SongIndex.open(tmp_path / "ix")
    set_meta("dtype", "int8")
    SongIndex.open(tmp_path / "ix")
    os.remove(tmp_path / "ix" / "store-0.i8.scale")
    with pytest.raises(IndexCorruptError, match="store"):
        SongIndex.open(tmp_path / "ix")
    with pytest.raises(ValueError, match="dtype must be one of"):
        fp_index(tmp_path / "iy", {}, dtype="int4")


def test_a_query_reads_only_its_candidates_rows(tmp_path):
    """Rows of songs that are not candidates are never read: NaN written over them changes nothing."""
    from chadml.search import Searcher
    rng = np.random.default_rng(4)
    songs = smooth_songs(rng, 12)
    for dtype in ("float32", "int8"):
        idx = fp_index(tmp_path / dtype, songs, dtype=dtype)
        poisoned = idx.song("song009")
        path = os.path.join(idx.dir, "store-0.f32" if dtype == "float32" else "store-0.i8")
        item = 4 if dtype == "float32" else 1
        with open(path, "r+b") as f:
            f.seek(poisoned.offset * 128 * item)
            f.write((np.full(poisoned.n_fingerprints * 128, np.nan, np.float32).tobytes() if dtype == "float32"
                     else b"\x80" * (poisoned.n_fingerprints * 128)))
        if dtype == "int8":
            with open(path + ".scale", "r+b") as f:
                f.seek(poisoned.offset * 4)
                f.write(np.full(poisoned.n_fingerprints, np.nan, np.float32).tobytes())
        s = Searcher(SongIndex.open(idx.dir), k=3, threads=1)
        m = s.query_fingerprints(songs["song002"][5:34], top=3)
        assert m[0].song_id == "song002" and all(x.song_id != "song009" for x in m)


def _scale_params(monkeypatch, ondisk: bool):
    """The catalogue-scale FAISS parameters for tiny indexes (an inverted multi-index of 2 x 4 bits)."""
    monkeypatch.setattr(ann, "PQ_MIN", 1000)
    monkeypatch.setattr(ann, "ONDISK_ABOVE", 0 if ondisk else 1 << 40)
    real = ann.scale_params

    def small(n, dim):
        p = real(n, dim)
        p.update(nlist=256, nprobe=16)
        return p
    monkeypatch.setattr(ann, "scale_params", small)


@pytest.mark.parametrize("ondisk", [False, True])
def test_catalogue_scale_ann_add_remove_compact(tmp_path, monkeypatch, ondisk):
    from chadml.search import Searcher
    _scale_params(monkeypatch, ondisk)
    rng = np.random.default_rng(5)
    songs = smooth_songs(rng, 30, 100, 160)
    idx = fp_index(tmp_path / "ix", songs, dtype="int8")
    p = idx.faiss_params
    assert p["kind"] == "ivfpq" and p["quantizer"] == "imi" and p["stride"] == 2 and bool(p.get("ondisk")) == ondisk
    assert idx.info()["format_version"] == 2
    g = idx.generation
    assert os.path.exists(os.path.join(idx.dir, f"faiss-{g}.ivfdata")) == ondisk
    s = Searcher(idx, k=10, threads=1)
    for k in list(songs)[:6]:
        assert s.query_fingerprints(songs[k][20:49], top=1)[0].song_id == k
    # grow, remove, replace: the lists follow (on disk: a new lists file per generation)
    more = smooth_songs(np.random.default_rng(6), 5, 100, 120)
    more = {f"m{k}": v for k, v in more.items()}
    idx.add_fingerprint_items([(k, v, None) for k, v in more.items()], progress_bar=False)
    idx.remove(["song003"], compact=False)
    again = SongIndex.open(tmp_path / "ix")
    s = Searcher(again, k=10, threads=1)
    assert s.query_fingerprints(more["msong002"][30:59], top=1)[0].song_id == "msong002"
    _, pos, _ = again.search(songs["song003"][:5], 20)
    assert all(again.songs()[q].song_id != "song003" for q in pos.ravel() if q >= 0)
    again.compact()
    final = SongIndex.open(tmp_path / "ix")
    s = Searcher(final, k=10, threads=1)
    assert s.query_fingerprints(songs["song010"][10:39], top=1)[0].song_id == "song010"
    faiss_files = sorted(f for f in os.listdir(final.dir) if f.startswith("faiss-"))
    gens = {int(f.split("-")[1].split(".")[0]) for f in faiss_files}
    assert gens <= {final.generation, final.generation - 1} and not any(f.endswith(".tmp") for f in faiss_files)
    if ondisk:
        assert f"faiss-{final.generation}.ivfdata" in faiss_files


_CHILD = r"""
import os, signal, sys
sys.path[:0] = [{repo!r}, {tests!r}]
import numpy as np
import chadml.index as ci
import chadml.index.ann as ann
import chadml.index.song_index as si
ann.PQ_MIN, ann.ONDISK_ABOVE = {pq_min}, 0
real = ann.scale_params
def small(n, dim):
    p = real(n, dim)
    p.update(nlist=256, nprobe=16)
    return p
ann.scale_params = small
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
"""


@pytest.mark.parametrize("ondisk", [False, True])
@pytest.mark.parametrize("stage", ["midway", "appended", "faiss_written", "committed"])
def test_int8_sigkill_leaves_all_or_none(tmp_path, monkeypatch, stage, ondisk):
    pq_min = 1000 if ondisk else 10 ** 12
    if ondisk:
        _scale_params(monkeypatch, True)
    rng = np.random.default_rng(9)
    songs = random_songs(rng, 12, 100, 120)
    fp_index(tmp_path / "ix", songs, dtype="int8")
    before = SongIndex.open(tmp_path / "ix")
    assert bool(before.faiss_params.get("ondisk")) == ondisk
    raw = {k: before.fingerprints(k).copy() for k in songs}
    code = _CHILD.format(repo=REPO, tests=TESTS, pq_min=pq_min)
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ix"), stage], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == -9, r.stderr
    idx = SongIndex.open(tmp_path / "ix")
    want = 20 if stage == "committed" else 12
    assert len(idx) == want
    for k in songs:
        np.testing.assert_array_equal(idx.fingerprints(k), raw[k])
    # the index stays writable: the crashed writer's rows and scales are cut off
    extra = unit_rows(rng, 30)
    idx.add_fingerprints("after", extra)
    again = SongIndex.open(tmp_path / "ix")
    np.testing.assert_allclose(again.fingerprints("after"), extra, atol=2e-3)
    st = again.info()
    assert st["store_rows"] == again.n_fingerprints
    scale = next(f for f in os.listdir(again.dir) if f.endswith(".scale"))
    assert os.path.getsize(os.path.join(again.dir, scale)) == 4 * st["store_rows"]
    _, pos, _ = again.search(extra[:4], 3)
    assert "after" in {again.songs()[q].song_id for q in pos.ravel() if q >= 0}


def test_old_format_1_index_reads_and_new_one_records_format(tmp_path):
    """A float32/float16 index stays format 1 (every chad reads it); only int8 or on-disk lists make format 2."""
    rng = np.random.default_rng(10)
    for dtype, want in (("float32", 1), ("float16", 1), ("int8", 2)):
        idx = fp_index(tmp_path / dtype, random_songs(rng, 2), dtype=dtype)
        conn = sqlite3.connect(os.path.join(idx.dir, "catalog.sqlite"))
        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        conn.close()
        assert meta["format_version"] == want and meta["dtype"] == dtype
    assert SongIndex.create(tmp_path / "w", model_id="m", feature_config=FEATURES, window_config=WINDOW,
                            dtype="i8").dtype == "int8"


def test_cli_build_store_flag(tmp_path, capsys):
    import soundfile as sf
    from _searchkit import melody, tiny_fingerprinter
    from chadml.cli.main import main
    from chadml.models import save_checkpoint
    from chadml.training import TrainConfig
    fp = tiny_fingerprinter()
    ckpt = str(tmp_path / "m.pt")
    save_checkpoint(ckpt, model=fp.model, feature_config=fp.feature_config, window_config=fp.window_config,
                    train_config=TrainConfig())
    folder = tmp_path / "songs"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for i in range(3):
        sf.write(folder / f"t{i}.wav", melody(rng, 6.0), 16000)
    ix = str(tmp_path / "ix")
    assert main(["-q", "index", "build", "--model", ckpt, "--songs", str(folder), "--out", ix, "--store", "i8"]) == 0
    capsys.readouterr()
    assert main(["-q", "index", "info", "--index", ix, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dtype"] == "int8" and info["format_version"] == 2 and info["songs"] == 3
    assert main(["-q", "index", "build", "--model", ckpt, "--songs", str(folder), "--out", str(tmp_path / "iy"),
                 "--store", "f16", "--dtype", "float32"]) == 2
    err = capsys.readouterr().err
    assert "--store" in err and "--dtype" in err and err.count("\n") == 1
    assert main(["-q", "index", "build", "--model", ckpt, "--songs", str(folder), "--out", str(tmp_path / "iz"),
                 "--shards", "0"]) == 2
    assert "--shards" in capsys.readouterr().err
