"""The package's import layers (ARCHITECTURE.md): imports only go down, no cycles, no private names
imported across modules, function-local imports only for optional heavy dependencies (and in the CLI,
whose handlers import the library lazily so that ``chad --help`` never imports torch)."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1] / "chadml"

# the layer of each top-level unit of chadml (a module or a subpackage); a unit may import only units
# of a strictly lower layer, and itself
LAYERS = {
    "errors": 0, "config": 0,
    "util": 1,
    "audio": 2, "data": 2,
    "separation": 3, "corpus": 3,
    "features": 4,
    "models": 5,
    "training": 6,
    "index": 7,
    "search": 8, "mining": 8,
    "loop": 9, "evaluate": 9,
    "compare": 10, "demo": 10, "release": 10,
    "serve": 11,
    "cli": 12,
    "__init__": 1,
}
# old flat module paths kept for compatibility: each only re-exports its new home
SHIMS = {"train", "encoder", "augment", "crepe", "baseline"}
# the only imports allowed inside a function outside chadml/cli (optional or heavy third-party packages)
LOCAL_OK = {"ray", "spleeter", "matplotlib", "tensorflow", "pyarrow", "faiss", "soundfile", "scipy", "torchcrepe",
            "librosa", "music21", "tqdm", "concurrent", "sqlite3", "fastapi", "starlette", "uvicorn", "psutil"}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _unit(modname: str) -> str:
    parts = modname.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(modname: str, path: pathlib.Path):
    """(imported chadml module, names, is_function_local, line) for every import of the file."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    pkg = modname.split(".") if is_pkg else modname.split(".")[:-1]
    local_nodes = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for n in ast.walk(fn):
                if isinstance(n, (ast.Import, ast.ImportFrom)):
                    local_nodes.add(id(n))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            if not node.module and node.level:        # from . import x: x may be a module
                for a in names:
                    yield f"{target}.{a}", [], id(node) in local_nodes, node.lineno
            else:
                yield target, names, id(node) in local_nodes, node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], id(node) in local_nodes, node.lineno


def test_imports_go_down_the_layers():
    bad = []
    for mod, path in _modules():
        unit = _unit(mod)
        if unit in SHIMS:
            continue
        assert unit in LAYERS, f"{mod}: add its unit {unit!r} to LAYERS (and to ARCHITECTURE.md)"
        for target, _names, _local, line in _imports(mod, path):
            if not target.startswith("chadml"):
                continue
            tunit = _unit(target)
            if tunit in SHIMS:
                bad.append(f"{path.name}:{line} imports the compatibility shim {target}")
            elif tunit != unit and tunit in LAYERS and LAYERS[tunit] >= LAYERS[unit] and tunit != "__init__":
                bad.append(f"{mod}:{line} (layer {LAYERS[unit]}) imports {target} (layer {LAYERS[tunit]})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_no_private_names_across_modules():
    bad = []
    for mod, path in _modules():
        for target, names, _local, line in _imports(mod, path):
            if not target.startswith("chadml") or target == mod:
                continue
            # a package's __init__ may gather the private helpers of its own modules
            if target.startswith(mod + ".") and path.name == "__init__.py":
                continue
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{mod}:{line} imports private {target}.{n}")
    assert not bad, "\n".join(bad)


def test_function_local_imports_only_for_optional_dependencies():
    bad = []
    for mod, path in _modules():
        if _unit(mod) == "cli":
            continue
        for target, _names, local, line in _imports(mod, path):
            if local and target.split(".")[0] not in LOCAL_OK:
                bad.append(f"{mod}:{line} imports {target} inside a function")
    assert not bad, f"{len(bad)} function-local imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    mods = dict(_modules())
    for mod, path in mods.items():
        deps = graph.setdefault(mod, set())
        for target, names, local, _line in _imports(mod, path):
            if local or not target.startswith("chadml"):
                continue
            for cand in [target] + [f"{target}.{n}" for n in names]:
                if cand in mods and cand != mod:
                    deps.add(cand)
    # a package's __init__ importing its own modules is not a cycle back from them
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in graph.get(m, ()):
            if m.startswith(d + ".") or d == m.rsplit(".", 1)[0]:
                continue          # a module importing its own package's __init__ re-exports
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if not state.get(d):
                visit(d)
        stack.pop()
        state[m] = 2

    for m in graph:
        if not state.get(m):
            visit(m)


def test_chad_help_does_not_import_torch():
    code = ("import sys, contextlib, io\n"
            "from chadml.cli.main import build_parser\n"
            "build_parser()\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "chadml.cli.main", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - t0 < 5.0
