"""The ``chad`` command as a whole: a light and fast ``--help``, a description for every command, ``-q``/``-v``
before or after the command, and every error as one line with exit status 2 (bad input) or 1 (a failure)."""
from __future__ import annotations

import argparse
import errno
import importlib
import sqlite3
import subprocess
import sys
import time

import pytest

from chadml.cli.main import build_parser, main
from chadml.cli.options import common
from chadml.errors import ChadError, UsageError

cli_main = importlib.import_module("chadml.cli.main")   # (chadml.cli.main is also the function)
HELP_SECONDS = 3.0     # `chad --help` builds every parser and must not import the library (torch)


def _subparsers(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def all_parsers(parser=None, path=()):
    """``(command words, parser)`` of every command and sub-command of ``chad``."""
    parser = parser or build_parser()
    out = []
    for action in _subparsers(parser):
        for name, sub in action.choices.items():
            out.append(((*path, name), sub))
            out.extend(all_parsers(sub, (*path, name)))
    return out


def leaf_parsers():
    return [(words, p) for words, p in all_parsers() if not _subparsers(p)]


def test_help_imports_no_torch_and_is_fast():
    code = ("import sys, time\n"
            "t = time.perf_counter()\n"
            "from chadml.cli import main\n"
            "try:\n"
            "    main(['--help'])\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "print(time.perf_counter() - t)\n"
            "print(sorted(m for m in ('torch', 'faiss', 'numba', 'matplotlib', 'scipy') if m in sys.modules))\n")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    in_process, heavy = out.stdout.strip().splitlines()[-2:]
    assert heavy == "[]", f"`chad --help` imports {heavy}"
    assert "usage: chad" in out.stdout
    # the whole process (interpreter start included), and chadml's own part of it
    assert wall < HELP_SECONDS, f"`chad --help` took {wall:.2f} s (chadml: {float(in_process):.2f} s)"


def test_every_command_has_help_and_a_description(capsys):
    parsers = all_parsers()
    assert {w[0] for w, _ in parsers} >= {"train", "mine", "loop", "index", "query", "evaluate", "f0-index",
                                          "compare", "demo"}
    for words, p in parsers:
        assert p.description, f"`chad {' '.join(words)}` has no description"
        with pytest.raises(SystemExit) as e:
            main([*words, "--help"])
        assert e.value.code == 0, words
        text = capsys.readouterr().out
        assert text.startswith(f"usage: chad {' '.join(words)}") and p.description.split()[0] in text, words
    # each command is listed in `chad --help` with a one-line help
    for action in _subparsers(build_parser()):
        for choice in action._choices_actions:
            assert choice.help, f"`chad {choice.dest}` has no help line in `chad --help`"


def test_quiet_and_verbose_before_or_after_the_command():
    for words, p in leaf_parsers():
        opts = p._option_string_actions
        assert "-q" in opts and "--quiet" in opts and "-v" in opts, f"`chad {' '.join(words)}` lacks -q/-v"
    loop = ["loop", "--iterations", "1", "--songs", "s.csv", "--hummings", "h.csv", "--out", "o"]
    parser = build_parser()
    for argv, quiet, verbose in ((["-q", *loop], True, False), ([*loop, "-q"], True, False),
                                 ([*loop, "--verbose"], False, True), (["-v", *loop, "--quiet"], True, True),
                                 (loop, False, False)):
        args = parser.parse_args(argv)
        assert getattr(args, "quiet", False) is quiet and getattr(args, "verbose", False) is verbose, argv


def _one_line_error(capsys, *flag_or_file: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, f"not one line:\n{err}"
    assert "Traceback" not in err and "error" in err
    assert any(s in err for s in flag_or_file), f"{err!r} names none of {flag_or_file}"
    return err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    missing = str(tmp_path / "no-such.idx")
    query = tmp_path / "q.wav"
    query.write_bytes(b"")
    assert main(["query", "--index", missing, str(query)]) == 2
    _one_line_error(capsys, "--index", missing)
    assert main(["query", "--index", missing, "--rerank", "dtw", "--tempo-scan", str(query)]) == 2
    _one_line_error(capsys, "--tempo-scan")

    truth = tmp_path / "truth.csv"
    truth.write_text("query,song\nq,s\n")
    evaluate = ["evaluate", "--index", missing, "--queries", str(tmp_path), "--truth", str(truth)]
    for bad, flag in ((["--method", "nope"], "--method"), (["-k", "many"], "-k"),
                      (["--rerank", "fast"], "--rerank")):
        with pytest.raises(SystemExit) as e:
            main([*evaluate, *bad])
        assert e.value.code == 2
        _one_line_error(capsys, flag)
    assert main(["evaluate", "--index", missing, "--queries", str(tmp_path / "none"), "--truth", str(truth)]) == 2
    _one_line_error(capsys, "--queries")
    assert main(["evaluate", "--index", missing, "--queries", str(tmp_path), "--truth", str(tmp_path / "t")]) == 2
    _one_line_error(capsys, "--truth")
    assert main(["compare", "--queries", str(tmp_path), "--truth", str(truth)]) == 2
    _one_line_error(capsys, "--index")
    assert main(["demo", "--songs", "0", "--out", str(tmp_path / "d")]) == 2
    _one_line_error(capsys, "--songs")
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2
    _one_line_error(capsys, "no-such-command")


def test_loop_counts_are_named_by_their_flag(tmp_path, capsys):
    songs, hum = tmp_path / "songs.csv", tmp_path / "hum.csv"
    songs.write_text("")
    hum.write_text("")
    base = ["loop", "--songs", str(songs), "--hummings", str(hum), "--out", str(tmp_path / "o")]
    for extra, flag in ((["--iterations", "-1"], "--iterations"), (["--iterations", "1", "--epochs", "0"], "--epochs"),
                        (["--iterations", "1", "--batch-size", "3"], "--batch-size"),
                        (["--iterations", "1", "--max-minutes", "0"], "--max-minutes")):
        assert main([*base, *extra]) == 2, extra
        _one_line_error(capsys, flag)


@pytest.fixture
def boom(monkeypatch):
    """``chad boom``: a command that raises what the test puts in ``raised[0]``."""
    raised: list[BaseException] = []

    def run(args):
        args.interrupt_message = "interrupted; rerun to resume"
        raise raised[0]

    def build():
        parser = cli_main._Parser(prog="chad", parents=[common()])
        sub = parser.add_subparsers(dest="command")
        p = sub.add_parser("boom", parents=[common()], description="raise an error")
        p.set_defaults(func=run)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)
    return raised


@pytest.mark.parametrize("exc, code", [
    (UsageError("--model: not a checkpoint"), 2),
    (ChadError("index and model differ"), 1),
    (ValueError("bad value"), 2),
    (TypeError("bad type"), 2),
    (KeyError("song-7"), 2),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.wav"), 2),
    (FileExistsError(errno.EEXIST, "File exists", "out.idx"), 2),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"), 2),
    (OSError(errno.ENOSPC, "No space left on device"), 1),
    (sqlite3.DatabaseError("file is not a database"), 1),
    (EOFError("Ran out of input"), 1),
    (MemoryError(), 1),
    (RuntimeError("a bug\nwith a second line"), 1),
    (ZeroDivisionError("division by zero"), 1),
])
def test_every_error_is_one_line_and_its_status(boom, capsys, exc, code):
    boom.append(exc)
    assert main(["boom"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chad boom: "), err
    assert "Traceback" not in err


def test_verbose_shows_the_traceback_and_keeps_the_status(boom, capsys):
    boom.append(ValueError("bad value"))
    assert main(["boom", "-v"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("chad boom: error: bad value")


def test_interrupt_exits_130_with_the_commands_message(boom, capsys):
    boom.append(KeyboardInterrupt())
    assert main(["boom"]) == 130
    assert capsys.readouterr().err == "chad boom: interrupted; rerun to resume\n"


def test_no_command_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: chad" in capsys.readouterr().out
