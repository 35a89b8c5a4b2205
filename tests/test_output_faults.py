"""Faults that must lose nothing, on real filesystems: two runs on one output (the second
refuses at once, naming the first), a lock left by a SIGKILLed run (taken over), and a disk
that fills during a build and during a checkpoint save (a small tmpfs mounted here: one
error line, no temp files, and the rerun after freeing space matches a clean run)."""
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from pipeline.cli import build_shards
from pipeline.run import run
from shardgen import PLAIN, make_shards, read_jsonl
from evaluation.cli import evaluate
from shards.lock import EXIT_BUSY, LOCK_NAME, OutputBusy, output_lock
from shards.space import EXIT_OUT_OF_SPACE
from training.checkpoint import load_checkpoint
from training.cli import train_from_shards

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NOISETRACE_PROGRESS_S": "0"}
SIZE = 32
TRAIN = [*PLAIN, "--preset", "tiny", "--batch-size", "8", "--lr", "1e-3", "--input-size", str(SIZE),
         "--device", "cpu", "--workers", "0"]


def _digests(out):
    return {os.path.relpath(os.path.join(d, f), out): hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
            for d, _, files in os.walk(out) for f in files}


def _temp_files(root):
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".tmp")]


def _build(videos, out):
    return ["build-shards", "--input", videos, "--output", str(out)]


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("Error: ")]


@pytest.fixture(scope="module")
def videos(demo_set):
    return demo_set[0]  # its manifest.csv: labels, splits and groups given


@pytest.fixture(scope="module")
def clean(videos, tmp_path_factory):
    """The digests of a clean build of the demo set: what every faulted build must end as."""
    out = tmp_path_factory.mktemp("clean")
    run(["--input", videos, "--output", str(out)])
    return _digests(out)


@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a fresh tmpfs of that size (e.g. "1m") under tmp_path; resize(size) grows it."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = []

    def mount(size):
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
        if res.returncode:
            pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {res.stderr.strip()}")
        mounted.append(where)
        return where

    def resize(size):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)

    yield mount, resize
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


def test_two_builds_on_one_output_one_refuses_at_once_the_other_matches_a_clean_build(videos, clean, tmp_path):
    out = tmp_path / "out"
    started = time.monotonic()
    procs = [subprocess.Popen(_build(videos, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    ended = {}
    while len(ended) < 2:
        for i, proc in enumerate(procs):
            if i not in ended and proc.poll() is not None:
                ended[i] = time.monotonic() - started
        time.sleep(0.05)
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, EXIT_BUSY], [p.stderr.read()[-2000:] for p in procs]
    winner, loser = sorted(range(2), key=lambda i: procs[i].returncode)
    (line,) = _error_lines(procs[loser].stderr.read())
    assert re.fullmatch(rf"Error: {re.escape(str(out))} is in use by build-shards on host \S+, pid {procs[winner].pid}, "
                        r"started \S+; wait for it to finish, or give another --output", line), line
    assert ended[loser] < ended[winner]  # refused while the other was still building
    assert _digests(out) == clean  # nothing of the refused run, and no lock file left


def test_a_held_run_folder_refuses_a_training_and_another_lock(tmp_path):
    out = tmp_path / "run"
    with output_lock(str(out), "train-from-shards") as me:
        with pytest.raises(OutputBusy, match=rf"in use by train-from-shards on host \S+, pid {os.getpid()}"):
            with output_lock(str(out), "train-from-shards"):
                pass
        res = CliRunner().invoke(train_from_shards, ["--shards", str(tmp_path), "--output", str(out), *TRAIN])
        assert res.exit_code == EXIT_BUSY, res.output[-2000:]
        assert _error_lines(res.stderr) == [f"Error: {out} is in use by {me.describe()}; wait for it to finish, or give another --output"]
    assert not out.exists()  # released: the lock file is gone, and the folder the lock made
    with output_lock(str(out), "train-from-shards"):
        pass


def test_object_store_marker_refuses_a_second_run(tmp_path, monkeypatch):
    from tests.remotefs import ROOT_ENV

    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "store"))
    monkeypatch.setenv("NOISETRACE_LOCK_SETTLE_S", "0.1")
    out = "testfs://bucket/shards"
    with output_lock(out, "build-shards"):
        assert (tmp_path / "store" / "bucket" / "shards" / LOCK_NAME).exists()
        with pytest.raises(OutputBusy, match=rf"{out} is in use by build-shards on host \S+, pid {os.getpid()}"):
            with output_lock(out, "build-shards"):
                pass
    assert not (tmp_path / "store" / "bucket" / "shards" / LOCK_NAME).exists()


