"""Moved to :mod:`chadml.training.train`; this name is kept so that old imports keep working."""
from .training.train import *  # noqa: F401,F403
from .training.train import __all__  # noqa: F401
