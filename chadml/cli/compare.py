"""``chad compare``: the paper's Table 1 on your own data (:mod:`chadml.compare`)."""
from __future__ import annotations

import argparse
import os

from .evaluate import check_query_inputs
from .options import check_device, common


def register(sub) -> None:
    p = sub.add_parser("compare", parents=[common()],
                       help="f0-DTW vs CQT and CREPE encoders on the same queries (Table 1)",
                       description="Evaluate the classical f0 + DTW matcher and the learned encoders (CQT with "
                                   "max-Pearson and DTW re-ranking; CREPE when --crepe-index is given) on the "
                                   "same queries; print one table and save it as Markdown, JSON and PNG.")
    p.add_argument("--index", default=None, help="the CQT encoder's song index")
    p.add_argument("--crepe-index", default=None, help="a song index built with a CREPE-feature encoder")
    p.add_argument("--f0-index", default=None, help="F0 index of the songs (default: INDEX/f0 when it exists)")
    p.add_argument("--queries", required=True, help="folder of query audio files (query id = file stem)")
    p.add_argument("--truth", required=True, help="CSV with columns query and song")
    p.add_argument("--out", default=None, metavar="DIR", help="write compare.md/.json/.png here")
    p.add_argument("-k", "--candidates", type=int, default=5000, dest="k")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None, help="torch device of the models (default: cuda if available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compare import compare, format_table, write_results
    from ..errors import UsageError
    from ..evaluate import labelled_queries
    from ..search import F0_CATALOG
    f0 = args.f0_index
    if f0 is None and args.index and os.path.isfile(os.path.join(args.index, "f0", F0_CATALOG)):
        f0 = os.path.join(args.index, "f0")
    if not (args.index or f0 or args.crepe_index):
        raise UsageError("nothing to compare: give at least one of --index, --f0-index, --crepe-index")
    for flag, path in (("--index", args.index), ("--f0-index", f0), ("--crepe-index", args.crepe_index)):
        if path is not None and not os.path.exists(path):
            raise UsageError(f"{flag}: no such index: {path}")
    if args.k < 1:
        raise UsageError(f"-k/--candidates must be >= 1, got {args.k}")
    if args.threads is not None and args.threads < 0:
        raise UsageError(f"--threads must be >= 0, got {args.threads}")
    check_query_inputs(args)
    check_device(args.device)
    queries, truth = labelled_queries(args.queries, args.truth)
    rows = compare(queries, truth, index=args.index, f0_index=f0, crepe_index=args.crepe_index, k=args.k,
                   threads=args.threads, device=args.device, progress_bar=not args.quiet)
    print(format_table(rows))
    if args.out:
        paths = write_results(rows, args.out)
        print(f"written: {paths['md']}, {paths['json']}, {paths['png']}")
    return 0
