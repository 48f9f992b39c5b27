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

The modules: :mod:`~chadml.data.rows` (the rows and their cells), :mod:`~chadml.data.tables` (the
tables and their files, with an example of writing and reading a manifest) and
:mod:`~chadml.data.timemap` (alignments); this package re-exports them.
"""
from __future__ import annotations

from .rows import AUDIO_TYPES, SPLITS, FragmentRow, SongRow, parse_interval
from .tables import FORMAT_VERSION, Manifest, ManifestError, SongTable
from .timemap import alignment_pieces, check_alignment, inverse_map_time, map_time

__all__ = ["FORMAT_VERSION", "AUDIO_TYPES", "SPLITS", "ManifestError", "FragmentRow", "Manifest", "SongRow",
           "SongTable", "map_time", "inverse_map_time", "alignment_pieces", "parse_interval", "check_alignment"]
