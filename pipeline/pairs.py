"""One video in, face/background pairs (or reasons why not) out: the pure core of the
shard builder, shared by the Beam pipeline and the single-video `detect` command."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pipeline.faces import FaceDetector
from pipeline.geometry import Square, extra_background_squares, fit_squares
from pipeline.keyframes import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT_S, DecodeError, Keyframe, read_keyframes
from shards.schema import EXTRA_BACKGROUND_BOXES, PairSample, make_key

# "area" (box filter: each output pixel is the mean of the source pixels it covers) is the
# default because it neither rings nor sharpens, so it adds no texture of its own to the
# noise; face and background always go through the same filter.
RESIZE_FILTERS = {
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}
# Not a filter: the central size x size patch of each square at native resolution, so no
# resampling averages the noise away (a 300 px square area-resized to 64 px keeps about a
# fifth of its per-pixel noise). A square smaller than `size` is enlarged with "nearest".
NO_RESIZE = "none"


@dataclass(frozen=True)
class ExtractOptions:
    """Everything that decides which pairs a video gives (recorded in `_info.json`)."""

    size: int = 64
    face_scale: float = 1.3
    min_face_scale: float = 1.0
    resize_filter: str = "area"
    max_keyframes: int | None = None
    min_frames: int = 0
    upsample: int = 0
    detect_max_side: int = 640
    cnn_model: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS
    backgrounds: int = 0  # extra background squares per pair (`extra_background_squares`)

    def __post_init__(self) -> None:
        if self.backgrounds < 0:  # caught here, on the driver, not once per frame on the workers
            raise ValueError(f"--backgrounds must be 0 or more, got {self.backgrounds}")

    def detector(self) -> FaceDetector:
        return FaceDetector(upsample=self.upsample, max_side=self.detect_max_side, cnn_model=self.cnn_model)


@dataclass(frozen=True)
class Failure:
    """A video, or one keyframe of it, that gave no pair; one line of failures.jsonl."""

    video: str
    reason: str
    frame_index: int | None = None
    detail: str = ""

    def to_json(self) -> dict:
        rec = {"video": self.video, "reason": self.reason, "detail": self.detail}
        if self.frame_index is not None:
            rec["frame_index"] = self.frame_index
        return rec


@dataclass(frozen=True)
class FramePair:
    """The crops of one keyframe, before any dataset metadata is attached."""

    keyframe: Keyframe
    face_box: Square
    background_box: Square
    score: float
    face: np.ndarray = field(repr=False)
    background: np.ndarray = field(repr=False)
    # None: extras not asked for (`backgrounds` 0), so the sample stays as it always was
    extra_background_boxes: tuple[Square, ...] | None = None
    extra_backgrounds: tuple[np.ndarray, ...] = field(default=(), repr=False)


def crop_square(image: np.ndarray, square: Square, size: int, resize_filter: str) -> np.ndarray:
    """The square as a size x size image: resized with `resize_filter`, or (NO_RESIZE) its
    central patch at native resolution."""
    x, y, side = square
    if resize_filter == NO_RESIZE and side >= size:
        x, y, side = x + (side - size) // 2, y + (side - size) // 2, size
    crop = image[y : y + side, x : x + side]
    if side == size:
        return np.ascontiguousarray(crop)
    resample = Image.Resampling.NEAREST if resize_filter == NO_RESIZE else RESIZE_FILTERS[resize_filter]
    return np.asarray(Image.fromarray(crop).resize((size, size), resample))


def frame_pairs(
    path: str, video: str, detector: FaceDetector, options: ExtractOptions
) -> Iterator[FramePair | Failure]:
    """Decode the keyframes of a local file and crop a pair from each, or say why not.

    A decode error after some frames keeps those frames' results and adds one failure.
    """
    try:
        for kf in read_keyframes(
            path, max_keyframes=options.max_keyframes, min_frames=options.min_frames, timeout_s=options.timeout_s,
            max_pixels=options.max_pixels,
        ):
            h, w = kf.image.shape[:2]
            faces = detector.detect(kf.image)
            if not faces:
                yield Failure(video, "no_face", kf.index, f"{w}x{h} frame")
                continue
            d = faces[0]
            squares = fit_squares(d.left, d.top, d.right, d.bottom, w, h, options.face_scale, options.min_face_scale)
            if squares is None:
                side = max(d.width, d.height)
                yield Failure(video, "background_does_not_fit", kf.index,
                              f"face {side} px (x{options.min_face_scale} at least) in {w}x{h} frame")
                continue
            fsq, bsq = squares
            extras = tuple(extra_background_squares(fsq, bsq, w, h, options.backgrounds)) if options.backgrounds else None
            crops = [crop_square(kf.image, sq, options.size, options.resize_filter) for sq in (fsq, bsq, *(extras or ()))]
            yield FramePair(kf, fsq, bsq, d.score, crops[0], crops[1], extras, tuple(crops[2:]))
    except DecodeError as e:
        # The local path may be a temp copy: name the video instead, so records are stable.
        yield Failure(video, e.reason, None, e.detail.replace(path, video))


def to_sample(pair: FramePair, meta: dict) -> PairSample:
    """Attach dataset metadata (video, dataset, label, split, group, ...) to a frame pair."""
    kf = pair.keyframe
    h, w = kf.image.shape[:2]
    full = {
        **meta,
        "frame_index": kf.index,
        "frame_type": kf.frame_type,
        "pts": kf.pts,
        "pts_time": kf.pts_time,
        "frame_size": [w, h],
        "face_box": list(pair.face_box),
        "background_box": list(pair.background_box),
        "score": round(pair.score, 6),
    }
    if pair.extra_background_boxes is not None:
        full[EXTRA_BACKGROUND_BOXES] = [list(box) for box in pair.extra_background_boxes]
    return PairSample(make_key(meta["video"], kf.index), pair.face, pair.background, full, pair.extra_backgrounds)
