"""The dataset manifest (fragment groups, as in CHAD) and the song table (full recordings, input to mining).

Two tables, both versioned on disk (``format_version``) and written atomically:

- :class:`Manifest`: one :class:`FragmentRow` per audio fragment. Rows with the same ``group_id`` and
  ``fragment_id`` are time-aligned versions of one musical fragment (the original's, covers', hummings');
  :meth:`Manifest.groups` returns them keyed by ``"group_id/fragment_id"``. It reads the official CHAD
  ``metadata/dataset.csv`` too (``interval`` stored as ``"(start, end)"``, ``youtube_id``, ``is_available``).
- :class:`SongTable`: one :class:`SongRow` per full recording (an original or a cover of a song), with, for
  generated covers, the exact piecewise-linear time map original -> version (``alignment``, see
  :func:`map_time`).

CSV layout written by chad (``format_version`` 1): a first line ``# chad manifest format_version=1``
(``# chad songs ...`` for a song table), then a header and one row per record. Floats are written with
Python's shortest round-trip repr (NaN as an empty cell), so a read gives back the same bits; booleans
as ``True``/``False``; ``path`` relative to the file's folder when it lies under it (read resolves it
back to an absolute path). Columns not known to chad are kept in ``extra`` (strings) and written back.

Example
-------
>>> import tempfile, os
>>> m = Manifest([FragmentRow("g1", "0", "g1-o", "original", start=3.0, end=11.0),
...               FragmentRow("g1", "0", "g1-h", "humming", start=0.0, end=8.0)])
>>> p = os.path.join(tempfile.mkdtemp(), "dataset.csv")
>>> m.write(p)
>>> list(Manifest.read(p).groups())
['g1/0']
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .errors import ChadError
from .util import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
AUDIO_TYPES = ("original", "cover", "humming")
SPLITS = ("train", "test", "")


class ManifestError(ChadError, ValueError):
    """A manifest or song table that cannot be read: missing columns, bad cells, a newer format.

    It is both a :class:`chadml.ChadError` and a :class:`ValueError` (bad input), so either catches it.
    """


# --------------------------------------------------------------------------------------------- cells

def _f(x: Any, name: str) -> float:
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


def _s(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and x.is_integer():      # fragment ids read as floats by other tools
        return str(int(x))
    return str(x)


def _fmt_float(x: float) -> str:
    return "" if math.isnan(x) else repr(float(x))


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
            setattr(self, name, _s(getattr(self, name)))
        for name in ("start", "end", "correlation", "duration", "true_offset"):
            setattr(self, name, _f(getattr(self, name), name))
        self.check_by_crowdsource = _b(self.check_by_crowdsource, "check_by_crowdsource")
        self.split = _s(self.split)
        if self.audio_type not in AUDIO_TYPES:
            raise ValueError(f"audio_type must be one of {AUDIO_TYPES}, got {self.audio_type!r} (row id {self.id!r})")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r} (row id {self.id!r})")
        if math.isnan(self.duration):
            self.duration = self.end - self.start
        if not isinstance(self.extra, dict):
            raise TypeError(f"extra must be a dict, got {type(self.extra).__name__}")
        self.extra = {str(k): _s(v) for k, v in self.extra.items()}

    @property
    def key(self) -> str:
        """``"group_id/fragment_id"``: the key of this row's group in :meth:`Manifest.groups`."""
        return f"{self.group_id}/{self.fragment_id}"

    def __eq__(self, other: object) -> bool:   # NaN-aware, so that a read-back row equals what was written
        if not isinstance(other, FragmentRow):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))


def _check_alignment(alignment: Any, where: str) -> list:
    if isinstance(alignment, str):
        alignment = json.loads(alignment) if alignment.strip() else []
    if alignment is None:
        return []
    out = []
    last_v = -math.inf
    for k, bp in enumerate(alignment):
        if not (isinstance(bp, (list, tuple, np.ndarray)) and len(bp) == 2):
            raise ValueError(f"alignment of {where}: breakpoint {k} must be [t_original, t_version], got {bp!r}")
        o, v = bp
        o = None if o is None or (isinstance(o, float) and math.isnan(o)) else float(o)
        v = float(v)
        if not math.isfinite(v) or (o is not None and not math.isfinite(o)):
            raise ValueError(f"alignment of {where}: breakpoint {k} must hold finite times, got {bp!r}")
        if v < last_v:
            raise ValueError(f"alignment of {where}: t_version must not decrease (breakpoint {k}: {v} < {last_v})")
        last_v = v
        out.append([o, v])
    return out


