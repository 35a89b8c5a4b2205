"""`crossval` on small generated shards: folds keep groups, datasets and methods apart, and
every pair is scored exactly once, by a model that never saw its group."""
import json
import os
import re
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from shardgen import make_pair
from evaluation.cli import crossval
from evaluation.crossval import UNSPECIFIED_METHOD, load_pairs, markdown, plan_folds
from evaluation.evaluate import summarize
from reports.run_report import run_report
from shards.info import ShardRecord, build_info, dumps_info
from shards.schema import PairSample, make_key
from shards.writer import shard_name, write_shard

SIZE = 32
FRAMES = 3


def _pairs() -> list[PairSample]:
    """12 FF++-like groups (a real video and a fake of it each): 6 in dataset ds-a whose
    fakes are Deepfakes or FaceSwap, 6 in ds-b whose fakes have no method; plus a real-only
    group in ds-c."""
    out = []
    for g in range(13):
        dataset = "ds-a" if g < 6 else "ds-b" if g < 12 else "ds-c"
        for fake in ((False, True) if g < 12 else (False,)):
            video = f"{dataset}/{'fake' if fake else 'real'}/g{g:02d}.mp4"
            for f in range(FRAMES):
                pair = make_pair(g * 10 + f, fake, "train", SIZE, video=video)
                meta = {**pair.meta, "dataset": dataset, "group": f"grp:{g:02d}", "frame_index": f}
                if fake and dataset == "ds-a":
                    meta["method"] = "Deepfakes" if g % 2 else "FaceSwap"
                out.append(PairSample(make_key(video, f), pair.face, pair.background, meta))
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """The pairs spread over build-shards' three splits, as a real shard directory."""
    root = str(tmp_path_factory.mktemp("cv-shards"))
    samples = _pairs()
    records = []
    for i, split in enumerate(("train", "val", "test")):
        part = samples[i::3]
        os.makedirs(os.path.join(root, split))
        name = f"{split}/{shard_name(0)}"
        write_shard(os.path.join(root, name), part)
        records.append(ShardRecord(split, name, len(part), dict(Counter(p.meta["label"] for p in part))))
    with open(os.path.join(root, "_info.json"), "w", encoding="utf-8") as f:
        f.write(dumps_info(build_info(records, {"options": {"size": SIZE}})))
    return root


def _check_plans(pairs, plans):
    tested = [k for p in plans for k in p.test]
    assert sorted(tested) == sorted(pairs)  # every pair scored, once
    for plan in plans:
        held = {pairs[k].group for k in plan.test}
        seen = {pairs[k].group for k in plan.train + plan.val}
        assert not held & seen, plan.name
        assert {pairs[k].group for k in plan.train}.isdisjoint({pairs[k].group for k in plan.val})
        assert {pairs[k].label for k in plan.train} == {"real", "fake"}
        assert {pairs[k].label for k in plan.val} == {"real", "fake"}


def test_group_folds_are_disjoint_and_stratified(shards):
    pairs = load_pairs(shards)
    assert len(pairs) == 12 * 2 * FRAMES + FRAMES
    plans = plan_folds(pairs, "group", folds=3)
    assert [p.name for p in plans] == ["fold-1", "fold-2", "fold-3"]
    _check_plans(pairs, plans)
    for plan in plans:  # groups holding both classes are spread: every fold scores reals and fakes
        assert {pairs[k].label for k in plan.test} == {"real", "fake"}
    assert plans != plan_folds(pairs, "group", folds=3, seed=1)
    with pytest.raises(ValueError, match="13 groups cannot make 20 folds"):
        plan_folds(pairs, "group", folds=20)


def test_leave_one_dataset_out_never_trains_on_the_held_out_dataset(shards):
    pairs = load_pairs(shards)
    plans = plan_folds(pairs, "dataset")
    assert [p.name for p in plans] == ["ds-a", "ds-b", "ds-c"]
    _check_plans(pairs, plans)
    for plan in plans:
        assert {pairs[k].meta["dataset"] for k in plan.test} == {plan.name}
        assert plan.name not in {pairs[k].meta["dataset"] for k in plan.train + plan.val}


def test_leave_one_method_out(shards):
    pairs = load_pairs(shards)
    plans = plan_folds(pairs, "method")
    assert [p.name for p in plans] == ["Deepfakes", "FaceSwap", UNSPECIFIED_METHOD]
    _check_plans(pairs, plans)
    for plan in plans:
        fakes = {pairs[k].meta.get("method") or UNSPECIFIED_METHOD for k in plan.test if pairs[k].label == "fake"}
        assert fakes == {plan.name}
        assert plan.name not in {pairs[k].meta.get("method") or UNSPECIFIED_METHOD
                                 for k in plan.train + plan.val if pairs[k].label == "fake"}


