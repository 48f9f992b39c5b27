"""Synthetic songs for the mining tests: sung-like phrases between silences, covers with known offsets,
and a training-free fingerprinter (so that the tests do not depend on a trained model)."""
from __future__ import annotations

import os

import numpy as np

SR = 16000


def tone(midi: float, dur: float, amp: float = 0.3) -> np.ndarray:
    """A voice-like harmonic tone with vibrato and soft edges."""
    t = np.arange(int(round(dur * SR))) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    ph = 2 * np.pi * np.cumsum(f) / SR
    y = sum(np.sin(k * ph) / k for k in range(1, 6))
    env = np.clip(np.minimum(t / 0.02, (dur - t) / 0.05), 0, 1)
    return (amp * y * env).astype(np.float32)


def phrase(rng: np.random.Generator, dur: float, amp: float = 0.3) -> np.ndarray:
    """A random melody of about ``dur`` seconds, legato (no silence inside)."""
    out, tot = [], 0.0
    while tot < dur - 1e-9:
        d = min(float(rng.choice([0.25, 0.5, 0.75])), dur - tot)
        out.append(tone(float(rng.integers(55, 76)), d, amp))
        tot += d
    return np.concatenate(out)


def melody(rng: np.random.Generator, dur: float) -> list[tuple[float, float]]:
    """Random notes ``(midi, seconds)`` lasting ``dur`` s."""
    out, tot = [], 0.0
    while tot < dur - 1e-9:
        d = min(float(rng.choice([0.25, 0.5, 0.75])), dur - tot)
        out.append((float(rng.integers(55, 76)), d))
        tot += d
    return out


def sing(notes: list[tuple[float, float]], tempo: float = 1.0, transpose: float = 0.0, amp: float = 0.3) -> np.ndarray:
    """The notes sung ``tempo`` times slower (> 1) or faster (< 1), ``transpose`` semitones up."""
    return np.concatenate([tone(m + transpose, d * tempo, amp) for m, d in notes])


def silence(dur: float) -> np.ndarray:
    return np.zeros(int(round(dur * SR)), np.float32)


def vocal(parts: list[np.ndarray | float]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Concatenate phrases (arrays) and silences (floats, seconds); return the track and phrase bounds (s)."""
    out, bounds, t = [], [], 0.0
    for p in parts:
        if isinstance(p, (int, float)):
            out.append(silence(p))
            t += p
        else:
            out.append(p)
            bounds.append((t, t + len(p) / SR))
            t += len(p) / SR
    return np.concatenate(out), bounds


def cover_of(y: np.ndarray, offset: float, rng: np.random.Generator, noise: float = 0.005,
             gain: float = 0.8, tail: float = 1.0) -> np.ndarray:
    """The original delayed by ``offset`` s, scaled, with a little noise and a tail."""
    c = np.concatenate([silence(offset), gain * y, silence(tail)])
    return (c + noise * rng.standard_normal(len(c))).astype(np.float32)


class FeatureFingerprinter:
    """A training-free melody fingerprinter: per CQT frame, the strongest bin (the sung pitch of these
    synthetic voices) as a one-hot weighted by the frame's level, blurred by a bin, pooled over 4 frames;
    per analysis window this block is centred, randomly projected to ``dim`` and L2-normalised.
    Deterministic; the protocol of ``chadml.models.encoder.Fingerprinter`` (``from_audio``, ``window_config``)."""

    def __init__(self, window_config=None, dim: int = 128, seed: int = 0):
        import chadml.features as F
        self.feature_config = F.FeatureConfig(kind="cqt")
        self.window_config = window_config or F.SHORT
        self.dim, self.seed = dim, seed

    def from_audio(self, audio, sr=SR):
        import chadml.features as F
        x = np.asarray(F.extract_features(np.asarray(audio, np.float32), self.feature_config), np.float32)
        level = x.max(axis=0)
        pitch = np.zeros_like(x)
        pitch[x.argmax(axis=0), np.arange(x.shape[1])] = level
        pitch = pitch + 0.5 * (np.roll(pitch, 1, axis=0) + np.roll(pitch, -1, axis=0))
        w, starts = F.make_windows(pitch, self.window_config, self.feature_config.frame_rate)
        w = np.asarray(w)
        n, f, t = w.shape
        p = w[:, :, : t - t % 4].reshape(n, f, -1, 4).mean(-1).reshape(n, -1)
        p = p - p.mean(1, keepdims=True)
        proj = np.random.default_rng(self.seed).standard_normal((p.shape[1], self.dim)).astype(np.float32)
        z = p.astype(np.float32) @ proj
        z -= z.mean(1, keepdims=True)
        z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-9
        return z.astype(np.float32), np.asarray(starts, np.float64)


def song_rows(song_id: str, orig_path: str, orig_dur: float, covers: list[tuple[str, str, float, float]],
              split: str = "train") -> list:
    """SongTable rows: the original and covers given as (version_id, path, duration, offset)."""
    from chadml.data import SongRow
    rows = [SongRow(song_id=song_id, version_id=f"{song_id}-o", audio_type="original", path=orig_path,
                    duration=orig_dur, split=split, alignment=[[0.0, 0.0], [orig_dur, orig_dur]])]
    for vid, path, dur, off in covers:
        rows.append(SongRow(song_id=song_id, version_id=vid, audio_type="cover", path=path, duration=dur,
                            split=split, alignment=[[0.0, off], [orig_dur, orig_dur + off]]))
    return rows


def make_songs(root: str, n_songs: int = 3, n_covers: int = 2, seed: int = 0, phrase_s=(8.5, 10.0),
               n_phrases: int = 2, split: str = "train"):
    """Write ``n_songs`` synthetic songs (original + covers, wav) under ``root``; return (SongTable, truth).

    Each original: ``n_phrases`` distinct phrases between 1.5 s silences. Cover k: delayed by a known
    offset. ``truth[song_id]`` holds the phrase bounds of the original.
    """
    from chadml.audio import save
    from chadml.data import SongTable
    os.makedirs(root, exist_ok=True)
    rows, truth = [], {}
    for s in range(n_songs):
        rng = np.random.default_rng(seed * 1000 + s)
        sid = f"song{s:03d}"
        parts: list = [1.5]
        for _ in range(n_phrases):
            parts += [phrase(rng, float(rng.uniform(*phrase_s))), 1.5]
        y, bounds = vocal(parts)
        truth[sid] = bounds
        op = os.path.join(root, f"{sid}-o.wav")
        save(op, y, SR)
        covers = []
        for k in range(n_covers):
            off = float(np.round(rng.uniform(0.5, 6.0), 3))
            c = cover_of(y, off, rng)
            cp = os.path.join(root, f"{sid}-c{k}.wav")
            save(cp, c, SR)
            covers.append((f"{sid}-c{k}", cp, len(c) / SR, off))
        rows += song_rows(sid, op, len(y) / SR, covers, split=split)
    return SongTable(rows), truth