@dataclass(eq=False)
class SongRow:
    """One full recording of a song: its original, or one cover version.

    ``alignment`` is the time map original -> this version as a list of ``[t_original, t_version]``
    breakpoints (see :func:`map_time`); empty when unknown. For an original it is the identity.
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
            setattr(self, name, _s(getattr(self, name)))
        self.duration = _f(self.duration, "duration")
        if self.audio_type not in ("original", "cover"):
            raise ValueError(f"audio_type of a song row must be 'original' or 'cover', got {self.audio_type!r} "
                             f"(version_id {self.version_id!r})")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r} (version_id {self.version_id!r})")
        self.alignment = _check_alignment(self.alignment, f"version {self.version_id!r}")
        self.extra = {str(k): _s(v) for k, v in self.extra.items()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SongRow):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))


# ------------------------------------------------------------------------------------ table file I/O

_KINDS = {"manifest": FragmentRow, "songs": SongRow}


def _columns(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "extra"]


def _rel(path: str, folder: str) -> str:
    if not path:
        return ""
    ap = os.path.abspath(path)
    rel = os.path.relpath(ap, folder)
    return rel if not rel.startswith("..") else ap


def _abs(path: str, folder: str) -> str:
    if not path:
        return ""
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(folder, path))


def _cell(cls, name: str, value: Any) -> str:
    if name == "alignment":
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    if name == "check_by_crowdsource":
        return "True" if value else "False"
    if isinstance(value, float):
        return _fmt_float(value)
    return str(value)


def _write_table(path: str | os.PathLike, rows: Sequence, kind: str) -> None:
    cls = _KINDS[kind]
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    cols = _columns(cls)
    extra_cols = sorted({k for r in rows for k in r.extra} - set(cols))
    ext = os.path.splitext(path)[1].lower()
    if ext == ".parquet":
        pa, pq = _pyarrow(path)
        data: dict[str, list] = {}
        for c in cols:
            vals = [getattr(r, c) for r in rows]
            if c == "path":
                vals = [_rel(v, folder) for v in vals]
            elif c == "alignment":
                vals = [_cell(cls, c, v) for v in vals]
            data[c] = vals
        for c in extra_cols:
            data[c] = [r.extra.get(c) for r in rows]
        types = {f.name: (pa.float64() if f.type in ("float", float) else pa.bool_() if f.type in ("bool", bool)
                          else pa.string()) for f in dataclasses.fields(cls) if f.name != "extra"}
        schema = pa.schema([(c, types[c]) for c in cols] + [(c, pa.string()) for c in extra_cols],
                           metadata={"chad_table": kind, "format_version": str(FORMAT_VERSION)})
        table = pa.Table.from_pydict(data, schema=schema)
        with atomic_path(path, suffix=".parquet") as tmp:
            pq.write_table(table, tmp)
        return
    if ext != ".csv":
        raise ValueError(f"path must end in .csv or .parquet, got {path!r}")
    buf = io.StringIO()
    buf.write(f"# chad {kind} format_version={FORMAT_VERSION}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols + extra_cols)
    for r in rows:
        cells = []
        for c in cols:
            v = getattr(r, c)
            cells.append(_rel(v, folder) if c == "path" else _cell(cls, c, v))
        cells.extend(r.extra.get(c, "") for c in extra_cols)
        w.writerow(cells)
    atomic_write_text(path, buf.getvalue())


def _pyarrow(path: str):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ChadError(f"{path}: reading or writing .parquet needs pyarrow (pip install pyarrow)") from None
    return pa, pq


_HEADER = re.compile(r"^#\s*chad\s+(\w+)\s+format_version\s*=\s*(\d+)\s*$")


def _check_version(path: str, kind_seen: str | None, version: int | None, kind: str) -> None:
    if kind_seen is not None and kind_seen != kind:
        raise ManifestError(f"{path} is a chad {kind_seen} table, not a {kind} table")
    if version is not None and version > FORMAT_VERSION:
        raise ManifestError(f"{path} has format_version {version}, newer than this chad reads "
                            f"({FORMAT_VERSION}); upgrade chad")


def _read_records(path: str, kind: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The file's columns, and its records as dicts of column -> cell (strings for CSV, typed for Parquet)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{kind} file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".parquet":
        pa, pq = _pyarrow(path)
        try:
            table = pq.read_table(path)
        except Exception as exc:   # pyarrow raises several types for a corrupt file
            raise ManifestError(f"cannot read {path}: {exc}") from exc
        meta = table.schema.metadata or {}
        kind_seen = meta.get(b"chad_table", b"").decode() or None
        version = meta.get(b"format_version")
        _check_version(path, kind_seen, int(version) if version else None, kind)
        return list(table.column_names), table.to_pylist()
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} is not a UTF-8 text CSV file: {exc}") from None
    lines = text.splitlines(keepends=True)
    kind_seen = version = None
    while lines and lines[0].startswith("#"):
        m = _HEADER.match(lines[0].strip())
        if m:
            kind_seen, version = m.group(1), int(m.group(2))
        lines.pop(0)
    _check_version(path, kind_seen, version, kind)
    reader = csv.DictReader(lines)
    if reader.fieldnames is None:
        raise ManifestError(f"{path} is empty: expected a CSV header")
    out = []
    for i, rec in enumerate(reader):
        if None in rec:
            raise ManifestError(f"{path}, line {i + 2}: more cells than header columns")
        out.append(rec)
    return list(reader.fieldnames), out


def _missing(path: str, have: Iterable[str], need: Iterable[str], what: str) -> None:
    have = set(have)
    miss = [c for c in need if c not in have]
    if miss:
        raise ManifestError(f"{path}: missing column(s) {', '.join(miss)} (a {what} needs "
                            f"{', '.join(need)}; found {', '.join(sorted(have)) or 'none'})")


# ----------------------------------------------------------------------------------------- Manifest

_MANIFEST_REQUIRED = ("group_id", "fragment_id", "id", "audio_type")


class Manifest:
    """A list of :class:`FragmentRow`: the dataset the encoder trains on and mining writes.

    Parameters
    ----------
    rows : iterable of FragmentRow

    Example
    -------
    >>> m = Manifest([FragmentRow("g", "0", "a", "original", end=8.0, split="train"),
    ...               FragmentRow("g", "0", "b", "humming", end=8.0, split="train")])
    >>> len(m), len(m.select(audio_type="humming")), m.rows[0].duration
    (2, 1, 8.0)
    """

    def __init__(self, rows: Iterable[FragmentRow] = ()) -> None:
        self.rows: list[FragmentRow] = list(rows)
        for r in self.rows:
            if not isinstance(r, FragmentRow):
                raise TypeError(f"rows must be FragmentRow objects, got {type(r).__name__}")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[FragmentRow]:
        return iter(self.rows)

    def __getitem__(self, i: int) -> FragmentRow:
        return self.rows[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Manifest) and self.rows == other.rows

    def __repr__(self) -> str:
        return f"Manifest({len(self.rows)} rows, {len(self.groups())} groups)"

    # -- I/O
    @classmethod
    def read(cls, path: str | os.PathLike, *, fragments_dir: str | os.PathLike | None = None,
             ext: str = ".mp3") -> "Manifest":
        """Read a manifest written by :meth:`write` (CSV or Parquet) or an official CHAD ``dataset.csv``.

        Relative ``path`` cells are resolved against the manifest's folder.

        The official CHAD layout (an ``interval`` column ``"(start, end)"`` instead of ``start``/``end``,
        ``youtube_id`` as the source id, no ``path``): the interval is where the fragment lies in the
        source recording. With ``fragments_dir`` (the folder ``{group_id}/{fragment_id}/{id}{ext}`` that
        CHAD's downloader writes), ``path`` points to the cut fragment file, ``start``/``end`` become
        ``0``/``duration`` in that file and the source interval is kept in ``extra["interval"]``.
        Without it, ``path`` is empty and ``start``/``end`` are the source interval.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ManifestError
            Missing columns (named), a bad cell (row and column named), a newer ``format_version``.
        """
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        cols, recs = _read_records(path, "manifest")
        official = "interval" in cols and not ("start" in cols and "end" in cols)
        need = _MANIFEST_REQUIRED + (("interval", "duration") if official else ("start", "end"))
        _missing(path, cols, need, "CHAD-layout manifest" if official else "manifest")
        known = set(_columns(FragmentRow))
        rows = []
        for i, rec in enumerate(recs):
            try:
                kw = {k: v for k, v in rec.items() if k in known}
                extra = {k: v for k, v in rec.items() if k not in known and v is not None and _s(v) != ""}
                if official:
                    s, e = parse_interval(rec["interval"])
                    extra.pop("interval", None)
                    if "source_id" not in rec and "youtube_id" in rec:
                        kw["source_id"] = rec["youtube_id"]
                        extra.pop("youtube_id", None)
                    if fragments_dir is not None:
                        kw["path"] = os.path.join(os.fspath(fragments_dir), _s(rec["group_id"]),
                                                  _s(rec["fragment_id"]), _s(rec["id"]) + ext)
                        dur = _f(rec.get("duration"), "duration")
                        kw["start"], kw["end"] = 0.0, (e - s) if math.isnan(dur) else dur
                        extra["interval"] = _s(rec["interval"])
                    else:
                        kw["start"], kw["end"] = s, e
                kw["path"] = _abs(_s(kw.get("path", "")), folder)
                kw["check_by_crowdsource"] = kw.get("check_by_crowdsource", False)
                rows.append(FragmentRow(**kw, extra=extra))
            except (ValueError, TypeError) as exc:
                raise ManifestError(f"{path}, row {i + 1} (id {rec.get('id')!r}): {exc}") from None
        return cls(rows)

    def write(self, path: str | os.PathLike) -> None:
        """Write atomically as CSV (``.csv``, with a ``format_version`` first line) or Parquet (``.parquet``)."""
        _write_table(path, self.rows, "manifest")

    # -- views
    def groups(self) -> dict[str, list[FragmentRow]]:
        """Rows by group: ``{"group_id/fragment_id": [rows...]}``, in first-seen order."""
        out: dict[str, list[FragmentRow]] = {}
        for r in self.rows:
            out.setdefault(r.key, []).append(r)
        return out

    def select(self, *, split: str | Sequence[str] | None = None,
               audio_type: str | Sequence[str] | None = None,
               groups: Iterable[str] | None = None) -> "Manifest":
        """The rows matching every given filter (a value or a list of values); ``groups`` are group keys."""
        def norm(v, name, allowed):
            if v is None:
                return None
            vs = {v} if isinstance(v, str) else set(v)
            bad = vs - set(allowed)
            if bad:
                raise ValueError(f"{name} must be among {allowed}, got {sorted(bad)}")
            return vs
        sp = norm(split, "split", SPLITS)
        at = norm(audio_type, "audio_type", AUDIO_TYPES)
        gk = None if groups is None else set(groups)
        return Manifest(r for r in self.rows
                        if (sp is None or r.split in sp) and (at is None or r.audio_type in at)
                        and (gk is None or r.key in gk))

    @staticmethod
    def concat(*manifests: "Manifest") -> "Manifest":
        """Rows of all ``manifests`` in order; a row id seen twice is a :class:`ManifestError`."""
        rows: list[FragmentRow] = []
        for m in manifests:
            if not isinstance(m, Manifest):
                raise TypeError(f"concat takes Manifest objects, got {type(m).__name__}")
            rows.extend(m.rows)
        out = Manifest(rows)
        out._check_ids()
        return out

    def _check_ids(self) -> None:
        seen: set[str] = set()
        for r in self.rows:
            if r.id in seen:
                raise ManifestError(f"row id {r.id!r} appears more than once")
            seen.add(r.id)

    def validate(self, *, check_paths: bool = False) -> "Manifest":
        """Check the rows (unique ids, finite ``0 <= start <= end``, one audio_type set per group);
        with ``check_paths`` that every ``path`` exists (FileNotFoundError naming the missing files).
        Returns ``self``."""
        self._check_ids()
        for r in self.rows:
            if not (math.isfinite(r.start) and math.isfinite(r.end) and 0 <= r.start <= r.end):
                raise ManifestError(f"row {r.id!r}: need finite 0 <= start <= end, got start={r.start}, end={r.end}")
        if check_paths:
            missing = [r for r in self.rows if not r.path or not os.path.isfile(r.path)]
            if missing:
                names = ", ".join(f"{r.path or '<empty path>'} (row {r.id})" for r in missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise FileNotFoundError(f"{len(missing)} audio file(s) of the manifest not found: {names}{more}")
        return self


# ---------------------------------------------------------------------------------------- SongTable

_SONG_REQUIRED = ("song_id", "version_id", "audio_type", "path")


class SongTable:
    """Full recordings grouped by song: the input of mining (one original and its covers per song).

    Example
    -------
    >>> t = SongTable([SongRow("s1", "s1-o", "original", "o.wav", 60.0, alignment=[[0, 0], [60, 60]]),
    ...                SongRow("s1", "s1-c0", "cover", "c.wav", 50.0, alignment=[[0, 2], [60, 52]])])
    >>> orig, covers = t.songs()["s1"]
    >>> float(map_time(covers[0].alignment, 30.0))
    27.0
    """

    def __init__(self, rows: Iterable[SongRow] = ()) -> None:
        self.rows: list[SongRow] = list(rows)
        for r in self.rows:
            if not isinstance(r, SongRow):
                raise TypeError(f"rows must be SongRow objects, got {type(r).__name__}")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[SongRow]:
        return iter(self.rows)

    def __getitem__(self, i: int) -> SongRow:
        return self.rows[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SongTable) and self.rows == other.rows

    def __repr__(self) -> str:
        return f"SongTable({len(self.rows)} recordings, {len({r.song_id for r in self.rows})} songs)"

    @classmethod
    def read(cls, path: str | os.PathLike) -> "SongTable":
        """Read a table written by :meth:`write` (CSV or Parquet); relative paths resolve against its folder."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        cols, recs = _read_records(path, "songs")
        _missing(path, cols, _SONG_REQUIRED, "song table")
        known = set(_columns(SongRow))
        rows = []
        for i, rec in enumerate(recs):
            try:
                kw = {k: v for k, v in rec.items() if k in known}
                kw["path"] = _abs(_s(kw.get("path", "")), folder)
                extra = {k: v for k, v in rec.items() if k not in known and v is not None and _s(v) != ""}
                rows.append(SongRow(**kw, extra=extra))
            except (ValueError, TypeError) as exc:
                raise ManifestError(f"{path}, row {i + 1} (version_id {rec.get('version_id')!r}): {exc}") from None
        return cls(rows)

    def write(self, path: str | os.PathLike) -> None:
        """Write atomically as CSV (``# chad songs format_version=1`` first line) or Parquet."""
        _write_table(path, self.rows, "songs")

    def songs(self) -> dict[str, tuple[SongRow, list[SongRow]]]:
        """``{song_id: (original_row, [cover_rows])}`` in first-seen order.

        A song without exactly one original is left out with a logged warning (mining cannot use it).
        """
        by: dict[str, list[SongRow]] = {}
        for r in self.rows:
            by.setdefault(r.song_id, []).append(r)
        out = {}
        for sid, rows in by.items():
            origs = [r for r in rows if r.audio_type == "original"]
            if len(origs) != 1:
                log.warning("song %s has %d original recordings (need exactly 1): left out", sid, len(origs))
                continue
            out[sid] = (origs[0], [r for r in rows if r.audio_type == "cover"])
        return out

    def select(self, *, split: str | Sequence[str] | None = None) -> "SongTable":
        """The recordings of the given split(s)."""
        if split is None:
            return SongTable(self.rows)
        vs = {split} if isinstance(split, str) else set(split)
        return SongTable(r for r in self.rows if r.split in vs)

    def validate(self, *, check_paths: bool = False) -> "SongTable":
        """Unique version ids; with ``check_paths`` every ``path`` exists (FileNotFoundError naming them)."""
        seen: set[str] = set()
        for r in self.rows:
            if r.version_id in seen:
                raise ManifestError(f"version_id {r.version_id!r} appears more than once")
            seen.add(r.version_id)
        if check_paths:
            missing = [r for r in self.rows if not r.path or not os.path.isfile(r.path)]
            if missing:
                names = ", ".join(f"{r.path or '<empty path>'} ({r.version_id})" for r in missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise FileNotFoundError(f"{len(missing)} audio file(s) of the song table not found: {names}{more}")
        return self


# ----------------------------------------------------------------------------------- time alignment

def alignment_pieces(alignment: Sequence) -> np.ndarray:
    """The linear pieces of an alignment as a float64 array ``(n, 4)`` of ``(o0, o1, v0, v1)``.

    An alignment is a list of ``[t_original, t_version]`` breakpoints with ``t_version`` non-decreasing.
    Two consecutive breakpoints form a linear piece (original ``o0..o1`` sung at version ``v0..v1``) when
    both ``t_original`` are known, ``o1 > o0`` and ``v1 > v0``. Otherwise there is no piece between them:

    - a jump in the original (a skipped section, a repeat) is two breakpoints with the same ``t_version``;
    - version content absent from the original (an intro, an improvised bridge) starts at a breakpoint
      whose ``t_original`` is ``None`` (NaN) and lasts until the next breakpoint.

    Example: an intro of 3 s, original 0..20 s sung 10 % slower, 20..30 s skipped, 30..60 s at tempo:
    ``[[None, 0], [0, 3], [20, 25], [30, 25], [60, 55]]``.
    """
    bp = _check_alignment(alignment, "alignment")
    rows = []
    for (o0, v0), (o1, v1) in zip(bp[:-1], bp[1:]):
        if o0 is not None and o1 is not None and o1 > o0 and v1 > v0:
            rows.append((o0, o1, v0, v1))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def map_time(alignment: Sequence, t_original: float | np.ndarray, *, all: bool = False) -> np.ndarray:
    """Map original times to version times through a piecewise-linear ``alignment`` (vectorised).

    Parameters
    ----------
    alignment : list of [t_original, t_version]
        See :func:`alignment_pieces`. Empty: unknown, every time maps to NaN.
    t_original : float or array
        Seconds in the original.
    all : bool
        False: the first (earliest) place in the version where that moment of the original is sung,
        NaN where it is absent (skipped). True: every place (a repeated section is sung twice), as an
        array of shape ``t_original.shape + (k,)`` sorted in time, NaN-padded.

    Example
    -------
    >>> al = [[None, 0], [0, 3], [20, 25], [30, 25], [60, 55]]
    >>> map_time(al, [0.0, 10.0, 25.0, 40.0]).tolist()
    [3.0, 14.0, nan, 35.0]
    """
    t = np.asarray(t_original, dtype=np.float64)
    pieces = alignment_pieces(alignment)
    shape = t.shape
    tf = t.reshape(-1, 1)
    if len(pieces) == 0:
        vals = np.full((tf.shape[0], 1), np.nan)
    else:
        o0, o1, v0, v1 = (pieces[:, i][None, :] for i in range(4))
        inside = (tf >= o0) & (tf <= o1)
        with np.errstate(invalid="ignore"):
            vals = np.where(inside, v0 + (tf - o0) * (v1 - v0) / (o1 - o0), np.nan)
        vals = np.sort(vals, axis=1)          # NaN last
    if not all:
        return vals[:, 0].reshape(shape)
    # drop duplicates at shared piece endpoints (a piece ending where the next begins)
    if vals.shape[1] > 1:
        dup = np.zeros_like(vals, dtype=bool)
        dup[:, 1:] = np.abs(np.diff(vals, axis=1)) < 1e-9
        vals = np.where(dup, np.nan, vals)
        vals = np.sort(vals, axis=1)
        keep = ~np.all(np.isnan(vals), axis=0)
        keep[0] = True
        vals = vals[:, keep]
    return vals.reshape(shape + (vals.shape[1],))


def inverse_map_time(alignment: Sequence, t_version: float | np.ndarray) -> np.ndarray:
    """Map version times back to original times (NaN inside an intro or other content not in the original).

    Example
    -------
    >>> inverse_map_time([[None, 0], [0, 3], [20, 25], [30, 25], [60, 55]], [1.0, 14.0, 35.0]).tolist()
    [nan, 10.0, 40.0]
    """
    t = np.asarray(t_version, dtype=np.float64)
    pieces = alignment_pieces(alignment)
    tf = t.reshape(-1, 1)
    if len(pieces) == 0:
        return np.full(t.shape, np.nan)
    o0, o1, v0, v1 = (pieces[:, i][None, :] for i in range(4))
    inside = (tf >= v0) & (tf <= v1)
    vals = np.where(inside, o0 + (tf - v0) * (o1 - o0) / (v1 - v0), np.nan)
    # pieces overlap in version time only at shared endpoints: there the later piece (the one that
    # starts at that time) wins, e.g. the start of the section sung after a skip
    k = np.argmax(np.where(inside, v0, -np.inf), axis=1)
    out = vals[np.arange(len(tf)), k]
    return out.reshape(t.shape)


__all__ = ["FORMAT_VERSION", "AUDIO_TYPES", "SPLITS", "ManifestError", "FragmentRow", "Manifest", "SongRow",
           "SongTable", "map_time", "inverse_map_time", "alignment_pieces", "parse_interval"]
