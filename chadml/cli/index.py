"""``chad index build|add|remove|info``: make, extend, shrink and describe a song index
(:class:`chadml.index.SongIndex`)."""
from __future__ import annotations

import argparse
import json
import time

from .options import BUILTIN_MODEL, add_separator_args, common, separator_from_args

#: the FAISS index kinds of :data:`chadml.index.KINDS` (repeated here so that building the parser imports
#: no library module; tests/test_index.py checks that both agree)
KIND_CHOICES = ("auto", "flat", "ivf", "ivfsq", "ivfpq", "hnsw")
#: the store formats (:data:`chadml.index.store.DTYPES`, by their short names)
STORE_CHOICES = ("f32", "f16", "i8")


def register(sub) -> None:
    p = sub.add_parser("index", parents=[common()], help="build, extend, shrink or describe a song index",
                       description="Song index: FAISS over every fingerprint of every song, a SQLite catalog "
                                   "and a memory-mapped fingerprint store.")
    s = p.add_subparsers(dest="index_command", metavar="ACTION")
    b = s.add_parser("build", parents=[common()],
                     help="fingerprint a folder of songs (or a song table) into a new index",
                     description="Fingerprint every song of a folder (song id = file stem) or of a song table "
                                 "(rows with audio_type 'original') with a trained model, into a new index.")
    b.add_argument("--model", default=BUILTIN_MODEL,
                   help="encoder checkpoint (.pt); default: the model chad ships (%(default)s)")
    b.add_argument("--songs", required=True, help="folder of audio files, or a song table (CSV/Parquet)")
    b.add_argument("--out", required=True, help="index directory to create")
    b.add_argument("--kind", choices=KIND_CHOICES, default="auto", help="FAISS index type (default: by size)")
    b.add_argument("--store", choices=STORE_CHOICES, default=None,
                   help="fingerprint store: f32 (4 bytes a value, the default), f16 (2) or i8 (1, with a float32 "
                        "scale per row; indexes of this chad only: format 2)")
    b.add_argument("--dtype", choices=("float32", "float16", "int8"), default=None, help=argparse.SUPPRESS)
    b.add_argument("--shards", type=int, default=None, metavar="N",
                   help="split the index by song into N shards (one index each, in --out/shard-NNN), for "
                        "`chad query --ray`: one Ray actor per shard")
    b.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="fingerprint the songs on Ray workers (a cluster's address, or 'auto': the running "
                        "cluster, else a local one); song paths must be readable on the workers")
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
    from ..index import ShardedIndex, SongIndex, is_sharded
    try:
        return ShardedIndex.open(path) if is_sharded(path) else SongIndex.open(path)
    except FileNotFoundError as exc:
        raise UsageError(f"--index: {exc}") from None


def _existing_build(args: argparse.Namespace, mid: str, n_items: int):
    """The index at ``--out`` when it is an unfinished build of this model that the command continues
    (or an empty index); None when ``--out`` is free; a UsageError saying what to do otherwise."""
    import os
    from ..errors import UsageError
    from ..index import CATALOG, SongIndex
    out = args.out
    if not os.path.exists(out) or (os.path.isdir(out) and not os.listdir(out)):
        return None
    if not os.path.isdir(out) or not os.path.exists(os.path.join(out, CATALOG)):
        raise UsageError(f"--out {out} exists and is not a chad index: choose another --out")
    idx = SongIndex.open(out)
    if idx.unfinished_build is None and len(idx):
        raise UsageError(f"--out {out} already holds a finished index ({len(idx)} songs): add the songs it lacks "
                         f"with `chad index add --index {out} --songs {args.songs} --skip-existing`, or choose "
                         "another --out")
    if idx.model_id != mid:
        raise UsageError(f"--out {out} holds an unfinished build with another model ({idx.model_id}, "
                         f"{idx.model_path or 'path not recorded'}): rerun with that --model to continue it, or "
                         "choose another --out")
    short = {"float32": "f32", "float16": "f16", "int8": "i8"}
    for flag, have, want in (("--store", short.get(idx.dtype, idx.dtype), short[args.dtype]),
                             ("--kind", idx.info()["kind"], args.kind)):
        if have != want:
            raise UsageError(f"--out {out} holds an unfinished build with {flag} {have}: rerun with {flag} {have} "
                             f"to continue it, or choose another --out")
    if not getattr(args, "quiet", False):
        print(f"continuing the unfinished build of {idx.dir}: {len(idx)} of its songs are in it, "
              f"{n_items} songs given", flush=True)
    return idx


