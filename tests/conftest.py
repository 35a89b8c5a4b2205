"""Fixtures shared across test files."""
import os
import shutil
from dataclasses import replace

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N runs N workers side by side: PyTorch's threads in each (and in the CLIs
    # they start) would wait on each other actively for the same cores, so one each.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# The small demo set every test that needs encoded face videos starts from: 4 identities x 3
# clips of 1 s, real and fake, an I-frame every DEMO_GOP frames (ffmpeg + dlib, ~12 s to make).
DEMO_CLIPS = 3
DEMO_GOP = 12


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory):
    """(root, videos) built once per session; read-only: tests that add or remove files
    take their own copy with `copy_demo_set`."""
    from noisetrace.demo_media import build_demo_videos

    root = str(tmp_path_factory.mktemp("demo-set"))
    return root, build_demo_videos(root, seed=0, clips_per_identity=DEMO_CLIPS, seconds=1.0, gop=DEMO_GOP)


@pytest.fixture(scope="session")
def copy_demo_set(demo_set):
    """copy(dest) -> the demo videos copied under `dest` (created), with their new paths."""
    root, videos = demo_set

    def copy(dest):
        shutil.copytree(root, dest, dirs_exist_ok=True)
        return [replace(v, path=os.path.join(str(dest), os.path.relpath(v.path, root))) for v in videos]

    return copy


@pytest.fixture(scope="session", autouse=True)
def residual_cache_dir(tmp_path_factory):
    """Frozen extractors' residuals go to a folder of this session, never the user's cache."""
    path = str(tmp_path_factory.mktemp("residual-cache"))
    os.environ["NOISETRACE_CACHE"] = path
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """best.pt of the `tiny` preset trained for 1 epoch on small real shards (32 px squares):
    one per session, for every test that needs a detector to run rather than to be good."""
    from tests.shardgen import make_shards
    from training.train import TrainConfig, run_training

    shards = make_shards(str(tmp_path_factory.mktemp("shards")), {"train": 64, "val": 32}, shards_per_split=2, size=32)
    run = str(tmp_path_factory.mktemp("run"))
    run_training(TrainConfig(shards=shards, output=run, preset="tiny", epochs=1, batch_size=16, workers=0,
                             input_size=32, device="cpu"))
    return f"{run}/best.pt"
