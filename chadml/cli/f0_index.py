"""TRANSITIONAL: `chad` command(s) of chadml.baseline (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from ..search import f0 as baseline
    baseline.add_cli(sub)
