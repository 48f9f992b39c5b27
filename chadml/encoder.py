"""Moved to :mod:`chadml.models.encoder`; this name is kept so that old imports keep working."""
from .models.encoder import *  # noqa: F401,F403
from .models.encoder import __all__  # noqa: F401
