"""TRANSITIONAL: `chad` command(s) of chadml.search (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from .. import search
    search.add_cli(sub)
