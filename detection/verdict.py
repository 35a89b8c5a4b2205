"""A verdict on one video: its keyframes' P(fake) against a decision threshold, or why
there is none.

It crops pairs exactly as `build-shards` does, by calling the pipeline's pure functions
(keyframes, face, squares), so a video is judged on the same kind of input the model was
trained on. A video's P(fake) is the mean of its keyframes'; it is likely fake at or above
the threshold, which comes from the checkpoint (the equal-error point of its validation
split) unless the user gives one.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detection.reference import Comparison
from pipeline.pairs import ExtractOptions, Failure, FramePair, frame_pairs
from training.predict import predict_pairs

LIKELY_FAKE, LIKELY_REAL, NO_USABLE_FACE, UNREADABLE = "likely fake", "likely real", "no usable face", "unreadable"
DEFAULT_THRESHOLD = 0.5
FALLBACK_SOURCE = ("default 0.5: the checkpoint records no threshold (trained before detect stored one, "
                   "or its validation split held one class)")


@dataclass(frozen=True)
class Threshold:
    """The P(fake) at and above which a video is called likely fake, and where it came from."""

    value: float
    source: str


def decision_threshold(ckpt: dict[str, Any], override: float | None = None) -> Threshold:
    """`--threshold`, else the equal-error threshold the checkpoint's epoch recorded on its
    validation split (`training.metrics.equal_error`), else 0.5, saying why."""
    if override is not None:
        return Threshold(override, "--threshold")
    record = ckpt.get("metrics") or {}
    value = record.get("val_eer_threshold")
    if value is not None and math.isfinite(value):
        return Threshold(float(value), f"equal-error point of the validation frames at epoch {record.get('epoch')} "
                                       f"(false-positive rate = false-negative rate = {record['val_eer']:.3f})")
    return Threshold(DEFAULT_THRESHOLD, FALLBACK_SOURCE)


@dataclass
class VideoVerdict:
    """One video's result: the mean of its keyframes' P(fake), or why there is none."""

    video: str
    fake_probability: float | None
    keyframes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    threshold: Threshold = Threshold(DEFAULT_THRESHOLD, FALLBACK_SOURCE)
    reference: Comparison | None = None  # `detect --reference`: the video against its source's footage

    @property
    def verdict(self) -> str:
        """Likely fake / likely real against the threshold; without a pair, no usable face
        when frames were decoded (each failure names its frame), else unreadable."""
        if self.fake_probability is not None:
            return LIKELY_FAKE if self.fake_probability >= self.threshold.value else LIKELY_REAL
        return NO_USABLE_FACE if any("frame_index" in f for f in self.failures) else UNREADABLE

    @property
    def reason(self) -> str:
        """The failures in a line: frame reasons counted, the video's own with their detail."""
        per_frame = Counter(f["reason"] for f in self.failures if "frame_index" in f)
        parts = [f"{reason} in {n} frame(s)" for reason, n in sorted(per_frame.items())]
        parts += [f"{f['reason']}: {f['detail']}" if f["detail"] else f["reason"] for f in self.failures if "frame_index" not in f]
        return "; ".join(parts) or ("" if self.keyframes else "no frames")

    def comparison(self) -> str:
        """"0.734 >= 0.412": P(fake) against the threshold, with digits enough to tell them apart."""
        if self.fake_probability is None:
            return ""
        p, t = self.fake_probability, self.threshold.value
        digits = next((d for d in range(3, 7) if f"{p:.{d}f}" != f"{t:.{d}f}"), 6)
        return f"{p:.{digits}f} {'>=' if self.verdict == LIKELY_FAKE else '<'} {t:.{digits}f}"

    def to_json(self) -> dict[str, Any]:
        return {"video": self.video, "fake_probability": self.fake_probability, "verdict": self.verdict,
                "threshold": self.threshold.value, "threshold_source": self.threshold.source, "reason": self.reason,
                "keyframes": self.keyframes, "failures": self.failures, **(self.reference.to_json() if self.reference else {})}


def crop_options(config: dict[str, Any], **overrides: Any) -> ExtractOptions:
    """The crop options the checkpoint's shards were built with, where it recorded them."""
    built = dict(config.get("shard_options") or {})
    fields = {k: v for k, v in built.items() if k in ExtractOptions.__dataclass_fields__}
    fields["size"] = config["model"]["input_size"]
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return ExtractOptions(**fields)


def detect_video(path: str, model, options: ExtractOptions, device, detector=None, *, video: str | None = None,
                 threshold: Threshold | None = None, on_pair: Callable[[FramePair], None] | None = None) -> VideoVerdict:
    """Score every usable keyframe of one local video; `video` names it in the result
    (default `path`), `on_pair` sees each pair as it is cropped (the report keeps its evidence)."""
    detector = detector or options.detector()
    video = video or path
    pairs, failures = [], []
    for item in frame_pairs(path, video, detector, options):
        if isinstance(item, Failure):
            failures.append(item)
            continue
        pairs.append(item)
        if on_pair is not None:
            on_pair(item)
    verdict = VideoVerdict(video, None, failures=[f.to_json() for f in failures])
    if threshold is not None:
        verdict.threshold = threshold
    if not pairs:
        return verdict
    probs = predict_pairs(model, np.stack([p.face for p in pairs]), np.stack([p.background for p in pairs]), device,
                          extra_backgrounds=[p.extra_backgrounds for p in pairs])
    verdict.fake_probability = float(np.mean(probs))
    verdict.keyframes = [
        {"frame_index": p.keyframe.index, "pts_time": round(p.keyframe.pts_time, 3), "frame_type": p.keyframe.frame_type,
         "face_box": list(p.face_box), "background_box": list(p.background_box), "fake_probability": round(float(prob), 6)}
        for p, prob in zip(pairs, probs)
    ]
    return verdict
