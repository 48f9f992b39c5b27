"""Benchmarks of chadsp's re-ranking kernels at catalogue scale (issue 12, the kernel part).

Cases (2 threads, the machine's 2 cores; ours vs anchor timed alternately in one process; medians):

- ``rerank`` packed float32, one query (Tq = 29, 10) against 5000 candidates of 400..1000 rows, D = 128
  (1.67 GiB): today's kernel vs the kernel as it was before this change (``csrc/pearson.c`` of the
  baseline revision, compiled here with the same flags and called the same way: "the old path").
- The same candidates as float16 rows and as int8 rows with a per-row scale (0.83 and 0.42 GiB), read in
  place by ``rerank_ranges``, vs the old kernel on the float32 rows (what the searcher read before). The
  note gives the largest score difference from float32 and whether the lags agree where the float32
  maximum is clear.
- The kernel alone: 24 candidates (8 MiB, in cache), one thread, process CPU time (on a busy machine the
  wall time of a thread is mostly its wait for a core): today's compiled kernel vs the old one, both
  called without the Python argument checks (about 25 us per public call).
- ``rerank_ranges`` of 2500 of the 5000 songs in random order (one call) vs the old way of scoring
  candidates that are not one contiguous run: one ``rerank`` call per run of consecutive candidates (as
  the searcher did: runs of at least 4 candidates per thread on every thread, smaller runs one thread
  each, side by side).

The data is page-aligned, as an index's memory-mapped store (a numpy array of this size starts 16 bytes
past a cache line: both kernels then run about 10% slower). Wall times on a shared machine are the
medians of the calls timed alternately; each note gives the CPU time of one call, which the load of
other processes inflates less.

The old kernel is built from ``git show REV:csrc/pearson.c``, where REV is the parent of the commit that
added ``chadsp_rerank_ranges`` (``CHADSP_BENCH_BASELINE`` overrides it); without git or a C compiler the
old-path rows are left out.

Run directly: ``PYTHONPATH=$PWD python bench/bench_rerank.py [--quick]``, or ``python bench/run.py --only rerank``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import paired_times, row  # noqa: E402
from bench_correlation import _print, packed_candidates  # noqa: E402

import chadsp  # noqa: E402
from chadsp import _backend  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREADS = 2


# ---------------------------------------------------------------------------------------- the old kernel
def baseline_rev() -> str:
    """The revision whose kernel is "the old path"."""
    if os.environ.get("CHADSP_BENCH_BASELINE"):
        return os.environ["CHADSP_BENCH_BASELINE"]
    out = subprocess.run(["git", "log", "--reverse", "--format=%H", "-S", "chadsp_rerank_ranges", "--",
                          "csrc/pearson.c"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return f"{out[0]}^" if out else "HEAD"


def old_rerank(rev: str | None = None):
    """``f(q, data, offsets, threads) -> (scores, lags)`` of the kernel of ``rev``, or None where it
    cannot be built (no git, no compiler)."""
    try:
        from cffi import FFI

        from chadsp._build import _flags
        rev = rev or baseline_rev()
        tmp = tempfile.mkdtemp(prefix="chadsp-old-")
        for name in ("pearson.c", "chadsp.h"):
            src = subprocess.run(["git", "show", f"{rev}:csrc/{name}"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout
            with open(os.path.join(tmp, name), "w") as f:
                f.write(src)
        cflags, ldflags = _flags()
        lib_path = os.path.join(tmp, "libold.so")
        subprocess.run(["gcc", *cflags, "-shared", "-fPIC", "-I", tmp, os.path.join(tmp, "pearson.c"), "-o", lib_path,
                        *ldflags, "-lm"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError, ImportError):
        return None
    ffi = FFI()
    ffi.cdef("int chadsp_rerank(const float *query, int64_t tq, int64_t d, const float *data, const int64_t *offsets,"
             " int64_t n, int threads, float *scores, int64_t *lags, int64_t *bad);")
    lib = ffi.dlopen(lib_path)

    def rerank(q, data, offsets, threads=THREADS):
        n = offsets.size - 1
        scores = np.zeros(n, np.float32)
        lags = np.zeros(n, np.int64)
        bad = ffi.new("int64_t *")
        p = lambda a, t: ffi.cast(t, ffi.from_buffer(a))  # noqa: E731
        rc = lib.chadsp_rerank(p(q, "float *"), q.shape[0], q.shape[1], p(data, "float *"), p(offsets, "int64_t *"),
                               n, threads, p(scores, "float *"), p(lags, "int64_t *"), bad)
        assert rc == 0
        return scores, lags

    try:
        rerank.rev = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True,
                                    check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rerank.rev = rev
    return rerank


# ---------------------------------------------------------------------------------------- helpers
def quantise_i8(data: np.ndarray, step: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows with a per-row float32 scale (the row's max |x| maps to 127), chunk by chunk."""
    q = np.empty(data.shape, np.int8)
    scales = np.empty(len(data), np.float32)
    for a in range(0, len(data), step):
        blk = data[a:a + step]
        s = (np.abs(blk).max(axis=1) / 127.0).astype(np.float32)
        scales[a:a + step] = s
        q[a:a + step] = np.round(blk / np.where(s > 0, s, 1)[:, None])
    return q, scales


