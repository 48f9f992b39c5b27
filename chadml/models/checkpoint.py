"""Checkpoints of the fingerprint encoder: writing, reading (weights only, never pickled code), model ids.

A checkpoint is a ``torch.save`` dict of tensors and plain values (``kind="chad-encoder"``,
``format_version``, the encoder/feature/window/train configs, the weights, optimiser state, history), read
back with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Sequence

import torch

from ..errors import ChadError
from ..features import FeatureConfig, WindowConfig
from ..util import atomic_write_bytes
from .encoder import Fingerprinter, ResNet18Encoder
from .pretrained import BUILTIN, resolve_model
from .quant import RANGES_KEY

__all__ = ["FORMAT_VERSION", "save_checkpoint", "write_state", "load_checkpoint", "build_model", "load_fingerprinter", "int8_ranges", "model_id",
           "checkpoint_id"]

FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, *, model, feature_config, window_config, train_config,
                    optimizer=None, epoch: int = 0, history: Sequence[dict] = (), rng_state: dict | None = None,
                    extra: dict | None = None) -> str:
    """Write a checkpoint atomically; returns the path."""
    state = {
        "format_version": FORMAT_VERSION,
        "kind": "chad-encoder",
        "encoder_config": model.config(),
        "feature_config": feature_config.to_dict(),
        "window_config": window_config.to_dict(),
        "train_config": train_config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "history": list(history),
        "rng_state": rng_state,
        "extra": extra or {},
    }
    return write_state(path, state)


def write_state(path: str | os.PathLike, state: dict) -> str:
    """Write a checkpoint's state dict (:func:`save_checkpoint`'s, or one derived from a read one, such as a
    release export) atomically with ``torch.save``; returns the path."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


def load_checkpoint(path: str | os.PathLike, *, device=None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (weights only; no pickled code is run).

    ``path`` may be :data:`chadml.models.BUILTIN` (the shipped model). Weights stored in fp16 (the
    release model) are returned as they are; :func:`build_model` loads them into fp32 parameters."""
    path = resolve_model(path) if str(path) == BUILTIN else os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise ChadError(f"{path} is a folder, expected a checkpoint file (.pt)")
    if os.path.getsize(path) == 0:
        raise ChadError(f"cannot read checkpoint {path}: the file is empty")
    try:
        state = torch.load(path, map_location=device or "cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        why = ("not a torch checkpoint or a corrupt one" if "weights_only" in first or "pickle" in first.lower()
               or "zip" in first.lower() else first)
        raise ChadError(f"cannot read checkpoint {path}: {why}") from None
    if not isinstance(state, dict) or state.get("kind") != "chad-encoder":
        raise ChadError(f"{path} is not a chad encoder checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise ChadError(f"checkpoint {path} has format_version {state.get('format_version')}, "
                        f"this chad reads {FORMAT_VERSION}")
    return state


def build_model(state: dict, device=None):
    model = ResNet18Encoder.from_config(state["encoder_config"])
    model.load_state_dict(state["model"])
    return model.to(device or "cpu")


def load_fingerprinter(path: str | os.PathLike, *, device=None):
    """A ready :class:`chadml.models.encoder.Fingerprinter` from a checkpoint (eval mode), its ``model_id``
    set (:func:`checkpoint_id` of the checkpoint, from the state read once)."""
    state = load_checkpoint(path, device=device)
    model = build_model(state, device).eval()
    return Fingerprinter(model, FeatureConfig.from_dict(state["feature_config"]),
                         WindowConfig.from_dict(state["window_config"]), device=device,
                         model_id=model_id(state["encoder_config"], state["feature_config"],
                                           state["window_config"], state["model"]),
                         int8_ranges=int8_ranges(state))


def int8_ranges(state: dict) -> dict | None:
    """The int8 activation ranges a checkpoint's state carries (:mod:`chadml.models.quant`), or None."""
    r = (state.get("extra") or {}).get(RANGES_KEY)
    return dict(r) if isinstance(r, dict) and r else None


def model_id(encoder_config: dict, feature_config: dict, window_config: dict, state_dict) -> str:
    """The id of a model: sha256 of its encoder/feature/window configs (sorted JSON) and its weights,
    first 16 hex digits. :func:`checkpoint_id` and :func:`chadml.index.fingerprinter_id` both use it."""
    h = hashlib.sha256()
    h.update(json.dumps({"encoder_config": encoder_config, "feature_config": feature_config,
                         "window_config": window_config}, sort_keys=True).encode())
    for k in sorted(state_dict):
        t = state_dict[k].detach().cpu()
        if t.is_floating_point() and t.dtype != torch.float32:
            t = t.float()     # fp16/bf16 weights (the release model) hash as the fp32 model they load into
        t = t.contiguous()
        h.update(k.encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def checkpoint_id(path: str | os.PathLike) -> str:
    """A stable id of a checkpoint's model (see :func:`model_id`)."""
    state = load_checkpoint(path)
    return model_id(state["encoder_config"], state["feature_config"], state["window_config"], state["model"])


