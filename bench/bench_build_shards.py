"""build-shards frames/s beside the CPU floor, on generated or real clips.

    python bench/bench_build_shards.py [--clips 12] [--seconds 10] [--gop 30]
    python bench/bench_build_shards.py --input ../shared/data/labelled/MANIFEST.csv --min-frames 8

Without --input it encodes 720p talking-head-like clips (the astronaut photo, moving
sensor noise) with the given GOP; --input takes what build-shards takes (a folder, glob or
CSV manifest of real clips). It prints, from one run:
- floor: bare ffmpeg keyframe decode + dlib detection of the same frames in one process,
  divided by the number of cores build-shards uses. That process is not one core's work:
  ffmpeg decodes the next keyframe while dlib scans this one, so its CPU seconds (Python
  plus ffmpeg, from getrusage) are printed too, and the CPU floor (those seconds / cores)
  is what build-shards can at best reach on these cores;
- every-frame (--every-frame): the same extraction decoding every frame and keeping
  I-frames with `select='eq(pict_type,I)'` (what a naive extractor does), one core;
- build-shards: the whole Beam job (all cores), with and without its fixed start-up cost
  (measured on a one-video run);
- with --min-frames N: the floor and the build again with `--min-frames-per-video N`, and
  what one extra frame costs beside one I-frame.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time

import ffmpeg

from noisetrace.demo_media import package_file
from pipeline.faces import FaceDetector
from pipeline.inputs import list_videos
from pipeline.keyframes import _command, _decode, ffmpeg_exe, read_keyframes
from pipeline.run import run


def make_clips(root: str, n: int, seconds: float, gop: int) -> list[str]:
    photo = package_file("skimage", "data/astronaut.png")
    os.makedirs(os.path.join(root, "real"), exist_ok=True)
    paths = []
    for i in range(n):
        path = os.path.join(root, "real", f"clip{i:02d}.mp4")
        paths.append(path)
        if os.path.exists(path):
            continue
        stream = (
            ffmpeg.input(photo, loop=1, framerate=30, t=seconds)
            .filter("scale", 720, 720)
            .filter("pad", 1280, 720, 280 + 20 * i, 0)
            .filter("noise", alls=12, allf="t")
            .output(path, vcodec="libx264", preset="veryfast", g=gop, keyint_min=gop, sc_threshold=0, pix_fmt="yuv420p")
        )
        subprocess.run(stream.overwrite_output().global_args("-loglevel", "error").compile(cmd=ffmpeg_exe()), check=True)
    return paths


def _cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (the ffmpeg decoders)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def extract_seconds(paths: list[str], every_frame: bool, min_frames: int = 0) -> tuple[float, int, float]:
    """(wall seconds, frames, CPU seconds) of extracting and scanning the frames."""
    detector = FaceDetector()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    n = 0
    for path in paths:
        if every_frame:
            args = _command(path, {}, [("select", ("eq(pict_type,I)",)), ("showinfo", ())], None)
            frames = (kf for kf, _ in _decode(args, 600))
        else:
            frames = read_keyframes(path, min_frames=min_frames)
        for kf in frames:
            detector.detect(kf.image)
            n += 1
    return time.perf_counter() - start, n, _cpu_seconds() - cpu


def build_seconds(input_spec: str, output: str, cores: int, min_frames: int) -> tuple[float, int]:
    """(seconds, frames) of the whole Beam build, as `build-shards` runs it."""
    result = run(["--input", input_spec, "--output", output, "--min-frames-per-video", str(min_frames),
                  "--direct_num_workers", str(cores)])
    return result.seconds, result.info["keyframes"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", help="real clips: a folder, glob or CSV manifest, as for build-shards (default: encode 720p clips)")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--gop", type=int, default=30)
    ap.add_argument("--min-frames", type=int, default=0, help="also measure --min-frames-per-video N")
    ap.add_argument("--every-frame", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the decode-every-frame extractor (one full decode of every clip)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
    if args.input:
        root = args.input
        paths = [r.path for r in list_videos(root) if r.reason is None]
    else:
        root = os.path.join(tempfile.gettempdir(), f"noisetrace-bench-{args.clips}x{args.seconds:g}s-g{args.gop}")
        paths = make_clips(root, args.clips, args.seconds, args.gop)
    cores = args.workers
    floor_s, keyframes, floor_cpu = extract_seconds(paths, every_frame=False)
    with tempfile.TemporaryDirectory() as out:
        one = os.path.join(out, "one", "real")
        os.makedirs(one)
        os.symlink(os.path.abspath(paths[0]), os.path.join(one, "one.mp4"))
        t0 = time.perf_counter()
        build_seconds(os.path.dirname(one), os.path.join(out, "one-out"), cores, 0)
        startup = (time.perf_counter() - t0) - floor_s / len(paths)
        build_s, built = build_seconds(root, os.path.join(out, "all"), cores, 0)
        if args.min_frames:
            mf_floor_s, mf_frames, mf_cpu = extract_seconds(paths, every_frame=False, min_frames=args.min_frames)
            mf_build_s, mf_built = build_seconds(root, os.path.join(out, "mf"), cores, args.min_frames)
    print(f"videos: {len(paths)}  keyframes: {keyframes} (build-shards: {built})  cores used by build-shards: {cores}")
    print(f"floor (1 process)     : {floor_s:7.2f} s  {keyframes / floor_s:7.1f} keyframes/s")
    print(f"floor / {cores} cores       : {floor_s / cores:7.2f} s  {keyframes * cores / floor_s:7.1f} keyframes/s")
    print(f"floor CPU             : {floor_cpu:7.2f} s  ({floor_cpu / floor_s:.2f} cores busy); CPU floor / {cores} cores: "
          f"{floor_cpu / cores:.2f} s")
    if args.every_frame:
        every_s, every_n, _ = extract_seconds(paths, every_frame=True)
        assert every_n == keyframes, (every_n, keyframes)
        print(f"every-frame (1 proc.) : {every_s:7.2f} s  {keyframes / every_s:7.1f} keyframes/s  "
              f"-> keyframe floor is {every_s / floor_s:.1f}x faster")
    print(f"build-shards          : {build_s:7.2f} s  {built / build_s:7.1f} keyframes/s  "
          f"= {build_s / (floor_s / cores):.2f}x the floor/{cores}, {build_s / (floor_cpu / cores):.2f}x the CPU floor/{cores}")
    steady = max(build_s - startup, 1e-9)
    print(f"  less start-up {startup:4.1f} s : {steady:7.2f} s  = {steady / (floor_s / cores):.2f}x the floor/{cores}, "
          f"{steady / (floor_cpu / cores):.2f}x the CPU floor/{cores}")
    if args.min_frames:
        extra_cpu, extra_n = mf_cpu - floor_cpu, mf_frames - keyframes
        print(f"--min-frames {args.min_frames}: {mf_frames} frames; floor CPU {mf_cpu:.2f} s, CPU floor / {cores} cores: {mf_cpu / cores:.2f} s")
        print(f"  build-shards        : {mf_build_s:7.2f} s  {mf_built / mf_build_s:7.1f} frames/s  "
              f"= {mf_build_s / (mf_cpu / cores):.2f}x the CPU floor/{cores}  (I-frames only: {built / build_s:.1f} frames/s)")
        if extra_n:
            print(f"  CPU per frame       : extra {extra_cpu / extra_n * 1000:.0f} ms  vs  I-frame {floor_cpu / keyframes * 1000:.0f} ms "
                  f"(decode + detect, floor process)")


if __name__ == "__main__":
    main()
