"""Self-blended fakes: fake face squares made on the fly from real ones.

After Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images" (CVPR 2022): a
face swap pastes a face rendered elsewhere into a frame through a soft mask, so the pasted
region carries another noise than the camera left on the rest of the frame. Blending a real
face with a transformed copy of itself (resampled down and up, blurred, re-noised, colour
jittered) through a feathered ellipse leaves that same cue, and nothing else a detector could
latch on to: no second identity and no seam of colour or geometry it could learn instead of
the noise. Only the face square is blended; the pair's background keeps its camera noise, so
face and background no longer agree, which is what the noise-trace detector reads. That lets
a user with only real videos train a detector.

On native patches (`build-shards --resize-filter none`) the square a pair holds is a
`--size` window of a larger face square, and a swap's mask lies in the face's geometry, not
the window's: the ellipse is therefore drawn over the face square (`patch_regions`, from
the pair's `face_box` and `face_patch`) and read at the window's pixels, so a central window
lies almost wholly inside the pasted region, as a real swap's would. The transforms are
local (a resample, a blur, noise, a colour change), so applying them to the window alone
differs from applying them at native scale to the whole square only within a few pixels of
the window's edge. Area-resized squares are the whole face square: their region is the
unit square, and their blends are bit for bit what they were before regions existed.

Everything is batched torch on the input's device; every random draw comes from the given
generator (on the generator's device, then moved), in a fixed order whatever the draws
select, so a seed gives the same fakes.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from training.recipe import BLEND_MASKS

RESAMPLE_FACTORS = (0.5, 0.625, 0.75)
BLUR_SIGMA = (0.5, 1.5)
BLUR_RADIUS = 4
NOISE_SIGMA = (2.0, 8.0)  # in uint8 levels
COLOUR_GAIN = (0.9, 1.1)
COLOUR_OFFSET = (-8.0, 8.0)
WHOLE_SQUARE = (0.0, 0.0, 1.0)


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (low + (high - low) * torch.rand(shape, generator=generator, device=generator.device)).to(device)


def patch_region(meta: Mapping[str, Any], mask: str = "face-square") -> tuple[float, float, float]:
    """Where a pair's stored face square lies in the square its blend's ellipse is drawn
    over, in units of that square: (left, top, side). Mask "face-square": a native window
    (`face_patch`, frame pixels) inside `face_box` gives its own place; a pair without one
    holds the whole (resized) square: (0, 0, 1). Mask "patch": always (0, 0, 1)."""
    if mask not in BLEND_MASKS:
        raise ValueError(f"unknown self-blend mask {mask!r}; choose from {BLEND_MASKS}")
    window, box = meta.get("face_patch"), meta.get("face_box")
    if mask == "patch" or not window or not box:
        return WHOLE_SQUARE
    (wx, wy, ws), (bx, by, bs) = window[:3], box[:3]
    return ((wx - bx) / bs, (wy - by) / bs, ws / bs)


def patch_regions(metas: Sequence[Mapping[str, Any]], mask: str = "face-square") -> torch.Tensor | None:
    """(B, 3) float regions (`patch_region`) of a batch's pairs for `self_blend`, or None
    when every pair's ellipse is drawn over its stored square."""
    regions = [patch_region(m, mask) for m in metas]
    if all(r == WHOLE_SQUARE for r in regions):
        return None
    return torch.tensor(regions, dtype=torch.float32)


