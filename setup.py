"""Build script for chad: the compiled core ``chadsp`` (cffi, API mode) and the torch layer ``chadml``.

The C kernels in ``csrc/`` are compiled by ``chadsp/_build.py`` (see ``cffi_modules`` below).
Environment variables understood by the build:

- ``CHADSP_SANITIZE=1``: build with ``-fsanitize=address,undefined`` (CI runs the kernel tests so).
- ``CHADSP_CFLAGS``: extra compiler flags, replacing the default ``-march=native``.
"""
import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).resolve().parent


def read_version() -> str:
    """``chadml.__version__``, the one place the version is written (read, not imported: no torch at build)."""
    text = (HERE / "chadml" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", text, re.M)
    if not m:
        raise RuntimeError("chadml/__init__.py has no __version__ = \"...\" line")
    return m.group(1)


setup(
    name="chad",
    version=read_version(),
    description="Query-by-Humming and the semi-supervised CHAD pipeline (ISMIR 2023), with a compiled DSP core",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["chadsp", "chadsp.*", "chadml", "chadml.*"]),
    package_data={"chadml": ["assets/*"],      # the released model (see chadml/assets/README.md)
                  "chadml.serve": ["static/*"]},  # the page of `chad serve`
    setup_requires=["cffi>=1.16"],
    cffi_modules=["chadsp/_build.py:ffi"],
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "cffi>=1.16",
        "numba>=0.59",
        # torch is pinned by the install command in README.md (torch==2.13.0, the CPU wheel);
        # a range here keeps pip from replacing it with a multi-GB CUDA build.
        "torch>=2.1",
        "soundfile>=0.12",
        "music21>=9",
        "pytorch-metric-learning>=2.3",
        "faiss-cpu>=1.7.4",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        # torchcrepe's own needs (torchcrepe itself is installed with --no-deps; see README.md)
        "librosa>=0.10",
        "resampy>=0.4",
        # chad serve: the HTTP API and its server
        "fastapi>=0.110",
        "uvicorn>=0.27",
        "python-multipart>=0.0.9",
    ],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6.90", "pytest-timeout", "psutil", "librosa>=0.10",
                 "dtaidistance>=2.3", "pyarrow", "ray>=2.9",
                 "httpx", "selenium>=4.10"],
        "bench": ["pytest-benchmark>=4", "psutil", "librosa>=0.10", "dtaidistance>=2.3", "stumpy>=1.12"],
        "separation": ["spleeter-thomasesr==3.0.0a1"],
        "distributed": ["ray>=2.9"],
    },
    entry_points={"console_scripts": ["chad=chadml.cli:main"]},
    zip_safe=False,
)
