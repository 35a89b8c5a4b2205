"""build-shards keyframes/s beside the floor and beside decoding every frame.

    python bench/bench_build_shards.py [--videos DIR] [--clips 12] [--seconds 10] [--gop 30]

Without --videos it encodes 720p talking-head-like clips (the astronaut photo, moving
sensor noise) with the given GOP. It prints, from one run:
- floor: bare ffmpeg keyframe decode + dlib detection of the same frames in one process,
  divided by the number of cores build-shards uses. That process is not one core's work:
  ffmpeg decodes the next keyframe while dlib scans this one, so its CPU seconds (Python
  plus ffmpeg, from getrusage) are printed too, and the CPU floor (those seconds / cores)
  is what build-shards can at best reach on these cores;
- every-frame: the same extraction decoding every frame and keeping I-frames with
  `select='eq(pict_type,I)'` (what a naive extractor does), one core, divided likewise;
- build-shards: the whole Beam job (all cores), with and without its fixed start-up cost
  (measured on a one-video run).
"""
from __future__ import annotations

import argparse
import glob
import os
import resource
import subprocess
import tempfile
import time

import ffmpeg

from noisetrace.demo_media import package_file
from pipeline.faces import FaceDetector
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


def extract_seconds(paths: list[str], every_frame: bool) -> tuple[float, int, float]:
    """(wall seconds, keyframes, CPU seconds) of extracting and scanning the keyframes."""
    detector = FaceDetector()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    n = 0
    for path in paths:
        if every_frame:
            args = _command(path, {}, [("select", ("eq(pict_type,I)",)), ("showinfo", ())], None)
            frames = (kf for kf, _ in _decode(args, 600))
        else:
            frames = read_keyframes(path)
        for kf in frames:
            detector.detect(kf.image)
            n += 1
    return time.perf_counter() - start, n, _cpu_seconds() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", help="folder with real/ and/or fake/ videos (default: encode 720p clips)")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--gop", type=int, default=30)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
    root = args.videos or os.path.join(tempfile.gettempdir(), f"noisetrace-bench-{args.clips}x{args.seconds:g}s-g{args.gop}")
    paths = sorted(glob.glob(os.path.join(root, "**", "*.mp4"), recursive=True)) if args.videos else make_clips(
        root, args.clips, args.seconds, args.gop)
    cores = args.workers
    floor_s, keyframes, floor_cpu = extract_seconds(paths, every_frame=False)
    every_s, every_n, _ = extract_seconds(paths, every_frame=True)
    assert every_n == keyframes, (every_n, keyframes)
    with tempfile.TemporaryDirectory() as out:
        beam_args = ["--direct_num_workers", str(cores), "--direct_running_mode", "multi_processing"]
        one = tempfile.mkdtemp()
        os.makedirs(os.path.join(one, "real"))
        os.symlink(paths[0], os.path.join(one, "real", "one.mp4"))
        t0 = time.perf_counter()
        first = run(["--input", one, "--output", os.path.join(out, "one"), *beam_args])
        startup = (time.perf_counter() - t0) - floor_s / len(paths)
        result = run(["--input", root, "--output", os.path.join(out, "all"), *beam_args])
    assert first.info["keyframes"] >= 1
    build_s = result.seconds
    print(f"videos: {len(paths)}  keyframes: {keyframes}  cores used by build-shards: {cores}")
    print(f"floor (1 process)     : {floor_s:7.2f} s  {keyframes / floor_s:7.1f} keyframes/s")
    print(f"floor / {cores} cores       : {floor_s / cores:7.2f} s  {keyframes * cores / floor_s:7.1f} keyframes/s")
    print(f"floor CPU             : {floor_cpu:7.2f} s  ({floor_cpu / floor_s:.2f} cores busy); CPU floor / {cores} cores: "
          f"{floor_cpu / cores:.2f} s")
    print(f"every-frame (1 proc.) : {every_s:7.2f} s  {keyframes / every_s:7.1f} keyframes/s  "
          f"-> keyframe floor is {every_s / floor_s:.1f}x faster")
    print(f"build-shards          : {build_s:7.2f} s  {keyframes / build_s:7.1f} keyframes/s  "
          f"= {build_s / (floor_s / cores):.2f}x the floor/{cores}")
    steady = max(build_s - startup, 1e-9)
    print(f"  less start-up {startup:4.1f} s : {steady:7.2f} s  = {steady / (floor_s / cores):.2f}x the floor/{cores}, "
          f"{steady / (floor_cpu / cores):.2f}x the CPU floor/{cores}, {every_s / cores / steady:.1f}x faster than every-frame/{cores}")


if __name__ == "__main__":
    main()