def cpu_time(fn) -> float:
    """Process CPU time of one call (both threads): what the call costs on a busy machine."""
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def cpu_paired(ours, anchor, repeat: int = 7, min_time: float = 0.1) -> tuple[float, float]:
    """Medians of the process CPU time per call of ``ours`` and ``anchor``, timed alternately (one thread:
    on a busy machine the CPU time is the kernel's own cost, the wall time mostly the wait for a core)."""
    def one(fn):
        k, c0 = 0, time.process_time()
        while True:
            fn()
            k += 1
            dt = time.process_time() - c0
            if dt >= min_time:
                return dt / k
    ours(), anchor()
    a, b = zip(*[(one(ours), one(anchor)) for _ in range(repeat)])
    return float(np.median(a)), float(np.median(b))


def clear_lags_agree(q, data, offsets, l32, lags, k_max: int = 200) -> tuple[int, int]:
    """(agreeing, clear): among the first k_max candidates, those whose float32 maximum is clear (the
    best lag beats every other lag by 0.02), and how many of them have the same lag here."""
    clear = agree = 0
    for k in range(min(k_max, offsets.size - 1)):
        t = data[offsets[k]:offsets[k + 1]]
        if len(t) < len(q):
            continue
        curve = chadsp.xcorr(q, t, method="direct")
        others = np.delete(curve, int(l32[k]))
        if others.size == 0 or curve[l32[k]] - others.max() > 0.02:
            clear += 1
            agree += int(lags[k] == l32[k])
    return agree, clear


