"""Streaming pair loaders over WebDataset shards, as composable stages; uint8 out.

Training stream, per rank and DataLoader worker:
  shard URLs reshuffled every pass, seeded by (seed, epoch, pass)   -> same order on all ranks
  -> wds.split_by_node -> wds.split_by_worker                      -> disjoint shards
  -> shards.checked.checked_pairs: whole shards, counted, decoded  -> uint8 HxWx3, no float
  -> [keep_at_random: balance classes] -> shuffle buffer -> [horizontal flip] -> batches of uint8 tensors
The shard list repeats forever and the loader stops after a fixed number of batches, the
same on every rank, so DDP ranks never wait on one that ran dry (webdataset #188, #65).
Every random stage draws from a generator seeded by (seed, epoch, rank, worker): a run
is reproducible and resuming at an epoch boundary replays exactly the same batches.
Conversion to float and [0, 1] scaling happens on the device (`training.model.to_unit_float`).
A corrupt or truncated shard stops the loader with its name, or is skipped with a warning
(`on_bad_shard`); skipping keeps the epoch length, since the shard list repeats.

A split whose decoded pairs fit in memory (`hold_decoded`) is read and decoded once; the
same stages then deal from those pairs (`held_pairs` in place of `checked_pairs`), so every
epoch gives exactly the batches streaming gives, without a PNG decode or tar read.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import count
from typing import Any

import numpy as np
import torch
import webdataset as wds

from shards.checked import BadShard, bad_shard, checked_pairs, read_whole
from shards.reader import sample_meta, shard_members
from shards.source import ShardSource, open_shards
from shards.schema import CLS_FAKE, CLS_REAL, LABEL_TO_CLS

Sample = dict[str, Any]
Stage = Callable[[Iterable[Sample]], Iterator[Sample]]


def world_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run alone."""
    rank, world, _, _ = wds.utils.pytorch_worker_info()
    return rank, world


def _rng(seed: int, epoch: int, salt: int) -> np.random.Generator:
    """A generator unique to this (seed, epoch, rank, worker, stage)."""
    rank, _, worker, _ = wds.utils.pytorch_worker_info()
    return np.random.default_rng([seed, epoch, rank, worker, salt])


def shuffled_shards(urls: list[str], seed: int, epoch: int) -> Stage:
    """Endless passes over the shard list, each in an order seeded by (seed, epoch, pass);
    identical on every rank and worker, so node/worker splitting stays disjoint."""

    def stage(_: Iterable[Sample] | None = None) -> Iterator[Sample]:
        for n in count():
            for i in np.random.default_rng([seed, epoch, n]).permutation(len(urls)):
                yield {"url": urls[i]}

    return stage


def only_class(cls: int) -> Stage:
    """Keep the samples of one class: a reals-only stream, for training on self-blended fakes."""

    def stage(src: Iterable[Sample]) -> Iterator[Sample]:
        return (sample for sample in src if sample["cls"] == cls)

    return stage


def keep_at_random(keep_fraction: Callable[[Sample], float], seed: int, epoch: int) -> Stage:
    """Keep each sample with the probability `keep_fraction` gives it: how the class and
    group balancing downsample.

    Downsampling keeps memory bounded on an endless stream, unlike holding back the
    majority class until the minority catches up.
    """

    def stage(src: Iterable[Sample]) -> Iterator[Sample]:
        rng = _rng(seed, epoch, 1)
        for sample in src:
            if rng.random() < keep_fraction(sample):
                yield sample

    return stage


def seeded_shuffle(bufsize: int, seed: int, epoch: int) -> Stage:
    """webdataset's shuffle buffer with a per-(epoch, rank, worker) seed, filled before
    it yields: shards are sorted by key, which clusters classes, so a half-full buffer
    would hand out a run of one class first."""

    def stage(src: Iterable[Sample]) -> Iterator[Sample]:
        seed_here = int(_rng(seed, epoch, 2).integers(2**31))
        yield from wds.shuffle(bufsize, bufsize, seed=seed_here)(src)

    return stage


