"""``chad evaluate``: top-n hit rate and MRR of queries with known songs (:mod:`chadml.evaluate`)."""
from __future__ import annotations

import argparse
import os

from .options import add_searcher_args, check_device, common, make_searcher


def register(sub) -> None:
    p = sub.add_parser("evaluate", parents=[common()], help="top-n hit rate and MRR of queries with known songs",
                       description="Run every audio file of a folder as a query and score the rank of its song "
                                   "(MIREX QBSH protocol: top-1/3/5/10/100 hit rate and MRR).")
    add_searcher_args(p)
    p.add_argument("--method", choices=("encoder", "f0-dtw"), default="encoder",
                   help="encoder: the index's model + re-ranking (default); f0-dtw: the classical f0 + DTW "
                        "matcher over --f0-index (no learning, no --index needed)")
    p.add_argument("--queries", required=True, help="folder of query audio files (query id = file stem)")
    p.add_argument("--truth", required=True, help="CSV with columns query (file stem) and song (song id)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the report (overall + per query) here")
    p.add_argument("--plot", default=None, metavar="PNG", help="write the hit-rate curve here")
    p.set_defaults(func=run)


def check_query_inputs(args: argparse.Namespace) -> None:
    """``--queries`` must be a folder and ``--truth`` a file (shared with ``chad compare``)."""
    from ..errors import UsageError
    if not os.path.isdir(args.queries):
        raise UsageError(f"--queries: no such folder: {args.queries}")
    if not os.path.isfile(args.truth):
        raise UsageError(f"--truth: no such file: {args.truth}")


def method_searcher(args: argparse.Namespace):
    """``(searcher, "--flag DIR" of the index it searches)`` of ``--method`` (shared with ``chad calibrate``):
    the f0 + DTW matcher of ``--f0-index``, or :func:`make_searcher`'s."""
    from ..errors import UsageError
    if args.method == "f0-dtw":
        from ..search import F0DtwSearcher
        if not args.f0_index:
            raise UsageError("--method f0-dtw needs --f0-index DIR (built by `chad f0-index build`)")
        return (F0DtwSearcher(args.f0_index, threads=args.threads, device=check_device(args.device)),
                f"--f0-index {args.f0_index}")
    return make_searcher(args), f"--index {args.index}"


def run(args: argparse.Namespace) -> int:
    from ..evaluate import check_truth, evaluate, labelled_queries
    check_query_inputs(args)
    queries, truth = labelled_queries(args.queries, args.truth)
    searcher, index_flag = method_searcher(args)
    check_truth(searcher, queries, truth, truth_name=f"--truth {args.truth}", index_name=index_flag)
    rep = evaluate(searcher, queries, truth, progress_bar=not args.quiet, on_error="miss", check_songs=False)
    print(rep.summary())
    failed = sum(1 for q in rep.per_query if "error" in q)
    if failed:
        print(f"{failed} queries failed (counted as misses; see the report)")
    if args.json:
        rep.to_json(args.json)
    if args.plot:
        rep.plot(args.plot)
    return 0
