"""The ``>>>`` examples of every public module of chadml and chadsp run and give what they show.

One test per module. Not collected: private modules (a name part starting with ``_``), the compatibility
shims (they only re-export), and the command line (``chadml.cli``: its handlers print and exit). An
example that needs files, the network or more than about 2 s says ``# doctest: +SKIP``.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("chadsp", "chadml")
# old flat module paths of chadml that only re-export their new homes (tests/test_layers.py: SHIMS)
SHIMS = {f"chadml.{name}" for name in ("train", "encoder", "augment", "crepe", "baseline")}
SKIP_PREFIXES = ("chadml.cli",)
# modules whose examples fail while another change is in progress: name -> why (xfail, not strict)
XFAIL_MODULES: dict[str, str] = {}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def public_modules() -> list[str]:
    names = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        names.append(pkg_name)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg_name + "."):
            parts = info.name.split(".")
            if any(p.startswith("_") for p in parts) or info.name in SHIMS or info.name.startswith(SKIP_PREFIXES):
                continue
            names.append(info.name)
    return sorted(names)


def _param(name: str):
    if name in XFAIL_MODULES:
        return pytest.param(name, marks=pytest.mark.xfail(reason=XFAIL_MODULES[name], strict=False))
    return name


@pytest.mark.parametrize("module", [_param(m) for m in public_modules()])
def test_doctests(module):
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out: list[str] = []
    # the examples of the names defined in this module (not of those it imports), in its namespace
    for test in finder.find(mod, module):
        runner.run(test, out=out.append)
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} examples of {module} failed:\n" + "".join(out)
