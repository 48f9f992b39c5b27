"""The two tables of chad, versioned on disk and written atomically: :class:`Manifest` (fragment groups,
as in CHAD) and :class:`SongTable` (full recordings, the input of mining); CSV or Parquet (see
:mod:`chadml.data` for the layout).

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
from typing import Any, Iterable, Iterator, Sequence

from ..errors import ChadError
from ..util import atomic_path, atomic_write_text
from .rows import AUDIO_TYPES, SPLITS, FragmentRow, SongRow, cell_float, cell_str, parse_interval

__all__ = ["FORMAT_VERSION", "ManifestError", "Manifest", "SongTable"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class ManifestError(ChadError, ValueError):
    """A manifest or song table that cannot be read: missing columns, bad cells, a newer format.

    It is both a :class:`chadml.ChadError` and a :class:`ValueError` (bad input), so either catches it.
    """


def _fmt_float(x: float) -> str:
    return "" if math.isnan(x) else repr(float(x))


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
    # a cell may hold a long JSON list (a tune's notes): no field can be longer than the file
    csv.field_size_limit(max(csv.field_size_limit(), min(len(text) + 1, 2 ** 31 - 1)))
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
                extra = {k: v for k, v in rec.items() if k not in known and v is not None and cell_str(v) != ""}
                if official:
                    s, e = parse_interval(rec["interval"])
                    extra.pop("interval", None)
                    if "source_id" not in rec and "youtube_id" in rec:
                        kw["source_id"] = rec["youtube_id"]
                        extra.pop("youtube_id", None)
                    if fragments_dir is not None:
                        kw["path"] = os.path.join(os.fspath(fragments_dir), cell_str(rec["group_id"]),
                                                  cell_str(rec["fragment_id"]), cell_str(rec["id"]) + ext)
                        dur = cell_float(rec.get("duration"), "duration")
                        kw["start"], kw["end"] = 0.0, (e - s) if math.isnan(dur) else dur
                        extra["interval"] = cell_str(rec["interval"])
                    else:
                        kw["start"], kw["end"] = s, e
                kw["path"] = _abs(cell_str(kw.get("path", "")), folder)
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
    >>> from chadml.data import map_time
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
                kw["path"] = _abs(cell_str(kw.get("path", "")), folder)
                extra = {k: v for k, v in rec.items() if k not in known and v is not None and cell_str(v) != ""}
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