def _store_dtype(args: argparse.Namespace) -> str:
    """The store dtype of ``--store`` (or the older ``--dtype``); both, differing, is a usage error."""
    from ..errors import UsageError
    names = {"f32": "float32", "f16": "float16", "i8": "int8"}
    store, dtype = names.get(args.store), args.dtype
    if store and dtype and store != dtype:
        raise UsageError(f"--store {args.store} and --dtype {dtype} disagree: give --store alone")
    return store or dtype or "float32"


def build(args: argparse.Namespace) -> int:
    import os
    from ..errors import ChadError, UsageError
    from ..index import SongIndex, build_songs
    from .options import check_device, load_model, model_id_of
    args.dtype = _store_dtype(args)
    if args.shards is not None and args.shards < 1:
        raise UsageError(f"--shards must be >= 1, got {args.shards}")
    if args.shards is not None or args.ray:
        return _build_sharded(args)
    separator = separator_from_args(args)
    items = _song_items(args.songs)
    check_device(args.device)
    mid = model_id_of(args.model)
    idx = _existing_build(args, mid, len(items))
    fp = load_model(args.model, args.device)
    if idx is None:
        idx = SongIndex.create(args.out, fingerprinter=fp, model_id=mid, kind=args.kind, dtype=args.dtype,
                               model_path=args.model,
                               building={"songs": os.path.abspath(args.songs),
                                         "model": args.model if args.model == BUILTIN_MODEL else os.path.abspath(args.model),
                                         "model_id": mid, "started": time.time()})
    # a killed build keeps the steps it committed, and this same command continues it
    args.interrupt_message = (f"interrupted: {idx.dir} keeps the songs indexed so far, marked unfinished; rerun "
                              "the same command to continue the build")
    t0 = time.perf_counter()
    try:
        build_songs(idx, items, fp, separator=separator, on_error="skip" if args.skip_bad else "raise",
                    progress_bar=_progress(args))
    except (OSError, ValueError, ChadError) as exc:
        _reraise(exc, f"the build stopped there: {idx.dir} keeps the {len(idx)} songs indexed before it; fix or "
                      "remove that song, or add --skip-bad, and rerun the same command to continue")
    s = idx.info()
    print(f"indexed {s['songs']} songs ({s['hours']:.2f} h, {s['fingerprints']} fingerprints) into "
          f"{idx.dir} in {time.perf_counter() - t0:.1f} s; {s['size_bytes'] / 1e6:.1f} MB")
    return 0


def _build_sharded(args: argparse.Namespace) -> int:
    """``chad index build --shards N`` (and/or ``--ray``): a sharded index, fingerprinted here or on Ray."""
    import os
    from ..errors import ChadError, UsageError
    from ..index import ShardedIndex, build_sharded, is_sharded
    from .options import check_device, load_model, model_id_of
    separator = separator_from_args(args)
    items = _song_items(args.songs)
    check_device(args.device)
    mid = model_id_of(args.model)
    n = args.shards or 1
    out = args.out
    fp = load_model(args.model, args.device)
    if os.path.exists(out) and os.path.isdir(out) and os.listdir(out):
        if not is_sharded(out):
            raise UsageError(f"--out {out} exists and is not a sharded chad index: choose another --out")
        sh = ShardedIndex.open(out)
        if sh.n_shards != n or sh.model_id != mid or sh.dtype != args.dtype:
            raise UsageError(f"--out {out} holds a sharded index of {sh.n_shards} shards, model {sh.model_id}, "
                             f"store {sh.dtype}: rerun with those --shards, --model and --store to continue it, or "
                             "choose another --out")
        if sh.unfinished_build is None:
            raise UsageError(f"--out {out} already holds a finished index ({len(sh)} songs): choose another --out")
    else:
        sh = ShardedIndex.create(out, n, fingerprinter=fp, model_id=mid, kind=args.kind, dtype=args.dtype,
                                 model_path=args.model,
                                 building={"songs": os.path.abspath(args.songs), "model_id": mid,
                                           "started": time.time()})
    args.interrupt_message = (f"interrupted: {sh.dir} keeps the songs indexed so far, marked unfinished; rerun "
                              "the same command to continue the build")
    t0 = time.perf_counter()
    try:
        build_sharded(sh, items, fp, model=args.model, separator=separator,
                      on_error="skip" if args.skip_bad else "raise", progress_bar=_progress(args),
                      ray_address=args.ray, device=args.device)
    except (OSError, ValueError, ChadError) as exc:
        if isinstance(exc, UsageError) and str(exc).startswith("cannot connect to the Ray"):
            raise UsageError(f"--ray: {exc}") from None
        _reraise(exc, f"the build stopped there: {sh.dir} keeps the songs indexed before it; fix or remove "
                      "that song, or add --skip-bad, and rerun the same command to continue")
    s = sh.info()
    print(f"indexed {s['songs']} songs ({s['hours']:.2f} h, {s['fingerprints']} fingerprints) into {sh.n_shards} "
          f"shards of {sh.dir} in {time.perf_counter() - t0:.1f} s; {s['size_bytes'] / 1e6:.1f} MB")
    return 0


