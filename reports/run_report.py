"""`noisetrace report RUN_DIR`: a page of curves and tables for a training, evaluation or
cross-validation output, so nobody has to read `metrics.jsonl` to see how a run went.

It reads only what the commands wrote: a `train-from-shards` run (config.json,
metrics.jsonl: loss and validation figures per epoch), an `evaluate` output (metrics.json,
predictions.jsonl: the ROC, per-dataset, per-method and within-group figures) and a
`crossval` output (crossval.json, and each fold's run and eval folders). A folder holding
several of them (a `demo` output: run/ and eval/ side by side) gets a section for each.
The page and its PNGs go to OUTPUT (default RUN_DIR/report), self-contained as
`detect --report`'s are.
"""
from __future__ import annotations

import json
import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from evaluation.crossval import RESULT_JSON as CROSSVAL_JSON  # noqa: E402
from evaluation.evaluate import METRICS_NAME as EVAL_METRICS, PREDICTIONS_NAME, plot_roc  # noqa: E402
from reports.html_page import definitions, esc, fmt, image, page, table, write_page  # noqa: E402
from training.metrics import per_group_mean  # noqa: E402
from training.train import CONFIG_NAME, METRICS_NAME as TRAIN_METRICS  # noqa: E402

REPORT_DIR = "report"
EPOCH_FIELDS = (("loss", "training loss", 4), ("val_accuracy", "val accuracy", 3), ("val_auc", "val AUC", 3),
                ("val_eer", "val equal-error rate", 3), ("val_eer_threshold", "threshold at equal error", 3),
                ("pairs_per_s", "pairs/s", 1))
SCORE_HEADERS = ["pairs real / fake", "videos real / fake", "frame AUC", "frame accuracy", "video AUC", "video accuracy"]


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def score_cells(m: dict[str, Any]) -> list[str]:
    """An `evaluate` summary (metrics.json, or one of its per-dataset blocks) as table cells."""
    c, vc = m.get("counts", {}), m.get("video_counts", {})
    return [f"{c.get('real', '-')} / {c.get('fake', '-')}", f"{vc.get('real', '-')} / {vc.get('fake', '-')}",
            fmt(m.get("frame_auc")), fmt(m.get("frame_accuracy")), fmt(m.get("video_auc")), fmt(m.get("video_accuracy"))]


