"""The semi-supervised loop (chadml.loop): iteration logs, resumption, config checks, CLI."""
from __future__ import annotations

import json
import os

import pytest

import mining_data as md

from chadml import ChadError
from chadml.loop import LoopConfig, read_logs, run_loop
from chadml.mining import MiningConfig


def _hummings(table):
    """An H part from the synthetic songs: each phrase of an original with its time-aligned 'humming'
    (here the first cover's take of it); the test split holds the last song."""
    from chadml.data import FragmentRow, Manifest
    rows = []
    for sid, (o, covers) in sorted(table.songs().items()):
        c = covers[0]
        off = c.alignment[0][1]
        for k, (a, b) in enumerate([(1.5, 9.5), (11.5, 19.5)]):
            gid = f"h-{sid}"
            for j, (typ, path, s) in enumerate([("original", o.path, a), ("humming", c.path, a + off)]):
                rows.append(FragmentRow(group_id=gid, fragment_id=str(k), id=f"{gid}/{k}/{j}", audio_type=typ,
                                        source_id=f"{sid}-{typ}", start=s, end=s + (b - a), correlation=1.0,
                                        check_by_crowdsource=False, duration=b - a, path=path,
                                        true_offset=0.0, split=o.split))
    return Manifest(rows)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from chadml.data import SongTable
    d = tmp_path_factory.mktemp("loopdata")
    train, _ = md.make_songs(str(d / "a"), n_songs=2, n_covers=2, seed=5)
    test, _ = md.make_songs(str(d / "b"), n_songs=1, n_covers=2, seed=6, split="test")
    for r in test.rows:
        r.song_id = "t" + r.song_id
        r.version_id = "t" + r.version_id
    table = SongTable(train.rows + test.rows)
    return table, _hummings(table)


TINY = {"width": 8, "batch_size": 8, "steps_per_epoch": 2, "augment": False}
CFG = LoopConfig(iterations=2, epochs0=1, epochs=1, train_kwargs=TINY, mining=MiningConfig())


def test_loop_logs_each_iteration_and_resumes(data, tmp_path):
    table, hum = data
    out = tmp_path / "loop"
    logs = run_loop(table, hum, out, config=CFG, progress=False)
    assert [e["iteration"] for e in logs] == [0, 1, 2]
    assert read_logs(out) == logs
    assert json.load(open(out / "log.json")) == logs
    for i in range(3):
        assert (out / f"M{i}.pt").exists()
    assert logs[0]["trained_on"] == "H" and set(logs[0]["retrieval"]) >= {"top1", "top10", "mrr"}
    for e in logs[1:]:
        assert e["songs_mined"] == 2                          # the train split only
        for k in ("groups", "hours", "relevant", "uncertain", "precision", "recall", "retrieval",
                  "retrieval_prev", "train_fragments"):
            assert k in e
        assert e["mined_with"].endswith(f"M{e['iteration'] - 1}.pt")
        mined = (out / f"iter_{e['iteration']:02d}" / "mined.csv")
        assert mined.exists()
        from chadml.data import Manifest
        m = Manifest.read(str(mined))
        assert {r.split for r in m.rows} <= {"train"}
        assert not any(r.source_id.startswith("t") for r in m.rows)
        assert e["relevant"] + e["uncertain"] == sum(r.audio_type == "cover" for r in m.rows)
    # a rerun redoes nothing
    stamps = {p: os.stat(out / p).st_mtime_ns for p in ("M0.pt", "M1.pt", "M2.pt", "log_02.json")}
    assert run_loop(table, hum, out, config=CFG, progress=False) == logs
    assert stamps == {p: os.stat(out / p).st_mtime_ns for p in stamps}
    # losing the last iteration's log redoes only that iteration (its mining resumes from per-song results)
    os.remove(out / "log_02.json")
    logs2 = run_loop(table, hum, out, config=CFG, progress=False)
    assert [e["iteration"] for e in logs2] == [0, 1, 2]
    assert os.stat(out / "M1.pt").st_mtime_ns == stamps["M1.pt"]
    assert logs2[2]["groups"] == logs[2]["groups"]
    # the same run with another number of iterations continues it (here: fewer, so nothing is redone)
    import dataclasses
    assert run_loop(table, hum, out, config=dataclasses.replace(CFG, iterations=1), progress=False) == logs2[:2]
    assert os.stat(out / "M1.pt").st_mtime_ns == stamps["M1.pt"]
    # a different config on the same directory is refused
    with pytest.raises(ChadError, match="another config"):
        run_loop(table, hum, out, config=LoopConfig(iterations=3, epochs0=1, epochs=1), progress=False)


