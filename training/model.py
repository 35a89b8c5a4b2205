"""Column similarity matrix, its CNN head and the Siamese detector (sizes: training.presets; extractors: training.noise_nets).

The detector asks one question: does the face carry the same camera/compression noise as
the background of its own frame? One DnCNN with shared weights extracts the noise residual
of both squares; a per-channel cosine similarity between every face column and every
background column turns the two maps into a (C, W, W) matrix that a small CNN classifies.
"""
from __future__ import annotations

import torch
from torch import nn

from training.noise_nets import build_extractor
from training.presets import ModelConfig


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B,3,H,W) -> float in [0, 1]; done on the device so the loader ships bytes."""
    return images.float().div_(255.0)


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


def _log_rms(noise: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(..., C, H, W) -> (..., C): the log RMS of each channel, the noise level."""
    return noise.float().pow(2).mean(dim=(-2, -1)).add(eps).log().mul(0.5)


# The floor of the backgrounds' spread of log noise level when the face's level is
# z-scored against it: one background, or several alike, would otherwise divide by ~0.
LEVEL_SPREAD_FLOOR = 0.1


def frame_reference(face_noise: torch.Tensor, background_noise: torch.Tensor, extra_noise: torch.Tensor,
                    extra_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The face against the frame's own spread of backgrounds: (matrices (N,2C,W,W), levels (N,2C)).

    Matrices: the face-vs-background similarity averaged over every background square, and
    the background-vs-background similarity (the furthest square against each extra one):
    how alike two squares of this frame's camera noise are, the yardstick the first is read
    against. Levels: the face's log noise level minus the backgrounds' mean, and that
    difference in units of the backgrounds' spread. How much noise a face "should" carry
    depends on the scene; the frame's own squares say how much it varies there.
    `extra_noise` (N,K,C,H,W) with `extra_mask` (N,K) marking the real ones; K may be 0."""
    n, k = extra_mask.shape
    mask = torch.cat([extra_mask.new_ones(n, 1), extra_mask], dim=1).to(face_noise.dtype)  # (N,K+1)
    squares = torch.cat([background_noise[:, None], extra_noise], dim=1)  # (N,K+1,C,H,W)
    c, h, w = face_noise.shape[1:]
    flat = squares.flatten(0, 1)
    face_vs = column_similarity(face_noise.repeat_interleave(k + 1, 0), flat).view(n, k + 1, c, w, w)
    face_vs = (face_vs * mask[:, :, None, None, None]).sum(1) / mask.sum(1)[:, None, None, None]
    if k:
        bg_vs = column_similarity(background_noise.repeat_interleave(k, 0), extra_noise.flatten(0, 1)).view(n, k, c, w, w)
        bg_vs = (bg_vs * mask[:, 1:, None, None, None]).sum(1) / mask[:, 1:].sum(1).clamp_min(1)[:, None, None, None]
    else:
        bg_vs = torch.zeros_like(face_vs)
    levels = _log_rms(squares)  # (N,K+1,C)
    m = mask[:, :, None].float()
    mean = (levels * m).sum(1) / m.sum(1)
    spread = (((levels - mean[:, None]) ** 2 * m).sum(1) / m.sum(1)).sqrt().clamp_min(LEVEL_SPREAD_FLOOR)
    offset = _log_rms(face_noise) - mean
    return torch.cat([face_vs, bg_vs], dim=1), torch.cat([offset, offset / spread], dim=1)


class SiameseNoiseNet(nn.Module):
    """One shared extractor on face and background(s) -> similarity matrices -> 2-way logits (1 = fake).

    `reference` "background" is the paper's: the face against its one furthest square.
    "frame" reads the face against the frame's own spread (`frame_reference`), from the
    extra squares `build-shards --backgrounds K` stores; a pair without them still scores,
    against its one square."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.extractor = build_extractor(config)
        c = config.noise_channels
        frame = config.reference == "frame"
        self.head = SimilarityHead(2 * c if frame else c, config.input_size, config.head_channels, config.fc_min,
                                   extra=(3 * c if config.noise_stats else 0) + (2 * c if frame else 0))

    @property
    def reads_extra_backgrounds(self) -> bool:
        return self.config.reference == "frame"

    def noise(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def forward(self, faces: torch.Tensor, backgrounds: torch.Tensor, extra_backgrounds: torch.Tensor | None = None,
                extra_mask: torch.Tensor | None = None, *, residuals: bool = False) -> torch.Tensor:
        """Float inputs in [0, 1], (B,3,S,S) each (extras (B,K,3,S,S) with a (B,K) mask);
        every square goes through the extractor in one batch, which also keeps BatchNorm
        statistics common to all branches. `residuals=True`: the inputs are the extractor's
        outputs already (a frozen extractor's, from training.residuals)."""
        frame = self.reads_extra_backgrounds
        if frame and extra_backgrounds is None:
            extra_backgrounds = faces.new_zeros((faces.shape[0], 0, *faces.shape[1:]))
            extra_mask = torch.zeros((faces.shape[0], 0), dtype=torch.bool, device=faces.device)
        if not residuals:
            squares = [faces, backgrounds] + ([extra_backgrounds.flatten(0, 1)] if frame else [])
            noise = self.extractor(torch.cat(squares))
            faces, backgrounds = noise[: len(faces)], noise[len(faces) : 2 * len(faces)]
            if frame:
                extra_backgrounds = noise[2 * len(faces) :].view(*extra_backgrounds.shape[:2], *noise.shape[1:])
        stats = [noise_statistics(faces, backgrounds)] if self.config.noise_stats else []
        if frame:
            matrices, levels = frame_reference(faces, backgrounds, extra_backgrounds, extra_mask)
            stats.append(levels)
        else:
            matrices = column_similarity(faces, backgrounds)
        return self.head(matrices, torch.cat(stats, dim=1) if stats else None)
