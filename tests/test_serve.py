"""chadml.serve and `chad serve`: every endpoint of the HTTP API, every bad input answered with a 4xx JSON
error, concurrent queries, songs added while serving, a missing index, the token, the request log, the
index left untouched, and the command as a real process."""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from _searchkit import melody, tiny_fingerprinter
from _servekit import ServerProcess, audio_bytes, save_tiny_checkpoint

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():     # Starlette asks for httpx2 in place of httpx; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from chadml.index import SongIndex  # noqa: E402
from chadml.serve import Collection, SearchService, ServeConfig, create_app  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_faiss_thread")
SR = 16000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Four songs (FLAC files) in an index of a tiny model whose checkpoint the index records."""
    import soundfile as sf
    root = tmp_path_factory.mktemp("serve")
    fp = tiny_fingerprinter()
    ckpt = save_tiny_checkpoint(fp, root / "m.pt")
    from chadml.models import checkpoint_id
    fp.model_id = checkpoint_id(ckpt)
    rng = np.random.default_rng(3)
    audio = {f"tune{i}": melody(rng, 14.0) for i in range(4)}
    (root / "songs").mkdir()
    for k, v in audio.items():
        sf.write(root / "songs" / f"{k}.flac", v, SR)
    ix = root / "ix"
    idx = SongIndex.create(ix, fingerprinter=fp, model_path=ckpt)
    idx.add_songs([(k, str(root / "songs" / f"{k}.flac"), f"Tune {k[-1]}") for k in audio], fp, progress_bar=False)
    return {"root": root, "ix": str(ix), "audio": audio, "ckpt": ckpt, "fp": fp}


def make_client(ix, **cfg):
    svc = SearchService([Collection("demo", str(ix))], ServeConfig(**{"workers": 2, **cfg}))
    return TestClient(create_app(svc), raise_server_exceptions=False), svc


def client_on_copy(setup, tmp_path, **cfg):
    """A copy of the index (for tests that change or remove it) and a client over the copy."""
    ix = tmp_path / "ix"
    shutil.copytree(setup["ix"], ix)
    return (ix, *make_client(ix, **cfg))


@pytest.fixture(scope="module")
def client(setup):
    c, svc = make_client(setup["ix"])
    yield c
    svc.close()


def post(client, data: bytes, name="q.wav", **form):
    return client.post("/api/query", files={"audio": (name, data, "application/octet-stream")},
                       data={k: str(v) for k, v in form.items()})


def excerpt(setup, song="tune2", a=3.0, b=10.0):
    return setup["audio"][song][int(a * SR):int(b * SR)]


def assert_error(r, status, *words):
    """A JSON error with ``status``, a message containing ``words``, and no traceback."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "status"} and body["status"] == status
    assert "Traceback" not in r.text and "File \"" not in r.text
    for w in words:
        assert w in body["error"], body["error"]


# ---- POST /api/query ----------------------------------------------------------------------------

def test_query_answers_the_song_its_time_and_the_timing(setup, client):
    r = post(client, audio_bytes(excerpt(setup)), top=3)
    assert r.status_code == 200, r.text
    res = r.json()
    m = res["matches"]
    assert [x["rank"] for x in m] == [1, 2, 3]
    assert m[0]["song_id"] == "tune2" and m[0]["title"] == "Tune 2" and abs(m[0]["time_s"] - 3.0) <= 0.3
    assert all(a["score"] >= b["score"] for a, b in zip(m, m[1:]))
    assert m[0]["audio_url"] == "/api/songs/tune2/audio?index=demo"
    assert res["duration_s"] == pytest.approx(7.0) and res["index"] == "demo" and res["rerank"] == "pearson"
    t = res["timing"]
    for key in ("decode_s", "fingerprint_s", "ann_s", "rerank_s", "total_s"):
        assert isinstance(t[key], float) and t[key] >= 0, key
    assert t["total_s"] >= t["fingerprint_s"] and isinstance(t["n_candidates"], int)
    assert len(res["query_id"]) == 32 and res["generation"] >= 1


