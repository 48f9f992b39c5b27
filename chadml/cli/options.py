"""Options shared by several commands, and the conversions of CLI values (import-light: argparse only)."""
from __future__ import annotations

import argparse

__all__ = ["BUILTIN_MODEL", "common"]


#: the shipped model's name (chadml.models.BUILTIN, repeated so that building the parser imports no library
#: module; tests/test_release.py checks that both agree): the default --model of the commands that take one
BUILTIN_MODEL = "builtin:chad-qbh"


def common() -> argparse.ArgumentParser:
    """A parent parser with ``-q/--quiet`` and ``-v/--verbose``, accepted before or after the command."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars, warnings only")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="debug logging, and tracebacks of unexpected errors")
    return p


# -- the torch device and the model (every command with --device / --model) -----------------------------

__all__ += ["check_device", "load_model", "model_id_of"]


def check_device(device, flag: str = "--device"):
    """``device`` (the value of ``flag``; None: the default) when torch can use it on this machine; else a
    :class:`chadml.errors.UsageError` naming the flag (not a checkpoint or CUDA error later on)."""
    if device is None:
        return None
    import torch
    from ..errors import UsageError
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"{flag} {device}: not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{flag} {device}: CUDA is not available on this machine (torch {torch.__version__}, "
                             f"CUDA build {torch.version.cuda or 'none'}): use {flag} cpu or leave {flag} out")
        n = torch.cuda.device_count()
        if d.index is not None and d.index >= n:
            raise UsageError(f"{flag} {device}: this machine has {n} CUDA device(s) (cuda:0 .. cuda:{n - 1})")
    elif d.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError(f"{flag} {device}: MPS is not available on this machine: use {flag} cpu")
    elif d.type != "cpu":
        raise UsageError(f"{flag} {device}: chad runs on cpu, cuda or mps")
    return device


def _model_error(flag: str, exc: Exception):
    from ..errors import UsageError
    return UsageError(f"{flag}: {exc}")


def load_model(path, device=None, flag: str = "--model"):
    """The :class:`chadml.models.encoder.Fingerprinter` of checkpoint ``path`` (the value of ``flag``; the
    shipped model by its name) on ``device`` (checked first: :func:`check_device`), with its ``model_id``
    set; a missing, empty or unreadable checkpoint is a :class:`chadml.errors.UsageError` naming the flag."""
    from ..errors import ChadError
    from ..models import load_fingerprinter
    check_device(device)
    try:
        return load_fingerprinter(path, device=device)
    except (FileNotFoundError, ChadError) as exc:
        raise _model_error(flag, exc) from None


def model_id_of(path, flag: str = "--model") -> str:
    """:func:`chadml.models.checkpoint_id` of ``path`` (the value of ``flag``); a missing, empty or unreadable
    checkpoint is a :class:`chadml.errors.UsageError` naming the flag."""
    from ..errors import ChadError
    from ..models import checkpoint_id
    try:
        return checkpoint_id(path)
    except (FileNotFoundError, ChadError) as exc:
        raise _model_error(flag, exc) from None


# -- vocal separation (chad mine, chad index, chad query, chad f0-index) -----------------------------

#: the names of :data:`chadml.separation.SEPARATORS` (repeated here so that building the parser imports
#: no library module; tests/test_separation.py checks that both agree)
SEPARATOR_CHOICES = ("identity", "spleeter")

__all__ += ["SEPARATOR_CHOICES", "add_separator_args", "separator_from_args"]


def add_separator_args(p, *, what: str = "song recordings") -> None:
    """``--separator`` and ``--separator-model`` for a sub-command."""
    p.add_argument("--separator", choices=SEPARATOR_CHOICES, default="identity",
                   help=f"vocal separation of the {what} before features (default identity: vocal stems; "
                        "spleeter: the 2-stems model, needs --separator-model)")
    p.add_argument("--separator-model", default=None, metavar="DIR",
                   help="directory of Spleeter's 2-stems model files (never downloaded)")


def separator_from_args(args):
    """The :class:`chadml.separation.Separator` of ``--separator``/``--separator-model``; a
    :class:`chadml.errors.UsageError` naming the flag when ``--separator-model`` comes without spleeter."""
    from ..errors import UsageError
    from ..separation import get_separator
    name = getattr(args, "separator", None) or "identity"
    model_dir = getattr(args, "separator_model", None)
    if name != "spleeter" and model_dir:
        raise UsageError("--separator-model is only used with --separator spleeter")
    return get_separator(name, model_dir)


# -- searching (chad query, chad evaluate) -----------------------------------------------------------

#: the names of :data:`chadml.search.RERANKERS` (repeated here so that building the parser imports no
#: library module; tests/test_search.py checks that both agree)
RERANK_CHOICES = ("pearson", "dtw", "dtw-f0")

__all__ += ["RERANK_CHOICES", "add_searcher_args", "make_searcher"]


def add_searcher_args(p) -> None:
    """The options of :class:`chadml.search.Searcher` (and ``--long-index``: a FusedSearcher)."""
    p.add_argument("--index", default=None, help="song index built by `chad index build` (the M_short one with "
                   "--long-index)")
    p.add_argument("--long-index", default=None,
                   help="an M_long index: queries of 15 s or longer go there (M_fused)")
    p.add_argument("--model", default=None, help="checkpoint (default: the one the index records)")
    p.add_argument("--rerank", choices=RERANK_CHOICES, default="pearson",
                   help="re-ranking of the ANN candidates (dtw-f0: the f0 + DTW matcher, needs --f0-index)")
    p.add_argument("--f0-index", default=None, help="F0 index (`chad f0-index build`) for --rerank dtw-f0 "
                   "(default: INDEX/f0)")
    p.add_argument("-k", "--candidates", type=int, default=5000, dest="k",
                   help="candidate songs to re-rank (default 5000, capped by the index size)")
    p.add_argument("--tempo-scan", action="store_true",
                   help="--rerank pearson: re-score the best songs with the query stretched to other tempi "
                        "(0.8-1.25x), for hums faster or slower than the song")
    p.add_argument("--threads", type=int, default=None, help="threads for FAISS and the re-ranker (default: all)")
    p.add_argument("--device", default=None, help="torch device of the model (default: cuda if available)")
    add_separator_args(p, what="queries (for singing over accompaniment; hummings need none)")


def make_searcher(args):
    """The :class:`chadml.search.Searcher` (or :class:`~chadml.search.FusedSearcher` with ``--long-index``)
    of :func:`add_searcher_args`'s options; a :class:`chadml.errors.UsageError` naming a bad flag."""
    from ..errors import UsageError
    from ..search import FusedSearcher, Searcher
    if not args.index:
        raise UsageError("--index is required (a song index built by `chad index build`)")
    if args.k < 1:
        raise UsageError(f"-k/--candidates must be >= 1, got {args.k}")
    if args.threads is not None and args.threads < 0:
        raise UsageError(f"--threads must be >= 0, got {args.threads}")
    check_device(args.device)
    if args.tempo_scan and args.rerank != "pearson":
        raise UsageError(f"--tempo-scan re-scores max Pearson: it needs --rerank pearson, got --rerank {args.rerank}")
    kw = dict(rerank=args.rerank, k=args.k, threads=args.threads, device=args.device, tempo_scan=args.tempo_scan,
              f0_index=getattr(args, "f0_index", None), separator=separator_from_args(args))
    idx = _open_index(args.index, "--index")
    short = Searcher(idx, fingerprinter=_index_model(idx, "--index", args.model, args.device), **kw)
    if args.long_index:
        idx = _open_index(args.long_index, "--long-index")
        return FusedSearcher(short, Searcher(idx, fingerprinter=_index_model(idx, "--long-index", None, args.device),
                                             **kw))
    return short


