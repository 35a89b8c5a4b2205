"""Does authentic footage of a clip's own source tell its fakes apart? `detect --reference`'s
scoring, measured on every group that holds both real and fake videos.

    python bench/reference_eval.py --shards dev8
    python bench/reference_eval.py --manifest my-groups.csv --min-frames-per-video 24

Two kinds of reference, reported apart:
- time split: the first half (by time) of a group's real video(s) is the reference; their
  second halves (real) and the group's fakes are the suspects;
- other footage of the same source: a group's source is its name up to its last ':'
  (`dfd:13` -> `dfd`, `talk:vretalk:1` -> `talk:vretalk`, `DeepGuard:pair_v1` ->
  `DeepGuard`), and a suspect's reference is the real videos of the other groups of its
  source, so the video a fake was made from is never in it: the honest case. Name your
  groups `source:clip` to use it on your own footage.

Every candidate distance of `detection.reference` is scored (AUC over the suspects, pooled
with a 95% interval resampling whole groups, and per dataset), beside the same suspects
scored without a reference (minus their own mean evidence, one threshold for all). A
suspect whose reference has fewer than `--min-reference-keyframes` keyframes is left out
and counted, as `detect --reference` gives it no verdict.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from detection.evidence import EVIDENCE, PATCH, native_evidence, pair_evidence
from detection.reference import DISTANCES, MIN_REFERENCE_KEYFRAMES, Reference
from pipeline.pairs import NO_RESIZE
from training.metrics import group_bootstrap_ci, roc_auc, video_auc

NO_REFERENCE = {f"no reference: {name}": EVIDENCE.index(name) for name in ("face", "ratio")}


@dataclass
class Video:
    """One video's keyframe evidence in time order, and its labels."""

    label: str
    group: str
    dataset: str
    times: list[float]
    rows: list[np.ndarray]

    @property
    def evidence(self) -> np.ndarray:
        return np.stack(self.rows)[np.argsort(self.times, kind="stable")]


def _shard_pairs(spec: str) -> Iterator[tuple[dict, np.ndarray]]:
    """The evidence of the shards' squares as stored: what detect measures only for shards
    of native patches (`--resize-filter none`, 64 px), which the note says."""
    from shards.reader import iter_pairs
    from shards.source import open_shards

    source = open_shards(spec)
    options = source.info.get("options", {})
    if (options.get("resize_filter"), source.info.get("size")) != (NO_RESIZE, PATCH):
        print(f"note: {spec} holds {options.get('resize_filter')}-resized {source.info.get('size')} px squares; "
              f"detect --reference measures native {PATCH} px patches (build-shards --resize-filter none)")
    for split in source.info["splits"]:
        for pair in iter_pairs(source.urls(split)):
            yield pair["meta"], pair_evidence(pair["face"], pair["background"])


def _manifest_pairs(manifest: str, min_frames: int) -> Iterator[tuple[dict, np.ndarray]]:
    """The pairs build-shards would make of the manifest's videos (default options), as
    `detect --reference` measures them: native patches (`detection.evidence.native_evidence`)."""
    from pipeline.inputs import list_videos
    from pipeline.pairs import ExtractOptions, FramePair, frame_pairs

    options = ExtractOptions(min_frames=min_frames)
    detector = options.detector()
    for record in list_videos(manifest):
        if record.reason:
            continue
        for pair in frame_pairs(record.path, record.video, detector, options):
            if isinstance(pair, FramePair):
                yield {**record.meta(), "pts_time": pair.keyframe.pts_time}, native_evidence(pair)


def load_videos(pairs: Iterator[tuple[dict, np.ndarray]]) -> dict[str, Video]:
    videos: dict[str, Video] = {}
    for meta, evidence in pairs:
        v = videos.setdefault(meta["video"], Video(meta["label"], meta["group"], meta["dataset"], [], []))
        v.times.append(float(meta["pts_time"]))
        v.rows.append(evidence)
    return videos


def prior_spread(videos: dict[str, Video]) -> np.ndarray:
    """The pooled within-video standard deviation of each evidence over the real videos:
    what `detection.reference.PRIOR_SPREAD` holds for the labelled set."""
    reals = [v.evidence for v in videos.values() if v.label == "real" and len(v.rows) > 1]
    squares = sum(((e - e.mean(axis=0)) ** 2).sum(axis=0) for e in reals)
    return np.sqrt(squares / sum(len(e) - 1 for e in reals))


@dataclass
class Suspect:
    """One suspect scored against one reference."""

    fake: bool
    group: str
    dataset: str
    reference: Reference
    evidence: np.ndarray


