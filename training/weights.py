"""Load DnCNN weights into our extractor: our own pretrained denoiser, or KAIR's zoo files.

KAIR's released DnCNN weights (`dncnn_color_blind.pth`, act_mode 'R') have BatchNorm
folded into the convolutions: keys `model.0`, `model.2`, ..., `model.{2(n-1)}` are the n
convolutions (odd indices are ReLUs), each with a bias. Our middle layers are conv (no
bias) + BatchNorm, so each KAIR bias goes into a BatchNorm set to the identity
(mean 0, var 1 - eps, weight 1): the extractor then computes exactly KAIR's noise, and
fine-tuning can still move the BatchNorm parameters. The format is told by the keys.
"""
from __future__ import annotations

import re
from typing import Any

import torch

from training.checkpoint import CHECKPOINT_FORMAT, DENOISER_FORMAT, NotACheckpoint, read_torch_file
from training.model import DnCNN

_KAIR_KEY = re.compile(r"^model\.(\d+)\.(weight|bias)$")


def save_denoiser(path: str, extractor: DnCNN, config: dict[str, Any]) -> None:
    torch.save({"format": DENOISER_FORMAT, "extractor": extractor.state_dict(), "config": config}, path)


def kair_to_extractor_state(kair: dict[str, torch.Tensor], extractor: DnCNN) -> dict[str, torch.Tensor]:
    """Map a KAIR DnCNN state dict onto `extractor`'s keys; shape mismatches raise ValueError."""
    convs = sorted({int(m.group(1)) for k in kair if (m := _KAIR_KEY.match(k))})
    if len(convs) != extractor.depth:
        raise ValueError(f"KAIR weights have {len(convs)} conv layers, the extractor {extractor.depth}")
    ours = [i for i, m in enumerate(extractor.layers) if isinstance(m, torch.nn.Conv2d)]
    state = {k: v.clone() for k, v in extractor.state_dict().items()}
    for n, (k_idx, o_idx) in enumerate(zip(convs, ours)):
        w, b = kair[f"model.{k_idx}.weight"], kair[f"model.{k_idx}.bias"]
        if w.shape != state[f"layers.{o_idx}.weight"].shape:
            raise ValueError(f"KAIR layer model.{k_idx} is {tuple(w.shape)}, ours {tuple(state[f'layers.{o_idx}.weight'].shape)}")
        state[f"layers.{o_idx}.weight"] = w
        if n in (0, len(convs) - 1):
            state[f"layers.{o_idx}.bias"] = b
        else:
            bn = f"layers.{o_idx + 1}"
            eps = extractor.layers[o_idx + 1].eps
            state[f"{bn}.weight"] = torch.ones_like(b)
            state[f"{bn}.bias"] = b.clone()
            state[f"{bn}.running_mean"] = torch.zeros_like(b)
            state[f"{bn}.running_var"] = torch.full_like(b, 1.0 - eps)
    return state


def load_extractor_weights(extractor: DnCNN, path: str) -> str:
    """Fill `extractor` from a denoiser file, a detector checkpoint or KAIR weights.

    Returns the format name found, for logs and config.json.
    """
    obj = read_torch_file(path)
    if obj.get("format") == DENOISER_FORMAT:
        extractor.load_state_dict(obj["extractor"])
        return DENOISER_FORMAT
    if obj.get("format") == CHECKPOINT_FORMAT:
        prefix = "extractor."
        extractor.load_state_dict({k[len(prefix):]: v for k, v in obj["model"].items() if k.startswith(prefix)})
        return CHECKPOINT_FORMAT
    if isinstance(obj.get("params"), dict):  # KAIR sometimes nests under "params"
        obj = obj["params"]
    if obj and all(_KAIR_KEY.match(k) for k in obj):
        extractor.load_state_dict(kair_to_extractor_state(obj, extractor))
        return "kair"
    raise NotACheckpoint(f"{path}: neither a noisetrace denoiser/detector nor KAIR DnCNN weights")