def _open_index(path, flag: str):
    """The :class:`chadml.index.SongIndex` of ``flag``: a missing or empty one is a UsageError naming the flag;
    an unfinished build (``chad index build`` killed midway) is searched with a warning."""
    import logging
    from ..errors import UsageError
    from ..index import SongIndex
    try:
        idx = SongIndex.open(path)
    except FileNotFoundError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    build = idx.unfinished_build
    if build is not None and not len(idx):
        raise UsageError(f"{flag} {path}: the index holds no songs: its build did not finish; rerun the "
                         "`chad index build` that made it to continue it")
    if not len(idx):
        raise UsageError(f"{flag} {path}: the index holds no songs (add some with `chad index add`)")
    if build is not None:
        logging.getLogger("chadml.cli").warning(
            "%s %s is an unfinished build (%d songs so far; killed or still running): rerun the `chad index build` "
            "that made it to finish it; until then, songs not yet in it cannot be found", flag, path, len(idx))
    return idx


def _index_model(idx, flag: str, model, device):
    """The fingerprinter of index ``idx`` (given by ``flag``): ``model`` (``--model``), else the checkpoint the
    index records; its errors (none recorded, missing, unreadable, another model) name the flags."""
    import os
    from ..errors import UsageError
    from ..index import IndexMismatchError
    if model:
        fp, what = load_model(model, device), "--model"
    else:
        path = idx.model_path
        if not path:
            raise UsageError(f"{flag} {idx.dir} records no model checkpoint: give --model")
        if not os.path.exists(path):
            raise UsageError(f"the model checkpoint that {flag} {idx.dir} records is missing ({path}): give "
                             "--model with the checkpoint's new path")
        what = f"the model that {flag} records"
        fp = load_model(path, device, what)
    try:
        idx.check_compatible(model_id=fp.model_id, config=fp)
    except IndexMismatchError as exc:           # say which flag brought the model
        raise UsageError(f"{what}: {exc}") from None
    return fp


