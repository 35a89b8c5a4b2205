"""`detect` on videos the test encodes, with a checkpoint trained on real shards."""
import json

import pytest
from click.testing import CliRunner

from tests.media import lavfi_video
from tests.shardgen import make_shards
from training.detect import detect
from training.train import TrainConfig, run_training


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    shards = make_shards(str(tmp_path_factory.mktemp("shards")), {"train": 64, "val": 32}, shards_per_split=2, size=32)
    run = str(tmp_path_factory.mktemp("run"))
    run_training(TrainConfig(shards=shards, output=run, preset="tiny", epochs=1, batch_size=16, workers=0,
                             input_size=32, device="cpu"))
    return f"{run}/best.pt"


@pytest.fixture(scope="module")
def face_video(demo_set):
    videos = demo_set[1]
    return next(v.path for v in videos if v.label == "fake" and "astronaut" in v.path)


def test_detect_scores_each_keyframe_and_says_when_there_is_no_face(checkpoint, face_video, tmp_path):
    no_face = lavfi_video(str(tmp_path / "pattern.mp4"), seconds=1.0)
    res = CliRunner().invoke(detect, [face_video, no_face, "--checkpoint", checkpoint, "--json",
                                      "--min-frames-per-video", "4"])
    assert res.exit_code == 0, res.output
    with_face, without = [json.loads(line) for line in res.output.splitlines()]
    assert with_face["video"] == face_video and 0.0 <= with_face["fake_probability"] <= 1.0
    frames = with_face["keyframes"]
    assert len(frames) >= 4 and all(0.0 <= k["fake_probability"] <= 1.0 for k in frames)
    assert abs(with_face["fake_probability"] - sum(k["fake_probability"] for k in frames) / len(frames)) < 1e-5
    assert all(k["face_box"][2] > 0 for k in frames)
    assert without["fake_probability"] is None and {f["reason"] for f in without["failures"]} == {"no_face"}
    table = CliRunner().invoke(detect, [no_face, "--checkpoint", checkpoint])
    assert table.exit_code == 0 and "no usable face" in table.output


def test_detect_refuses_a_file_that_is_not_a_checkpoint(face_video, tmp_path):
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a checkpoint")
    res = CliRunner().invoke(detect, [face_video, "--checkpoint", str(bogus)])
    assert res.exit_code == 1 and "Traceback" not in res.output and "Error:" in res.output
