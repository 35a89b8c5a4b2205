"""MesoNet baselines through the noise model's own commands, and `compare` over their evaluations."""
import csv
import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from shardgen import PLAIN, make_shards, read_jsonl
from detection.verdict import crop_options
from evaluation.cli import compare, evaluate
from reports.cli import visualize
from training.checkpoint import load_detector, save_checkpoint
from training.cli import train_from_shards
from training.data import eval_loader
from training.detectors import parameter_count
from training.mesonet import Meso4, MesoInception4
from training.model import SiameseNoiseNet
from training.predict import predict_pairs
from training.presets import preset

SIZE = 32  # the smallest face square MesoNet's 32x pooling accepts
KINDS = {"meso4": Meso4, "mesoinception4": MesoInception4}


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Fakes whose faces carry a visible bright patch: what a face-only model can see."""
    return make_shards(str(tmp_path_factory.mktemp("visible")), {"train": 256, "val": 64, "test": 64},
                       size=SIZE, visible_fakes=True)


@pytest.fixture(scope="module")
def runs(shards, tmp_path_factory):
    """{kind: (run dir, test-split evaluation dir)}: each baseline trained and evaluated by the CLI."""
    root = tmp_path_factory.mktemp("baselines")
    runner = CliRunner()
    out = {}
    for kind in KINDS:
        run, ev = str(root / f"run-{kind}"), str(root / f"eval-{kind}")
        _ok(runner.invoke(train_from_shards, ["--shards", shards, "--output", run, "--model", kind, "--epochs", "5", *PLAIN,
                                              "--batch-size", "16", "--lr", "2e-3", "--input-size", str(SIZE),
                                              "--workers", "0", "--device", "cpu"]))
        _ok(runner.invoke(evaluate, ["--checkpoint", f"{run}/best.pt", "--shards", shards, "--output", ev,
                                     "--workers", "0", "--device", "cpu"]))
        out[kind] = (run, ev)
    return out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_mesonet_learns_visible_fakes_and_checkpoints_rebuild_it(kind, runs, shards):
    run, ev = runs[kind]
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["model_kind"] == kind and config["train"]["model"] == kind
    assert config["model"] == {"input_size": SIZE, "channels": 3}
    history = read_jsonl(os.path.join(run, "metrics.jsonl"))
    assert len(history) == 5 and history[-1]["loss"] < history[0]["loss"]
    metrics = json.load(open(os.path.join(ev, "metrics.json")))
    assert metrics["frames"] == 64 and metrics["frame_auc"] > 0.8, metrics  # chance is 0.5
    model, config = load_detector(os.path.join(run, "best.pt"))
    assert type(model) is KINDS[kind]
    assert metrics["model"]["kind"] == kind and metrics["model"]["parameters"] == parameter_count(model)
    assert metrics["model"]["preset"] is None and metrics["model"]["train_pairs_per_s"] > 0
    # detect's path: crop size from the checkpoint, then predict_pairs on (face, background).
    assert crop_options(config).size == SIZE
    batch = next(iter(eval_loader([f"{shards}/test/pairs-000000.tar"], batch_size=32)))
    faces = batch["face"].permute(0, 2, 3, 1).numpy()
    probs = predict_pairs(model, faces, batch["background"].permute(0, 2, 3, 1).numpy(), "cpu")
    # The background is ignored: any other background gives the same verdicts.
    np.testing.assert_array_equal(probs, predict_pairs(model, faces, np.zeros_like(faces), "cpu"))


def test_parameter_counts_match_the_paper_at_256_px():
    """Afchar et al. report 27,977 and 28,615 weights with one sigmoid output; two logits add 17."""
    assert parameter_count(Meso4(256)) == 27_977 + 17
    assert parameter_count(MesoInception4(256)) == 28_615 + 17
    for cls in KINDS.values():
        assert cls(64)(torch.rand(2, 3, 64, 64), None).shape == (2, 2)
        with pytest.raises(ValueError, match="multiple of 32"):
            cls(48)


def test_checkpoints_without_a_model_kind_are_the_noise_model(tmp_path):
    """Checkpoints written before the baselines existed still load."""
    cfg = preset("tiny", input_size=SIZE)
    save_checkpoint(str(tmp_path / "old.pt"), {"model": SiameseNoiseNet(cfg).state_dict(), "config": {"model": cfg.to_dict()}})
    model, _ = load_detector(str(tmp_path / "old.pt"))
    assert type(model) is SiameseNoiseNet


def test_baseline_misuse_is_a_one_line_error(runs, shards, tmp_path):
    runner = CliRunner()
    base = ["--shards", shards, "--output", str(tmp_path / "r"), "--workers", "0", "--device", "cpu"]
    res = runner.invoke(train_from_shards, [*base, "--model", "meso4", "--input-size", "48"])
    assert res.exit_code == 1 and "multiple of 32" in res.output
    den = tmp_path / "den.pt"
    torch.save({"format": "noisetrace-dncnn", "extractor": {}, "config": {}}, den)
    res = runner.invoke(train_from_shards, [*base, "--model", "meso4", "--init-denoiser", str(den)])
    assert res.exit_code == 1 and "has none" in res.output
    res = runner.invoke(visualize, ["--checkpoint", f"{runs['meso4'][0]}/best.pt", "--shards", shards,
                                    "--output", str(tmp_path / "v.png")])
    assert res.exit_code == 1 and "visualize needs the noise model" in res.output


def test_compare_writes_the_table_and_overlaid_roc(runs, shards, tmp_path):
    evals = [runs[k][1] for k in sorted(KINDS)]
    out = tmp_path / "cmp"
    res = _ok(CliRunner().invoke(compare, [*evals, "--output", str(out)]))
    with open(out / "comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["model", "evaluation", "frame_accuracy", "frame_auc", "video_auc", "pairs", "parameters",
                             "train_pairs_per_s"]
    assert [r["model"] for r in rows] == sorted(KINDS)
    for row, ev in zip(rows, evals):
        m = json.load(open(os.path.join(ev, "metrics.json")))
        assert row["evaluation"] == ev
        for key in ("frame_accuracy", "frame_auc", "video_auc"):
            assert float(row[key]) == m[key]
        assert int(row["pairs"]) == m["frames"] and int(row["parameters"]) == m["model"]["parameters"]
        assert float(row["train_pairs_per_s"]) == m["model"]["train_pairs_per_s"]
    md = (out / "comparison.md").read_text().splitlines()
    assert md[0].startswith("| model | evaluation | frame accuracy | frame AUC | video AUC |") and len(md) == 4
    assert md[2].startswith("| meso4 |") and md[3].startswith("| mesoinception4 |")
    assert res.output.splitlines() == md
    with Image.open(out / "roc.png") as im:
        assert im.format == "PNG" and min(im.size) > 200
    assert os.path.getsize(out / "roc.png") > 0


def test_compare_refuses_evaluations_of_different_pairs(runs, shards, tmp_path):
    val = str(tmp_path / "val-eval")
    _ok(CliRunner().invoke(evaluate, ["--checkpoint", f"{runs['meso4'][0]}/best.pt", "--shards", shards,
                                      "--split", "val", "--output", val, "--workers", "0", "--device", "cpu"]))
    res = CliRunner().invoke(compare, [runs["meso4"][1], val, "--output", str(tmp_path / "cmp")])
    assert res.exit_code == 1 and "scored different pairs" in res.output
    res = CliRunner().invoke(compare, [str(tmp_path), "--output", str(tmp_path / "cmp")])
    assert res.exit_code == 1 and "no metrics.json" in res.output
