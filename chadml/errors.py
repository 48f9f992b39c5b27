"""The one error vocabulary of chad.

- :class:`ChadError`: a pipeline-level failure while running (a corrupt index, a model/index mismatch, a
  checkpoint of another configuration). The CLI prints it as one line and exits with status 1.
- :class:`UsageError`: bad input named by the argument, flag or file it came from. It is a
  ``ValueError`` too, so library callers that catch ``ValueError`` keep working. The CLI prints it as one
  line and exits with status 2.

Every library module raises these (or ``ValueError``/``TypeError`` for a bad Python argument); the CLI
(:mod:`chadml.cli.main`) maps everything else it can meet (``FileExistsError``, ``sqlite3`` errors,
``torch.load`` failures, ...) to one line naming the file, never a traceback.
"""
from __future__ import annotations

__all__ = ["ChadError", "UsageError"]


class ChadError(Exception):
    """A pipeline-level failure: a corrupt index, a model/index mismatch, a checkpoint of another config."""


class UsageError(ChadError, ValueError):
    """Bad input: the message names the argument, flag or file and what was expected."""
