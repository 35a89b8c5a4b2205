"""Re-encode face and background of a pair together, so compression is not the cue.

Benchmark sets mix compression levels unevenly across classes (FF++ c23 and c40, DFD's
reals mostly c40 beside c23 fakes): a detector can score by how compressed a clip is. A
pair whose face and background both go through one JPEG encode at one random quality keeps
whatever mismatch the two had, but its absolute compression level now varies within each
class. Applied after self-blending, as a real fake is compressed after its face is pasted.
JPEG's 8x8 DCT is the same family of transform as H.264's intra blocks.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

QUALITY = (40, 95)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=0)
    return np.array(Image.open(buf).convert("RGB"))  # a writable copy: torch wraps it


def recompress_pairs(faces: torch.Tensor, backgrounds: torch.Tensor, probability: float,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (B, 3, H, W) CPU faces and backgrounds; each pair, with `probability`, JPEG
    re-encoded at one quality drawn from QUALITY for both squares. Draws come from
    `generator` in a fixed order, so a seed gives the same batches."""
    batch = faces.shape[0]
    chosen = torch.rand(batch, generator=generator) < probability
    quality = torch.randint(QUALITY[0], QUALITY[1] + 1, (batch,), generator=generator)
    if not bool(chosen.any()):
        return faces, backgrounds
    faces, backgrounds = faces.clone(), backgrounds.clone()
    for i in chosen.nonzero().flatten().tolist():
        q = int(quality[i])
        for images in (faces, backgrounds):
            images[i] = torch.from_numpy(_jpeg(images[i].permute(1, 2, 0).numpy(), q)).permute(2, 0, 1)
    return faces, backgrounds
