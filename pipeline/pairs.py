"""One video in, face/background pairs (or reasons why not) out: the pure core of the
shard builder, shared by the Beam pipeline and the single-video `detect` command."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from pipeline.faces import FaceDetector
from pipeline.geometry import Square, extra_background_squares, fit_squares, native_patches
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
# How a native pair's background was found (its json's `background_kind`): a square of the
# face square's size, or (no such square fits) a `size` patch clear of the face square.
SQUARE, PATCH = "square", "patch"
# ExtractOptions fields added after shards were first built (`ExtractOptions.recorded`)
ADDED_OPTIONS = ("windows",)


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
    windows: int = 1  # native patches per face square (`native_patches`), each its own pair

    def __post_init__(self) -> None:
        # caught here, on the driver, not once per frame on the workers
        if self.backgrounds < 0:
            raise ValueError(f"--backgrounds must be 0 or more, got {self.backgrounds}")
        if self.windows < 1:
            raise ValueError(f"--windows must be 1 or more, got {self.windows}")
        if self.windows > 1 and self.resize_filter != NO_RESIZE:
            raise ValueError(f"--windows {self.windows} needs --resize-filter {NO_RESIZE}: a resized square is one "
                             f"crop, only native pixels hold several windows (got --resize-filter {self.resize_filter})")

    def recorded(self) -> dict:
        """The options as `_info.json` records them. Those added since the first shards were
        built appear only when set, so a build with their defaults stays byte-identical to
        one made before they existed."""
        fields = asdict(self)
        for name in ADDED_OPTIONS:
            if fields[name] == ExtractOptions.__dataclass_fields__[name].default:
                del fields[name]
        return fields

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
class NativePatches:
    """Where a native pair's crops lie: window `window` of its face square, and the patch
    of its background (`SQUARE`: at the same offset inside the background square; `PATCH`:
    the background box itself, shared by every window)."""

    window: int
    face_patch: Square
    background_patch: Square
    background_kind: str


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
    # None: resized squares (`face` and `background` are the whole boxes); native crops say
    # which patches of them they are and how the background was found
    native: NativePatches | None = None


def crop_square(image: np.ndarray, square: Square, size: int, resize_filter: str) -> np.ndarray:
    """The square as a size x size image: resized with `resize_filter`, or (NO_RESIZE) its
    central patch at native resolution."""
    x, y, side = native_patches(square, size, 1)[0] if resize_filter == NO_RESIZE else square
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
            kind = SQUARE
            if squares is None and options.resize_filter == NO_RESIZE:
                squares = fit_squares(d.left, d.top, d.right, d.bottom, w, h, options.face_scale,
                                      options.min_face_scale, patch=options.size)
                kind = PATCH
            if squares is None:
                side = max(d.width, d.height)
                yield Failure(video, "background_does_not_fit", kf.index,
                              f"face {side} px (x{options.min_face_scale} at least) in {w}x{h} frame")
                continue
            fsq, bsq = squares
            extras = tuple(extra_background_squares(fsq, bsq, w, h, options.backgrounds)) if options.backgrounds else None
            if options.resize_filter != NO_RESIZE:
                crops = [crop_square(kf.image, sq, options.size, options.resize_filter) for sq in (fsq, bsq, *(extras or ()))]
                yield FramePair(kf, fsq, bsq, d.score, crops[0], crops[1], extras, tuple(crops[2:]))
                continue
            yield from _native_pairs(kf, fsq, bsq, kind, d.score, extras, options)
    except DecodeError as e:
        # The local path may be a temp copy: name the video instead, so records are stable.
        yield Failure(video, e.reason, None, e.detail.replace(path, video))


def _native_pairs(kf: Keyframe, face: Square, background: Square, kind: str, score: float,
                  extras: tuple[Square, ...] | None, options: ExtractOptions) -> Iterator[FramePair]:
    """One pair per window of the face square (`native_patches`), each cropped at native
    resolution beside its own patch of the background, and of each extra background square,
    at the window's offset (a `PATCH` background is one patch, shared by every window)."""
    windows = native_patches(face, options.size, options.windows)
    backgrounds = native_patches(background, options.size, options.windows) if kind == SQUARE else [background]
    extra_windows = [native_patches(sq, options.size, options.windows) for sq in extras or ()]
    for k, face_patch in enumerate(windows):
        background_patch = backgrounds[min(k, len(backgrounds) - 1)]
        crops = [crop_square(kf.image, sq, options.size, NO_RESIZE)
                 for sq in (face_patch, background_patch, *(patches[k] for patches in extra_windows))]
        yield FramePair(kf, face, background, score, crops[0], crops[1], extras, tuple(crops[2:]),
                        NativePatches(k, face_patch, background_patch, kind))


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
    window = 0
    if pair.native is not None:
        window = pair.native.window
        full.update({"window": window, "face_patch": list(pair.native.face_patch),
                     "background_patch": list(pair.native.background_patch), "background_kind": pair.native.background_kind})
    return PairSample(make_key(meta["video"], kf.index, window), pair.face, pair.background, full, pair.extra_backgrounds)
