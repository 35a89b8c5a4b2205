"""Streaming reads of pair shards with WebDataset: no unpacking, uint8 out.

Decoding stops at uint8 HxWx3 arrays: converting to float and normalising is left to the
consumer (on the GPU for training), which is what makes the loader fast enough to feed
one. These are plain functions so they compose as WebDataset stages.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import webdataset as wds

from shards.raw import Members, stream_members
from shards.schema import BACKGROUND, CLS, FACE, MEMBER_SUFFIXES, META, decode_png, extra_background_suffixes


def decode_pair(raw: dict[str, Any]) -> dict[str, Any]:
    """WebDataset raw sample -> {'key', 'face', 'background', 'extra_backgrounds', 'cls',
    'meta', 'url'}; `extra_backgrounds` lists the `--backgrounds` squares in member order
    (background1, background2, ...), empty for shards built without them."""
    missing = [s for s in MEMBER_SUFFIXES if s not in raw]
    meta = json.loads(raw[META]) if META in raw else {}
    missing += [s for s in extra_background_suffixes(meta) if s not in raw]
    if missing:
        raise ValueError(f"sample {raw.get('__key__')} in {raw.get('__url__')} lacks {missing}")
    return {
        "key": raw["__key__"],
        "face": decode_png(raw[FACE]),
        "background": decode_png(raw[BACKGROUND]),
        "extra_backgrounds": [decode_png(raw[s]) for s in extra_background_suffixes(meta)],
        "cls": int(raw[CLS]),
        "meta": meta,
        "url": raw.get("__url__", ""),
    }


def iter_pairs(
    urls: list[str] | str, handler: Callable[[Exception], bool] = wds.reraise_exception
) -> Iterator[dict[str, Any]]:
    """Every pair of the given shards in order, decoded; for evaluation and tools."""
    dataset = wds.WebDataset(
        urls, shardshuffle=False, empty_check=False, handler=handler, nodesplitter=None
    ).map(decode_pair, handler=handler)
    yield from dataset


def shard_members(url: str) -> dict[str, Members]:
    """{key: tar members} of one shard, local or a URL, read front to back and decoding
    nothing: for tools that need every sample's metadata or its exact bytes, not pixels."""
    with wds.gopen(url, "rb") as f:
        return stream_members(f)


def sample_meta(members: Members) -> dict[str, Any]:
    """The metadata (json member) of an undecoded sample."""
    return json.loads(next(data for name, data in members if name.endswith("." + META)))
