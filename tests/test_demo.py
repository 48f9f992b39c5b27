"""The end-to-end demo (`chad demo --quick`): every stage runs and leaves its outputs; a rerun resumes."""
from __future__ import annotations

import json
import os

from chadml.cli import main


def test_quick_demo_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["--quiet", "demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "M1 + pearson" in printed and "raw CQT" in printed and "untrained ResNet18" in printed
    # --quick says, before and after, that its model is a smoke test and not a usable one (issue 14)
    assert printed.count("smoke test of the pipeline") == 2 and "NOT usable" in printed.splitlines()[-1]
    for name in ("m0.pt", "m1.pt", "manifest.csv", "queries.csv", "results.json", "results.md",
                 "index_m0/catalog.sqlite", "index_m1/catalog.sqlite", "corpus/songs.csv", "corpus/hummings.csv",
                 "plots/m0_loss.png", "plots/hitrate_m1_pearson.png"):
        assert os.path.exists(out / name), name
    res = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in res["table"]] == ["M0 + pearson", "M0 + dtw", "M1 + pearson", "M1 + dtw",
                                                    "raw CQT + pearson (no learning)"]
    for r in res["table"]:
        assert 0 <= r["top1"] <= r["top10"] <= 1 and 0 < r["mrr"] <= 1 and r["seconds_per_query"] > 0
    assert res["queries"] > 0 and res["songs"] == 8
    assert set(res["fragment_retrieval"]) == {"M0", "M1", "control", "untrained", "raw"}
    assert res["fragment_retrieval"]["control"] is None          # only with --control
    assert res["mining"]["groups"] >= 0
    # the training manifest M_1 saw holds the hummings and the mined cover groups
    manifest = (out / "manifest.csv").read_text()
    assert ",humming," in manifest
    # a rerun reuses every finished stage (same models, same results)
    before = (out / "m1.pt").read_bytes()
    assert main(["--quiet", "demo", "--quick", "--out", str(out)]) == 0
    assert (out / "m1.pt").read_bytes() == before
    def scores(table):
        return [{k: v for k, v in r.items() if k != "seconds_per_query"} for r in table]
    assert scores(json.loads((out / "results.json").read_text())["table"]) == scores(res["table"])


def test_hummed_part_keeps_test_groups_and_a_share_of_the_train_songs():
    import pytest
    from chadml.data import FragmentRow, Manifest
    from chadml.demo import hummed_part
    rows = []
    for s in range(9):
        split = "test" if s >= 6 else "train"
        for kind in ("original", "humming"):
            rows.append(FragmentRow(f"song{s}", "0", f"song{s}/0/{kind}", kind, source_id=f"v{s}", start=0.0,
                                    end=5.0, duration=5.0, split=split))
    h = Manifest(rows)
    third = hummed_part(h, 1 / 3)
    kept = sorted({r.group_id for r in third.rows if r.split == "train"})
    assert kept == ["song0", "song3"]                             # 2 of 6 train songs, evenly spaced
    assert {r.group_id for r in third.rows if r.split == "test"} == {"song6", "song7", "song8"}
    assert len(hummed_part(h, 1.0).rows) == len(rows)
    with pytest.raises(ValueError, match="hummed_share"):
        hummed_part(h, 0.0)
