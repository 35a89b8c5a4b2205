"""dlib face detection on a real photo shipped in a package (scikit-image's astronaut)."""
import importlib.util
import os

import dlib
import numpy as np
import pytest
from PIL import Image

from pipeline.faces import SMALL_FRAME_SIDE, FaceDetector
from pipeline.geometry import background_square, face_square, overlaps
from pipeline.pairs import ExtractOptions, crop_square, frame_pairs
from tests.media import lavfi_video


def _astronaut() -> np.ndarray:
    spec = importlib.util.find_spec("skimage")
    if spec is None:
        pytest.skip("scikit-image not installed")
    path = os.path.join(spec.submodule_search_locations[0], "data", "astronaut.png")
    return np.asarray(Image.open(path).convert("RGB"))


def test_finds_the_astronaut_face():
    image = _astronaut()  # 512x512; her face is around x 180-270, y 80-175
    faces = FaceDetector().detect(image)
    assert len(faces) == 1
    f = faces[0]
    assert 150 < (f.left + f.right) / 2 < 260 and 90 < (f.top + f.bottom) / 2 < 170
    assert 60 < f.width < 130 and f.score > 0


def test_downscaled_detection_maps_back_to_frame_pixels():
    image = _astronaut()
    big = np.asarray(Image.fromarray(image).resize((1536, 1536), Image.Resampling.BICUBIC))
    small_box = FaceDetector(max_side=0).detect(image)[0]
    big_box = FaceDetector(max_side=512).detect(big)[0]  # detected at 1/3 scale
    for a, b in zip((small_box.left, small_box.top, small_box.right, small_box.bottom),
                    (big_box.left, big_box.top, big_box.right, big_box.bottom)):
        assert abs(a * 3 - b) <= 6


def test_a_small_frame_without_a_face_is_searched_again_upsampled_and_a_large_one_is_not():
    image = _astronaut()
    small = np.asarray(Image.fromarray(image).resize((256, 256), Image.Resampling.LANCZOS))  # face ~45 px
    assert not dlib.get_frontal_face_detector()(small, 0)  # too small for HOG as it is
    faces = FaceDetector().detect(small)
    assert len(faces) == 1
    full = FaceDetector().detect(image)[0]
    for a, b in zip((faces[0].left, faces[0].top, faces[0].right, faces[0].bottom), (full.left, full.top, full.right, full.bottom)):
        assert abs(a * 2 - b) <= 12  # the same face, at half the scale
    # past SMALL_FRAME_SIDE the frame is not upsampled: the same small face on a big canvas stays unfound
    canvas = np.zeros((SMALL_FRAME_SIDE + 1, SMALL_FRAME_SIDE + 1, 3), np.uint8)
    canvas[:256, :256] = small
    assert FaceDetector().detect(canvas) == []


def test_no_face_in_a_test_pattern(tmp_path):
    path = lavfi_video(str(tmp_path / "pattern.mp4"), seconds=1.0)
    results = list(frame_pairs(path, "pattern.mp4", FaceDetector(), ExtractOptions()))
    assert results and all(r.reason == "no_face" for r in results)


def test_pair_crops_are_the_squares_resized():
    image = _astronaut()
    d = FaceDetector().detect(image)[0]
    fsq = face_square(d.left, d.top, d.right, d.bottom, 512, 512, 1.3)
    bsq = background_square(fsq, 512, 512)
    assert bsq is not None and not overlaps(fsq, bsq)
    face = crop_square(image, fsq, 64, "area")
    assert face.shape == (64, 64, 3)
    same = crop_square(image, (fsq[0], fsq[1], 64), 64, "area")
    assert np.array_equal(same, image[fsq[1]:fsq[1] + 64, fsq[0]:fsq[0] + 64])


def test_no_resize_keeps_the_central_patch_pixel_for_pixel():
    image = _astronaut()
    x, y, side = 100, 40, 151
    patch = crop_square(image, (x, y, side), 64, "none")
    off = (side - 64) // 2
    assert np.array_equal(patch, image[y + off:y + off + 64, x + off:x + off + 64])
    small = crop_square(image, (x, y, 32), 64, "none")  # smaller than --size: enlarged, not resampled
    assert small.shape == (64, 64, 3) and np.array_equal(small[::2, ::2], image[y:y + 32, x:x + 32])
