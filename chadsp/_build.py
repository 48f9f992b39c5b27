"""cffi builder of the compiled core (API mode).

``setup.py`` uses it through ``cffi_modules=["chadsp/_build.py:ffi"]``. For a development build in place
(the extension lands next to this file as ``chadsp/_chadsp*.so``)::

    python chadsp/_build.py

The declarations given to cffi are those of ``csrc/chadsp.h`` with preprocessor lines removed, so the
header is the single source of truth for the C API.
"""
from __future__ import annotations

import glob
import os
import re
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CSRC = os.path.join(ROOT, "csrc")


def _cdef_from_header(path: str) -> str:
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)          # block comments
    text = re.sub(r"//[^\n]*", "", text)                       # line comments
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return "\n".join(lines)


def _flags() -> tuple[list[str], list[str]]:
    cflags = ["-O3", "-std=c99", "-fopenmp", "-ffp-contract=fast", "-Wall", "-Wno-unused-function"]
    extra = os.environ.get("CHADSP_CFLAGS")
    cflags += extra.split() if extra is not None else ["-march=native"]
    ldflags = ["-fopenmp"]
    if os.environ.get("CHADSP_SANITIZE", "") not in ("", "0"):
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        cflags = [f for f in cflags if f != "-O3"] + ["-O1", "-g"] + san
        ldflags += san
    return cflags, ldflags


def make_ffi(absolute: bool = False) -> FFI:
    """The FFI object; ``absolute`` paths for ``ffi.compile`` (which runs in its tmpdir)."""
    def path(p: str) -> str:
        return p if absolute else os.path.relpath(p, ROOT)

    cflags, ldflags = _flags()
    f = FFI()
    f.cdef(_cdef_from_header(os.path.join(CSRC, "chadsp.h")))
    f.set_source(
        "chadsp._chadsp",
        '#include "chadsp.h"',
        sources=[path(p) for p in sorted(glob.glob(os.path.join(CSRC, "*.c")))],
        include_dirs=[path(CSRC)],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
        libraries=["m"],
    )
    return f


ffi = make_ffi()

if __name__ == "__main__":
    import shutil
    out = make_ffi(absolute=True).compile(tmpdir=os.path.join(ROOT, "build", "cffi"), verbose="-v" in sys.argv)
    dest = os.path.join(HERE, os.path.basename(out))   # ffi.compile leaves it under tmpdir/chadsp/
    for old in glob.glob(os.path.join(HERE, "_chadsp*.so")):   # an editable install's abi3 build, say
        os.remove(old)
    shutil.copy2(out, dest)
    print(dest)
