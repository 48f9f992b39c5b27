"""``chad index build|add|remove|info``: make, extend, shrink and describe a song index
(:class:`chadml.index.SongIndex`)."""
from __future__ import annotations

import argparse
import json
import shutil
import time

from .options import add_separator_args, common, separator_from_args

#: the FAISS index kinds of :data:`chadml.index.KINDS` (repeated here so that building the parser imports
#: no library module; tests/test_index.py checks that both agree)
KIND_CHOICES = ("auto", "flat", "ivf", "ivfsq", "ivfpq", "hnsw")


def register(sub) -> None:
    p = sub.add_parser("index", parents=[common()], help="build, extend, shrink or describe a song index",
                       description="Song index: FAISS over every fingerprint of every song, a SQLite catalog "
                                   "and a memory-mapped fingerprint store.")
    s = p.add_subparsers(dest="index_command", metavar="ACTION")
    b = s.add_parser("build", parents=[common()],
                     help="fingerprint a folder of songs (or a song table) into a new index",
                     description="Fingerprint every song of a folder (song id = file stem) or of a song table "
                                 "(rows with audio_type 'original') with a trained model, into a new index.")
    b.add_argument("--model", required=True, help="encoder checkpoint (.pt)")
    b.add_argument("--songs", required=True, help="folder of audio files, or a song table (CSV/Parquet)")
    b.add_argument("--out", required=True, help="index directory to create")
    b.add_argument("--kind", choices=KIND_CHOICES, default="auto", help="FAISS index type (default: by size)")
    b.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="fingerprint store type")
    b.add_argument("--skip-bad", action="store_true", help="leave out unreadable songs (default: abort)")
    b.add_argument("--device", default=None, help="torch device of the model (default: cuda if available)")
    add_separator_args(b)
    b.set_defaults(func=build)
    a = s.add_parser("add", parents=[common()], help="add songs to an index (all or none)",
                     description="Fingerprint songs and add them to an index in one atomic write.")
    a.add_argument("--index", required=True, help="the index directory")
    a.add_argument("--songs", required=True, help="folder of audio files, or a song table")
    a.add_argument("--model", default=None, help="checkpoint (default: the one the index was built with)")
    a.add_argument("--skip-existing", action="store_true", help="skip song ids already in the index")
    a.add_argument("--replace", action="store_true", help="replace song ids already in the index")
    a.add_argument("--skip-bad", action="store_true", help="leave out unreadable songs (default: abort)")
    a.add_argument("--device", default=None, help="torch device of the model (default: cuda if available)")
    a.set_defaults(func=add)
    r = s.add_parser("remove", parents=[common()], help="remove songs by id",
                     description="Remove songs from an index (atomic).")
    r.add_argument("--index", required=True, help="the index directory")
    r.add_argument("song_ids", nargs="+", metavar="SONG_ID", help="ids of the songs to remove")
    r.add_argument("--ignore-missing", action="store_true", help="skip ids that are not in the index")
    r.set_defaults(func=remove)
    i = s.add_parser("info", parents=[common()], help="describe an index",
                     description="Songs, fingerprints, sizes, model, configs.")
    i.add_argument("--index", required=True, help="the index directory")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=info)

    def no_action(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=no_action)


def _progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False)


def _song_items(songs: str):
    """The songs of ``--songs`` (:func:`chadml.index.song_items`); a bad folder or table names the flag."""
    from ..errors import UsageError
    from ..index import song_items
    try:
        return song_items(songs)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"--songs: {exc}") from None


def _open(path: str):
    """The index of ``--index``; a missing one names the flag."""
    from ..errors import UsageError
    from ..index import SongIndex
    try:
        return SongIndex.open(path)
    except FileNotFoundError as exc:
        raise UsageError(f"--index: {exc}") from None


