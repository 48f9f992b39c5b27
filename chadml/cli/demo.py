"""``chad demo``: the end-to-end demo on the built-in corpus (:mod:`chadml.demo`)."""
from __future__ import annotations

import argparse
import dataclasses
import functools

from .options import common


def register(sub) -> None:
    p = sub.add_parser("demo", parents=[common()],
                       help="the end-to-end demo on the built-in corpus (about 10 min on 2 quiet cores)",
                       description="Build the built-in corpus, train M_0 on hummings, mine covers, retrain M_1, "
                                   "index the songs and evaluate held-out hummings. Resumable. The trainings run "
                                   "a fixed number of epochs (no time cap): a slower machine takes longer and "
                                   "trains the same models.")
    p.add_argument("--out", default="chad-demo", help="output folder (default: ./chad-demo)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke test of the pipeline (about a minute): every stage runs, but its tiny model is "
                        "not usable")
    p.add_argument("--songs", type=int, default=None, help="number of songs (default 80; --quick: 8)")
    p.add_argument("--control", action="store_true",
                   help="also train M_0 on the hummings alone for M_1's epochs: does mining help beyond training?")
    p.add_argument("--device", default=None, help="torch device of the models (default: cuda if available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import QUICK, DemoConfig, format_results, run_demo
    from ..errors import UsageError
    from .options import check_device
    check_device(args.device)
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