class RunReport:
    """Sections of one page, each from one output folder; images saved beside the page."""

    def __init__(self, run_dir: str, output: str) -> None:
        self.run_dir, self.output = run_dir, output
        self.sections: list[str] = []
        self._images = 0

    def _figure(self, fig: plt.Figure | None = None, draw=None, alt: str = "") -> str:
        """Save a figure (or let `draw(path)` write one) as the next numbered PNG; its <img>."""
        self._images += 1
        name = f"figure-{self._images:02d}.png"
        path = os.path.join(self.output, name)
        if draw is not None:
            draw(path)
        else:
            for ax in fig.axes:  # epochs are whole numbers
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            fig.tight_layout()
            fig.savefig(path)
            plt.close(fig)
        return image(name, alt)

    def _where(self, folder: str) -> str:
        rel = os.path.relpath(folder, self.run_dir)
        return esc(self.run_dir if rel == "." else rel)

    def training(self, folder: str) -> None:
        """Loss and validation curves per epoch, the epochs as a table, and the run's options."""
        epochs = _read_jsonl(os.path.join(folder, TRAIN_METRICS))
        if not epochs:
            self.sections.append(f"<h2>Training: {self._where(folder)}</h2><p>No epoch finished yet.</p>")
            return
        x = [e["epoch"] for e in epochs]
        fig, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(10, 3.2), dpi=100)
        loss_ax.plot(x, [e.get("loss") for e in epochs], "o-", ms=3)
        loss_ax.set(xlabel="epoch", ylabel="training loss", title="loss")
        for key, label, _ in EPOCH_FIELDS[1:4]:
            ys = [np.nan if e.get(key) is None else e[key] for e in epochs]
            if not all(np.isnan(ys)):
                val_ax.plot(x, ys, "o-", ms=3, label=label)
        val_ax.axhline(0.5, color="#999", ls=":", lw=0.8)
        val_ax.set(xlabel="epoch", ylim=(-0.02, 1.02), title="validation")
        val_ax.legend(fontsize=8)
        parts = [f"<h2>Training: {self._where(folder)}</h2>", self._figure(fig, alt="loss and validation curves per epoch")]
        fields = [f for f in EPOCH_FIELDS if any(e.get(f[0]) is not None for e in epochs)]
        parts.append(table(["epoch"] + [label for _, label, _ in fields],
                           ([str(e["epoch"])] + [fmt(e.get(k), d) for k, _, d in fields] for e in epochs)))
        config_path = os.path.join(folder, CONFIG_NAME)
        if os.path.isfile(config_path):
            config = _read_json(config_path)
            train = config.get("train", {})
            shown = ("shards", "model", "preset", "extractor", "epochs", "batch_size", "lr", "fake_source", "self_blend",
                     "balance_by", "init_denoiser", "freeze_denoiser", "seed")
            parts.append(definitions({k: esc(train[k]) for k in shown if train.get(k) is not None}))
        self.sections.append("\n".join(parts))

    def evaluation(self, folder: str) -> None:
        """The figures of an `evaluate` output, its ROC (frames and videos), and the
        per-dataset, per-method and within-group figures where it has them."""
        m = _read_json(os.path.join(folder, EVAL_METRICS))
        parts = [f"<h2>Evaluation: {self._where(folder)}</h2>"]
        lo, hi = m.get("video_auc_ci95") or [None, None]
        figures = {"checkpoint": esc(m.get("checkpoint", "-")), "shards, split": esc(f"{m.get('shards', '-')}, {m.get('split', '-')}"),
                   "frames / videos": esc(f"{m.get('frames')} / {m.get('videos')}"),
                   "frame AUC / accuracy": f"{fmt(m.get('frame_auc'))} / {fmt(m.get('frame_accuracy'))}",
                   "video AUC / accuracy": f"{fmt(m.get('video_auc'))} / {fmt(m.get('video_accuracy'))}"}
        if "video_auc_ci95" in m:
            figures["video AUC, 95% interval"] = f"{fmt(lo)} to {fmt(hi)} (whole groups resampled, {m.get('video_auc_groups')} groups)"
        if "within_group_video_auc" in m:
            figures["within-group video AUC"] = (f"{fmt(m['within_group_video_auc'])} over {m.get('within_group_pairs')} "
                                                 "(real, fake) video pairs of one group; 0.5 = ranked alike")
        parts.append(definitions(figures))
        predictions = os.path.join(folder, PREDICTIONS_NAME)
        if os.path.isfile(predictions):
            parts.append(self._roc(_read_jsonl(predictions), "ROC of the evaluation (frames and videos)"))
        parts += self._breakdowns(m)
        self.sections.append("\n".join(parts))

    def _breakdowns(self, m: dict[str, Any]) -> list[str]:
        parts = []
        for key, title in (("per_dataset", "dataset"), ("per_method", "method (its fakes against all reals)")):
            if m.get(key):
                parts += [f"<h3>Per {esc(title)}</h3>",
                          table([esc(title.split(" ")[0])] + SCORE_HEADERS, ([esc(k)] + score_cells(v) for k, v in m[key].items()))]
        return parts

    def _roc(self, predictions: list[dict[str, Any]], title: str) -> str:
        labels = np.array([p["cls"] for p in predictions])
        probs = np.array([p["fake_probability"] for p in predictions])
        _, video_labels, video_probs = per_group_mean([p["video"] for p in predictions], labels, probs)
        curves = {"frames": (labels, probs), "videos": (video_labels, video_probs)}
        return self._figure(draw=lambda path: plot_roc(curves, path, title), alt=title)

    def crossval(self, folder: str) -> None:
        """The folds' table, their training curves, the pooled ROC and breakdowns."""
        result = _read_json(os.path.join(folder, CROSSVAL_JSON))
        folds = result.get("folds", [])
        pooled = result.get("pooled", {})
        parts = [f"<h2>Cross-validation by {esc(result.get('by'))}: {self._where(folder)}, {len(folds)} folds</h2>",
                 "<p>Every pair is scored once, by the model of the fold that held its group out.</p>",
                 table(["fold", "held-out datasets", "pairs train / val / test"] + SCORE_HEADERS + ["within-group video AUC"],
                       [[esc(f["name"]), esc(", ".join(f.get("held_out_datasets", []))),
                         esc(" / ".join(str(f.get("pairs", {}).get(s, "-")) for s in ("train", "val", "test")))]
                        + score_cells(f["metrics"]) + [fmt(f["metrics"].get("within_group_video_auc"))] for f in folds]
                       + [["<b>pooled</b>", "", ""] + score_cells(pooled) + [fmt(pooled.get("within_group_video_auc"))]])]
        spread = result.get("fold_video_auc", {})
        lo, hi = pooled.get("video_auc_ci95") or [None, None]
        parts.append(definitions({
            "fold video AUC": f"mean {fmt(spread.get('mean'))}, std {fmt(spread.get('std'))}, min {fmt(spread.get('min'))}, "
                              f"max {fmt(spread.get('max'))} over {spread.get('n', 0)} fold(s) holding both classes",
            "pooled video AUC, 95% interval": f"{fmt(lo)} to {fmt(hi)} ({pooled.get('video_auc_groups', '-')} groups resampled)",
            "within-group video AUC": f"{fmt(pooled.get('within_group_video_auc'))} over {pooled.get('within_group_pairs', 0)} pairs",
        }))
        curves = {f["name"]: _read_jsonl(p) for f in folds
                  for p in [os.path.join(f.get("dir", ""), "run", TRAIN_METRICS)] if os.path.isfile(p)}
        if curves:
            fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
            for name, epochs in curves.items():
                ax.plot([e["epoch"] for e in epochs], [np.nan if e.get("val_auc") is None else e["val_auc"] for e in epochs],
                        "o-", ms=3, label=name)
            ax.set(xlabel="epoch", ylabel="val AUC", ylim=(-0.02, 1.02), title="validation AUC per fold")
            ax.legend(fontsize=7)
            parts.append(self._figure(fig, alt="validation AUC per epoch of each fold"))
        predictions = [r for f in folds for p in [os.path.join(f.get("dir", ""), "eval", PREDICTIONS_NAME)]
                       if os.path.isfile(p) for r in _read_jsonl(p)]
        if predictions:
            parts.append(self._roc(predictions, "pooled ROC of the held-out folds"))
        parts += self._breakdowns(pooled)
        self.sections.append("\n".join(parts))


