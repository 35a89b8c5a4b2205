"""`visualize`: the paper's Fig. 6, face/background squares above their noise traces."""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from shards.checked import checked_pairs  # noqa: E402
from shards.schema import CLS_FAKE, CLS_REAL  # noqa: E402
from shards.source import open_shards  # noqa: E402
from training.checkpoint import load_detector  # noqa: E402
from training.detectors import model_kind  # noqa: E402
from training.device import resolve_device  # noqa: E402
from training.model import to_unit_float  # noqa: E402
from training.predict import predict_pairs  # noqa: E402
from training.presets import DEFAULT_MODEL_KIND  # noqa: E402


def visible_noise(noise: np.ndarray) -> np.ndarray:
    """(H,W,C) residual -> [0,1] (H,W,3) image: mid-grey is each channel's mean, +-3
    standard deviations span the range; a 1-channel residual (Noiseprint++) is grey.

    Residuals are a few grey levels wide and can carry a constant offset (an extractor
    bias); centring each channel and scaling by the residual's own spread shows the
    texture, which is what the similarity matrix compares, at the same contrast for all.
    """
    centred = noise - noise.mean(axis=(0, 1), keepdims=True)
    image = np.clip(0.5 + centred / (6 * centred.std() + 1e-8), 0.0, 1.0)
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


@torch.no_grad()
def noise_traces(model: nn.Module, images_uint8: np.ndarray, device: torch.device) -> np.ndarray:
    """(N,H,W,3) uint8 -> (N,H,W,3) float noise residuals from the detector's extractor."""
    x = to_unit_float(torch.from_numpy(np.ascontiguousarray(images_uint8.transpose(0, 3, 1, 2))).to(device))
    return model.extractor(x).float().cpu().numpy().transpose(0, 2, 3, 1)


def pick_pairs(samples: Iterable[dict[str, Any]], per_class: int) -> list[dict[str, Any]]:
    """The first `per_class` real then the first `per_class` fake pairs of a stream."""
    chosen: dict[int, list[dict[str, Any]]] = {CLS_REAL: [], CLS_FAKE: []}
    for s in samples:
        if len(chosen[s["cls"]]) < per_class:
            chosen[s["cls"]].append(s)
        if all(len(v) == per_class for v in chosen.values()):
            break
    return chosen[CLS_REAL] + chosen[CLS_FAKE]


def draw_noise_traces(model: nn.Module, pairs: list[dict[str, Any]], output: str, device: torch.device, per_row: int = 4) -> None:
    """Draw `pairs` (decoded shard samples, real first) into `output` as Fig. 6.

    Each pair is a 2x2 block: face and background on top, their noise traces beneath;
    pairs fill rows of `per_row`, real rows above fake rows; titles give class and P(fake).
    """
    faces = np.stack([p["face"] for p in pairs])
    backgrounds = np.stack([p["background"] for p in pairs])
    face_noise, bg_noise = noise_traces(model, faces, device), noise_traces(model, backgrounds, device)
    probs = predict_pairs(model, faces, backgrounds, device)
    by_class = [[i for i, p in enumerate(pairs) if p["cls"] == c] for c in (CLS_REAL, CLS_FAKE)]
    rows = [idx[k : k + per_row] for idx in by_class for k in range(0, len(idx), per_row)]
    fig, axes = plt.subplots(2 * len(rows), 2 * per_row, figsize=(2.0 * per_row * 1.1, 2.2 * len(rows) * 1.1), dpi=110, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, row in enumerate(rows):
        for c, i in enumerate(row):
            cells = [(faces[i] / 255.0, "face"), (backgrounds[i] / 255.0, "background"),
                     (visible_noise(face_noise[i]), "face noise"), (visible_noise(bg_noise[i]), "bg noise")]
            for k, (img, name) in enumerate(cells):
                ax = axes[2 * r + k // 2, 2 * c + k % 2]
                ax.imshow(img, interpolation="nearest")
                ax.set_title(name, fontsize=7)
            label = "REAL" if pairs[i]["cls"] == CLS_REAL else "FAKE"
            axes[2 * r, 2 * c].set_title(f"{label} p={probs[i]:.2f}\nface", fontsize=7, color="green" if label == "REAL" else "red")
    fig.suptitle("Face/background noise traces (real rows above fake rows)", fontsize=9)
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)


def run_visualize(checkpoint: str, shards: str, output: str, split: str = "test", rows: int = 4, per_row: int = 4,
                  device: str | None = None, on_bad_shard: str = "stop") -> str:
    """Fig. 6 from a checkpoint and a shard split: rows/2 real rows, rows/2 fake rows.

    Pairs come through the checked reader, as training's do, so a corrupt shard stops
    with its file name instead of a traceback from deep inside tarfile."""
    dev = resolve_device(device)
    model, config = load_detector(checkpoint, dev)
    if model_kind(config) != DEFAULT_MODEL_KIND:
        raise ValueError(f"{checkpoint}: a {model_kind(config)} model has no noise extractor to draw; visualize needs the noise model")
    per_class = max(1, rows // 2) * per_row
    lengths = open_shards(shards).lengths(split)
    pairs = pick_pairs(checked_pairs(lengths, on_bad_shard)({"url": url} for url in lengths), per_class)
    if not pairs:
        raise ValueError(f"{shards}: split {split!r} holds no pairs")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    draw_noise_traces(model, pairs, output, dev, per_row)
    return output