def test_loop_control_trains_on_the_hummings_alone(data, tmp_path):
    import dataclasses
    from chadml.training.train import load_checkpoint
    table, hum = data
    out = tmp_path / "loop"
    logs = run_loop(table, hum, out, config=dataclasses.replace(CFG, iterations=1, control=True), progress=False)
    e = logs[1]
    assert set(e["retrieval_control"]) >= {"top1", "top10", "mrr"} and e["seconds_control"] > 0
    assert e["control_model"].endswith("M1_control.pt") and (out / "M1_control.pt").exists()
    assert load_checkpoint(out / "M1_control.pt")["epoch"] == CFG.epochs
    assert "retrieval_control" not in logs[0]
    with pytest.raises(TypeError, match="control"):
        LoopConfig(control=1)


def test_cli_loop_runs_with_the_training_options(data, tmp_path, capsys):
    from chadml.cli import main
    table, hum = data
    songs_csv, hum_csv = tmp_path / "songs.csv", tmp_path / "hum.csv"
    table.write(str(songs_csv))
    hum.write(str(hum_csv))
    out = tmp_path / "loop"
    rc = main(["--quiet", "loop", "--iterations", "1", "--songs", str(songs_csv), "--hummings", str(hum_csv),
               "--out", str(out), "--epochs0", "1", "--epochs", "1", "--width", "4", "--batch-size", "8",
               "--steps-per-epoch", "1", "--seed", "3", "--no-augment", "--lr-schedule", "cosine", "--control",
               "--groups-per-song", "2"])
    assert rc == 0
    cfg = json.load(open(out / "loop.json"))["config"]
    assert cfg["train_kwargs"] == {"width": 4, "batch_size": 8, "steps_per_epoch": 1, "seed": 3, "groups_per_song": 2,
                                   "augment": False, "lr_schedule": "cosine"}
    assert cfg["control"] is True and (out / "M1_control.pt").exists()
    printed = capsys.readouterr().out
    assert "iter" in printed and "prec" in printed


def test_loop_batches_cycle_through_train_songs():
    from chadml.loop import _batch
    ids = ["a", "b", "c", "d", "e"]
    assert _batch(ids, 1, None) == ids and _batch(ids, 3, 10) == ids
    assert [_batch(ids, i, 2) for i in (1, 2, 3, 4)] == [["a", "b"], ["c", "d"], ["e", "a"], ["b", "c"]]


def test_loop_config_checks():
    with pytest.raises(ValueError, match="iterations"):
        LoopConfig(iterations=-1)
    with pytest.raises(ValueError, match="window"):
        LoopConfig(window="medium")
    with pytest.raises(ValueError, match="songs_per_iteration"):
        LoopConfig(songs_per_iteration=0)
    c = LoopConfig(iterations=3, mining=MiningConfig(beta_rel=0.6))
    assert LoopConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_cli_loop_help_and_missing_input(tmp_path, capsys):
    from chadml.cli import main
    with pytest.raises(SystemExit) as e:
        main(["loop", "--help"])
    help_text = capsys.readouterr().out
    assert e.value.code == 0 and "--iterations" in help_text and "--lr-schedule" in help_text
    assert main(["loop", "--iterations", "1", "--songs", str(tmp_path / "x.csv"), "--hummings",
                 str(tmp_path / "h.csv"), "--out", str(tmp_path / "o")]) == 2
