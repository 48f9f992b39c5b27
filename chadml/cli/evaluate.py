"""TRANSITIONAL: `chad` command(s) of chadml.evaluate (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from .. import evaluate
    evaluate.add_cli(sub)
