"""The ``chad`` command: the registry of commands, logging, and the one mapping of errors to exit codes.

Each command lives in a module of :mod:`chadml.cli` that defines ``register(subparsers)``: it adds its
parser(s), with the common ``-q``/``-v`` options (:func:`chadml.cli.options.common`), and sets ``func``, a
callable that takes the parsed args and returns an exit code. Command modules import the library inside
``func`` only, so building the parser (and ``chad --help``) never imports torch.

Exit codes: 0 success, 1 a failure while running (:class:`chadml.errors.ChadError`), 2 bad usage or
input (one line naming the flag or file), 130 interrupted. No traceback reaches the user unless ``-v``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from .options import common

# the modules of chadml.cli that define register(subparsers), in the order of `chad --help`
COMMANDS = [
    "chadml.cli.train",
    "chadml.cli.mine",
    "chadml.cli.loop",
    "chadml.cli.index",
    "chadml.cli.query",
    "chadml.cli.evaluate",
    "chadml.cli.f0_index",
    "chadml.cli.compare",
    "chadml.cli.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chad", description="Query-by-Humming and the CHAD pipeline.",
                                     parents=[common()])
    parser.add_argument("--version", action="version", version=f"chad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def _describe(exc: BaseException) -> str:
    """One line for an exception the library did not word itself (OS errors name their file)."""
    import sqlite3
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        what = {FileNotFoundError: "no such file or folder", FileExistsError: "already exists",
                IsADirectoryError: "is a folder, expected a file", NotADirectoryError: "is not a folder",
                PermissionError: "permission denied"}.get(type(exc), exc.strerror or str(exc))
        return f"{exc.filename}: {what}"
    if isinstance(exc, sqlite3.Error):
        return f"index catalog (SQLite): {exc}"
    if isinstance(exc, KeyError):
        return f"unknown key {exc.args[0]!r}" if exc.args else "unknown key"
    msg = str(exc).strip().splitlines()
    return msg[0] if msg else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet, verbose = bool(getattr(args, "quiet", False)), bool(getattr(args, "verbose", False))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)   # its CPU-feature probing is noise
    from .. import util
    util.set_quiet(quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ..errors import ChadError, UsageError
    name = args.command
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        msg = getattr(args, "interrupt_message", "interrupted")
        print(f"chad {name}: {msg}", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"chad {name}: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except ChadError as exc:
        print(f"chad {name}: error: {_describe(exc)}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, KeyError) as exc:
        if verbose:
            raise
        print(f"chad {name}: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:   # a bug: say so in one line; -v shows the traceback
        if verbose:
            raise
        print(f"chad {name}: internal error: {type(exc).__name__}: {_describe(exc)} (rerun with -v for the "
              f"traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
