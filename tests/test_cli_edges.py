"""The rough edges a new user meets (issue 14, part B): `chad index build` on an existing or killed index,
`chad evaluate` against an index with none of the truth's songs, the demo's honesty about --quick, and the
smaller items (flags named in errors, --device, a missing FAISS file, bad checkpoints, formats, Ctrl-C of
`index add`, -q after the command, long queries read in part, hidden files, help texts)."""
from __future__ import annotations

import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")


def _tone(seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


# ---- audio files: formats, hidden files ----------------------------------------------------------------

#: the container (and subtype) soundfile writes for each extension of AUDIO_EXTENSIONS
_FORMATS = {".wav": ("WAV", None), ".flac": ("FLAC", None), ".mp3": ("MP3", None), ".ogg": ("OGG", "VORBIS"),
            ".oga": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"), ".aiff": ("AIFF", None), ".aif": ("AIFF", None),
            ".au": ("AU", None)}


def test_every_listed_audio_extension_is_readable(tmp_path):
    import soundfile as sf
    from chadml import audio
    from chadml.index import AUDIO_EXTENSIONS
    assert ".m4a" not in AUDIO_EXTENSIONS            # soundfile cannot read AAC: not offered
    assert set(AUDIO_EXTENSIONS) == set(_FORMATS)
    for ext, (fmt, subtype) in _FORMATS.items():
        p = tmp_path / f"x{ext}"
        sr = 48000 if subtype == "OPUS" else 16000
        sf.write(str(p), _tone(1.0, sr), sr, format=fmt, subtype=subtype)
        y = audio.load(p)
        assert abs(len(y) - 16000) < 2000 and np.max(np.abs(y)) > 0.1, ext


def test_hidden_and_appledouble_files_are_not_songs(tmp_path):
    from chadml import audio
    from chadml.index import find_audio_files, song_items
    audio.save(str(tmp_path / "a.flac"), _tone())
    (tmp_path / "._a.flac").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)    # macOS AppleDouble
    (tmp_path / ".hidden.wav").write_bytes(b"RIFF")
    for d in (".git", "__MACOSX", "sub"):
        (tmp_path / d).mkdir()
        audio.save(str(tmp_path / d / "b.flac"), _tone())
    found = [os.path.relpath(p, tmp_path) for p in find_audio_files(tmp_path)]
    assert found == ["a.flac", os.path.join("sub", "b.flac")]
    assert [i[0] for i in song_items(tmp_path)] == ["a", "b"]


# ---- chad index build: an existing --out, a killed build ------------------------------------------------

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model's checkpoint, six 6-second songs, and the index of a build of them in one go."""
    import sys
    sys.path.insert(0, TESTS)
    from _searchkit import melody, tiny_fingerprinter
    from _servekit import save_tiny_checkpoint
    from chadml import audio
    from chadml.cli.main import main
    root = tmp_path_factory.mktemp("edges")
    ckpt = save_tiny_checkpoint(tiny_fingerprinter(), root / "m.pt")
    songs = root / "songs"
    songs.mkdir()
    rng = np.random.default_rng(14)
    for i in range(6):
        audio.save(str(songs / f"s{i}.flac"), melody(rng, 6.0))
    assert main(["-q", "index", "build", "--model", ckpt, "--songs", str(songs), "--out", str(root / "whole")]) == 0
    return {"root": root, "model": ckpt, "songs": str(songs), "whole": str(root / "whole")}


