"""Where each song's fingerprints start in its recording: the silence trimmed off at ingest.

Songs are trimmed to their voiced part before they are fingerprinted (:mod:`chadml.features.voicing`),
so a song's first fingerprint may lie seconds into the recording; a match time must still be a time of
the original recording. The start of each trimmed song is kept beside the catalog, one immutable file per
generation::

    INDEX/starts-<g>.json     {"kind": "chad-song-starts", "generation": g, "starts": {song_id: seconds}}

written before the catalog commits generation ``g`` (so a reader of ``g`` always finds it) and only when
some live song starts later than 0 s; no file means every song starts at 0 s (every index made before
songs were trimmed). A file for a generation that never committed (a killed writer) is replaced or
removed by the next writer of that generation; files older than the previous generation are removed.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> write_starts(d, 3, {"a": 1.5, "b": 0.0})
>>> read_starts(d, 3), read_starts(d, 4)      # songs not named start at 0 s
({'a': 1.5}, {})
"""
from __future__ import annotations

import contextlib
import json
import os

from ..util import atomic_write_text

__all__ = ["starts_file", "read_starts", "write_starts", "remove_old_starts"]


def starts_file(generation: int) -> str:
    """``starts-<generation>.json``."""
    return f"starts-{int(generation)}.json"


def read_starts(directory: str, generation: int) -> dict[str, float]:
    """The song starts (seconds) of ``generation`` ({} when it has no file: every song starts at 0)."""
    path = os.path.join(directory, starts_file(generation))
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        return {}
    return {str(k): float(v) for k, v in d.get("starts", {}).items()}


def write_starts(directory: str, generation: int, starts: dict[str, float]) -> None:
    """Write the starts of ``generation`` (atomically), or remove its file when every song starts at 0."""
    path = os.path.join(directory, starts_file(generation))
    keep = {k: float(v) for k, v in starts.items() if float(v) != 0.0}
    if not keep:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return
    atomic_write_text(path, json.dumps({"kind": "chad-song-starts", "generation": int(generation),
                                        "starts": keep}) + "\n")


def remove_old_starts(directory: str, generation: int) -> None:
    """Remove the starts files of generations before ``generation - 1`` (no reader of the catalog reads them)."""
    for f in os.listdir(directory):
        if f.startswith("starts-") and f.endswith(".json"):
            try:
                g = int(f[len("starts-"):-len(".json")])
            except ValueError:
                continue
            if g < generation - 1:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(directory, f))
