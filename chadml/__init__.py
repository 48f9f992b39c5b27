"""chadml: the torch layer of chad (features, encoder, training, mining, index, search, evaluation).

Submodules are imported on demand (``import chadml.features``) so that ``import chadml`` stays light.
"""
from __future__ import annotations

import os

__version__ = "0.1.0"

# Idle OpenMP threads sleep instead of spinning (a user's own setting wins). torch and chadsp each run an
# OpenMP pool; with libgomp's default spin-wait, a machine busy with other work made fingerprinting 5-7x
# slower (bench/README.md, fingerprint). The runtime reads this once, when it loads (the first
# `import torch`), so it is set here, before any chadml module imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


from .errors import ChadError, UsageError


__all__ = ["ChadError", "UsageError", "__version__"]
