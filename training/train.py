"""The training loop: one process per device, DDP under torchrun, epoch-boundary resume.

Determinism: the model is initialised from `seed`; every data-order and augmentation
draw is seeded by (seed, epoch, rank, worker) (see `training.data`), and the optimizer
state is checkpointed each epoch, so on a CPU a run resumed from `last.pt` ends with the
same weights and metrics as an uninterrupted one. Resume is epoch-granular: a run killed
mid-epoch (even SIGKILL) redoes that epoch from `last.pt`. Checkpoints are written to a
temp file and renamed, and `metrics.jsonl` is cut back to the checkpoint's epochs on
resume, so a kill while either is being written loses nothing.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from shards.checked import require_pairs
from shards.lock import output_lock
from shards.progress import ProgressLines
from shards.info import info_summary
from shards.schema import CLS_REAL
from shards.source import ShardSource, open_shards
from shards.space import find_out_of_space, write_file
from training.checkpoint import load_checkpoint, save_checkpoint, saved_epochs
from training.data import Sample, eval_loader, group_class_counts, held_nbytes, hold_decoded, train_loader
from training.detectors import architecture, build_detector
from training.device import autocast, place_model, resolve_device
from training.metrics import accuracy, equal_error, finite_or_none, roc_auc
from training.extractors import load_extractor
from training.presets import DEFAULT_MODEL_KIND, EXTRACTORS, REFERENCES
from training.predict import pair_inputs, predict_loader
from training.recipe import BLEND_MASKS
from training.recompress import recompress_pairs
from training.residual_pairs import ResidualPairs
from training.residuals import CACHE_OFF, ResidualCache, cache_for, frozen_extractor
from training.selfblend import patch_regions, self_blend
from training.weights import dncnn_file_size

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.jsonl"
BEST_NAME = "best.pt"
LAST_NAME = "last.pt"


@dataclass(frozen=True)
class TrainConfig:
    """The options of `train-from-shards`; saved as RUN/config.json and in checkpoints."""

    shards: str
    output: str
    preset: str = "paper"  # sizes the noise model only
    model: str = DEFAULT_MODEL_KIND  # training.presets.MODEL_KINDS
    epochs: int = 10
    batch_size: int = 64
    lr: float = 5e-4
    lr_schedule: str = "cosine"  # LR_SCHEDULES
    weight_decay: float = 0.0  # AdamW's decoupled decay of the conv and linear weights
    init_denoiser: str | None = None
    extractor: str = "dncnn"  # training.presets.EXTRACTORS; noiseprintpp and ffdnet are always frozen
    reference: str = "background"  # training.presets.REFERENCES: what the face's noise is compared with
    # where a frozen extractor's residuals are kept (training.residuals); None: the default
    # folder, "off": computed every time
    residual_cache: str | None = None
    blend_variants: int = 8  # with the cache: self-blended fakes kept per real face (training.selfblend.bank_blend)
    # keep the extractor at --init-denoiser's weights and BatchNorm statistics, so only the
    # similarity head learns: it can then read only how face and background noise correlate,
    # with far less capacity to learn which source a clip came from
    freeze_denoiser: bool = False
    resume: bool = False
    self_blend: float = 0.0
    self_blend_mask: str = "face-square"  # training.selfblend.BLEND_MASKS: where a self-blend's ellipse is drawn
    recompress: float = 0.0  # share of pairs JPEG re-encoded (face and background together) each batch
    fake_source: str = "shards"  # FAKE_SOURCES
    seed: int = 0
    workers: int = 2
    device: str | None = None
    balance: bool = True
    balance_by: str = "class"  # BALANCE_BY: even out real and fake over the split, or within each group
    input_size: int = 64
    noise_stats: bool = False  # the head also reads face and background noise levels (training.model.noise_statistics)
    val_split: str = "val"
    shuffle_buffer: int = 2000
    on_bad_shard: str = "stop"  # shards.checked.ON_BAD_SHARD: what a corrupt or truncated shard does
    compile: bool = False  # torch.compile the training model: faster steps after a minute of compiling
    # decoded train and val pairs are held in memory, decoded once, when they take at most
    # this many MB per process; 0 streams them from the shards every epoch. Same batches either way.
    in_memory_mb: int = 2048


LR_SCHEDULES = ("cosine", "constant")
BALANCE_BY = ("class", "group")
# Where training fakes come from: the shards' own (plus --self-blend of the reals), or only
# reals self-blended, so no fake-only source, generator or identity can be learnt as the cue.
FAKE_SOURCES = ("shards", "self-blend")


def epoch_lr(config: TrainConfig, epoch: int) -> float:
    """The learning rate of a (0-based) epoch: cosine decay from `lr` towards 0 over the run,
    or constant. A function of the epoch alone, so a resumed run follows the same curve
    (when it keeps the same --epochs) without a scheduler state to restore."""
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / config.epochs))


def param_groups(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: with weight decay, the conv and linear weights decay
    and biases and BatchNorm scales do not (as timm does: shrinking a normalisation's scale
    or a bias to 0 is no simpler model). Without, one group, so the checkpoints of runs
    before `--weight-decay` existed still resume."""
    if not weight_decay:
        return [{"params": params}]
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str | None) -> tuple[_Dist, torch.device]:
    """Join torchrun's process group when WORLD_SIZE > 1: NCCL on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ctx = _Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", ctx.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ctx, device


def _all_mean(value: float, ctx: _Dist, device: torch.device) -> float:
    if ctx.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)  # NCCL reduces only CUDA tensors
    dist.all_reduce(t)
    return float(t.item()) / ctx.world


def _gather(obj: Any, ctx: _Dist) -> list[Any]:
    if ctx.world == 1:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def _apply_self_blend(faces: torch.Tensor, labels: torch.Tensor, fraction: float, gen: torch.Generator,
                      regions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn round(fraction x batch) real pairs into fakes: face <- self_blend(face), label 1;
    `regions` (B, 3): where each face lies in its face square (training.selfblend.patch_regions).

    The background is untouched, so the blended face's noise no longer matches it: the
    same cue a face swap leaves, without needing a fake video.
    """
    real = (labels == 0).nonzero().flatten()
    n = min(len(real), round(fraction * len(labels)))
    if n == 0:
        return faces, labels
    pick = real[torch.randperm(len(real), generator=gen)[:n]]
    faces, labels = faces.clone(), labels.clone()
    faces[pick] = self_blend(faces[pick], gen, None if regions is None else regions[pick])
    labels[pick] = 1
    return faces, labels


