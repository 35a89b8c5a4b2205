"""What a user sees for a wrong path, split, option or file: one `Error:` line under 300
characters that names the file or option, the numbers, and the fix; never a traceback or
the repr of an internal object. Each case runs the real command on real shards, a real
checkpoint and real damaged files."""
import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from noisetrace.cli import COMMANDS, main
from shardgen import make_shards

SIZE = 16
TRAIN = ["--preset", "tiny", "--epochs", "1", "--batch-size", "4", "--workers", "0"]
CPU = ["--device", "cpu"]
EVAL = ["--workers", "0", *CPU]


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    """Named inputs for the cases: good and damaged shard roots, a checkpoint, junk files."""
    tmp = tmp_path_factory.mktemp("cli-errors")
    good = make_shards(str(tmp / "good"), {"train": 8, "val": 4, "test": 4}, shards_per_split=2, size=SIZE)
    p = {"tmp": str(tmp), "good": good, "empty": str(tmp / "empty"), "junk": str(tmp / "junk.pt"),
         "images": str(tmp / "images"), "ckpt": str(tmp / "run" / "best.pt")}
    os.makedirs(p["empty"])
    for name, text in {"badjson": "{not json", "listjson": "[1, 2]"}.items():
        os.makedirs(tmp / name)
        (tmp / name / "_info.json").write_text(text)
        p[name] = str(tmp / name)
    for name in ("missing", "corrupt"):
        p[name] = make_shards(str(tmp / name), {"train": 8, "val": 4, "test": 4}, shards_per_split=2, size=SIZE)
    os.remove(f"{p['missing']}/test/pairs-000001.tar")
    with open(f"{p['corrupt']}/test/pairs-000001.tar", "r+b") as f:
        f.write(b"garbage" * 100)
    (tmp / "junk.pt").write_text("not a checkpoint")
    os.makedirs(p["images"])
    (tmp / "images" / "a.png").write_bytes(b"not a png")
    res = CliRunner().invoke(main, ["train-from-shards", "--shards", good, "--output", str(tmp / "run"),
                                    "--input-size", str(SIZE), *TRAIN, *CPU])
    assert res.exit_code == 0, res.output
    return p


CASES = {
    "no _info.json": (["train-from-shards", "--shards", "{empty}", "--output", "{tmp}/o", *TRAIN, *CPU],
                      ["{empty}/_info.json", "--shards", "build-shards"]),
    "_info.json not JSON": (["evaluate", "--checkpoint", "{ckpt}", "--shards", "{badjson}", "--output", "{tmp}/e", *EVAL],
                            ["{badjson}/_info.json", "not valid JSON", "line 1", "rebuild"]),
    "_info.json not an index": (["crossval", "--shards", "{listjson}", "--output", "{tmp}/cv", *TRAIN, *CPU],
                                ["{listjson}/_info.json", "not a build-shards index", "rebuild"]),
    "unreachable URL": (["train-from-shards", "--shards", "http://127.0.0.1:9/shards", "--output", "{tmp}/o", *TRAIN, *CPU],
                        ["http://127.0.0.1:9/shards/_info.json", "curl exited with", "--shards"]),
    "wrong split": (["evaluate", "--checkpoint", "{ckpt}", "--shards", "{good}", "--split", "nope", "--output", "{tmp}/e", *EVAL],
                    ["{good}", "split 'nope'", "test, train, val"]),
    "missing shard": (["evaluate", "--checkpoint", "{ckpt}", "--shards", "{missing}", "--output", "{tmp}/e", *EVAL],
                      ["{missing}/test/pairs-000001.tar", "No such file or directory", "--on-bad-shard skip"]),
    "corrupt shard": (["visualize", "--checkpoint", "{ckpt}", "--shards", "{corrupt}", "--output", "{tmp}/v.png", *CPU],
                      ["{corrupt}/test/pairs-000001.tar", "invalid header", "--on-bad-shard skip"]),
    "corrupt shard, crossval": (["crossval", "--shards", "{corrupt}", "--output", "{tmp}/cv", *TRAIN, *CPU],
                                ["{corrupt}/test/pairs-000001.tar", "--on-bad-shard skip"]),
    "not a checkpoint": (["evaluate", "--checkpoint", "{junk}", "--shards", "{good}", "--output", "{tmp}/e", *EVAL],
                         ["{junk}", "not a torch weights file", "best.pt or last.pt"]),
    "not a checkpoint, detect": (["detect", "--checkpoint", "{junk}", "{junk}", *CPU], ["{junk}", "best.pt or last.pt"]),
    "not denoiser weights": (["train-from-shards", "--shards", "{good}", "--output", "{tmp}/o", "--init-denoiser", "{junk}",
                              "--input-size", "16", *TRAIN, *CPU], ["{junk}", "--init-denoiser", "pretrain-denoiser"]),
    "weights of another extractor": (["train-from-shards", "--shards", "{good}", "--output", "{tmp}/o", "--init-denoiser",
                                      "{ckpt}", "--extractor", "ffdnet", "--input-size", "16", *TRAIN, *CPU],
                                     ["{ckpt}", "noisetrace-detector", "colour FFDNet weights", "--extractor ffdnet"]),
    "nothing to resume": (["train-from-shards", "--shards", "{good}", "--output", "{tmp}/o", "--resume", *TRAIN, *CPU],
                          ["{tmp}/o/last.pt", "--resume", "--output"]),
    "input size": (["train-from-shards", "--shards", "{good}", "--output", "{tmp}/o", "--input-size", "32", *TRAIN, *CPU],
                   ["16px", "--input-size is 32", "use --input-size 16"]),
    "unknown device": (["pretrain-denoiser", "--shards", "{good}", "--output", "{tmp}/d.pt", *TRAIN, "--device", "tpu0"],
                       ["--device tpu0", "cuda:N"]),
    "unreadable image": (["pretrain-denoiser", "--images", "{images}", "--output", "{tmp}/d.pt", *TRAIN, *CPU],
                         ["{images}/a.png", "not a readable image", "--images"]),
    "not an evaluate folder": (["compare", "{empty}", "{good}", "--output", "{tmp}/c"],
                               ["{empty}", "metrics.json", "--output folders of evaluate"]),
}


