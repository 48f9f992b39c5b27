"""Packaging invariants: CI runs exactly the README's test command; chadsp exposes DESIGN.md section 2."""
from __future__ import annotations

import inspect
import os
import re

import pytest

import chadsp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# DESIGN.md section 2: every public function of chadsp and its parameters, in order.
DESIGN_API = {
    "silence": {
        "rms_db": ["y", "frame_length", "hop_length", "center"],
        "silence_mask": ["rms_db", "top_db"],
        "split_by_silence": ["y", "top_db", "frame_length", "hop_length"],
        "merge_fragments": ["intervals", "max_pause", "min_len", "max_len"],
    },
    "correlation": {
        "xcorr": ["query", "target", "method"],
        "find_peaks": ["curve", "height", "distance"],
        "xcorr_match": ["fragment", "target", "rel", "irrel", "distance"],
        "max_pearson": ["query", "target"],
        "rerank": ["query", "candidates", "threads"],
    },
    "dtw": {
        "banded_dtw": ["x", "y", "band", "metric"],
        "subsequence_dtw": ["query", "target", "band", "metric"],
        "dtw_rerank": ["query", "candidates", "band", "metric", "threads"],
    },
}
# The sections merged so far. LEAD: add "correlation" and "dtw" here as their branches land, so that
# the test then requires every name of DESIGN.md section 2.
MERGED = ["silence", "correlation", "dtw"]


def readme_test_command() -> list[str]:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"Run the test suite.*?```bash\n(.*?)```", text, re.S)
    assert m, "README.md has no ```bash block after 'Run the test suite'"
    return [ln.strip() for ln in m.group(1).splitlines() if ln.strip()]


def test_readme_test_command_is_what_ci_runs():
    ci = [ln.strip() for ln in open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read().splitlines()]
    cmd = readme_test_command()
    assert cmd, "the README's test command block is empty"
    for line in cmd:
        assert line in ci, f"README test command line not found verbatim in .ci/run: {line!r}"


@pytest.mark.parametrize("section", MERGED)
def test_chadsp_exposes_design_api(section):
    for name, params in DESIGN_API[section].items():
        assert name in chadsp.__all__, f"chadsp.__all__ lacks {name} (DESIGN.md section 2, {section})"
        fn = getattr(chadsp, name)
        assert callable(fn) and fn.__doc__ and "Example" in fn.__doc__, f"chadsp.{name} needs a docstring example"
        sig = inspect.signature(fn).parameters
        got = list(sig)
        # DESIGN.md's parameters come first, in order; any extra one must be keyword-only with a default
        assert got[:len(params)] == params, f"chadsp.{name} parameters {got}, DESIGN.md says {params}"
        for extra in got[len(params):]:
            p = sig[extra]
            assert p.kind is p.KEYWORD_ONLY and p.default is not p.empty, \
                f"chadsp.{name}: extra parameter {extra} must be keyword-only with a default"


def test_chadsp_all_is_unique_and_resolves():
    assert len(chadsp.__all__) == len(set(chadsp.__all__)), "a name is exported by two chadsp modules"
    for name in chadsp.__all__:
        assert getattr(chadsp, name) is not None


# the one place the version is written: chadml/__init__.py (setup.py reads it; chadsp has none of its own)
VERSION_FILE = "chadml/__init__.py"


def test_the_version_is_written_once():
    import chadml
    version_line = re.compile(r"""^\s*(__version__\s*=|version\s*=\s*['"])""", re.M)
    found = []
    for top in ("setup.py", "pyproject.toml", "setup.cfg", "chadml", "chadsp"):
        path = os.path.join(ROOT, top)
        files = [path] if os.path.isfile(path) else [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
                                                     if f.endswith(".py")]
        for f in files:
            if version_line.search(open(f, encoding="utf-8").read()):
                found.append(os.path.relpath(f, ROOT).replace(os.sep, "/"))
    assert found == [VERSION_FILE], found
    setup_py = open(os.path.join(ROOT, "setup.py"), encoding="utf-8").read()
    assert "version=read_version()" in setup_py
    assert re.match(r"^\d+\.\d+\.\d+", chadml.__version__)


def test_package_data_folders_exist():
    setup_py = open(os.path.join(ROOT, "setup.py"), encoding="utf-8").read()
    for folder in re.findall(r'"chadml": \["([^"*]+)/\*"\]', setup_py):
        assert os.listdir(os.path.join(ROOT, "chadml", folder)), f"chadml/{folder} is empty or missing"
