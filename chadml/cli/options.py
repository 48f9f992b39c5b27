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
