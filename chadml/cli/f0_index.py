"""``chad f0-index build|info``: the songs' pitch contours for the classical f0 + DTW matcher
(:class:`chadml.search.F0Index`)."""
from __future__ import annotations

import argparse
import json

from .options import add_separator_args, check_device, common, separator_from_args


def register(sub) -> None:
    p = sub.add_parser("f0-index", parents=[common()], help="pitch contours of songs for the f0 + DTW matcher",
                       description="The classical query-by-humming baseline's index: a CREPE pitch contour of "
                                   "every song (for `chad evaluate --method f0-dtw`, `chad compare` and "
                                   "`chad query --rerank dtw-f0`).")
    s = p.add_subparsers(dest="f0_command", metavar="ACTION")
    b = s.add_parser("build", parents=[common()], help="compute the songs' contours into a new F0 index",
                     description="Compute the CREPE pitch contour of every song (voiced frames, in semitones, "
                                 "key-invariant) and write them into a new F0 index directory. Exit codes: 0 "
                                 "done, 1 a failure, 2 bad usage or an unreadable song (see --skip-bad).")
    b.add_argument("--songs", required=True, help="folder of audio files, or a song table (originals)")
    b.add_argument("--out", required=True, help="F0 index directory (e.g. INDEX/f0, beside a song index)")
    b.add_argument("--crepe-model", choices=("tiny", "full"), default="tiny",
                   help="CREPE network (tiny: ~10x real time on 2 CPU cores; full: ~0.3x)")
    b.add_argument("--hop", type=int, default=160, help="CREPE hop in samples at 16 kHz (default 160 = 10 ms)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing F0 index")
    b.add_argument("--skip-bad", action="store_true", help="leave out unreadable songs (default: abort)")
    b.add_argument("--device", default=None, help="torch device of CREPE (default: cuda if available)")
    add_separator_args(b)
    b.set_defaults(func=build)
    i = s.add_parser("info", parents=[common()], help="describe an F0 index",
                     description="Print an F0 index's format, CREPE configuration, song and frame counts and "
                                 "build time as JSON.")
    i.add_argument("--index", required=True, metavar="DIR", help="the F0 index directory")
    i.set_defaults(func=info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def build(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..index import song_items
    from ..search import F0Config, F0Index
    if not 1 <= args.hop <= 1600:
        raise UsageError(f"--hop must be in 1..1600 (samples at 16 kHz), got {args.hop}")
    sep = separator_from_args(args)
    check_device(args.device)
    cfg = F0Config(crepe_model=args.crepe_model, hop_length=args.hop)
    idx = F0Index.build(args.out, song_items(args.songs), cfg, separator=sep, overwrite=args.overwrite,
                        on_error="skip" if args.skip_bad else "raise",
                        progress_bar=not getattr(args, "quiet", False), device=args.device)
    c = idx.catalog
    rt = c["audio_seconds"] / c["build_seconds"] if c.get("build_seconds") else float("nan")
    print(f"{len(idx)} songs ({c['audio_seconds'] / 3600:.2f} h, {len(idx.pitch)} contour frames) -> {idx.dir} in "
          f"{c['build_seconds']:.1f} s ({rt:.1f}x real time, CREPE {cfg.crepe_model})")
    return 0


def info(args: argparse.Namespace) -> int:
    from ..search import F0Index
    idx = F0Index.open(args.index)
    c = idx.catalog
    print(json.dumps({k: c[k] for k in ("format_version", "chad_version", "config", "frames", "separator",
                                        "audio_seconds", "build_seconds") if k in c} | {"songs": len(idx)},
                     indent=1))
    return 0
