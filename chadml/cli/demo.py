"""``chad demo``: the end-to-end demo on the built-in corpus (:mod:`chadml.demo`)."""
from __future__ import annotations

import argparse
import dataclasses
import functools

from .options import common


def register(sub) -> None:
    p = sub.add_parser("demo", parents=[common()],
                       help="the end-to-end demo on the built-in corpus (fits 15 min on 2 cores)",
                       description="Build the built-in corpus, train M_0 on hummings, mine covers, retrain M_1, "
                                   "index the songs and evaluate held-out hummings. Resumable.")
    p.add_argument("--out", default="chad-demo", help="output folder (default: ./chad-demo)")
    p.add_argument("--quick", action="store_true", help="a tiny run (about a minute), for tests")
    p.add_argument("--songs", type=int, default=None, help="number of songs (default 80; --quick: 8)")
    p.add_argument("--control", action="store_true",
                   help="also train M_0 on the hummings alone for M_1's epochs: does mining help beyond training?")
    p.add_argument("--device", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import QUICK, DemoConfig, format_results, run_demo
    from ..errors import UsageError
    cfg = QUICK if args.quick else DemoConfig()
    if args.songs is not None:
        if args.songs < 1:
            raise UsageError(f"--songs must be >= 1, got {args.songs}")
        cfg = dataclasses.replace(cfg, n_songs=args.songs)
    if args.control:
        cfg = dataclasses.replace(cfg, control=True)
    args.interrupt_message = "interrupted; rerun the same command to resume"
    results = run_demo(args.out, config=cfg, progress=not args.quiet, device=args.device,
                       echo=functools.partial(print, flush=True))
    print(format_results(results))
    return 0
