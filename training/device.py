"""Device choice and mixed precision, in one place for training, evaluation and detection."""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch
from torch import nn

from training.model import to_unit_float


def resolve_device(name: str | None = None) -> torch.device:
    """`name` if given (e.g. 'cpu', 'cuda:1'), else CUDA when present, else CPU."""
    if name:
        try:
            device = torch.device(name)
        except RuntimeError:  # torch's message lists twenty device types
            raise ValueError(f"--device {name}: not a torch device; use cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu or leave it out")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on GPUs, where cuDNN runs bf16 convolutions in NHWC without layout
    transposes (bench/bench_training.py on an H200: the paper preset trains 2.9x faster,
    1,610 -> 4,714 pairs/s); the default layout on CPUs."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def place_model(model: nn.Module, device: torch.device) -> nn.Module:
    """The model on `device`, in that device's memory format."""
    return model.to(device, memory_format=memory_format(device))


def place_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B,3,H,W) from the loader -> float [0, 1] on `device`, in its memory format."""
    return to_unit_float(images.to(device, non_blocking=True)).contiguous(memory_format=memory_format(device))


def autocast(device: torch.device) -> ContextManager:
    """bf16 autocast on GPUs (no loss scaling needed, unlike fp16); full fp32 on CPU,
    where bf16 convolutions are slower and would change results between machines."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
