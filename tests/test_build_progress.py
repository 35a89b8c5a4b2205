"""What `build-shards` writes while it runs, as a log file gets it: progress as plain lines
(videos done / total, pairs, keyframes/s, ETA), no carriage-return frames, and none of the
SDK workers' start-up chatter unless `--verbose` (the real local runner, with its workers as
threads, the default, and as separate processes)."""
import json
import os
import subprocess

import pytest

# said by every worker of every run at INFO or WARNING; processes' relayed by the driver as "Worker: ..."
CHATTER = ("Worker:", "Creating insecure control channel", "Discarding unparseable args", "semi_persistent_directory")
MODES = {"threads": (), "processes": ("--direct_running_mode", "multi_processing")}


def _build_log(demo_root: str, out: str, log: str, *extra: str) -> str:
    with open(log, "wb") as f:
        subprocess.run(["build-shards", "--input", os.path.join(demo_root, "*", "astronaut-c0*.mp4"), "--output", out,
                        "--min-shards", "1", *extra],
                       stdout=f, stderr=subprocess.STDOUT, check=True, env={**os.environ, "NOISETRACE_PROGRESS_S": "0"})
    with open(log, encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("mode", MODES)
def test_a_log_file_gets_progress_lines_and_no_worker_chatter(demo_set, tmp_path, mode):
    text = _build_log(demo_set[0], str(tmp_path / "out"), str(tmp_path / "build.log"), *MODES[mode])
    with open(tmp_path / "out" / "_info.json", encoding="utf-8") as f:
        info = json.load(f)
    pairs = sum(split["num_samples"] for split in info["splits"].values())
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].startswith("videos 0/2 0% 0 pairs | 0.0 keyframes/s | ETA unknown")
    assert any(line.startswith(f"videos 2/2 100% {pairs} pairs | ") and "| done |" in line for line in lines), text
    assert pairs and not [c for c in CHATTER if c in text], text
    assert f"keyframes: {info['keyframes']} in " in text  # the summary follows


@pytest.mark.parametrize("mode", MODES)
def test_verbose_brings_back_beam_and_worker_logs(demo_set, tmp_path, mode):
    text = _build_log(demo_set[0], str(tmp_path / "out"), str(tmp_path / "build.log"), "--verbose", *MODES[mode])
    assert "INFO:apache_beam" in text
    # logged by the workers themselves: their level reached them (processes relay theirs)
    assert "Creating insecure control channel" in text
    assert ("Worker:" in text) == (mode == "processes")
    assert "videos 2/2 100%" in text
