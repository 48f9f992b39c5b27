"""What each query-by-humming method costs per query, against the CQT the encoder runs on.

Rows: the pitch front-ends of the f0 + DTW matcher (CREPE tiny and full) and the encoder's CREPE
features, each timed against our CQT of the same clip (the anchor; the ratio is CQT time / its time,
so it says how many times slower than the CQT a method's features are), and the f0-DTW matching step
over a song collection. ``note``: seconds of audio per second (x real time).

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$PWD python bench/run.py --only qbh [--quick]
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import median_time, paired_times, row  # noqa: E402
from bench_features import _sung  # noqa: E402

from chadml.search.f0 import F0Config, F0DtwSearcher, F0Index, f0_contour  # noqa: E402
from chadml.features.crepe import crepe_features  # noqa: E402
from chadml.features import FeatureConfig, extract_features  # noqa: E402

SR = 16000


def cases(quick: bool = False) -> list[dict]:
    rows = []
    cfg = FeatureConfig()
    for model, dur, repeat in (("tiny", 10.0, 1 if quick else 3), ("full", 3.0 if quick else 10.0, 1)):
        y = _sung(dur)
        f0cfg = F0Config(crepe_model=model)
        cqt = lambda: extract_features(y, cfg)  # noqa: E731
        a, b = paired_times(lambda: f0_contour(y, SR, f0cfg), cqt, repeat=repeat, min_time=0.0)
        rows.append(row(f"f0 contour, CREPE {model}, {dur:g} s clip", a, "CQT features (chadml)", b,
                        f"{dur / a:.2f}x real time; CQT {dur / b:.0f}x, {a / b:.0f}x faster"))
        if model == "tiny":
            a, b = paired_times(lambda: crepe_features(y, model=model), cqt, repeat=repeat, min_time=0.0)
            rows.append(row(f"encoder CREPE features ({model}), {dur:g} s clip", a, "CQT features (chadml)", b,
                            f"{dur / a:.2f}x real time; CQT {a / b:.0f}x faster"))
    # matching: a 10 s query contour against n songs of 45 s (10 contour frames per second)
    import tempfile
    rng = np.random.default_rng(0)
    n = 100 if quick else 1000
    songs = [(f"s{i}", np.cumsum(rng.normal(0, 1, 450)).astype(np.float32), np.arange(450, dtype=np.float32) / 10,
              None, None, 45.0) for i in range(n)]
    with tempfile.TemporaryDirectory() as d:
        idx = F0Index.write(d, songs, F0Config())
        q = songs[n // 2][1][100:200].copy()
        s = F0DtwSearcher(idx, threads=torch.get_num_threads())
        t = median_time(lambda: s.score(q), repeat=3)
        rows.append(row(f"f0-DTW matching, 10 s query vs {n} songs of 45 s", t, "-", float("nan"),
                        f"{t / n * 1e3:.2f} ms per song, band 15 %, refine 1"))
    return rows