def _fill(items: list[str], paths: dict[str, str]) -> list[str]:
    return [item.format(**paths) for item in items]


@pytest.mark.parametrize("case", list(CASES))
def test_errors_are_one_line_naming_file_option_and_fix(paths, case):
    args, expected = CASES[case]
    res = CliRunner().invoke(main, _fill(args, paths))
    out = res.output.strip()
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), out
    assert len(out.splitlines()) == 1 and out.startswith("Error: ") and len(out) < 300, out
    for part in _fill(expected, paths):
        assert part in out, f"{part!r} not in {out!r}"


def test_a_skipped_bad_shard_is_one_warning_line(paths):
    """Warnings print in the command's own process (pytest records them in-process)."""
    res = subprocess.run([sys.executable, "-c", "from noisetrace.cli import main; main()", "evaluate", "--checkpoint",
                          paths["ckpt"], "--shards", paths["corrupt"], "--output", f"{paths['tmp']}/skip", "--workers", "0",
                          "--device", "cpu", "--on-bad-shard", "skip"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    warned = [line for line in res.stderr.splitlines() if "pairs-000001.tar" in line]
    assert warned == [f"BadShardWarning: bad shard {paths['corrupt']}/test/pairs-000001.tar: ReadError: invalid header "
                      "(skipped)"], res.stderr
    assert "warnings.warn" not in res.stderr
    assert json.loads(res.stdout)["frames"] == 2


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_misspelt_option_is_a_usage_error_naming_the_real_one(name, tmp_path):
    """Every command: an option with its last letter lost exits 2 naming it and suggesting
    the real one, never runs. build-shards hands Beam what click does not know, so it also
    gets what it needs to get that far (its --input and --output)."""
    command = main.get_command(click.Context(main), name)
    real = next(flag for p in command.params if isinstance(p, click.Option) for flag in p.opts
                if flag.startswith("--") and len(flag) > 7)
    args = [name, real[:-1], "1"] + (["--input", str(tmp_path), "--output", str(tmp_path / "o")] if name == "build-shards" else [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert f"No such option '{real[:-1]}'" in res.output and f"'{real}'" in res.output.split("Did you mean")[1], res.output
    assert not (tmp_path / "o").exists()