@pytest.mark.parametrize("fmt,subtype,sr", [("FLAC", None, 16000), ("OGG", "VORBIS", 44100), ("WAV", "FLOAT", 48000)])
def test_query_reads_flac_ogg_and_other_rates(setup, client, fmt, subtype, sr):
    from chadml.audio import resample
    y = resample(excerpt(setup, "tune1", 2.0, 9.0), SR, sr)
    y = np.stack([y, 0.5 * y], axis=1)                           # stereo
    r = post(client, audio_bytes(y, sr, fmt, subtype), name=f"q.{fmt.lower()}", top=1, rerank="dtw")
    assert r.status_code == 200, r.text
    assert r.json()["matches"][0]["song_id"] == "tune1" and r.json()["rerank"] == "dtw"


def test_bad_uploads_and_parameters_are_4xx_json(setup, client):
    good = audio_bytes(excerpt(setup))
    assert_error(post(client, b"RIFF\x00\x00\x00\x00WAVEjunkjunk"), 415, "cannot read the upload as audio")
    assert_error(post(client, b"just some text"), 415, "WAV, FLAC or OGG")
    assert_error(post(client, b""), 400, "empty")
    assert_error(post(client, audio_bytes(np.zeros(4 * SR, np.float32))), 422, "silent", "no sound")
    assert_error(post(client, audio_bytes(5e-4 * np.ones(4 * SR, np.float32))), 422, "silent", "dBFS")
    assert_error(post(client, audio_bytes(excerpt(setup, a=1.0, b=1.2))), 422, "0.20 s", "at least")
    assert_error(post(client, audio_bytes(np.tile(setup["audio"]["tune0"], 3))), 413, "42.0 s", "30 s")
    r = client.post("/api/query", data={"top": "3"})
    assert_error(r, 422, "audio", "required")
    assert_error(post(client, good, top=0), 422, "top")
    assert_error(post(client, good, top=101), 422, "top")
    assert_error(post(client, good, top="many"), 422, "top")
    assert_error(post(client, good, rerank="cosine"), 400, "rerank must be one of")
    assert_error(post(client, good, rerank="dtw-f0"), 400, "F0 index", "chad f0-index build")
    assert_error(post(client, good, index="other"), 404, "no index named 'other'", "demo")


def test_upload_size_limit(setup):
    c, svc = make_client(setup["ix"], max_upload_bytes=100_000, max_query_s=8.0)
    try:
        assert_error(post(c, audio_bytes(excerpt(setup, a=0.0, b=7.9))), 413, "limit is 0.1 MB")
        assert_error(post(c, audio_bytes(excerpt(setup, a=0.0, b=3.4))), 413, "over the limit of 0.1 MB")
        assert post(c, audio_bytes(excerpt(setup, a=0.0, b=3.0)), top=1).status_code == 200
        assert_error(post(c, audio_bytes(np.zeros(9 * SR, np.float32), fmt="FLAC")), 413, "9.0 s", "limit is 8 s")
        assert c.get("/api/health").json()["limits"]["max_upload_bytes"] == 100_000
    finally:
        svc.close()


# ---- songs, audio, alignment, health, docs, page -----------------------------------------------

def test_songs_paged_and_one_song(client):
    r = client.get("/api/songs", params={"limit": 3})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 4 and page["offset"] == 0 and page["limit"] == 3 and len(page["songs"]) == 3
    s = page["songs"][0]
    assert s == {"song_id": "tune0", "title": "Tune 0", "duration_s": pytest.approx(14.0), "n_fingerprints": s["n_fingerprints"],
                 "has_audio": True, "audio_url": "/api/songs/tune0/audio?index=demo"}
    assert "path" not in s                                        # server paths stay on the server
    rest = client.get("/api/songs", params={"offset": 3, "limit": 3}).json()
    assert [x["song_id"] for x in rest["songs"]] == ["tune3"]
    assert client.get("/api/songs", params={"q": "TUNE 1"}).json()["total"] == 1
    assert client.get("/api/songs", params={"offset": 10}).json()["songs"] == []
    assert_error(client.get("/api/songs", params={"limit": 0}), 422, "limit")
    assert_error(client.get("/api/songs", params={"offset": -1}), 422, "offset")
    one = client.get("/api/songs/tune3").json()
    assert one["song_id"] == "tune3" and one["title"] == "Tune 3" and one["index"] == "demo"
    assert_error(client.get("/api/songs/nope"), 404, "no song 'nope'")
    assert_error(client.get("/api/songs", params={"index": "x"}), 404, "no index named 'x'")


