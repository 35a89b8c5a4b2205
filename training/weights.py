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

from training.checkpoint import CHECKPOINT_FORMAT, DENOISER_FORMAT, NotACheckpoint, read_torch_file, save_torch_file
from training.noise_nets import DnCNN

_KAIR_KEY = re.compile(r"^model\.(\d+)\.(weight|bias)$")


def save_denoiser(path: str, extractor: DnCNN, config: dict[str, Any]) -> None:
    save_torch_file(path, {"format": DENOISER_FORMAT, "extractor": extractor.state_dict(), "config": config})


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


# The fix named when --init-denoiser gets another file.
EXTRACTOR_FILES = "give --init-denoiser a pretrain-denoiser output, a detector checkpoint or KAIR DnCNN weights"


def load_extractor_weights(extractor: DnCNN, path: str) -> str:
    """Fill `extractor` from a denoiser file, a detector checkpoint or KAIR weights.

    Returns the format name found, for logs and config.json. Weights of another size (a
    denoiser pretrained with another --preset) are refused by their layer count and width,
    before torch's many-line list of mismatched keys."""
    fmt, state = _extractor_weights(read_torch_file(path, EXTRACTOR_FILES), path)
    have, want = _dncnn_size(state), _dncnn_size(extractor.state_dict())
    if have[0] == 0:
        raise NotACheckpoint(f"{path}: holds no DnCNN weights; {EXTRACTOR_FILES}")
    if have != want:
        raise NotACheckpoint(f"{path}: a DnCNN of {have[0]} conv layers x {have[1]} features, this model's has "
                             f"{want[0]} x {want[1]}; train with the --preset those weights were made with")
    extractor.load_state_dict(kair_to_extractor_state(state, extractor) if fmt == "kair" else state)
    return fmt


def dncnn_file_size(path: str) -> tuple[int, int]:
    """(conv layers, features) of the DnCNN weights in `path`: the size a `dncnn` extractor
    given them takes, whatever `--preset` sizes the head (CDnCNN-B is 20 x 64)."""
    _, state = _extractor_weights(read_torch_file(path, EXTRACTOR_FILES), path)
    size = _dncnn_size(state)
    if size[0] == 0:
        raise NotACheckpoint(f"{path}: holds no DnCNN weights; {EXTRACTOR_FILES}")
    return size


def _extractor_weights(obj: dict[str, Any], path: str) -> tuple[str, dict[str, torch.Tensor]]:
    """(format name, DnCNN weights as that format keys them) of a loaded torch file."""
    if obj.get("format") == DENOISER_FORMAT:
        return DENOISER_FORMAT, obj["extractor"]
    if obj.get("format") == CHECKPOINT_FORMAT:
        prefix = "extractor."
        return CHECKPOINT_FORMAT, {k[len(prefix):]: v for k, v in obj["model"].items() if k.startswith(prefix)}
    if isinstance(obj.get("params"), dict):  # KAIR sometimes nests under "params"
        obj = obj["params"]
    if obj and all(_KAIR_KEY.match(k) for k in obj):
        return "kair", obj
    raise NotACheckpoint(f"{path}: neither a noisetrace denoiser/detector nor KAIR DnCNN weights; {EXTRACTOR_FILES}")


def _dncnn_size(state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(conv layers, features) of DnCNN weights keyed ours or KAIR's way: their 4-D
    tensors are the convolutions, in order, and the first one's outputs are the width."""
    convs = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 4]
    return len(convs), (int(convs[0].shape[0]) if convs else 0)
