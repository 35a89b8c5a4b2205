"""`detect --reference`: authentic footage of the suspects' source, cropped and scored
exactly as the suspects are, and each suspect compared with it (`detection.reference`).

The reference videos go through `judge` like any suspect (so an unreadable one is a
reason, not a crash), with a tap that keeps each pair's parameter-free evidence; the
same tap sits in front of the report's collector while the suspects are judged.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from detection.detect_batch import Item, judge, list_inputs
from detection.evidence import evidence_rows, native_evidence
from detection.reference import Comparison, Reference, compare
from detection.verdict import Threshold, VideoVerdict
from pipeline.pairs import ExtractOptions, FramePair


class EvidenceTap:
    """Sees each pair as it is cropped: keeps its evidence and hands the pair on to the
    report's collector, if there is one."""

    def __init__(self, inner=None) -> None:
        self.inner = inner
        self.rows: list[np.ndarray] = []

    def add(self, pair: FramePair) -> None:
        self.rows.append(native_evidence(pair))
        if self.inner is not None:
            self.inner.add(pair)

    def first_frame(self, local: str, options: ExtractOptions) -> None:
        if self.inner is not None:
            self.inner.first_frame(local, options)

    @property
    def evidence(self) -> np.ndarray:
        return evidence_rows(self.rows)


def reference_items(specs: tuple[str, ...]) -> list[Item]:
    """Each `--reference`: a video file, or a folder, glob or CSV listed as `--input` is;
    one that lists nothing is an error that names it, before any suspect is judged."""
    items: list[Item] = []
    for spec in specs:
        if os.path.isfile(spec) and not spec.lower().endswith(".csv"):
            items.append(Item(spec, spec))
            continue
        try:
            items += list_inputs((), spec)
        except ValueError as e:
            raise ValueError(f"--reference {spec}: {e}") from e
    return items


@dataclass
class ReferenceFootage:
    """The reference as judged: its keyframes' evidence and model scores, and each of its
    videos' verdict (the ones without a pair say why)."""

    reference: Reference
    scores: np.ndarray
    verdicts: list[VideoVerdict]

    def summary(self) -> str:
        """One line: what the reference rests on, and why it cannot judge where it cannot."""
        skipped = Counter(v.verdict for v in self.verdicts if not v.keyframes)
        line = (f"reference: {self.reference.size} keyframe(s) from {self.reference.videos} of {len(self.verdicts)} video(s)"
                + "".join(f", {n} {kind}" for kind, n in sorted(skipped.items())))
        reason = self.reference.usable()
        return f"{line}; unusable: {reason}; no reference verdicts" if reason else line

    def compare(self, verdict: VideoVerdict, tap: EvidenceTap) -> Comparison:
        suspect_scores = np.array([k["fake_probability"] for k in verdict.keyframes])
        evidence = tap.evidence if verdict.keyframes else evidence_rows([])
        return compare(self.reference, evidence, self.scores, suspect_scores)


def judge_reference(specs: tuple[str, ...], model, options: ExtractOptions, device, detector,
                    threshold: Threshold) -> ReferenceFootage:
    """Crop and score every reference video as a suspect would be."""
    rows, scores, verdicts = [], [], []
    for item in reference_items(specs):
        tap = EvidenceTap()
        verdict = judge(item, model, options, device, detector, threshold, tap)
        verdicts.append(verdict)
        if verdict.keyframes:  # a video that failed half way scored none of the pairs it cropped
            rows += tap.rows
        scores += [k["fake_probability"] for k in verdict.keyframes]
    used = sum(1 for v in verdicts if v.keyframes)
    return ReferenceFootage(Reference(evidence_rows(rows), used), np.array(scores), verdicts)
