"""TRANSITIONAL: `chad` command(s) of chadml.index (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from .. import index
    index.add_cli(sub)