def time_split(videos: dict[str, Video]) -> list[Suspect]:
    """Per group with both classes: the first halves of its reals are the reference."""
    by_group: dict[str, list[Video]] = defaultdict(list)
    for v in videos.values():
        by_group[v.group].append(v)
    out = []
    for group, members in sorted(by_group.items()):
        reals = [v.evidence for v in members if v.label == "real" and len(v.rows) >= 2]
        fakes = [v for v in members if v.label == "fake"]
        if not reals or not fakes:
            continue
        reference = Reference(np.concatenate([e[: len(e) // 2] for e in reals]), len(reals))
        out += [Suspect(False, group, members[0].dataset, reference, e[len(e) // 2 :]) for e in reals]
        out += [Suspect(True, group, v.dataset, reference, v.evidence) for v in fakes]
    return out


def source_of(group: str) -> str:
    return group.rsplit(":", 1)[0]


def other_footage(videos: dict[str, Video]) -> list[Suspect]:
    """Every video of a source that holds fakes, against the reals of its source's other groups."""
    by_source: dict[str, list[Video]] = defaultdict(list)
    for v in videos.values():
        by_source[source_of(v.group)].append(v)
    out = []
    for members in by_source.values():
        if not any(v.label == "fake" for v in members):
            continue
        for v in members:
            others = [u.evidence for u in members if u.label == "real" and u.group != v.group]
            if others:
                out.append(Suspect(v.label == "fake", v.group, v.dataset, Reference(np.concatenate(others), len(others)),
                                   v.evidence))
    return out


def scores(suspects: list[Suspect]) -> dict[str, np.ndarray]:
    """Per candidate distance and no-reference baseline, the suspects' scores (larger = more fake)."""
    out = {name: np.array([d(s.reference, s.evidence) for s in suspects]) for name, d in DISTANCES.items()}
    out |= {name: np.array([-s.evidence[:, c].mean() for s in suspects]) for name, c in NO_REFERENCE.items()}
    return out


def table(title: str, suspects: list[Suspect], dropped: int, min_keyframes: int) -> str:
    if not suspects:
        return f"### {title}: no suspect with a reference ({dropped} left out: reference under {min_keyframes} keyframes)"
    labels = np.array([s.fake for s in suspects], dtype=np.int64)
    groups = [s.group for s in suspects]
    datasets = sorted({s.dataset for s in suspects})
    head = (f"### {title}: {len(suspects)} suspects ({int(labels.sum())} fake, {int((labels == 0).sum())} real) "
            f"in {len(set(groups))} groups; {dropped} left out (reference under {min_keyframes} keyframes)\n\n"
            "| distance | pooled AUC (95% interval) | " + " | ".join(datasets) + " |\n|---|---|" + "---|" * len(datasets))
    lines = [head]
    for name, score in scores(suspects).items():
        lo, hi = group_bootstrap_ci(video_auc, groups, labels, score)
        per = []
        for d in datasets:
            pick = np.array([s.dataset == d for s in suspects])
            per.append(f"{roc_auc(labels[pick], score[pick]):.3f} ({int(labels[pick].sum())}/{int((labels[pick] == 0).sum())})")
        lines.append(f"| {name} | {roc_auc(labels, score):.3f} ({lo:.2f}-{hi:.2f}) | " + " | ".join(per) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--shards", help="shard root, URL or brace pattern (all splits are read)")
    source.add_argument("--manifest", help="a labelled build-shards manifest: decode and crop its videos")
    ap.add_argument("--min-frames-per-video", type=int, default=8, help="with --manifest, as build-shards'")
    ap.add_argument("--min-reference-keyframes", type=int, default=MIN_REFERENCE_KEYFRAMES,
                    help="leave out suspects whose reference is smaller (detect gives them no verdict)")
    args = ap.parse_args()
    videos = load_videos(_shard_pairs(args.shards) if args.shards else
                         _manifest_pairs(args.manifest, args.min_frames_per_video))
    print(f"{len(videos)} videos with pairs; pooled within-video spread of the real videos' evidence: "
          + ", ".join(f"{n} {s:.3f}" for n, s in zip(EVIDENCE, prior_spread(videos))))
    print("per-dataset AUC cells: AUC (fakes/reals)\n")
    for title, suspects in (("time split", time_split(videos)), ("other footage of the same source", other_footage(videos))):
        kept = [s for s in suspects if s.reference.size >= args.min_reference_keyframes]
        print(table(title, kept, len(suspects) - len(kept), args.min_reference_keyframes) + "\n")


if __name__ == "__main__":
    main()
