"""``chad mine``: Algorithm 1 over a song table (:func:`chadml.mining.mine`), resumable."""
from __future__ import annotations

import argparse
import os

from .options import (BUILTIN_MODEL, add_mining_options, add_separator_args, common, config_from_args,
                      load_model, separator_from_args)


def register(sub) -> None:
    p = sub.add_parser(
        "mine", parents=[common()], help="mine aligned fragment groups from originals and covers (Algorithm 1)",
        description="Algorithm 1 of the CHAD paper: fragment every original at silences, keep the unique "
                    "fragments, find them in the covers by cross-correlating fingerprints, and write the "
                    "groups of aligned fragments to a manifest. Resumable: rerun the same command after an "
                    "interruption. Exit codes: 0 done, 1 a failure while mining, 2 bad usage or input.")
    p.add_argument("--model", default=BUILTIN_MODEL, metavar="CKPT",
                   help="the encoder checkpoint (chad train); default: the model chad ships (%(default)s)")
    p.add_argument("--songs", required=True, metavar="SONGS_CSV", help="the song table (originals + covers)")
    p.add_argument("--out", required=True, metavar="MANIFEST", help="the manifest to write")
    p.add_argument("--workdir", default=None, metavar="DIR", help="per-song results (default: MANIFEST.work)")
    p.add_argument("--plots", default=None, metavar="DIR", help="a PNG per song: xcorr curve, peaks, thresholds")
    p.add_argument("--split", default="train", help="mine songs of this split, or 'all' (%(default)s)")
    p.add_argument("--precision", action="store_true",
                   help="print mining precision/recall against the song table's true alignments")
    add_mining_options(p)
    add_separator_args(p, what="originals and covers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import util
    from ..data import SongTable
    from ..errors import UsageError
    from ..mining import mine, mining_precision, read_summary
    if not os.path.exists(args.songs):
        raise UsageError(f"--songs: no such file: {args.songs}")
    fp = load_model(args.model)         # a checkpoint or the shipped model; a bad one is a line naming --model
    config = config_from_args(args)
    separator = separator_from_args(args)
    songs = SongTable.read(args.songs)
    if args.split != "all":
        keep = {r.song_id for r in songs.rows if str(getattr(r, "split", "")) == args.split}
        ids = sorted((s for s in songs.songs() if s in keep), key=str)
    else:
        ids = None
    man = mine(songs, fp, args.out, config=config, workdir=args.workdir, engine=args.engine, address=args.address,
               plots_dir=args.plots, progress=not (util.QUIET or getattr(args, "quiet", False)), song_ids=ids,
               model_id=fp.model_id, separator=separator)
    s = read_summary(args.workdir or args.out + ".work")
    print(f"{s['songs']} songs ({len(s['skipped'])} skipped): {s['groups']} groups, {s['relevant']} relevant + "
          f"{s['uncertain']} uncertain cover fragments, {s['hours']:.2f} h -> {args.out}")
    for k in s["skipped"]:
        print(f"  skipped {k['song_id']}: {k['reason']}")
    if args.precision:
        pr = mining_precision(man, songs)
        print(f"mining precision {pr['precision']:.3f} (of {pr['relevant']} relevant), recall {pr['recall']:.3f} "
              f"(of {pr['true_fragments']}); uncertain {pr['uncertain']} (precision {pr['uncertain_precision']:.3f})")
    return 0
