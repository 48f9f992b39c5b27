"""The FAISS part of a song index: the kind of index for a size, building and training it, searching,
and the index of the next generation.

``faiss-<g>.index`` is the FAISS index of generation ``g`` (written with ``faiss.write_index``); its ids
are store rows. Its parameters (``{"kind": ..., "nlist", "nprobe", "trained_on", "m", "nbits",
"M", "efConstruction", "efSearch"}``) are the catalog's ``faiss`` meta value. FAISS is imported on first
use (it is optional for code that only reads the catalog).

At catalogue scale (IVF-PQ, chosen by "auto" above :data:`PQ_MIN` fingerprints) the parameters may also
hold ``quantizer`` ("hnsw": an HNSW graph over the IVF centroids, so that assigning a row costs a few
hundred distances instead of ``nlist``), ``opq`` (an OPQ rotation before PQ), ``stride`` (only every
``stride``-th fingerprint of a song is in FAISS: consecutive fingerprints overlap by most of their window,
and the candidate vote needs one hit per song, not every row) and ``ondisk`` (the inverted lists live in
``faiss-<g>.ivfdata`` beside the index file, memory-mapped: chosen where the codes would take more than
:data:`ONDISK_ABOVE` bytes of memory). Absent keys mean what every index before them did (a flat
quantizer, no OPQ, every row, lists in memory). With on-disk lists a removal does not rewrite the lists:
the rows of removed songs stay in them until the next compaction and map to no song
(:meth:`chadml.index.store.StoreView.rows_to_positions`).
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from typing import Sequence

import numpy as np

from ..util import atomic_path, progress
from .catalog import SongInfo
from .store import live_rows, sample_rows

__all__ = ["KINDS", "IVF_KINDS", "FLAT_MAX", "PQ_MIN", "ONDISK_ABOVE", "index_files", "lists_file", "choose_params", "target_params", "new_index", "set_search_params",
           "read_index", "write_index", "search", "next_index"]

KINDS = ("auto", "flat", "ivf", "ivfsq", "ivfpq", "hnsw")
IVF_KINDS = ("ivf", "ivfsq", "ivfpq")
FLAT_MAX = 200_000          # "auto": exact search up to this many fingerprints, IVF + 8-bit SQ above
PQ_MIN = 4_000_000          # "auto": IVF-PQ (HNSW quantizer) from this many fingerprints (bench/bench_scale.py)
STRIDE_MIN = 160_000_000    # "auto": every 4th fingerprint in FAISS from this many (every 2nd below)
ONDISK_ABOVE = 2 << 30      # inverted lists on disk where the codes would take more bytes than this


def lists_file(faiss_file: str) -> str:
    """The on-disk inverted lists of the FAISS index file ``faiss_file``.

    >>> lists_file("faiss-7.index")
    'faiss-7.ivfdata'
    """
    return faiss_file.rsplit(".", 1)[0] + ".ivfdata"


def index_files(faiss_file: str, params: dict) -> list[str]:
    """The files of one generation's FAISS index (the index and, on disk, its lists)."""
    if not faiss_file:
        return []
    return [faiss_file] + ([lists_file(faiss_file)] if params.get("ondisk") else [])


def _faiss():
    import faiss
    return faiss


