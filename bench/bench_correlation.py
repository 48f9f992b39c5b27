"""Benchmarks of chadsp's correlation functions against their anchors (issue 2, "Speed").

Cases (ours vs anchor, timed alternately in one process; medians):

- ``rerank`` packed, one query (Tq = 10, 29, 64) against 5000 candidates of 400..1000 frames, D = 128,
  float32 (about 1.8 GB): vs the best vectorised numpy version (chunked ``[Qc; 1] @ block.T`` with
  multi-threaded BLAS, contiguous diagonal adds, cumulative-sum statistics, per-candidate maxima), and
  vs the float32 GEMM rate of this machine (numpy matmul, 2048^3, timed in the same run) expressed as
  the time a GEMM of the same flop count (2 * Tq * D * sum(Ts)) takes. The note carries the GEMM
  fraction and the extra peak RSS of ``rerank`` (scratch only: the data is allocated before).
- ``xcorr`` on 128-d sequences (40 vs 2000 frames, 160 vs 8000) vs ``scipy.signal.fftconvolve(axes=0)``
  summed over channels; on a long 1-D signal (3 s in 20 s at 16 kHz) vs
  ``scipy.signal.correlate(method="fft")``.
- ``find_peaks`` on a 20 s correlation curve vs ``scipy.signal.find_peaks`` (same height, distance).

Run directly: ``PYTHONPATH=$PWD python bench/bench_correlation.py [--quick] [--calibrate]``.
``--calibrate`` prints the timings behind ``method="auto"``'s cost model in chadsp/xcorr.py.
"""
from __future__ import annotations

import math
import os
import resource
import sys
import time

import numpy as np
import scipy.signal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_time, paired_times, row  # noqa: E402

import chadsp  # noqa: E402
from chadsp.xcorr import _choose_method  # noqa: E402


