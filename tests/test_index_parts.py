"""chadml.index beyond the facade: an index directory written by hand in the on-disk format (as any chad
since format 1 wrote it) opens, searches and takes writes; the parts (catalog, store, ann) on their own;
and ``chad index``'s command line (flags, one-line errors, the info text)."""
from __future__ import annotations

import doctest
import json
import os
import sqlite3

import numpy as np
import pytest

from _searchkit import FEATURES, WINDOW, fp_index, random_songs, unit_rows

from chadml.index import KINDS, IndexCorruptError, SongIndex
from chadml.index import ann, catalog, store

pytestmark = pytest.mark.usefixtures("one_faiss_thread")

# the catalog schema of format 1, as written by every chad that writes format 1
SCHEMA_V1 = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE songs (song_id TEXT PRIMARY KEY, title TEXT NOT NULL, path TEXT NOT NULL, duration REAL NOT NULL,"
    " n_fingerprints INTEGER NOT NULL, offset INTEGER NOT NULL, added REAL NOT NULL)",
    "CREATE INDEX songs_offset ON songs(offset)",
]


def _handmade_index(path, songs: dict[str, np.ndarray], dtype: str = "float32") -> None:
    """An index of generation 1 written without chadml.index: raw SQL, raw rows and a FAISS flat index."""
    import faiss
    os.makedirs(path)
    ext = "f16" if dtype == "float16" else "f32"
    rows = np.concatenate(list(songs.values()))
    rows.astype(np.float16 if dtype == "float16" else np.float32).tofile(os.path.join(path, f"store-0.{ext}"))
    fidx = faiss.IndexIDMap2(faiss.IndexFlatL2(128))
    fidx.add_with_ids(rows, np.arange(len(rows), dtype=np.int64))
    faiss.write_index(fidx, os.path.join(path, "faiss-1.index"))
    open(os.path.join(path, "write.lock"), "wb").close()
    conn = sqlite3.connect(os.path.join(path, "catalog.sqlite"))
    conn.execute("PRAGMA journal_mode = WAL")
    for sql in SCHEMA_V1:
        conn.execute(sql)
    meta = {"format_version": 1, "chad_version": "0.1.0", "created": 1.7e9, "model_id": "test-model",
            "model_path": "", "feature_config": FEATURES, "window_config": WINDOW, "dim": 128, "dtype": dtype,
            "kind": "auto", "faiss": {"kind": "flat"}, "generation": 1, "faiss_file": "faiss-1.index",
            "store_file": f"store-0.{ext}", "store_rows": len(rows), "dead_rows": 0, "previous_files": []}
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
    offset = 0
    for i, (k, v) in enumerate(songs.items()):
        conn.execute("INSERT INTO songs VALUES (?, ?, ?, ?, ?, ?, ?)", (k, k.upper(), f"/a/{k}.wav", 10.0 + i, len(v),
                                                                       offset, 1.7e9))
        offset += len(v)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_handmade_format_1_index_opens_searches_and_grows(tmp_path, dtype):
    songs = random_songs(np.random.default_rng(0), 8)
    _handmade_index(tmp_path / "ix", songs, dtype)
    idx = SongIndex.open(tmp_path / "ix", expect_model_id="test-model", expect_config=(FEATURES, WINDOW))
    assert [s.song_id for s in idx.songs()] == list(songs) and idx.generation == 1
    assert idx.song("song003").title == "SONG003" and idx.song("song003").duration == 13.0
    for k, v in songs.items():
        np.testing.assert_allclose(idx.fingerprints(k), v, atol=1e-3 if dtype == "float16" else 0)
        _, pos, _ = idx.search(v[2:3], 1)
        assert idx.songs()[pos[0, 0]].song_id == k
    extra = unit_rows(np.random.default_rng(1), 30)
    idx.add_fingerprints("new", extra)
    again = SongIndex.open(tmp_path / "ix")
    assert again.generation == 2 and len(again) == 9 and again.song("new").offset == idx.n_fingerprints - 30
    assert sorted(f for f in os.listdir(tmp_path / "ix") if f.startswith("faiss-")) == ["faiss-1.index",
                                                                                       "faiss-2.index"]
    assert again.remove(["song000"], compact=True) == 1 and again.info()["dead_rows"] == 0


