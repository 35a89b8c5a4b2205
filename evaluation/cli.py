"""Click commands that score a model: `evaluate`, `crossval`, `compare`.

Like `training/cli.py`, importing this needs neither torch nor webdataset: each command
imports its implementation when it runs.
"""
from __future__ import annotations

import json
from typing import Any

import click

from training.cli import EXISTING_DIR, EXISTING_FILE, SHARDS, device_option, on_bad_shard_option, one_line_errors, train_from_shards, workers_option


@click.command("evaluate")
@click.option("--checkpoint", required=True, type=EXISTING_FILE)
@click.option("--shards", required=True, type=SHARDS, help="Shard directory, URL or brace pattern (as for train-from-shards).")
@click.option("--split", default="test", show_default=True)
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Directory for metrics.json, roc.png, predictions.jsonl.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--residual-cache", default=None, metavar="DIR|off",
              help="A frozen extractor's cached residuals (as for train-from-shards) [default: $NOISETRACE_CACHE or "
                   "~/.cache/noisetrace/residuals].")
@workers_option
@on_bad_shard_option
@device_option
@one_line_errors
def evaluate(**options: Any) -> None:
    """Frame and video accuracy/AUC of a checkpoint on one split of a shard directory."""
    from evaluation.evaluate import run_evaluation

    metrics = run_evaluation(**options)
    click.echo(json.dumps({k: metrics[k] for k in ("frames", "videos", "frame_accuracy", "frame_auc", "video_auc")}))


@click.command("crossval")
@click.option("--shards", required=True, type=SHARDS, help="Shard directory, URL or brace pattern; every split is pooled and re-split.")
@click.option("--output", required=True, type=click.Path(file_okay=False),
              help="Directory for one folder per fold (shards, run, eval), crossval.json and crossval.md.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Number of folds with --by group.")
@click.option("--by", type=click.Choice(["group", "dataset", "method"]), default="group", show_default=True,
              help="group: K folds of whole groups; dataset: leave one dataset out; method: leave one manipulation method out.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.15, show_default=True,
              help="Share of each fold's training groups held back to pick best.pt.")
@click.option("--fold-seed", type=int, default=0, show_default=True, help="Seeds which groups go to which fold (apart from --seed, so recipes are compared on the same folds).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="Which checkpoint of each fold scores its held-out pairs: best.pt (highest val AUC) or last.pt "
                   "(the final epoch, as SBI reports; steadier when the val groups are few).")
@one_line_errors
def crossval(**options: Any) -> None:
    """Cross-validate a training recipe with folds disjoint by group, dataset or method; prints the table.

    Takes every train-from-shards option (except --resume); they apply to each fold."""
    from evaluation.crossval import RESULT_MD, run_crossval

    run_crossval(**options)
    with open(f"{options['output']}/{RESULT_MD}", encoding="utf-8") as f:
        click.echo(f.read(), nl=False)


# the recipe under test is train-from-shards' own: its options, defaults and help, except where runs live
crossval.params.extend(p for p in train_from_shards.params if p.name not in {"shards", "output", "resume"})


@click.command("compare")
@click.argument("eval_dirs", nargs=-1, required=True, type=EXISTING_DIR)
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Directory for comparison.md, comparison.csv, roc.png.")
@one_line_errors
def compare(eval_dirs: tuple[str, ...], output: str) -> None:
    """Side-by-side table and overlaid ROC curves of several `evaluate --output` folders."""
    from evaluation.compare import run_compare

    paths = run_compare(list(eval_dirs), output)
    with open(paths["markdown"], encoding="utf-8") as f:
        click.echo(f.read(), nl=False)
