"""Constants shared by every layer, and the dict round trip of the configuration dataclasses.

Everything in chad works on 16 kHz mono audio (:data:`SAMPLE_RATE`). The configuration dataclasses
(``FeatureConfig``, ``TrainConfig``, ``MiningConfig``, ``F0Config``, ...) are stored in checkpoints,
indexes and logs as plain dicts: :func:`from_dict` reads one back with one message for unknown keys.

Example
-------
>>> import dataclasses
>>> @dataclasses.dataclass
... class C:
...     a: int = 1
>>> from_dict(C, {"a": 2}, "C")
C(a=2)
>>> to_dict(C())
{'a': 1}
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["SAMPLE_RATE", "CREPE_HOP", "CREPE_POOL", "CREPE_BINS", "SILENCE_PEAK",
           "from_dict", "to_dict", "check_number", "check_top"]

SAMPLE_RATE = 16000  # every signal in chad: 16 kHz mono float32
CREPE_HOP = 160      # CREPE's hop at 16 kHz (10 ms)
CREPE_POOL = 4       # CREPE activations averaged over 4 frames in time -> 25 frames per second
CREPE_BINS = 80      # 180 CREPE bins (3 octaves of 20 cents) downscaled to 80
SILENCE_PEAK = 1e-4  # a signal whose peak amplitude is below this (-80 dBFS) is silence


def from_dict(cls, d: Any, what: str):
    """``cls(**d)`` for a configuration dataclass, with one clear message for a non-dict or unknown keys."""
    if not isinstance(d, dict):
        raise TypeError(f"{what} must be a dict, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{what} has unknown key(s) {unknown}; expected a subset of {sorted(names)}")
    return cls(**d)


def to_dict(config) -> dict:
    """The plain-dict form of a configuration dataclass (what checkpoints and indexes store)."""
    return dataclasses.asdict(config)


def check_number(name: str, value: Any, *, integer: bool = False, positive: bool = True) -> None:
    """Raise a one-line TypeError/ValueError naming ``name`` unless ``value`` is a finite (positive) number."""
    ok_types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, ok_types):
        raise TypeError(f"{name} must be {'an int' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(float(value)) or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_top(top, name: str = "top") -> int:
    """``top`` as an int >= 1, or a one-line ValueError naming it."""
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {top!r}")
    return int(top)
