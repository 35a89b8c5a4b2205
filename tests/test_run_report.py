"""`noisetrace report` of a real training run with an `evaluate` output inside it."""
import json
import os
import re
import shutil

from click.testing import CliRunner

from noisetrace.cli import main
from evaluation.evaluate import run_evaluation
from reports.html_page import fmt


def image_sources(page: str) -> list[str]:
    with open(page, encoding="utf-8") as f:
        return re.findall(r'<img src="([^"]+)"', f.read())


def test_report_of_a_run_and_its_evaluation_shows_their_figures(tiny_checkpoint, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(os.path.dirname(tiny_checkpoint), run)
    config = json.loads((run / "config.json").read_text())
    metrics = run_evaluation(str(run / "best.pt"), config["train"]["shards"], str(run / "eval"), split="val", workers=0)
    res = CliRunner().invoke(main, ["report", str(run)])
    assert res.exit_code == 0, res.output
    page = res.stdout.strip()
    assert page == str(run / "report" / "index.html")
    html = open(page, encoding="utf-8").read()
    epoch = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert "<h2>Training: " in html and "<h2>Evaluation: eval</h2>" in html
    assert f"<td>1</td><td>{epoch['loss']:.4f}</td><td>{epoch['val_accuracy']:.3f}</td><td>{epoch['val_auc']:.3f}</td>" in html
    assert f"{fmt(metrics['frame_auc'])} / {fmt(metrics['frame_accuracy'])}" in html
    assert all(f"<td>{ds}</td>" in html for ds in metrics["per_dataset"])
    sources = image_sources(page)
    assert len(sources) == 2 and all(os.path.getsize(run / "report" / s) > 5000 for s in sources)  # curves, ROC


def test_report_of_a_folder_without_outputs_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert res.exit_code == 1 and "Traceback" not in res.output and "holds no metrics.jsonl" in res.output
