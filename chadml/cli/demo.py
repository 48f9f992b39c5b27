"""TRANSITIONAL: `chad` command(s) of chadml.demo (to be moved here; see ARCHITECTURE.md)."""
from __future__ import annotations


def register(sub) -> None:
    from .. import demo
    demo.add_cli(sub)
