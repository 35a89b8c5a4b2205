"""Native pairs (`build-shards --resize-filter none`): windows, patch backgrounds, and the
`--split-by` modes, through the real pipeline, read back from the tars."""
import os
from collections import defaultdict

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from noisetrace.demo_media import package_file
from pipeline.cli import build_shards
from pipeline.faces import FaceDetector
from pipeline.geometry import overlaps
from pipeline.inputs import list_videos
from pipeline.pairs import ExtractOptions, Failure, frame_pairs
from pipeline.run import run
from pipeline.splits import assign_groups, hashed_split
from shards.info import split_urls
from shards.reader import iter_pairs
from shards.schema import make_key
from tests.media import frames_at, still_clip

SIZE = 32  # patch side: small frames, small tests


def _close_up() -> np.ndarray:
    """The astronaut's face (~87 px) filling a 160 px frame: no room for a second
    face-sized square beside it, ~35 px for a patch."""
    image = np.asarray(Image.open(package_file("skimage", "data/astronaut.png")).convert("RGB"))
    d = FaceDetector().detect(image)[0]
    cx, cy = (d.left + d.right) // 2, (d.top + d.bottom) // 2
    return np.ascontiguousarray(image[cy - 80:cy + 80, cx - 80:cx + 80])


@pytest.fixture(scope="module")
def videos(tmp_path_factory, copy_demo_set):
    """The demo videos in a real/ fake/ layout, plus a close-up clip among the real ones."""
    root = tmp_path_factory.mktemp("native-videos")
    copy_demo_set(root)
    os.remove(root / "manifest.csv")
    still_clip(str(root / "real" / "close-up.mp4"), _close_up())
    return root


def _build(videos, out, *args):
    result = run(["--input", str(videos), "--output", str(out), "--min-shards", "1", "--size", str(SIZE),
                  "--max-keyframes-per-video", "2", *args])
    pairs = [p for split in result.info["splits"] for p in iter_pairs(split_urls(str(out), split))]
    return result, pairs


@pytest.fixture(scope="module")
def windowed(videos, tmp_path_factory):
    """Native pairs, 3 windows a keyframe, split by pair."""
    return _build(videos, tmp_path_factory.mktemp("windowed"), "--resize-filter", "none", "--windows", "3",
                  "--split-by", "pair")


def test_native_patches_are_the_frames_own_pixels(videos, windowed):
    """Each stored face and background is the frame's pixels at its recorded box, frames
    decoded again on their own (every frame, none skipped)."""
    _, pairs = windowed
    by_video = defaultdict(list)
    for p in pairs:
        by_video[p["meta"]["video"]].append(p)
    checked = set()
    for video in ("real/close-up.mp4", min(v for v in by_video if v.startswith("fake/"))):
        frames = frames_at(str(videos / video), {p["meta"]["pts"] for p in by_video[video]})
        for p in by_video[video]:
            image = frames[p["meta"]["pts"]].image
            for crop, name in ((p["face"], "face_patch"), (p["background"], "background_patch")):
                x, y, side = p["meta"][name]
                assert side == SIZE and np.array_equal(crop, image[y:y + side, x:x + side])
            checked.add(p["meta"]["background_kind"])
    assert checked == {"square", "patch"}