def horizontal_flip(seed: int, epoch: int) -> Stage:
    """Flip face and background together, half the time.

    A flip moves no pixel value, so the noise survives; flipping both squares of a pair
    together keeps the phase of their sensor pattern (demosaicing, 8x8 codec blocks)
    aligned, so a real pair never looks mismatched because of the augmentation.
    """

    def stage(src: Iterable[Sample]) -> Iterator[Sample]:
        rng = _rng(seed, epoch, 3)
        for sample in src:
            if rng.random() < 0.5:
                sample = {**sample, "face": sample["face"][:, ::-1], "background": sample["background"][:, ::-1],
                          "extra_backgrounds": [b[:, ::-1] for b in sample.get("extra_backgrounds") or []]}
            yield sample

    return stage


def stack_extra_backgrounds(samples: list[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs' extra background squares (`build-shards --backgrounds K`) as uint8
    (B,K,3,H,W), K the most any pair has, zero-padded, and the (B,K) mask of real ones."""
    extras = [s.get("extra_backgrounds") or [] for s in samples]
    k = max(map(len, extras))
    h, w, c = samples[0]["face"].shape
    out = np.zeros((len(samples), k, c, h, w), np.uint8)
    mask = np.zeros((len(samples), k), bool)
    for i, squares in enumerate(extras):
        for j, square in enumerate(squares):
            out[i, j], mask[i, j] = square.transpose(2, 0, 1), True
    return torch.from_numpy(out), torch.from_numpy(mask)


def collate_pairs(samples: list[Sample]) -> Sample:
    """A list of decoded pairs -> uint8 (B,3,H,W) face/background tensors, the extra
    backgrounds (`stack_extra_backgrounds`), int64 labels."""
    faces = np.stack([s["face"] for s in samples]).transpose(0, 3, 1, 2)
    backgrounds = np.stack([s["background"] for s in samples]).transpose(0, 3, 1, 2)
    extra, extra_mask = stack_extra_backgrounds(samples)
    return {
        "face": torch.from_numpy(np.ascontiguousarray(faces)),
        "background": torch.from_numpy(np.ascontiguousarray(backgrounds)),
        "extra_background": extra,
        "extra_mask": extra_mask,
        "cls": torch.tensor([s["cls"] for s in samples], dtype=torch.int64),
        "key": [s["key"] for s in samples],
        "meta": [s["meta"] for s in samples],
    }


def pair_nbytes(sample: Sample) -> int:
    """Bytes of a decoded pair's squares: what holding it costs (its key and meta are small beside them)."""
    return sample["face"].nbytes + sample["background"].nbytes + sum(b.nbytes for b in sample["extra_backgrounds"])


def held_nbytes(held: dict[str, list[Sample]]) -> int:
    """Bytes of every pair `hold_decoded` holds: what is left of the budget for the next split."""
    return sum(pair_nbytes(sample) for pairs in held.values() for sample in pairs)


def hold_decoded(lengths: dict[str, int], budget_bytes: int, keep: Callable[[Sample], bool] | None = None,
                 on_bad_shard: str = "stop") -> dict[str, list[Sample]] | None:
    """{shard URL: its decoded pairs that `keep` keeps} for these shards ({url: samples}),
    or None when they would take more than `budget_bytes`.

    Decoding goes shard by shard and gives up as soon as the pairs held pass the budget: a
    split too large costs at most the budget's worth of decoding, less than one epoch of
    it. (Scaling the first shards up to the split would give up sooner, but misjudges a
    split whose shards differ, e.g. one sorted by class.) A bad shard stops it or is left
    out, warned about once, and every shard bad raises, as in `checked_pairs`.
    """
    if budget_bytes <= 0 or not lengths:
        return None
    held: dict[str, list[Sample]] = {}
    used = 0
    for url, expected in lengths.items():
        try:
            pairs = list(read_whole(url, expected))
        except Exception as exc:  # as in checked_pairs: any read, decode or count error means "this shard is bad"
            bad_shard(url, exc, on_bad_shard)
            continue
        held[url] = [p for p in pairs if keep is None or keep(p)]
        used += sum(map(pair_nbytes, held[url]))
        if used > budget_bytes:
            return None
    if not held:
        raise BadShard(f"every shard is bad ({len(lengths)}), the last {list(lengths)[-1]}; rebuild the shards")
    return held


def held_pairs(held: dict[str, list[Sample]]) -> Stage:
    """A stage: {'url'} items -> that shard's pairs from `hold_decoded`, the stand-in for
    `checked_pairs` when a split is held (a bad shard left out yields nothing). Later stages
    build new samples rather than change these, so the held pairs stay as decoded."""

    def stage(src: Iterable[Sample]) -> Iterator[Sample]:
        if not any(held.values()):  # the endless shard list would spin without ever ending an epoch
            raise ValueError(f"none of the {len(held)} readable shard(s) holds a pair to train on")
        for item in src:
            yield from held.get(item["url"], ())

    return stage


def _already_collated(batch: Sample) -> Sample:
    """DataLoader's default would walk every meta dict of every batch converting nothing."""
    return batch


def class_keep_fraction(class_counts: dict[str, int]) -> tuple[dict[int, float], int]:
    """(keep probability per cls that evens out real and fake, samples kept per pass)."""
    n = {CLS_REAL: class_counts.get("real", 0), CLS_FAKE: class_counts.get("fake", 0)}
    if min(n.values()) == 0:
        raise ValueError(f"cannot balance classes: counts are {class_counts}")
    low = min(n.values())
    return {c: low / k for c, k in n.items()}, 2 * low


def group_class_counts(urls: list[str], on_bad_shard: str = "stop") -> dict[tuple[str, int], int]:
    """{(group, cls): pairs} over the shards, from their json members (no image is decoded):
    one read of the split, which `--balance-by group` needs once per run (the trainer counts
    before its first epoch and hands the counts to every epoch's `train_loader`). A shard
    that fails to read stops it or is left out, as `on_bad_shard` says."""
    counts: dict[tuple[str, int], int] = {}
    for url in urls:
        try:
            metas = [sample_meta(members) for members in shard_members(url).values()]
        except Exception as exc:  # as in shards.checked: any read or parse error means "this shard is bad"
            bad_shard(url, exc, on_bad_shard)
            continue
        for meta in metas:
            cell = (meta["group"], LABEL_TO_CLS[meta["label"]])
            counts[cell] = counts.get(cell, 0) + 1
    return counts


def group_keep_fraction(counts: dict[tuple[str, int], int]) -> tuple[dict[tuple[str, int], float], int]:
    """(keep probability per (group, cls), samples kept per pass) that give every group as
    many real as fake pairs, and drop the groups that hold one class only.

    Within a group (an identity, a source video) the real and the fake clips share where
    they came from: camera, compression, background. Balanced there, a cue of the source
    tells nothing, and only what the swap changed is left to learn. A group of one class is
    all source and no contrast, so it is left out of training (it still validates).
    """
    groups = {group for group, _ in counts}
    low = {g: min(counts.get((g, CLS_REAL), 0), counts.get((g, CLS_FAKE), 0)) for g in groups}
    keep = {(g, c): low[g] / n for (g, c), n in counts.items()}
    return keep, 2 * sum(low.values())


def _too_few_pairs_hint(samples: int, batch_size: int, world: int, balance: bool, by_group: bool, reals_only: bool) -> str:
    """Why an epoch holds less than one batch, and the options that fix it."""
    fixes = [f"--batch-size {samples // world}"] if samples >= world else []
    if reals_only:
        why, fixes = " (training on its real pairs alone)", fixes + ["--fake-source shards"]
    elif balance and by_group:
        why, fixes = " (balancing within groups keeps as many fakes as reals of each group that holds both)", fixes + ["--balance-by class"]
    elif balance:
        why, fixes = f" (balancing keeps 2 x the {samples // 2} pairs of the smaller class)", fixes + ["--no-balance"]
    else:
        why = ""
    return f"{why}, fewer than one batch of {batch_size} x {world} rank(s); use {' or '.join(fixes) or 'fewer ranks or more pairs'}"


def train_loader(
    root: str | ShardSource,
    split: str = "train",
    *,
    batch_size: int,
    epoch: int,
    seed: int = 0,
    workers: int = 0,
    balance: bool = False,
    group_counts: dict[tuple[str, int], int] | None = None,
    reals_only: bool = False,
    flip: bool = True,
    shuffle_buffer: int = 2000,
    on_bad_shard: str = "stop",
    held: dict[str, list[Sample]] | None = None,
) -> tuple[wds.WebLoader, int]:
    """(loader for one epoch of this rank, batches it yields): fixed per epoch and rank.

    `reals_only` drops the shards' fakes (the trainer then makes its own, `--fake-source
    self-blend`); `balance` evens out real and fake otherwise: over the split, or within
    each group when `group_counts` gives the split's pairs per (group, cls)
    (`group_class_counts`; see `group_keep_fraction`).

    `root` is what `--shards` takes (a shard root or a brace pattern), or those shards
    already opened by `shards.source.open_shards`. `held` (`hold_decoded` of the split,
    with every pair or, for `reals_only`, the reals) deals the pairs from memory: the same
    batches, with no shard read."""
    source = open_shards(root)
    lengths = source.lengths(split)
    urls = list(lengths)
    entry = source.info["splits"][split]
    _, world = world_info()
    readers = world * max(workers, 1)
    if len(urls) < readers:
        raise ValueError(
            f"{source.spec}: split {split!r} has {len(urls)} shards, fewer than ranks x workers = "
            f"{world} x {max(workers, 1)}; use --workers {max(1, len(urls) // world)} or rebuild with more --min-shards"
        )
    stages: list[Any] = [shuffled_shards(urls, seed, epoch), wds.split_by_node, wds.split_by_worker,
                         checked_pairs(lengths, on_bad_shard) if held is None else held_pairs(held)]
    samples = entry["num_samples"]
    if reals_only:
        samples = entry.get("class_counts", {}).get("real", 0)
        stages.append(only_class(CLS_REAL))
    elif balance and group_counts is not None:
        keep_cell, samples = group_keep_fraction(group_counts)
        stages.append(keep_at_random(lambda s: keep_cell[s["meta"]["group"], s["cls"]], seed, epoch))
    elif balance:
        keep_cls, samples = class_keep_fraction(entry.get("class_counts", {}))
        stages.append(keep_at_random(lambda s: keep_cls[s["cls"]], seed, epoch))
    stages.append(seeded_shuffle(shuffle_buffer, seed, epoch))
    if flip:
        stages.append(horizontal_flip(seed, epoch))
    stages.append(wds.batched(batch_size, collation_fn=collate_pairs, partial=False))
    batches = samples // (world * batch_size)
    if batches == 0:
        raise ValueError(f"{source.spec}: split {split!r} gives {samples} pairs an epoch"
                         f"{_too_few_pairs_hint(samples, batch_size, world, balance, group_counts is not None, reals_only)}")
    loader = wds.WebLoader(wds.DataPipeline(*stages), batch_size=None, num_workers=workers, collate_fn=_already_collated)
    return loader.with_epoch(batches), batches


def eval_loader(
    urls: list[str], *, batch_size: int, workers: int = 0, lengths: dict[str, int] | None = None, on_bad_shard: str = "stop",
    held: dict[str, list[Sample]] | None = None,
) -> wds.WebLoader:
    """Every pair of `urls` exactly once, unshuffled, unflipped; the last batch may be short.

    `lengths` ({url: samples}, `shards.info.split_lengths`) lets a shortened shard count as bad.
    `held` (`hold_decoded` of these shards) deals the pairs from memory, in the main process:
    with nothing to decode, workers would only add their start-up.
    """
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls), wds.split_by_worker,
        checked_pairs(lengths or {}, on_bad_shard) if held is None else held_pairs(held),
        wds.batched(batch_size, collation_fn=collate_pairs, partial=True),
    )
    return wds.WebLoader(pipeline, batch_size=None, num_workers=min(workers, len(urls)) if held is None else 0,
                         collate_fn=_already_collated)
