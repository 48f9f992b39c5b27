"""Vocal separation before features: the step V(.) of the paper's encoder pipeline (section 3).

Mining and indexing call a ``Separator`` on every song recording before fingerprinting (hummings have
no accompaniment and use the identity). Backends:

- :class:`IdentitySeparator` (``"identity"``): the input already is a vocal stem or a humming (the
  built-in corpus is rendered as vocal stems);
- :class:`SpleeterSeparator` (``"spleeter"``): Deezer's Spleeter 2-stems model, the paper's choice
  (``pip install .[separation]``), loaded from a directory the user gives. It never downloads: the model
  files are checked first, because Spleeter silently runs untrained weights from an empty folder after
  a failed download.

Example
-------
>>> import numpy as np
>>> from chadml.separation import IdentitySeparator
>>> y = np.zeros(16000, np.float32)
>>> IdentitySeparator().separate(y, 16000) is y
True
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from typing import Protocol, runtime_checkable

import numpy as np

from .audio import resample
from .errors import ChadError

__all__ = ["Separator", "IdentitySeparator", "SpleeterSeparator", "SeparatorUnavailable", "get_separator",
           "check_spleeter_model", "SEPARATORS", "SPLEETER_FILES"]

SEPARATORS = ("identity", "spleeter")
#: The files of Spleeter's 2-stems model (``2stems.tar.gz`` of Spleeter's v1.4.0 release, extracted).
SPLEETER_FILES = ("checkpoint", "model.data-00000-of-00001", "model.index", "model.meta")
SPLEETER_SR = 44100
_SPLEETER_HELP = ("Install Spleeter with `pip install .[separation]` (the extra pulls spleeter-thomasesr==3.0.0a1 "
                  "and TensorFlow), download the 2-stems model (2stems.tar.gz from "
                  "https://github.com/deezer/spleeter/releases/tag/v1.4.0) and extract it into a directory "
                  f"holding {', '.join(SPLEETER_FILES)}; pass that directory as --separator-model DIR "
                  "(SpleeterSeparator(model_dir=DIR)). chad never downloads it.")


class SeparatorUnavailable(ChadError):
    """A separation backend that cannot run here (its package is not installed)."""


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


def check_spleeter_model(model_dir) -> str:
    """The absolute path of a Spleeter 2-stems model directory, after checking that its files are there
    and not empty; ``FileNotFoundError`` (saying what to download and where to put it) otherwise."""
    if model_dir is None:
        raise FileNotFoundError("the Spleeter separator needs its model directory (--separator-model DIR). "
                                + _SPLEETER_HELP)
    d = os.path.abspath(os.fspath(model_dir))
    if not os.path.isdir(d):
        raise FileNotFoundError(f"Spleeter model directory not found: {d}. " + _SPLEETER_HELP)
    bad = [f for f in SPLEETER_FILES if not os.path.isfile(os.path.join(d, f))
           or os.path.getsize(os.path.join(d, f)) == 0]
    if bad:
        raise FileNotFoundError(f"the Spleeter model directory {d} lacks {', '.join(bad)} (missing or empty: "
                                "an interrupted download leaves such a folder, and Spleeter would then run "
                                "untrained weights). " + _SPLEETER_HELP)
    return d


class SpleeterSeparator:
    """Vocals by Spleeter's 2-stems model (the paper's V(.)), from a local model directory.

    Parameters
    ----------
    model_dir : directory holding the extracted ``2stems.tar.gz`` (:data:`SPLEETER_FILES`).

    The model's folder is checked before Spleeter is imported; Spleeter then reads it through a private
    mirror (links to the files plus the ``.probe`` marker Spleeter looks for), so it never tries to
    download and the user's folder is never written to. ``separate(y, sr)`` resamples to 44.1 kHz stereo,
    runs the model and returns the vocal stem as mono float32 at ``sr``, of the input's length.

    Example
    -------
    >>> sep = SpleeterSeparator("models/2stems")      # doctest: +SKIP
    >>> vocals = sep.separate(song, 16000)            # doctest: +SKIP
    """

    name = "spleeter"

    def __init__(self, model_dir) -> None:
        self.model_dir = check_spleeter_model(model_dir)
        try:
            from spleeter.separator import Separator as _Separator  # noqa: F401
            from spleeter.utils.configuration import load_configuration  # noqa: F401
        except ImportError as exc:
            raise SeparatorUnavailable(f"the Spleeter separator needs the spleeter package, which is not "
                                       f"importable here ({exc}). " + _SPLEETER_HELP) from exc
        self._separator = None
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory | None = None

    def _load(self):
        from spleeter.separator import Separator as _Separator
        from spleeter.utils.configuration import load_configuration
        with self._lock:
            if self._separator is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="chad-spleeter-")
                mirror = os.path.join(self._tmp.name, "2stems")
                os.makedirs(mirror)
                for f in SPLEETER_FILES:
                    os.symlink(os.path.join(self.model_dir, f), os.path.join(mirror, f))
                open(os.path.join(mirror, ".probe"), "w").close()
                params = dict(load_configuration("spleeter:2stems"))
                params["model_dir"] = mirror
                cfg = os.path.join(self._tmp.name, "2stems.json")
                with open(cfg, "w", encoding="utf-8") as fh:
                    json.dump(params, fh)
                os.environ.setdefault("MODEL_PATH", self._tmp.name)
                self._separator = _Separator(cfg, multiprocess=False)
        return self._separator

    def __getstate__(self) -> dict:      # picklable (Ray workers): the loaded model is not sent
        return {"model_dir": self.model_dir}

    def __setstate__(self, state: dict) -> None:
        self.model_dir = state["model_dir"]
        self._separator, self._lock, self._tmp = None, threading.Lock(), None

    def separate(self, y: np.ndarray, sr: int) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"y must be mono (1-D), got shape {y.shape}")
        if len(y) == 0:
            return y.copy()
        x = resample(y, int(sr), SPLEETER_SR) if sr != SPLEETER_SR else y
        stems = self._load().separate(np.stack([x, x], axis=1).astype(np.float32))
        if "vocals" not in stems:
            raise ChadError(f"Spleeter returned stems {sorted(stems)}, no 'vocals': is {self.model_dir} a 2-stems model?")
        v = np.asarray(stems["vocals"], dtype=np.float32)
        v = v.mean(axis=1) if v.ndim == 2 else v
        v = resample(v, SPLEETER_SR, int(sr)) if sr != SPLEETER_SR else v
        out = np.zeros(len(y), np.float32)
        out[: min(len(v), len(y))] = v[: len(y)]
        return out

    def __repr__(self) -> str:
        return f"SpleeterSeparator({self.model_dir!r})"


def get_separator(name: str | Separator | None, model_dir=None) -> Separator:
    """A separator by name (``"identity"``, ``"spleeter"`` with ``model_dir``), or the object itself when
    it already is one; None: identity.

    Example
    -------
    >>> get_separator(None).name
    'identity'
    """
    if name is None or name == "identity":
        return IdentitySeparator()
    if name == "spleeter":
        return SpleeterSeparator(model_dir)
    if isinstance(name, str):
        raise ValueError(f"separator must be one of {SEPARATORS}, got {name!r}")
    if not isinstance(name, Separator):
        raise TypeError(f"separator must be a name or have a separate(y, sr) method, got {type(name).__name__}")
    return name

