"""chadsp: the compiled signal-processing core of chad.

RMS silence masking, splitting and fragment merging; FFT/direct cross-correlation of fingerprint
sequences with peak picking; max-Pearson sliding match and batched re-ranking; banded and
subsequence DTW. Every public function checks its arguments in Python (raising ``ValueError`` /
``TypeError`` that name the argument) and then makes one call into C (cffi, API mode) or numba.

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

try:
    from . import _chadsp  # noqa: F401  (the cffi extension)
except ImportError as exc:  # pragma: no cover - exercised only with a broken build
    raise ImportError(
        "chadsp's compiled extension (chadsp._chadsp) is missing or failed to load: "
        f"{exc}. Rebuild it with `pip install -e .` (or `python chadsp/_build.py` for an in-place "
        "build); a C compiler (gcc) with OpenMP is required."
    ) from exc

_ABI = 1
if _chadsp.lib.chadsp_abi_version() != _ABI:  # pragma: no cover
    raise ImportError("chadsp's compiled extension is stale (ABI mismatch): rebuild with `pip install -e .`")

# the modules first: `from .xcorr import *` rebinds the name chadsp.xcorr to the function
from . import silence as _s, xcorr as _x, pearson as _p, dtw as _d  # noqa: E402
from .silence import *  # noqa: E402,F401,F403
from .xcorr import *  # noqa: E402,F401,F403
from .pearson import *  # noqa: E402,F401,F403
from .dtw import *  # noqa: E402,F401,F403

__all__ = [*_s.__all__, *_x.__all__, *_p.__all__, *_d.__all__]
__version__ = "0.1.0"
