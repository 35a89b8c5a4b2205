"""Deterministic train/val/test assignment by group (or, on request, by video or pair).

A group is the identity or original video a fake was made from, so a real video and the
fakes made from it always share a split. Groups are ordered by a hash of their name and
cut 8:1:1 (in groups), which is reproducible, needs no random state, and gives val and
test at least one group each as soon as there are three groups.

`build-shards --split-by video` cuts the videos so instead, and `--split-by pair` (the
protocol of Wang & Chow's paper) draws each pair's split from a hash of its key. Both
leak: a fake and its real source may land in different splits (video), frames of one
video do (pair); they exist to reproduce results measured that way.
"""
from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable

DEFAULT_RATIOS = (8, 1, 1)
SPLIT_BY = GROUP, VIDEO, PAIR = ("group", "video", "pair")


def _hash(group: str) -> str:
    return hashlib.sha256(group.encode("utf-8")).hexdigest()


def assign_groups(
    groups: Iterable[str], names: tuple[str, ...] = ("train", "val", "test"), ratios: tuple[int, ...] = DEFAULT_RATIOS
) -> dict[str, str]:
    """Map each distinct group to a split name, cutting the hash order by `ratios`.

    The last splits are filled first (at least one group each while groups remain), so a
    tiny collection still gets a val and a test group; train takes the rest.
    """
    ordered = sorted(set(groups), key=lambda g: (_hash(g), g))
    n = len(ordered)
    total = sum(ratios)
    counts = [0] * len(names)
    for i in range(len(names) - 1, 0, -1):
        counts[i] = max(1, round(n * ratios[i] / total)) if n > sum(counts) + 1 else 0
    counts[0] = n - sum(counts[1:])
    result, start = {}, 0
    for name, count in zip(names, counts):
        for g in ordered[start : start + count]:
            result[g] = name
        start += count
    return result


def hashed_split(name: str, names: tuple[str, ...] = ("train", "val", "test"), ratios: tuple[int, ...] = DEFAULT_RATIOS) -> str:
    """One name's split by its hash alone, `ratios` in expectation: for the pairs of
    `--split-by pair`, which are found on the workers, one video at a time, so there is
    no list of them to cut."""
    bucket = int(_hash(name), 16) % sum(ratios)
    return next(split for split, bound in zip(names, itertools.accumulate(ratios)) if bucket < bound)