@pytest.mark.parametrize("where", ["local", "object store"])
def test_a_lock_left_by_a_sigkilled_run_is_taken_over(where, tmp_path, monkeypatch, capfd):
    """A real process takes the lock and is SIGKILLed holding it (a whole killed build-shards
    is tests/test_build_shards.py's kill test, whose rerun takes over the same way)."""
    from tests.remotefs import ROOT_ENV

    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "store"))
    monkeypatch.setenv("NOISETRACE_LOCK_SETTLE_S", "0.1")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = str(tmp_path / "out") if where == "local" else "testfs://bucket/shards"
    plugin = "import tests.remotefs\n" if where != "local" else ""  # Beam's import costs seconds: only where needed
    holder = subprocess.Popen(
        [sys.executable, "-c", f"{plugin}import time\nfrom shards.lock import output_lock\n"
         f"with output_lock({out!r}, 'build-shards'):\n print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputBusy, match=f"pid {holder.pid},"):
        with output_lock(out, "build-shards"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with output_lock(out, "build-shards"):
        pass
    assert (f"build-shards: {out}: taking over the lock of build-shards on host {socket.gethostname()}, pid {holder.pid}, "
            in capfd.readouterr().err)


def test_a_disk_that_fills_during_a_build_stops_it_in_one_line_and_the_rerun_matches(videos, clean, small_disk):
    mount, resize = small_disk
    out = mount("1m") / "out"  # the demo set's spill files alone need about 1.6 MB
    res = CliRunner().invoke(build_shards, ["--input", videos, "--output", str(out)])
    assert res.exit_code == EXIT_OUT_OF_SPACE, res.output[-3000:]
    assert "Traceback" not in res.stderr
    (line,) = _error_lines(res.stderr)
    assert re.fullmatch(rf"Error: out of space \(no space left on device\) writing {re.escape(str(out))}/\S+\.tar "
                        r"\(needs [\d.]+ KB, [\d.]+ KB free\); kept: \d+ of 24 videos done, their pairs in \d+ spill files "
                        rf"under {re.escape(str(out))}/_spill; free some space, then run the same command again: "
                        r"it goes on from the videos done", line), line
    assert _temp_files(out) == [] and not (out / LOCK_NAME).exists()
    resize("8m")
    res = CliRunner().invoke(build_shards, ["--input", videos, "--output", str(out)])
    assert res.exit_code == 0, res.output[-3000:]
    assert _digests(out) == clean


def test_a_rerun_takes_a_video_an_earlier_run_finished_as_done(videos, tmp_path):
    """What lets a build go on after a full disk or a kill: a video's note and spill file
    stand for its extraction, as long as its record and the options are the same."""
    from dataclasses import replace

    from pipeline.inputs import list_videos
    from pipeline.pairs import ExtractOptions
    from pipeline.transforms import ExtractPairsDoFn

    record = next(r for r in list_videos(videos) if r.label == "real")
    first = ExtractPairsDoFn(ExtractOptions(size=32), str(tmp_path))
    first.setup()
    extracted = list(first.process(record))
    assert any(type(item).__name__ == "VideoPairs" for item in extracted)
    again = ExtractPairsDoFn(ExtractOptions(size=32), str(tmp_path))  # no setup(): no detector, could not extract
    plain = lambda items: [(getattr(i, "tag", None), getattr(i, "value", i)) for i in items]  # noqa: E731
    assert plain(again.process(record)) == plain(extracted)
    assert again._done(record) is not None
    assert ExtractPairsDoFn(ExtractOptions(size=48), str(tmp_path))._done(record) is None  # other options
    assert again._done(replace(record, group="another")) is None  # another record
    os.remove(next(tmp_path.glob("_spill/*.tar")))
    assert again._done(record) is None  # its pairs are gone


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(str(tmp_path_factory.mktemp("shards")), {"train": 32, "val": 8, "test": 8}, shards_per_split=2, size=SIZE)


@pytest.fixture
def one_thread():
    """Trainings this small run several times faster on one intra-op thread than on two
    contending ones (as the subprocess tests' OMP_NUM_THREADS=1); every run compared uses it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(shards, out, *extra):
    return CliRunner().invoke(train_from_shards, ["--shards", shards, "--output", str(out), *TRAIN, "--epochs", "2", *extra])


def test_a_disk_that_fills_during_a_checkpoint_save_keeps_the_last_good_one_and_resume_matches(shards, tmp_path, small_disk, one_thread):
    clean = tmp_path / "clean"
    assert _train(shards, clean).exit_code == 0
    checkpoint = os.path.getsize(clean / "last.pt")
    mount, resize = small_disk
    # room for epoch 1 (best.pt, last.pt and the small files), not for a third checkpoint-sized temp file
    out = mount(f"{2 * checkpoint + 64 * 1024}") / "run"
    res = _train(shards, out)
    assert res.exit_code == EXIT_OUT_OF_SPACE, res.output[-3000:]
    assert "Traceback" not in res.stderr
    (line,) = _error_lines(res.stderr)
    assert re.fullmatch(rf"Error: out of space \(no space left on device\) writing {re.escape(str(out))}/(best|last)\.pt "
                        r"\(needs [\d.]+ [KM]B, [\d.]+ [KM]B free\); kept: last\.pt \(epoch 1\), best\.pt \(epoch 1\); "
                        r"free some space, then add --resume to the same command: it goes on from last\.pt", line), line
    assert _temp_files(out) == [] and not (out / LOCK_NAME).exists()
    assert load_checkpoint(str(out / "last.pt"))["epoch"] == 1

    # evaluate on the full disk: one line too, and no half-written output
    evaluation = out.parent / "eval"
    with open(out.parent / "filler", "wb") as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    res = CliRunner().invoke(evaluate, ["--checkpoint", str(out / "last.pt"), "--shards", shards, "--output", str(evaluation),
                                        "--workers", "0", "--device", "cpu"])
    assert res.exit_code == EXIT_OUT_OF_SPACE, res.output[-3000:]
    (line,) = _error_lines(res.stderr)
    assert line.startswith(f"Error: out of space (no space left on device) writing {evaluation}/"), line
    assert os.listdir(evaluation) == []

    os.remove(out.parent / "filler")
    resize(f"{4 * checkpoint + 1024 * 1024}")
    res = _train(shards, out, "--resume")
    assert res.exit_code == 0, res.output[-3000:]
    speedless = lambda rows: [{k: v for k, v in r.items() if k != "pairs_per_s"} for r in rows]  # noqa: E731
    assert speedless(read_jsonl(str(out / "metrics.jsonl"))) == speedless(read_jsonl(str(clean / "metrics.jsonl")))
    a, b = (torch.load(d / "last.pt", weights_only=True) for d in (clean, out))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert str(a["optimizer"]) == str(b["optimizer"])
