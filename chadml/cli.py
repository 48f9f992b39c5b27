"""The ``chad`` command.

Each sub-command lives in the module that does the work: a module listed in ``COMMANDS`` defines
``add_cli(subparsers)``, which adds its parser(s) and sets ``func`` (a callable taking the parsed args and
returning an exit code). Exit codes: 0 success, 1 a failure while running, 2 bad usage or input.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import ChadError, __version__

# module -> sub-commands it adds (only for the listing in --help before import)
COMMANDS = [
    "chadml.train",
    "chadml.mining",
    "chadml.loop",
    "chadml.index",
    "chadml.search",
    "chadml.evaluate",
    "chadml.baseline",
    "chadml.compare",
    "chadml.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chad", description="Query-by-Humming and the CHAD pipeline.")
    parser.add_argument("--version", action="version", version=f"chad {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:      # that part of the pipeline is not built yet
                continue
            raise
        add = getattr(mod, "add_cli", None)
        if add is not None:
            add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    from . import util
    util.set_quiet(args.quiet)   # its CPU-feature probing is noise
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"chad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ChadError as exc:
        print(f"chad {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"chad {args.command}: interrupted (finished work is kept; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
