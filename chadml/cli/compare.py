"""TRANSITIONAL: `chad` command(s) of chadml.compare (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from .. import compare
    compare.add_cli(sub)
