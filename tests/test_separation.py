"""Vocal separation: the identity backend, Spleeter's model-file checks and loading (with a fake spleeter
module), clear errors, and the wiring of a separator into indexing, the F0 index and queries."""
from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest

from chadml.separation import (SPLEETER_FILES, IdentitySeparator, Separator, SeparatorUnavailable, SpleeterSeparator,
                               get_separator)

SR = 16000


class Halver:
    """A stand-in separator: records its calls and returns half the input."""
    name = "halver"

    def __init__(self):
        self.calls = []

    def separate(self, y, sr):
        self.calls.append((len(y), sr))
        return (np.asarray(y, np.float32) * 0.5).astype(np.float32)


def model_dir(tmp_path, files=SPLEETER_FILES, empty=()):
    d = tmp_path / "2stems"
    d.mkdir()
    for f in files:
        (d / f).write_bytes(b"" if f in empty else b"weights")
    return d


@pytest.fixture
def fake_spleeter(monkeypatch):
    """A fake ``spleeter`` package: its Separator records the config it was given and 'separates' by
    returning the input as vocals."""
    seen = {}

    class FakeSeparator:
        def __init__(self, params_descriptor, multiprocess=True):
            import json
            params = json.load(open(params_descriptor))
            d = params["model_dir"]
            seen["params"] = params
            seen["files"] = sorted(os.listdir(d))
            seen["targets"] = {f: os.path.realpath(os.path.join(d, f)) for f in os.listdir(d) if f != ".probe"}
            seen["multiprocess"] = multiprocess

        def separate(self, waveform, audio_descriptor=""):
            assert waveform.ndim == 2 and waveform.shape[1] == 2 and waveform.dtype == np.float32
            seen["n"] = waveform.shape[0]
            return {"vocals": waveform * 0.25, "accompaniment": waveform * 0.75}

    pkg = types.ModuleType("spleeter")
    sep_mod = types.ModuleType("spleeter.separator")
    sep_mod.Separator = FakeSeparator
    utils = types.ModuleType("spleeter.utils")
    conf = types.ModuleType("spleeter.utils.configuration")
    conf.load_configuration = lambda d: {"model_dir": "2stems", "sample_rate": 44100,
                                         "instrument_list": ["vocals", "accompaniment"]}
    for name, mod in (("spleeter", pkg), ("spleeter.separator", sep_mod), ("spleeter.utils", utils),
                      ("spleeter.utils.configuration", conf)):
        monkeypatch.setitem(sys.modules, name, mod)
    return seen


def test_identity_and_get_separator():
    y = np.ones(10, np.float32)
    assert IdentitySeparator().separate(y, SR) is y
    assert get_separator(None).name == "identity" and get_separator("identity").name == "identity"
    h = Halver()
    assert get_separator(h) is h and isinstance(h, Separator)
    with pytest.raises(ValueError, match="spleeter"):
        get_separator("demucs")
    with pytest.raises(TypeError):
        get_separator(42)


