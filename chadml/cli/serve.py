"""``chad serve``: the query-by-humming web page and HTTP API over one or more song indexes
(:mod:`chadml.serve`)."""
from __future__ import annotations

import argparse
import errno
import os
import sys

from .options import RERANK_CHOICES, common

#: the environment variable read when ``--token`` is not given
TOKEN_ENV = "CHAD_SERVE_TOKEN"


def register(sub) -> None:
    p = sub.add_parser("serve", parents=[common()], help="serve the humming page and the HTTP API",
                       description="Serve a web page to hum into (or upload a recording) and an HTTP API "
                                   "(POST /api/query, GET /api/songs, /api/songs/ID, /api/songs/ID/audio, "
                                   "/api/health; OpenAPI docs at /docs) over song indexes, read-only. Songs "
                                   "added with `chad index add` while it runs are found without a restart. "
                                   "Exit codes: 0 stopped, 1 a failure, 2 bad usage (a missing index).")
    p.add_argument("--index", action="append", required=True, metavar="[NAME=]DIR",
                   help="song index to serve (repeat for several; NAME defaults to the folder's name)")
    p.add_argument("--long-index", action="append", default=[], metavar="[NAME=]DIR",
                   help="the M_long index paired with the --index of the same NAME (queries of 15 s or longer "
                        "go there: M_fused); NAME may be left out when there is one --index")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    p.add_argument("--token", default=None,
                   help=f"require 'Authorization: Bearer TOKEN' on the API (default: ${TOKEN_ENV} if set)")
    p.add_argument("--model", default=None, help="checkpoint (default: the one each index records)")
    p.add_argument("--rerank", choices=RERANK_CHOICES, default="pearson",
                   help="the default re-ranker of a query (a request may ask for another; dtw-f0 needs the "
                        "index's F0 index, INDEX/f0)")
    p.add_argument("-k", "--candidates", type=int, default=5000, dest="k",
                   help="candidate songs to re-rank (default 5000, capped by the index size)")
    p.add_argument("--workers", type=int, default=None,
                   help="queries answered at once, each on its own thread (default: the CPU count, at most 8)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for FAISS and the re-ranker within one query (default 1; 0: all cores)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest upload in MB (default 10)")
    p.add_argument("--max-query-s", type=float, default=30.0,
                   help="longest query in seconds (default 30; longer ones are refused)")
    p.add_argument("--device", default=None, help="torch device of the model (default: cuda if available)")
    p.set_defaults(func=run)


def parse_named(values: list[str], flag: str) -> list[tuple[str, str]]:
    """``[NAME=]DIR`` values as ``(name, dir)`` (name: the folder's name when left out).

    >>> parse_named(["a=/x/ix", "/y/index_m1/"], "--index")
    [('a', '/x/ix'), ('index_m1', '/y/index_m1/')]
    """
    from ..errors import UsageError
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or os.sep in name or not name:
            name, path = os.path.basename(os.path.normpath(v)), v
        if not path:
            raise UsageError(f"{flag}: empty path in {v!r}")
        out.append((name, path))
    return out


def collections_from_args(args) -> list:
    """The :class:`chadml.serve.Collection` list of ``--index`` / ``--long-index``; a
    :class:`chadml.errors.UsageError` naming the flag for a duplicate name, a missing index or an
    unpaired ``--long-index``."""
    from ..errors import UsageError
    from ..serve import Collection
    shorts = parse_named(args.index, "--index")
    names = [n for n, _ in shorts]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"--index: the name {dup[0]!r} is given twice (use NAME=DIR to tell them apart)")
    longs: dict[str, str] = {}
    for v in args.long_index:
        name, path = parse_named([v], "--long-index")[0]
        if "=" not in v:
            if len(shorts) != 1:
                raise UsageError("--long-index: give NAME=DIR (NAME of the --index it pairs with) when there "
                                 "are several --index")
            name = shorts[0][0]
        if name not in names:
            raise UsageError(f"--long-index: no --index named {name!r} to pair with (names: {', '.join(names)})")
        longs[name] = path
    out = []
    for name, path in shorts + [(n, p) for n, p in longs.items()]:
        if not os.path.isdir(path):
            flag = "--index" if (name, path) in shorts else "--long-index"
            raise UsageError(f"{flag}: no index at {path} (build one with `chad index build`)")
    for name, path in shorts:
        out.append(Collection(name, path, long_dir=longs.get(name)))
    return out


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..serve import ServeConfig, SearchService, serve
    for flag, v, lo in (("--candidates", args.k, 1), ("--threads", args.threads, 0)):
        if v < lo:
            raise UsageError(f"{flag} must be >= {lo}, got {v}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise UsageError(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    if not args.max_query_s > 0:
        raise UsageError(f"--max-query-s must be > 0, got {args.max_query_s}")
    from .options import check_device
    check_device(args.device)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    config = ServeConfig(rerank=args.rerank, k=args.k, threads=args.threads or None, workers=args.workers,
                         max_upload_bytes=int(args.max_upload_mb * 1e6), max_query_s=float(args.max_query_s),
                         token=token, device=args.device, model=args.model)
    service = SearchService(collections_from_args(args), config)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        print(f"chad serve: warning: listening on {args.host} without --token: anyone who reaches this port "
              "can query and download the songs", file=sys.stderr)
    try:
        serve(service, host=args.host, port=args.port, ready=lambda url: print(
            f"chad serve: {url}/ (the page), {url}/docs (the API); Ctrl-C stops", file=sys.stderr, flush=True))
    except KeyboardInterrupt:      # Ctrl-C is how a server stops: not an error
        pass
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise UsageError(f"--host/--port: cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
        raise
    print("chad serve: stopped", file=sys.stderr)
    return 0
