"""What `--shards` names: a shard root, or a WebDataset brace pattern selecting some of its shards.

A root is a local directory or a URL (`gs://`, `http(s)://`) holding `_info.json`. A
brace pattern such as `gs://bucket/shards/{train,val}/pairs-{000000..000063}.tar` is
expanded with WebDataset's own expansion, so it means what it means to WebDataset users;
its `_info.json` is looked up at the directory before the first `{`, then one level up
(so `.../shards/train/pairs-{...}.tar` finds `.../shards/_info.json`). The pattern then
selects: each split keeps the shards it names, in index order, and a name the index lacks
is an error rather than a shard read without its count check.

Every training entry point opens its shards here, so a root and a pattern read the same
way, and every rank resolves a pattern to the same shard list. WebDataset is imported
only when a pattern is expanded, as in `shards.info.read_info`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shards.info import INFO_NAME, read_info, split_lengths, split_urls


@dataclass(frozen=True)
class ShardSource:
    """Opened `--shards`: the root holding `_info.json` and its index, narrowed to the
    pattern's shards; split errors name `spec`, what the user typed."""

    spec: str  # as given: a root or a brace pattern
    root: str  # the directory or URL holding _info.json; the index's shard names are relative to it
    info: dict[str, Any]  # _info.json with every split narrowed to the selected shards

    def urls(self, split: str) -> list[str]:
        """Shard URLs of `split` in index order; a clear error when none is selected."""
        return split_urls(self.root, split, self.info, where=self.spec)

    def lengths(self, split: str) -> dict[str, int]:
        """{shard URL: samples} of `split`, for `shards.checked.checked_pairs`."""
        return split_lengths(self.root, split, self.info, where=self.spec)


def is_pattern(spec: str) -> bool:
    """True when `--shards` is a brace pattern rather than a root: it holds a `{`."""
    return "{" in spec


def open_shards(spec: str | ShardSource) -> ShardSource:
    """Resolve `--shards`; a root's index is used as it is, a pattern's is narrowed.

    An opened source is returned as it is, so a run that opens its shards once can hand
    them to every epoch's loader without reading `_info.json` again (over a URL, a
    download each time)."""
    if isinstance(spec, ShardSource):
        return spec
    if not is_pattern(spec):
        return ShardSource(spec, spec, read_info(spec))
    prefix, info = _find_index(spec)
    root = _root(prefix)
    return ShardSource(spec, root, _select(info, _expand(spec, prefix), spec, root))


def _candidates(spec: str) -> list[str]:
    """Directory prefixes (ending in "/", "" for the working directory) that may hold
    `_info.json`: the pattern's directory before its first `{`, then that one's parent.

    Never a bare scheme (`gs://`) or above the filesystem root."""
    head = spec[: spec.index("{")]
    here = head[: head.rfind("/") + 1]
    found = [here]
    if here.strip("/"):
        found.append(here[: here.rstrip("/").rfind("/") + 1])
    return [p for p in found if not p.endswith("://")]


def _root(prefix: str) -> str:
    """A candidate prefix as a root `shards.info` joins names to: "a/b/" -> "a/b", "/" stays, "" -> "."."""
    return prefix.rstrip("/") or prefix or "."


def _find_index(spec: str) -> tuple[str, dict[str, Any]]:
    """(prefix of the root, its `_info.json`) for the first candidate that has one."""
    tried = []
    for prefix in _candidates(spec):
        try:
            return prefix, read_info(_root(prefix))
        except (FileNotFoundError, NotADirectoryError):
            tried.append(_root(prefix))
    raise FileNotFoundError(
        f"{spec}: no {INFO_NAME} at {' or '.join(tried) or 'its directory'}; "
        "a brace pattern must sit under a shard root written by build-shards"
    )


def _expand(spec: str, prefix: str) -> dict[str, str]:
    """{shard name relative to the root: URL} of every URL the pattern expands to.

    A URL outside the root (only possible through WebDataset's `::` lists) keeps its
    whole text as its name, so it is reported as unknown rather than silently dropped."""
    import webdataset as wds  # only patterns need it

    urls = wds.shardlists.expand_urls(spec)
    return {url[len(prefix):] if url.startswith(prefix) else url: url for url in urls}


def _select(info: dict[str, Any], wanted: dict[str, str], spec: str, root: str) -> dict[str, Any]:
    """`info` with each split narrowed to the shards in `wanted`; splits left empty are dropped."""
    indexed = {name for entry in info.get("splits", {}).values() for name in entry["filenames"]}
    unknown = [url for name, url in wanted.items() if name not in indexed]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ValueError(f"{spec}: {unknown[0]}{more} is not a shard listed in {root}/{INFO_NAME}; "
                         "narrow the pattern to the shards it lists")
    splits = {}
    for split, entry in info.get("splits", {}).items():
        keep = [i for i, name in enumerate(entry["filenames"]) if name in wanted]
        if keep:
            splits[split] = _narrow(entry, keep)
    return {**info, "splits": splits}


def _narrow(entry: dict[str, Any], keep: list[int]) -> dict[str, Any]:
    """One split's index entry for the shards at positions `keep`; its totals recomputed."""
    lengths = [entry["shard_lengths"][i] for i in keep]
    kept = sum(lengths)
    narrowed = {
        **entry,
        "filenames": [entry["filenames"][i] for i in keep],
        "shard_lengths": lengths,
        "num_samples": kept,
    }
    if "shard_class_counts" in entry:
        per_shard = [entry["shard_class_counts"][i] for i in keep]
        totals: dict[str, int] = {}
        for counts in per_shard:
            for label, n in counts.items():
                totals[label] = totals.get(label, 0) + n
        return {**narrowed, "shard_class_counts": per_shard, "class_counts": dict(sorted(totals.items()))}
    return {**narrowed, "class_counts": _apportion(entry.get("class_counts", {}), kept, entry["num_samples"])}


def _apportion(counts: dict[str, int], kept: int, total: int) -> dict[str, int]:
    """Class counts for `kept` of a split's `total` samples, in the split's proportions.

    For an `_info.json` written before it recorded `shard_class_counts`, which holds classes
    per split only, so a subset's class counts are estimated; build-shards deals pairs round-robin over sorted keys, which
    gives every shard close to the split's class mix. Largest remainders make them sum
    to `kept`; they are exact when the pattern keeps the whole split. Training uses them
    only for the real/fake keep ratio (unchanged) and the epoch length."""
    if kept == total or total == 0:
        return dict(counts)
    shares = {label: divmod(n * kept, total) for label, n in counts.items()}
    out = {label: whole for label, (whole, _) in shares.items()}
    for label in sorted(shares, key=lambda k: -shares[k][1])[: kept - sum(out.values())]:
        out[label] += 1
    return out