def soft_ellipse_masks(
    batch: int, height: int, width: int, generator: torch.Generator, device: torch.device | None = None,
    regions: torch.Tensor | None = None,
) -> torch.Tensor:
    """(batch, 1, height, width) float masks: 1 inside a random ellipse near the middle,
    falling smoothly (smoothstep) to exactly 0 at its edge, 0 beyond.

    Centres lie within 6% of the square's middle and semi-axes are 28-42% of its width and
    32-46% of its height: the face in a 1.3x face square. The feathered part is 20-50% of the
    radius, as swap masks are blurred to hide the seam. `regions` (B, 3), each (left, top,
    side) in units of the face square (`patch_regions`): the ellipse is drawn over the face
    square and read where the stored square lies in it; None: the stored square is the face
    square. `self_blend` draws its mask with this function first, so the same generator
    state gives the same mask here."""
    device = device or generator.device
    centre = _uniform((batch, 2), 0.44, 0.56, generator, device)
    axes = torch.stack(
        [_uniform((batch,), 0.28, 0.42, generator, device), _uniform((batch,), 0.32, 0.46, generator, device)], 1
    )
    feather = _uniform((batch,), 0.2, 0.5, generator, device)
    ys = ((torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height).expand(batch, height)
    xs = ((torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width).expand(batch, width)
    if regions is not None:
        left, top, side = regions.to(device).unbind(1)
        xs, ys = left[:, None] + side[:, None] * xs, top[:, None] + side[:, None] * ys
    dx = (xs[:, None, :] - centre[:, 0, None, None]) / axes[:, 0, None, None]
    dy = (ys[:, :, None] - centre[:, 1, None, None]) / axes[:, 1, None, None]
    ramp = ((1 - torch.sqrt(dx**2 + dy**2)) / feather[:, None, None]).clamp(0, 1)
    return (ramp * ramp * (3 - 2 * ramp))[:, None]


def self_blend(faces: torch.Tensor, generator: torch.Generator, regions: torch.Tensor | None = None) -> torch.Tensor:
    """Blend each uint8 (B, 3, H, W) face with a transformed copy of itself through a
    `soft_ellipse_masks` mask (drawn over the face square, `regions`, when given); uint8
    out, same shape. Pixels where the mask is 0 are returned bit for bit.

    Each face gets its own random subset of resampling, blur and added noise (at least one:
    those change the noise) and, half the time, colour jitter."""
    if faces.dtype != torch.uint8 or faces.ndim != 4 or faces.shape[1] != 3:
        raise ValueError(f"expected uint8 (B, 3, H, W) faces, got {faces.dtype} {tuple(faces.shape)}")
    batch, _, height, width = faces.shape
    if batch == 0:
        return faces.clone()
    mask = soft_ellipse_masks(batch, height, width, generator, faces.device, regions)
    x = faces.float()
    copy = _transform(x, generator)
    blended = (x + mask * (copy - x)).round().clamp(0, 255).to(torch.uint8)
    return torch.where(mask > 0, blended, faces)


def _transform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The copy to paste: float (B, 3, H, W) in uint8 levels, per-face random ops."""
    batch, device = x.shape[0], x.device
    use = _uniform((batch, 4), 0, 1, generator, device) < 0.5  # resample, blur, noise, colour
    forced = torch.randint(0, 3, (batch,), generator=generator, device=generator.device).to(device)
    use[:, :3] |= (~use[:, :3].any(1))[:, None] & (torch.arange(3, device=device) == forced[:, None])
    factor = torch.randint(0, len(RESAMPLE_FACTORS), (batch,), generator=generator, device=generator.device).to(device)
    sigma = _uniform((batch,), *BLUR_SIGMA, generator, device)
    noise_sigma = _uniform((batch,), *NOISE_SIGMA, generator, device)
    noise = torch.randn(x.shape, generator=generator, device=generator.device).to(device)
    gain = _uniform((batch, 3), *COLOUR_GAIN, generator, device)
    offset = _uniform((batch, 3), *COLOUR_OFFSET, generator, device)

    def where(flag: torch.Tensor, changed: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        return torch.where(flag[:, None, None, None], changed, same)

    resampled = x
    for i, f in enumerate(RESAMPLE_FACTORS):
        resampled = where(factor == i, _down_up(x, f), resampled)
    x = where(use[:, 0], resampled, x)
    x = where(use[:, 1], _gaussian_blur(x, sigma), x)
    x = where(use[:, 2], x + noise_sigma[:, None, None, None] * noise, x)
    return where(use[:, 3], x * gain[:, :, None, None] + offset[:, :, None, None], x)


def _down_up(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Area-downsample by `factor` and bilinearly upsample back, as a swap model renders a
    face at low resolution and scales it to the target."""
    height, width = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, round(height * factor)), max(1, round(width * factor))), mode="area")
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-image sigma, as one grouped convolution per axis."""
    batch, channels, height, width = x.shape
    taps = torch.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps[None] / sigma[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(channels, 0)  # (B*C, K)
    flat = x.reshape(1, batch * channels, height, width)
    flat = F.conv2d(F.pad(flat, (BLUR_RADIUS, BLUR_RADIUS, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=batch * channels)
    flat = F.conv2d(F.pad(flat, (0, 0, BLUR_RADIUS, BLUR_RADIUS), mode="replicate"), kernel[:, None, :, None], groups=batch * channels)
    return flat.reshape(batch, channels, height, width)


def bank_blend(face: torch.Tensor, variants: int, pick: int, region: tuple[float, float, float] = WHOLE_SQUARE) -> torch.Tensor:
    """Blend number `pick` of the bank of `variants` fixed self-blends of one uint8 (3,H,W)
    face whose place in its face square is `region` (`patch_region`): seeded by the face's
    own pixels and the pick, so the same face always gives the same bank, in any run, fold
    or seed."""
    face_seed = int.from_bytes(hashlib.sha1(face.cpu().contiguous().numpy().tobytes()).digest()[:6], "big")
    regions = None if region == WHOLE_SQUARE else torch.tensor([region], dtype=torch.float32)
    return self_blend(face[None], torch.Generator().manual_seed(face_seed * variants + pick), regions)[0]


def bank_key(digest: str, variants: int, pick: int, region: tuple[float, float, float] = WHOLE_SQUARE) -> str:
    """The residual cache's key of a `bank_blend`: the same face in another place of its
    face square is another blend (keys of whole squares are as before regions existed)."""
    key = f"{digest}-blend{variants}x{pick}"
    return key if region == WHOLE_SQUARE else key + "-r" + ",".join(f"{v:.6g}" for v in region)