def _image_batch(batch: dict[str, Any], config: TrainConfig, gen: torch.Generator, model: nn.Module,
                 device: torch.device) -> tuple[list[torch.Tensor], dict[str, Any], torch.Tensor]:
    """(model inputs, their keyword arguments, labels) of one streamed batch of images:
    self-blended and re-encoded as the options say, on `device`."""
    faces, labels, backgrounds = batch["face"], batch["cls"], batch["background"]
    if config.self_blend > 0:
        # a flip (training.data.horizontal_flip) mirrors a window's place in its face square; the
        # ellipse's place is drawn symmetric about the middle, so the blends' spread is unchanged
        regions = patch_regions(batch["meta"], config.self_blend_mask)
        faces, labels = _apply_self_blend(faces, labels, config.self_blend, gen, regions)
    if config.recompress > 0:
        faces, backgrounds = recompress_pairs(faces, backgrounds, config.recompress, gen)
    inputs, kwargs = pair_inputs(model, faces, backgrounds, device, batch["extra_background"], batch["extra_mask"])
    return inputs, kwargs, labels


def _val_shards(config: TrainConfig, source: ShardSource, ctx: _Dist) -> dict[str, int]:
    """{url: samples} of the validation shards this rank scores: round-robin over ranks
    (a rank may get none: webdataset #68)."""
    lengths = source.lengths(config.val_split)
    return {url: lengths[url] for url in list(lengths)[ctx.rank :: ctx.world]}


def _check_input_size(config: TrainConfig, side: int) -> None:
    """The model is built for `--input-size`: squares of another size are a usage error."""
    if side != config.input_size:
        raise ValueError(f"{config.shards}: shards hold {side}px squares but --input-size is "
                         f"{config.input_size}; use --input-size {side}")


