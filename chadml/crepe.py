"""Moved to :mod:`chadml.features.crepe`; this name is kept so that old imports keep working."""
from .features.crepe import *  # noqa: F401,F403
from .features.crepe import __all__  # noqa: F401
