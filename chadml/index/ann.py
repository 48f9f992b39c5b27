"""The FAISS part of a song index: the kind of index for a size, building and training it, searching,
and the index of the next generation.

``faiss-<g>.index`` is the FAISS index of generation ``g`` (written with ``faiss.write_index``); its ids
are store rows. Its parameters (``{"kind": ..., "nlist", "nprobe", "trained_on", "m", "nbits",
"M", "efConstruction", "efSearch"}``) are the catalog's ``faiss`` meta value. FAISS is imported on first
use (it is optional for code that only reads the catalog).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..util import atomic_path, progress
from .catalog import SongInfo
from .store import live_rows, sample_rows

__all__ = ["KINDS", "IVF_KINDS", "FLAT_MAX", "choose_params", "target_params", "new_index", "set_search_params",
           "read_index", "write_index", "search", "next_index"]

KINDS = ("auto", "flat", "ivf", "ivfsq", "ivfpq", "hnsw")
IVF_KINDS = ("ivf", "ivfsq", "ivfpq")
FLAT_MAX = 200_000          # "auto": exact search up to this many fingerprints, IVF + 8-bit SQ above


def _faiss():
    import faiss
    return faiss


def choose_params(kind: str, n: int, dim: int) -> dict:
    """FAISS parameters for ``n`` vectors (``kind`` "auto" picks flat or ivfsq by size).

    >>> choose_params("auto", 1000, 128)
    {'kind': 'flat'}
    >>> choose_params("ivfpq", 1_000_000, 128)
    {'kind': 'ivfpq', 'nlist': 256, 'nprobe': 8, 'trained_on': 1000000, 'm': 32, 'nbits': 8}
    """
    if kind == "auto":
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


def target_params(kind: str, n: int, dim: int) -> dict:
    """The parameters of a FAISS index built from scratch over ``n`` vectors: :func:`choose_params`, or
    flat where an IVF kind would have fewer vectors than lists (what one add of ``n`` vectors to an empty
    index makes; :meth:`chadml.index.SongIndex.rebuild_ann` compares an index built step by step to it).

    >>> target_params("ivf", 10, 128), target_params("ivf", 100, 128)["kind"]
    ({'kind': 'flat'}, 'ivf')
    """
    params = choose_params(kind, n, dim)
    if params["kind"] in IVF_KINDS and n < params["nlist"]:
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
    # small k-means runs are slower with several OpenMP threads than with one
    threads = faiss.omp_get_max_threads()
    if len(train_rows) < 50_000:
        faiss.omp_set_num_threads(1)
    try:
        idx.train(train_rows)
    finally:
        faiss.omp_set_num_threads(threads)
    return idx


def set_search_params(fidx, params: dict, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Set the search-time parameter of ``fidx`` (IVF ``nprobe``, HNSW ``efSearch``; default: ``params``')."""
    faiss = _faiss()
    kind = params.get("kind")
    if kind in IVF_KINDS:
        faiss.extract_index_ivf(fidx).nprobe = int(nprobe or params.get("nprobe", 8))
    elif kind == "hnsw":
        faiss.downcast_index(fidx.index).hnsw.efSearch = int(ef_search or params.get("efSearch", 128))


def read_index(path: str):
    """The FAISS index written at ``path``."""
    return _faiss().read_index(path)


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


def next_index(current, params: dict, kind: str, dim: int, store: np.ndarray, removed: Sequence[SongInfo],
               new: Sequence[SongInfo], live_after: Sequence[SongInfo], *, rebuild: bool = False):
    """The FAISS index of the next generation and its params.

    ``current`` (with ``params``) minus the rows of ``removed`` plus those of ``new``, or a new index of
    ``live_after``'s rows where asked (``rebuild``) or where the size calls for another kind (or, for
    ``kind`` "auto", a retrain). ``store``: the store's rows including the new ones.
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
            train = sample_rows(store, live_after, max(40 * params["nlist"], 20000))
        fidx = new_index(params, dim, train)
        songs = live_after
    else:
        fidx = faiss.clone_index(current)
        for s in removed:
            fidx.remove_ids(faiss.IDSelectorRange(s.offset, s.offset + s.n_fingerprints))
        songs = new
    total = sum(s.n_fingerprints for s in songs)
    bar = progress(total=total, desc="indexing", unit="fp", leave=False) if total > 500_000 else None
    for ids, vecs in live_rows(store, songs):
        fidx.add_with_ids(vecs, ids)
        if bar is not None:
            bar.update(len(ids))
    if bar is not None:
        bar.close()
    return fidx, params
