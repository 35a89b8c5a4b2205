"""Click commands that draw what a person reads: `visualize` (noise-trace figure) and
`report` (a run's HTML page). Each imports its implementation (matplotlib, torch) when it runs.
"""
from __future__ import annotations

from typing import Any

import click

from training.cli import EXISTING_DIR, EXISTING_FILE, SHARDS, device_option, on_bad_shard_option, one_line_errors


@click.command("visualize")
@click.option("--checkpoint", required=True, type=EXISTING_FILE)
@click.option("--shards", required=True, type=SHARDS, help="Shard directory, URL or brace pattern (as for train-from-shards).")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--split", default="test", show_default=True)
@click.option("--rows", type=click.IntRange(min=2), default=4, show_default=True, help="Rows of pairs: half real, half fake.")
@on_bad_shard_option
@device_option
@one_line_errors
def visualize(**options: Any) -> None:
    """The paper's Fig. 6: faces and backgrounds above their noise traces."""
    from reports.visualize import run_visualize

    click.echo(run_visualize(**options))


@click.command("report")
@click.argument("run_dir", type=EXISTING_DIR)
@click.option("--output", type=click.Path(file_okay=False), default=None, help="Directory for index.html and its figures [default: RUN_DIR/report].")
@one_line_errors
def report(run_dir: str, output: str | None) -> None:
    """A page of curves and tables for a train-from-shards, evaluate or crossval output: loss and validation
    per epoch, ROC, per-dataset, per-method and within-group figures, cross-validation folds."""
    from reports.run_report import run_report

    click.echo(run_report(run_dir, output))
