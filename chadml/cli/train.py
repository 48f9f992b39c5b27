"""TRANSITIONAL: `chad train` of chadml.training.train (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from ..training.train import add_cli
    add_cli(sub)