def build(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..index import SongIndex
    from ..models import checkpoint_id, load_fingerprinter
    separator = separator_from_args(args)
    items = _song_items(args.songs)
    fp = load_fingerprinter(args.model, device=args.device)
    try:
        idx = SongIndex.create(args.out, fingerprinter=fp, model_id=checkpoint_id(args.model),
                               kind=args.kind, dtype=args.dtype, model_path=args.model)
    except FileExistsError as exc:
        raise UsageError(f"--out: {exc}") from None
    fp.model_id = idx.model_id
    t0 = time.perf_counter()
    try:
        idx.add_songs(items, fp, progress_bar=_progress(args), on_error="skip" if args.skip_bad else "raise",
                      separator=separator)
    except BaseException:
        shutil.rmtree(idx.dir, ignore_errors=True)     # we created it: leave no half-built index behind
        raise
    s = idx.info()
    print(f"indexed {s['songs']} songs ({s['hours']:.2f} h, {s['fingerprints']} fingerprints) into "
          f"{idx.dir} in {time.perf_counter() - t0:.1f} s; {s['size_bytes'] / 1e6:.1f} MB")
    return 0


def add(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..models import checkpoint_id, load_fingerprinter
    if args.skip_existing and args.replace:
        raise UsageError("give at most one of --skip-existing and --replace")
    idx = _open(args.index)
    model = args.model or idx.model_path
    if not model:
        raise UsageError(f"index {idx.dir} records no model path: give --model")
    mid = checkpoint_id(model)
    idx.check_compatible(model_id=mid)
    fp = load_fingerprinter(model, device=args.device)
    fp.model_id = mid
    on_exists = "skip" if args.skip_existing else "replace" if args.replace else "error"
    added = idx.add_songs(_song_items(args.songs), fp, progress_bar=_progress(args),
                          on_error="skip" if args.skip_bad else "raise", on_exists=on_exists)
    print(f"added {len(added)} songs; the index holds {len(idx)}")
    return 0


def remove(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    idx = _open(args.index)
    try:
        n = idx.remove(args.song_ids, missing="ignore" if args.ignore_missing else "error")
    except KeyError as exc:
        raise UsageError(f"{exc.args[0]} (--ignore-missing skips them)") from None
    print(f"removed {n} songs; the index holds {len(idx)}")
    return 0


def format_info(s: dict) -> str:
    """The text of ``chad index info``: the lines of :meth:`chadml.index.SongIndex.info`'s dict.

    >>> s = {"path": "/x.idx", "format_version": 1, "generation": 3, "songs": 2, "hours": 0.1,
    ...      "fingerprints": 40, "dim": 128, "dtype": "float32", "dead_rows": 0, "faiss": {"kind": "flat"},
    ...      "model_id": "ab12", "model_path": None, "feature_config": {}, "window_config": {},
    ...      "size_bytes": 123456, "bytes_per_hour": 1234560.0}
    >>> print(format_info(s).splitlines()[0])
    index         /x.idx  (format 1, generation 3)
    >>> print(format_info(s).splitlines()[-1])
    size          0.12 MB  (1.23 MB per hour)
    """
    bph = s["bytes_per_hour"]
    return "\n".join([
        f"index         {s['path']}  (format {s['format_version']}, generation {s['generation']})",
        f"songs         {s['songs']}  ({s['hours']:.2f} h of audio)",
        f"fingerprints  {s['fingerprints']}  x {s['dim']} {s['dtype']}  (dead rows {s['dead_rows']})",
        f"faiss         {s['faiss'] or '(empty)'}",
        f"model         {s['model_id']}  {s['model_path'] or ''}",
        f"features      {s['feature_config']}",
        f"windows       {s['window_config']}",
        f"size          {s['size_bytes'] / 1e6:.2f} MB" + (f"  ({bph / 1e6:.2f} MB per hour)" if bph else ""),
    ])


def info(args: argparse.Namespace) -> int:
    s = _open(args.index).info()
    print(json.dumps(s, indent=2) if args.json else format_info(s))
    return 0
