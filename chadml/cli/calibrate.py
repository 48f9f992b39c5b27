"""``chad calibrate``: fit an index's own confidence calibration (:func:`chadml.search.calibrate`) from
hums of its songs and recordings it does not hold, and store it in the index (``calibration.json``)."""
from __future__ import annotations

import argparse
import os

from .options import add_searcher_args, common


def register(sub) -> None:
    p = sub.add_parser("calibrate", parents=[common()],
                       help="fit when a match is confident, on queries of your own, and store it in the index",
                       description="Run labelled queries (hums of songs in the index) and queries with no right "
                                   "answer (hums of other tunes, noise, speech...) and fit the logistic model that "
                                   "turns how far the best song stands out into `confidence` (what `confident` and "
                                   "'no confident match' follow). The result goes to INDEX/calibration.json (per "
                                   "re-ranker) and is used by every later search of that index; without it, the "
                                   "built-in calibration applies.")
    add_searcher_args(p)
    p.add_argument("--method", choices=("encoder", "f0-dtw"), default="encoder",
                   help="encoder: the index's model + --rerank (default); f0-dtw: the f0 + DTW matcher of --f0-index")
    p.add_argument("--queries", required=True, help="folder of hums of songs in the index (query id = file stem)")
    p.add_argument("--truth", required=True, help="CSV with columns query (file stem) and song (song id)")
    p.add_argument("--negatives", required=True,
                   help="folder of recordings whose song is not in the index (at least 2; more is better)")
    p.add_argument("--threshold", type=float, default=None,
                   help="probability from which a match is confident (default 0.5)")
    p.add_argument("--dry-run", action="store_true", help="fit and report, but write nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ChadError, UsageError
    from ..evaluate import check_truth, labelled_queries, query_files
    from ..search import calibrate, save_calibration
    from .evaluate import check_query_inputs, method_searcher
    check_query_inputs(args)
    if not os.path.isdir(args.negatives):
        raise UsageError(f"--negatives: no such folder: {args.negatives}")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise UsageError(f"--threshold must be between 0 and 1, got {args.threshold}")
    queries, truth = labelled_queries(args.queries, args.truth)
    try:
        negatives = [p for _, p in query_files(args.negatives)]
    except ValueError as exc:
        raise UsageError(f"--negatives: {exc}") from None
    if args.method == "encoder" and args.long_index:
        raise UsageError("--long-index: calibrate each index on its own (run once per --index)")
    searcher, index_flag = method_searcher(args)
    where, name = (args.f0_index, "f0-dtw") if args.method == "f0-dtw" else (args.index, searcher.score_name)
    check_truth(searcher, queries, truth, truth_name=f"--truth {args.truth}", index_name=index_flag)
    pos = [(p, truth[q]) for q, p in queries]
    try:
        cal = calibrate(searcher, pos, negatives, rerank=name, threshold=args.threshold, progress=not args.quiet,
                        fitted_on=f"{len(pos)} queries of {args.queries}, {len(negatives)} of {args.negatives}")
    except ValueError as exc:
        raise ChadError(f"cannot calibrate: {exc} (right answers among the queries, and negatives that were "
                        f"searched: add more of either)") from None
    s = cal.stats
    print(f"{name}: {s['positives']} right answers, {s['negatives']} wrong or no-answer queries; "
          f"confident on {s['positives_confident']:.3f} of the right ones, not confident on "
          f"{s['negatives_not_confident']:.3f} of the others (threshold {cal.threshold:.3f})")
    if not args.dry_run:
        print(f"written: {save_calibration(where, cal)}")
    return 0
