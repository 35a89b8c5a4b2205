"""End to end: encoded videos -> real Beam pipeline -> tar shards read back with WebDataset."""
import hashlib
import json
import os
import shutil
import socket

import numpy as np
import pytest
import webdataset as wds
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from click.testing import CliRunner

from pipeline.cli import build_shards
from pipeline.geometry import extra_background_squares, overlaps
from pipeline.keyframes import read_keyframes
from pipeline.pairs import crop_square
from pipeline.graph import _runner
from pipeline.run import run
from shards.checked import checked_pairs
from shards.info import split_lengths, split_urls
from shards.reader import iter_pairs, sample_meta, shard_members
from shards.schema import LABEL_TO_CLS, REQUIRED_META
from tests.media import audio_only, lavfi_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory, copy_demo_set):
    """Demo face videos plus a handful of bad inputs, in a real/ fake/ layout."""
    root = tmp_path_factory.mktemp("videos")
    copy_demo_set(root)
    os.remove(root / "manifest.csv")  # use the folder layout, not the manifest
    (root / "real" / "not a video;$(x).mp4").write_text("text, not video")
    (root / "real" / "empty.mp4").write_bytes(b"")
    audio_only(str(root / "fake" / "audio only.mp4"))
    lavfi_video(str(root / "fake" / "no face.mp4"), seconds=1.0)
    (root / "unsorted").mkdir()
    lavfi_video(str(root / "unsorted" / "who.mp4"), seconds=0.5)
    return root


def _digests(out):
    return {
        os.path.relpath(os.path.join(d, f), out): hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
        for d, _, files in os.walk(out) for f in files
    }