def _hold(config: TrainConfig, split: str, lengths: dict[str, int], budget_bytes: int, ctx: _Dist,
          keep: Callable[[Sample], bool] | None = None) -> dict[str, list[Sample]] | None:
    """`training.data.hold_decoded` of these shards, and a line on rank 0 saying whether the
    split is held or streamed, so a slow run on a set that did not fit says why."""
    held = hold_decoded(lengths, budget_bytes, keep, config.on_bad_shard)
    first = next((pairs[0] for pairs in (held or {}).values() if pairs), None)
    if first is not None:  # before the line below: a run that cannot start says only why
        _check_input_size(config, first["face"].shape[1])
    if ctx.main and lengths:
        if held is not None:
            what = f"{sum(map(len, held.values()))} pairs held in memory ({held_nbytes(held) / 2**20:.1f} MB), decoded once"
        else:
            what = "streamed from the shards every epoch" + (f" (would pass --in-memory-mb {config.in_memory_mb})" if budget_bytes > 0 else "")
        print(f"{split}: {what}", file=sys.stderr, flush=True)
    return held


def _validate(model: nn.Module, config: TrainConfig, shards: dict[str, int], device: torch.device, ctx: _Dist,
              cache: ResidualCache | None = None, held: dict[str, list[Sample]] | None = None) -> tuple[float, float, tuple[float, float]]:
    """(accuracy, AUC, (equal-error threshold, rate)) over the whole validation split; every rank returns the same numbers.

    Each rank scores its `shards` (`_val_shards`), from memory when `held`, and predictions
    are gathered, so no collective runs inside the per-rank loop.
    """
    urls = list(shards)
    local = {"prob": np.zeros(0, np.float32), "cls": np.zeros(0, np.int64)}
    if urls:
        out = predict_loader(model, eval_loader(urls, batch_size=config.batch_size * 2, workers=config.workers,
                                                  lengths=shards, on_bad_shard=config.on_bad_shard, held=held), device, cache)
        local = {"prob": out["prob"], "cls": out["cls"]}
    parts = _gather(local, ctx)
    probs = np.concatenate([p["prob"] for p in parts])
    labels = np.concatenate([p["cls"] for p in parts])
    require_pairs(labels.size, config.shards, config.val_split)  # after the gather: every rank raises
    return accuracy(labels, probs), roc_auc(labels, probs), equal_error(labels, probs)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _resolve(config: TrainConfig) -> tuple[TrainConfig, dict[str, Any] | None]:
    """With `resume`, the run's saved options win except where the run and its shards
    now live, `epochs`, `device`, `compile`, `in_memory_mb` and `on_bad_shard` (so a run
    stopped by a bad shard can go on skipping it); returns (config to use, checkpoint or None).

    Everything else (preset, batch size, seed, workers...) fixes the batches each epoch
    sees, so changing it would silently break "a resumed run ends where an uninterrupted
    one does"."""
    last = os.path.join(config.output, LAST_NAME)
    if not config.resume:
        return config, None
    if not os.path.isfile(last):
        raise FileNotFoundError(f"--resume: {last} does not exist; give --output the run to continue, or leave out --resume")
    ckpt = load_checkpoint(last)
    saved = {f.name: ckpt["config"]["train"][f.name] for f in fields(TrainConfig) if f.name in ckpt["config"]["train"]}
    resumed = replace(TrainConfig(**saved), output=config.output, shards=config.shards, epochs=config.epochs,
                      device=config.device, on_bad_shard=config.on_bad_shard, compile=config.compile,
                      in_memory_mb=config.in_memory_mb, resume=True)
    return resumed, ckpt


