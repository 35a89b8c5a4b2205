"""`--shards` as a WebDataset brace pattern: the index found at the pattern's root or one
level up, the pattern selecting shards (lengths recomputed), clear errors, every entry point
reading through it, and two-process torchrun streaming a pattern URL over loopback HTTP."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image

from loopback import serve
from shardgen import PLAIN, make_shards, read_jsonl
from evaluation.cli import evaluate
from reports.cli import visualize
from shards.checked import checked_pairs
from shards.info import read_info, split_urls
from shards.source import open_shards
from training.cli import train_from_shards
from training.train import TrainConfig, run_training

SIZE = 32
TRAIN = [*PLAIN, "--preset", "tiny", "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--input-size", str(SIZE), "--device", "cpu"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three shards per split: 32 train pairs a shard, 11/11/10 in val and test."""
    return make_shards(str(tmp_path_factory.mktemp("shards")), {"train": 96, "val": 32, "test": 32}, shards_per_split=3, size=SIZE)


@pytest.fixture(scope="module")
def checkpoint(shards, tmp_path_factory):
    run = run_training(TrainConfig(shards=shards, output=str(tmp_path_factory.mktemp("run")), preset="tiny", epochs=1,
                                   batch_size=16, workers=0, input_size=SIZE, device="cpu"))
    return os.path.join(run.output, "best.pt")


def test_a_pattern_at_the_root_selects_whole_splits(shards):
    source = open_shards(f"{shards}/{{train,val}}/pairs-{{000000..000002}}.tar")
    assert source.root == shards
    index = read_info(shards)["splits"]
    assert source.info["splits"] == {"train": index["train"], "val": index["val"]}  # whole splits: counts untouched
    assert source.urls("val") == split_urls(shards, "val")


def test_the_index_is_found_one_level_up(shards):
    source = open_shards(f"{shards}/train/pairs-{{000000..000002}}.tar")
    assert source.root == shards
    assert source.urls("train") == split_urls(shards, "train")
    assert set(source.info["splits"]) == {"train"}


def test_a_pattern_relative_to_the_working_directory(shards, monkeypatch):
    monkeypatch.chdir(shards)
    assert list(open_shards("val/pairs-{000000,000002}.tar").lengths("val")) == ["./val/pairs-000000.tar", "./val/pairs-000002.tar"]


def test_a_subset_recomputes_lengths_and_class_counts(shards):
    source = open_shards(f"{shards}/val/pairs-{{000002,000000}}.tar")  # pattern order does not matter: index order does
    lengths = source.lengths("val")
    assert list(lengths) == [f"{shards}/val/pairs-000000.tar", f"{shards}/val/pairs-000002.tar"]
    entry = source.info["splits"]["val"]
    assert entry["shard_lengths"] == [11, 10] and entry["num_samples"] == 21
    pairs = list(checked_pairs(lengths)({"url": url} for url in lengths))  # the recomputed counts match the tars
    assert len(pairs) == 21
    real = sum(p["cls"] == 0 for p in pairs)
    assert entry["class_counts"] == {"fake": 21 - real, "real": real}  # from the index's shard_class_counts


def test_an_index_without_shard_class_counts_estimates_them(shards, tmp_path):
    """`_info.json` files written before `shard_class_counts` existed: split proportions."""
    old = tmp_path / "old"
    shutil.copytree(shards, old)
    info = read_info(str(old))
    for entry in info["splits"].values():
        del entry["shard_class_counts"]
    (old / "_info.json").write_text(json.dumps(info))
    entry = open_shards(f"{old}/val/pairs-{{000000,000002}}.tar").info["splits"]["val"]
    real = sum(p["cls"] == 0 for url in entry["filenames"] for p in checked_pairs({})([{"url": f"{old}/{url}"}]))
    assert sum(entry["class_counts"].values()) == 21 and abs(entry["class_counts"]["real"] - real) <= 1


def test_a_shard_the_index_lacks_is_named(shards):
    with pytest.raises(ValueError, match=r"train/pairs-000003\.tar \(and 1 more\) is not a shard listed in .*_info\.json"):
        open_shards(f"{shards}/train/pairs-{{000000..000004}}.tar")


