"""`_info.json`: the index of a shard directory.

Its `splits.<name>` entries follow the layout timm's WebDataset reader uses (`name`,
`num_samples`, `filenames`, `shard_lengths`; see tests/test_stock_readers.py);
noisetrace adds per-class counts (per split, and per shard in `shard_class_counts`, so a
subset of shards knows its class mix) and the build's options and package versions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

INFO_NAME = "_info.json"
FAILURES_NAME = "failures.jsonl"


@dataclass(frozen=True)
class ShardRecord:
    """What one written shard holds."""

    split: str
    filename: str  # relative to the output root, e.g. "train/pairs-000003.tar"
    num_samples: int
    class_counts: dict[str, int] = field(default_factory=dict)


def build_info(records: list[ShardRecord], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble `_info.json` content from shard records, in a deterministic order."""
    splits: dict[str, Any] = {}
    for rec in sorted(records, key=lambda r: (r.split, r.filename)):
        entry = splits.setdefault(
            rec.split,
            {"name": rec.split, "num_samples": 0, "filenames": [], "shard_lengths": [], "class_counts": {},
             "shard_class_counts": []},
        )
        entry["num_samples"] += rec.num_samples
        entry["filenames"].append(rec.filename)
        entry["shard_lengths"].append(rec.num_samples)
        entry["shard_class_counts"].append(dict(sorted(rec.class_counts.items())))
        for label, n in rec.class_counts.items():
            entry["class_counts"][label] = entry["class_counts"].get(label, 0) + n
    info: dict[str, Any] = {"name": "noisetrace-pairs", "splits": splits}
    info.update(extra or {})
    return info


def dumps_info(info: dict[str, Any]) -> str:
    return json.dumps(info, indent=2, sort_keys=True) + "\n"


def read_info(root: str) -> dict[str, Any]:
    """Read `_info.json` from a local directory or a URL WebDataset opens (`gs://` through
    `gsutil cat`, `http(s)://` through curl), so a GPU node can stream shards from a bucket."""
    path = _join(root, INFO_NAME)
    if not is_url(root):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    import webdataset as wds  # only URLs need it; keeps this module light for the pipeline

    try:
        with wds.gopen(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except OSError as e:  # the opener's own message is a command line and an exit code
        raise FileNotFoundError(f"cannot read {path}: {e.strerror or e}") from None


def is_url(root: str) -> bool:
    """True for `scheme://...` roots other than local `file://` paths."""
    return "://" in root and not root.startswith("file://")


def split_urls(root: str, split: str, info: dict[str, Any] | None = None, *, where: str | None = None) -> list[str]:
    """The shard URLs of one split, in index order; a clear error when the split is absent.

    `where` names the shards in that error (default `root`): for a brace pattern that
    selected none of the split's shards, the pattern the user typed says more than its root."""
    info = info if info is not None else read_info(root)
    entry = info.get("splits", {}).get(split)
    if not entry or not entry["filenames"]:
        have = sorted(info.get("splits", {}))
        raise ValueError(f"{where or root}: no shards for split {split!r} (splits present: {have})")
    return [_join(root, name) for name in entry["filenames"]]


def split_lengths(root: str, split: str, info: dict[str, Any] | None = None, *, where: str | None = None) -> dict[str, int]:
    """{shard URL: samples it holds} for one split, in index order, as `_info.json` records them."""
    info = info if info is not None else read_info(root)
    urls = split_urls(root, split, info, where=where)
    return dict(zip(urls, info["splits"][split]["shard_lengths"]))


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"