def test_summary_per_method_and_per_dataset_video_auc():
    metas = [{"video": f"v{i // 2}", "group": f"g{i // 4}", "dataset": "a" if i < 8 else "b",
              **({"method": "M1" if i < 6 else "M2"} if i % 4 >= 2 else {})} for i in range(12)]
    labels = np.array([1 if "method" in m else 0 for m in metas])
    probs = np.array([0.9 if m.get("method") == "M1" else 0.1 if m.get("method") == "M2" else 0.5 for m in metas])
    s = summarize(labels, probs, metas)
    assert s["per_method"]["M1"]["video_auc"] == 1.0 and s["per_method"]["M2"]["video_auc"] == 0.0
    assert s["per_method"]["M1"]["counts"] == {"real": 6, "fake": 2}  # its fakes against every real
    assert s["per_method"]["M2"]["video_counts"] == {"real": 3, "fake": 2}
    assert s["per_dataset"]["a"]["video_auc"] == 0.5 and s["per_dataset"]["b"]["video_auc"] == 0.0
    assert s["frames"] == 12 and s["videos"] == 6
    # each group: one real video (0.5) and one fake; only g0's fake (M1, 0.9) scores above its real
    assert s["within_group_pairs"] == 3 and s["within_group_video_auc"] == pytest.approx(1 / 3)
    lo, hi = s["video_auc_ci95"]
    assert s["video_auc_groups"] == 3 and lo <= s["video_auc"] <= hi


def test_cli_scores_every_pair_once_and_writes_the_table(shards, tmp_path):
    out = tmp_path / "cv"
    res = CliRunner().invoke(crossval, ["--shards", shards, "--output", str(out), "--by", "dataset", "--preset", "tiny",
                                        "--epochs", "1", "--batch-size", "8", "--workers", "0", "--input-size", str(SIZE),
                                        "--device", "cpu", "--checkpoint", "last"])
    assert res.exit_code == 0, res.output
    assert "| **pooled** |" in res.output and "| ds-a |" in res.output and "| Deepfakes |" in res.output
    result = json.loads((out / "crossval.json").read_text())
    keys = []
    for fold in result["folds"]:
        with open(os.path.join(fold["dir"], "eval", "predictions.jsonl"), encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        keys += [line["key"] for line in lines]
        assert {line["dataset"] for line in lines} == {fold["name"]}
        assert fold["checkpoint"] == os.path.join(fold["dir"], "run", "last.pt")
        info = json.loads(open(os.path.join(fold["dir"], "shards", "_info.json"), encoding="utf-8").read())
        assert info["crossval"]["fold"] == fold["name"] and info["options"] == {"size": SIZE}
    assert len(keys) == len(set(keys)) == result["pooled"]["frames"] == 12 * 2 * FRAMES + FRAMES
    assert set(result["pooled"]["per_method"]) == {"Deepfakes", "FaceSwap"}
    assert result["fold_video_auc"]["n"] == 2  # ds-c holds reals only: no AUC, still scored
    # within-group comparisons are made inside a fold and pooled weighted by their pairs
    folds = [f["metrics"] for f in result["folds"] if f["metrics"]["within_group_pairs"]]
    assert folds and result["pooled"]["within_group_pairs"] == sum(m["within_group_pairs"] for m in folds)
    assert result["pooled"]["within_group_video_auc"] == pytest.approx(
        sum(m["within_group_video_auc"] * m["within_group_pairs"] for m in folds) / result["pooled"]["within_group_pairs"])
    table = (out / "crossval.md").read_text()
    assert table.startswith("# Cross-validation by dataset")
    lo, hi = result["pooled"]["video_auc_ci95"]
    assert f"({result['pooled']['video_auc_groups']} groups): {lo:.3f}-{hi:.3f}." in table
    page = run_report(str(out))  # `noisetrace report` of this output: folds, pooled figures, curves and ROC
    html = open(page, encoding="utf-8").read()
    assert all(f"<td>{f['name']}</td>" in html for f in result["folds"]) and "<td>Deepfakes</td>" in html
    assert f"{lo:.3f} to {hi:.3f}" in html and len(re.findall(r'<img src="figure-\d+\.png"', html)) == 2


def test_the_table_flags_folds_held_out_on_a_handful_of_videos():
    metas = [{"video": f"v{i}", "group": f"g{i}", "dataset": "a"} for i in range(8)]
    many = summarize(np.array([0, 0, 0, 0, 1, 1, 1, 1]), np.linspace(0, 1, 8), metas)
    one_fake = summarize(np.array([0, 0, 0, 1]), np.linspace(0, 1, 4), metas[:4])
    reals_only = summarize(np.array([0, 0]), np.array([0.2, 0.3]), metas[:2])
    folds = [{"name": n, "metrics": m} for n, m in (("big", many), ("Unknown", one_fake), ("reals", reals_only))]
    result = {"by": "method", "folds": folds, "pooled": {**many, "within_group_pairs": 0, "within_group_video_auc": None},
              "fold_video_auc": {"n": 2, "mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0}}
    text = markdown(result)
    assert "mostly luck: Unknown (3 real / 1 fake)." in text
    assert "big (" not in text and "reals (" not in text  # enough videos; one class has no AUC to doubt
