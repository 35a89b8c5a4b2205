"""What `build-shards --backgrounds K` costs per keyframe: the geometry of the extra squares.

    python bench/bench_backgrounds.py [--k 4] [--repeat 50]

For frames from 320x240 to 4K, each with a small and a large face, it prints the size of
the candidate grid and the milliseconds `extra_background_squares` takes (best of --repeat calls).
The crops themselves cost what the main background's crop costs, once per square.
"""
from __future__ import annotations

import argparse
import time

from pipeline.geometry import background_square, extra_background_squares

FRAMES = ((320, 240), (1280, 720), (1920, 1080), (3840, 2160))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    print(f"{'frame':>10s} {'face':>5s} {'grid':>10s} {'picks':>5s} {'ms':>7s}")
    for w, h in FRAMES:
        for side in (max(h // 40, 40), h // 3):  # a small face (the HOG floor is ~40 px) and a close-up
            face = (w // 2 - side // 2, h // 3, side)
            background = background_square(face, w, h)
            if background is None:
                continue
            step = max(side // 2, 1)
            grid = (len(range(0, w - side + 1, step)) + 1) * (len(range(0, h - side + 1, step)) + 1)
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                picks = extra_background_squares(face, background, w, h, args.k)
                best = min(best, time.perf_counter() - start)
            print(f"{w:>5d}x{h:<4d} {side:5d} {grid:10d} {len(picks):5d} {best * 1e3:7.3f}")


if __name__ == "__main__":
    main()