def choose_params(kind: str, n: int, dim: int) -> dict:
    """FAISS parameters for ``n`` vectors (``kind`` "auto" picks flat, ivfsq or, from :data:`PQ_MIN`
    fingerprints, the catalogue-scale IVF-PQ by size).

    >>> choose_params("auto", 1000, 128)
    {'kind': 'flat'}
    >>> choose_params("ivfpq", 1_000_000, 128)
    {'kind': 'ivfpq', 'nlist': 256, 'nprobe': 8, 'trained_on': 1000000, 'm': 32, 'nbits': 8}
    >>> choose_params("auto", 40_000_000, 128)["quantizer"]       # 100k songs of 400 fingerprints
    'imi'
    """
    if kind == "auto":
        if n >= PQ_MIN:
            return scale_params(n, dim)
        kind = "flat" if n <= FLAT_MAX else "ivfsq"
    if kind == "flat":
        return {"kind": "flat"}
    if kind == "hnsw":
        return {"kind": "hnsw", "M": 32, "efConstruction": 80, "efSearch": 128}
    # about sqrt(n)/2 lists (a power of two): 1024 for 10k songs of M_short fingerprints (8M rows);
    # fewer lists than the usual 4*sqrt(n) keep the build (assigning every row) short on few cores
    nlist = int(2 ** math.floor(math.log2(max(16.0, math.sqrt(max(n, 1)) / 2))))
    nlist = max(16, min(nlist, 4096, max(16, n // 39)))
    p = {"kind": kind, "nlist": nlist, "nprobe": min(nlist, max(8, nlist // 64)), "trained_on": int(n)}
    if kind == "ivfpq":
        m = next(m for m in (32, 16, 8, 4, 2, 1) if dim % m == 0)
        p.update(m=m, nbits=8)
    return p


def scale_params(n: int, dim: int) -> dict:
    """The catalogue-scale IVF-PQ for ``n`` fingerprints: 16-byte PQ codes over the cells of an inverted
    multi-index (``quantizer`` "imi": two 256-centroid codebooks of the two halves of a fingerprint,
    65,536 cells; assigning a row costs 512 half-distances instead of one per list, which is what makes a
    build of 10^8 rows affordable on two cores), every ``stride``-th fingerprint (2, and 4 from
    :data:`STRIDE_MIN`), and the lists on disk where the codes would take more than :data:`ONDISK_ABOVE`
    bytes.

    >>> scale_params(8_000_000, 128)
    {'kind': 'ivfpq', 'nlist': 65536, 'nprobe': 64, 'trained_on': 8000000, 'm': 16, 'nbits': 8, 'quantizer': 'imi', 'stride': 2}
    >>> scale_params(95_000_000, 128)["stride"], scale_params(400_000_000, 128)["stride"]   # 100k, 400k songs
    (2, 4)
    """
    stride = 4 if n >= STRIDE_MIN else 2
    nv = -(-n // stride)
    m = next(m for m in (16, 8, 4, 2, 1) if dim % m == 0)
    # nprobe 64 of the 65,536 cells: at 100k songs the same candidates' recall and the same top-1 on all 200
    # queries of bench/bench_scale.py as 128, at two thirds of the query time (bench/README.md, scale block)
    p = {"kind": "ivfpq", "nlist": 65536, "nprobe": 64, "trained_on": int(n), "m": m, "nbits": 8,
         "quantizer": "imi", "stride": stride}
    if nv * (m + 8) > ONDISK_ABOVE:
        p["ondisk"] = True
    return p


def target_params(kind: str, n: int, dim: int) -> dict:
    """The parameters of a FAISS index built from scratch over ``n`` vectors: :func:`choose_params`, or
    flat where an IVF kind would have fewer vectors than lists (what one add of ``n`` vectors to an empty
    index makes; :meth:`chadml.index.SongIndex.rebuild_ann` compares an index built step by step to it).

    >>> target_params("ivf", 10, 128), target_params("ivf", 100, 128)["kind"]
    ({'kind': 'flat'}, 'ivf')
    """
    params = choose_params(kind, n, dim)
    if params["kind"] in IVF_KINDS and -(-n // int(params.get("stride", 1))) < params["nlist"]:
        return {"kind": "flat"}
    return params


def new_index(params: dict, dim: int, train_rows: np.ndarray | None):
    """An empty FAISS index (ids = store rows) of ``params``; IVF kinds are trained on ``train_rows``."""
    faiss = _faiss()
    d = dim
    kind = params["kind"]
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatL2(d))
    if kind == "hnsw":
        h = faiss.IndexHNSWFlat(d, int(params["M"]))
        h.hnsw.efConstruction = int(params["efConstruction"])
        return faiss.IndexIDMap2(h)
    quantizer = params.get("quantizer", "flat")
    if quantizer == "imi":          # 2 x 8 bits: nlist 65536
        bits = int(round(math.log2(int(params["nlist"])) / 2))
        quant = faiss.MultiIndexQuantizer(d, 2, bits)
    elif quantizer == "hnsw":
        quant = faiss.IndexHNSWFlat(d, 32)
    else:
        quant = faiss.IndexFlatL2(d)
    if kind == "ivf":
        idx = faiss.IndexIVFFlat(quant, d, int(params["nlist"]))
    elif kind == "ivfsq":
        idx = faiss.IndexIVFScalarQuantizer(quant, d, int(params["nlist"]), faiss.ScalarQuantizer.QT_8bit)
    else:
        idx = faiss.IndexIVFPQ(quant, d, int(params["nlist"]), int(params["m"]), int(params["nbits"]))
        idx.pq.cp.niter = 10
    idx.cp.niter = 15
    idx.own_fields = True
    quant.this.disown()
    if quantizer == "imi":
        idx.quantizer_trains_alone = 1      # the multi-index trains its own codebooks
    elif quantizer == "hnsw":
        idx.quantizer_trains_alone = 2      # k-means with a flat index, then the centroids go into the graph
        quant.hnsw.efConstruction = 40
    out = idx
    if params.get("opq"):
        opq = faiss.OPQMatrix(d, int(params["m"]))
        opq.niter = 20
        out = faiss.IndexPreTransform(opq, idx)
        idx.this.disown()
        out.own_fields = True
    # small k-means runs are slower with several OpenMP threads than with one
    threads = faiss.omp_get_max_threads()
    if len(train_rows) < 50_000:
        faiss.omp_set_num_threads(1)
    try:
        out.train(train_rows)
    finally:
        faiss.omp_set_num_threads(threads)
    return out


def set_search_params(fidx, params: dict, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Set the search-time parameter of ``fidx`` (IVF ``nprobe``, HNSW ``efSearch``; default: ``params``')."""
    faiss = _faiss()
    kind = params.get("kind")
    if kind in IVF_KINDS:
        ivf = faiss.extract_index_ivf(fidx)
        ivf.nprobe = int(nprobe or params.get("nprobe", 8))
        if params.get("quantizer") == "hnsw":
            faiss.downcast_index(ivf.quantizer).hnsw.efSearch = max(48, 2 * ivf.nprobe)
    elif kind == "hnsw":
        faiss.downcast_index(fidx.index).hnsw.efSearch = int(ef_search or params.get("efSearch", 128))


@contextlib.contextmanager
def _quiet_stdout():
    """FAISS's on-disk lists print to the C stdout (file names, sizes): sent to /dev/null meanwhile, so that
    a command's output (``chad query --json``) stays its own."""
    with _QUIET_LOCK:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


_QUIET_LOCK = threading.Lock()


def read_index(path: str):
    """The FAISS index written at ``path`` (on-disk lists: its ``.ivfdata`` beside it, memory-mapped)."""
    faiss = _faiss()
    if not os.path.exists(lists_file(path)):
        return faiss.read_index(path)
    with _quiet_stdout():
        return faiss.read_index(path, faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY)


def write_index(fidx, path: str) -> None:
    """Write ``fidx`` to ``path`` atomically (a temporary file renamed into place)."""
    with atomic_path(path, suffix=".tmp") as tmp:
        _faiss().write_index(fidx, tmp)


def search(fidx, params: dict, q: np.ndarray, k: int, *, nprobe: int | None = None,
           ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(distances (nq, k'), rows (nq, k'))`` of the ``k`` nearest rows (``k' = min(k, ntotal)``), or
    None when ``fidx`` is missing or empty or ``k < 1``. ``nprobe``/``ef_search`` override (and replace)
    the search parameters of ``params``."""
    if fidx is None or fidx.ntotal == 0 or k < 1:
        return None
    if nprobe is not None or ef_search is not None:
        set_search_params(fidx, params, nprobe=nprobe, ef_search=ef_search)
    return fidx.search(q, int(min(k, fidx.ntotal)))


def _empty_like(fidx, path: str | None = None):
    """An empty copy of the trained IVF index ``fidx`` (read again from ``path`` without its lists where
    they are on disk), with its lists in memory."""
    faiss = _faiss()
    if path is not None:
        out = read_index(path)          # its lists stay on disk (mapped), and are dropped below
    else:
        out = faiss.clone_index(fidx)
    ivf = faiss.extract_index_ivf(out)
    lists = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
    ivf.replace_invlists(lists, True)
    lists.this.disown()             # the index owns it now
    ivf.ntotal = out.ntotal = 0
    return out


def _add(fidx, store, songs: Sequence[SongInfo], stride: int) -> None:
    total = sum(-(-s.n_fingerprints // stride) for s in songs)
    bar = progress(total=total, desc="indexing", unit="fp", leave=False) if total > 500_000 else None
    for ids, vecs in live_rows(store, songs, stride=stride):
        fidx.add_with_ids(vecs, ids)
        if bar is not None:
            bar.update(len(ids))
    if bar is not None:
        bar.close()


def _ondisk(empty, sources: list, lists_path: str, store, songs: Sequence[SongInfo], stride: int,
            batch: int = 8_000_000):
    """A copy of the trained empty IVF index ``empty`` whose lists, written to ``lists_path``, hold the
    lists of ``sources`` (FAISS inverted lists) followed by the rows of ``songs``. The rows are added in
    memory ``batch`` at a time, each batch written to a part file beside ``lists_path``, the parts then
    merged: memory stays the size of one batch's codes."""
    faiss = _faiss()
    parts, keep = [], []
    base = lists_path.rsplit(".", 1)[0]
    tpl = faiss.serialize_index(empty)
    try:
        cur, cur_n = faiss.deserialize_index(tpl), 0
        for ids, vecs in live_rows(store, songs, stride=stride):
            cur.add_with_ids(vecs, ids)
            cur_n += len(ids)
            if cur_n >= batch:
                parts.append(f"{base}.part{len(parts)}.tmp")
                faiss.write_index(cur, parts[-1])
                cur, cur_n = faiss.deserialize_index(tpl), 0
        lists = list(sources)
        if cur_n:
            keep.append(cur)
            lists.append(faiss.extract_index_ivf(cur).invlists)
        for p in parts:
            part = faiss.read_index(p, faiss.IO_FLAG_MMAP)
            keep.append(part)
            lists.append(faiss.extract_index_ivf(part).invlists)
        out = faiss.deserialize_index(tpl)
        ivf = faiss.extract_index_ivf(out)
        if os.path.exists(lists_path):     # a crashed writer's, for the same generation
            os.remove(lists_path)
        inv = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, lists_path)
        vec = faiss.InvertedListsPtrVector()
        for il in lists:
            vec.push_back(il)
        with _quiet_stdout():
            ntotal = inv.merge_from_multiple(vec.data(), vec.size(), False, False) if lists else 0
        ivf.replace_invlists(inv, True)
        inv.this.disown()
        ivf.ntotal = out.ntotal = ntotal
        return out
    finally:
        del keep
        for p in parts:
            if os.path.exists(p):
                os.remove(p)


def next_index(current, params: dict, kind: str, dim: int, store, removed: Sequence[SongInfo],
               new: Sequence[SongInfo], live_after: Sequence[SongInfo], *, rebuild: bool = False,
               lists_path: str | None = None, current_path: str | None = None):
    """The FAISS index of the next generation and its params.

    ``current`` (with ``params``) minus the rows of ``removed`` plus those of ``new``, or a new index of
    ``live_after``'s rows where asked (``rebuild``) or where the size calls for another kind (or, for
    ``kind`` "auto", a retrain). ``store``: the store's rows including the new ones. ``lists_path``: where
    the next generation's on-disk lists go (needed when the params put them on disk); ``current_path``:
    the file of ``current``.
    """
    faiss = _faiss()
    n_after = sum(s.n_fingerprints for s in live_after)
    params = dict(params)
    want = choose_params(kind, n_after, dim)
    rebuild = (rebuild or not params or current is None or params.get("kind") != want["kind"]
               or (want["kind"] in IVF_KINDS and kind == "auto"
                   and n_after > 4 * int(params.get("trained_on", 0)))
               or (removed and params.get("kind") == "hnsw"))     # HNSW cannot remove
    if rebuild:
        params = target_params(kind, n_after, dim)
        train = None
        if params["kind"] in IVF_KINDS:
            # an HNSW quantizer: 20 rows per centroid (its k-means cost grows with nlist squared); a
            # multi-index: 256 centroids per half, and PQ's 256 per sub-vector: 65536 rows are plenty
            n_train = (max(40 * params["nlist"], 20000) if params.get("quantizer", "flat") == "flat"
                       else 65536 if params.get("quantizer") == "imi" else 20 * params["nlist"])
            train = sample_rows(store, live_after, n_train)
        fidx = new_index(params, dim, train)
        songs, sources = live_after, []
    elif params.get("ondisk"):
        # the lists are not rewritten for a removal: rows of removed songs map to no song
        fidx = _empty_like(current, current_path)
        songs, sources = new, [faiss.extract_index_ivf(current).invlists]
    else:
        fidx = faiss.clone_index(current)
        for s in removed:
            fidx.remove_ids(faiss.IDSelectorRange(s.offset, s.offset + s.n_fingerprints))
        songs, sources = new, []
    stride = int(params.get("stride", 1))
    if params.get("ondisk"):
        if lists_path is None:
            raise ValueError("next_index needs lists_path for an index with on-disk lists")
        return _ondisk(fidx, sources, lists_path, store, songs, stride), params
    _add(fidx, store, songs, stride)
    return fidx, params