# ---------------------------------------------------------------------------------------- data
def packed_candidates(n: int, lo: int = 400, hi: int = 1000, d: int = 128, seed: int = 0, *, align: int = 0):
    """n candidates of uniform length in [lo, hi], packed (data float32 (sum Ts, d), offsets int64[n+1]),
    rows L2-normalised like fingerprints. Allocated once, filled in place (no float64 temporary).
    ``align``: the data starts on a multiple of ``align`` bytes (an index's store is a page-aligned
    memory map; a large numpy array starts 16 bytes past a page)."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(lo, hi + 1, size=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    if align:
        nbytes = int(offsets[-1]) * d * 4
        buf = np.empty(nbytes + align, dtype=np.uint8)
        skip = -buf.ctypes.data % align
        data = buf[skip:skip + nbytes].view(np.float32).reshape(int(offsets[-1]), d)
    else:
        data = np.empty((int(offsets[-1]), d), dtype=np.float32)
    step = 1 << 16
    for a in range(0, data.shape[0], step):
        blk = data[a:a + step]
        rng.standard_normal(out=blk, dtype=np.float32)
        blk /= np.linalg.norm(blk, axis=1, keepdims=True)
    return data, offsets


# ---------------------------------------------------------------------------------------- anchors
def numpy_rerank(query: np.ndarray, data: np.ndarray, offsets: np.ndarray, chunk_rows: int = 1 << 15):
    """The best vectorised numpy re-rank: per chunk of whole candidates (a view of the packed data),
    one GEMM ``[Qc; 1] @ B.T`` (the ones row gives the row sums), Tq contiguous diagonal adds,
    window statistics from cumulative sums in float64, invalid (boundary-crossing) lags masked, and
    ``np.maximum.reduceat`` per candidate. Candidates must be at least as long as the query."""
    tq, d = query.shape
    n_el = tq * d
    qd = query.astype(np.float64)
    qc = qd - qd.mean()
    qss = float((qc * qc).sum())
    a = np.vstack([qc.astype(np.float32), np.ones((1, d), np.float32)])
    qsum = float(a[:tq].sum(dtype=np.float64))
    ncand = offsets.size - 1
    lens = np.diff(offsets)
    if lens.min() < tq:
        raise ValueError("numpy_rerank: every candidate must be at least as long as the query")
    scores = np.empty(ncand, dtype=np.float32)
    lags = np.empty(ncand, dtype=np.int64)
    k = 0
    while k < ncand:
        k2 = int(np.searchsorted(offsets, offsets[k] + chunk_rows, side="right")) - 1
        k2 = min(max(k2, k + 1), ncand)
        r0, r1 = int(offsets[k]), int(offsets[k2])
        b = data[r0:r1]
        g = a @ b.T                                             # (tq + 1, R)
        nl = (r1 - r0) - tq + 1
        s = g[0, :nl].astype(np.float64)
        for i in range(1, tq):
            s += g[i, i:i + nl]
        rs = np.zeros(r1 - r0 + 1)
        np.cumsum(g[tq], out=rs[1:])
        rq = np.zeros(r1 - r0 + 1)
        np.cumsum(np.einsum("ij,ij->i", b, b), out=rq[1:])
        ws = rs[tq:] - rs[:-tq]
        wq = rq[tq:] - rq[:-tq]
        ss = wq - ws * ws / n_el
        ok = ss > 1e-10 * wq
        r = np.where(ok, (s - ws / n_el * qsum) / np.sqrt(qss * np.where(ok, ss, 1.0)), 0.0)
        starts = offsets[k:k2] - r0
        ends = offsets[k + 1:k2 + 1] - r0 - tq + 1             # exclusive end of the valid lags
        pos = np.arange(nl)
        valid = pos < np.repeat(ends, lens[k:k2])[:nl]
        r = np.where(valid, r, -np.inf)
        scores[k:k2] = np.maximum.reduceat(r, starts)
        for j in range(k, k2):
            lags[j] = int(np.argmax(r[starts[j - k]:ends[j - k]]))
        k = k2
    return scores, lags


def _gemm_rate(size: int = 2048) -> tuple[callable, float]:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    return (lambda: a @ b), 2.0 * size ** 3


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------- cases
def rerank_cases(quick: bool = False, tqs=(29, 10, 64)) -> list[dict]:
    import psutil
    n = 500 if quick else 5000
    repeat = 3 if quick else 5
    data, offsets = packed_candidates(n)
    total = int(np.diff(offsets).sum())
    rows = []
    gemm, gemm_flops = _gemm_rate()
    rng = np.random.default_rng(2)
    for tq in tqs:
        k = int(rng.integers(n))
        q = data[offsets[k] + 100: offsets[k] + 100 + tq] + 0.3 * rng.standard_normal((tq, 128), dtype=np.float32)
        q = q.astype(np.float32)
        flops = 2.0 * tq * 128 * total
        rss0, peak0 = psutil.Process().memory_info().rss / 2**20, _maxrss_mb()
        ours = lambda: chadsp.rerank(q, (data, offsets))  # noqa: E731
        cpu0 = time.process_time()
        s_ours, l_ours = ours()
        cpu = time.process_time() - cpu0
        extra_peak = max(_maxrss_mb() - peak0, psutil.Process().memory_info().rss / 2**20 - rss0, 0.0)
        s_np, l_np = numpy_rerank(q, data, offsets)
        err = float(np.max(np.abs(s_ours - s_np)))
        assert err < 1e-3 and int(np.argmax(s_ours)) == k, (err, k)
        t_ours, t_np = paired_times(ours, lambda: numpy_rerank(q, data, offsets), repeat=repeat, warmup=0)
        t_ours2, t_gemm = paired_times(ours, gemm, repeat=repeat, warmup=1)
        rate = gemm_flops / t_gemm
        t_equiv = flops / rate
        frac = (flops / min(t_ours, t_ours2)) / rate
        case = f"rerank packed Tq={tq}, {n} cand 400..1000, D=128"
        rows.append(row(case, t_ours, "numpy chunked matmul+diagonals", t_np,
                        f"max |score diff| {err:.1e}; {flops / t_ours / 1e9:.0f} GFLOP/s; "
                        f"CPU time of one call {cpu:.2f} s"))
        rows.append(row(case, t_ours2, "float32 GEMM, same flops", t_equiv,
                        f"GEMM fraction {frac:.2f} (GEMM {rate / 1e9:.0f} GFLOP/s); "
                        f"data {data.nbytes / 2**30:.2f} GiB, rerank extra peak RSS {extra_peak * 1024:.0f} KiB"))
    return rows


def xcorr_cases(quick: bool = False) -> list[dict]:
    rng = np.random.default_rng(3)
    rows = []
    repeat = 5 if quick else 9
    for tq, tt in [(40, 2000), (160, 8000)]:
        t = rng.standard_normal((tt, 128), dtype=np.float32)
        q = t[tt // 2: tt // 2 + tq].copy()
        ours = lambda: chadsp.xcorr(q, t)  # noqa: E731
        anchor = lambda: scipy.signal.fftconvolve(t, q[::-1], mode="valid", axes=0).sum(axis=1)  # noqa: E731
        a, b = paired_times(ours, anchor, repeat=repeat)
        rows.append(row(f"xcorr 128-d {tq} vs {tt} frames", a, "fftconvolve(axes=0).sum(1)", b,
                        f"auto -> {_choose_method(tq, tt, 128)}"))
    sr = 16000
    t = rng.standard_normal(20 * sr).astype(np.float32)
    q = t[5 * sr: 8 * sr].copy()
    a, b = paired_times(lambda: chadsp.xcorr(q, t), lambda: scipy.signal.correlate(t, q, mode="valid", method="fft"),
                        repeat=repeat)
    rows.append(row("xcorr 1-D 3 s in 20 s @16 kHz", a, "signal.correlate(method=fft)", b,
                    f"auto -> {_choose_method(len(q), len(t), 1)}; ours normalised"))
    curve = chadsp.xcorr(q, t)
    a, b = paired_times(lambda: chadsp.find_peaks(curve, height=0.05, distance=sr),
                        lambda: scipy.signal.find_peaks(curve, height=0.05, distance=sr), repeat=repeat)
    rows.append(row(f"find_peaks {curve.size} samples, height, distance", a, "scipy.signal.find_peaks", b))
    walk = np.cumsum(rng.standard_normal(1_000_000))
    a, b = paired_times(lambda: chadsp.find_peaks(walk, distance=100),
                        lambda: scipy.signal.find_peaks(walk, distance=100), repeat=repeat)
    rows.append(row("find_peaks 1e6 random walk, distance=100", a, "scipy.signal.find_peaks", b))
    return rows


def cases(quick: bool = False) -> list[dict]:
    return xcorr_cases(quick) + rerank_cases(quick)


# ---------------------------------------------------------------------------------------- calibration
def calibrate() -> None:
    """Times of method='direct' and 'fft' over sizes (the data behind chadsp.xcorr's cost model)."""
    from scipy.fft import next_fast_len
    rng = np.random.default_rng(4)
    print(f"{'tq':>7} {'tt':>8} {'d':>4} {'direct ms':>10} {'fft ms':>9}  direct/MAC   fft/unit")
    for d, sizes in [(128, [(10, 500), (40, 2000), (160, 8000), (400, 20000), (1000, 20000)]),
                     (16, [(40, 2000), (400, 20000), (2000, 20000)]),
                     (1, [(50, 2000), (500, 20000), (4000, 80000), (48000, 320000), (300, 320000)])]:
        for tq, tt in sizes:
            t = rng.standard_normal((tt, d), dtype=np.float32)
            q = t[:tq].copy()
            td = median_time(lambda: chadsp.xcorr(q, t, method="direct"), repeat=3, min_time=0.02)
            tf = median_time(lambda: chadsp.xcorr(q, t, method="fft"), repeat=3, min_time=0.02)
            lags = tt - tq + 1
            macs = tq * lags * (1 if d == 1 else -(-d // 16) * 16)
            n = next_fast_len(tt, real=True)
            print(f"{tq:7d} {tt:8d} {d:4d} {td * 1e3:10.3f} {tf * 1e3:9.3f}  {td / macs:.2e}  "
                  f"{tf / (d * n * math.log2(n)):.2e}")


def _print(rows: list[dict]) -> None:
    print(f"{'case':58s} {'ours':>10s} {'anchor':>10s} {'ratio':>7s}  anchor / note")
    for r in rows:
        print(f"{r['case']:58s} {r['ours_s'] * 1e3:8.2f}ms {r['anchor_s'] * 1e3:8.2f}ms "
              f"{r['anchor_s'] / r['ours_s']:6.2f}x  {r['anchor']}; {r['note']}")


if __name__ == "__main__":
    if "--calibrate" in sys.argv:
        calibrate()
    else:
        t0 = time.perf_counter()
        _print(cases(quick="--quick" in sys.argv))
        print(f"({time.perf_counter() - t0:.0f} s)")
