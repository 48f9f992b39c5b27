"""The fingerprint encoder (:class:`Fingerprinter`, the ResNet) and the loading of checkpoints."""
from .encoder import *  # noqa: F401,F403
from .encoder import __all__ as _enc_all

__all__ = list(_enc_all)
