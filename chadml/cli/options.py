"""Options shared by several commands, and the conversions of CLI values (import-light: argparse only)."""
from __future__ import annotations

import argparse

__all__ = ["common"]


def common() -> argparse.ArgumentParser:
    """A parent parser with ``-q/--quiet`` and ``-v/--verbose``, accepted before or after the command."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars, warnings only")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="debug logging, and tracebacks of unexpected errors")
    return p
