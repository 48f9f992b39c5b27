"""The model chad ships: ``chadml/assets/chad-qbh.pt``, used wherever no ``--model`` is given.

Trained from scratch by ``chad train --preset release`` (:mod:`chadml.release`); its model card is in
``chadml/assets/MODEL_CARD.md`` and inside the checkpoint (``extra["card"]``). An index built with it
records the model as :data:`BUILTIN` rather than a file path, so the index keeps working when the package
is reinstalled elsewhere.

Example
-------
>>> resolve_model("my.pt")
'my.pt'
>>> is_builtin(None), is_builtin(BUILTIN), is_builtin("my.pt")
(True, True, False)
"""
from __future__ import annotations

import os

from ..errors import ChadError

__all__ = ["BUILTIN", "ASSET", "default_model_path", "resolve_model", "is_builtin"]

BUILTIN = "builtin:chad-qbh"
ASSET = "chad-qbh.pt"


def default_model_path() -> str:
    """The path of the shipped model file inside the installed package."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", ASSET)


def is_builtin(model) -> bool:
    """Whether ``model`` names the shipped model (None or :data:`BUILTIN`)."""
    return model is None or str(model) == BUILTIN


def resolve_model(model) -> str:
    """The checkpoint file of ``model``: a path as it is, or the shipped model for None / :data:`BUILTIN`.

    A missing shipped model (a source checkout without ``chadml/assets/chad-qbh.pt``) is a ChadError that
    says how to make one."""
    if not is_builtin(model):
        return os.fspath(model)
    path = default_model_path()
    if not os.path.exists(path):
        raise ChadError(f"the shipped model {path} is missing; reinstall chad, pass --model CKPT, or train it "
                        "with `chad train --preset release --out DIR` and copy DIR/chad-qbh.pt there")
    return path
