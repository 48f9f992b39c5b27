"""The paper's comparison (Table 1) on your own data: ``chad compare``.

One table of top-1 / top-10 hit rate, MRR and median seconds per query for

- **f0-DTW**: the classical matcher with no learning (:class:`chadml.search.F0DtwSearcher`),
- the **CQT encoder** with max-Pearson and with DTW re-ranking (:class:`chadml.search.Searcher`),
- the **CREPE encoder** (same two re-rankers), when an index built with a CREPE-feature model is given,

printed, and saved as Markdown (``compare.md``), JSON (``compare.json``, with every report) and PNG
(``compare.png``), each written atomically.

Example
-------
>>> from chadml.compare import compare, format_table
>>> rows = compare(queries, truth, index="cqt.idx", f0_index="cqt.idx/f0")   # doctest: +SKIP
>>> print(format_table(rows))                                               # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Mapping, Sequence

import numpy as np

from .evaluate import evaluate, format_metric
from .search import F0DtwSearcher, Searcher
from .util import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["compare", "format_table", "plot_table", "write_results", "FORMAT_VERSION"]
FORMAT_VERSION = 1


def _methods(index, f0_index, crepe_index, *, k: int, threads, device) -> list[tuple[str, str, object]]:
    """``(method name, features, factory)`` of every method that the given indexes allow."""
    out = []
    if f0_index is not None:
        out.append(("f0-DTW (no learning)", "CREPE f0",
                    lambda: F0DtwSearcher(f0_index, threads=threads, device=device)))
    for label, idx in (("CQT", index), ("CREPE", crepe_index)):
        if idx is None:
            continue
        for rr, name in (("pearson", "Pearson"), ("dtw", "DTW")):
            out.append((f"{label} encoder + {name}", label,
                        lambda idx=idx, rr=rr: Searcher(idx, rerank=rr, k=k, threads=threads, device=device)))
    return out


def compare(queries: Sequence[tuple[str, object]], truth: Mapping[str, str], *, index=None, f0_index=None,
            crepe_index=None, k: int = 5000, threads: int | None = None, device=None, top: int = 100,
            progress_bar: bool = True) -> list[dict]:
    """Evaluate every available method on the same queries; one row per method.

    Parameters
    ----------
    queries, truth : as :func:`chadml.evaluate.evaluate` (``(query_id, audio or path)``; query -> song).
    index : the CQT encoder's song index (path or SongIndex), or None.
    f0_index : the F0 index of the same songs (path or F0Index), or None (no f0-DTW row).
    crepe_index : a song index built with a CREPE-feature encoder, or None.

    Returns
    -------
    list of dict with ``method``, ``features``, ``top1``, ``top10``, ``mrr``, ``median_query_s``,
    ``queries``, ``failed`` and ``report`` (the full :class:`chadml.evaluate.Report` as a dict).
    """
    methods = _methods(index, f0_index, crepe_index, k=k, threads=threads, device=device)
    if not methods:
        raise ValueError("nothing to compare: give at least one of index, f0_index, crepe_index")
    rows = []
    for name, feats, make in methods:
        log.info("compare: %s", name)
        searcher = make()
        t = time.perf_counter()
        rep = evaluate(searcher, queries, truth, top=top, progress_bar=progress_bar, on_error="miss")
        wall = time.perf_counter() - t
        times = [q["total_s"] for q in rep.per_query if isinstance(q.get("total_s"), (int, float))]
        o = rep.overall
        rows.append({"method": name, "features": feats, "top1": o["top1"], "top10": o["top10"], "mrr": o["mrr"],
                     "median_query_s": float(np.median(times)) if times else wall / max(len(queries), 1),
                     "queries": o["queries"], "failed": sum(1 for q in rep.per_query if "error" in q),
                     "no_result": sum(1 for q in rep.per_query if q.get("best") is None),
                     "report": rep.to_dict()})
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """The Markdown table of :func:`compare`'s rows.

    >>> print(format_table([{"method": "f0-DTW (no learning)", "top1": 0.5, "top10": 0.75, "mrr": 0.6,
    ...                      "median_query_s": 0.12, "queries": 4}]))
    | method | top-1 | top-10 | MRR | median s/query | queries |
    |---|---|---|---|---|---|
    | f0-DTW (no learning) | 0.500 | 0.750 | 0.600 | 0.120 | 4 |
    """
    lines = ["| method | top-1 | top-10 | MRR | median s/query | queries |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = " | ".join(format_metric(r[k]) for k in ("top1", "top10", "mrr", "median_query_s"))
        lines.append(f"| {r['method']} | {cells} | {r['queries']} |")
    return "\n".join(lines)


def plot_table(rows: Sequence[dict], path) -> str:
    """A PNG of :func:`compare`'s rows: top-1 / top-10 / MRR bars, and the median query time."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    names = [r["method"] for r in rows]
    x = np.arange(len(rows))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), dpi=100, gridspec_kw={"width_ratios": [3, 2]})
    for i, (key, label) in enumerate((("top1", "top-1"), ("top10", "top-10"), ("mrr", "MRR"))):
        ax.bar(x + (i - 1) * 0.27, [r[key] or 0 for r in rows], 0.27, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("hit rate / MRR")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(f"{rows[0]['queries'] if rows else 0} queries")
    ax2.barh(x, [r["median_query_s"] for r in rows], color="gray")
    ax2.set_yticks(x)
    ax2.set_yticklabels(names, fontsize=8)
    ax2.invert_yaxis()
    ax2.set_xlabel("median seconds per query")
    ax2.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return os.fspath(path)


def write_results(rows: Sequence[dict], out_dir) -> dict:
    """``compare.md``, ``compare.json`` and ``compare.png`` in ``out_dir`` (atomic); returns their paths."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, f"compare.{k}") for k in ("md", "json", "png")}
    atomic_write_text(paths["md"], format_table(rows) + "\n")
    atomic_write_text(paths["json"], json.dumps({"format_version": FORMAT_VERSION, "rows": list(rows)}, indent=1,
                                                default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")
    plot_table(rows, paths["png"])
    return paths
