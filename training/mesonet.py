"""MesoNet baselines (Afchar et al., 2018): Meso4 and MesoInception4, face input only.

They sit beside the Siamese noise model so a comparison runs on the very same pairs,
loader, checkpoints and `evaluate`/`detect` commands; that is why `forward` takes
(faces, backgrounds) like `SiameseNoiseNet` and simply ignores the background.

Differences from the published Keras models, all deliberate:
- Input: the shard's face square (64 px by default) instead of 256x256. The four pools
  shrink the side 2*2*2*4 = 32x, so a 64 px face reaches the classifier as a 2x2x16 map
  (64 features; 8x8x16 = 1024 at 256 px), and the side must be a multiple of 32.
  Nothing is upsampled: upsampling adds no information, only compute.
- Output: two logits trained with cross-entropy (the noise model's head and loss)
  instead of one sigmoid unit, so `predict` turns both kinds into P(fake) the same way.
- Input scaling is [0, 1] (`to_unit_float`), as the original's `rescale=1/255`.
"""
from __future__ import annotations

import torch
from torch import nn

POOL_FACTOR = 2 * 2 * 2 * 4  # how much the four max-pools shrink the face side


def _conv_block(c_in: int, c_out: int, kernel: int, pool: int) -> nn.Sequential:
    """conv (same padding) + ReLU + BatchNorm + max-pool: the original's order."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.ReLU(inplace=True), nn.BatchNorm2d(c_out), nn.MaxPool2d(pool)
    )


class InceptionLayer(nn.Module):
    """Four parallel branches, concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 dilation 2;
    1x1 -> 3x3 dilation 3 (widths a, b, c, d), each conv followed by ReLU."""

    def __init__(self, c_in: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()

        def branch(width: int, dilation: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, width, 1), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True),
            )

        self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(c_in, a, 1), nn.ReLU(inplace=True)),
                                       branch(b, 1), branch(c, 2), branch(d, 3)])
        self.out_channels = a + b + c + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def _classifier(flat: int) -> nn.Sequential:
    """Dropout 0.5, FC 16, LeakyReLU 0.1, dropout 0.5, FC 2."""
    return nn.Sequential(
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(flat, 16), nn.LeakyReLU(0.1), nn.Dropout(0.5), nn.Linear(16, 2)
    )


class _MesoNet(nn.Module):
    """Shared by both variants: `features` (pooled 32x, 16 channels out) -> classifier, face only."""

    def __init__(self, features: nn.Sequential, input_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.features = features
        self.classifier = _classifier(16 * (input_size // POOL_FACTOR) ** 2)

    def forward(self, faces: torch.Tensor, backgrounds: torch.Tensor | None = None) -> torch.Tensor:
        """Float faces in [0, 1], (B,3,S,S) -> 2-way logits (1 = fake); backgrounds unused."""
        return self.classifier(self.features(faces))


def _check_size(input_size: int) -> int:
    if input_size % POOL_FACTOR:
        raise ValueError(f"MesoNet input size must be a multiple of {POOL_FACTOR}, got {input_size}")
    return input_size


class Meso4(_MesoNet):
    """Four conv blocks: 3x3 8, 5x5 8, 5x5 16, 5x5 16 (pools 2, 2, 2, 4), then the classifier."""

    def __init__(self, input_size: int = 64, channels: int = 3) -> None:
        features = nn.Sequential(
            _conv_block(channels, 8, 3, 2), _conv_block(8, 8, 5, 2), _conv_block(8, 16, 5, 2), _conv_block(16, 16, 5, 4)
        )
        super().__init__(features, _check_size(input_size))


class MesoInception4(_MesoNet):
    """Inception(1,4,4,2) and Inception(2,4,4,2), each + BatchNorm + pool 2, then Meso4's
    last two conv blocks (5x5 16, pools 2 and 4) and the classifier."""

    def __init__(self, input_size: int = 64, channels: int = 3) -> None:
        first = InceptionLayer(channels, 1, 4, 4, 2)
        second = InceptionLayer(first.out_channels, 2, 4, 4, 2)
        features = nn.Sequential(
            first, nn.BatchNorm2d(first.out_channels), nn.MaxPool2d(2),
            second, nn.BatchNorm2d(second.out_channels), nn.MaxPool2d(2),
            _conv_block(second.out_channels, 16, 5, 2), _conv_block(16, 16, 5, 4),
        )
        super().__init__(features, _check_size(input_size))
