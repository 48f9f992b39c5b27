"""Benchmarks of chadsp's silence functions against librosa (and the best numpy version of the split).

``split_by_silence`` and ``rms_db`` on 4 minutes of 16 kHz audio (bursts of tones and noise between
pauses of quiet noise and digital silence, the shape of a vocal stem), with the intervals and levels
asserted equal to the anchor's before anything is timed. Run through ``python bench/run.py --only silence``.
"""
from __future__ import annotations

import numpy as np

try:
    from bench._timing import paired_times, row
except ImportError:  # run from inside bench/
    from _timing import paired_times, row

SR = 16000


def audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Deterministic vocal-stem-like test audio: sung phrases (tone + noise) separated by pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    y = 1e-4 * rng.standard_normal(n)                     # the noise floor of a separated stem
    t = 0
    while t < n:
        t += int(rng.uniform(0.2, 2.0) * SR)              # pause
        length = int(rng.uniform(0.5, 6.0) * SR)          # phrase
        seg = np.arange(min(length, max(n - t, 0)))
        if seg.size:
            f0 = rng.uniform(110, 600)
            amp = 10 ** rng.uniform(-2, 0)
            y[t:t + seg.size] += amp * (np.sin(2 * np.pi * f0 * seg / SR) + 0.1 * rng.standard_normal(seg.size))
        t += length
    y[int(0.3 * n):int(0.32 * n)] = 0.0                   # a stretch of digital silence
    return y.astype(np.float32)


def numpy_split(y: np.ndarray, top_db: float, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """The best vectorised numpy split we could write (frame_length a multiple of hop_length):
    squares summed per hop block, frames as sums of frame_length / hop_length shifted blocks."""
    assert frame_length % hop_length == 0
    n, pad, r = len(y), frame_length // 2, frame_length // hop_length
    nf = 1 + (n + 2 * pad - frame_length) // hop_length
    x = np.zeros((nf - 1 + r) * hop_length, np.float64)
    m = min(n, len(x) - pad)
    x[pad:pad + m] = y[:m]
    blocks = np.einsum("ij,ij->i", *(x.reshape(-1, hop_length),) * 2)
    power = sum(blocks[j:j + nf] for j in range(r)) / frame_length
    power = np.maximum(power, 1e-10)
    loud = power > power.max() * 10.0 ** (-top_db / 10)
    edges = np.flatnonzero(np.diff(np.r_[False, loud, False]))
    return np.minimum(edges.reshape(-1, 2) * hop_length, n)


def cases(quick: bool = False) -> list[dict]:
    import librosa

    import chadsp

    seconds = 30 if quick else 240
    repeat = 3 if quick else 9
    y = audio(seconds)
    rows = []
    label = f"{seconds:g} s @16 kHz"

    top_db = 60
    ours = chadsp.split_by_silence(y, top_db)
    theirs = librosa.effects.split(y, top_db=top_db)
    assert np.array_equal(ours, theirs), "split_by_silence and librosa.effects.split disagree"
    assert np.array_equal(ours, numpy_split(y, top_db)), "numpy_split disagrees"
    for t in (52, 56, 64, 68):   # the paper's other levels: same intervals too
        assert np.array_equal(chadsp.split_by_silence(y, t), librosa.effects.split(y, top_db=t))
    note = f"{len(ours)} intervals, identical"
    a, b = paired_times(lambda: chadsp.split_by_silence(y, top_db), lambda: librosa.effects.split(y, top_db=top_db),
                        repeat=repeat)
    rows.append(row(f"split_by_silence, {label}, top_db=60", a, "librosa.effects.split", b, note))
    a, b = paired_times(lambda: chadsp.split_by_silence(y, top_db), lambda: numpy_split(y, top_db), repeat=repeat)
    rows.append(row(f"split_by_silence, {label}, top_db=60", a, "numpy (hop blocks)", b, note))

    def librosa_rms_db():
        return librosa.amplitude_to_db(librosa.feature.rms(y=y)[0], ref=np.max, top_db=None)

    err = float(np.abs(chadsp.rms_db(y) - librosa_rms_db()).max())
    assert err < 1e-3, f"rms_db differs from librosa by {err} dB"
    a, b = paired_times(lambda: chadsp.rms_db(y), librosa_rms_db, repeat=repeat)
    rows.append(row(f"rms_db, {label}", a, "librosa rms + amplitude_to_db", b, f"max abs diff {err:.1e} dB"))
    return rows
