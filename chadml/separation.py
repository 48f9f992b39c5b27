"""Vocal separation before features: the step V(.) of the paper's encoder pipeline (section 3).

Mining and indexing call a ``Separator`` on every recording before fingerprinting. This module has the
protocol and the identity separator (for vocal stems and humming, which have no accompaniment: the
built-in corpus is rendered as vocal stems). A Spleeter backend is added by issue 6.

Example
-------
>>> import numpy as np
>>> from chadml.separation import IdentitySeparator
>>> y = np.zeros(16000, np.float32)
>>> IdentitySeparator().separate(y, 16000) is y
True
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Separator", "IdentitySeparator", "get_separator"]


@runtime_checkable
class Separator(Protocol):
    """Anything with ``separate(y, sr) -> vocals`` (mono float32 in, mono float32 of the same rate out)."""

    name: str

    def separate(self, y: np.ndarray, sr: int) -> np.ndarray:
        ...


class IdentitySeparator:
    """The input is already a vocal stem (or a humming): returned unchanged."""

    name = "identity"

    def separate(self, y: np.ndarray, sr: int) -> np.ndarray:
        return y

    def __repr__(self) -> str:
        return "IdentitySeparator()"


def get_separator(name: str | Separator | None) -> Separator:
    """A separator by name (``"identity"``), or the object itself when it already is one; None: identity."""
    if name is None or name == "identity":
        return IdentitySeparator()
    if isinstance(name, str):
        raise ValueError(f"separator must be 'identity' (the only backend built so far), got {name!r}")
    if not isinstance(name, Separator):
        raise TypeError(f"separator must be a name or have a separate(y, sr) method, got {type(name).__name__}")
    return name
