"""Pretrain the DnCNN extractor as a blind Gaussian denoiser, from shards or an image folder.

The paper starts from a denoising DnCNN; this makes one without any download. Each image
gets its own noise level sigma ~ U(0, sigma_max)/255 (blind denoising), and the network
learns to output the noise (residual learning), which is exactly the extractor's job in
the detector. Single process: the extractor is small next to the detector's training.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from shards.source import ShardSource, open_shards
from training.data import train_loader
from training.device import autocast, resolve_device
from training.model import to_unit_float
from training.noise_nets import DnCNN
from training.presets import preset
from training.weights import save_denoiser

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class PretrainConfig:
    output: str
    shards: str | None = None
    images: str | None = None
    preset: str = "paper"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    sigma_max: float = 55.0
    patch_size: int = 64
    seed: int = 0
    workers: int = 2
    on_bad_shard: str = "stop"
    device: str | None = None


def _folder_images(root: str, size: int) -> list[np.ndarray]:
    """All images under `root` at least `size` px on each side, as uint8 HxWx3 arrays."""
    paths = sorted(
        os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.lower().endswith(IMAGE_SUFFIXES)
    )
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                a = np.asarray(im.convert("RGB"))
        except OSError as exc:  # PIL's UnidentifiedImageError and truncated files alike
            raise ValueError(f"{p}: not a readable image ({type(exc).__name__}); remove it from --images") from exc
        if min(a.shape[:2]) >= size:
            images.append(a)
    if not images:
        raise ValueError(f"{root}: {len(paths)} image(s), none at least {size}x{size} px; "
                         f"add larger ones or lower --patch-size (now {size})")
    return images


def _folder_batches(images: list[np.ndarray], size: int, batch_size: int, rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """One random crop (randomly flipped) per image per epoch, in a random order."""
    order = rng.permutation(len(images))
    for i in range(0, len(order), batch_size):
        crops = []
        for j in order[i : i + batch_size]:
            a = images[j]
            y, x = rng.integers(0, a.shape[0] - size + 1), rng.integers(0, a.shape[1] - size + 1)
            crop = a[y : y + size, x : x + size]
            crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        yield torch.from_numpy(np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2)))


def _shard_batches(source: ShardSource, config: PretrainConfig, epoch: int) -> Iterator[torch.Tensor]:
    """Faces and backgrounds of the train split, both are natural images for denoising."""
    loader, _ = train_loader(source, "train", batch_size=config.batch_size, epoch=epoch, seed=config.seed,
                             workers=config.workers, on_bad_shard=config.on_bad_shard)
    for batch in loader:
        yield torch.cat([batch["face"], batch["background"]])


def run_pretraining(config: PretrainConfig) -> str:
    """Train and save the denoiser (format `noisetrace-dncnn`); returns the output path."""
    if (config.shards is None) == (config.images is None):
        raise ValueError("give exactly one of shards or images")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model_config = preset(config.preset, input_size=config.patch_size)
    model = DnCNN(model_config.depth, model_config.features, model_config.channels).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    images = _folder_images(config.images, config.patch_size) if config.images else None
    source = open_shards(config.shards) if config.shards else None
    noise_gen = torch.Generator(device=device).manual_seed(config.seed)
    for epoch in range(config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        batches = _folder_batches(images, config.patch_size, config.batch_size, rng) if images is not None else _shard_batches(source, config, epoch)
        model.train()
        total, n, started = 0.0, 0, time.perf_counter()
        for clean_u8 in batches:
            clean = to_unit_float(clean_u8.to(device))
            sigma = torch.rand(clean.shape[0], 1, 1, 1, device=device, generator=noise_gen) * (config.sigma_max / 255.0)
            noise = torch.randn(clean.shape, device=device, generator=noise_gen) * sigma
            with autocast(device):
                loss = F.mse_loss(model(clean + noise).float(), noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, n = total + float(loss.detach()) * len(clean), n + len(clean)
        print(f"epoch {epoch + 1}/{config.epochs}: noise MSE {total / max(n, 1):.6f} "
              f"({n / (time.perf_counter() - started):.0f} images/s)", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(config.output)), exist_ok=True)
    save_denoiser(config.output, model, {"model": model_config.to_dict(), "pretrain": asdict(config)})
    return config.output
