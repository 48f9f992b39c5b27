"""The ``chad`` command: one module per command over :mod:`chadml.cli.main` (registry, logging, errors).

Command modules import only ``argparse`` and :mod:`chadml.cli.options` at module level; the library
(and so torch) is imported inside the command's handler, so ``chad --help`` stays fast.
"""
from .main import main

__all__ = ["main"]