def _one_line(capsys, *names: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    assert all(n in err for n in names), f"{err!r} lacks one of {names}"
    return err


def test_build_into_an_existing_index_says_what_to_do(setup, capsys, tmp_path):
    from chadml.cli.main import main
    build = ["index", "build", "--model", setup["model"], "--songs", setup["songs"]]
    assert main([*build, "--out", setup["whole"]]) == 2
    _one_line(capsys, "--out", "chad index add", "--skip-existing")
    (tmp_path / "f.txt").write_text("x")
    assert main([*build, "--out", str(tmp_path)]) == 2
    _one_line(capsys, "--out", "not a chad index")


_KILLED_BUILD = r"""
import os, signal, sys
sys.path[:0] = [{repo!r}, {tests!r}]
import chadml.index.build as b
from chadml.models.encoder import Fingerprinter
from chadml.cli.main import main
b.STEP_SONGS = 2                       # commit every two songs
calls = [0]
real = Fingerprinter.from_audio
def from_audio(self, *a, **kw):
    calls[0] += 1
    if calls[0] == 5:                  # midway: two steps committed, the third one half done
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *a, **kw)
Fingerprinter.from_audio = from_audio
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_build_resumes_with_the_same_command(setup, capsys, caplog, tmp_path):
    import subprocess
    import sys
    from chadml.cli.main import main
    from chadml.index import SongIndex
    out = str(tmp_path / "ix")
    argv = ["-q", "index", "build", "--model", setup["model"], "--songs", setup["songs"], "--out", out]
    r = subprocess.run([sys.executable, "-c", _KILLED_BUILD.format(repo=REPO, tests=TESTS), *argv],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -9, r.stderr
    idx = SongIndex.open(out)
    assert len(idx) == 4 and idx.unfinished_build["model"] == os.path.abspath(setup["model"])
    assert SongIndex.open(out).info()["unfinished_build"]
    # a query on it says that it is unfinished (and still answers from the songs in it)
    q = os.path.join(setup["songs"], "s1.flac")
    assert main(["query", "--index", out, q, "--top", "1"]) == 0
    cap = capsys.readouterr()
    assert "unfinished build" in cap.err + caplog.text and "s1" in cap.out
    # the same command continues it: the songs not yet in it are added, and the index is the one-go build's
    assert main(argv) == 0
    idx = SongIndex.open(out)
    whole = SongIndex.open(setup["whole"])
    assert idx.unfinished_build is None and [s.song_id for s in idx.songs()] == [s.song_id for s in whole.songs()]
    for s in whole.songs():
        np.testing.assert_array_equal(idx.fingerprints(s.song_id), whole.fingerprints(s.song_id))
    assert idx.faiss_params == whole.faiss_params
    assert main(argv) == 2          # now finished: building into it again says what to do
    _one_line(capsys, "--out", "finished")


def test_an_empty_killed_build_is_no_silent_no_match(setup, capsys, tmp_path):
    from chadml.cli.main import main
    from chadml.index import SongIndex
    from chadml.models import checkpoint_id
    out = tmp_path / "ix"
    # what an older chad's killed build left: an empty index, no mark
    SongIndex.create(out, model_id=checkpoint_id(setup["model"]), feature_config={}, window_config={"step_s": 0.25},
                     model_path=setup["model"])
    q = os.path.join(setup["songs"], "s1.flac")
    assert main(["query", "--index", str(out), q]) == 2
    _one_line(capsys, "--index", "no songs")
    # another model's unfinished build is not continued with this one
    other = tmp_path / "other"
    SongIndex.create(other, model_id="another-model", feature_config={}, window_config={"step_s": 0.25},
                     building={"songs": setup["songs"]})
    build = ["index", "build", "--model", setup["model"], "--songs", setup["songs"]]
    assert main([*build, "--out", str(other)]) == 2
    _one_line(capsys, "--out", "another model", "--model")
    assert main(["-q", *build, "--out", str(out)]) == 0         # the empty one is simply built
    assert len(SongIndex.open(out)) == 6


# ---- chad evaluate: the truth's songs against the index's ----------------------------------------------

def test_evaluate_fails_when_no_truth_song_is_in_the_index(setup, capsys, caplog, tmp_path):
    import shutil
    from chadml.cli.main import main
    queries = tmp_path / "queries"
    queries.mkdir()
    for q, s in (("q1", "s1"), ("q2", "s2")):
        shutil.copy(os.path.join(setup["songs"], f"{s}.flac"), queries / f"{q}.flac")
    bad = tmp_path / "demo_truth.csv"           # the demo's song ids against an index of file stems
    bad.write_text("query,song\nq1,ryansMammoth-1\nq2,airdsAirs-2\n")
    argv = ["-q", "evaluate", "--index", setup["whole"], "--queries", str(queries)]
    assert main([*argv, "--truth", str(bad)]) == 2
    err = _one_line(capsys, "--truth", "--index", "airdsAirs-2", "s0")
    assert "none of the 2 songs" in err
    partial = tmp_path / "truth.csv"
    partial.write_text("query,song\nq1,s1\nq2,not-indexed\n")
    assert main([*argv, "--truth", str(partial)]) == 0
    assert "1 of the 2 songs of --truth" in caplog.text and "not-indexed" in caplog.text
    assert "top1 0.500" in capsys.readouterr().out


# ---- smaller items: flags in errors, --device, FAISS file, checkpoints, Ctrl-C, -q, long queries ----------

def test_errors_name_the_flags_not_python_arguments(setup, capsys, tmp_path):
    import shutil
    from chadml.cli.main import main
    from chadml.index import SongIndex
    q = os.path.join(setup["songs"], "s1.flac")
    # songs already in the index: --skip-existing / --replace, not on_exists='skip'
    assert main(["-q", "index", "add", "--index", setup["whole"], "--songs", setup["songs"]]) == 2
    err = _one_line(capsys, "--skip-existing", "--replace")
    assert "on_exists" not in err
    # an index whose recorded checkpoint moved or was never recorded: --model, not fingerprinter=...
    moved = tmp_path / "moved"
    shutil.copytree(setup["whole"], moved)
    model = tmp_path / "m.pt"
    shutil.copy(setup["model"], model)
    assert main(["-q", "index", "add", "--index", str(moved), "--songs", setup["songs"], "--model", str(model),
                 "--skip-existing"]) == 0
    capsys.readouterr()
    fresh = tmp_path / "fresh"
    from chadml.models import checkpoint_id
    idx = SongIndex.create(fresh, model_id=checkpoint_id(model), feature_config=SongIndex.open(moved).feature_config,
                           window_config=SongIndex.open(moved).window_config, model_path=model)
    idx.add_fingerprints("x", SongIndex.open(moved).fingerprints("s1"))
    os.remove(model)                            # the checkpoint fresh records is gone
    assert main(["-q", "query", "--index", str(fresh), q]) == 2
    err = _one_line(capsys, "--model", "missing")
    assert "fingerprinter" not in err
    assert main(["-q", "query", "--index", str(fresh), "--model", setup["model"], q]) == 0
    capsys.readouterr()
    nopath = tmp_path / "nopath"
    SongIndex.create(nopath, model_id="m", feature_config={}, window_config={"step_s": 0.25}).add_fingerprints(
        "x", SongIndex.open(moved).fingerprints("s1"))
    assert main(["-q", "query", "--index", str(nopath), q]) == 2
    assert "fingerprinter" not in _one_line(capsys, "--model", "records no model")
    # another model than the index's: which flag brought it
    other = tmp_path / "other.pt"
    import sys
    sys.path.insert(0, TESTS)
    from _searchkit import tiny_fingerprinter
    from _servekit import save_tiny_checkpoint
    save_tiny_checkpoint(tiny_fingerprinter(seed=5), other)
    assert main(["-q", "query", "--index", setup["whole"], "--model", str(other), q]) == 2
    _one_line(capsys, "--model", "was built with model")


def test_device_errors_are_device_errors(setup, capsys, tmp_path):
    import torch
    from chadml.cli.main import main
    q = os.path.join(setup["songs"], "s1.flac")
    bad = [("gpu", "not a torch device")]
    if not torch.cuda.is_available():
        bad.append(("cuda", "CUDA is not available"))
    for device, why in bad:
        for argv in (["index", "build", "--model", setup["model"], "--songs", setup["songs"],
                      "--out", str(tmp_path / "ix")],
                     ["query", "--index", setup["whole"], q],
                     ["index", "add", "--index", setup["whole"], "--songs", setup["songs"], "--skip-existing"],
                     ["demo", "--quick", "--out", str(tmp_path / "d")]):
            assert main(["-q", *argv, "--device", device]) == 2, (argv, device)
            err = _one_line(capsys, f"--device {device}", why)
            assert "checkpoint" not in err
    assert not (tmp_path / "ix").exists() and not (tmp_path / "d").exists()


def test_bad_checkpoints_through_the_cli(setup, capsys, tmp_path):
    from chadml.cli.main import main
    empty, noise = tmp_path / "empty.pt", tmp_path / "noise.pt"
    empty.write_bytes(b"")
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    q = os.path.join(setup["songs"], "s1.flac")
    for ckpt, why in ((empty, "the file is empty"), (noise, "not a torch checkpoint or a corrupt one"),
                      (tmp_path / "none.pt", "not found")):
        for argv in (["index", "build", "--songs", setup["songs"], "--out", str(tmp_path / "ix")],
                     ["query", "--index", setup["whole"], q]):
            assert main(["-q", *argv, "--model", str(ckpt)]) == 2, (argv, ckpt)
            err = _one_line(capsys, "--model", str(ckpt), why)
            assert "weights_only" not in err and "file an issue" not in err


def test_a_missing_or_broken_faiss_file_says_what_it_is(setup, capsys, tmp_path):
    import shutil
    from chadml.cli.main import main
    q = os.path.join(setup["songs"], "s1.flac")
    for damage in ("remove", "truncate"):
        ix = tmp_path / damage
        shutil.copytree(setup["whole"], ix)
        (faiss_file,) = [f for f in os.listdir(ix) if f.startswith("faiss-")]
        if damage == "remove":
            os.remove(ix / faiss_file)
        else:
            (ix / faiss_file).write_bytes((ix / faiss_file).read_bytes()[:100])
        for argv in (["index", "info", "--index", str(ix)], ["query", "--index", str(ix), q]):
            assert main(["-q", *argv]) == 1, argv
            _one_line(capsys, "FAISS index file", faiss_file, "corrupt", "chad index build")


def test_ctrl_c_of_index_add_says_nothing_was_added(setup, capsys, tmp_path):
    import shutil
    from chadml.cli.main import main
    from chadml.index import SongIndex
    from chadml.models.encoder import Fingerprinter
    ix = tmp_path / "ix"
    shutil.copytree(setup["whole"], ix)
    SongIndex.open(ix).remove(["s4", "s5"])
    real, calls = Fingerprinter.from_audio, [0]

    def from_audio(self, *a, **kw):             # Ctrl-C while the second new song is fingerprinted
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    Fingerprinter.from_audio = from_audio
    try:
        assert main(["-q", "index", "add", "--index", str(ix), "--songs", setup["songs"], "--skip-existing"]) == 130
    finally:
        Fingerprinter.from_audio = real
    err = capsys.readouterr().err
    assert "nothing was added" in err and "all or none" in err and "kept" not in err
    assert len(SongIndex.open(ix)) == 4


def test_quiet_after_the_subcommand():
    from chadml.cli.main import build_parser
    parser = build_parser()
    for argv in (["index", "build", "--model", "m.pt", "--songs", "s", "--out", "o", "-q"],
                 ["index", "add", "--index", "i", "--songs", "s", "-q"], ["f0-index", "info", "--index", "i", "-q"],
                 ["query", "--index", "i", "q.wav", "-q"], ["demo", "--quick", "-q"], ["index", "info", "-q",
                                                                                       "--index", "i"]):
        args = parser.parse_args(argv)
        assert args.quiet is True and not getattr(args, "verbose", False), argv


def test_a_long_query_file_is_read_only_as_far_as_it_is_used(setup, capsys, caplog, tmp_path, monkeypatch):
    import soundfile as sf
    from chadml.cli.main import main
    long = tmp_path / "long.wav"
    y = np.tile(_tone(1.0, 8000), 600)          # 10 minutes at 8 kHz
    sf.write(str(long), y, 8000, subtype="PCM_16")
    read = []
    real = sf.SoundFile.read

    def spy(self, frames=-1, *a, **kw):
        read.append(self.frames if frames is None or frames < 0 else frames)
        return real(self, frames, *a, **kw)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    assert main(["-q", "query", "--index", setup["whole"], str(long), "--top", "1"]) == 0
    assert read and max(read) <= 60 * 8000, read        # 60 s: the searcher's max_query_s, not 600
    assert "600.0 s long: only its first 60.0 s are used" in caplog.text
    assert "(60.0 s;" in capsys.readouterr().out


def test_help_texts():
    from chadml.cli.main import build_parser
    import argparse
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "--method" not in sub.choices["query"].format_help()
    f0 = next(a for a in sub.choices["f0-index"]._actions if isinstance(a, argparse._SubParsersAction))
    assert f0.choices["build"].description and f0.choices["info"].description
    assert "not usable" in sub.choices["demo"].format_help()


# ---- README ---------------------------------------------------------------------------------------------

def test_readme_points_inside_the_repository_and_its_snippets_are_complete():
    import ast
    import importlib
    import re
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    assert "../shared" not in text and "DESIGN.md" not in text
    assert "torchcrepe 0.0.24 requires torchaudio" in text and "harmless" in text
    for ref in re.findall(r"`([A-Z]+\.md)`", text):
        assert os.path.exists(os.path.join(REPO, ref)), ref
    snippets = re.findall(r"```python\n(.*?)```", text, re.S)
    pipeline = next(s for s in snippets if "build_corpus" in s)
    assert "my_humming" not in pipeline and "logging.basicConfig" in pipeline
    tree = ast.parse(pipeline)
    for node in ast.walk(tree):              # every name it imports exists
        if isinstance(node, ast.ImportFrom):
            mod = importlib.import_module(node.module)
            for a in node.names:
                assert hasattr(mod, a.name), f"{node.module}.{a.name}"
    # every file the snippet reads is one it made (no placeholder recording)
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s for s in strings if s.endswith((".wav", ".flac", ".mp3"))]


def test_one_build_at_a_time_and_info_tells_an_unfinished_build(setup, capsys, tmp_path):
    import fcntl
    from chadml.cli.main import main
    from chadml.index import BUILDING, SongIndex, build_songs
    from chadml.models import checkpoint_id
    out = tmp_path / "ix"
    idx = SongIndex.create(out, model_id=checkpoint_id(setup["model"]), feature_config=SongIndex.open(
        setup["whole"]).feature_config, window_config=SongIndex.open(setup["whole"]).window_config,
        model_path=setup["model"], building={"songs": setup["songs"]})
    idx.add_fingerprints("s0", SongIndex.open(setup["whole"]).fingerprints("s0"))
    assert main(["index", "info", "--index", str(out)]) == 0
    assert "UNFINISHED" in capsys.readouterr().out
    with open(out / BUILDING) as f:             # a build running elsewhere holds the mark
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        argv = ["-q", "index", "build", "--model", setup["model"], "--songs", setup["songs"], "--out", str(out)]
        assert main(argv) == 1
        _one_line(capsys, "another build", str(out))
    assert main(argv) == 0 and len(SongIndex.open(out)) == 6 and not (out / BUILDING).exists()
    with pytest.raises(ValueError, match="step_songs"):
        build_songs(idx, [], None, step_songs=0)


def test_a_build_in_steps_ends_with_the_one_add_faiss_index(tmp_path, one_faiss_thread):
    import sys
    sys.path.insert(0, TESTS)
    from _searchkit import fp_index, random_songs
    songs = random_songs(np.random.default_rng(3), 30)
    whole = fp_index(tmp_path / "whole", songs, kind="ivf")
    steps = fp_index(tmp_path / "steps", {}, kind="ivf")
    items = [(k, v, {"title": k.upper()}) for k, v in songs.items()]
    for a in range(0, 30, 7):
        steps.add_fingerprint_items(items[a:a + 7], progress_bar=False)
    assert steps.faiss_params != whole.faiss_params          # trained on the first steps' rows
    assert steps.rebuild_ann() and steps.faiss_params == whole.faiss_params
    assert not steps.rebuild_ann()
    q = np.concatenate([v[:3] for v in list(songs.values())[::5]])
    for a, b in zip(steps.search(q, 5), whole.search(q, 5)):
        np.testing.assert_array_equal(a, b)


def test_a_bad_song_stops_a_build_that_then_continues(setup, capsys, tmp_path):
    import shutil
    from chadml.cli.main import main
    from chadml.index import SongIndex
    songs = tmp_path / "songs"
    shutil.copytree(setup["songs"], songs)
    (songs / "s3x.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    out = tmp_path / "ix"
    argv = ["-q", "index", "build", "--model", setup["model"], "--songs", str(songs), "--out", str(out)]
    assert main(argv) == 1
    _one_line(capsys, "s3x.wav", "--skip-bad", "rerun the same command", str(out), "keeps the 4 songs")
    idx = SongIndex.open(out)                   # the songs before the bad one are kept
    assert idx.unfinished_build is not None and [s.song_id for s in idx.songs()] == ["s0", "s1", "s2", "s3"]
    assert main([*argv, "--skip-bad"]) == 0
    idx = SongIndex.open(out)
    assert len(idx) == 6 and idx.unfinished_build is None


def test_a_bad_song_in_an_add_says_nothing_was_added(setup, capsys, tmp_path):
    import shutil
    from chadml.cli.main import main
    from chadml.index import SongIndex
    ix, more = tmp_path / "ix", tmp_path / "more"
    shutil.copytree(setup["whole"], ix)
    more.mkdir()
    shutil.copy(os.path.join(setup["songs"], "s1.flac"), more / "new1.flac")
    (more / "new2.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    assert main(["-q", "index", "add", "--index", str(ix), "--songs", str(more)]) == 1
    _one_line(capsys, "new2.wav", "nothing was added", "--skip-bad")
    assert len(SongIndex.open(ix)) == 6


# ---- chad calibrate: an index's own confidence calibration ---------------------------------------------

def test_calibrate_fits_and_stores_the_index_calibration(setup, capsys, tmp_path):
    import shutil
    import sys
    sys.path.insert(0, TESTS)
    from _searchkit import melody
    from chadml import audio
    from chadml.cli.main import main
    from chadml.search import CALIBRATION_FILE, Searcher
    index = tmp_path / "ix"
    shutil.copytree(setup["whole"], index)
    queries, negatives = tmp_path / "q", tmp_path / "neg"
    queries.mkdir(), negatives.mkdir()
    rows = ["query,song"]
    for i in range(6):                           # 4-second excerpts of the indexed songs, at two offsets
        y = audio.load(os.path.join(setup["songs"], f"s{i}.flac"))
        for j, start in enumerate((0.5, 1.5)):
            audio.save(str(queries / f"q{i}{j}.flac"), y[int(start * 16000): int((start + 4) * 16000)])
            rows.append(f"q{i}{j},s{i}")
    (tmp_path / "truth.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(99)
    for i in range(8):                           # melodies the index does not hold
        audio.save(str(negatives / f"n{i}.flac"), melody(rng, 4.0))
    argv = ["calibrate", "--index", str(index), "--queries", str(queries), "--truth", str(tmp_path / "truth.csv"),
            "--negatives", str(negatives)]
    assert main(["-q", *argv, "--dry-run"]) == 0
    assert "pearson:" in capsys.readouterr().out and not (index / CALIBRATION_FILE).exists()
    assert main(["-q", *argv]) == 0
    out = capsys.readouterr().out
    assert "right answers" in out and "written" in out
    cal = Searcher(str(index)).calibration
    assert cal.rerank == "pearson" and str(queries) in cal.fitted_on and cal.stats["positives"] >= 2
    # bad input: one line naming the flag
    assert main(["-q", *argv[:-1], str(tmp_path / "nope")]) == 2
    _one_line(capsys, "--negatives")
    assert main(["-q", *argv, "--threshold", "1.5"]) == 2
    _one_line(capsys, "--threshold")


def test_the_shipped_model_is_accepted_wherever_a_model_is(capsys, tmp_path):
    """`chad mine` defaults to the shipped model and `chad train --init` takes it by name: neither calls
    builtin:chad-qbh a missing file (the next missing input is the one named)."""
    from chadml.cli.main import build_parser, main
    from chadml.models import BUILTIN
    args = build_parser().parse_args(["mine", "--songs", "s.csv", "--out", "m.csv"])
    assert args.model == BUILTIN
    missing = str(tmp_path / "nope.csv")
    for argv in (["mine", "--songs", missing, "--out", str(tmp_path / "m.csv")],
                 ["mine", "--model", BUILTIN, "--songs", missing, "--out", str(tmp_path / "m.csv")],
                 ["train", "--init", BUILTIN, "--data", missing, "--out", str(tmp_path / "m.pt")]):
        assert main(["-q", *argv]) == 2
        err = _one_line(capsys, missing)
        assert BUILTIN not in err, err
