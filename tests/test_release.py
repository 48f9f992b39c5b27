"""The release training preset (a tiny run end to end), the fp16 export and the shipped model."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from chadml import release
from chadml.index import fingerprinter_id
from chadml.models import (BUILTIN, checkpoint_id, default_model_path, is_builtin, load_checkpoint,
                           load_fingerprinter, resolve_model)

TINY = release.ReleaseConfig(n_songs=4, n_covers=0, hummings_per_song=2, hummers=2, song_seconds=(10.0, 12.0),
                             humming_seconds=(3.0, 5.0), test_fraction=0.25, epochs0=1, steps_per_epoch=2,
                             batch_size=8, width=4, hum_styles=("mm", "whistle"), channel_p=0.5)


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    summary = release.run_release(out, config=TINY, progress=False)
    return out, summary


def test_release_run_exports_a_loadable_fp16_model(tiny_release):
    out, summary = tiny_release
    path = os.path.join(out, "chad-qbh.pt")
    assert summary["model"]["path"] == path and os.path.getsize(path) == summary["model"]["bytes"]
    state = torch.load(path, weights_only=True)
    floats = [v for v in state["model"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert state["optimizer"] is None and state["extra"]["card"]["config"]["n_songs"] == 4
    fp = load_fingerprinter(path)
    assert all(p.dtype == torch.float32 for p in fp.model.parameters())
    # one id for the file and for the model it loads into (an index built with either matches)
    assert checkpoint_id(path) == fingerprinter_id(fp) == summary["model"]["model_id"]
    y = np.sin(2 * np.pi * 220 * np.arange(4 * 16000) / 16000).astype(np.float32)
    fps, _ = fp.from_audio(y, sr=16000)
    assert fps.shape[1] == 128 and np.isfinite(fps).all()
    # the export carries the int8 ranges of the model as shipped: it fingerprints in int8 by default
    from chadml.models import quant
    ranges = state["extra"][quant.RANGES_KEY]
    assert ranges and all(v.dtype == torch.float32 and v.shape == (2,) for v in ranges.values())
    if quant.int8_supported() and not os.environ.get("CHAD_PRECISION"):
        assert fp.precision == "int8" and fp.int8_encoder() is not None
        from chadml.models import Fingerprinter
        ref, _ = Fingerprinter(fp.model, fp.feature_config, fp.window_config, precision="fp32").from_audio(y, 16000)
        assert float((fps * ref).sum(1).min()) > 0.95


def test_release_never_trains_on_held_out_tunes(tiny_release):
    out, summary = tiny_release
    from chadml.corpus import held_out
    from chadml.data import SongTable
    songs = SongTable.read(os.path.join(out, "corpus", "songs.csv"))
    ids = [o.extra["tune_id"] for o, _ in songs.songs().values()]
    assert len(ids) == 4 and not any(held_out(t) for t in ids)
    assert all(not held_out(t.id) for t in release.training_tunes(30))


def test_release_resumes_without_redoing_work(tiny_release):
    out, first = tiny_release
    before = os.path.getmtime(os.path.join(out, "loop", "M0.pt"))
    again = release.run_release(out, config=TINY, progress=False)
    assert again["model"]["model_id"] == first["model"]["model_id"]
    assert os.path.getmtime(os.path.join(out, "loop", "M0.pt")) == before
    # the resumed run adds its seconds to those the first run recorded (the card tells the whole time)
    for k in ("corpus_s", "train_s", "total_s"):
        assert again["seconds"][k] >= first["seconds"][k]


def test_loop_flag_goes_with_the_release_preset(tmp_path, capsys):
    from chadml.cli.main import main
    assert main(["train", "--data", "x.csv", "--out", str(tmp_path / "m.pt"), "--loop", "1"]) == 2
    assert "--loop goes with --preset release" in capsys.readouterr().err
    assert main(["train", "--preset", "release", "--out", str(tmp_path / "r"), "--loop", "-1"]) == 2
    assert "--loop must be an integer >= 0" in capsys.readouterr().err


def test_release_config_round_trip_and_budgets_in_steps():
    d = release.RELEASE.to_dict()
    assert release.ReleaseConfig.from_dict(d) == release.RELEASE
    assert "minutes" not in " ".join(d)                    # budgets are epochs and steps only
    with pytest.raises(ValueError, match="unknown key"):
        release.ReleaseConfig.from_dict({"n_sogs": 3})
    # the release's loop mines with the matching the shipped model was trained with (rigid), not the default
    from chadml.mining import MiningConfig
    assert release.RELEASE_MINING == MiningConfig.rigid() != MiningConfig()
    assert not release.RELEASE_MINING.tempo_scan and release.RELEASE_MINING.cross_check == 0.05


def test_builtin_names_resolve():
    assert is_builtin(None) and is_builtin(BUILTIN) and not is_builtin("x.pt")
    assert resolve_model("x.pt") == "x.pt"


@pytest.mark.skipif(not os.path.exists(default_model_path()), reason="no shipped model in this checkout")
def test_the_shipped_model_loads_weights_only_and_is_small():
    path = resolve_model(None)
    assert os.path.getsize(path) <= 15 * 2 ** 20
    state = load_checkpoint(BUILTIN)
    assert state["kind"] == "chad-encoder" and "card" in state["extra"]
    fp = load_fingerprinter(BUILTIN)
    assert checkpoint_id(BUILTIN) == fingerprinter_id(fp)


def test_the_cli_names_the_shipped_model_as_the_library_does():
    from chadml.cli.options import BUILTIN_MODEL
    assert BUILTIN_MODEL == BUILTIN


@pytest.mark.skipif(not os.path.exists(default_model_path()), reason="no shipped model in this checkout")
def test_the_model_card_describes_the_shipped_model():
    """MODEL_CARD.md names the model id of chadml/assets/chad-qbh.pt, and its config is the release preset's."""
    import re
    card = open(os.path.join(os.path.dirname(default_model_path()), "MODEL_CARD.md"), encoding="utf-8").read()
    ids = re.findall(r"model id \| `([0-9a-f]{16})`", card)
    assert ids == [checkpoint_id(BUILTIN)]
    state = load_checkpoint(BUILTIN)
    assert release.ReleaseConfig.from_dict(state["extra"]["card"]["config"]) == release.RELEASE
    assert state["encoder_config"].get("front", "none") == release.RELEASE.front
