"""Shards read whole and counted against `_info.json`: a corrupt or truncated shard is
reported by its file name, skipped or fatal by choice, and never hangs a loader.

Counting matters because Python's tarfile takes a damaged header after the first member
for the end of the archive, and a tar cut at a member boundary looks complete: both would
otherwise shorten a shard silently. With `on_bad="skip"` a bad shard is warned about once
and left out of later passes; when every shard of the split has turned out bad, the
endless training stream would spin forever, so that raises instead.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_expander

from shards.info import describe_error
from shards.reader import decode_pair

ON_BAD_SHARD = ("stop", "skip")

Sample = dict[str, Any]


class BadShard(ValueError):
    """A shard that cannot be read to its end, or holds other than its indexed sample count."""


class BadShardWarning(UserWarning):
    """A bad shard left out under `on_bad="skip"`."""


def require_pairs(count: int, root: str, split: str) -> None:
    """Raise when skipping left nothing to read: metrics of zero pairs would look like results.

    Each loader worker sees only its share of the shards, so only the caller, after the
    loader is done, can tell that all of them were bad."""
    if count == 0:
        raise BadShard(f"{root}: no readable pairs in split {split!r}: every shard is bad; rebuild the shards")


def read_whole(url: str, expected: int | None) -> Iterator[Sample]:
    """The decoded pairs of one shard, then its count checked: raises on any read error."""
    count = 0
    with wds.gopen(url) as stream:  # closed here, also when the consumer stops mid-shard
        for raw in group_by_keys(tar_file_expander([{"url": url, "stream": stream}])):
            yield decode_pair(raw)
            count += 1
    check_length(count, expected)


def check_length(count: int, expected: int | None) -> None:
    """A shard read whole must hold the count its `_info.json` entry gives (None: unknown):
    fewer means a truncated or replaced file, which a tar reader alone cannot tell."""
    if expected is not None and count != expected:
        raise ValueError(f"holds {count} samples, _info.json says {expected}")


def bad_shard(url: str, exc: Exception, on_bad: str) -> None:
    """Report a shard that failed to read: raise BadShard (`on_bad="stop"`, with the fix)
    or warn that it is skipped. One line either way, naming the shard and what failed."""
    reason = f"bad shard {url}: {describe_error(exc)}"
    if on_bad == "stop":
        raise BadShard(f"{reason}; rebuild the shards, or pass --on-bad-shard skip to leave it out") from exc
    warnings.warn(f"{reason} (skipped)", BadShardWarning, stacklevel=2)


def checked_pairs(lengths: dict[str, int], on_bad: str = "stop") -> Callable[[Iterable[Sample]], Iterator[Sample]]:
    """A stage: {'url'} items -> decoded pairs (`shards.reader.decode_pair`) of each shard.

    `lengths` maps URLs to their sample counts from `_info.json` (see
    `shards.info.split_lengths`); a URL it lacks is read without the count check.
    """
    if on_bad not in ON_BAD_SHARD:
        raise ValueError(f"on_bad must be one of {ON_BAD_SHARD}, got {on_bad!r}")

    def stage(src: Iterable[Sample]) -> Iterator[Sample]:
        bad: set[str] = set()
        for item in src:
            url = item["url"]
            if url in bad:
                continue
            try:
                yield from read_whole(url, lengths.get(url))
            except Exception as exc:  # tar, gzip, PNG, JSON and count errors all mean "this shard is bad"
                bad_shard(url, exc, on_bad)
                bad.add(url)
                if lengths and bad >= lengths.keys():
                    raise BadShard(f"every shard is bad ({len(bad)}), the last {url}; rebuild the shards") from exc

    return stage
