"""`detect` on videos the test encodes, with a checkpoint trained on real shards."""
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.media import lavfi_video
from detection.detect import detect
from training.metrics import equal_error


@pytest.fixture(scope="module")
def face_video(demo_set):
    videos = demo_set[1]
    return next(v.path for v in videos if v.label == "fake" and "astronaut" in v.path)


def test_detect_scores_each_keyframe_and_says_when_there_is_no_face(tiny_checkpoint, face_video, tmp_path):
    no_face = lavfi_video(str(tmp_path / "pattern.mp4"), seconds=1.0)
    res = CliRunner().invoke(detect, [face_video, no_face, "--checkpoint", tiny_checkpoint, "--json",
                                      "--min-frames-per-video", "4"])
    assert res.exit_code == 0, res.output
    with_face, without = [json.loads(line) for line in res.stdout.splitlines()]
    assert with_face["video"] == face_video and 0.0 <= with_face["fake_probability"] <= 1.0
    frames = with_face["keyframes"]
    assert len(frames) >= 4 and all(0.0 <= k["fake_probability"] <= 1.0 for k in frames)
    assert abs(with_face["fake_probability"] - sum(k["fake_probability"] for k in frames) / len(frames)) < 1e-5
    assert all(k["face_box"][2] > 0 for k in frames)
    assert without["fake_probability"] is None and {f["reason"] for f in without["failures"]} == {"no_face"}
    table = CliRunner().invoke(detect, [no_face, "--checkpoint", tiny_checkpoint])
    assert table.exit_code == 0 and "no usable face" in table.output


def test_detect_refuses_a_file_that_is_not_a_checkpoint(face_video, tmp_path):
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a checkpoint")
    res = CliRunner().invoke(detect, [face_video, "--checkpoint", str(bogus)])
    assert res.exit_code == 1 and "Traceback" not in res.output and "Error:" in res.output


def test_equal_error_threshold_sits_where_false_positives_equal_false_negatives():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.4, 0.8, 0.85, 0.9])  # one real above one fake
    threshold, rate = equal_error(labels, scores)
    fpr = np.mean(scores[labels == 0] >= threshold)
    fnr = np.mean(scores[labels == 1] < threshold)
    assert fpr == fnr == rate == 0.25 and 0.4 < threshold < 0.7
    assert equal_error(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == (0.5, 0.0)  # halfway across the gap
    assert all(math.isnan(x) for x in equal_error(np.array([1, 1]), np.array([0.2, 0.3])))


def test_detect_compares_with_the_checkpoints_threshold_unless_told_and_says_when_it_has_none(tiny_checkpoint, face_video, tmp_path):
    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    stored = ckpt["metrics"]["val_eer_threshold"]
    assert 0.0 <= stored <= 1.0 and ckpt["config"]["shard_summary"]["splits"]["val"]["pairs"] == 32
    args = [face_video, "--checkpoint", tiny_checkpoint, "--json", "--max-keyframes-per-video", "2", "--min-frames-per-video", "0"]
    judged = json.loads(CliRunner().invoke(detect, args).stdout)
    assert judged["threshold"] == stored and "equal-error" in judged["threshold_source"]
    assert judged["verdict"] == ("likely fake" if judged["fake_probability"] >= stored else "likely real")
    told = json.loads(CliRunner().invoke(detect, args + ["--threshold", "0"]).stdout)
    assert (told["threshold"], told["threshold_source"], told["verdict"]) == (0.0, "--threshold", "likely fake")
    del ckpt["metrics"]["val_eer_threshold"]  # as a checkpoint written before thresholds were stored
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    res = CliRunner().invoke(detect, [face_video, "--checkpoint", str(old), "--max-keyframes-per-video", "2", "--min-frames-per-video", "0"])
    assert res.exit_code == 0, res.output
    assert "(threshold)" in res.stdout and "0.500" in res.stdout
    assert "records no threshold" in res.stderr
