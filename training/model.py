"""DnCNN noise extractor, column similarity matrix and the Siamese detector (sizes: training.presets).

The detector asks one question: does the face carry the same camera/compression noise as
the background of its own frame? One DnCNN with shared weights extracts the noise residual
of both squares; a per-channel cosine similarity between every face column and every
background column turns the two maps into a (C, W, W) matrix that a small CNN classifies.
"""
from __future__ import annotations

import torch
from torch import nn

from training.presets import ModelConfig


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B,3,H,W) -> float in [0, 1]; done on the device so the loader ships bytes."""
    return images.float().div_(255.0)


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


def column_similarity(face_noise: torch.Tensor, background_noise: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """S[n,c,i,j] = cos(face column i, background column j) of channel c: (N,C,H,W) -> (N,C,W,W).

    Columns are compared rather than pixels so the matrix does not depend on where the
    face sits vertically; `eps` keeps flat (zero-noise) columns finite.
    """
    f = face_noise / face_noise.norm(dim=2, keepdim=True).clamp_min(eps)
    b = background_noise / background_noise.norm(dim=2, keepdim=True).clamp_min(eps)
    return torch.einsum("nchi,nchj->ncij", f, b)


def _fc_widths(flat: int, fc_min: int) -> list[int]:
    """flat, flat/4, flat/16, ... while >= fc_min: the head's hidden widths."""
    widths = [flat]
    while widths[-1] // 4 >= fc_min:
        widths.append(widths[-1] // 4)
    return widths


def noise_statistics(face_noise: torch.Tensor, background_noise: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(N, 3C): per channel, the log RMS of the face noise, of the background noise, and
    their difference.

    The similarity matrix is a cosine: it discards how strong each noise is, and a pasted
    face is mostly told apart by exactly that (rendered at low resolution, smoothed, then
    blended, it carries weaker or other noise than the camera left on the background).
    Independent noise fields have cosine ~0 whether or not their levels match."""
    f = face_noise.float().pow(2).mean(dim=(2, 3)).add(eps).log().mul(0.5)
    b = background_noise.float().pow(2).mean(dim=(2, 3)).add(eps).log().mul(0.5)
    return torch.cat([f, b, f - b], dim=1)


class SimilarityHead(nn.Module):
    """(conv3x3 + ReLU + maxpool2) blocks halving the matrix, then FC layers shrinking ~4x;
    `extra` more inputs (the noise statistics) join the first FC layer."""

    def __init__(self, in_channels: int, size: int, channels: tuple[int, ...], fc_min: int, extra: int = 0) -> None:
        super().__init__()
        if size % (2 ** len(channels)):
            raise ValueError(f"input size {size} must be divisible by {2 ** len(channels)}")
        blocks: list[nn.Module] = []
        c_in = in_channels
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*blocks)
        side = size // 2 ** len(channels)
        widths = _fc_widths(c_in * side * side, fc_min)
        widths[0] += extra
        fc: list[nn.Module] = [nn.Flatten()]  # a no-op on the flat input; keeps checkpoint keys
        for a, b in zip(widths, widths[1:]):
            fc += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        fc.append(nn.Linear(widths[-1], 2))
        self.classifier = nn.Sequential(*fc)

    def forward(self, s: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        x = self.features(s).flatten(1)
        return self.classifier(x if extra is None else torch.cat([x, extra.to(x.dtype)], dim=1))


class SiameseNoiseNet(nn.Module):
    """One shared DnCNN on face and background -> column similarity -> 2-way logits (1 = fake)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.extractor = DnCNN(config.depth, config.features, config.channels)
        self.head = SimilarityHead(config.channels, config.input_size, config.head_channels, config.fc_min,
                                   extra=3 * config.channels if config.noise_stats else 0)

    def noise(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def forward(self, faces: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
        """Float inputs in [0, 1], (B,3,S,S) each; both go through the extractor in one
        batch, which also keeps BatchNorm statistics common to both branches."""
        noise = self.extractor(torch.cat([faces, backgrounds]))
        face_noise, background_noise = noise.chunk(2)
        stats = noise_statistics(face_noise, background_noise) if self.config.noise_stats else None
        return self.head(column_similarity(face_noise, background_noise), stats)
