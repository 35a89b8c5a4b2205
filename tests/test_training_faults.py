"""Faults in training, for real: SIGKILL mid-epoch then --resume, corrupt and truncated
shards, files posing as checkpoints. The commands run as their console scripts in
subprocesses, killed with real signals."""
import os
import pickle
import re
import shutil
import signal
import subprocess
import time

import pytest
import torch

from shardgen import PLAIN, make_shards, read_jsonl
from shards.info import split_lengths
from training.checkpoint import NotACheckpoint, load_checkpoint, save_checkpoint
from training.train import TrainConfig, run_training

SIZE = 32
# a plain progress line every batch: how the kill test sees that epoch 2 has taken a step
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default", "NOISETRACE_PROGRESS_S": "0"}
TRAIN = [*PLAIN, "--preset", "tiny", "--epochs", "3", "--batch-size", "8", "--lr", "1e-3", "--input-size", str(SIZE), "--device", "cpu"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(str(tmp_path_factory.mktemp("shards")), {"train": 192, "val": 32, "test": 32}, shards_per_split=4, size=SIZE)


def _train(shards, out, workers, *extra, timeout=240):
    return subprocess.run(["train-from-shards", "--shards", shards, "--output", str(out), "--workers", str(workers), *TRAIN, *extra],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def _kill_in_epoch_2(shards, out, workers):
    """Start a run in its own session; SIGKILL the whole group once epoch 2 has taken a step."""
    with open(out.parent / f"{out.name}.err", "w+") as err:
        proc = subprocess.Popen(["train-from-shards", "--shards", shards, "--output", str(out), "--workers", str(workers), *TRAIN],
                                stdout=subprocess.DEVNULL, stderr=err, env=ENV, start_new_session=True)
        deadline = time.monotonic() + 180
        try:
            while not re.search(r"epoch 2/3: batch [1-9]\d*/\d+", open(err.name).read()):
                assert proc.poll() is None and time.monotonic() < deadline, "run ended or stalled before epoch 2"
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _error(stderr):
    """click's one-line error; worker processes may still be printing warnings after it."""
    (line,) = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    return line


def _without_speed(rows):
    return [{k: v for k, v in r.items() if k != "pairs_per_s"} for r in rows]


@pytest.mark.parametrize("workers", [0, 2])
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(shards, tmp_path, workers):
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert _train(shards, full, workers).returncode == 0
    _kill_in_epoch_2(shards, cut, workers)
    assert load_checkpoint(str(cut / "last.pt"))["epoch"] == 1  # killed mid-epoch 2: that epoch is redone
    # What a kill during the epoch-2 writes would leave: half a metrics line, half a temp checkpoint.
    with open(cut / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "loss": 0.6')
    (cut / "last.pt.tmp").write_bytes(b"PK\x03\x04 half a zip")
    res = _train(shards, cut, workers, "--resume")
    assert res.returncode == 0, res.stderr[-2000:]
    assert _without_speed(read_jsonl(str(cut / "metrics.jsonl"))) == _without_speed(read_jsonl(str(full / "metrics.jsonl")))
    a, b = (torch.load(d / "last.pt", weights_only=True) for d in (full, cut))
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert str(a["optimizer"]) == str(b["optimizer"])
    assert not (cut / "last.pt.tmp").exists() and not (cut / "metrics.jsonl.tmp").exists()


def test_an_interrupted_checkpoint_write_leaves_the_old_one(tmp_path):
    path = str(tmp_path / "last.pt")
    save_checkpoint(path, {"model": {"w": torch.zeros(2)}, "config": {}, "epoch": 1})
    with pytest.raises(AttributeError, match="pickle"):  # dies mid-save, as a kill would
        save_checkpoint(path, {"model": {"w": torch.ones(2)}, "config": {}, "epoch": 2, "bad": lambda: 0})
    assert load_checkpoint(path)["epoch"] == 1


@pytest.fixture(scope="module")
def bad_shards(shards, tmp_path_factory):
    """A copy of `shards` with train shard 0 cut in half and 4 KiB of noise in the middle of train shard 1."""
    root = str(tmp_path_factory.mktemp("bad") / "shards")
    shutil.copytree(shards, root)
    urls = list(split_lengths(root, "train"))
    os.truncate(urls[0], os.path.getsize(urls[0]) // 2)
    with open(urls[1], "r+b") as f:
        f.seek(os.path.getsize(urls[1]) // 2)
        f.write(os.urandom(4096))
    return root


BAD_NAMES = r"train/pairs-00000[01]\.tar"


# held in memory (the default for sets this small) or streamed (--in-memory-mb 0), the same outcome
HELD_OR_STREAMED = [(0, []), (2, []), (2, ["--in-memory-mb", "0"])]


@pytest.mark.parametrize("workers,extra", HELD_OR_STREAMED)
def test_a_bad_shard_stops_training_naming_it(bad_shards, tmp_path, workers, extra):
    started = time.monotonic()
    res = _train(bad_shards, tmp_path / "run", workers, *extra, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    error = _error(res.stderr)
    assert error.startswith("Error: bad shard ") and re.search(BAD_NAMES, error), error
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("workers,extra", HELD_OR_STREAMED)
def test_skip_warns_about_each_bad_shard_and_trains_full_epochs(bad_shards, tmp_path, workers, extra):
    res = _train(bad_shards, tmp_path / "run", workers, "--on-bad-shard", "skip", *extra, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    for name in ("train/pairs-000000.tar", "train/pairs-000001.tar"):
        assert re.search(rf"BadShardWarning: bad shard \S*{re.escape(name)}: .*\(skipped\)", res.stderr), name
    assert [r["epoch"] for r in read_jsonl(str(tmp_path / "run" / "metrics.jsonl"))] == [1, 2, 3]


@pytest.mark.parametrize("extra", [[], ["--in-memory-mb", "0"]])
def test_skip_with_every_shard_bad_is_an_error_not_a_hang(shards, tmp_path, extra):
    root = str(tmp_path / "shards")
    shutil.copytree(shards, root)
    for url in split_lengths(root, "train"):
        os.truncate(url, 700)
    res = _train(root, tmp_path / "run", 2, "--on-bad-shard", "skip", *extra, timeout=120)
    assert res.returncode == 1 and "every shard is bad" in _error(res.stderr), res.stderr[-2000:]


def test_a_shard_cut_at_a_member_boundary_is_caught_by_its_count(shards, tmp_path):
    """tarfile reads such a shard as complete; only _info.json's length gives it away."""
    import tarfile

    root = str(tmp_path / "shards")
    shutil.copytree(shards, root)
    url = list(split_lengths(root, "val"))[2]
    with tarfile.open(url) as tar:
        cut = tar.getmembers()[8].offset
    os.truncate(url, cut)
    with pytest.raises(ValueError, match=r"bad shard \S*val/pairs-000002\.tar: ValueError: holds 2 samples, _info.json says 8"):
        run_training(TrainConfig(shards=root, output=str(tmp_path / "run"), preset="tiny", epochs=1, batch_size=8,
                                 workers=0, input_size=SIZE, device="cpu"))


@pytest.mark.parametrize("workers", [0, 2])
def test_evaluate_names_a_bad_shard_or_skips_it(shards, tmp_path, workers):
    run = run_training(TrainConfig(shards=shards, output=str(tmp_path / "run"), preset="tiny", epochs=1, batch_size=8,
                                   workers=0, input_size=SIZE, device="cpu"))
    root = str(tmp_path / "shards")
    shutil.copytree(shards, root)
    url = list(split_lengths(root, "test"))[3]
    os.truncate(url, os.path.getsize(url) // 2)
    cmd = ["evaluate", "--checkpoint", f"{run.output}/best.pt", "--shards", root, "--output", str(tmp_path / "eval"),
           "--workers", str(workers), "--device", "cpu", "--batch-size", "4"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)
    assert res.returncode == 1 and re.match(r"Error: bad shard \S*test/pairs-000003\.tar: ", _error(res.stderr)), res.stderr[-2000:]
    res = subprocess.run([*cmd, "--on-bad-shard", "skip"], capture_output=True, text=True, timeout=120, env=ENV)
    assert res.returncode == 0 and "test/pairs-000003.tar" in res.stderr, res.stderr[-2000:]
    frames = sum(1 for _ in open(tmp_path / "eval" / "predictions.jsonl"))
    assert 24 <= frames < 32  # the three good shards, and what the cut one held before the cut
    for url in split_lengths(root, "test"):
        os.truncate(url, 700)
    res = subprocess.run([*cmd, "--on-bad-shard", "skip"], capture_output=True, text=True, timeout=120, env=ENV)
    assert res.returncode == 1 and "every shard is bad" in _error(res.stderr), res.stderr[-2000:]


class _RunsCode:
    def __reduce__(self):
        return (open, (os.environ["NOISETRACE_MARKER"], "w"))


@pytest.mark.parametrize("kind", ["random bytes", "pickle with code", "torch file with code", "tensor", "other dict"])
def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, monkeypatch, kind):
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("NOISETRACE_MARKER", str(marker))
    path = tmp_path / "x.pt"
    if kind == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "pickle with code":
        path.write_bytes(pickle.dumps({"format": "noisetrace-detector", "model": _RunsCode()}, protocol=2))
    elif kind == "torch file with code":
        torch.save({"format": "noisetrace-detector", "model": _RunsCode(), "config": {}}, path)
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    else:
        torch.save({"model": {"w": torch.zeros(3)}, "epoch": 1}, path)
    with pytest.raises(NotACheckpoint, match=re.escape(str(path))):
        load_checkpoint(str(path))
    assert not marker.exists()
    res = subprocess.run(["evaluate", "--checkpoint", str(path), "--shards", str(tmp_path), "--output", str(tmp_path / "e")],
                         capture_output=True, text=True, timeout=60, env={**ENV, "NOISETRACE_MARKER": str(marker)})
    assert res.returncode == 1 and _error(res.stderr).startswith(f"Error: {path}: "), res.stderr
    assert "Traceback" not in res.stderr
    assert not marker.exists()