@pytest.fixture(scope="module")
def built(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    result = run(["--input", str(videos), "--output", str(out), "--min-shards", "3"])
    return out, result


def test_every_video_is_accounted_for(videos, built):
    out, result = built
    inputs = {os.path.relpath(os.path.join(d, f), videos) for d, _, fs in os.walk(videos) for f in fs}
    in_shards = set()
    for split in result.info["splits"]:
        for sample in wds.WebDataset(split_urls(str(out), split), shardshuffle=False, empty_check=False):
            in_shards.add(json.loads(sample["json"])["video"])
    failed = {f["video"] for f in result.failures}
    assert inputs == in_shards | failed
    reasons = {f["video"]: f["reason"] for f in result.failures if "frame_index" not in f}
    assert reasons["real/not a video;$(x).mp4"] == "decode_error"
    assert reasons["real/empty.mp4"] == "empty_file"
    assert reasons["fake/audio only.mp4"] == "no_video_stream"
    assert reasons["unsorted/who.mp4"] == "unlabelled"
    assert {f["reason"] for f in result.failures if f["video"] == "fake/no face.mp4"} == {"no_face"}
    assert result.info["videos"]["total"] == len(inputs)


def test_shards_hold_what_the_schema_promises(built):
    out, result = built
    assert set(result.info["splits"]) == {"train", "val", "test"}
    classes = set()
    for split, entry in result.info["splits"].items():
        urls = split_urls(str(out), split)
        assert len(urls) == len(entry["shard_lengths"]) >= 3
        n = 0
        for url, length in zip(urls, entry["shard_lengths"]):
            samples = list(wds.WebDataset(url, shardshuffle=False, empty_check=False).decode("rgb8"))
            assert len(samples) == length > 0
            for s in samples:
                meta = s["json"]
                assert set(REQUIRED_META) <= set(meta)
                assert meta["split"] == split and s["cls"] == LABEL_TO_CLS[meta["label"]]
                assert s["face.png"].shape == s["background.png"].shape == (64, 64, 3)
                fx, fy, side = meta["face_box"]
                bx, by, bside = meta["background_box"]
                w, h = meta["frame_size"]
                assert side == bside and 0 <= bx <= w - side and 0 <= by <= h - side
                assert bx >= fx + side or bx + side <= fx or by >= fy + side or by + side <= fy
                assert "." not in s["__key__"]
            n += length
        assert n == entry["num_samples"] == sum(entry["class_counts"].values())
        classes |= set(entry["class_counts"])
    assert classes == {"real", "fake"}


def test_output_holds_shards_and_reports_only(built):
    """The per-video spill files the workers write are gone once the run ends."""
    out, _ = built
    assert sorted(os.listdir(out)) == ["_info.json", "failures.jsonl", "test", "train", "val"]
    for split in ("test", "train", "val"):
        assert all(name.startswith("pairs-") and name.endswith(".tar") for name in os.listdir(out / split))


def test_rerun_gives_byte_identical_output(videos, built, tmp_path):
    """Also with `--backgrounds 0`, `--windows 1` and `--split-by group` said aloud: the
    defaults, so the very same bytes (the options that native patches brought leave area
    shards as they were)."""
    out, _ = built
    again = tmp_path / "again"
    run(["--input", str(videos), "--output", str(again), "--min-shards", "3", "--backgrounds", "0",
         "--windows", "1", "--split-by", "group"])
    first = _digests(out)
    assert _digests(again) == first
    # A rerun into a directory with leftovers (a stale shard, a crashed temp file) cleans them.
    shutil.copy(again / "train" / "pairs-000000.tar", again / "train" / "pairs-000099.tar")
    (again / "train" / ".pairs-000001.tar.dead.tmp").write_bytes(b"partial")
    run(["--input", str(videos), "--output", str(again), "--min-shards", "3"])
    assert _digests(again) == first


def test_backgrounds_add_squares_their_boxes_name(videos, built, tmp_path):
    """`--backgrounds 3`: the same pairs, their four members byte for byte, plus up to 3
    squares each, numbered as their json boxes are listed, cropped where those boxes say."""
    out, plain = built
    extra = tmp_path / "bg3"
    result = run(["--input", str(videos), "--output", str(extra), "--min-shards", "3", "--backgrounds", "3"])
    assert (result.info["options"]["backgrounds"], plain.info["options"]["backgrounds"]) == (3, 0)
    assert {k: v["filenames"] for k, v in result.info["splits"].items()} == {
        k: v["filenames"] for k, v in plain.info["splits"].items()}
    counts = {}
    crops = {}  # (video, frame index) -> {box: stored square}
    for split, entry in result.info["splits"].items():
        for name in entry["filenames"]:
            old, new = shard_members(str(out / name)), shard_members(str(extra / name))
            assert old.keys() == new.keys()
            for key, members in new.items():
                meta = sample_meta(members)
                boxes = meta.pop("extra_background_boxes")
                assert meta == sample_meta(old[key])
                suffixes = [f"background{i}.png" for i in range(1, len(boxes) + 1)]
                assert [n.split(".", 1)[1] for n, _ in members] == ["background.png", *suffixes, "cls", "face.png", "json"]
                assert [m for m in members if m[0].split(".", 1)[1] not in (*suffixes, "json")] == old[key][:3]
                w, h = meta["frame_size"]
                assert boxes == [list(b) for b in extra_background_squares(
                    tuple(meta["face_box"]), tuple(meta["background_box"]), w, h, 3)]
                for x, y, side in boxes:
                    assert side == meta["face_box"][2] and 0 <= x <= w - side and 0 <= y <= h - side
                    assert not overlaps((x, y, side), tuple(meta["face_box"]))
                counts[len(boxes)] = counts.get(len(boxes), 0) + 1
        pairs = checked_pairs(split_lengths(str(extra), split, result.info))([{"url": u} for u in split_urls(str(extra), split)])
        for p in pairs:
            assert len(p["extra_backgrounds"]) == len(p["meta"]["extra_background_boxes"])
            crops[(p["meta"]["video"], p["meta"]["frame_index"])] = dict(
                zip(map(tuple, p["meta"]["extra_background_boxes"]), p["extra_backgrounds"]))
    assert counts.get(3, 0) > 0 and sum(counts.values()) == sum(e["num_samples"] for e in plain.info["splits"].values())
    # The stored squares are the frame's pixels in those boxes: one video decoded again.
    video = min(v for v, _ in crops)
    frames = {kf.index: kf.image for kf in read_keyframes(str(videos / video))}
    stored = [(index, box, square) for (v, index), by_box in crops.items() if v == video for box, square in by_box.items()]
    assert stored and all(np.array_equal(square, crop_square(frames[index], box, 64, "area")) for index, box, square in stored)


def test_cli_prints_counts_and_checks_failure_rate(videos, tmp_path):
    runner = CliRunner()
    res = runner.invoke(build_shards, ["--input", str(videos / "*" / "*.mp4"), "--output", str(tmp_path / "o"),
                                       "--max-keyframes-per-video", "1", "--max-failure-rate", "0.05"])
    assert res.exit_code == 1, res.output
    assert "above --max-failure-rate" in res.output
    for text in ("train", "val", "test", "failure decode_error: 1", "keyframes/s"):
        assert text in res.output
    res = runner.invoke(build_shards, ["--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "no files under" in res.output and "Traceback" not in res.output


def test_sigkill_mid_run_leaves_no_partial_shard_and_rerun_matches(videos, built, tmp_path, capfd):
    import signal
    import subprocess
    import sys
    import tarfile
    import time

    out, _ = built
    target = tmp_path / "killed"
    cmd = [sys.executable, "-m", "pipeline.run", "--input", str(videos), "--output", str(target), "--min-shards", "3"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not any(target.glob("*/*pairs-*")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for shard in target.glob("*/pairs-*.tar"):  # whatever is visible is whole
        with tarfile.open(shard) as tar:
            names = tar.getnames()
        assert names and len(names) % 4 == 0
    assert not (target / "_info.json").exists() or _digests(target)["_info.json"] == _digests(out)["_info.json"]
    run(["--input", str(videos), "--output", str(target), "--min-shards", "3"])
    assert _digests(target) == _digests(out)
    # the killed run's lock (shards.lock) is recognised as stale and taken over, saying so
    assert f"taking over the lock of build-shards on host {socket.gethostname()}, pid {proc.pid}," in capfd.readouterr().err


def test_ffpp_layout_puts_dataset_and_method_in_each_pair(demo_set, tmp_path):
    """FF++'s folders, end to end: the fake's pairs name their method, the real's none."""
    videos = demo_set[1]
    real = next(v for v in videos if v.label == "real" and "astronaut" in v.path)
    fake = next(v for v in videos if v.label == "fake" and v.group == real.group)
    root = tmp_path / "ffpp"
    for src, rel in ((real, "original_sequences/youtube/c23/videos/001.mp4"),
                     (fake, "manipulated_sequences/FaceSwap/c23/videos/001_002.mp4")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src.path, root / rel)
    out = tmp_path / "out"
    result = run(["--input", str(root), "--output", str(out), "--min-shards", "1", "--max-keyframes-per-video", "1"])
    metas = {p["meta"]["label"]: p["meta"] for s in result.info["splits"] for p in iter_pairs(split_urls(str(out), s))}
    assert metas["fake"]["method"] == "FaceSwap" and metas["fake"]["dataset"] == "ffpp"
    assert "method" not in metas["real"] and metas["real"]["group"] == metas["fake"]["group"] == "ffpp:001"


@pytest.mark.parametrize("argv, mode, workers", [
    ([], "multi_threading", 0),  # one worker thread per core
    (["--direct_num_workers", "3"], "multi_threading", 3),
    (["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"], "multi_processing", 2),
])
def test_local_runner_takes_threads_unless_told_otherwise(argv, mode, workers):
    options = PipelineOptions(argv)
    _runner(options)
    direct = options.view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == (mode, workers)