def _reraise(exc: Exception, note: str) -> None:
    """Re-raise a song's error that stopped a build or an add, in one line with ``note`` (what became of the
    index, what to do), with the exit status of the error."""
    from ..errors import ChadError, UsageError
    from .main import exit_code
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) and getattr(exc, "filename", None) and exc.filename not in why:
        why = f"{exc.filename}: {why}"
    why = why.replace("on_exists='skip' or 'replace'", "--skip-existing or --replace")
    raise (UsageError if exit_code(exc) == 2 else ChadError)(f"{why} ({note})") from exc


def add(args: argparse.Namespace) -> int:
    from ..errors import ChadError, UsageError
    from .options import check_device, load_model, model_id_of
    if args.skip_existing and args.replace:
        raise UsageError("give at most one of --skip-existing and --replace")
    check_device(args.device)
    idx = _open(args.index)
    if not hasattr(idx, "add_songs"):
        raise UsageError(f"--index {args.index} is sharded: add songs to it with `chad index build --shards "
                         f"{idx.n_shards}` into a new --out (adding to a sharded index is not supported yet)")
    model = args.model or idx.model_path
    if not model:
        raise UsageError(f"index {idx.dir} records no model path: give --model")
    flag = "--model" if args.model else f"--model (not given; index {idx.dir} records {model})"
    mid = model_id_of(model, flag)
    idx.check_compatible(model_id=mid)
    items = _song_items(args.songs)
    on_exists = "skip" if args.skip_existing else "replace" if args.replace else "error"
    there = [i[0] for i in items if i[0] in idx]
    if there and on_exists == "error":
        raise UsageError(f"{len(there)} of the songs of --songs are already in index {idx.dir} (e.g. "
                         f"{', '.join(there[:3])}): --skip-existing skips them, --replace replaces them")
    fp = load_model(model, args.device, flag)
    # an add is one atomic write: interrupted, it leaves the index as it was
    args.interrupt_message = (f"interrupted: nothing was added to {idx.dir} (an add is all or none); rerun the "
                              "same command to add the songs")
    try:
        added = idx.add_songs(items, fp, progress_bar=_progress(args),
                              on_error="skip" if args.skip_bad else "raise", on_exists=on_exists)
    except (OSError, ValueError, ChadError) as exc:
        _reraise(exc, "nothing was added: an add is all or none; fix or remove that song, or add --skip-bad")
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
    ] + ([f"shards        {s['n_shards']}  (songs {', '.join(str(x['songs']) for x in s['shards'])})"]
         if s.get("n_shards") else []) + ([] if s.get("unfinished_build") is None else [
        "build         UNFINISHED (killed or still running): rerun the `chad index build` that made it to "
        "continue it"]))


def info(args: argparse.Namespace) -> int:
    s = _open(args.index).info()
    print(json.dumps(s, indent=2) if args.json else format_info(s))
    return 0