def test_spleeter_model_files_are_checked_before_anything(tmp_path, fake_spleeter):
    with pytest.raises(FileNotFoundError, match="separator-model"):
        SpleeterSeparator(None)
    with pytest.raises(FileNotFoundError, match="2stems.tar.gz"):
        SpleeterSeparator(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()                                   # what a failed download leaves behind
    with pytest.raises(FileNotFoundError, match="model.meta") as e:
        SpleeterSeparator(empty)
    assert "untrained" in str(e.value) and "pip install .[separation]" in str(e.value)
    d = model_dir(tmp_path, empty=("model.index",))
    with pytest.raises(FileNotFoundError, match="model.index"):
        SpleeterSeparator(d)
    assert "params" not in fake_spleeter            # spleeter was never asked to load anything


def test_spleeter_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spleeter", None)
    monkeypatch.setitem(sys.modules, "spleeter.separator", None)
    with pytest.raises(SeparatorUnavailable, match=r"pip install \.\[separation\]"):
        SpleeterSeparator(model_dir(tmp_path))


def test_spleeter_loads_from_the_given_folder_and_returns_vocals(tmp_path, fake_spleeter):
    d = model_dir(tmp_path)
    before = sorted(os.listdir(d))
    sep = get_separator("spleeter", d)
    assert isinstance(sep, SpleeterSeparator) and isinstance(sep, Separator)
    t = np.arange(SR) / SR
    y = (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    v = sep.separate(y, SR)
    assert v.shape == y.shape and v.dtype == np.float32
    np.testing.assert_allclose(v[1000:-1000], 0.25 * y[1000:-1000], atol=0.01)   # resampled 16k -> 44.1k -> 16k
    assert fake_spleeter["n"] == 44100 and fake_spleeter["multiprocess"] is False
    # Spleeter saw its .probe (so it never downloads) and links to exactly the user's files
    assert fake_spleeter["files"] == sorted([".probe", *SPLEETER_FILES])
    assert fake_spleeter["targets"] == {f: os.path.realpath(d / f) for f in SPLEETER_FILES}
    assert sorted(os.listdir(d)) == before                                         # the user's folder is untouched
    import pickle
    assert pickle.loads(pickle.dumps(sep)).model_dir == sep.model_dir               # Ray workers get it


def test_separator_is_applied_to_songs_when_indexing(tmp_path):
    from chadml.index import SongIndex
    from tests._searchkit import melody, tiny_fingerprinter
    fp = tiny_fingerprinter()
    fp.model_id = "m"
    idx = SongIndex.create(tmp_path / "idx", fingerprinter=fp, model_id="m")
    rng = np.random.default_rng(0)
    songs = [("a", melody(rng, 5.0)), ("b", melody(rng, 6.0))]
    h = Halver()
    idx.add_songs(songs, fp, separator=h, progress_bar=False)
    # songs are prepared on a thread pool (index/ingest.py): each is separated once, in either order
    assert sorted(h.calls) == sorted([(len(songs[0][1]), SR), (len(songs[1][1]), SR)])


def test_separator_is_applied_to_queries_and_f0_songs(tmp_path):
    from chadml.search.f0 import F0Config, F0Index
    from chadml.search import Searcher
    from tests._searchkit import fp_index, melody, tiny_fingerprinter
    rng = np.random.default_rng(1)
    fp = tiny_fingerprinter()
    fp.model_id = "test-model"
    idx = fp_index(tmp_path / "idx", {"a": fp.from_audio(melody(rng, 6.0))[0]})
    h = Halver()
    s = Searcher(idx, fingerprinter=fp, separator=h)
    s.query(melody(rng, 4.0), sr=SR, top=1)
    assert h.calls == [(4 * SR, SR)] and "separation_s" in s.last_timing
    h2 = Halver()
    F0Index.build(tmp_path / "f0", [("a", melody(rng, 3.0))], F0Config(crepe_model="tiny"), separator=h2,
                  progress_bar=False)
    assert h2.calls == [(3 * SR, SR)]
    assert F0Index.open(tmp_path / "f0").catalog["separator"] == "halver"


def test_cli_separator_options(tmp_path, capsys):
    from chadml.cli import main
    rc = main(["-q", "index", "build", "--model", str(tmp_path / "m.pt"), "--songs", str(tmp_path),
               "--out", str(tmp_path / "i"), "--separator", "spleeter"])
    assert rc == 2 and "--separator-model" in capsys.readouterr().err
    rc = main(["-q", "f0-index", "build", "--songs", str(tmp_path), "--out", str(tmp_path / "f"),
               "--separator", "spleeter", "--separator-model", str(tmp_path / "nope")])
    assert rc == 2 and "Spleeter model directory not found" in capsys.readouterr().err
    rc = main(["-q", "query", "--index", str(tmp_path / "i"), "x.wav", "--separator-model", str(tmp_path)])
    assert rc == 2 and "only used with --separator spleeter" in capsys.readouterr().err
    for cmd in (["mine"], ["index", "build"], ["query"], ["f0-index", "build"]):
        with pytest.raises(SystemExit):
            main(cmd + ["--help"])
        assert "--separator-model" in capsys.readouterr().out


def test_real_spleeter_where_installed(tmp_path):
    pytest.importorskip("spleeter")
    d = os.environ.get("CHAD_SPLEETER_MODEL")
    if not d:
        pytest.skip("set CHAD_SPLEETER_MODEL to a 2-stems model folder to test the real Spleeter")
    sep = SpleeterSeparator(d)
    y = np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32) * 0.1
    v = sep.separate(y, SR)
    assert v.shape == y.shape and np.isfinite(v).all()


def test_cli_options_name_the_separators(tmp_path):
    import argparse

    from chadml.cli.options import SEPARATOR_CHOICES, add_separator_args, separator_from_args
    from chadml.errors import UsageError
    from chadml.separation import SEPARATORS
    assert SEPARATOR_CHOICES == SEPARATORS
    p = argparse.ArgumentParser()
    add_separator_args(p)
    assert isinstance(separator_from_args(p.parse_args([])), IdentitySeparator)
    with pytest.raises(UsageError, match="--separator-model is only used with --separator spleeter"):
        separator_from_args(p.parse_args(["--separator-model", str(tmp_path)]))
    with pytest.raises(FileNotFoundError, match="Spleeter model directory not found"):
        separator_from_args(p.parse_args(["--separator", "spleeter", "--separator-model", str(tmp_path / "no")]))
