"""A read that never returns (a hung network mount, an object store that stops sending)
costs its video one `timeout` record, never the run: the real pipeline, in multi-process
mode, copies videos from `testfs://` (tests/remotefs.py), where an object stored as a FIFO
blocks its reader in the kernel's open() for as long as no one writes to it."""
import contextlib
import os
import shutil
import threading
import time

import pytest

from pipeline.inputs import InputError
from pipeline.run import run
from shards.info import split_urls
from shards.reader import iter_pairs
from tests import remotefs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEIGHBOURS = ("real/astronaut-c0.mp4", "real/grace_hopper-c0.mp4", "fake/astronaut-c1-resynth.mp4")
TIMEOUT_S = 5
# A regression must fail, not hang the suite: the stall is released after this long, and the
# video then reads as empty, not as a timeout.
RELEASE_AFTER_S = 120


def _release(fifo: str) -> None:
    """Open the FIFO for writing and close it: a reader blocked in open() gets end of file."""
    with contextlib.suppress(OSError):  # ENXIO: no reader is waiting any more
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_a_stalled_read_is_a_timeout_record_and_the_others_give_pairs(demo_set, tmp_path, monkeypatch):
    root = tmp_path / "objects"
    videos = root / "bucket" / "videos"
    for name in NEIGHBOURS:
        os.makedirs(videos / os.path.dirname(name), exist_ok=True)
        shutil.copy(os.path.join(demo_set[0], name), videos / name)
    stalled = str(videos / "real" / "stalled.mp4")
    os.mkfifo(stalled)
    monkeypatch.setenv(remotefs.ROOT_ENV, str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    out = tmp_path / "out"
    safety = threading.Timer(RELEASE_AFTER_S, _release, [stalled])
    safety.start()
    try:
        start = time.perf_counter()
        result = run(["--input", "testfs://bucket/videos", "--output", str(out), "--min-shards", "1",
                      "--ffmpeg-timeout", str(TIMEOUT_S), "--beam_plugins", remotefs.__name__])
        seconds = time.perf_counter() - start
    finally:
        safety.cancel()
        _release(stalled)  # the worker's abandoned thread, if its process still runs
    assert seconds < RELEASE_AFTER_S
    assert [(f["video"], f["reason"]) for f in result.failures] == [("real/stalled.mp4", "timeout")]
    assert f"longer than {TIMEOUT_S} s" in result.failures[0]["detail"]
    in_shards = {p["meta"]["video"] for s in result.info["splits"] for p in iter_pairs(split_urls(str(out), s))}
    assert in_shards == set(NEIGHBOURS)
    assert result.info["videos"] == {"total": 4, "with_pairs": 3, "without_pairs": 1}


def test_a_stalled_manifest_read_on_the_driver_is_an_error_within_the_list_timeout(tmp_path, monkeypatch):
    root = tmp_path / "objects"
    os.makedirs(root / "bucket")
    stalled = str(root / "bucket" / "MANIFEST.csv")
    os.mkfifo(stalled)
    monkeypatch.setenv(remotefs.ROOT_ENV, str(root))
    safety = threading.Timer(RELEASE_AFTER_S, _release, [stalled])
    safety.start()
    try:
        start = time.perf_counter()
        with pytest.raises(InputError) as err:
            run(["--input", "testfs://bucket/MANIFEST.csv", "--output", str(tmp_path / "out"), "--list-timeout", "2",
                 "--beam_plugins", remotefs.__name__])
        seconds = time.perf_counter() - start
    finally:
        safety.cancel()
        _release(stalled)
    assert seconds < 30
    message = str(err.value)
    assert "testfs://bucket/MANIFEST.csv" in message and "longer than 2 s" in message and "--list-timeout" in message
    assert not os.path.exists(tmp_path / "out" / "_info.json")


def test_a_fifo_label_file_in_a_local_input_folder_is_refused_without_opening_it(demo_set, tmp_path):
    folder = tmp_path / "videos"
    os.makedirs(folder / "real")
    shutil.copy(os.path.join(demo_set[0], NEIGHBOURS[0]), folder / NEIGHBOURS[0])
    os.mkfifo(folder / "metadata.json")  # where a DFDC folder keeps its labels
    with pytest.raises(InputError, match="metadata.json: FIFO, not a regular file"):
        run(["--input", str(folder), "--output", str(tmp_path / "out")])