def test_windows_give_up_to_n_pairs_a_keyframe_each_its_own_patch(windowed):
    result, pairs = windowed
    by_frame = defaultdict(list)
    for p in pairs:
        by_frame[(p["meta"]["video"], p["meta"]["frame_index"])].append(p)
    assert max(map(len, by_frame.values())) == 3
    assert result.info["keyframes"] == len(by_frame) + sum(1 for f in result.failures if "frame_index" in f)
    assert result.info["options"]["windows"] == 3
    for (video, index), group in by_frame.items():
        metas = sorted((p["meta"] for p in group), key=lambda m: m["window"])
        assert [m["window"] for m in metas] == list(range(len(metas)))
        assert [p["key"] for p in sorted(group, key=lambda p: p["meta"]["window"])] == [
            make_key(video, index)] + [f"{make_key(video, index)}-w{k}" for k in range(1, len(metas))]
        patches = [tuple(m["face_patch"]) for m in metas]
        assert all(not overlaps(a, b) for i, a in enumerate(patches) for b in patches[i + 1:])
        fx, fy, side = metas[0]["face_box"]
        assert all(fx <= x and x + s <= fx + side and fy <= y and y + s <= fy + side for x, y, s in patches)
        assert patches[0] == (fx + (side - SIZE) // 2, fy + (side - SIZE) // 2, SIZE)  # window 0: the central patch
        for m in metas:
            assert not overlaps(tuple(m["background_patch"]), tuple(m["face_box"]))
            if m["background_kind"] == "square":  # the same place in the background square
                bx, by, _ = m["background_box"]
                assert np.subtract(m["background_patch"][:2], (bx, by)).tolist() == np.subtract(
                    m["face_patch"][:2], (fx, fy)).tolist()
            else:  # one patch for every window
                assert m["background_patch"] == m["background_box"] == metas[0]["background_patch"]


def test_a_close_up_gives_native_pairs_where_squares_find_no_room(videos, windowed):
    path = str(videos / "real" / "close-up.mp4")
    resized = list(frame_pairs(path, "close-up", FaceDetector(), ExtractOptions(size=SIZE)))
    assert resized and all(isinstance(r, Failure) and r.reason == "background_does_not_fit" for r in resized)
    _, pairs = windowed
    close = [p["meta"] for p in pairs if p["meta"]["video"] == "real/close-up.mp4"]
    assert close and {m["background_kind"] for m in close} == {"patch"}
    assert all(m["background_box"][2] == SIZE and m["face_box"][2] > SIZE for m in close)


def test_pair_split_leaks_and_group_split_never_does(videos, windowed, tmp_path):
    result, pairs = windowed
    assert result.info["options"]["split_by"] == "pair"
    splits_of = defaultdict(set)
    for p in pairs:
        assert p["meta"]["split"] == hashed_split(p["key"]) and p["url"].split("/")[-2] == p["meta"]["split"]
        splits_of[p["meta"]["video"]].add(p["meta"]["split"])
    assert any(len(s) > 1 for s in splits_of.values())  # frames of one video in two splits: the leak
    grouped, pairs = _build(videos, tmp_path / "grouped", "--max-keyframes-per-video", "1")
    assert "split_by" not in grouped.info["options"] and "windows" not in grouped.info["options"]
    splits_of = defaultdict(set)
    for p in pairs:
        assert "window" not in p["meta"] and "face_patch" not in p["meta"]  # resized pairs stay as they were
        splits_of[p["meta"]["group"]].add(p["meta"]["split"])
    assert len(splits_of) > 3 and all(len(s) == 1 for s in splits_of.values())


def test_video_split_cuts_videos_and_pair_split_leaves_it_to_the_pairs(videos):
    by_group = list_videos(str(videos))
    by_video = list_videos(str(videos), split_by="video")
    usable = [r for r in by_video if r.reason is None]
    cut = assign_groups(r.video for r in usable)
    assert [r.split for r in usable] == [cut[r.video] for r in usable]
    assert [r.video for r in by_video] == [r.video for r in by_group]
    assert all(r.split is None for r in list_videos(str(videos), split_by="pair") if r.reason is None)


def test_windows_need_native_pixels(videos, tmp_path):
    res = CliRunner().invoke(build_shards, ["--input", str(videos), "--output", str(tmp_path / "o"), "--windows", "2"])
    assert res.exit_code == 2 and "--windows 2 needs --resize-filter none" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_detect_crops_every_window_the_checkpoints_shards_had(tiny_checkpoint, demo_set):
    """The windows travel from `_info.json` through the checkpoint to `detect`, which scores
    every window of every keyframe; the video's P(fake) is their mean."""
    from training.checkpoint import load_detector
    from detection.verdict import crop_options, detect_video

    model, config = load_detector(tiny_checkpoint)
    config = {**config, "shard_options": {**config.get("shard_options", {}), "resize_filter": "none", "windows": 3}}
    options = crop_options(config, max_keyframes=2)
    assert (options.windows, options.resize_filter, options.size) == (3, "none", SIZE)
    video = next(v.path for v in demo_set[1] if v.label == "fake" and "astronaut" in v.path)
    verdict = detect_video(video, model, options, "cpu")
    pairs = [p for p in frame_pairs(video, video, FaceDetector(), options) if not isinstance(p, Failure)]
    frames = [k["frame_index"] for k in verdict.keyframes]
    assert len(frames) == len(pairs) > len(set(frames))  # several windows of one keyframe, each scored
    assert verdict.fake_probability == pytest.approx(np.mean([k["fake_probability"] for k in verdict.keyframes]), abs=1e-5)
