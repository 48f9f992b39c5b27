"""TRANSITIONAL: `chad` command(s) of chadml.loop (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from .. import loop
    loop.add_cli(sub)
