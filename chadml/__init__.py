"""chadml: the torch layer of chad (features, encoder, training, mining, index, search, evaluation).

Submodules are imported on demand (``import chadml.features``) so that ``import chadml`` stays light.
"""
from __future__ import annotations

__version__ = "0.1.0"


from .errors import ChadError, UsageError


__all__ = ["ChadError", "UsageError", "__version__"]
