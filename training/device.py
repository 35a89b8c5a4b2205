"""Device choice and mixed precision, in one place for training, evaluation and detection."""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch


def resolve_device(name: str | None = None) -> torch.device:
    """`name` if given (e.g. 'cpu', 'cuda:1'), else CUDA when present, else CPU."""
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> ContextManager:
    """bf16 autocast on GPUs (no loss scaling needed, unlike fp16); full fp32 on CPU,
    where bf16 convolutions are slower and would change results between machines."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