def _kinds(folder: str) -> list[str]:
    """Which outputs a folder holds."""
    return [kind for kind, name in (("crossval", CROSSVAL_JSON), ("training", TRAIN_METRICS), ("evaluation", EVAL_METRICS))
            if os.path.isfile(os.path.join(folder, name))]


def run_report(run_dir: str, output: str | None = None) -> str:
    """Write OUTPUT/index.html (default RUN_DIR/report) for RUN_DIR and those of its
    sub-folders that hold an output (a demo's run/ and eval/, a run's eval/); returns the page's path."""
    output = output or os.path.join(run_dir, REPORT_DIR)
    subfolders = [os.path.join(run_dir, d) for d in sorted(os.listdir(run_dir))]
    folders = [f for f in [run_dir, *subfolders] if os.path.isdir(f) and _kinds(f)]
    if not folders:
        raise ValueError(f"{run_dir}: holds no {TRAIN_METRICS} (train-from-shards), {EVAL_METRICS} (evaluate) or "
                         f"{CROSSVAL_JSON} (crossval), nor a folder that does")
    os.makedirs(output, exist_ok=True)
    report = RunReport(run_dir, output)
    for folder in folders:
        for kind in _kinds(folder):
            getattr(report, kind)(folder)  # RunReport.crossval / training / evaluation
    body = f"<h1>noisetrace run: {esc(run_dir)}</h1>\n" + "\n".join(report.sections)
    path = os.path.join(output, "index.html")
    write_page(path, page(f"noisetrace run {run_dir}", body))
    return path
