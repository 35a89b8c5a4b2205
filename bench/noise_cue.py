"""Is there a noise mismatch in these shards at all? A hand-made cue, nothing learnt.

    python bench/noise_cue.py --shards dev-shards
    python bench/noise_cue.py --native ../shared/data/labelled/MANIFEST.csv --min-frames-per-video 8

`--native` measures the same cue on the same squares before they are resized: it decodes
the videos and places the squares exactly as build-shards does (`pipeline.pairs`), so the
two runs differ only in the resize to the shards' 64 px.

The cue is the log ratio of face to background high-pass energy (a 4-neighbour Laplacian),
averaged over a video's pairs: a swapped face is re-rendered and blended, so it should
carry less of the camera's and codec's fine noise than its own background. It is scored
two ways:
- across videos, as a detector would have to use it (one threshold for every video):
  video AUC of minus the cue, overall and per dataset;
- within groups, where real and fake share identity, camera, compression and (in FF++)
  the very background: the within-group video AUC that `evaluate` and `crossval` give
  models, and the share of fakes whose cue lies below their own group's real video(s), per
  manipulation method. 0.5 is no signal.
A cue that wins within groups but not across them exists, yet is smaller than how much
the same quantity differs from one source to the next: that is what a detector of single
videos has to overcome on small real sets. Both AUCs come with a 95% interval that
resamples whole groups (`training.metrics.group_bootstrap_ci`).
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from detection.evidence import log_ratio
from pipeline.inputs import list_videos
from pipeline.pairs import ExtractOptions, FramePair, frame_pairs
from shards.reader import iter_pairs
from shards.source import open_shards
from training.metrics import group_bootstrap_ci, roc_auc, video_auc, within_group_auc


def _per_video(ratios: dict[str, list[float]], meta: dict[str, dict]) -> dict[str, dict]:
    return {v: {"cue": float(np.mean(r)), **{k: meta[v].get(k) for k in ("label", "group", "dataset", "method")}}
            for v, r in ratios.items()}


def video_cues(spec: str) -> dict[str, dict]:
    """{video: {cue, label, group, dataset, method}} over every split of the shards."""
    source = open_shards(spec)
    ratios: dict[str, list[float]] = defaultdict(list)
    meta: dict[str, dict] = {}
    for split in source.info["splits"]:
        for pair in iter_pairs(source.urls(split)):
            video = pair["meta"]["video"]
            ratios[video].append(log_ratio(pair["face"], pair["background"]))
            meta[video] = pair["meta"]
    return _per_video(ratios, meta)


def _native_square(pair: FramePair, box: tuple[int, int, int]) -> np.ndarray:
    x, y, side = box
    return pair.keyframe.image[y : y + side, x : x + side]


def native_video_cues(manifest: str, min_frames: int) -> dict[str, dict]:
    """`video_cues` of the squares build-shards would crop from the manifest's videos
    (default crop options), measured at the videos' own resolution."""
    options = ExtractOptions(min_frames=min_frames)
    detector = options.detector()
    ratios: dict[str, list[float]] = defaultdict(list)
    meta: dict[str, dict] = {}
    for record in list_videos(manifest):
        if record.reason:
            continue
        for pair in frame_pairs(record.path, record.video, detector, options):
            if isinstance(pair, FramePair):
                ratios[record.video].append(
                    log_ratio(_native_square(pair, pair.face_box), _native_square(pair, pair.background_box)))
                meta[record.video] = record.meta()
    return _per_video(ratios, meta)


def _interval(statistic, groups: list[str], labels: np.ndarray, scores: np.ndarray) -> str:
    lo, hi = group_bootstrap_ci(statistic, groups, labels, scores)
    return f"95% interval {lo:.3f}-{hi:.3f} over {len(set(groups))} groups"


def across_videos(videos: dict[str, dict]) -> dict[str, tuple[float, int, int]]:
    """{'all' or dataset: (video AUC of -cue, reals, fakes)}, where both classes are present."""
    out = {}
    for name in ["all", *sorted({v["dataset"] for v in videos.values()})]:
        chosen = [v for v in videos.values() if name == "all" or v["dataset"] == name]
        labels = np.array([v["label"] == "fake" for v in chosen], dtype=np.int64)
        if 0 < labels.sum() < len(labels):
            out[name] = (roc_auc(labels, -np.array([v["cue"] for v in chosen])), int((labels == 0).sum()), int(labels.sum()))
    return out


def within_groups(videos: dict[str, dict]) -> dict[str, tuple[float, int]]:
    """{'all' or method: (share of fakes below their group's mean real cue, fakes)}."""
    reals: dict[str, list[float]] = defaultdict(list)
    for v in videos.values():
        if v["label"] == "real":
            reals[v["group"]].append(v["cue"])
    wins: dict[str, list[bool]] = defaultdict(list)
    for v in videos.values():
        if v["label"] == "fake" and v["group"] in reals:
            below = v["cue"] < np.mean(reals[v["group"]])
            wins["all"].append(below)
            wins[v["method"] or v["dataset"]].append(below)
    return {k: (float(np.mean(w)), len(w)) for k, w in sorted(wins.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--shards", help="shard root, URL or brace pattern (all splits are read)")
    source.add_argument("--native", metavar="MANIFEST", help="build-shards input; measure the squares unresized")
    ap.add_argument("--min-frames-per-video", type=int, default=8, help="with --native, as build-shards'")
    args = ap.parse_args()
    videos = video_cues(args.shards) if args.shards else native_video_cues(args.native, args.min_frames_per_video)
    chosen = list(videos.values())
    groups = [v["group"] for v in chosen]
    labels = np.array([v["label"] == "fake" for v in chosen], dtype=np.int64)
    scores = -np.array([v["cue"] for v in chosen])
    print(f"{len(videos)} videos with pairs")
    print("\nacross videos (one threshold for all): video AUC of the cue")
    for name, (auc, reals, fakes) in across_videos(videos).items():
        print(f"  {name:18s} {auc:.3f}  ({reals} real, {fakes} fake)")
    print(f"  all videos: {_interval(video_auc, groups, labels, scores)}")
    auc, pairs = within_group_auc(groups, labels, scores)
    print(f"\nwithin-group video AUC (as evaluate and crossval report it): {auc:.3f} over {pairs} real/fake pairs, "
          + _interval(lambda g, y, x: within_group_auc(g, y, x)[0], groups, labels, scores))
    print("\nwithin groups: share of fakes whose cue is below their own group's real video(s)")
    for name, (share, fakes) in within_groups(videos).items():
        print(f"  {name:18s} {share:.2f}  ({fakes} fakes)")


if __name__ == "__main__":
    main()
