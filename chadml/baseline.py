"""Moved to :mod:`chadml.search` (``f0.py``, ``f0_index.py``, ``contour.py``, ``raw.py``); this name is kept
so that old imports keep working."""
from .search import (F0_FORMAT_VERSION, F0Config, F0DtwSearcher, F0Index, F0IndexError,  # noqa: F401
                     RawFeatureSearcher, contour_from_f0, f0_contour)

__all__ = ["RawFeatureSearcher", "F0Config", "f0_contour", "contour_from_f0", "F0Index",
           "F0IndexError", "F0DtwSearcher", "F0_FORMAT_VERSION"]
