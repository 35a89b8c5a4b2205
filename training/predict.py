"""Fake probabilities from a trained detector: for loaders (validation, evaluation) and arrays (detect)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from training.data import stack_extra_backgrounds
from training.device import autocast, place_images
from training.residuals import ResidualCache


def pair_inputs(model: nn.Module, faces: torch.Tensor, backgrounds: torch.Tensor, device: torch.device,
                extra: torch.Tensor | None = None, extra_mask: torch.Tensor | None = None,
                cache: ResidualCache | None = None) -> tuple[list[torch.Tensor], dict[str, Any]]:
    """(args, kwargs) of `model` for uint8 (B,3,H,W) squares (extras (B,K,3,H,W) with a
    (B,K) mask, read only by a model that `reads_extra_backgrounds`): images on `device`,
    or, given the frozen extractor's `cache`, its residuals and `residuals=True`."""
    prepare = cache or (lambda images: place_images(images, device))
    args = [prepare(faces), prepare(backgrounds)]
    if getattr(model, "reads_extra_backgrounds", False) and extra is not None:  # without extras the model uses none
        b, k = extra.shape[:2]
        squares = prepare(extra.flatten(0, 1)) if k else args[1].new_zeros((0, *args[1].shape[1:]))
        args += [squares.view(b, k, *squares.shape[1:]), extra_mask.to(device)]
    return args, ({"residuals": True} if cache is not None else {})


@torch.no_grad()
def fake_probability(model: nn.Module, faces: torch.Tensor, backgrounds: torch.Tensor, device: torch.device,
                     extra: torch.Tensor | None = None, extra_mask: torch.Tensor | None = None,
                     cache: ResidualCache | None = None) -> torch.Tensor:
    """uint8 (B,3,H,W) pairs -> P(fake) as float32 on the CPU; `model` must be in eval mode."""
    args, kwargs = pair_inputs(model, faces, backgrounds, device, extra, extra_mask, cache)
    with autocast(device):
        logits = model(*args, **kwargs)
    return logits.float().softmax(dim=1)[:, 1].cpu()


def predict_loader(model: nn.Module, loader: Any, device: torch.device, cache: ResidualCache | None = None) -> dict[str, Any]:
    """Run over batches of `training.data.collate_pairs`: {'prob', 'cls' (arrays), 'key', 'meta' (lists)}."""
    model.eval()
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    keys: list[str] = []
    metas: list[dict[str, Any]] = []
    for batch in loader:
        probs.append(fake_probability(model, batch["face"], batch["background"], device, batch["extra_background"],
                                      batch["extra_mask"], cache).numpy())
        labels.append(batch["cls"].numpy())
        keys += batch["key"]
        metas += batch["meta"]
    return {
        "prob": np.concatenate(probs) if probs else np.zeros(0, np.float32),
        "cls": np.concatenate(labels) if labels else np.zeros(0, np.int64),
        "key": keys,
        "meta": metas,
    }


def predict_pairs(
    model: nn.Module,
    faces_uint8: np.ndarray,
    backgrounds_uint8: np.ndarray,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    extra_backgrounds: Sequence[Sequence[np.ndarray]] | None = None,
) -> np.ndarray:
    """(N,H,W,3) uint8 faces and backgrounds -> (N,) P(fake), e.g. for keyframes of one video;
    `extra_backgrounds`: each pair's extra squares (`--backgrounds`), for a `frame` model."""
    faces_uint8, backgrounds_uint8 = np.asarray(faces_uint8), np.asarray(backgrounds_uint8)
    if faces_uint8.shape != backgrounds_uint8.shape or faces_uint8.ndim != 4 or faces_uint8.shape[3] != 3:
        raise ValueError(f"expected two (N,H,W,3) arrays of one shape, got {faces_uint8.shape} and {backgrounds_uint8.shape}")
    if faces_uint8.dtype != np.uint8 or backgrounds_uint8.dtype != np.uint8:
        raise ValueError("faces and backgrounds must be uint8")
    device = torch.device(device)
    model.eval()
    out = []
    for i in range(0, len(faces_uint8), batch_size):
        f = torch.from_numpy(np.ascontiguousarray(faces_uint8[i : i + batch_size].transpose(0, 3, 1, 2)))
        b = torch.from_numpy(np.ascontiguousarray(backgrounds_uint8[i : i + batch_size].transpose(0, 3, 1, 2)))
        extras = extra_backgrounds[i : i + batch_size] if extra_backgrounds is not None else [[]] * len(f)
        extra, mask = stack_extra_backgrounds([{"face": face, "extra_backgrounds": e}
                                               for face, e in zip(faces_uint8[i : i + batch_size], extras)])
        out.append(fake_probability(model, f, b, device, extra, mask).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)
