"""Image folders for `pretrain-denoiser --images`, for the pretraining ablation of issue #11.

    python bench/denoiser_images.py frames --manifest ../shared/data/MANIFEST.csv --output /work/data/realframes
    python bench/denoiser_images.py dead-leaves --output /work/data/deadleaves

`frames`: decoded frames of the videos a manifest lists (its `file` column, relative to the
manifest; `read_keyframes(min_frames=...)`: the I-frames, topped up with evenly spaced
frames), saved as lossless PNG once per `--scales` factor, area-downscaled as build-shards
resizes its squares. The detector sees face squares of about 160-410 px area-resized to
64 px, i.e. the frame's noise at 2.5-6.5x downscale: a denoiser pretrained at native
resolution would learn the noise at a scale the detector never sees.

`dead-leaves`: synthetic images of overlapping flat discs (the dead-leaves model: edges and
flat regions at every scale, like natural images, but no camera, sensor or codec noise at
all), so a denoiser pretrained on them knows only the Gaussian noise pretraining adds.
"""
from __future__ import annotations

import argparse
import csv
import os

import numpy as np
from PIL import Image

from pipeline.keyframes import read_keyframes
from pipeline.pairs import RESIZE_FILTERS


def save_frames(manifest: str, output: str, scales: list[int], min_frames: int) -> int:
    """Write OUTPUT/x<scale>/<video stem>-<frame index>.png; returns the number of files."""
    root = os.path.dirname(os.path.abspath(manifest))
    with open(manifest, newline="", encoding="utf-8") as f:
        videos = [row["file"] for row in csv.DictReader(f)]
    written = 0
    for video in videos:
        stem = os.path.splitext(os.path.basename(video))[0]
        for frame in read_keyframes(os.path.join(root, video), min_frames=min_frames):
            image = Image.fromarray(frame.image)
            for scale in scales:
                folder = os.path.join(output, f"x{scale}")
                os.makedirs(folder, exist_ok=True)
                small = image.resize((image.width // scale, image.height // scale), RESIZE_FILTERS["area"])
                small.save(os.path.join(folder, f"{stem}-{frame.index:06d}.png"))
                written += 1
    return written


def dead_leaves(size: int, rng: np.random.Generator, discs: int = 600) -> np.ndarray:
    """One size x size RGB dead-leaves image: flat discs of random colour, radius drawn
    from a power law (scale invariance, as in natural images), later ones on top."""
    image = np.zeros((size, size, 3), np.uint8)
    y, x = np.mgrid[0:size, 0:size]
    radii = size * 0.01 / rng.uniform(0.02, 1.0, discs)  # density ~ 1/r^2: 0.01-0.5 x size
    for r in radii:
        cy, cx = rng.uniform(0, size, 2)
        image[(y - cy) ** 2 + (x - cx) ** 2 <= r * r] = rng.integers(0, 256, 3)
    return image


def save_dead_leaves(output: str, count: int, size: int, seed: int) -> int:
    os.makedirs(output, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(dead_leaves(size, rng)).save(os.path.join(output, f"leaves-{i:04d}.png"))
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="kind", required=True)
    frames = sub.add_parser("frames", help="decoded video frames, area-downscaled")
    frames.add_argument("--manifest", required=True, help="CSV with a `file` column of video paths relative to it")
    frames.add_argument("--output", required=True)
    frames.add_argument("--scales", default="2,4", help="downscale factors, comma-separated (1: native)")
    frames.add_argument("--min-frames", type=int, default=40)
    leaves = sub.add_parser("dead-leaves", help="synthetic images without any camera noise")
    leaves.add_argument("--output", required=True)
    leaves.add_argument("--count", type=int, default=300)
    leaves.add_argument("--size", type=int, default=192)
    leaves.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.kind == "frames":
        n = save_frames(args.manifest, args.output, [int(s) for s in args.scales.split(",")], args.min_frames)
    else:
        n = save_dead_leaves(args.output, args.count, args.size, args.seed)
    print(f"{n} images under {args.output}")


if __name__ == "__main__":
    main()
