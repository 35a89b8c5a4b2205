"""Training streams shards from a URL root (here HTTP on loopback, as gs:// streams through
gsutil), reading `_info.json` and every shard without a local copy."""
import pytest
from click.testing import CliRunner

from tests.loopback import serve
from tests.shardgen import make_shards, read_jsonl
from training.cli import train_from_shards


@pytest.fixture()
def served(tmp_path):
    root = make_shards(str(tmp_path / "shards"), {"train": 64, "val": 32}, shards_per_split=2, size=32)
    with serve(root) as (url, _):
        yield url


def test_train_from_a_url_root(served, tmp_path):
    run = tmp_path / "run"
    res = CliRunner().invoke(train_from_shards, ["--shards", served, "--output", str(run), "--preset", "tiny",
                                                 "--epochs", "1", "--batch-size", "16", "--workers", "0",
                                                 "--input-size", "32", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    (record,) = read_jsonl(str(run / "metrics.jsonl"))
    assert 0.0 <= record["val_auc"] <= 1.0 and (run / "best.pt").exists()
    res = CliRunner().invoke(train_from_shards, ["--shards", served + "/nowhere", "--output", str(tmp_path / "r2")])
    assert res.exit_code == 1 and "cannot read" in res.output and "_info.json" in res.output
