"""TRANSITIONAL: `chad` command(s) of chadml.mining (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from .. import mining
    mining.add_cli(sub)