# -- mining (chad mine, chad loop) ---------------------------------------------------------------------

__all__ += ["ConfigDefault", "add_mining_options", "config_from_args"]


class ConfigDefault:
    """The default of an option that sets a field of a library config dataclass: ``--help`` shows the
    field's default (``str()``, which imports the library only then: it imports torch), and an option
    left at it is not passed to the config (which then uses its own default). The defaults so live in
    one place, the config class.

    >>> d = ConfigDefault("chadml.search.contour", "F0Config", "hop_length")
    >>> str(d)
    '160'
    """

    def __init__(self, module: str, cls: str, name: str):
        self.module, self.cls, self.name = module, cls, name

    def value(self):
        import dataclasses
        import importlib
        cls = getattr(importlib.import_module(self.module), self.cls)
        return next(f.default for f in dataclasses.fields(cls) if f.name == self.name)

    def __str__(self) -> str:
        v = self.value()
        return str(list(v) if isinstance(v, tuple) else v)

    def __repr__(self) -> str:
        return f"ConfigDefault({self.cls}.{self.name}={self})"


def _given(args, names) -> dict:
    """The options among ``names`` that the command line set (not left at a :class:`ConfigDefault`)."""
    return {n: getattr(args, n) for n in names if not isinstance(getattr(args, n), ConfigDefault)}


