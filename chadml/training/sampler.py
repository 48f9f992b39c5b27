"""The training set in memory and the batches drawn from it.

:class:`FragmentBank` holds the features of every fragment of a manifest, grouped, computed once;
:class:`GroupBatchSampler` draws K groups x up to ``per_group`` fragments with one aligned random window
position per group (the windows of a group are variations of the same music: the positives).

Example
-------
>>> import numpy as np
>>> crop_window(np.arange(6, dtype=np.float32).reshape(1, 6), 4, 3).tolist()
[[4.0, 5.0, 0.0]]
"""
from __future__ import annotations

import numpy as np

from ..audio import load
from ..errors import ChadError
from ..features import extract_features
from ..util import progress

__all__ = ["FragmentBank", "GroupBatchSampler", "crop_window", "select_split"]


class FragmentBank:
    """Features of every fragment of a manifest, grouped, computed once (the training set in memory).

    Parameters
    ----------
    manifest : chadml.data.Manifest
        Fragment rows (path + start/end seconds). Groups with fewer than two fragments are dropped
        (they give no positive pair).
    feature_config : chadml.features.FeatureConfig
    split : str or None
        Keep only rows of that split ("train"); ``None`` keeps all.
    """

    def __init__(self, manifest, feature_config, *, split: str | None = "train", progress_bar: bool = True):
        groups = {g: rs for g, rs in select_split(manifest, split).groups().items() if len(rs) >= 2}
        if not groups:
            raise ValueError(f"the manifest has no group with two or more fragments"
                             f"{'' if split is None else f' in split {split!r}'}: nothing to train on")
        self.feature_config = feature_config
        self.group_ids: list[str] = sorted(groups)
        self.rows: list[list] = [sorted(groups[g], key=lambda r: str(r.id)) for g in self.group_ids]
        self.features: list[list[np.ndarray]] = []
        for rows in progress(self.rows, desc="features", unit="group", disable=not progress_bar or None):
            feats = []
            for r in rows:
                seg = load(r.path, sr=feature_config.sr, start=float(r.start), end=float(r.end))
                if seg.size < feature_config.min_samples:
                    raise ChadError(f"fragment {r.id} of {r.path} [{r.start}, {r.end}] s is too short or outside "
                                    f"the file ({seg.size} samples)")
                feats.append(extract_features(seg, feature_config))
            self.features.append(feats)

    def __len__(self) -> int:
        return len(self.group_ids)

    @property
    def n_fragments(self) -> int:
        return sum(len(f) for f in self.features)


class GroupBatchSampler:
    """K groups x up to ``per_group`` fragments, one random window position per group.

    ``sample(rng)`` returns ``(windows float32 (N, F, Wf), labels int64 (N,))``. The fragments of a group
    are aligned: they hold the same music from start to end, at their own tempo (a mined cover fragment
    is as long as the cover takes to sing the original's fragment). One relative position ``u`` in
    ``[0, 1)`` is drawn per group, and each fragment's window starts ``floor(u * (T - Wf + 1))`` frames in
    (``T``: its length in frames): the same start in every fragment of one length (the paper's equal-
    duration groups), the same place in the music in fragments of different tempi.
    """

    def __init__(self, bank: FragmentBank, window_frames: int, groups_per_batch: int, per_group: int,
                 groups_per_song: int = 1):
        if len(bank) < 2:
            raise ValueError(f"training needs at least 2 groups (negatives), got {len(bank)}")
        self.bank = bank
        self.wf = int(window_frames)
        self.k = min(groups_per_batch, len(bank))
        self.per_group = per_group
        self.groups_per_song = int(groups_per_song)
        songs: dict[str, list[int]] = {}
        if self.groups_per_song > 1:
            for g, rows in enumerate(bank.rows):
                songs.setdefault(str(rows[0].group_id), []).append(g)
        self.songs = [v for _, v in sorted(songs.items()) if len(v) >= self.groups_per_song]

    def _groups(self, rng: np.random.Generator) -> np.ndarray:
        """The batch's groups: ``groups_per_song`` from each of random songs that have as many, then random
        other groups up to K."""
        if self.groups_per_song <= 1 or not self.songs:
            return rng.choice(len(self.bank), size=self.k, replace=False)
        n_songs = min(self.k // self.groups_per_song, len(self.songs))
        gs: list[int] = []
        for s in rng.choice(len(self.songs), size=n_songs, replace=False):
            gs += rng.choice(self.songs[s], size=self.groups_per_song, replace=False).tolist()
        if len(gs) < self.k:
            rest = np.setdiff1d(np.arange(len(self.bank)), gs)
            gs += rng.choice(rest, size=self.k - len(gs), replace=False).tolist()
        return np.asarray(gs, dtype=np.int64)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        gs = self._groups(rng)
        out, labels = [], []
        for g in gs:
            feats = self.bank.features[g]
            n = min(self.per_group, len(feats))
            pick = rng.choice(len(feats), size=n, replace=False)
            u = float(rng.random())
            for i in pick:
                span = max(feats[i].shape[1] - self.wf, 0) + 1
                out.append(crop_window(feats[i], min(int(u * span), span - 1), self.wf))
                labels.append(g)
        return np.stack(out), np.asarray(labels, dtype=np.int64)


def crop_window(feat: np.ndarray, start: int, wf: int) -> np.ndarray:
    """The ``wf`` frames of ``feat`` (F, T) from frame ``start``; a fragment shorter than that is padded
    with its minimum (silence in log scale)."""
    w = feat[:, start:start + wf]
    if w.shape[1] < wf:
        pad = np.full((feat.shape[0], wf - w.shape[1]), feat.min() if feat.size else 0.0, dtype=feat.dtype)
        w = np.concatenate([w, pad], axis=1)
    return w


def select_split(manifest, split: str | None):
    """The rows of ``manifest`` in ``split`` (all rows when ``split`` is None)."""
    return manifest if split is None else manifest.select(split=split)
