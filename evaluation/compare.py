"""`compare`: several `evaluate` outputs side by side, like the paper's Tables 2 and 3.

It reads only what `evaluate` wrote (metrics.json, predictions.jsonl), so detectors
trained and evaluated at different times, or on different machines, compare as long as
they were evaluated on the same pairs (checked by pair key). Output: comparison.md, comparison.csv, and
roc.png with every detector's frame-level ROC curve.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.evaluate import METRICS_NAME, PREDICTIONS_NAME, plot_roc
from training.presets import DEFAULT_MODEL_KIND

TABLE_NAME = "comparison"  # .md and .csv
ROC_NAME = "roc.png"
# (CSV header, Markdown header, format of a value in Markdown)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "model", "{}"),
    ("evaluation", "evaluation", "{}"),
    ("frame_accuracy", "frame accuracy", "{:.3f}"),
    ("frame_auc", "frame AUC", "{:.3f}"),
    ("video_auc", "video AUC", "{:.3f}"),
    ("pairs", "pairs", "{:d}"),
    ("parameters", "parameters", "{:,d}"),
    ("train_pairs_per_s", "train pairs/s", "{:.1f}"),
)


@dataclass(frozen=True)
class Evaluation:
    """One `evaluate` output folder: its metrics and its frame-level keys, labels and scores."""

    path: str
    metrics: dict[str, Any]
    keys: frozenset[str]
    labels: np.ndarray
    scores: np.ndarray

    @property
    def model(self) -> str:
        """`noise (preset)` or the baseline's name; `unknown` for metrics.json files
        written before `evaluate` recorded the model."""
        m = self.metrics.get("model") or {}
        kind = m.get("kind", "unknown")
        return f"{kind} ({m['preset']})" if kind == DEFAULT_MODEL_KIND and m.get("preset") else kind

    def row(self) -> dict[str, Any]:
        m = self.metrics.get("model") or {}
        return {
            "model": self.model, "evaluation": self.path, "frame_accuracy": self.metrics.get("frame_accuracy"),
            "frame_auc": self.metrics.get("frame_auc"), "video_auc": self.metrics.get("video_auc"),
            "pairs": self.metrics.get("frames"), "parameters": m.get("parameters"),
            "train_pairs_per_s": m.get("train_pairs_per_s"),
        }


def read_evaluation(path: str) -> Evaluation:
    """metrics.json and predictions.jsonl of one folder; a clear error when either is missing."""
    files = [os.path.join(path, name) for name in (METRICS_NAME, PREDICTIONS_NAME)]
    for f in files:
        if not os.path.isfile(f):
            raise FileNotFoundError(f"{path}: no {os.path.basename(f)}; give compare the --output folders of evaluate")
    try:
        with open(files[0], encoding="utf-8") as f:
            metrics = json.load(f)
        with open(files[1], encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return Evaluation(path, metrics, frozenset(r["key"] for r in rows), np.array([r["cls"] for r in rows], dtype=np.int64),
                          np.array([r["fake_probability"] for r in rows], dtype=np.float64))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:  # a cut-off or hand-edited file
        raise ValueError(f"{path}: {METRICS_NAME} or {PREDICTIONS_NAME} is damaged ({type(exc).__name__}); "
                         "run evaluate into it again") from exc


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub Markdown table; a missing value (e.g. an AUC undefined on one class) shows as `-`."""
    cell = lambda v, fmt: "-" if v is None else fmt.format(v)  # noqa: E731
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[key], fmt) for key, _, fmt in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict[str, Any]], path: str) -> None:
    """Full-precision values; a missing value is an empty cell."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[key for key, _, _ in COLUMNS])
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)


def curve_names(evaluations: list[Evaluation]) -> list[str]:
    """Legend names: the model, plus its folder where two evaluations share a model."""
    models = [e.model for e in evaluations]
    return [m if models.count(m) == 1 else f"{m} [{os.path.basename(os.path.normpath(e.path))}]"
            for m, e in zip(models, evaluations)]


def run_compare(eval_dirs: list[str], output: str) -> dict[str, str]:
    """Write OUTPUT/comparison.md, comparison.csv and roc.png; returns their paths."""
    evaluations = [read_evaluation(d) for d in eval_dirs]
    for e in evaluations[1:]:
        if e.keys != evaluations[0].keys:
            # Numbers from different test sets side by side would look comparable and are not.
            raise ValueError(f"{e.path} and {evaluations[0].path} scored different pairs; evaluate both on the same split")
    rows = [e.row() for e in evaluations]
    os.makedirs(output, exist_ok=True)
    paths = {"markdown": os.path.join(output, f"{TABLE_NAME}.md"), "csv": os.path.join(output, f"{TABLE_NAME}.csv"),
             "roc": os.path.join(output, ROC_NAME)}
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(markdown_table(rows))
    write_csv(rows, paths["csv"])
    curves = {name: (e.labels, e.scores) for name, e in zip(curve_names(evaluations), evaluations)}
    plot_roc(curves, paths["roc"], title="frame-level ROC (fake = positive)")
    return paths
