"""`detect`: fake probability of whole videos with a trained checkpoint.

It crops pairs exactly as `build-shards` does, by calling the pipeline's pure functions
(keyframes, face, squares), so a video is judged on the same kind of input the model was
trained on. That is the one place `training/` touches FFmpeg and dlib (the `detect`
extra); it never needs Beam.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import click
import numpy as np

from pipeline.pairs import NO_RESIZE, RESIZE_FILTERS, ExtractOptions, Failure, frame_pairs
from training.checkpoint import load_detector
from training.cli import one_line_errors
from training.device import resolve_device
from training.predict import predict_pairs


@dataclass
class VideoVerdict:
    """One video's result: the mean of its keyframes' P(fake), or why there is none."""

    video: str
    fake_probability: float | None
    keyframes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"video": self.video, "fake_probability": self.fake_probability, "keyframes": self.keyframes,
                "failures": self.failures}


def crop_options(config: dict[str, Any], **overrides: Any) -> ExtractOptions:
    """The crop options the checkpoint's shards were built with, where it recorded them."""
    built = dict(config.get("shard_options") or {})
    fields = {k: v for k, v in built.items() if k in ExtractOptions.__dataclass_fields__}
    fields["size"] = config["model"]["input_size"]
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return ExtractOptions(**fields)


def detect_video(path: str, model, options: ExtractOptions, device, detector=None) -> VideoVerdict:
    """Score every usable keyframe of one local video."""
    detector = detector or options.detector()
    pairs, failures = [], []
    for item in frame_pairs(path, path, detector, options):
        (failures if isinstance(item, Failure) else pairs).append(item)
    verdict = VideoVerdict(path, None, failures=[f.to_json() for f in failures])
    if not pairs:
        return verdict
    probs = predict_pairs(model, np.stack([p.face for p in pairs]), np.stack([p.background for p in pairs]), device)
    verdict.fake_probability = float(np.mean(probs))
    verdict.keyframes = [
        {"frame_index": p.keyframe.index, "pts_time": round(p.keyframe.pts_time, 3), "frame_type": p.keyframe.frame_type,
         "face_box": list(p.face_box), "fake_probability": round(float(prob), 6)}
        for p, prob in zip(pairs, probs)
    ]
    return verdict


def _table(v: VideoVerdict) -> str:
    if v.fake_probability is None:
        reasons = sorted({f["reason"] for f in v.failures}) or ["no frames"]
        return f"{v.video}: no usable face ({len(v.failures)} frame(s) or errors: {', '.join(reasons)})"
    lines = [f"{v.video}: P(fake) = {v.fake_probability:.3f} over {len(v.keyframes)} keyframe(s)"
             + (f", {len(v.failures)} skipped" if v.failures else "")]
    lines += [f"  frame {k['frame_index']:6d}  t={k['pts_time']:8.2f}s  {k['frame_type']}  P(fake)={k['fake_probability']:.3f}"
              for k in v.keyframes]
    return "\n".join(lines)


@click.command("detect")
@click.argument("videos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False), help="best.pt or last.pt of a run.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per video instead of a table.")
@click.option("--min-frames-per-video", type=click.IntRange(min=0), default=8, show_default=True,
              help="Add evenly spaced frames when a video has fewer I-frames than this.")
@click.option("--max-keyframes-per-video", type=click.IntRange(min=0), default=0, show_default=True, help="0 = all.")
@click.option("--face-scale", type=float, default=None, help="Default: what the training shards used.")
@click.option("--resize-filter", type=click.Choice([*sorted(RESIZE_FILTERS), NO_RESIZE]), default=None, help="Default: what the training shards used.")
@click.option("--device", default=None, help="torch device; default CUDA when present, else CPU.")
@one_line_errors
def detect(videos: tuple[str, ...], checkpoint: str, as_json: bool, min_frames_per_video: int,
           max_keyframes_per_video: int, face_scale: float | None, resize_filter: str | None, device: str | None) -> None:
    """Per video: the fake probability (mean over keyframes) and per-keyframe scores."""
    dev = resolve_device(device)
    model, config = load_detector(checkpoint, dev)
    options = crop_options(config, min_frames=min_frames_per_video, max_keyframes=max_keyframes_per_video or None,
                           face_scale=face_scale, resize_filter=resize_filter)
    detector = options.detector()
    for path in videos:
        verdict = detect_video(path, model, options, dev, detector)
        click.echo(json.dumps(verdict.to_json()) if as_json else _table(verdict))