# ---------------------------------------------------------------------------------------- cases
def cases(quick: bool = False) -> list[dict]:
    n = 500 if quick else 5000
    repeat = 3 if quick else 5
    data, offsets = packed_candidates(n, align=4096)     # page-aligned, as an index's memory-mapped store
    total = int(offsets[-1])
    d16 = data.astype(np.float16)
    i8, scales = quantise_i8(data)
    starts, lengths = offsets[:-1], np.diff(offsets)
    old = old_rerank()
    rng = np.random.default_rng(2)
    rows = []
    for tq in (29, 10):
        k = int(rng.integers(n))
        q = (data[offsets[k] + 100: offsets[k] + 100 + tq]
             + 0.3 * rng.standard_normal((tq, 128), dtype=np.float32)).astype(np.float32)
        flops = 2.0 * tq * 128 * total
        case = f"rerank Tq={tq}, {n} cand 400..1000, D=128"
        ours = lambda: chadsp.rerank(q, (data, offsets), threads=THREADS)  # noqa: E731
        s32, l32 = ours()
        assert int(np.argmax(s32)) == k and l32[k] == 100
        cpu = cpu_time(ours)
        if old is not None:
            s_old, l_old = old(q, data, offsets)
            diff = float(np.max(np.abs(s_old - s32)))
            assert diff < 1e-4, diff
            anchor = lambda: old(q, data, offsets)  # noqa: E731
            t_ours, t_old = paired_times(ours, anchor, repeat=repeat, warmup=0, min_time=0)
            cpu_old = cpu_time(anchor)
            rows.append(row(f"{case}, float32 {data.nbytes / 2**30:.2f} GiB", t_ours, f"old kernel ({old.rev})",
                            t_old, f"max |score diff| {diff:.1e}, lags equal {np.mean(l_old == l32):.3f}; "
                            f"{flops / t_ours / 1e9:.0f} GFLOP/s; CPU time of one call {cpu:.2f} s (old {cpu_old:.2f} s)"))
        else:
            t_ours, _ = paired_times(ours, ours, repeat=repeat, warmup=0, min_time=0)
            t_old = float("nan")
            rows.append(row(f"{case}, float32", t_ours, "old kernel (not built)", t_old,
                            f"CPU time of one call {cpu:.2f} s"))
        for name, store, sc in (("float16", d16, None), ("int8 + row scale", i8, scales)):
            fn = lambda: chadsp.rerank_ranges(q, store, starts, lengths, scales=sc, threads=THREADS)  # noqa: E731
            s, lg = fn()
            diff = float(np.max(np.abs(s - s32)))
            assert diff <= 1e-2, diff
            agree, clear = clear_lags_agree(q, data, offsets, l32, lg)
            cpu_s = cpu_time(fn)
            if old is not None:
                t_s, t_o = paired_times(fn, lambda: old(q, data, offsets), repeat=repeat, warmup=0, min_time=0)
            else:
                t_s, _ = paired_times(fn, fn, repeat=repeat, warmup=0, min_time=0)
                t_o = float("nan")
            rows.append(row(f"{case}, {name} {store.nbytes / 2**30:.2f} GiB", t_s,
                            "old kernel, float32 rows", t_o,
                            f"max |score diff| vs float32 {diff:.1e}; lags equal where clear {agree}/{clear}; "
                            f"top-1 {'same' if int(np.argmax(s)) == k else 'DIFFERENT'}; CPU time of one call "
                            f"{cpu_s:.2f} s (float32 rows {cpu:.2f} s)"))
    # the kernel alone: 24 candidates (8 MiB, in cache), one thread, where memory bounds neither kernel
    if old is not None:
        m = min(24, n)
        small_off = offsets[:m + 1]
        small = data[:int(small_off[-1])]
        for tq in (29, 10):
            q = (small[small_off[7] + 30: small_off[7] + 30 + tq]
                 + 0.3 * rng.standard_normal((tq, 128), dtype=np.float32)).astype(np.float32)
            # the compiled kernels as the backend calls them (no argument checks on either side)
            ours = lambda: _backend.impl.rerank(q, small, small_off, 1)  # noqa: E731
            anchor = lambda: old(q, small, small_off, threads=1)  # noqa: E731
            assert np.array_equal(ours()[1], anchor()[1])
            t_ours, t_old = cpu_paired(ours, anchor, repeat=repeat + 2)
            ns = 1e9 / int(small_off[-1])
            rows.append(row(f"rerank Tq={tq}, {m} cand, float32 {small.nbytes / 2**20:.0f} MiB, 1 thread, CPU time",
                            t_ours, f"old kernel ({old.rev})", t_old,
                            f"{t_ours * ns:.0f} ns per row (old {t_old * ns:.0f}); "
                            f"{2 * tq * 128 * int(small_off[-1]) / t_ours / 1e9:.0f} GFLOP/s per core"))
    # scattered candidates: one call over row ranges vs one call per run of consecutive candidates
    tq = 29
    k = int(rng.integers(n))
    q = (data[offsets[k] + 50: offsets[k] + 50 + tq]
         + 0.3 * rng.standard_normal((tq, 128), dtype=np.float32)).astype(np.float32)
    pick = rng.choice(n, size=n // 2, replace=False)
    pick[0] = k
    ours = lambda: chadsp.rerank_ranges(q, data, starts[pick], lengths[pick], threads=THREADS)  # noqa: E731
    srt = np.sort(pick)
    breaks = np.flatnonzero(np.diff(srt) != 1) + 1
    runs = np.split(srt, breaks)

    pool = ThreadPoolExecutor(THREADS)

    def per_run(kernel):
        """As the searcher did (search/encoder.py before rerank_ranges): a run of at least 4 candidates per
        thread gets one call on every thread; smaller runs one call each on one thread, side by side."""
        def call(r, threads):
            a, b = int(r[0]), int(r[-1]) + 1
            return kernel(q, data[offsets[a]:offsets[b]], offsets[a:b + 1] - offsets[a], threads)
        big = [call(r, THREADS) for r in runs if len(r) >= 4 * THREADS]
        return big + list(pool.map(lambda r: call(r, 1), [r for r in runs if len(r) < 4 * THREADS]))

    s_new, l_new = ours()
    new_kernel = lambda q_, d_, o_, th: chadsp.rerank(q_, (d_, o_), threads=th)  # noqa: E731
    s_runs = np.sort(np.concatenate([r[0] for r in per_run(new_kernel)]))
    assert np.array_equal(np.sort(s_new), s_runs)
    kernel = old if old is not None else new_kernel
    t_ours, t_runs = paired_times(ours, lambda: per_run(kernel), repeat=repeat, warmup=0, min_time=0)
    cpu_new, cpu_runs = cpu_time(ours), cpu_time(lambda: per_run(kernel))
    pool.shutdown()
    rows_scored = int(lengths[pick].sum())
    rows.append(row(f"rerank_ranges Tq={tq}, {len(pick)} of {n} songs in random order, float32", t_ours,
                    f"{'old kernel' if old is not None else 'rerank'}, one call per run ({len(runs)} calls)", t_runs,
                    f"{rows_scored} rows, the same scores; CPU time {cpu_new:.2f} s (per run {cpu_runs:.2f} s)"))
    return rows


if __name__ == "__main__":
    t0 = time.perf_counter()
    _print(cases(quick="--quick" in sys.argv))
    print(f"({time.perf_counter() - t0:.0f} s)")
