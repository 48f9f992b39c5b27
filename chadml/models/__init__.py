"""The fingerprint encoder (:class:`Fingerprinter`, the ResNet) and its checkpoints."""
from .checkpoint import *  # noqa: F401,F403
from .checkpoint import __all__ as _ckpt_all
from .encoder import *  # noqa: F401,F403
from .encoder import __all__ as _enc_all
from .pretrained import *  # noqa: F401,F403
from .pretrained import __all__ as _pre_all

__all__ = list(_enc_all) + list(_ckpt_all) + list(_pre_all)
