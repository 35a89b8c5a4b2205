"""The demo videos, built for real (FFmpeg, dlib) at a reduced size: decodable with the
promised I-frames, faces findable, fakes that differ from the reals in the face only."""
import csv
import hashlib
import os
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image, ImageFilter

from noisetrace.demo_media import MANIFEST_NAME, build_demo_videos, package_file
from pipeline.faces import FaceDetector
from pipeline.keyframes import read_keyframes

from conftest import DEMO_GOP as GOP


@pytest.fixture(scope="session")
def demo(demo_set):
    root, videos = demo_set
    keyframes = {v.path: list(read_keyframes(v.path)) for v in videos}
    return root, videos, keyframes


def _pairs(videos):
    """(real, fake) per group: one fake is made from each real clip."""
    by_group = defaultdict(dict)
    for v in videos:
        by_group[v.group][v.label] = v
    return [(g["real"], g["fake"]) for g in by_group.values()]


def test_layout_manifest_and_splits(demo):
    root, videos, _ = demo
    with open(os.path.join(root, MANIFEST_NAME), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["label"], r["split"], r["group"]) for r in rows] == [
        (os.path.relpath(v.path, root), v.label, v.split, v.group) for v in videos
    ]
    for v in videos:
        assert os.path.relpath(v.path, root).split(os.sep)[0] == v.label and os.path.isfile(v.path)
    pairs = _pairs(videos)
    assert len(pairs) * 2 == len(videos)
    assert all(real.split == fake.split for real, fake in pairs)  # a group never straddles splits
    assert {(v.split, v.label) for v in videos} == {(s, l) for s in ("train", "val", "test") for l in ("real", "fake")}


def test_videos_decode_with_the_promised_iframes(demo):
    _, videos, keyframes = demo
    for v in videos:
        frames = keyframes[v.path]
        assert len(frames) == v.n_iframes >= 2, v.path
        assert [k.frame_type for k in frames] == ["I"] * v.n_iframes
        assert [k.index for k in frames] == [i * GOP for i in range(v.n_iframes)]


def test_dlib_finds_the_face_in_95_percent_of_keyframes(demo):
    _, _, keyframes = demo
    detector = FaceDetector(upsample=1)  # carphone's faces are ~45 px
    found = [bool(detector.detect(k.image)) for frames in keyframes.values() for k in frames]
    assert sum(found) >= 0.95 * len(found), f"{sum(found)}/{len(found)}"


def _highpass(image: np.ndarray) -> np.ndarray:
    grey = image.astype(np.float32).mean(2)
    smooth = Image.fromarray(np.rint(grey).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    return grey - np.asarray(smooth, np.float32)


def test_fakes_differ_from_reals_in_the_face_and_carry_another_noise_there(demo):
    _, videos, keyframes = demo
    detector = FaceDetector(upsample=1)
    other_noise = []
    for real, fake in _pairs(videos):
        for r, f in zip(keyframes[real.path], keyframes[fake.path]):
            found = detector.detect(r.image)
            if not found:
                continue  # the rare miss is counted by the detection test
            box = found[0]
            # The inner face, where the swap mask is 1; the frame's outer rim is far from it.
            w, h = box.width // 4, box.height // 4
            inner = (slice(box.top + h, box.bottom - h), slice(box.left + w, box.right - w))
            diff = np.abs(r.image.astype(np.int16) - f.image.astype(np.int16))
            rim = np.ones(diff.shape[:2], bool)
            rim[box.top - h : box.bottom + 2 * h, max(box.left - 2 * w, 0) : box.right + 2 * w] = False
            assert diff[inner].mean() > 3 * max(diff[rim].mean(), 0.5), (fake.path, r.index)
            real_noise = np.median(np.abs(_highpass(r.image)[inner]))
            fake_noise = np.median(np.abs(_highpass(f.image)[inner]))
            other_noise.append(not 1 / 1.2 < real_noise / fake_noise < 1.2)
    # Mostly weaker (the pasted face lacks the sensor noise), stronger where a grainy
    # photo's face is pasted on carphone's soft one.
    assert np.mean(other_noise) > 0.75


def test_same_seed_same_bytes(tmp_path):
    digests = []
    for run in ("a", "b", "c"):
        root = str(tmp_path / run)
        videos = build_demo_videos(root, seed=1 if run == "c" else 0, clips_per_identity=3, seconds=0.2, gop=2)
        digests.append({os.path.relpath(v.path, root): hashlib.sha256(open(v.path, "rb").read()).hexdigest() for v in videos})
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_rejects_settings_that_cannot_work(tmp_path):
    with pytest.raises(ValueError):
        build_demo_videos(str(tmp_path), clips_per_identity=2)
    with pytest.raises(ValueError):
        build_demo_videos(str(tmp_path), size=200)


def test_package_files_are_found_without_import():
    assert os.path.isfile(package_file("skimage", "data/astronaut.png"))
    assert package_file("skimage", "data/no_such_file.png") is None
    assert package_file("no_such_package_noisetrace", "x.png") is None
