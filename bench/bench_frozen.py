"""What freezing and caching the extractor buys (a script, not a test).

    python bench/bench_frozen.py [--preset paper] [--extractors dncnn ffdnet noiseprintpp] [--seconds 10] [--batch 32]

Training pairs/s of one preset's head on 64 px pairs, per extractor, three ways, measured in
one run so their ratios hold on a noisy machine:
- trained: the whole model learns (the paper's recipe; dncnn only);
- frozen: the extractor runs forward without gradients every step, the head learns;
- cached: the frozen extractor's residuals come from a warm training.residuals cache, as in
  every epoch after the first (the square digests and the disk reads are counted).
Random weights: speed does not depend on them.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable

import torch

from training.device import place_images
from training.model import SiameseNoiseNet
from training.presets import preset
from training.residuals import ResidualCache


def _rate(step: Callable[[], None], seconds: float, batch: int) -> float:
    """Pairs/s after one warm-up step, over at least `seconds` and 3 steps."""
    step()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - start)


def bench(preset_name: str, extractor: str, batch: int, seconds: float, cache_dir: str) -> dict[str, float]:
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    model = SiameseNoiseNet(preset(preset_name, extractor=extractor))
    size = model.config.input_size
    faces = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    backgrounds = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    labels = torch.randint(0, 2, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step_with(params: list[torch.nn.Parameter], forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
        optimizer = torch.optim.AdamW(params, lr=1e-4)

        def step() -> None:
            loss = loss_fn(forward(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    out = {}
    if extractor == "dncnn":
        model.train()
        out["trained"] = _rate(step_with(list(model.parameters()), lambda: model(place_images(faces, cpu), place_images(backgrounds, cpu))),
                               seconds, batch)
    model.extractor.requires_grad_(False)
    model.extractor.eval()
    head = [p for p in model.parameters() if p.requires_grad]
    out["frozen"] = _rate(step_with(head, lambda: model(place_images(faces, cpu), place_images(backgrounds, cpu))), seconds, batch)
    cache = ResidualCache(model.extractor, cache_dir, cpu)
    cache(faces), cache(backgrounds)  # warm: every later epoch reads these back
    out["cached"] = _rate(step_with(head, lambda: model(cache(faces), cache(backgrounds), residuals=True)), seconds, batch)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--extractors", nargs="+", default=["dncnn", "ffdnet", "noiseprintpp"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    print(f"preset {args.preset} head, batch {args.batch}, {torch.get_num_threads()} threads; training pairs/s")
    print("| extractor | trained | frozen | cached | cached / frozen | cached / trained |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache_dir:
        for extractor in args.extractors:
            r = bench(args.preset, extractor, args.batch, args.seconds, cache_dir)
            trained = f"{r['trained']:.1f}" if "trained" in r else "-"
            speedup = f"{r['cached'] / r['trained']:.1f}x" if "trained" in r else "-"
            print(f"| {extractor} | {trained} | {r['frozen']:.1f} | {r['cached']:.1f} | "
                  f"{r['cached'] / r['frozen']:.1f}x | {speedup} |", flush=True)


if __name__ == "__main__":
    main()