def test_no_index_at_the_pattern_or_its_parent(tmp_path):
    (tmp_path / "loose" / "train").mkdir(parents=True)
    pattern = f"{tmp_path}/loose/train/pairs-{{000000..000001}}.tar"
    expected = (f"{pattern}: no _info.json at {tmp_path}/loose/train or {tmp_path}/loose; "
                "a brace pattern must sit under a shard root written by build-shards")
    with pytest.raises(FileNotFoundError) as err:
        open_shards(pattern)
    assert str(err.value) == expected
    res = CliRunner().invoke(train_from_shards, ["--shards", pattern, "--output", str(tmp_path / "run")])
    assert res.exit_code == 1 and res.output.strip() == f"Error: {expected}"


def test_a_needed_split_without_selected_shards_is_an_error(shards, tmp_path):
    pattern = f"{shards}/train/pairs-{{000000..000001}}.tar"
    res = CliRunner().invoke(train_from_shards, ["--shards", pattern, "--output", str(tmp_path / "run"), *TRAIN])
    assert res.exit_code == 1
    assert res.output.strip() == (f"Error: {pattern}: no shards for split 'val' (it has: train); "
                                  "name one of those, or rebuild the shards with that split")
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_evaluate_and_visualize_read_a_pattern(shards, checkpoint, tmp_path):
    pattern = f"{shards}/test/pairs-{{000000,000001}}.tar"
    res = CliRunner().invoke(evaluate, ["--checkpoint", checkpoint, "--shards", pattern, "--output", str(tmp_path / "e"),
                                        "--workers", "0", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["frames"] == 22  # the two selected test shards only
    fig = tmp_path / "fig.png"
    res = CliRunner().invoke(visualize, ["--checkpoint", checkpoint, "--shards", pattern, "--output", str(fig), "--rows", "2",
                                         "--device", "cpu"])
    assert res.exit_code == 0, res.output
    with Image.open(fig) as im:
        assert im.format == "PNG"


def test_visualize_names_a_corrupt_shard(shards, checkpoint, tmp_path):
    root = str(tmp_path / "shards")
    shutil.copytree(shards, root)
    bad = f"{root}/test/pairs-000000.tar"
    with open(bad, "r+b") as f:
        f.write(b"not a tar header " * 30)  # the first header is garbage: nothing before it to show
    res = CliRunner().invoke(visualize, ["--checkpoint", checkpoint, "--shards", root, "--output", str(tmp_path / "fig.png"),
                                         "--device", "cpu"])
    assert res.exit_code == 1 and res.output.startswith(f"Error: bad shard {bad}: "), res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


@pytest.fixture()
def served(shards):
    with serve(shards) as url_and_requests:
        yield url_and_requests


# Each rank parses the real command line (so --shards goes through its click type) and
# runs the command's body, keeping the per-rank history that only rank 0 would write.
DDP_DRIVER = """
import json, os, sys
from training.cli import train_from_shards
from training.train import TrainConfig, run_training
ctx = train_from_shards.make_context("train-from-shards", sys.argv[1:])
r = run_training(TrainConfig(**ctx.params))
with open(os.path.join(ctx.params["output"], "rank%s.json" % os.environ["RANK"]), "w") as f:
    json.dump(r.history, f)
"""


def test_two_process_torchrun_over_a_brace_pattern_url(served, tmp_path):
    url, requested = served
    pattern = f"{url}/{{train,val}}/pairs-{{000000..000001}}.tar"  # two of three shards in each split
    out = str(tmp_path / "ddp")
    driver = tmp_path / "driver.py"
    driver.write_text(DDP_DRIVER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(driver),
                           "--shards", pattern, "--output", out, "--workers", "1", *TRAIN],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.load(open(os.path.join(out, f"rank{r}.json"))) for r in (0, 1))
    assert len(r0) == 2 and r0 == r1  # loss, val metrics and pairs/s are all reduced across ranks
    assert len(read_jsonl(os.path.join(out, "metrics.jsonl"))) == 2 and os.path.exists(os.path.join(out, "best.pt"))
    assert json.load(open(os.path.join(out, "config.json")))["train"]["shards"] == pattern
    selected = {f"/{s}/pairs-00000{i}.tar" for s in ("train", "val") for i in (0, 1)}
    assert {p for p in requested if p.endswith(".tar")} == selected  # streamed, and nothing the pattern left out
