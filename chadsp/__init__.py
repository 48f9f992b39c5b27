"""chadsp: the compiled signal-processing core of chad.

RMS silence masking, splitting and fragment merging; FFT/direct cross-correlation of fingerprint
sequences with peak picking; max-Pearson sliding match and batched re-ranking; banded and
subsequence DTW. Every public function checks its arguments in Python (``chadsp._checks``, raising
``ValueError`` / ``TypeError`` that name the argument) and then calls the active backend, which only
computes: the C kernels of ``csrc/`` (cffi, API mode; the default) or their numba versions.

Backend: the environment variable ``CHADSP_BACKEND`` (``c`` or ``numba``) picks it at import; unset, C
is used, or numba with one warning where the C extension cannot be loaded. :func:`backend` names the
active one, :func:`set_backend` switches at run time. Both give the same results (to float rounding).

Example
-------
>>> import numpy as np, chadsp
>>> rng = np.random.default_rng(0)
>>> target = rng.standard_normal((200, 16)).astype(np.float32)
>>> m = chadsp.xcorr_match(target[50:80], target)
>>> int(m["lag"][0]), bool(m["relevant"][0])
(50, True)
"""
from __future__ import annotations

from ._backend import backend, set_backend  # noqa: F401  (selects the backend: CHADSP_BACKEND)

# the modules first: `from .xcorr import *` rebinds the name chadsp.xcorr to the function
from . import silence as _s, xcorr as _x, pearson as _p, dtw as _d  # noqa: E402
from .silence import *  # noqa: E402,F401,F403
from .xcorr import *  # noqa: E402,F401,F403
from .pearson import *  # noqa: E402,F401,F403
from .dtw import *  # noqa: E402,F401,F403

__all__ = [*_s.__all__, *_x.__all__, *_p.__all__, *_d.__all__, "backend", "set_backend"]
