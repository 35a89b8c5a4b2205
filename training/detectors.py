"""Which detector a run trains, built from the plain dict its checkpoint stores.

Every kind maps uint8-scaled (face, background) pairs to two logits, so training,
validation, `evaluate` and `detect` run the same code for all of them. A checkpoint's
config names its kind under `model_kind`; checkpoints written before the baselines
existed lack the key and are the noise model.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from training.mesonet import Meso4, MesoInception4
from training.model import SiameseNoiseNet
from training.presets import DEFAULT_MODEL_KIND, MODEL_KINDS, ModelConfig, preset

_MESONETS: dict[str, type[nn.Module]] = {"meso4": Meso4, "mesoinception4": MesoInception4}


def _check_kind(kind: str) -> None:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model {kind!r}; choose from {list(MODEL_KINDS)}")


def architecture(kind: str, preset_name: str, input_size: int, noise_stats: bool = False, extractor: str = "dncnn",
                 reference: str = "background") -> dict[str, Any]:
    """The dict that fixes the model's shapes (config.json's `model`); `preset_name`,
    `noise_stats`, `extractor` and `reference` matter only to the noise model. Every kind
    records `input_size`: `detect` crops to it."""
    _check_kind(kind)
    if kind == DEFAULT_MODEL_KIND:
        return preset(preset_name, input_size=input_size, noise_stats=noise_stats, extractor=extractor,
                      reference=reference).to_dict()
    return {"input_size": input_size, "channels": 3}


def build_detector(kind: str, arch: dict[str, Any]) -> nn.Module:
    """A freshly initialised detector of `kind` with the shapes `architecture` recorded."""
    _check_kind(kind)
    if kind == DEFAULT_MODEL_KIND:
        return SiameseNoiseNet(ModelConfig.from_dict(arch))
    return _MESONETS[kind](arch["input_size"], arch["channels"])


def model_kind(run_config: dict[str, Any]) -> str:
    """The kind a run config (checkpoint `config`, config.json) describes."""
    return run_config.get("model_kind", DEFAULT_MODEL_KIND)


def parameter_count(model: nn.Module) -> int:
    """Trainable weights, the size column of a comparison."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
