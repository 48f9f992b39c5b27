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
    assert set(res["fragment_retrieval"]) == {"M0", "M1", "untrained", "raw"}
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
