"""`evaluate`: frame- and video-level accuracy/AUC of a checkpoint on a shard split."""
from __future__ import annotations

import io
import json
import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import nn  # noqa: E402

from shards.checked import require_pairs  # noqa: E402
from shards.source import open_shards  # noqa: E402
from shards.space import write_file  # noqa: E402
from shards.schema import CLS_REAL, CLS_TO_LABEL  # noqa: E402
from training.checkpoint import detector_from_checkpoint, load_checkpoint  # noqa: E402
from training.data import eval_loader  # noqa: E402
from training.detectors import model_kind, parameter_count  # noqa: E402
from training.device import resolve_device  # noqa: E402
from training.metrics import (  # noqa: E402
    accuracy, finite_or_none, group_bootstrap_ci, per_group_mean, roc_auc, roc_curve, video_auc, within_group_auc,
)
from training.predict import predict_loader  # noqa: E402
from training.residuals import cache_for, frozen_extractor  # noqa: E402
from training.presets import DEFAULT_MODEL_KIND  # noqa: E402

METRICS_NAME = "metrics.json"
ROC_NAME = "roc.png"
PREDICTIONS_NAME = "predictions.jsonl"


def _scores(labels: np.ndarray, probs: np.ndarray, videos: list[str],
            per_video: tuple[list[str], np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Frame and video (mean of its frames) accuracy and AUC, with counts, of one set of
    pairs; `per_video` is `per_group_mean` of them where the caller already has it."""
    names, video_labels, video_probs = per_video or per_group_mean(videos, labels, probs)
    return {
        "frames": int(labels.size),
        "videos": len(names),
        "frame_accuracy": finite_or_none(accuracy(labels, probs)),
        "frame_auc": finite_or_none(roc_auc(labels, probs)),
        "video_accuracy": finite_or_none(accuracy(video_labels, video_probs)),
        "video_auc": finite_or_none(roc_auc(video_labels, video_probs)),
        "counts": {CLS_TO_LABEL[c]: int(np.sum(labels == c)) for c in CLS_TO_LABEL},
        "video_counts": {CLS_TO_LABEL[c]: int(np.sum(video_labels == c)) for c in CLS_TO_LABEL},
    }


def summarize(labels: np.ndarray, probs: np.ndarray, metas: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics.json content for one set of frame predictions and the pairs' json.

    `per_dataset`: each dataset's pairs alone (AUC is undefined, None, for a dataset with
    one class). `per_method`: each manipulation method's fakes (`method` in the pair's
    json, FF++ layout) against every real pair of the set, the way per-method figures are
    usually reported; fakes of no known method are left out of that block only.
    `within_group_video_auc`: each fake video against the real videos of its own group
    (`training.metrics.within_group_auc`), over `within_group_pairs` such pairs.
    `video_auc_ci95`: the 95% interval of `video_auc` when whole groups are resampled
    (`training.metrics.group_bootstrap_ci`, over `video_auc_groups` groups): on a few dozen
    groups it is wide, and a figure inside it says no more than chance does."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    videos = [m["video"] for m in metas]
    datasets = np.array([m["dataset"] for m in metas], dtype=object)
    methods = np.array([m.get("method") for m in metas], dtype=object)
    real = labels == CLS_REAL

    def subset(mask: np.ndarray) -> dict[str, Any]:
        return _scores(labels[mask], probs[mask], [v for v, keep in zip(videos, mask) if keep])

    per_dataset = {ds: subset(datasets == ds) for ds in sorted(set(datasets))}
    per_method = {m: subset(real | (methods == m)) for m in sorted({m for m in methods if m})}
    group_of = {m["video"]: m["group"] for m in metas}
    per_video = per_group_mean(videos, labels, probs)
    names, video_labels, video_probs = per_video
    video_groups = [group_of[v] for v in names]
    within, within_pairs = within_group_auc(video_groups, video_labels, video_probs)
    ci = group_bootstrap_ci(video_auc, video_groups, video_labels, video_probs)
    return {
        **_scores(labels, probs, videos, per_video),
        "video_auc_ci95": [finite_or_none(x) for x in ci],
        "video_auc_groups": len(set(video_groups)),
        "within_group_video_auc": finite_or_none(within),
        "within_group_pairs": within_pairs,
        "dataset_counts": {ds: v["counts"] for ds, v in per_dataset.items()},
        "per_dataset": per_dataset,
        "per_method": per_method,
    }


def describe_model(ckpt: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """metrics.json's `model`: what was evaluated, for `compare` to set runs side by side.

    `train_pairs_per_s` is the training throughput of the epoch that wrote the checkpoint
    (its `metrics` record), on the devices `world_size` and `device` name.
    """
    config = ckpt["config"]
    kind = model_kind(config)
    return {
        "kind": kind,
        "preset": config["train"].get("preset") if kind == DEFAULT_MODEL_KIND else None,
        "input_size": config["model"]["input_size"],
        "parameters": parameter_count(model),
        "epoch": ckpt.get("epoch"),
        "train_pairs_per_s": ckpt.get("metrics", {}).get("pairs_per_s"),
        "train_device": config.get("device"),
        "train_world_size": config.get("world_size"),
    }


PREDICTION_META = ("video", "dataset", "method", "group", "frame_index")


def prediction_record(key: str, meta: dict[str, Any], cls: int, probability: float) -> dict[str, Any]:
    """One line of predictions.jsonl: the pair, what it is, and its score; `summarize`
    reads these same fields back (crossval pools the folds' lines)."""
    return {"key": key, **{k: meta[k] for k in PREDICTION_META if k in meta}, "cls": cls, "fake_probability": probability}


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str, title: str = "ROC (fake = positive)") -> None:
    """One ROC plot: {name: (labels, scores)} each as a curve with its AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    for name, (labels, scores) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(-0.01, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png")
    plt.close(fig)
    write_file(path, image.getvalue())  # whole or not at all, also on a full disk


def run_evaluation(
    checkpoint: str,
    shards: str,
    output: str,
    split: str = "test",
    batch_size: int = 256,
    workers: int = 2,
    device: str | None = None,
    on_bad_shard: str = "stop",
    residual_cache: str | None = None,
) -> dict[str, Any]:
    """Write OUTPUT/metrics.json, roc.png and predictions.jsonl; returns the metrics. A
    checkpoint whose extractor was frozen reads its residuals through `residual_cache`
    (training.residuals: None, the default folder; "off", none)."""
    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint)
    model = detector_from_checkpoint(ckpt, dev)
    lengths = open_shards(shards).lengths(split)
    loader = eval_loader(list(lengths), batch_size=batch_size, workers=workers, lengths=lengths, on_bad_shard=on_bad_shard)
    cache = cache_for(model, frozen_extractor(ckpt["config"].get("train", {})), residual_cache, dev)
    out = predict_loader(model, loader, dev, cache)
    require_pairs(out["cls"].size, shards, split)
    metrics = {"checkpoint": checkpoint, "shards": shards, "split": split, "model": describe_model(ckpt, model),
               **summarize(out["cls"], out["prob"], out["meta"])}
    os.makedirs(output, exist_ok=True)
    write_file(os.path.join(output, METRICS_NAME), json.dumps(metrics, indent=2, sort_keys=True).encode("utf-8"))
    write_file(os.path.join(output, PREDICTIONS_NAME), "".join(
        json.dumps(prediction_record(key, meta, int(y), float(p))) + "\n"
        for key, meta, y, p in zip(out["key"], out["meta"], out["cls"], out["prob"])).encode("utf-8"))
    _, video_labels, video_probs = per_group_mean([m["video"] for m in out["meta"]], out["cls"], out["prob"])
    plot_roc({"frames": (out["cls"], out["prob"]), "videos": (video_labels, video_probs)}, os.path.join(output, ROC_NAME))
    return metrics
