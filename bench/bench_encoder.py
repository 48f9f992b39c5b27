"""Fingerprinting throughput of the ResNet18 encoder (windows per second) on CPU threads.

Ours: ``chadml.models.encoder.fingerprint`` (numpy in, numpy out, batched, eval, no grad). Anchor: the bare
``model(x)`` forward pass under ``torch.inference_mode`` on a ready tensor of the same batch, i.e. the
floor any wrapper can reach with this network; the ratio shows the wrapper's overhead.

Run: ``PYTHONPATH=$PWD python bench/bench_encoder.py [--quick] [--threads 2] [--width 64]``
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import paired_times, row  # noqa: E402

from chadml.models.encoder import ResNet18Encoder, fingerprint  # noqa: E402

# (name, F, Wf): CQT at 16 kHz, hop 512 (31.25 frames/s): W = 3 s -> 94 frames, W = 8 s -> 250 frames
SHAPES = [("cqt W=3s", 84, 94), ("cqt W=8s", 84, 250)]


def cases(quick: bool = False, *, width: int = 64, n: int = 256, batch_size: int = 256) -> list[dict]:
    torch.manual_seed(0)
    model = ResNet18Encoder(width=width).eval()
    rng = np.random.default_rng(0)
    rows = []
    for name, f, wf in SHAPES[:1] if quick else SHAPES:
        w = rng.standard_normal((n, f, wf)).astype(np.float32)
        x = torch.from_numpy(w)

        def bare():
            with torch.inference_mode():
                for i in range(0, n, batch_size):
                    model(x[i:i + batch_size])

        ours_s, anchor_s = paired_times(lambda: fingerprint(model, w, batch_size=batch_size), bare,
                                        repeat=3 if quick else 5, warmup=1, min_time=0.0)
        rows.append(row(f"fingerprint {name} width={width} (n={n})", ours_s, "bare model forward", anchor_s,
                        f"{n / ours_s:.0f} windows/s ours, {n / anchor_s:.0f} windows/s bare, "
                        f"{torch.get_num_threads()} threads"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for r in cases(a.quick, width=a.width, n=a.n, batch_size=a.batch_size):
        print(f"{r['case']}: ours {r['ours_s']:.3f} s, {r['anchor']} {r['anchor_s']:.3f} s "
              f"(ratio {r['ours_s'] / r['anchor_s']:.2f}); {r['note']}")


if __name__ == "__main__":
    main()
