"""Checkpoints: state dicts + plain-JSON config, readable with `torch.load(weights_only=True)`.

Nothing pickled beyond tensors, numbers, strings, lists and dicts, so loading a
checkpoint cannot run code; a `format` tag lets every reader refuse other files clearly.
"""
from __future__ import annotations

import io
import os
from typing import Any

import torch
from torch import nn

from shards.space import write_file
from training.detectors import build_detector, model_kind
from training.device import place_model

CHECKPOINT_FORMAT = "noisetrace-detector"
DENOISER_FORMAT = "noisetrace-dncnn"


# What each reader wants, for the fix its errors name.
DETECTOR_FILES = "give best.pt or last.pt of a train-from-shards run"


class NotACheckpoint(ValueError):
    """A file that is not the kind of torch file the caller asked for."""


def read_torch_file(path: str, wanted: str = DETECTOR_FILES) -> dict[str, Any]:
    """`torch.load(path, weights_only=True)` on CPU, with errors that name the file and,
    through `wanted`, which file to give instead."""
    if not os.path.isfile(path):
        raise NotACheckpoint(f"{path}: no such file; {wanted}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors all mean the same here
        # torch's own message suggests weights_only=False, i.e. running the file's code: not here.
        raise NotACheckpoint(f"{path}: not a torch weights file that loads with weights_only=True "
                             f"({type(exc).__name__}); {wanted}") from exc
    if not isinstance(obj, dict):
        raise NotACheckpoint(f"{path}: holds a {type(obj).__name__}, not a dict of weights; {wanted}")
    return obj


def save_torch_file(path: str, obj: dict[str, Any]) -> None:
    """Write atomically (temp file + rename) so an interrupted save never leaves half a file.

    Serialised in memory first, so a full disk is told with the file's size
    (`shards.space.OutOfSpace`); the temp file is removed and `path` keeps the previous
    good file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_file(path, buffer.getvalue())


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """A detector checkpoint, written by `save_torch_file`."""
    save_torch_file(path, {"format": CHECKPOINT_FORMAT, **state})


def saved_epochs(output: str, names: tuple[str, ...]) -> str:
    """What a run folder holds, for an error that stops it: "last.pt (epoch 3), ..." or
    "no checkpoint yet"."""
    held = []
    for name in names:
        path = os.path.join(output, name)
        if os.path.isfile(path):
            try:
                held.append(f"{name} (epoch {load_checkpoint(path)['epoch']})")
            except (NotACheckpoint, KeyError):
                continue
    return ", ".join(held) if held else "no checkpoint yet"


def load_checkpoint(path: str) -> dict[str, Any]:
    """A detector checkpoint written by `save_checkpoint`; anything else is refused."""
    ckpt = read_torch_file(path)
    if ckpt.get("format") != CHECKPOINT_FORMAT or "model" not in ckpt or "config" not in ckpt:
        raise NotACheckpoint(f"{path}: not a noisetrace detector checkpoint; {DETECTOR_FILES}")
    return ckpt


def detector_from_checkpoint(ckpt: dict[str, Any], device: str | torch.device = "cpu") -> nn.Module:
    """The detector of a loaded checkpoint (its recorded kind and shapes), in eval mode on `device`."""
    config = ckpt["config"]
    model = build_detector(model_kind(config), config["model"])
    model.load_state_dict(ckpt["model"])
    return place_model(model, torch.device(device)).eval()


def load_detector(path: str, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode on `device`, training config) from a detector checkpoint."""
    ckpt = load_checkpoint(path)
    return detector_from_checkpoint(ckpt, device), ckpt["config"]
