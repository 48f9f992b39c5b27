"""Which backend computes: the C extension (``chadsp._c``, the default) or numba (``chadsp._numba``).

Chosen once at import from the environment variable ``CHADSP_BACKEND`` (``c`` or ``numba``; unset or
empty: ``c``). Where ``CHADSP_BACKEND`` is unset and the C extension cannot be imported (no compiler at
install time, a stale build), numba is used instead, with one warning line. :func:`set_backend` switches
at run time (tests and benchmarks use it). Both backends implement the same kernel functions on checked
arguments; ``impl`` is the active one and the public modules call through it.
"""
from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

ENV = "CHADSP_BACKEND"
NAMES = ("c", "numba")
_MODULES = {"c": "chadsp._c", "numba": "chadsp._numba"}

impl: ModuleType   # the active backend module (set below, at import)


class BackendWarning(RuntimeWarning):
    """The C extension could not be loaded and chadsp fell back to numba."""


def _name(value, what: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in NAMES:
        raise ValueError(f"{what} must be one of {', '.join(NAMES)}, got {value!r}")
    return value.strip().lower()


def _load(name: str) -> ModuleType:
    return importlib.import_module(_MODULES[name])


def _from_env() -> ModuleType:
    raw = os.environ.get(ENV, "")
    if raw.strip():
        return _load(_name(raw, ENV))      # an explicit choice: its ImportError stands
    try:
        return _load("c")
    except ImportError as exc:
        cause = exc.__cause__ or exc           # chadsp._c words the advice; the original error says why
        reason = (str(cause).splitlines() or [type(cause).__name__])[0]
        # one line: no source line is shown for the pseudo-file "chadsp" (warn_explicit, lineno 0)
        warnings.warn_explicit(f"C extension unavailable ({reason}), using the numba backend; rebuild it with "
                               f"`pip install -e .`, or set {ENV}=numba to silence this", BackendWarning, "chadsp", 0)
        return _load("numba")


def backend() -> str:
    """The name of the active backend: ``"c"`` or ``"numba"``.

    Examples
    --------
    >>> import chadsp
    >>> chadsp.backend() in ("c", "numba")
    True
    """
    return impl.NAME


def set_backend(name: str) -> str:
    """Make ``name`` (``"c"`` or ``"numba"``) the active backend for every later call; returns the previous one.

    Raises ``ValueError`` for another name and ``ImportError`` where that backend cannot be loaded (the C
    extension not built, numba not installed).

    Examples
    --------
    >>> import chadsp
    >>> old = chadsp.set_backend("c")
    >>> chadsp.backend()
    'c'
    >>> _ = chadsp.set_backend(old)
    """
    global impl
    mod = _load(_name(name, "backend"))
    previous = impl.NAME
    impl = mod
    return previous


impl = _from_env()
