"""build-shards peak memory against input size: it should stay flat as videos are added
(streaming, no whole-split buffering) and bounded per worker on 4K frames.

    python bench/bench_memory.py [--counts 4,16,48] [--seconds 4] [--workers 2] [--no-4k]
                                 [--running-mode multi_threading|multi_processing]

Encodes 720p face clips (`bench_build_shards.make_clips`) and one 4K clip of the same
face, runs the `build-shards` console script on the first N clips for each N, and prints
for each run:
- tree peak: the largest sum of RSS over build-shards and all its descendants (Beam's
  worker processes, ffmpeg), sampled from /proc every 20 ms;
- driver, worker, ffmpeg: the sampled peak RSS of the build-shards process, of the
  largest Beam worker process (none with the default `multi_threading`, whose workers are
  threads of the driver) and of the largest ffmpeg process;
- process peak: the largest peak RSS of any one process of the tree, exact, from
  getrusage(RUSAGE_CHILDREN) of a wrapper process that runs build-shards as its child;
- processes: how many processes the tree ran in all, and which were alive at the tree peak.
Linux only (/proc).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import ffmpeg

from bench_build_shards import make_clips
from noisetrace.demo_media import package_file
from pipeline.keyframes import ffmpeg_exe

# Runs its argv as a child and prints the largest peak RSS (KiB) of any waited-for descendant.
_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
            "print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def make_4k_clip(root: str, seconds: float, gop: int) -> str:
    """One 3840x2160 clip: the astronaut photo scaled to 2160 px high, moving sensor noise."""
    path = os.path.join(root, "real", "clip4k.mp4")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        stream = (
            ffmpeg.input(package_file("skimage", "data/astronaut.png"), loop=1, framerate=30, t=seconds)
            .filter("scale", 2160, 2160).filter("pad", 3840, 2160, 840, 0).filter("noise", alls=12, allf="t")
            .output(path, vcodec="libx264", preset="veryfast", g=gop, keyint_min=gop, sc_threshold=0, pix_fmt="yuv420p")
        )
        subprocess.run(stream.overwrite_output().global_args("-loglevel", "error").compile(cmd=ffmpeg_exe()), check=True)
    return path


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return pids


def _role(pid: int, driver: int | None) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read()
    except OSError:
        return "gone"
    return "ffmpeg" if "ffmpeg" in comm else "driver" if pid == driver else "worker"


class TreeSampler(threading.Thread):
    """Samples a process tree's RSS until stopped: peak of the sum and peak per role."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.peak_kib, self.processes, self.peak_roles = 0, set(), ""
        self.role_peak_kib = {"driver": 0, "worker": 0, "ffmpeg": 0, "gone": 0}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _tree(self.pid)[1:]  # less the wrapper
            self.processes.update(pids)
            rss = {p: _rss_kib(p) for p in pids}
            if sum(rss.values()) > self.peak_kib:  # what the tree held at its peak, e.g. "driver 1, worker 4"
                self.peak_kib = sum(rss.values())
                roles = [_role(p, pids[0]) for p in pids]
                self.peak_roles = ", ".join(f"{r} {roles.count(r)}" for r in sorted(set(roles)))
            for p, kib in rss.items():
                role = _role(p, pids[0])
                self.role_peak_kib[role] = max(self.role_peak_kib[role], kib)
            time.sleep(self.interval_s)


def measure(videos: list[str], workers: int, mode: str, work: str) -> dict[str, float]:
    """Run build-shards on `videos` (linked into a fresh folder); its peaks and output size."""
    src = tempfile.mkdtemp(dir=work)
    os.makedirs(os.path.join(src, "real"))
    for v in videos:
        os.symlink(v, os.path.join(src, "real", os.path.basename(v)))
    out = tempfile.mkdtemp(dir=work)
    cmd = [sys.executable, "-c", _WRAPPER, "build-shards", "--input", src, "--output", out,
           "--direct_num_workers", str(workers), "--direct_running_mode", mode]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"build-shards failed ({proc.returncode}):\n{stderr[-3000:]}")
    keyframes = re.search(r"keyframes: (\d+)", stdout)
    pairs = sum(int(n) for n in re.findall(r"(\d+) pairs in", stdout))
    return {
        "videos": len(videos),
        "keyframes": int(keyframes.group(1)) if keyframes else 0,
        "pairs": pairs,
        "seconds": time.perf_counter() - started,
        "tree_peak_mib": sampler.peak_kib / 1024,
        **{f"{role}_mib": kib / 1024 for role, kib in sampler.role_peak_kib.items()},
        "process_peak_mib": int(re.search(r"maxrss_kib (\d+)", stderr).group(1)) / 1024,
        "processes": len(sampler.processes),
        "peak_roles": sampler.peak_roles,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="4,16,48", help="comma-separated numbers of 720p videos")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--gop", type=int, default=30)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--no-4k", action="store_true", help="skip the 4K run")
    ap.add_argument("--running-mode", default="multi_threading", choices=("multi_threading", "multi_processing"),
                    help="the local runner's workers: threads of the driver (build-shards' default) or processes")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    root = os.path.join(tempfile.gettempdir(), f"noisetrace-bench-{max(counts)}x{args.seconds:g}s-g{args.gop}")
    clips = make_clips(root, max(counts), args.seconds, args.gop)
    runs = [(f"{n} x 720p", clips[:n]) for n in counts]
    if not args.no_4k:
        root4k = os.path.join(tempfile.gettempdir(), f"noisetrace-bench-4k-{args.seconds:g}s-g{args.gop}")
        runs.append(("1 x 4K", [make_4k_clip(root4k, args.seconds, args.gop)]))
    print(f"build-shards, DirectRunner {args.running_mode}, {args.workers} workers; RSS in MiB")
    print(f"{'input':>12} {'keyframes':>9} {'pairs':>6} {'seconds':>8} {'tree peak':>10} {'driver':>7} {'worker':>7} "
          f"{'ffmpeg':>7} {'process peak':>13} {'processes':>9}  processes alive at the tree peak")
    with tempfile.TemporaryDirectory() as work:
        for name, videos in runs:
            r = measure(videos, args.workers, args.running_mode, work)
            print(f"{name:>12} {r['keyframes']:9d} {r['pairs']:6d} {r['seconds']:8.1f} {r['tree_peak_mib']:10.0f} "
                  f"{r['driver_mib']:7.0f} {r['worker_mib']:7.0f} {r['ffmpeg_mib']:7.0f} "
                  f"{r['process_peak_mib']:13.0f} {r['processes']:9d}  {r['peak_roles']}", flush=True)


if __name__ == "__main__":
    main()
