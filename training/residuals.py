"""A frozen extractor's residuals, computed once per square and kept on disk.

With the extractor frozen (`--freeze-denoiser`, or a published one: `--extractor
noiseprintpp|ffdnet`), training only learns the head, and the extractor, 20 layers of 64
features at full resolution, is nearly all of the arithmetic. Its output for a square
never changes, so it is computed once and read back in every later epoch, fold, seed and
evaluation.

Entries are keyed by what determines them: the extractor (a digest of its class and
weights, `extractor_fingerprint`) and the square's own pixels (a digest of its uint8
bytes). So a cache is shared by every run and fold that sees the same square, and a
changed shard or extractor simply misses: nothing goes stale. Residuals are stored as
float16 (a 64 px colour square: 24 KB) and always read back through float16, hit or
miss, so a run gives the same numbers whatever the cache held. Each entry is written to a
temp file and renamed, so runs sharing a cache (several seeds at once) never read half a
file.

What a cache cannot hold: squares made anew each step. The trainer therefore draws
self-blended fakes from a fixed bank of `--blend-variants` per real face
(training.selfblend.bank_blend, dealt by training.residual_pairs) and flips residuals instead of images; JPEG
re-encoding (`--recompress`) turns the cache off.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from training.device import autocast, place_images

CACHE_ENV = "NOISETRACE_CACHE"
CACHE_OFF = "off"


def default_cache_dir() -> str:
    """$NOISETRACE_CACHE, else noisetrace/residuals under the user's cache folder."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "noisetrace", "residuals")


def extractor_fingerprint(extractor: nn.Module) -> str:
    """A digest of the extractor's class, settings and every weight and buffer."""
    h = hashlib.sha256(type(extractor).__name__.encode())
    h.update(repr(getattr(extractor, "sigma", None)).encode())
    for name, tensor in sorted(extractor.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def square_digest(image: torch.Tensor) -> str:
    """A digest of one uint8 (3,H,W) square: its shape and bytes."""
    array = image.detach().cpu().contiguous().numpy()
    return hashlib.sha1(repr(array.shape).encode() + array.tobytes()).hexdigest()


def frozen_extractor(train_options: dict[str, Any]) -> bool:
    """Whether a run (its TrainConfig as a dict) keeps its extractor fixed: the published
    extractors always, the paper's DnCNN under --freeze-denoiser."""
    return bool(train_options.get("freeze_denoiser")) or train_options.get("extractor", "dncnn") != "dncnn"


def cache_for(model: nn.Module, frozen: bool, setting: str | None, device: torch.device) -> ResidualCache | None:
    """The cache of `model`'s frozen extractor's residuals under `setting` (None: the
    default folder), or None where there is nothing fixed to cache or it is turned off."""
    if not frozen or setting == CACHE_OFF or not hasattr(model, "extractor"):
        return None
    return ResidualCache(model.extractor, setting or default_cache_dir(), device)


class ResidualCache:
    """uint8 squares -> the frozen extractor's residuals (float32 on `device`), through disk."""

    def __init__(self, extractor: nn.Module, root: str, device: torch.device, batch_size: int = 64) -> None:
        self.extractor = extractor
        self.dir = os.path.join(root, extractor_fingerprint(extractor))
        self.device = device
        self.batch_size = batch_size
        self.hits = 0
        self.misses = 0

    def _path(self, digest: str) -> str:
        return os.path.join(self.dir, digest[:2], f"{digest}.npy")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) uint8 -> (B,C,H,W) residuals."""
        return self.get([square_digest(image) for image in images], lambda picked: images[picked])

    def get(self, keys: list[str], images: Callable[[list[int]], torch.Tensor]) -> torch.Tensor:
        """The residuals of the squares named by `keys`; `images(positions)` makes the uint8
        squares of the keys not cached yet (for a self-blend: the blend, made only then)."""
        found: list[np.ndarray | None] = []
        for key in keys:
            try:
                found.append(np.load(self._path(key)))
            except (FileNotFoundError, ValueError, EOFError):  # absent, or unreadable: computed again
                found.append(None)
        missing = [i for i, f in enumerate(found) if f is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            for i, residual in zip(chunk, self._compute(images(chunk))):
                found[i] = residual
                self._store(keys[i], residual)
        return torch.from_numpy(np.stack(found)).to(self.device).float()

    @torch.no_grad()
    def _compute(self, images: torch.Tensor) -> np.ndarray:
        was_training = self.extractor.training
        self.extractor.eval()
        with autocast(self.device):
            residuals = self.extractor(place_images(images, self.device))
        self.extractor.train(was_training)
        return residuals.float().cpu().numpy().astype(np.float16)

    def _store(self, digest: str, residual: np.ndarray) -> None:
        path = self._path(digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, residual)
        os.replace(tmp, path)
