"""One face/background pair as it is stored in a WebDataset shard.

A sample is a group of tar members sharing a key: `<key>.face.png`, `<key>.background.png`,
`<key>.cls` and `<key>.json`. PNG keeps every pixel: JPEG would erase the noise traces the
detector reads. `cls` is 0 for real and 1 for fake, everywhere in this project (datasets
disagree on the convention; Celeb-DF's test list uses 1 for real).

Shards built with `build-shards --backgrounds K` (K > 0) add to each sample up to K more
background squares of the same frame and size, `<key>.background1.png` ...
`<key>.backgroundN.png` (N <= K, 0 when the frame has no room), and to its json
`extra_background_boxes`: their N [x, y, side] boxes, in member order. Without the option
a sample has neither, byte for byte as before, so readers of the four members keep working.

"""
from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

CLS_REAL = 0
CLS_FAKE = 1
LABEL_TO_CLS = {"real": CLS_REAL, "fake": CLS_FAKE}
CLS_TO_LABEL = {v: k for k, v in LABEL_TO_CLS.items()}
SPLITS = ("train", "val", "test")

FACE = "face.png"
BACKGROUND = "background.png"
CLS = "cls"
META = "json"
MEMBER_SUFFIXES = (BACKGROUND, CLS, FACE, META)  # every sample's, in tar order
EXTRA_BACKGROUND_BOXES = "extra_background_boxes"

# Metadata every sample carries; the builder may add more.
REQUIRED_META = (
    "video",
    "dataset",
    "label",
    "split",
    "group",
    "frame_index",
    "pts",
    "frame_size",
    "face_box",
    "background_box",
    "score",
)

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_SLUG_RE = re.compile(r"[^A-Za-z0-9_-]+")


def make_key(video: str, frame_index: int, window: int = 0) -> str:
    """A readable, unique, dot-free, path-free key for one keyframe of one video, and one
    window of it (`build-shards --windows`; window 0 has no suffix, so its key is the one
    a build without windows gives, and window k ends in `-wK`).

    WebDataset splits the key from the extension at the first dot, and a slash would make
    a sub-directory when a shard is unpacked, so the video path is reduced to a slug and a
    hash of the full path keeps two videos with the same slug apart.
    """
    stem = video.rsplit(".", 1)[0] if "." in video.rsplit("/", 1)[-1] else video
    slug = _SLUG_RE.sub("_", stem).strip("_")[-48:] or "video"
    digest = hashlib.sha1(video.encode("utf-8")).hexdigest()[:10]
    return f"{slug}-{digest}-f{int(frame_index):07d}" + (f"-w{int(window)}" if window else "")


def check_key(key: str) -> str:
    """Refuse keys that would break WebDataset grouping or escape an output directory."""
    if not _KEY_RE.match(key):
        raise ValueError(f"invalid sample key {key!r}: only letters, digits, '_' and '-'")
    return key


def extra_background_suffixes(meta: dict[str, Any]) -> list[str]:
    """The members holding a sample's extra background squares, `background1.png` ...: one
    per box of its metadata's `extra_background_boxes` (none when it has no such field)."""
    return [f"background{i}.png" for i in range(1, len(meta.get(EXTRA_BACKGROUND_BOXES, ())) + 1)]


def member_suffixes(meta: dict[str, Any]) -> tuple[str, ...]:
    """A sample's members in tar order: sorted by suffix, with its extra backgrounds, by
    number, after `background.png`."""
    return (BACKGROUND, *extra_background_suffixes(meta), CLS, FACE, META)


def encode_png(image: np.ndarray) -> bytes:
    """Lossless, deterministic PNG bytes of an HxWx3 uint8 image."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8, got {image.dtype} {image.shape}")
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """HxWx3 uint8 array from PNG bytes."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class PairSample:
    """A face square and a background square from one keyframe, with its metadata; and the
    extra background squares of `--backgrounds`, one per box of `meta["extra_background_boxes"]`."""

    key: str
    face: np.ndarray
    background: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    extra_backgrounds: tuple[np.ndarray, ...] = ()

    @property
    def cls(self) -> int:
        return LABEL_TO_CLS[self.meta["label"]]

    def to_members(self) -> list[tuple[str, bytes]]:
        """Tar members in a fixed order (`member_suffixes`) so shards are byte-identical."""
        check_key(self.key)
        missing = [k for k in REQUIRED_META if k not in self.meta]
        if missing:
            raise ValueError(f"sample {self.key} lacks metadata {missing}")
        extras = extra_background_suffixes(self.meta)
        if len(extras) != len(self.extra_backgrounds):
            raise ValueError(f"sample {self.key}: {len(self.extra_backgrounds)} extra backgrounds but "
                             f"{len(extras)} {EXTRA_BACKGROUND_BOXES}")
        payload = {
            FACE: encode_png(self.face),
            BACKGROUND: encode_png(self.background),
            **{suffix: encode_png(image) for suffix, image in zip(extras, self.extra_backgrounds)},
            CLS: str(self.cls).encode("ascii"),
            META: json.dumps(self.meta, sort_keys=True, separators=(",", ":")).encode("utf-8"),
        }
        return [(f"{self.key}.{suffix}", payload[suffix]) for suffix in member_suffixes(self.meta)]

    @classmethod
    def from_members(cls, key: str, members: dict[str, bytes]) -> "PairSample":
        """Inverse of `to_members`; `members` maps suffix (e.g. 'face.png') to bytes."""
        meta = json.loads(members[META])
        extras = tuple(decode_png(members[suffix]) for suffix in extra_background_suffixes(meta))
        sample = cls(key, decode_png(members[FACE]), decode_png(members[BACKGROUND]), meta, extras)
        if int(members[CLS]) != sample.cls:
            raise ValueError(f"sample {key}: cls {members[CLS]!r} disagrees with label")
        return sample
