"""The rows of chad's tables: :class:`FragmentRow` (a fragment of a manifest) and :class:`SongRow` (a full
recording of a song table), with the conversions of their cells.

Example
-------
>>> FragmentRow("g1", "0", "g1-o", "original", start=3.0, end=11.0).duration
8.0
>>> parse_interval("(12.5, 20.5)")
(12.5, 20.5)
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .timemap import check_alignment

__all__ = ["AUDIO_TYPES", "SPLITS", "FragmentRow", "SongRow", "parse_interval", "cell_float", "cell_str"]

AUDIO_TYPES = ("original", "cover", "humming")
SPLITS = ("train", "test", "")


# --------------------------------------------------------------------------------------------- cells

def cell_float(x: Any, name: str) -> float:
    """A cell as a float (an empty cell or None: NaN); a TypeError/ValueError naming ``name`` otherwise."""
    if isinstance(x, bool):
        raise TypeError(f"{name} must be a number, got bool {x!r}")
    if x is None or (isinstance(x, str) and x.strip() == ""):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {x!r}") from None


def _b(x: Any, name: str) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)) and x in (0, 1):
        return bool(x)
    if isinstance(x, str):
        s = x.strip().lower()
        if s in ("true", "1", "yes"):
            return True
        if s in ("false", "0", "no", ""):
            return False
    if x is None:
        return False
    raise ValueError(f"{name} must be a boolean (True/False), got {x!r}")


def cell_str(x: Any) -> str:
    """A cell as a string (None: ""; a float with an integer value, as other tools read ids: its integer)."""
    if x is None:
        return ""
    if isinstance(x, float) and x.is_integer():      # fragment ids read as floats by other tools
        return str(int(x))
    return str(x)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


_INTERVAL = re.compile(r"^\s*[\(\[]\s*([^,\s]+)\s*,\s*([^\)\]\s]+)\s*[\)\]]\s*$")


def parse_interval(text: str) -> tuple[float, float]:
    """Parse CHAD's ``interval`` cell ``"(start, end)"`` (or ``"[start, end]"``) into two floats.

    Example
    -------
    >>> parse_interval("(12.5, 20.5)")
    (12.5, 20.5)
    """
    m = _INTERVAL.match(str(text))
    if not m:
        raise ValueError(f"interval must look like '(start, end)', got {text!r}")
    return float(m.group(1)), float(m.group(2))


# ----------------------------------------------------------------------------------------- the rows

@dataclass(eq=False)
class FragmentRow:
    """One fragment: where it is (``path``, ``start``..``end`` seconds in that file) and which group it belongs to.

    Attributes
    ----------
    group_id, fragment_id : str
        Rows sharing both are time-aligned versions of one fragment (``key`` joins them).
    id : str
        Unique row id.
    audio_type : str
        ``"original"``, ``"cover"`` or ``"humming"``.
    source_id : str
        The song/recording the fragment was cut from (CHAD's ``youtube_id``).
    start, end : float
        Seconds in the file at ``path``.
    correlation : float
        Matching score of a mined cover fragment against its original (NaN when unknown).
    check_by_crowdsource : bool
        True for uncertain matches (score between beta_irrel and beta_rel).
    duration : float
        Length in seconds; defaults to ``end - start``.
    path : str
        Audio file ('' when unknown, e.g. an official CHAD manifest read without ``fragments_dir``).
    true_offset : float
        For generated data: seconds in the file at ``path`` where the original fragment's start truly is
        (for a cover fragment: the cover time of the original fragment's start); NaN when unknown.
    split : str
        ``"train"``, ``"test"`` or ``""``.
    extra : dict
        Other columns (strings), kept through read/write.
    """

    group_id: str
    fragment_id: str
    id: str
    audio_type: str
    source_id: str = ""
    start: float = 0.0
    end: float = 0.0
    correlation: float = math.nan
    check_by_crowdsource: bool = False
    duration: float = math.nan
    path: str = ""
    true_offset: float = math.nan
    split: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("group_id", "fragment_id", "id", "source_id", "path"):
            setattr(self, name, cell_str(getattr(self, name)))
        for name in ("start", "end", "correlation", "duration", "true_offset"):
            setattr(self, name, cell_float(getattr(self, name), name))
        self.check_by_crowdsource = _b(self.check_by_crowdsource, "check_by_crowdsource")
        self.split = cell_str(self.split)
        if self.audio_type not in AUDIO_TYPES:
            raise ValueError(f"audio_type must be one of {AUDIO_TYPES}, got {self.audio_type!r} (row id {self.id!r})")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r} (row id {self.id!r})")
        if math.isnan(self.duration):
            self.duration = self.end - self.start
        if not isinstance(self.extra, dict):
            raise TypeError(f"extra must be a dict, got {type(self.extra).__name__}")
        self.extra = {str(k): cell_str(v) for k, v in self.extra.items()}

    @property
    def key(self) -> str:
        """``"group_id/fragment_id"``: the key of this row's group in :meth:`Manifest.groups`."""
        return f"{self.group_id}/{self.fragment_id}"

    def __eq__(self, other: object) -> bool:   # NaN-aware, so that a read-back row equals what was written
        if not isinstance(other, FragmentRow):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))


@dataclass(eq=False)
class SongRow:
    """One full recording of a song: its original, or one cover version.

    ``alignment`` is the time map original -> this version as a list of ``[t_original, t_version]``
    breakpoints (see :func:`chadml.data.timemap.map_time`); empty when unknown. For an original it is the
    identity.
    """

    song_id: str
    version_id: str
    audio_type: str
    path: str = ""
    duration: float = math.nan
    split: str = ""
    alignment: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("song_id", "version_id", "path", "split"):
            setattr(self, name, cell_str(getattr(self, name)))
        self.duration = cell_float(self.duration, "duration")
        if self.audio_type not in ("original", "cover"):
            raise ValueError(f"audio_type of a song row must be 'original' or 'cover', got {self.audio_type!r} "
                             f"(version_id {self.version_id!r})")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r} (version_id {self.version_id!r})")
        self.alignment = check_alignment(self.alignment, f"version {self.version_id!r}")
        self.extra = {str(k): cell_str(v) for k, v in self.extra.items()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SongRow):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))
