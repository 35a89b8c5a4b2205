"""The real-world clips in ../shared/data (skipped when absent): decoding, faces, shards."""
import csv
import os

import pytest

from pipeline.faces import FaceDetector
from pipeline.keyframes import read_keyframes
from pipeline.run import run
from shards.info import split_urls
from shards.reader import iter_pairs
from tests.test_keyframes import assert_extra_frames_exact

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
MANIFEST = os.path.join(SHARED, "MANIFEST.csv")

pytestmark = pytest.mark.skipif(not os.path.isfile(MANIFEST), reason="../shared/data is absent")


def _clips():
    with open(MANIFEST) as f:
        return list(csv.DictReader(f))


def test_iframe_counts_match_the_manifest():
    for clip in _clips():
        frames = list(read_keyframes(os.path.join(SHARED, clip["file"])))
        assert len(frames) == int(clip["n_iframes"]), clip["file"]
        assert all(f.image.shape == (int(clip["height"]), int(clip["width"]), 3) for f in frames)


def test_faces_on_a_real_talking_head():
    detector = FaceDetector()
    frames = list(read_keyframes(os.path.join(SHARED, "videos/deeperforensics/perturbation_input.mp4"), min_frames=20))
    found = sum(bool(detector.detect(f.image)) for f in frames)
    assert len(frames) >= 20 and found / len(frames) >= 0.95


def test_build_shards_accounts_for_every_clip(tmp_path):
    manifest = tmp_path / "clips.csv"
    clips = _clips()
    with open(manifest, "w") as f:
        f.write("path,label,split,group\n")
        for i, clip in enumerate(clips):  # labels are unknown: alternate them, one group each
            f.write(f"{os.path.abspath(os.path.join(SHARED, clip['file']))},{'real' if i % 2 else 'fake'},,c{i}\n")
    result = run(["--input", str(manifest), "--output", str(tmp_path / "out"), "--min-frames-per-video", "6",
                  "--min-shards", "2"])
    assert result.info["videos"]["total"] == len(clips)
    in_shards = {p["meta"]["video"] for split in result.info["splits"]
                 for p in iter_pairs(split_urls(str(tmp_path / "out"), split))}
    failed = {f["video"] for f in result.failures}
    assert in_shards | failed == {os.path.abspath(os.path.join(SHARED, c["file"])) for c in clips}
    assert len(in_shards) == result.info["videos"]["with_pairs"] >= 4  # dfdc/aajsqyyjni has (almost) no face for HOG; close-ups may not fit
    assert sum(s["num_samples"] for s in result.info["splits"].values()) >= 30


@pytest.mark.parametrize("clip", [
    "labelled/videos/ffpp/original_sequences/youtube/c23/videos/183.mp4",  # yuv444p, B-pyramid, 2 I-frames
    "labelled/videos/ffpp/original_sequences/actors/c40/videos/01__kitchen_pan.mp4",  # DFD 1080p c40
])
def test_extra_frames_of_benchmark_clips_are_exact(clip):
    path = os.path.join(SHARED, clip)
    if not os.path.isfile(path):
        pytest.skip(f"{clip} is absent")
    assert len(assert_extra_frames_exact(path, 8)) >= 6
