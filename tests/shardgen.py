"""Small real shard directories for the training tests, written with the shard writer.

Real pairs: face and background both carry the same fixed sensor-like pattern P (think
PRNU) over smooth random content; fake pairs: the face carries another pattern Q that
its background lacks. Only the noise tells them apart, so a model that learns is reading
noise traces. With `visible_fakes`, fake faces also get a brightened central patch (a
crude pasted-in region), the kind of visible artefact face-only baselines like MesoNet read.
"""
from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable

import numpy as np

from shards.info import ShardRecord, build_info, dumps_info
from shards.schema import PairSample, make_key
from shards.writer import shard_name, write_shard

PATTERN_AMPLITUDE = 40.0  # strong enough that a tiny model learns it from scratch in seconds
PATCH_BRIGHTNESS = 60.0  # visible fakes: added to the central half of the face


def _pattern(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(size, size, 3)) * PATTERN_AMPLITUDE


def _content(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth content: a random colour gradient, nothing high-frequency."""
    y, x = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(60, 190, 3)
    slope = rng.uniform(-40, 40, (2, 3))
    return base + x[..., None] * slope[0] + y[..., None] * slope[1]


def make_pair(index: int, fake: bool, split: str, size: int, video: str | None = None, visible: bool = False,
              extras: int | None = None, native: bool = False) -> PairSample:
    """One pair; with `extras` (as `build-shards --backgrounds` gives), that many more
    background squares of the same pattern and their `extra_background_boxes`; `native`:
    the face is the middle window of a face square twice its side, as `build-shards
    --resize-filter none` records it (`face_patch` inside `face_box`)."""
    rng = np.random.default_rng([index, int(fake), zlib.crc32(split.encode()) % 1000])
    real_p, fake_p = _pattern(size, 1), _pattern(size, 2)
    face = _content(rng, size) + (fake_p if fake else real_p) + rng.normal(0, 1.5, (size, size, 3))
    background = _content(rng, size) + real_p + rng.normal(0, 1.5, (size, size, 3))
    if fake and visible:
        face[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] += PATCH_BRIGHTNESS
    label = "fake" if fake else "real"
    video = video or f"{split}/{label}/v{index // 4:03d}.mp4"
    meta = {
        "video": video, "dataset": "synthetic-a" if index % 3 else "synthetic-b", "label": label, "split": split,
        "group": video, "frame_index": index, "pts": index * 512, "frame_size": [320, 240],
        "face_box": [10, 10, size], "background_box": [200, 120, size], "score": 1.0,
    }
    if native:
        meta.update(face_box=[10, 10, 2 * size], face_patch=[10 + size // 2, 10 + size // 2, size], window=0)
    to_u8 = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)  # noqa: E731
    more = [to_u8(_content(rng, size) + real_p + rng.normal(0, 1.5, (size, size, 3))) for _ in range(extras or 0)]
    if extras is not None:
        meta["extra_background_boxes"] = [[320 - size, 40 * i, size] for i in range(extras)]
    return PairSample(make_key(video, index), to_u8(face), to_u8(background), meta, tuple(more))


def make_shards(root: str, counts: dict[str, int], shards_per_split: int = 2, size: int = 32, fake_every: int = 2,
                visible_fakes: bool = False, group_of: Callable[[int, str], str] | None = None,
                backgrounds: int = 0, native: bool = False) -> str:
    """Write `counts[split]` pairs per split over `shards_per_split` shards, plus `_info.json`.
    `group_of(index, label)` regroups pairs (by default each video is its own group).
    `backgrounds` K > 0: pair i carries i % (K + 1) extra background squares, as frames
    with more or less room do under `build-shards --backgrounds K`. `native`: pairs as
    `make_pair(native=True)` makes them."""
    records = []
    for split, n in counts.items():
        os.makedirs(os.path.join(root, split), exist_ok=True)
        samples = [make_pair(i, i % fake_every == 1, split, size, visible=visible_fakes,
                             extras=i % (backgrounds + 1) if backgrounds else None, native=native) for i in range(n)]
        for i, sample in enumerate(samples):
            if group_of:
                sample.meta["group"] = group_of(i, sample.meta["label"])
        for s in range(shards_per_split):
            part = samples[s::shards_per_split]
            name = f"{split}/{shard_name(s)}"
            write_shard(os.path.join(root, name), part)
            counts_by_label: dict[str, int] = {}
            for p in part:
                counts_by_label[p.meta["label"]] = counts_by_label.get(p.meta["label"], 0) + 1
            records.append(ShardRecord(split, name, len(part), counts_by_label))
    with open(os.path.join(root, "_info.json"), "w", encoding="utf-8") as f:
        f.write(dumps_info(build_info(records, {"size": size})))
    return root


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# train-from-shards' defaults train on self-blended reals (training.recipe); tests about
# learning the shards' own fakes, or about determinism, pin TrainConfig's plain recipe
PLAIN = ["--fake-source", "shards", "--self-blend", "0"]
