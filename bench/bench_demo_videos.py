"""How long the demo's first stage, making its videos, takes; and one digest of all their bytes.

    python bench/bench_demo_videos.py [--clips 8] [--seconds 2] [--gop 3] [--seed 0]

The defaults are `noisetrace demo`'s set (64 videos); `--clips 3 --seconds 1 --gop 12` is
the tests' `demo_set`. Prints wall seconds, CPU seconds (this process and its FFmpeg
children) and a sha256 over every video's path and bytes: two commits that print the same
digest made the same videos, so the demo's shards and figures cannot differ between them.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time

from noisetrace.demo import CLIP_SECONDS, CLIPS_PER_IDENTITY, GOP
from noisetrace.demo_media import build_demo_videos


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=CLIPS_PER_IDENTITY, help="clips per identity")
    parser.add_argument("--seconds", type=float, default=CLIP_SECONDS)
    parser.add_argument("--gop", type=int, default=GOP)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        videos = build_demo_videos(root, seed=args.seed, clips_per_identity=args.clips, seconds=args.seconds, gop=args.gop)
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        digest = hashlib.sha256()
        for v in sorted(videos, key=lambda v: v.path):
            digest.update(os.path.relpath(v.path, root).encode())
            with open(v.path, "rb") as f:
                digest.update(f.read())
    print(f"{len(videos)} videos in {wall:.1f} s wall, {cpu:.1f} CPU-s; sha256 {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