def _check_options(config: TrainConfig) -> None:
    if config.epochs < 1 or config.batch_size < 1 or config.workers < 0 or config.lr <= 0:
        raise ValueError("epochs and batch size must be >= 1, workers >= 0, lr > 0")
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr schedule must be one of {LR_SCHEDULES}, got {config.lr_schedule!r}")
    if not 0.0 <= config.self_blend <= 1.0:
        raise ValueError(f"self-blend fraction must be in [0, 1], got {config.self_blend}")
    if config.self_blend_mask not in BLEND_MASKS:
        raise ValueError(f"self-blend mask must be one of {BLEND_MASKS}, got {config.self_blend_mask!r}")
    if not 0.0 <= config.recompress <= 1.0:
        raise ValueError(f"--recompress is a share of pairs, in [0, 1]; got {config.recompress}")
    if config.balance_by not in BALANCE_BY:
        raise ValueError(f"balance by must be one of {BALANCE_BY}, got {config.balance_by!r}")
    if config.fake_source not in FAKE_SOURCES:
        raise ValueError(f"fake source must be one of {FAKE_SOURCES}, got {config.fake_source!r}")
    if config.fake_source == "self-blend" and not 0.0 < config.self_blend < 1.0:
        raise ValueError(f"--fake-source self-blend trains on reals alone: --self-blend must be between 0 and 1 "
                         f"(the share turned fake, e.g. 0.5), got {config.self_blend}")
    if config.init_denoiser and config.model != DEFAULT_MODEL_KIND:
        raise ValueError(f"--init-denoiser initialises the noise model's DnCNN; model {config.model!r} has none")
    if config.extractor not in EXTRACTORS or config.reference not in REFERENCES:
        raise ValueError(f"extractor must be one of {EXTRACTORS} and reference one of {REFERENCES}, "
                         f"got {config.extractor!r} and {config.reference!r}")
    if config.extractor != "dncnn" and config.model != DEFAULT_MODEL_KIND:
        raise ValueError(f"--extractor {config.extractor} is the noise model's; model {config.model!r} has none")
    if config.in_memory_mb < 0:
        raise ValueError(f"--in-memory-mb must be 0 (always stream) or more, got {config.in_memory_mb}")
    if config.blend_variants < 1:
        raise ValueError(f"--blend-variants must be at least 1, got {config.blend_variants}")
    if config.freeze_denoiser and config.extractor == "dncnn" and not config.init_denoiser:
        raise ValueError("--freeze-denoiser keeps the noise extractor at the weights --init-denoiser gives it; "
                         "give --init-denoiser (e.g. a pretrain-denoiser output), or leave out --freeze-denoiser")


@dataclass(frozen=True)
class TrainResult:
    """Where the run lives and what each epoch measured (identical on every rank)."""

    output: str
    history: list[dict[str, float]]


def run_training(config: TrainConfig) -> TrainResult:
    """Train (or resume) the detector into `config.output` (best.pt, last.pt, metrics.jsonl),
    holding the run folder (`shards.lock`; on rank 0, the one that writes) for the whole run.

    A full disk stops the run with `OutOfSpace` saying which checkpoints it kept."""
    main = int(os.environ.get("RANK", "0")) == 0
    with output_lock(config.output, "train-from-shards") if main else contextlib.nullcontext():
        try:
            return _train(config)
        except OSError as exc:
            full = find_out_of_space(exc, where=config.output)
            if full is None:
                raise
            full.kept = saved_epochs(config.output, (LAST_NAME, BEST_NAME))
            if os.path.isfile(os.path.join(config.output, LAST_NAME)):
                full.rerun = "add --resume to the same command: it goes on from last.pt"
            raise full from exc


