"""Moved to :mod:`chadml.training.augment`; this name is kept so that old imports keep working."""
from .training.augment import *  # noqa: F401,F403
from .training.augment import __all__  # noqa: F401
