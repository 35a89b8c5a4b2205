"""The whole demo: videos -> shards -> training -> evaluation -> figures -> detect."""
import json
import os

from PIL import Image

from noisetrace.demo import run_demo


def test_demo_learns_and_writes_everything(tmp_path):
    # The demo's own size is already small (under 2 min on 2 idle cores); smaller sets (fewer
    # I-frames, fewer epochs or steps) left seeds at chance (docs/benchmarks.md), so the test
    # runs it as the README does.
    out = tmp_path / "demo"
    summary = run_demo(str(out))
    for key in ("checkpoint", "metrics", "roc", "noise_traces"):
        assert os.path.getsize(summary[key]) > 0, key
    assert list((out / "shards" / "train").glob("pairs-*.tar"))
    for png in (summary["roc"], summary["noise_traces"]):
        with Image.open(png) as im:
            assert im.format == "PNG" and min(im.size) > 200
    metrics = json.loads(open(summary["metrics"]).read())
    for field in ("frame_accuracy", "frame_auc", "video_auc"):
        assert field in metrics
    history = [json.loads(line) for line in open(out / "run" / "metrics.jsonl")]
    assert len(history) == 12
    assert max(h["val_auc"] for h in history) > 0.8  # learning, not chance
    assert metrics["frame_auc"] > 0.7
    for label in ("real", "fake"):
        assert 0.0 <= summary["detect"][label]["fake_probability"] <= 1.0