def test_song_audio_with_range_requests(setup, client, tmp_path):
    data = (setup["root"] / "songs" / "tune1.flac").read_bytes()
    r = client.get("/api/songs/tune1/audio")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "audio/flac" and r.headers["accept-ranges"] == "bytes"
    r = client.get("/api/songs/tune1/audio", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == data[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    r = client.get("/api/songs/tune1/audio", headers={"Range": f"bytes={len(data) - 10}-"})
    assert r.status_code == 206 and r.content == data[-10:]
    assert client.get("/api/songs/tune1/audio", headers={"Range": f"bytes={len(data) + 5}-"}).status_code == 416
    assert_error(client.get("/api/songs/nope/audio"), 404, "no song 'nope'")
    # a song the index records no file for, and one whose file went away
    ix, c, svc = client_on_copy(setup, tmp_path)
    idx = SongIndex.open(ix)
    idx.add_fingerprints("nofile", setup["fp"].from_audio(setup["audio"]["tune0"][:5 * SR])[0], {"title": "No file"})
    moved = tmp_path / "gone.flac"
    shutil.copy(setup["root"] / "songs" / "tune0.flac", moved)
    idx.add_songs([("gone", str(moved), "Gone")], setup["fp"], progress_bar=False)
    moved.unlink()
    try:
        assert_error(c.get("/api/songs/nofile/audio"), 404, "records no file")
        assert_error(c.get("/api/songs/gone/audio"), 404, "gone.flac is missing")
        assert c.get("/api/songs/nofile").json()["has_audio"] is False
    finally:
        svc.close()


@pytest.mark.parametrize("pad_s", [0.0, 3.0])
def test_alignment_of_a_match(setup, client, pad_s):
    """The query's contour lies on the song's over the matched segment, also when silence precedes the hum
    (the match's time is where the voiced part starts: the query's contour is shifted by query_start_s)."""
    y = np.r_[np.zeros(int(pad_s * 16000), np.float32), excerpt(setup)]
    res = post(client, audio_bytes(y), top=2).json()
    m = res["matches"][0]
    r = client.get(f"/api/queries/{res['query_id']}/alignment", params={"song_id": m["song_id"], "time_s": m["time_s"]})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["song_id"] == "tune2" and a["duration_s"] == pytest.approx(7.0 + pad_s) and a["time_s"] == m["time_s"]
    assert a["query_start_s"] == pytest.approx(pad_s, abs=0.4)
    q, s = a["query"], a["song"]
    assert len(q["t"]) == len(q["st"]) > 30 and len(s["t"]) == len(s["st"]) > 30
    # the query is an excerpt of the song: the two contours agree where both are voiced
    qt, qs = np.array(q["t"]), np.array(q["st"]) + a["offset_st"]
    st, ss = np.array(s["t"]), np.array(s["st"])
    both = [(v, ss[np.argmin(abs(st - t))]) for t, v in zip(qt, qs) if np.min(abs(st - t)) < 0.06]
    assert len(both) > 30 and np.median([abs(x - y) for x, y in both]) < 0.5
    assert_error(client.get("/api/queries/0123/alignment", params={"song_id": "tune2", "time_s": 0}), 404,
                 "no recent query")
    assert_error(client.get(f"/api/queries/{res['query_id']}/alignment", params={"song_id": "nope", "time_s": 1}),
                 404, "no song")
    assert_error(client.get(f"/api/queries/{res['query_id']}/alignment", params={"song_id": "tune2"}), 422, "time_s")


def test_health_docs_and_page(client):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["default_index"] == "demo" and h["default_rerank"] == "pearson"
    ix = h["indexes"][0]
    assert ix["name"] == "demo" and ix["songs"] == 4 and ix["rerankers"] == ["pearson", "dtw"] and not ix["fused"]
    assert h["limits"]["max_query_s"] == 30.0 and h["auth"] is False
    spec = client.get("/openapi.json").json()
    for path in ("/api/query", "/api/songs", "/api/songs/{song_id}", "/api/songs/{song_id}/audio", "/api/health",
                 "/api/queries/{query_id}/alignment"):
        assert path in spec["paths"], path
    body = spec["paths"]["/api/query"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form = spec["components"]["schemas"][body.split("/")[-1]]
    assert {"audio", "top", "rerank", "index"} <= set(form["properties"]) and form["required"] == ["audio"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/docs.js" in docs.text
    page = client.get("/")
    assert page.status_code == 200 and 'id="record"' in page.text and 'id="matches"' in page.text
    for f in ("app.js", "wav.js", "recorder-worklet.js", "style.css", "docs.js"):
        assert client.get(f"/static/{f}").status_code == 200
    assert_error(client.get("/static/nope.js"), 404)
    assert_error(client.get("/api/nothing"), 404)


def test_page_fetches_nothing_from_elsewhere():
    from chadml.serve import STATIC_DIR
    files = os.listdir(STATIC_DIR)
    assert {"index.html", "app.js", "wav.js", "recorder-worklet.js", "style.css", "docs.html", "docs.js"} <= set(files)
    for f in files:
        text = open(os.path.join(STATIC_DIR, f), encoding="utf-8").read()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f


# ---- service behaviour --------------------------------------------------------------------------

def test_token_is_required_on_the_api(setup):
    c, svc = make_client(setup["ix"], token="s3cret")
    try:
        assert_error(c.get("/api/songs"), 401, "needs a token")
        assert c.get("/api/songs").headers["www-authenticate"] == "Bearer"
        assert_error(c.get("/api/songs", headers={"Authorization": "Bearer nope"}), 401, "wrong token")
        assert_error(post(c, audio_bytes(excerpt(setup))), 401)
        auth = {"Authorization": "Bearer s3cret"}
        assert c.get("/api/songs", headers=auth).status_code == 200
        r = c.post("/api/query", files={"audio": ("q.wav", audio_bytes(excerpt(setup)))}, headers=auth)
        assert r.status_code == 200 and r.json()["matches"][0]["song_id"] == "tune2"
        assert c.get("/api/songs/tune0/audio", params={"token": "s3cret"}).status_code == 200   # the page's player
        h = c.get("/api/health")
        assert h.status_code == 200 and h.json()["auth"] is True
        assert c.get("/").status_code == 200
    finally:
        svc.close()


def test_concurrent_queries_run_side_by_side(setup):
    c, svc = make_client(setup["ix"], workers=4)
    barrier = threading.Barrier(3, timeout=20)
    inner = svc.query
    calls = []

    def query(*a, **kw):                   # the first three queries wait for each other: they must overlap
        if len(calls) < 3:
            calls.append(1)
            barrier.wait()
        return inner(*a, **kw)

    svc.query = query
    songs = ["tune0", "tune1", "tune2", "tune3"] * 2
    out = [None] * len(songs)

    def one(i):
        out[i] = post(c, audio_bytes(excerpt(setup, songs[i], 1.0, 7.0)), top=1)

    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(songs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [r.status_code for r in out] == [200] * len(songs), [r.text for r in out if r.status_code != 200]
        assert [r.json()["matches"][0]["song_id"] for r in out] == songs
        assert not barrier.broken
    finally:
        svc.close()


def test_songs_added_while_serving_are_found_without_restart(setup, tmp_path, capsys):
    import soundfile as sf
    from chadml.cli import main
    ix, c, svc = client_on_copy(setup, tmp_path)
    try:
        new = melody(np.random.default_rng(11), 12.0)
        q = audio_bytes(new[2 * SR:9 * SR])
        before = post(c, q, top=5).json()
        assert "new_song" not in [m["song_id"] for m in before["matches"]]
        gen = c.get("/api/health").json()["indexes"][0]["generation"]
        (tmp_path / "more").mkdir()
        sf.write(tmp_path / "more" / "new_song.wav", new, SR)
        assert main(["-q", "index", "add", "--index", str(ix), "--songs", str(tmp_path / "more")]) == 0
        after = post(c, q, top=1).json()
        assert after["matches"][0]["song_id"] == "new_song" and abs(after["matches"][0]["time_s"] - 2.0) <= 0.3
        assert after["generation"] == gen + 1
        assert c.get("/api/songs").json()["total"] == 5
        assert c.get("/api/songs/new_song").status_code == 200
        assert c.get("/api/songs/new_song/audio").status_code == 200
        assert c.get("/api/health").json()["indexes"][0]["generation"] == gen + 1
    finally:
        svc.close()


def test_missing_index_is_a_404_and_a_usage_error(setup, tmp_path, capsys):
    from chadml.cli import main
    from chadml.errors import UsageError
    ix, c, svc = client_on_copy(setup, tmp_path)
    try:
        assert post(c, audio_bytes(excerpt(setup)), top=1).status_code == 200
        shutil.rmtree(ix)
        assert_error(post(c, audio_bytes(excerpt(setup))), 404, "index 'demo' is missing", str(ix))
        assert_error(c.get("/api/songs"), 404, "missing")
        assert_error(c.get("/api/songs/tune1/audio"), 404, "missing")
        h = c.get("/api/health")
        assert h.status_code == 503 and h.json()["status"] == "degraded" and not h.json()["indexes"][0]["present"]
    finally:
        svc.close()
    with pytest.raises(UsageError, match="no index at"):
        SearchService([Collection("x", str(tmp_path / "nope"))])
    capsys.readouterr()
    assert main(["serve", "--index", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--index: no index at" in err
    assert main(["serve", "--index", f"a={setup['ix']}", "--index", f"b={setup['ix']}", "--long-index", setup["ix"]]) == 2
    assert "--long-index: give NAME=DIR" in capsys.readouterr().err
    assert main(["serve", "--index", setup["ix"], "--long-index", f"zz={setup['ix']}"]) == 2
    assert "--long-index: no --index named 'zz'" in capsys.readouterr().err
    assert main(["serve", "--index", setup["ix"], "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert main(["serve", "--index", setup["ix"], "--rerank", "dtw-f0"]) == 2
    assert "rerank dtw-f0 needs an F0 index" in capsys.readouterr().err


def test_several_indexes(setup):
    svc = SearchService([Collection("a", setup["ix"]), Collection("b", setup["ix"])], ServeConfig(workers=1))
    c = TestClient(create_app(svc))
    try:
        h = c.get("/api/health").json()
        assert [i["name"] for i in h["indexes"]] == ["a", "b"] and h["default_index"] == "a"
        r = post(c, audio_bytes(excerpt(setup)), top=1, index="b").json()
        assert r["index"] == "b" and r["matches"][0]["audio_url"] == "/api/songs/tune2/audio?index=b"
        assert post(c, audio_bytes(excerpt(setup)), top=1).json()["index"] == "a"
        assert c.get("/api/songs", params={"index": "b"}).json()["index"] == "b"
    finally:
        svc.close()


def test_fused_index_pair(setup, tmp_path):
    fp_long = tiny_fingerprinter(seed=1, window=(8.0, 0.64))
    ckpt = save_tiny_checkpoint(fp_long, tmp_path / "long.pt")
    from chadml.models import checkpoint_id
    fp_long.model_id = checkpoint_id(ckpt)
    long_ix = tmp_path / "long"
    SongIndex.create(long_ix, fingerprinter=fp_long, model_path=ckpt).add_songs(
        list(setup["audio"].items()), fp_long, progress_bar=False)
    svc = SearchService([Collection("demo", setup["ix"], long_dir=str(long_ix))], ServeConfig(workers=1))
    c = TestClient(create_app(svc))
    try:
        assert c.get("/api/health").json()["indexes"][0]["fused"] is True
        short = post(c, audio_bytes(excerpt(setup, "tune3", 1.0, 8.0)), top=1).json()
        assert short["matches"][0]["song_id"] == "tune3" and short["timing"]["model"] == "short"
        long = post(c, audio_bytes(setup["audio"]["tune3"]), top=1).json()        # 14 s < 15 s: still short
        assert long["timing"]["model"] == "short"
        y = np.concatenate([setup["audio"]["tune3"], setup["audio"]["tune3"][:3 * SR]])   # 17 s: M_long
        r = post(c, audio_bytes(y), top=1).json()
        assert r["matches"][0]["song_id"] == "tune3" and r["timing"]["model"] == "long"
    finally:
        svc.close()


def test_the_index_is_only_read(setup, client):
    """No file of the index is opened for writing (an audit hook watches every open) and none changes."""
    ix = os.path.realpath(setup["ix"])
    writes, active = [], [True]

    def hook(event, args):
        if active[0] and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(args[0]))
            mode, flags = (args[1] if len(args) > 1 else "r") or "r", (args[2] if len(args) > 2 else 0) or 0
            if path.startswith(ix) and (any(ch in str(mode) for ch in "wax+")
                                        or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
                writes.append((path, mode, flags))

    def snapshot():
        return {f: (os.stat(os.path.join(ix, f)).st_mtime_ns, os.stat(os.path.join(ix, f)).st_size)
                for f in os.listdir(ix) if f.startswith(("catalog.sqlite", "store-", "faiss-")) and not
                f.endswith(("-wal", "-shm"))}

    before = snapshot()
    sys.addaudithook(hook)
    try:
        post(client, audio_bytes(excerpt(setup)), top=2)
        post(client, audio_bytes(excerpt(setup)), top=2, rerank="dtw")
        client.get("/api/songs")
        client.get("/api/songs/tune1")
        client.get("/api/songs/tune1/audio", headers={"Range": "bytes=0-99"})
        client.get("/api/health")
    finally:
        active[0] = False
    assert not writes, writes
    assert snapshot() == before


def test_request_log_has_timings(setup, client, caplog):
    import logging
    with caplog.at_level(logging.INFO, logger="chadml.serve"):
        post(client, audio_bytes(excerpt(setup)), top=1)
        client.get("/api/songs/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "chadml.serve"]
    q = [ln for ln in lines if ln.startswith("POST /api/query 200 ")]
    assert q and " ms (query 7.0 s; " in q[0] and "fingerprint" in q[0] and "rerank" in q[0]
    assert any(ln.startswith("GET /api/songs/nope 404 ") for ln in lines)


def test_chad_serve_command(setup):
    """`chad serve` as a process: 127.0.0.1 by default, the token, a query over HTTP, the request log,
    Ctrl-C stops it."""
    import httpx
    with ServerProcess(["--index", setup["ix"], "--workers", "2", "--token", "tok"]) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=srv.url, timeout=60) as h:
            assert h.get("/").status_code == 200
            assert h.get("/api/health").json()["indexes"][0]["songs"] == 4
            assert h.get("/api/songs").status_code == 401
            r = h.post("/api/query", files={"audio": ("q.wav", audio_bytes(excerpt(setup, "tune0", 5.0, 11.0)))},
                       data={"top": "2"}, headers={"Authorization": "Bearer tok"})
            assert r.status_code == 200 and r.json()["matches"][0]["song_id"] == "tune0", r.text + srv.log
            assert "app;dur=" in r.headers["server-timing"]
        assert srv.wait_log(r"POST /api/query 200 [\d.]+ ms \(query 6\.0 s; "), srv.log
        assert "GET /api/songs 401" in srv.log
        assert srv.stop() == 0
    assert "Traceback" not in srv.log, srv.log
