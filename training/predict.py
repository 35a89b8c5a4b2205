"""Fake probabilities from a trained detector: for loaders (validation, evaluation) and arrays (detect)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from training.device import autocast, place_images


@torch.no_grad()
def fake_probability(model: nn.Module, faces: torch.Tensor, backgrounds: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B,3,H,W) pairs -> P(fake) as float32 on the CPU; `model` must be in eval mode."""
    faces, backgrounds = place_images(faces, device), place_images(backgrounds, device)
    with autocast(device):
        logits = model(faces, backgrounds)
    return logits.float().softmax(dim=1)[:, 1].cpu()


def predict_loader(model: nn.Module, loader: Any, device: torch.device) -> dict[str, Any]:
    """Run over batches of `training.data.collate_pairs`: {'prob', 'cls' (arrays), 'key', 'meta' (lists)}."""
    model.eval()
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    keys: list[str] = []
    metas: list[dict[str, Any]] = []
    for batch in loader:
        probs.append(fake_probability(model, batch["face"], batch["background"], device).numpy())
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
) -> np.ndarray:
    """(N,H,W,3) uint8 faces and backgrounds -> (N,) P(fake), e.g. for keyframes of one video."""
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
        out.append(fake_probability(model, f, b, device).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)