def _train(config: TrainConfig) -> TrainResult:
    _check_options(config)
    config, ckpt = _resolve(config)
    ctx, device = _init_distributed(config.device)
    source = open_shards(config.shards)
    for split in ("train", config.val_split):
        source.urls(split)  # fail now, not after an epoch
    model_arch = architecture(config.model, config.preset, config.input_size, config.noise_stats, config.extractor, config.reference)
    if ckpt is not None:
        model_arch = ckpt["config"]["model"]  # the shapes the run was started with
    elif config.init_denoiser and config.extractor == "dncnn" and config.model == DEFAULT_MODEL_KIND:
        # pretrained DnCNN weights keep their own size; --preset sizes the head (CDnCNN-B under a small head)
        model_arch["depth"], model_arch["features"] = dncnn_file_size(config.init_denoiser)
    run_config = {
        "train": asdict(config),
        "model_kind": config.model,
        "model": model_arch,
        # How the shards were cropped (face scale, resize filter, detector...): `detect`
        # must crop new videos the same way the model was trained.
        "shard_options": source.info.get("options", {}),
        "shard_summary": info_summary(source.info),  # what the model was trained on, for detect's model card
        "world_size": ctx.world,
        "device": str(device),
        "torch": str(torch.__version__),  # TorchVersion is not weights_only-loadable
    }

    torch.manual_seed(config.seed)
    model = place_model(build_detector(config.model, model_arch), device)
    if ckpt is None and (config.init_denoiser or config.extractor != "dncnn"):
        run_config["init_denoiser_format"] = load_extractor(model.extractor, config.extractor, config.init_denoiser)
    frozen = frozen_extractor(asdict(config))
    if frozen:
        model.extractor.requires_grad_(False)
    cache = cache_for(model, frozen, config.residual_cache if config.recompress == 0 else CACHE_OFF, device)
    # frozen weights stay out of the optimizer: Adam has no state for them, before and after --resume
    optimizer = torch.optim.AdamW(param_groups([p for p in model.parameters() if p.requires_grad], config.weight_decay),
                                  lr=config.lr, weight_decay=0.0)
    start_epoch, best = 0, (-math.inf, -math.inf)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, best = int(ckpt["epoch"]), (float(ckpt["best_auc"]), float(ckpt.get("best_accuracy", -math.inf)))
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
    train_model: nn.Module = model
    if ctx.world > 1:
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:  # after DDP, as PyTorch's DDP + compile notes advise
        train_model = torch.compile(train_model)

    if ctx.main:
        os.makedirs(config.output, exist_ok=True)
        write_file(os.path.join(config.output, CONFIG_NAME), json.dumps(run_config, indent=2, sort_keys=True).encode("utf-8"))
        _truncate_metrics(os.path.join(config.output, METRICS_NAME), start_epoch)

    loss_fn = nn.CrossEntropyLoss()
    history: list[dict[str, float]] = []
    # counted once: every epoch balances within groups by the same counts
    group_counts = (group_class_counts(source.urls("train"), config.on_bad_shard)
                    if config.balance and config.balance_by == "group" else None)
    reals_only = config.fake_source == "self-blend"
    # a frozen extractor's residuals: read once, every epoch dealt from memory (training.residual_pairs)
    in_memory = (ResidualPairs.load(source, "train", cache, config.on_bad_shard, config.self_blend_mask)
                 if cache is not None else None)
    # otherwise the decoded pairs, when they fit: read once, every epoch dealt by the streaming stages
    budget = config.in_memory_mb * 2**20
    held_train = (_hold(config, "train", source.lengths("train"), budget, ctx, (lambda s: s["cls"] == CLS_REAL) if reals_only else None)
                  if in_memory is None else None)
    val_shards = _val_shards(config, source, ctx)
    held_val = _hold(config, config.val_split, val_shards, budget - held_nbytes(held_train or {}), ctx)
    for epoch in range(start_epoch, config.epochs):
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(config, epoch)
        blend_gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch * 1009 + ctx.rank)
        if in_memory is None:
            loader, batches = train_loader(
                source, "train", batch_size=config.batch_size, epoch=epoch, seed=config.seed,
                workers=config.workers, balance=config.balance, group_counts=group_counts, reals_only=reals_only,
                shuffle_buffer=config.shuffle_buffer, on_bad_shard=config.on_bad_shard, held=held_train,
            )
            steps = (_image_batch(batch, config, blend_gen, model, device) for batch in loader)
        else:
            indices, batches = in_memory.epoch_indices(
                seed=config.seed, epoch=epoch, rank=ctx.rank, world=ctx.world, batch_size=config.batch_size,
                reals_only=reals_only, balance=config.balance, group_counts=group_counts)
            if batches == 0:
                raise ValueError(f"{config.shards}: split 'train' gives fewer pairs an epoch than one batch of "
                                 f"{config.batch_size} x {ctx.world} rank(s); use a smaller --batch-size")
            steps = ((inputs, {"residuals": True}, labels) for inputs, labels in in_memory.batches(
                indices, config.batch_size, blend_gen, cache, config.self_blend, config.blend_variants, model.reads_extra_backgrounds))
        train_model.train()
        if frozen:
            model.extractor.eval()  # BatchNorm keeps the given running statistics instead of this batch's
        total, started = torch.zeros((), device=device), time.perf_counter()
        # a bar redrawn with carriage returns on a terminal; plain lines in a log file
        lines = ProgressLines()
        bar = tqdm(steps, total=batches, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not (ctx.main and lines.redraw), leave=False)
        for step, (inputs, kwargs, labels) in enumerate(bar):
            _check_input_size(config, inputs[0].shape[-1])
            labels = labels.to(device, non_blocking=True)
            with autocast(device):
                loss = loss_fn(train_model(*inputs, **kwargs).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()  # summed on the device: no host sync per step
            if ctx.main and step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if ctx.main and lines.due():
                print(f"epoch {epoch + 1}/{config.epochs}: batch {step + 1}/{batches}, loss {loss.item():.4f}, "
                      f"{(step + 1) * config.batch_size / (time.perf_counter() - started):.0f} pairs/s", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - started
        pairs_per_s = _all_mean(batches * config.batch_size / elapsed, ctx, device) * ctx.world
        epoch_loss = _all_mean(float(total) / batches, ctx, device)
        val_accuracy, val_auc, (val_threshold, val_eer) = _validate(model, config, val_shards, device, ctx, cache, held_val)
        record = {"epoch": epoch + 1, "loss": epoch_loss, "val_accuracy": val_accuracy, "val_auc": val_auc, "pairs_per_s": pairs_per_s,
                  "val_eer_threshold": val_threshold, "val_eer": val_eer}  # detect's decision threshold
        history.append(record)
        score = selection_score(val_auc, val_accuracy)
        # Self-blended training learns a task of its own making, and the shards' few real
        # fakes in val are no guide to which epoch generalises (leave-one-dataset-out on the
        # labelled clips: best-val epochs 0.469, final epochs 0.598 fold video AUC), so best.pt
        # follows the last epoch there, as SBI evaluates its latest checkpoint.
        improved, best = score > best or config.fake_source == "self-blend", max(best, score)
        if ctx.main:
            state = {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                "best_auc": best[0], "best_accuracy": best[1], "config": run_config,
                "metrics": record, "rng": _rng_state(device),
            }
            with open(os.path.join(config.output, METRICS_NAME), "a", encoding="utf-8") as f:
                f.write(json.dumps({k: finite_or_none(v) for k, v in record.items()}) + "\n")
            if improved:
                save_checkpoint(os.path.join(config.output, BEST_NAME), state)
            save_checkpoint(os.path.join(config.output, LAST_NAME), state)
            tqdm.write(json.dumps(record))
        if ctx.world > 1:
            dist.barrier()
    if ctx.world > 1:
        dist.destroy_process_group()
    return TrainResult(config.output, history)


def selection_score(val_auc: float, val_accuracy: float) -> tuple[float, float]:
    """What `best.pt` maximises: validation AUC, then accuracy. On clean data AUC often
    reaches 1.0 epochs before the 0.5 threshold separates the classes (a run on the demo's
    shards kept a 0.87-accuracy epoch as best while later ones scored 1.0 on both), and
    the detector is used at that threshold. NaN (one class in val) ranks last."""
    return (-1.0 if math.isnan(val_auc) else val_auc, -1.0 if math.isnan(val_accuracy) else val_accuracy)


def _truncate_metrics(path: str, epochs_done: int) -> None:
    """Keep only the epochs the checkpoint holds, so a crash between the metrics line and
    the checkpoint never leaves a duplicate epoch after resuming.

    A kill mid-write can leave a last line without its newline: only whole lines count.
    The rewrite goes through a temp file and a rename, so a kill during it loses nothing.
    """
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        kept = [line for line in f if line.endswith("\n") and line.strip() and json.loads(line)["epoch"] <= epochs_done]
    write_file(path, "".join(kept).encode("utf-8"))
