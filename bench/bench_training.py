"""Throughput of the detector and its loader (a script, not a test).

    python bench/bench_training.py [--presets tiny small paper] [--seconds 5] [--loader-pairs 4000] [--skip-cpu]
    python bench/bench_training.py --shards DIR [--presets small] [--epochs 2] [--train-workers 0]

Prints training and inference pairs/s per preset on the CPU, and on the GPU when one is
present (fp32, bf16 autocast, bf16 + channels_last, bf16 + channels_last + torch.compile),
and the loader's decoded pairs/s with 0 workers (one core, in process) and with N workers.

With --shards, instead: train-from-shards' default recipe on those shards for --epochs at
the first of --presets, streamed (`--in-memory-mb 0`, PNGs decoded every epoch) and then
held in memory (the default), one after the other in this process: the training pairs/s
of each, their ratio, and each run's wall and CPU time (decoding, validation and checkpoints
included; CPU time, this process's, holds steadier than wall time on a shared machine).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from shards.info import ShardRecord, build_info, dumps_info
from shards.schema import PairSample, make_key
from shards.writer import shard_name, write_shard
from training.data import train_loader
from training.device import autocast
from training.model import SiameseNoiseNet, to_unit_float
from training.presets import PRESETS
from training.recipe import CLI_RECIPE


def _timed(step: Callable[[], None], seconds: float, sync: Callable[[], None]) -> float:
    """Steps per second after two warm-up steps, over at least `seconds` (and 3 steps)."""
    for _ in range(2):
        step()
    sync()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        step()
        n += 1
    sync()
    return n / (time.perf_counter() - start)


def bench_model(preset: str, device: torch.device, batch: int, seconds: float, variant: str) -> tuple[float, float]:
    """(training pairs/s, inference pairs/s) for one preset and variant."""
    torch.manual_seed(0)
    model = SiameseNoiseNet(PRESETS[preset]).to(device)
    fmt = torch.channels_last if "channels_last" in variant else torch.contiguous_format
    model = model.to(memory_format=fmt)
    run = torch.compile(model) if "compile" in variant else model
    size = PRESETS[preset].input_size
    faces = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    backgrounds = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    amp = autocast(device) if "bf16" in variant else torch.autocast(device.type, enabled=False)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def inputs() -> tuple[torch.Tensor, torch.Tensor]:
        return (to_unit_float(faces).contiguous(memory_format=fmt), to_unit_float(backgrounds).contiguous(memory_format=fmt))

    def train_step() -> None:
        with amp:
            loss = torch.nn.functional.cross_entropy(run(*inputs()).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer_step() -> None:
        with amp:
            run(*inputs())

    model.train()
    train = _timed(train_step, seconds, sync) * batch
    model.eval()
    infer = _timed(infer_step, seconds, sync) * batch
    return train, infer


def _natural_square(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth content plus sensor-like noise: PNG sizes close to real face crops."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = rng.uniform(60, 190, 3) + x[..., None] * rng.uniform(-60, 60, 3) + y[..., None] * rng.uniform(-60, 60, 3)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def write_bench_shards(root: str, pairs: int, shards: int, size: int = 64) -> str:
    rng = np.random.default_rng(0)
    records = []
    os.makedirs(os.path.join(root, "train"), exist_ok=True)
    for s in range(shards):
        samples = []
        for i in range(s, pairs, shards):
            label = "fake" if i % 2 else "real"
            meta = {"video": f"v{i // 8}.mp4", "dataset": "bench", "label": label, "split": "train", "group": "g",
                    "frame_index": i, "pts": i, "frame_size": [640, 480], "face_box": [0, 0, size],
                    "background_box": [0, 0, size], "score": 1.0}
            samples.append(PairSample(make_key(meta["video"], i), _natural_square(rng, size), _natural_square(rng, size), meta))
        name = f"train/{shard_name(s)}"
        write_shard(os.path.join(root, name), samples)
        records.append(ShardRecord("train", name, len(samples), {"real": sum(1 for m in samples if m.meta["label"] == "real"),
                                                                  "fake": sum(1 for m in samples if m.meta["label"] == "fake")}))
    with open(os.path.join(root, "_info.json"), "w", encoding="utf-8") as f:
        f.write(dumps_info(build_info(records)))
    return root


def bench_loader(root: str, workers: int, batch: int, shuffle_buffer: int = 1000) -> float:
    """Steady-state decoded, shuffled, flipped, collated pairs/s delivered to the training loop.

    Timing starts at the first batch: worker start-up and the shuffle buffer's first fill
    happen once per epoch, negligible on real epochs but not on this small one.
    """
    loader, _ = train_loader(root, batch_size=batch, epoch=0, workers=workers, shuffle_buffer=shuffle_buffer)
    batches = iter(loader)
    next(batches)
    start, n = time.perf_counter(), 0
    for b in batches:
        n += len(b["cls"])
    return n / (time.perf_counter() - start)


def bench_held(shards: str, preset: str, epochs: int, workers: int) -> None:
    """Streamed against held in memory: the same recipe, seed and batches (training.data), so
    the difference is the decode and tar reads the held run does once instead of every epoch."""
    from training.train import TrainConfig, run_training  # here: the model benchmarks need no shards

    recipe = {**CLI_RECIPE, "epochs": epochs}
    speed: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # an uncounted epoch first: lazy imports and first-call set-up would otherwise land on the first mode
        run_training(TrainConfig(shards=shards, output=os.path.join(tmp, "warm-up"), preset=preset, workers=workers,
                                 device="cpu", **{**recipe, "epochs": 1}))
        for mode, budget in (("streamed", 0), ("held", TrainConfig.in_memory_mb)):
            start, cpu_start = time.perf_counter(), time.process_time()
            result = run_training(TrainConfig(shards=shards, output=os.path.join(tmp, mode), preset=preset, workers=workers,
                                              device="cpu", in_memory_mb=budget, **recipe))
            wall, cpu[mode] = time.perf_counter() - start, time.process_time() - cpu_start
            speed[mode] = float(np.mean([r["pairs_per_s"] for r in result.history]))
            print(f"{mode:8s} {preset} {epochs} epochs, {workers} workers: {speed[mode]:7.1f} training pairs/s, "
                  f"{wall:6.1f} s wall, {cpu[mode]:6.1f} s CPU ({cpu[mode] / epochs:.1f} s/epoch)", flush=True)
    print(f"held / streamed: {speed['held'] / speed['streamed']:.2f}x training pairs/s, "
          f"{cpu['streamed'] / cpu['held']:.2f}x less CPU time", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"], choices=sorted(PRESETS))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cpu-batch", type=int, default=16)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--loader-pairs", type=int, default=4000)
    parser.add_argument("--loader-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-cpu", action="store_true", help="Only GPU model figures (the paper preset takes minutes on a CPU).")
    parser.add_argument("--shards", help="Real shards: time training streamed against held in memory instead (see above).")
    parser.add_argument("--epochs", type=int, default=2, help="With --shards: epochs of each run.")
    parser.add_argument("--train-workers", type=int, default=0, help="With --shards: DataLoader workers of each run.")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CUDA: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    if args.shards:
        bench_held(args.shards, args.presets[0], args.epochs, args.train_workers)
        return
    for preset in [] if args.skip_cpu else args.presets:
        train, infer = bench_model(preset, torch.device("cpu"), args.cpu_batch, args.seconds, "fp32")
        print(f"cpu  {preset:6s} fp32                     batch {args.cpu_batch:4d}: train {train:9.1f} pairs/s, inference {infer:9.1f} pairs/s", flush=True)
    if torch.cuda.is_available():
        for preset in args.presets:
            for variant in ("fp32", "bf16", "bf16+channels_last", "bf16+channels_last+compile"):
                try:
                    train, infer = bench_model(preset, torch.device("cuda"), args.gpu_batch, args.seconds, variant)
                    print(f"cuda {preset:6s} {variant:26s} batch {args.gpu_batch:4d}: train {train:9.1f} pairs/s, inference {infer:9.1f} pairs/s", flush=True)
                except Exception as exc:  # a failed torch.compile must not hide the other figures
                    print(f"cuda {preset:6s} {variant:26s}: failed: {type(exc).__name__}: {exc}".splitlines()[0], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        shards = max(2, args.loader_workers)
        root = write_bench_shards(tmp, args.loader_pairs, shards)
        single = bench_loader(root, 0, 64)
        print(f"loader 0 workers (1 core): {single:8.0f} decoded pairs/s", flush=True)
        many = bench_loader(root, args.loader_workers, 64)
        print(f"loader {args.loader_workers} workers: {many:8.0f} decoded pairs/s ({many / args.loader_workers:.0f} per worker)", flush=True)


if __name__ == "__main__":
    main()
