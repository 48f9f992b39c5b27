"""Moved to :mod:`chadml.search.f0`; this name is kept so that old imports keep working."""
from .search.f0 import *  # noqa: F401,F403
from .search.f0 import __all__  # noqa: F401
