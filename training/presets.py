"""Model sizes as plain data, importable without torch (the CLI lists them in --help).

`paper` is the published layout; `small` and `tiny` exist so CPUs can train and test.
Presets size the Siamese noise model only; the MesoNet baselines have one size each.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# `train-from-shards --model`: the paper's Siamese noise model, or a MesoNet baseline (training.mesonet).
MODEL_KINDS = ("noise", "meso4", "mesoinception4")
DEFAULT_MODEL_KIND = "noise"


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the detector's shapes; stored in checkpoints as a plain dict."""

    depth: int = 20  # DnCNN layers: 1 (conv+ReLU) + depth-2 (conv+BN+ReLU) + 1 (conv)
    features: int = 64
    head_channels: tuple[int, ...] = (32, 64, 128)  # one conv3x3+maxpool2 block each
    fc_min: int = 64  # FC layers shrink 4x while they stay at or above this width
    input_size: int = 64
    channels: int = 3
    # the noise levels of face and background (training.model.noise_statistics) beside the
    # similarity matrix; False is the paper's head (and every checkpoint written before it)
    noise_stats: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["head_channels"] = list(self.head_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        d = dict(d)
        d["head_channels"] = tuple(d["head_channels"])
        return cls(**d)


PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(),
    "small": ModelConfig(depth=8, features=32, head_channels=(16, 32, 64)),
    "tiny": ModelConfig(depth=4, features=16, head_channels=(8, 16, 32), fc_min=32),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The named preset with fields overridden (e.g. `input_size`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    d = PRESETS[name].to_dict()
    d.update(overrides)
    return ModelConfig.from_dict(d)