def add_mining_options(p) -> None:
    """The Algorithm 1 options (:class:`chadml.mining.MiningConfig`) shared by ``chad mine`` and ``chad loop``."""
    def d(name):
        return ConfigDefault("chadml.mining.config", "MiningConfig", name)
    g = p.add_argument_group("Algorithm 1 parameters (fragmentation and thresholds: the paper's; matching: "
                             "measured, see --paper-matching)")
    g.add_argument("--d-min", type=float, default=d("d_min"), help="shortest fragment, s (%(default)s)")
    g.add_argument("--d-max", type=float, default=d("d_max"), help="longest fragment, s (%(default)s)")
    g.add_argument("--pauses", type=float, nargs="+", default=d("pauses"), metavar="S", help="D_p, s (%(default)s)")
    g.add_argument("--db-levels", type=float, nargs="+", default=d("db_levels"), metavar="DB",
                   help="L_db (%(default)s)")
    g.add_argument("--alpha-corr", type=float, default=d("alpha_corr"), help="%(default)s")
    g.add_argument("--beta-rel", type=float, default=d("beta_rel"), help="%(default)s")
    g.add_argument("--beta-irrel", type=float, default=d("beta_irrel"), help="%(default)s")
    g.add_argument("--embed", choices=("slice", "fragment"), default=d("embed"),
                   help="fragment fingerprints: slices of the whole track's, or a pass per fragment (%(default)s)")
    B = argparse.BooleanOptionalAction
    g.add_argument("--refine", action=B, default=d("refine"), help="sub-step placement of cover fragments")
    g.add_argument("--center", action=B, default=d("center"), help="remove each recording's mean fingerprint first")
    g.add_argument("--standardize", action=B, default=d("standardize"),
                   help="centre and scale each fingerprint dimension to unit variance per recording")
    g.add_argument("--fit-tempo", action=B, default=d("fit_tempo"),
                   help="place cover fragments by the local tempo (first and last thirds matched apart)")
    g.add_argument("--verify-tempo", action=B, default=d("verify_tempo"),
                   help="with --fit-tempo: a peak whose thirds do not both match near it is uncertain")
    g.add_argument("--peak-margin", type=float, default=d("peak_margin"), metavar="M",
                   help="relevant only within M of the best peak of the curve (%(default)s; <0: off)")
    g.add_argument("--verify-min", type=float, default=d("verify_min"), metavar="S",
                   help="with --verify-tempo: both thirds must score at least S (%(default)s; <0: beta_irrel)")
    g.add_argument("--cross-check", type=float, default=d("cross_check"), metavar="M",
                   help="relevant only when the cover block, searched over the whole original, scores within M "
                        "of its best at the fragment's own place (%(default)s; <0: off)")
    g.add_argument("--key-check", action=B, default=d("key_check"),
                   help="relevant only when the match has its cover's transposition (the consensus of its matches)")
    g.add_argument("--tempo-scan", action=B, default=d("tempo_scan"),
                   help="match each fragment at every tempo ratio of --tempo-range (off: one cross-correlation at the "
                        "original's tempo, the thirds fit the start)")
    g.add_argument("--tempo-range", type=float, nargs=2, default=d("tempo_range"), metavar=("LOW", "HIGH"),
                   help="with --tempo-scan: the cover's tempo against the original's, cover seconds per original "
                        "second (%(default)s)")
    g.add_argument("--tempo-step", type=float, default=d("tempo_step"), metavar="R",
                   help="with --tempo-scan: relative step between tried ratios (%(default)s)")
    g.add_argument("--block-min", type=float, default=d("block_min"), metavar="S",
                   help="with --tempo-scan: relevant only when every block of the fragment correlates >= S along "
                        "the match (%(default)s; <-1: off)")
    g.add_argument("--context-min", type=float, default=d("context_min"), metavar="S",
                   help="with --tempo-scan: relevant only when the music before or after the fragment correlates "
                        ">= S along the match, where there is any (%(default)s; <-1: off)")
    g.add_argument("--rigid-matching", action="store_true",
                   help="chad's earlier matching (no tempo scan; thirds, cross and key checks), the one the shipped "
                        "model's loop mined with")
    g.add_argument("--paper-matching", action="store_true",
                   help="the paper's matching exactly (no centring, scaling, tempo fit, margin or checks)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="where songs are mined (%(default)s)")
    p.add_argument("--address", default=None, help="Ray cluster address (with --engine ray)")


# MiningConfig fields set by add_mining_options; those where a negative number means "off" (None)
_MINING_FIELDS = ("d_min", "d_max", "pauses", "db_levels", "alpha_corr", "beta_rel", "beta_irrel", "embed", "refine",
                  "center", "standardize", "fit_tempo", "verify_tempo", "peak_margin", "cross_check",
                  "key_check", "verify_min", "tempo_scan", "tempo_range", "tempo_step", "block_min", "context_min")
_NEGATIVE_IS_OFF = ("peak_margin", "cross_check", "verify_min")
_BELOW_MINUS_ONE_IS_OFF = ("block_min", "context_min")        # correlations: -1..1 are all thresholds


def config_from_args(args):
    """The :class:`chadml.mining.MiningConfig` of :func:`add_mining_options`'s options (``--paper-matching``:
    :meth:`~chadml.mining.MiningConfig.paper` of it); a :class:`chadml.errors.UsageError` naming the flag
    of a bad value."""
    from ..errors import UsageError
    from ..mining import MiningConfig
    kw = _given(args, _MINING_FIELDS)
    for name in _NEGATIVE_IS_OFF:
        if name in kw and kw[name] is not None and kw[name] < 0:
            kw[name] = None
    for name in _BELOW_MINUS_ONE_IS_OFF:
        if name in kw and kw[name] is not None and kw[name] < -1:
            kw[name] = None
    for name in ("pauses", "db_levels", "tempo_range"):
        if name in kw:
            kw[name] = tuple(kw[name])
    try:
        c = MiningConfig(**kw)
    except (TypeError, ValueError) as exc:     # MiningConfig names its fields: name the flags instead
        import re
        msg = re.sub(r"\bMiningConfig\.", "", str(exc)).replace("MiningConfig needs", "the options need")
        raise UsageError(re.sub(r"\b(%s)\b" % "|".join(_MINING_FIELDS),
                                lambda m: "--" + m.group(1).replace("_", "-"), msg)) from None
    if getattr(args, "paper_matching", False) and getattr(args, "rigid_matching", False):
        raise UsageError("--paper-matching and --rigid-matching are two different matchings: give one")
    if getattr(args, "paper_matching", False):
        return MiningConfig.paper(c)
    return MiningConfig.rigid(c) if getattr(args, "rigid_matching", False) else c
