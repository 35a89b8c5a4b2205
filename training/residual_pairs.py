"""A split's pairs as a frozen extractor's residuals, held in memory: training from them.

With the extractor frozen and its residuals cached (training.residuals), what is left of
an epoch is reading the shards and the head's few convolutions. Reading is the larger
part: the streaming loader decodes every pair of the split, fakes too when training on
reals alone, and fills a shuffle buffer before its first batch. For a frozen extractor the
trainer therefore reads each split once per run, keeps the residuals (float16, 24 KB per
64 px square), labels and groups in memory, and deals each epoch's batches from there,
seeded by (seed, epoch, rank) as the streaming loader is: the same pairs are kept (reals
alone, or balanced by class or group, by `training.data`'s own keep fractions), shuffled,
flipped and self-blended, and a resumed run replays the same batches.

Self-blended fakes come from each real face's bank of `variants` fixed blends
(training.selfblend.bank_blend); a blend's residual is cached under the face's digest and
its number, so the blend itself is made only the first time, and never again.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from shards.schema import CLS_FAKE, CLS_REAL
from shards.source import ShardSource
from training.data import class_keep_fraction, eval_loader, group_keep_fraction
from training.residuals import ResidualCache, square_digest
from training.selfblend import bank_blend, bank_key, patch_region

Batch = tuple[list[torch.Tensor], torch.Tensor]


@dataclass
class ResidualPairs:
    """Residuals (N,C,H,W) of faces and backgrounds, extras (N,K,C,H,W) and their mask,
    labels, groups, and the real faces (uint8), digests and blend regions
    (training.selfblend.patch_region, for the run's `--self-blend-mask`) the self-blend bank
    starts from."""

    face: torch.Tensor
    background: torch.Tensor
    extra: torch.Tensor
    extra_mask: torch.Tensor
    cls: np.ndarray
    group: list[str]
    real_faces: dict[int, torch.Tensor]
    digest: list[str]
    region: list[tuple[float, float, float]]

    @classmethod
    def load(cls, source: ShardSource, split: str, cache: ResidualCache, on_bad_shard: str = "stop",
             blend_mask: str = "face-square") -> "ResidualPairs":
        lengths = source.lengths(split)
        parts: dict[str, list] = {k: [] for k in ("face", "background", "extra", "extra_mask", "cls", "group", "digest", "region")}
        real_faces: dict[int, torch.Tensor] = {}
        k_max = 0
        for batch in eval_loader(list(lengths), batch_size=128, lengths=lengths, on_bad_shard=on_bad_shard):
            offset = sum(len(c) for c in parts["cls"])
            digests = [square_digest(face) for face in batch["face"]]  # once: the cache and the blend bank both key by them
            parts["face"].append(cache.get(digests, lambda picked: batch["face"][picked]).half())
            parts["background"].append(cache(batch["background"]).half())
            extra, mask = batch["extra_background"], batch["extra_mask"]
            b, k = extra.shape[:2]
            flat = cache(extra.flatten(0, 1)) if k else torch.zeros((0, *parts["face"][-1].shape[1:]))
            parts["extra"].append(flat.half().view(b, k, *flat.shape[1:]))
            parts["extra_mask"].append(mask)
            k_max = max(k_max, k)
            parts["cls"].append(batch["cls"].numpy())
            parts["group"] += [m["group"] for m in batch["meta"]]
            parts["digest"] += digests
            parts["region"] += [patch_region(m, blend_mask) for m in batch["meta"]]
            real_faces.update({offset + i: face for i, face in enumerate(batch["face"]) if int(batch["cls"][i]) == CLS_REAL})
        face = torch.cat(parts["face"])
        pad = [torch.cat([e, e.new_zeros((e.shape[0], k_max - e.shape[1], *e.shape[2:]))], 1) for e in parts["extra"]]
        masks = [torch.cat([m, m.new_zeros((m.shape[0], k_max - m.shape[1]))], 1) for m in parts["extra_mask"]]
        return cls(face, torch.cat(parts["background"]), torch.cat(pad), torch.cat(masks), np.concatenate(parts["cls"]),
                   parts["group"], real_faces, parts["digest"], parts["region"])

    def __len__(self) -> int:
        return len(self.cls)

    def epoch_indices(self, *, seed: int, epoch: int, rank: int, world: int, batch_size: int, reals_only: bool,
                      balance: bool, group_counts: dict[tuple[str, int], int] | None) -> tuple[np.ndarray, int]:
        """(this rank's pair indices for the epoch, batches): the pairs kept as the streaming
        loader keeps them, in a seeded order, cut to whole batches of every rank."""
        rng = np.random.default_rng([seed, epoch, 7])
        if reals_only:
            keep = self.cls == CLS_REAL
            samples = int(keep.sum())
        elif balance and group_counts is not None:
            fraction, samples = group_keep_fraction(group_counts)
            keep = rng.random(len(self)) < np.array([fraction.get((g, int(c)), 0.0) for g, c in zip(self.group, self.cls)])
        elif balance:
            counts = {"real": int((self.cls == CLS_REAL).sum()), "fake": int((self.cls == CLS_FAKE).sum())}
            fraction, samples = class_keep_fraction(counts)
            keep = rng.random(len(self)) < np.array([fraction[int(c)] for c in self.cls])
        else:
            keep, samples = np.ones(len(self), bool), len(self)
        batches = samples // (world * batch_size)
        order = rng.permutation(np.flatnonzero(keep))
        order = np.resize(order, batches * world * batch_size) if len(order) else order  # wraps, as the endless stream does
        return order[rank::world], batches

    def batches(self, indices: np.ndarray, batch_size: int, gen: torch.Generator, cache: ResidualCache,
                self_blend: float, variants: int, frame: bool) -> Iterator[Batch]:
        """Batches of (model inputs as residuals, labels): half the pairs flipped, and
        round(self_blend x batch) of the reals turned into one of their banked blends."""
        for start in range(0, len(indices) - batch_size + 1, batch_size):
            idx = torch.from_numpy(indices[start : start + batch_size])
            labels = torch.from_numpy(self.cls[idx.numpy()]).long()
            face = self.face[idx].float()
            real = (labels == CLS_REAL).nonzero().flatten()
            n = min(len(real), round(self_blend * len(labels)))
            if n:
                pick = real[torch.randperm(len(real), generator=gen)[:n]]
                variant = torch.randint(variants, (n,), generator=gen).tolist()
                sources = [int(idx[p]) for p in pick]
                regions = [self.region[i] for i in sources]
                keys = [bank_key(self.digest[i], variants, v, r) for i, v, r in zip(sources, variant, regions)]
                blends = cache.get(keys, lambda pos: torch.stack([bank_blend(self.real_faces[sources[j]], variants, variant[j], regions[j])
                                                                  for j in pos]))
                face[pick] = blends.cpu()
                labels[pick] = 1
            inputs = [face, self.background[idx].float()]
            if frame:
                inputs += [self.extra[idx].float(), self.extra_mask[idx]]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            inputs = [torch.where(flip.view(-1, *[1] * (t.ndim - 1)), t.flip(-1), t) if t.is_floating_point() else t
                      for t in inputs]
            yield [t.to(cache.device) for t in inputs], labels
