"""``chad query``: the songs that recordings hum or sing (:class:`chadml.search.Searcher`)."""
from __future__ import annotations

import argparse
import json
import sys

from .options import add_searcher_args, common, make_searcher


def register(sub) -> None:
    p = sub.add_parser("query", parents=[common()], help="find the songs that recordings hum or sing",
                       description="Query-by-humming: rank the songs of an index for each query file "
                                   "(ANN candidates, then max-Pearson, DTW or f0 + DTW re-ranking). Exit codes: "
                                   "0 every query answered, 1 a failure, 2 bad usage or an unreadable query.")
    add_searcher_args(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="query audio files")
    p.add_argument("--top", type=int, default=10, help="matches to print per query (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON (one object per line)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="search a sharded index (`chad index build --shards N`) with one Ray actor per shard: "
                        "a Ray cluster's address, or 'auto' (the running cluster, else a local one); a sharded "
                        "index without --ray is searched shard by shard in this process")
    p.set_defaults(func=run)


def format_time(t: float) -> str:
    """``m:ss.ss`` of a time in seconds.

    >>> format_time(75.5)
    '1:15.50'
    """
    return f"{int(t // 60)}:{t % 60:05.2f}"


def _searcher(args: argparse.Namespace):
    """:func:`make_searcher`, or a :class:`chadml.search.sharded.ShardedSearcher` for a sharded index."""
    from ..errors import UsageError
    from ..index import is_sharded
    if not (args.index and is_sharded(args.index)):
        if args.ray:
            raise UsageError(f"--ray: index {args.index} is not sharded (build one with `chad index build --shards N`)")
        return make_searcher(args)
    if args.long_index or args.rerank != "pearson":
        raise UsageError("a sharded --index is searched alone and re-ranked by max Pearson: drop --long-index "
                         "and --rerank")
    if args.k < 1:
        raise UsageError(f"-k/--candidates must be >= 1, got {args.k}")
    from ..search.sharded import ShardedSearcher
    from .options import separator_from_args
    return ShardedSearcher(args.index, ray_address=args.ray, k=args.k, threads=args.threads, device=args.device,
                           fingerprinter=args.model, separator=separator_from_args(args), tempo_scan=args.tempo_scan)


def run(args: argparse.Namespace) -> int:
    from ..errors import ChadError, UsageError
    if args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    from ..evaluate import query_input
    searcher = _searcher(args)
    rc = 0
    for f in args.files:
        try:
            matches = searcher.query(*query_input(searcher, f), top=args.top)
        except (FileNotFoundError, ValueError, ChadError) as exc:
            print(f"chad query: {f}: error: {exc}", file=sys.stderr)
            rc = max(rc, 1 if isinstance(exc, ChadError) and not isinstance(exc, UsageError) else 2)
            continue
        t = searcher.last_timing
        confident = bool(matches) and bool(matches[0].confident)
        reason = getattr(searcher, "last_reason", None)
        if args.json:
            print(json.dumps({"query": f, "confident": confident, "reason": reason,
                              "matches": [m.to_dict() for m in matches],
                              "timing": {k: v for k, v in t.items() if isinstance(v, (int, float, str))}}))
            continue
        print(f"{f}  ({t.get('duration_s', 0):.1f} s; ann {t.get('ann_s', 0) * 1e3:.0f} ms, "
              f"rerank {t.get('rerank_s', 0) * 1e3:.0f} ms, {t.get('n_candidates', 0)} candidates)")
        if not matches:
            print("   no match (silent query or empty index)")
        elif not confident:
            print("   no confident match" + (f" ({reason})" if reason else "") + "; the closest songs:")
        for m in matches:
            p = "    " if m.confidence is None else f"{m.confidence:4.2f}"
            print(f"  {m.rank:>3}  {m.score:7.4f}  p {p}  at {format_time(m.time_s):>8}  {m.song_id}"
                  + (f"  ({m.title})" if m.title and m.title != m.song_id else ""))
    return rc
