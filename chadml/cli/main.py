"""The ``chad`` command: the registry of commands, logging, and the one mapping of errors to exit codes.

Each command lives in a module of :mod:`chadml.cli` that defines ``register(subparsers)``: it adds its
parser(s), with the common ``-q``/``-v`` options (:func:`chadml.cli.options.common`), and sets ``func``, a
callable that takes the parsed args and returns an exit code. Command modules import the library inside
``func`` only, so building the parser (and ``chad --help``) never imports torch.

Exit codes: 0 success, 1 a failure while running (:class:`chadml.errors.ChadError`), 2 bad usage or
input (one line naming the flag or file; argparse's own errors too), 130 interrupted (with the
command's ``args.interrupt_message`` when it set one, e.g. how to resume). No traceback reaches the
user unless ``-v`` (then it comes before the same one line and the same exit status).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

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
    "chadml.cli.calibrate",
    "chadml.cli.f0_index",
    "chadml.cli.compare",
    "chadml.cli.demo",
    "chadml.cli.serve",
]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (what is wrong, naming the flag) and exit 2.

    Sub-parsers are built by ``add_subparsers`` with the class of their parent, so every command's
    parser (and its own sub-commands') shares this.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chad", description="Query-by-Humming and the CHAD pipeline.", parents=[common()])
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


# OS errors that say the input (a path given on the command line) is wrong: exit 2; other OS errors
# (disk full, I/O errors) are failures while running: exit 1
_BAD_PATH = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def exit_code(exc: BaseException) -> int | None:
    """The exit status of an error: 2 bad usage or input, 1 a failure while running, None a bug."""
    import pickle
    import sqlite3
    from ..errors import ChadError, UsageError
    if isinstance(exc, UsageError):
        return 2
    if isinstance(exc, ChadError):
        return 1
    if isinstance(exc, OSError):
        return 2 if isinstance(exc, _BAD_PATH) else 1
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return 2
    if isinstance(exc, (sqlite3.Error, pickle.UnpicklingError, EOFError, MemoryError)):
        return 1      # a corrupt index or checkpoint, or out of memory
    return None


def _quiet_stdout() -> None:
    """After a broken pipe (``chad query ... | head``): send what is left of stdout nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # stdout is not a file (captured)
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # -q/-v may come before or after the command (their default is SUPPRESS so that neither place
    # overwrites the other); from here on both are always set
    quiet, verbose = bool(getattr(args, "quiet", False)), bool(getattr(args, "verbose", False))
    args.quiet, args.verbose = quiet, verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)   # its CPU-feature probing is noise
    from .. import util
    util.set_quiet(quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    name = args.command
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        msg = getattr(args, "interrupt_message", None) or "interrupted"
        print(f"chad {name}: {msg}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except Exception as exc:  # noqa: BLE001 - every error ends as one line and an exit status
        code = exit_code(exc)
        if verbose:
            traceback.print_exc()
        if code is None:    # a bug: say so in one line; -v shows the traceback
            print(f"chad {name}: internal error: {type(exc).__name__}: {_describe(exc)}"
                  + ("" if verbose else " (rerun with -v for the traceback)"), file=sys.stderr)
            return 1
        print(f"chad {name}: error: {_describe(exc)}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
