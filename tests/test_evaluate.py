"""chadml.evaluate: exact metric values on known ranks, the report (JSON, PNG), evaluate() on a searcher."""
from __future__ import annotations

import json

import numpy as np
import pytest

from chadml.evaluate import Report, evaluate, hit_rate, mrr, read_truth
from chadml.search import Match


RANKS = [1, 2, 3, 5, 10, 11, 100, None, 4, 1]


@pytest.mark.parametrize("n, want", [(1, 0.2), (3, 0.4), (5, 0.6), (10, 0.7), (100, 0.9), (1000, 0.9)])
def test_hit_rate_known_ranks(n, want):
    assert hit_rate(RANKS, n) == pytest.approx(want)


def test_mrr_known_ranks():
    want = (1 + 1 / 2 + 1 / 3 + 1 / 5 + 1 / 10 + 1 / 11 + 1 / 100 + 0 + 1 / 4 + 1) / 10
    assert mrr(RANKS) == pytest.approx(want)
    assert mrr([1, 1]) == 1.0 and mrr([None, 0]) == 0.0
    assert hit_rate([0, np.inf, float("nan")], 100) == 0.0       # other spellings of a miss


def test_metric_argument_errors():
    with pytest.raises(ValueError, match="empty"):
        mrr([])
    with pytest.raises(ValueError, match=r"ranks\[1\]"):
        hit_rate([1, 2.5], 3)
    with pytest.raises(ValueError, match=r"ranks\[0\]"):
        mrr([-1])
    with pytest.raises(TypeError):
        mrr(["1"])
    with pytest.raises(ValueError, match="n must"):
        hit_rate([1], 0)


def test_report_json_roundtrip_and_plot(tmp_path):
    rep = Report.from_ranks([f"q{i}" for i in range(10)], [f"s{i}" for i in range(10)], RANKS)
    assert rep.overall["top10"] == pytest.approx(0.7) and rep.overall["queries"] == 10
    assert rep.per_query[7]["rank"] is None and rep.per_query[7]["mrr"] == 0.0
    assert rep.per_query[3]["top5"] == 1 and rep.per_query[3]["top3"] == 0
    path = rep.to_json(tmp_path / "r.json")
    d = json.loads(open(path).read())
    for key in ("top1", "top3", "top5", "top10", "top100", "mrr"):
        assert d[key] == pytest.approx(rep.overall[key]) and key in d["per_query"][0]
    back = Report.read_json(path)
    assert back.ranks == RANKS and back.overall == rep.overall
    png = rep.plot(tmp_path / "r.png", others={"other": Report.from_ranks(["a"], ["b"], [1])})
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


class _FakeSearcher:
    """Ranks fixed per query: a searcher whose answer is known, to test evaluate() itself."""

    rerank, k = "pearson", 10

    def __init__(self, lists):
        self.lists = lists
        self.last_timing = {}

    def query(self, audio, sr=16000, top=10):
        if audio == "broken":
            raise ValueError("corrupt query")
        self.last_timing = {"ann_s": 0.01, "rerank_s": 0.02, "total_s": 0.05}
        return [Match(s, s, 1.0 - i / 10, 1.5 * i, i + 1) for i, s in enumerate(self.lists[audio][:top])]


def test_evaluate_ranks_the_true_song():
    s = _FakeSearcher({"a": ["x", "y", "z"], "b": ["y", "x"], "c": ["z"]})
    rep = evaluate(s, [("qa", "a"), ("qb", "b"), ("qc", "c")], {"qa": "z", "qb": "y", "qc": "x"},
                   progress_bar=False)
    assert rep.ranks == [3, 1, None]
    assert rep.overall["top1"] == pytest.approx(1 / 3) and rep.overall["top3"] == pytest.approx(2 / 3)
    assert rep.overall["mrr"] == pytest.approx((1 / 3 + 1) / 3)
    assert rep.per_query[0]["time_s"] == 3.0 and rep.per_query[0]["best"] == "x"
    assert rep.per_query[1]["rerank_s"] == 0.02 and rep.meta["rerank"] == "pearson"
    with pytest.raises(ValueError, match="no truth"):
        evaluate(s, [("qa", "a"), ("qd", "a")], {"qa": "z"}, progress_bar=False)
    with pytest.raises(ValueError, match="corrupt"):
        evaluate(s, [("qa", "broken")], {"qa": "z"}, progress_bar=False)
    rep = evaluate(s, [("qa", "broken"), ("qb", "b")], {"qa": "z", "qb": "y"}, progress_bar=False, on_error="miss")
    assert rep.ranks == [None, 1] and "corrupt" in rep.per_query[0]["error"]


def test_read_truth(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("singer, query ,song\nann,q1,s1\nbob,q2,s9\n")
    assert read_truth(p) == {"q1": "s1", "q2": "s9"}
    p.write_text("query,track\nq1,s1\n")
    with pytest.raises(ValueError, match="'query' and 'song'"):
        read_truth(p)
    p.write_text("query,song\nq1,s1\nq1,s2\n")
    with pytest.raises(ValueError, match="two songs"):
        read_truth(p)
    with pytest.raises(FileNotFoundError):
        read_truth(tmp_path / "none.csv")
