"""The song index: a FAISS index over every fingerprint of every song, a SQLite catalog and a fingerprint store.

The directory layout and the write protocol are described in :mod:`chadml.index.song_index`; the parts
are :mod:`.catalog` (the SQLite catalog), :mod:`.store` (the memory-mapped fingerprint rows),
:mod:`.ann` (FAISS) and :mod:`.ingest` (song sources and their fingerprinting), composed by
:class:`SongIndex`; :mod:`.build` builds an index in resumable steps (:func:`build_songs`); :mod:`.shards`
splits an index by song into shards (:class:`ShardedIndex`), fingerprinting on Ray workers where asked.

Example
-------
>>> import numpy as np
>>> from chadml.index import SongIndex
>>> idx = SongIndex.create("songs.idx", model_id="m0", feature_config={"kind": "cqt"},
...                        window_config={"window_s": 3.0, "step_s": 0.25})          # doctest: +SKIP
>>> fps = np.random.default_rng(0).standard_normal((800, 128)).astype(np.float32)  # doctest: +SKIP
>>> idx.add_fingerprints("song-1", fps / np.linalg.norm(fps, axis=1, keepdims=True),
...                      {"title": "Song 1"})                                       # doctest: +SKIP
>>> len(idx)                                                                         # doctest: +SKIP
1
"""
from __future__ import annotations

from .ann import FLAT_MAX, KINDS
from .build import build_songs
from .catalog import CATALOG, FORMAT_VERSION, IndexCorruptError, IndexMismatchError, SongInfo
from .ingest import AUDIO_EXTENSIONS, find_audio_files, fingerprinter_id, song_items
from .shards import SHARDS, ShardedIndex, build_sharded, fingerprint_items_ray, is_sharded, ray_connect, shard_of
from .song_index import BUILDING, LOCK, SongIndex

__all__ = ["SongIndex", "SongInfo", "IndexMismatchError", "IndexCorruptError", "fingerprinter_id",
           "FORMAT_VERSION", "KINDS", "find_audio_files", "song_items", "build_songs",
           # sharded indexes (chadml.index.shards)
           "ShardedIndex", "build_sharded", "fingerprint_items_ray", "is_sharded", "shard_of", "ray_connect", "SHARDS",
           # the layout's constants, as before the split
           "AUDIO_EXTENSIONS", "CATALOG", "FLAT_MAX", "LOCK", "BUILDING"]
