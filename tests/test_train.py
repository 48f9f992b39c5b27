"""Training: the aligned group sampler, checkpoints (atomic, exact resume), fragment retrieval, `chad train`."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from chadml import ChadError
from chadml.data import Manifest
from chadml.features import LONG, SHORT, FeatureConfig
from chadml.training.retrieval import rank_metrics
from chadml.training.train import (FragmentBank, GroupBatchSampler, TrainConfig, checkpoint_id, fragment_retrieval,
                                   load_checkpoint, load_fingerprinter, train)

TINY = dict(epochs=2, batch_size=8, per_group=2, width=4, steps_per_epoch=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from chadml.corpus import build_corpus
    root = tmp_path_factory.mktemp("corpus")
    return build_corpus(root, n_songs=6, n_covers=1, hummings_per_song=2, song_seconds=(14, 18),
                        humming_seconds=(4, 6), test_fraction=0.34, workers=1)


@pytest.fixture(scope="module")
def manifest(corpus):
    return Manifest.read(corpus.hummings)


@pytest.fixture(scope="module")
def bank(manifest):
    return FragmentBank(manifest, FeatureConfig(), split="train", progress_bar=False)


def test_bank_holds_every_train_group_with_features(manifest, bank):
    groups = {k: v for k, v in manifest.select(split="train").groups().items() if len(v) >= 2}
    assert bank.group_ids == sorted(groups)
    for rows, feats in zip(bank.rows, bank.features):
        assert len(rows) == len(feats) >= 2
        for r, f in zip(rows, feats):
            assert f.shape[0] == 84
            # one CQT frame per hop of the fragment's duration
            assert abs(f.shape[1] - (r.end - r.start) * 16000 / 512) <= 2


def test_sampler_gives_aligned_windows_of_k_groups(bank):
    wf, _ = SHORT.frames(FeatureConfig().frame_rate)
    s = GroupBatchSampler(bank, wf, groups_per_batch=3, per_group=4)
    x, labels = s.sample(np.random.default_rng(0))
    assert x.shape[1:] == (84, wf) and x.dtype == np.float32
    assert len(np.unique(labels)) == min(3, len(bank))
    for g in np.unique(labels):
        assert 2 <= np.sum(labels == g) <= 4
    # the same seed draws the same batch
    x2, l2 = s.sample(np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(labels, l2)


def test_sampler_window_start_is_shared_within_a_group():
    class Bank:  # two groups whose fragments are identical ramps: aligned crops must be identical
        feature_config = FeatureConfig()
        features = [[np.tile(np.arange(200, dtype=np.float32), (84, 1))] * 3,
                    [np.tile(np.arange(150, dtype=np.float32), (84, 1)) * 2] * 2]

        def __len__(self):
            return 2

    s = GroupBatchSampler(Bank(), 50, groups_per_batch=2, per_group=4)
    for seed in range(5):
        x, labels = s.sample(np.random.default_rng(seed))
        for g in np.unique(labels):
            w = x[labels == g]
            assert np.all(w == w[0])


def test_sampler_places_windows_at_the_same_music_in_fragments_of_other_tempi():
    class Bank:  # one group: the same ramp of "music" 0..1 over 100, 120 and 80 frames (three tempi)
        feature_config = FeatureConfig()
        features = [[np.tile(np.linspace(0, 1, n, dtype=np.float32), (84, 1)) for n in (100, 120, 80)],
                    [np.zeros((84, 100), np.float32)] * 2]

        def __len__(self):
            return 2

    s = GroupBatchSampler(Bank(), 20, groups_per_batch=2, per_group=3)
    starts = []
    for seed in range(30):
        x, labels = s.sample(np.random.default_rng(seed))
        w = x[labels == 0]
        assert len(w) == 3
        # the windows sit at the same relative place (their first frames differ by less than u * (W / T) of the music)
        first = np.sort(w[:, 0, 0])
        assert first[-1] - first[0] <= 0.3 * (20 / 80) + 1 / 79
        starts.append(first[0])
    assert max(starts) - min(starts) > 0.4             # and the position varies from batch to batch


def test_sampler_groups_per_song_draws_songs_in_pairs_and_fills_up():
    from types import SimpleNamespace as NS

    class Bank:  # 5 songs: song0..song3 with 3 groups each, song4 with 1; group g's feature is filled with g
        feature_config = FeatureConfig()
        rows = [[NS(group_id=f"song{s}")] * 2 for s in range(4) for _ in range(3)] + [[NS(group_id="song4")] * 2]
        features = [[np.full((84, 30), g, np.float32)] * 2 for g in range(13)]

        def __len__(self):
            return 13

    bank = Bank()
    song_of = [str(r[0].group_id) for r in bank.rows]
    s = GroupBatchSampler(bank, 10, groups_per_batch=6, per_group=2, groups_per_song=2)
    assert len(s.songs) == 4                                   # song4 has one group only
    for seed in range(20):
        x, labels = s.sample(np.random.default_rng(seed))
        gs = [int(x[labels == g][0, 0, 0]) for g in np.unique(labels)]
        assert len(gs) == 6 and len(set(gs)) == 6
        songs = [song_of[g] for g in gs]
        assert all(songs.count(t) >= 2 for t in set(songs))   # 3 songs x 2 groups
    big = GroupBatchSampler(bank, 10, groups_per_batch=12, per_group=2, groups_per_song=2)
    x, labels = big.sample(np.random.default_rng(0))          # 4 songs x 2, then 4 more groups at random
    assert len(np.unique(labels)) == 12
    plain = GroupBatchSampler(bank, 10, groups_per_batch=6, per_group=2)
    a = plain.sample(np.random.default_rng(1))[1]
    assert np.array_equal(a, GroupBatchSampler(bank, 10, 6, 2, 1).sample(np.random.default_rng(1))[1])
    with pytest.raises(ValueError, match="groups_per_song"):
        TrainConfig(groups_per_song=0)


def test_train_writes_a_checkpoint_that_loads_into_a_fingerprinter(tmp_path, manifest, bank):
    out = tmp_path / "m.pt"
    train(manifest, out, config=TrainConfig(**TINY), bank=bank, progress_bar=False)
    state = load_checkpoint(out)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert all(np.isfinite(h["loss"]) and h["fragments_per_s"] > 0 for h in state["history"])
    assert state["feature_config"] == FeatureConfig().to_dict()
    assert os.path.exists(tmp_path / "m.loss.png")
    fp = load_fingerprinter(out)
    fps, starts = fp.from_audio(np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32))
    assert fps.shape[1] == 128 and np.allclose(np.linalg.norm(fps, axis=1), 1, atol=1e-4)
    assert len(checkpoint_id(out)) == 16 and checkpoint_id(out) == checkpoint_id(out)


def test_resume_continues_exactly(tmp_path, manifest, bank):
    cfg = TrainConfig(**{**TINY, "epochs": 2})
    a = tmp_path / "a.pt"
    train(manifest, a, config=cfg, bank=bank, progress_bar=False)
    b = tmp_path / "b.pt"
    train(manifest, b, config=TrainConfig(**{**TINY, "epochs": 1}), bank=bank, progress_bar=False)
    train(manifest, b, config=cfg, bank=bank, resume=True, progress_bar=False)
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sb["epoch"] == 2
    for k in sa["model"]:
        torch.testing.assert_close(sa["model"][k], sb["model"][k], rtol=0, atol=0)
    assert [h["loss"] for h in sa["history"]] == [h["loss"] for h in sb["history"]]


def test_resume_with_another_feature_config_is_refused(tmp_path, manifest, bank):
    out = tmp_path / "m.pt"
    train(manifest, out, config=TrainConfig(**{**TINY, "epochs": 1}), bank=bank, progress_bar=False)
    with pytest.raises(ChadError, match="window config"):
        train(manifest, out, window_config=LONG, config=TrainConfig(**TINY), resume=True, progress_bar=False)
    with pytest.raises(ChadError, match="fine-tune"):
        train(manifest, tmp_path / "n.pt", feature_config=FeatureConfig(kind="crepe", crepe_model="tiny"),
              init=out, config=TrainConfig(**TINY), progress_bar=False)


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ChadError, match="bad.pt"):
        load_fingerprinter(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ChadError, match="not a chad encoder checkpoint"):
        load_checkpoint(other)


def test_train_config_checks():
    with pytest.raises(ValueError, match="per_group"):
        TrainConfig(per_group=1)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=4, per_group=4)
    with pytest.raises(ValueError, match="TrainConfig has unknown key"):
        TrainConfig.from_dict({"epochs": 1, "learning_rate": 3})
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()
    assert TrainConfig().groups_per_batch == 8


def test_cosine_schedule_runs_from_lr_down_to_five_percent(tmp_path, manifest, bank):
    c = TrainConfig(epochs=4, lr=1e-3, lr_schedule="cosine")
    want = [1e-3 * (0.05 + 0.95 * (1 + math.cos(math.pi * e / 4)) / 2) for e in range(4)]
    assert [c.lr_at(e) for e in range(4)] == pytest.approx(want, rel=1e-12)
    assert c.lr_at(0) == pytest.approx(1e-3) and TrainConfig(epochs=4).lr_at(3) == 1e-3
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    cfg = TrainConfig(epochs=2, batch_size=8, width=4, steps_per_epoch=1, augment=False, lr_schedule="cosine")
    out = train(manifest, str(tmp_path / "m.pt"), config=cfg, bank=bank, progress_bar=False)
    state = load_checkpoint(out)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(cfg.lr_at(1))


def test_manifest_without_groups_is_refused(manifest):
    one = Manifest([manifest.rows[0]])
    with pytest.raises(ValueError, match="no group with two or more fragments"):
        FragmentBank(one, FeatureConfig(), split=None, progress_bar=False)


def test_rank_metrics_on_known_similarities():
    # 3 queries of groups 0, 1, 2; targets: two windows of group 0, one of 1 and of 2
    tl = np.array([0, 0, 1, 2])
    ql = np.array([0, 1, 2])
    sim = np.array([[0.1, 0.9, 0.5, 0.2],    # group 0 best (0.9): rank 1
                    [0.8, 0.1, 0.7, 0.2],    # group 1 (0.7) behind group 0 (0.8): rank 2
                    [0.3, 0.2, 0.4, 0.1]])   # group 2 (0.1) last: rank 3
    m = rank_metrics(sim, ql, tl)
    assert m["top1"] == pytest.approx(1 / 3) and m["top10"] == 1.0
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert m["queries"] == 3 and m["targets"] == 3


def test_fragment_retrieval_reports_model_and_raw(tmp_path, manifest, bank):
    out = tmp_path / "m.pt"
    train(manifest, out, config=TrainConfig(**{**TINY, "epochs": 1}), bank=bank, progress_bar=False)
    res = fragment_retrieval(load_fingerprinter(out), manifest, split="test", methods=("model", "raw", "untrained"))
    for m in ("model", "raw", "untrained"):
        assert set(res[m]) == {"top1", "top10", "mrr", "queries", "targets"}
        assert 0 <= res[m]["top1"] <= res[m]["top10"] <= 1 and res[m]["queries"] > 0
    with pytest.raises(ValueError, match="unknown method"):
        fragment_retrieval(load_fingerprinter(out), manifest, split="test", methods=("nope",))


def test_cli_train(tmp_path, corpus, capsys):
    from chadml.cli import main
    out = tmp_path / "cli.pt"
    rc = main(["--quiet", "train", "--data", corpus.hummings, "--out", str(out), "--epochs", "1", "--width", "4",
               "--batch-size", "8", "--steps-per-epoch", "1", "--lr-schedule", "cosine"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["epoch"] == 1 and os.path.exists(out)
    assert load_checkpoint(out)["train_config"]["lr_schedule"] == "cosine"
    assert main(["train", "--data", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert "--data" in capsys.readouterr().err
    for flags, named in ((["--epochs", "0"], "--epochs"), (["--batch-size", "3"], "--batch-size"),
                         (["--device", "nodevice"], "--device")):
        assert main(["-q", "train", "--data", corpus.hummings, "--out", str(out)] + flags) == 2
        err = capsys.readouterr().err.strip()
        assert named in err and "TrainConfig" not in err and len(err.splitlines()) == 1


def test_train_takes_its_model_loss_miner_and_sampler(tmp_path, manifest, bank):
    from pytorch_metric_learning import losses

    from chadml.models.encoder import ResNet18Encoder
    calls = {"loss": 0, "miner": 0, "sample": 0}
    ntxent = losses.NTXentLoss(temperature=0.1)

    def loss(emb, labels, pairs):
        calls["loss"] += 1
        assert pairs is None
        return ntxent(emb, labels)

    def miner(emb, labels):
        calls["miner"] += 1
        return None

    wf, _ = SHORT.frames(FeatureConfig().frame_rate)
    inner = GroupBatchSampler(bank, wf, groups_per_batch=3, per_group=2)

    class Sampler:
        bank = inner.bank
        k = inner.k

        def sample(self, rng):
            calls["sample"] += 1
            return inner.sample(rng)

    model = ResNet18Encoder(width=4, dim=16)
    cfg = TrainConfig(epochs=1, batch_size=8, per_group=2, steps_per_epoch=3, augment=False)
    out = train(manifest, tmp_path / "m.pt", config=cfg, model=model, loss=loss, miner=miner, sampler=Sampler(),
                progress_bar=False)
    assert calls == {"loss": 3, "miner": 3, "sample": 3}
    state = load_checkpoint(out)
    assert state["encoder_config"]["dim"] == 16 and state["epoch"] == 1
    with pytest.raises(ValueError, match="model= or init="):
        train(manifest, tmp_path / "n.pt", config=cfg, model=model, init=out, bank=bank, progress_bar=False)
