"""chadml: the torch layer of chad (features, encoder, training, mining, index, search, evaluation).

Submodules are imported on demand (``import chadml.features``) so that ``import chadml`` stays light.
"""
from __future__ import annotations

__version__ = "0.1.0"


class ChadError(Exception):
    """A pipeline-level failure: a corrupt index, a model/index mismatch, a checkpoint of another config."""


__all__ = ["ChadError", "__version__"]
