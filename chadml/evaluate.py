"""Evaluation of query-by-humming retrieval: top-n hit rate and MRR (the MIREX QBSH protocol).

Every query has exactly one relevant song. A query's rank is the 1-based position of that song in the
ranked list the searcher returns (``None`` when it is not in the list); the top-n hit rate is the
share of queries with rank <= n, and the MRR is the mean of 1/rank (0 for a miss). Ranks are taken
from lists of ``top`` results (100 by default, so MRR counts ranks up to 100).

Example
-------
>>> from chadml.evaluate import hit_rate, mrr
>>> hit_rate([1, 3, None, 12], 10)
0.5
>>> round(mrr([1, 2, None, 4]), 4)
0.4375
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from .audio import load_head
from .config import SAMPLE_RATE
from .errors import ChadError, UsageError
from .index import find_audio_files
from .util import atomic_path, atomic_write_text, progress

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
TOP_N = (1, 3, 5, 10, 100)

__all__ = ["hit_rate", "mrr", "evaluate", "query_input", "check_truth", "searcher_songs", "Report", "read_truth",
           "query_files", "labelled_queries", "format_metric", "TOP_N", "FORMAT_VERSION"]


def _ranks(ranks: Iterable) -> np.ndarray:
    """Ranks as a float array with ``inf`` for misses (None, 0, NaN or inf); ValueError for bad values."""
    out = []
    for i, r in enumerate(ranks):
        if r is None:
            out.append(math.inf)
            continue
        if isinstance(r, bool) or not isinstance(r, (int, float, np.integer, np.floating)):
            raise TypeError(f"ranks[{i}] must be a positive integer or None (a miss), got {type(r).__name__}")
        r = float(r)
        if math.isnan(r) or r == 0 or math.isinf(r):
            out.append(math.inf)
        elif r < 1 or r != int(r):
            raise ValueError(f"ranks[{i}] must be a 1-based integer rank or None (a miss), got {r}")
        else:
            out.append(r)
    return np.asarray(out, dtype=np.float64)


def hit_rate(ranks: Sequence, n: int) -> float:
    """Share of queries whose relevant song ranks within the top ``n`` (misses: None or 0).

    >>> hit_rate([1, 2, 5], 3)
    0.6666666666666666
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    r = _ranks(ranks)
    if r.size == 0:
        raise ValueError("ranks must not be empty")
    return float(np.mean(r <= n))


def mrr(ranks: Sequence) -> float:
    """Mean reciprocal rank (a miss contributes 0).

    >>> mrr([1, 4, None])
    0.4166666666666667
    """
    r = _ranks(ranks)
    if r.size == 0:
        raise ValueError("ranks must not be empty")
    return float(np.mean(1.0 / r))