def test_a_new_index_writes_format_1(tmp_path):
    idx = fp_index(tmp_path / "ix", random_songs(np.random.default_rng(2), 3))
    conn = sqlite3.connect(os.path.join(idx.dir, "catalog.sqlite"))
    schema = [" ".join(r[0].split()) for r in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")]
    meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert sorted(schema) == sorted(" ".join(s.split()) for s in SCHEMA_V1)
    assert set(meta) == {"format_version", "chad_version", "created", "model_id", "model_path", "feature_config",
                         "window_config", "dim", "dtype", "kind", "faiss", "generation", "faiss_file", "store_file",
                         "store_rows", "dead_rows", "previous_files"}
    assert meta["format_version"] == 1 and meta["faiss_file"] == f"faiss-{meta['generation']}.index"
    rows = np.fromfile(os.path.join(idx.dir, meta["store_file"]), np.float32).reshape(-1, 128)
    assert len(rows) == meta["store_rows"]
    np.testing.assert_array_equal(rows[idx.song("song001").offset:][:idx.song("song001").n_fingerprints],
                                  idx.fingerprints("song001"))


def test_a_short_store_or_an_unknown_format_is_corrupt(tmp_path):
    songs = random_songs(np.random.default_rng(3), 3)
    _handmade_index(tmp_path / "ix", songs)
    with open(tmp_path / "ix" / "store-0.f32", "r+b") as f:
        f.truncate(100)
    with pytest.raises(IndexCorruptError, match="store"):
        SongIndex.open(tmp_path / "ix")
    _handmade_index(tmp_path / "iy", songs)
    conn = sqlite3.connect(tmp_path / "iy" / "catalog.sqlite")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(IndexCorruptError, match="format_version 3"):
        SongIndex.open(tmp_path / "iy")


def test_store_append_and_views(tmp_path):
    path = str(tmp_path / "store-0.f16")
    open(path, "wb").close()
    rng = np.random.default_rng(4)
    a, b = unit_rows(rng, 5), unit_rows(rng, 7)
    items = [("a", a, {"title": "A", "path": "", "duration": 1.0}),
             ("b", b, {"title": "B", "path": "", "duration": 2.0})]
    songs, rows = store.append_songs(path, "float16", iter(items), 0)
    assert rows == 12 and [(s.song_id, s.offset, s.n_fingerprints) for s in songs] == [("a", 0, 5), ("b", 5, 7)]
    with open(path, "ab") as f:
        f.write(b"half a row of a crashed writer")
    store.truncate(path, rows, 128, "float16")
    view = store.StoreView(store.open_rows(path, "float16", rows, 128), "float16", songs)
    np.testing.assert_allclose(view.block(songs[1]), b, atol=1e-3)
    assert view.rows_to_positions(np.array([-1, 0, 4, 5, 11, 12])).tolist() == [-1, 0, 0, 1, 1, -1]
    moved, n = store.write_compacted(view.store, songs[1:], str(tmp_path / "store-1.f16"), "float16")
    assert n == 7 and moved[0].offset == 0 and store.next_store_file("store-0.f16", "float16") == "store-1.f16"
    with pytest.raises(ValueError, match="finite"):
        store.check_fps(np.full((2, 128), np.inf), 128)


def test_ann_params_and_next_index(tmp_path):
    assert ann.choose_params("auto", ann.FLAT_MAX, 128) == {"kind": "flat"}
    assert ann.choose_params("auto", ann.FLAT_MAX + 1, 128)["kind"] == "ivfsq"
    rng = np.random.default_rng(5)
    rows = unit_rows(rng, 300)
    songs = [catalog.SongInfo(f"s{i}", "", "", 1.0, 100, 100 * i) for i in range(3)]
    fidx, params = ann.next_index(None, {}, "flat", 128, rows, [], songs, songs)
    assert params == {"kind": "flat"} and fidx.ntotal == 300
    fidx2, _ = ann.next_index(fidx, params, "flat", 128, rows, songs[:1], [], songs[1:])
    assert fidx2.ntotal == 200 and fidx.ntotal == 300          # the current generation's index is untouched
    dist, found = ann.search(fidx2, params, rows[150:151], 1)
    assert found[0, 0] == 150 and ann.search(fidx2, params, rows[:1], 0) is None


def test_catalog_checks_name_both_sides():
    meta = {"model_id": "m1", "feature_config": FEATURES, "window_config": WINDOW}
    with pytest.raises(catalog.IndexMismatchError, match="m1.*m2"):
        catalog.check_compatible("ix", meta, model_id="m2")
    with pytest.raises(TypeError, match="expect_config"):
        catalog.check_compatible("ix", meta, config="cqt")
    with pytest.raises(ValueError, match="step_s"):
        catalog.new_meta(model_id="m", model_path=None, feature_config={}, window_config={}, dim=128,
                         dtype="float32", kind="auto", store_file="store-0.f32", version="0")


# ---- chad index ----------------------------------------------------------------------------------------

def test_cli_kinds_match_the_library_and_info_text():
    import chadml.cli.index as cli
    assert cli.KIND_CHOICES == KINDS
    assert doctest.testmod(cli).failed == 0


def _one_line(capsys, flag: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and flag in err, err
    return err


def test_cli_errors_name_the_flag(tmp_path, capsys):
    from chadml.cli.main import main
    missing = str(tmp_path / "none.idx")
    for argv, flag in ((["index", "info", "--index", missing], "--index"),
                       (["index", "remove", "--index", missing, "s1"], "--index"),
                       (["index", "add", "--index", missing, "--songs", ".", "--skip-existing", "--replace"],
                        "--replace"),
                       (["index", "build", "--model", "m.pt", "--songs", str(tmp_path / "nope"), "--out", missing],
                        "--songs"),
                       (["index", "build", "--model", "m.pt", "--songs", str(tmp_path), "--out", missing],
                        "--songs")):
        assert main(["-q", *argv]) == 2, argv
        _one_line(capsys, flag)
    fp_index(tmp_path / "ix", random_songs(np.random.default_rng(6), 2))
    assert main(["index", "remove", "--index", str(tmp_path / "ix"), "nope"]) == 2
    _one_line(capsys, "--ignore-missing")
    assert main(["index", "add", "--index", str(tmp_path / "ix"), "--songs", str(tmp_path)]) == 2
    _one_line(capsys, "--model")
    assert main(["index", "info", "--index", str(tmp_path / "ix")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("index ") and "songs         2" in out
    assert main(["index"]) == 2 and "ACTION" in capsys.readouterr().out


def test_ingest_workers_give_the_songs_in_order_with_the_same_fingerprints(tmp_path, caplog):
    """Reading and trimming the next songs on worker threads changes neither the order, the fingerprints
    nor which songs are skipped (and why)."""
    import soundfile as sf
    from chadml.index.ingest import fingerprint_items
    from chadml.separation import get_separator
    from _searchkit import melody, tiny_fingerprinter
    rng = np.random.default_rng(0)
    items = []
    for i in range(7):
        if i == 3:
            items.append((f"s{i}", np.zeros(16000 * 5, np.float32)))         # silent: skipped
        elif i == 5:
            items.append((f"s{i}", str(tmp_path / "missing.flac")))          # unreadable: skipped
        else:
            p = tmp_path / f"s{i}.flac"
            sf.write(p, melody(rng, 6.0 + i), 16000)
            items.append((f"s{i}", str(p), f"T{i}"))
    fp, sep = tiny_fingerprinter(), get_separator("identity")
    runs = {}
    for w in (1, 3):
        caplog.clear()
        runs[w] = list(fingerprint_items(items, fp, sep, on_error="skip", workers=w))
        runs[w, "log"] = sorted(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert [s for s, _, _ in runs[1]] == [s for s, _, _ in runs[3]] == ["s0", "s1", "s2", "s4", "s6"]
    for (a, fa, ma), (b, fb, mb) in zip(runs[1], runs[3]):
        assert np.array_equal(fa, fb) and ma == mb
    assert runs[1, "log"] == runs[3, "log"] and len(runs[1, "log"]) == 2
    with pytest.raises(Exception, match="silent"):
        list(fingerprint_items(items, fp, sep, workers=2))