@dataclass
class Report:
    """Per-query ranks and the overall metrics of one evaluation.

    ``overall``: ``{"top1", "top3", "top5", "top10", "top100", "mrr", "queries"}``;
    ``per_query``: one dict per query with ``query``, ``song`` (the truth), ``rank`` (None: not in the
    list), ``top1`` .. ``top100`` (0/1), ``mrr`` (1/rank, this query's MRR), ``best`` (the top-ranked song),
    its ``score``, ``confidence`` and ``confident`` (:class:`chadml.search.Match`) and timing; :func:`evaluate`'s
    ``meta`` also holds the shares of queries answered ``confident`` (and of those, ``confident_right``
    and ``confident_wrong``: the best match right or wrong).
    """
    per_query: list[dict]
    overall: dict
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_ranks(cls, query_ids: Sequence[str], truth: Sequence[str], ranks: Sequence, *,
                   extra: Sequence[dict] | None = None, meta: dict | None = None) -> "Report":
        r = _ranks(ranks)
        if not (len(query_ids) == len(truth) == len(r)):
            raise ValueError(f"query_ids, truth and ranks must have the same length, got "
                             f"{len(query_ids)}, {len(truth)}, {len(r)}")
        per = []
        for i, (q, t) in enumerate(zip(query_ids, truth)):
            row = {"query": q, "song": t, "rank": None if math.isinf(r[i]) else int(r[i])}
            for n in TOP_N:
                row[f"top{n}"] = int(r[i] <= n)
            row["mrr"] = float(1.0 / r[i])   # the reciprocal rank: the MRR of this one query
            if extra is not None:
                row.update(extra[i])
            per.append(row)
        overall = {f"top{n}": hit_rate(r, n) for n in TOP_N} if len(r) else {f"top{n}": None for n in TOP_N}
        overall["mrr"] = mrr(r) if len(r) else None
        overall["queries"] = len(r)
        return cls(per, overall, dict(meta or {}))

    @property
    def ranks(self) -> list[int | None]:
        return [q["rank"] for q in self.per_query]

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, **self.overall, "overall": dict(self.overall),
                "per_query": self.per_query, "meta": self.meta}

    def to_json(self, path: str | os.PathLike) -> str:
        """Write the report as JSON (atomically); returns the path."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n")
        return os.fspath(path)

    @classmethod
    def read_json(cls, path: str | os.PathLike) -> "Report":
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if d.get("format_version") != FORMAT_VERSION:
            raise ChadError(f"{path}: evaluation report format_version {d.get('format_version')}, "
                            f"this chad reads {FORMAT_VERSION}")
        return cls(d["per_query"], d["overall"], d.get("meta", {}))

    def plot(self, path: str | os.PathLike, *, label: str | None = None, others: Mapping[str, "Report"] | None = None) -> str:
        """A PNG of the hit rate against n (log axis; n = 1..100), with ``others`` as extra curves."""
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        ns = np.unique(np.round(np.logspace(0, 2, 40)).astype(int))
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        curves = {label or "this run": self, **dict(others or {})}
        for name, rep in curves.items():
            r = _ranks(rep.ranks)
            ax.plot(ns, [float(np.mean(r <= n)) if r.size else 0.0 for n in ns], label=f"{name} "
                    f"(MRR {rep.overall.get('mrr') or 0:.3f})")
        ax.set_xscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("top-n hit rate")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(list(TOP_N))
        ax.set_xticklabels([str(n) for n in TOP_N])
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"Query-by-humming: {self.overall.get('queries', 0)} queries")
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return os.fspath(path)

    def summary(self) -> str:
        o = self.overall
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        return (f"{o['queries']} queries: top1 {f(o['top1'])}  top3 {f(o['top3'])}  top5 {f(o['top5'])}  "
                f"top10 {f(o['top10'])}  top100 {f(o['top100'])}  MRR {f(o['mrr'])}")


def format_metric(x: float | None, digits: int = 3) -> str:
    """A metric for a table: ``digits`` decimals, or "n/a" when there is none.

    >>> format_metric(0.41666), format_metric(None)
    ('0.417', 'n/a')
    """
    return "n/a" if x is None else f"{x:.{digits}f}"


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def query_input(searcher, audio, sr: int = SAMPLE_RATE) -> tuple[object, int]:
    """``(audio, sr)`` to give ``searcher.query`` for a query (a path, or an array at ``sr``): a path is read
    here up to the searcher's ``max_query_s`` (a fused searcher's long model's) with
    :func:`chadml.audio.load_head`, so that a 30-minute recording is not loaded whole to be cut to a
    minute (with a warning when it is cut); an array, or a searcher without a limit, is passed on as is."""
    max_s = getattr(getattr(searcher, "long", searcher), "max_query_s", None)
    if max_s is None or not isinstance(audio, (str, os.PathLike)):
        return audio, sr
    y, total = load_head(audio, max_s, sr=SAMPLE_RATE)
    if total > max_s:
        log.warning("%s is %.1f s long: only its first %.1f s are used", os.fspath(audio), total, max_s)
    return y, SAMPLE_RATE


def searcher_songs(searcher):
    """The song ids ``searcher`` can answer with (a list), or None when it does not tell: those of a
    :class:`chadml.search.Searcher`'s index (a fused one's short index), of an F0 index, of a
    :class:`chadml.search.RawFeatureSearcher`."""
    for s in (getattr(searcher, "short", None), searcher):
        idx = getattr(s, "index", None)
        if idx is not None and hasattr(idx, "songs") and hasattr(idx, "__contains__"):
            return [x.song_id for x in idx.songs()]
        ids = getattr(idx, "song_ids", None) if idx is not None else getattr(s, "song_ids", None)
        if ids is not None:
            return list(ids)
    return None


def check_truth(searcher, queries: Sequence[tuple[str, object]], truth: Mapping[str, str], *,
                truth_name: str = "the truth", index_name: str = "the index") -> None:
    """The songs of ``truth`` (for ``queries``) must be songs ``searcher`` can find: none of them is a
    :class:`chadml.errors.UsageError` (ids of another naming, e.g. the demo's song ids against an index of
    file stems: every query would miss), some of them a warning (those queries count as misses).
    ``truth_name``/``index_name`` name the two sides in the messages (the CLI: its flags).

    >>> from chadml.search import RawFeatureSearcher
    >>> import numpy as np
    >>> s = RawFeatureSearcher([("song-1", np.zeros(16000, np.float32))])
    >>> check_truth(s, [("q1", "q1.wav")], {"q1": "tune_001"})  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    chadml.errors.UsageError: none of the 1 songs of the truth is in the index (1 songs): the truth's songs
    are e.g. tune_001, the index's e.g. song-1; the truth's song column must hold the index's song ids
    """
    have = searcher_songs(searcher)
    if have is None:
        return
    ids = set(have)
    want = sorted({str(truth[q]) for q, _ in queries if q in truth})
    missing = [s for s in want if s not in ids]
    if want and len(missing) == len(want):
        raise UsageError(f"none of the {len(want)} songs of {truth_name} is in {index_name} ({len(ids)} songs): "
                         f"the truth's songs are e.g. {', '.join(want[:3])}, the index's e.g. "
                         f"{', '.join(sorted(ids)[:3]) or '(none)'}; the truth's song column must hold the index's "
                         "song ids")
    if missing:
        log.warning("%d of the %d songs of %s are not in %s (e.g. %s): their queries count as misses",
                    len(missing), len(want), truth_name, index_name, ", ".join(missing[:5]))


def evaluate(searcher, queries: Sequence[tuple[str, object]], truth: Mapping[str, str], *, top: int = 100,
             sr: int = 16000, progress_bar: bool = True, on_error: str = "raise", check_songs: bool = True) -> Report:
    """Run every query through ``searcher`` and score the rank of its one relevant song.

    ``queries``: ``(query_id, audio array at sr or path)``; ``truth``: query_id -> song_id (every query
    must have one). ``on_error``: "raise", or "miss" (a query that fails counts as a miss, with the
    error recorded in its row). ``check_songs``: first :func:`check_truth` (the truth's songs must be ones
    the searcher can find).
    Returns a :class:`Report`.

    Example
    -------
    >>> rep = evaluate(Searcher("songs.idx"), [("q1", "q1.wav")], {"q1": "song-7"})   # doctest: +SKIP
    >>> rep.overall["top10"], rep.to_json("eval.json")                                # doctest: +SKIP
    """
    if on_error not in ("raise", "miss"):
        raise ValueError(f"on_error must be 'raise' or 'miss', got {on_error!r}")
    queries = list(queries)
    missing = [q for q, _ in queries if q not in truth]
    if missing:
        raise ValueError(f"no truth (relevant song) for {len(missing)} queries, e.g. {missing[:5]}")
    if check_songs:
        check_truth(searcher, queries, truth)
    ids, songs, ranks, extra = [], [], [], []
    t_start = time.perf_counter()
    for qid, audio in progress(queries, desc="queries", unit="query", disable=not progress_bar or None):
        row: dict = {}
        try:
            matches = searcher.query(*query_input(searcher, audio, sr), top=top)
        except Exception as exc:  # noqa: BLE001 - recorded per query when on_error="miss"
            if on_error == "raise":
                raise
            log.warning("query %s failed: %s", qid, exc)
            matches, row["error"] = [], f"{type(exc).__name__}: {exc}"
        want = str(truth[qid])
        rank = next((m.rank for m in matches if m.song_id == want), None)
        t = getattr(searcher, "last_timing", {}) or {}
        row.update({"best": matches[0].song_id if matches else None,
                    "score": matches[0].score if matches else None,
                    "confidence": matches[0].confidence if matches else None,
                    "confident": bool(matches and matches[0].confident),
                    "time_s": next((m.time_s for m in matches if m.song_id == want), None),
                    **{k: t[k] for k in ("ann_s", "rerank_s", "total_s") if k in t}})
        ids.append(qid)
        songs.append(want)
        ranks.append(rank)
        extra.append(row)
    meta = {"top": top, "seconds": time.perf_counter() - t_start}
    if extra:      # the shares of queries answered with a confident best match, right and wrong
        conf = [bool(e.get("confident")) for e in extra]
        meta["confident"] = float(np.mean(conf))
        meta["confident_right"] = float(np.mean([c and r == 1 for c, r in zip(conf, ranks)]))
        meta["confident_wrong"] = float(np.mean([c and r != 1 for c, r in zip(conf, ranks)]))
    for attr in ("rerank", "k"):
        if hasattr(searcher, attr):
            meta[attr] = getattr(searcher, attr)
    return Report.from_ranks(ids, songs, ranks, extra=extra, meta=meta)


def read_truth(path: str | os.PathLike) -> dict[str, str]:
    """The ``query`` -> ``song`` map of a CSV with those two columns (others ignored)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"truth CSV not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        if "query" not in cols or "song" not in cols:
            raise ValueError(f"the truth CSV {path} needs a header with columns 'query' and 'song', got {cols}")
        out: dict[str, str] = {}
        for i, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            q, s = row["query"], row["song"]
            if not q or not s:
                raise ValueError(f"{path} line {i}: empty query or song")
            if q in out and out[q] != s:
                raise ValueError(f"{path} line {i}: query {q!r} has two songs ({out[q]!r}, {s!r}); the MIREX "
                                 "protocol has one relevant song per query")
            out[q] = s
    if not out:
        raise ValueError(f"the truth CSV {path} has no rows")
    return out


def query_files(directory: str | os.PathLike) -> list[tuple[str, str]]:
    """``(query id = file stem, path)`` of the audio files under ``directory``."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no such query folder: {directory}")
    files = find_audio_files(directory)
    if not files:
        raise ValueError(f"no audio files under {directory}")
    return [(os.path.splitext(os.path.basename(p))[0], p) for p in files]


def labelled_queries(directory: str | os.PathLike, truth_csv: str | os.PathLike
                     ) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The query files under ``directory`` that have a row in the truth CSV, and the truth itself.

    Files with no row are skipped with a warning; :class:`chadml.errors.UsageError` when none is left.
    Returns ``(queries, truth)`` as :func:`evaluate` takes them.
    """
    truth = read_truth(truth_csv)
    queries = query_files(directory)
    unknown = [q for q, _ in queries if q not in truth]
    if unknown:
        log.warning("%d query files have no row in %s and are skipped, e.g. %s", len(unknown), os.fspath(truth_csv),
                    unknown[:5])
    queries = [(q, p) for q, p in queries if q in truth]
    if not queries:
        raise UsageError(f"none of the query files under {os.fspath(directory)} is in {os.fspath(truth_csv)}")
    return queries, truth
