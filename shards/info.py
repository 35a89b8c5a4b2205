"""`_info.json`: the index of a shard directory.

Its `splits.<name>` entries follow the layout timm's WebDataset reader uses (`name`,
`num_samples`, `filenames`, `shard_lengths`; see tests/test_stock_readers.py);
noisetrace adds per-class counts (per split, and per shard in `shard_class_counts`, so a
subset of shards knows its class mix) and the build's options and package versions.
"""
from __future__ import annotations

import json
import re
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
    `gsutil cat`, `http(s)://` through curl), so a GPU node can stream shards from a bucket.

    A missing, unreadable or malformed index is an error naming the file and what to do:
    every command that takes `--shards` starts here, so this is what a wrong path shows."""
    path = _join(root, INFO_NAME)
    try:
        if is_url(root):
            import webdataset as wds  # only URLs need it; keeps this module light for the pipeline

            with wds.gopen(path, "rb") as f:
                text = f.read().decode("utf-8")
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as e:
        raise FileNotFoundError(f"cannot read {path} ({describe_error(e)}): --shards must be a directory (or URL) "
                                "that build-shards wrote") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file; rebuild the shards with build-shards") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); rebuild the shards with build-shards") from None
    _check_index(path, info)
    return info


def _check_index(path: str, info: Any) -> None:
    """Refuse an index without the split entries every reader indexes into, so a damaged
    or foreign `_info.json` is reported as such rather than as a KeyError deep in a loader."""
    splits = info.get("splits") if isinstance(info, dict) else None
    if not isinstance(splits, dict):
        raise ValueError(f"{path}: not a build-shards index (no 'splits'); rebuild the shards with build-shards")
    for name, entry in splits.items():
        if not _is_split_entry(entry):
            raise ValueError(f"{path}: splits.{name} lacks num_samples, or filenames and shard_lengths of one "
                             "length; rebuild the shards with build-shards")


def _is_split_entry(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("num_samples"), int)
            and isinstance(entry.get("filenames"), list) and isinstance(entry.get("shard_lengths"), list)
            and len(entry["filenames"]) == len(entry["shard_lengths"]))


_PIPE_EXIT = re.compile(r"\[\s*'([\w.-]+)'.*: exit (\d+) \(read\)", re.S)


def describe_error(exc: BaseException) -> str:
    """What went wrong opening or reading a file or URL, in a few words.

    WebDataset reports a failed `curl`/`gsutil` pipe as the repr of its command line and
    arguments, and an OSError's first argument is a bare errno: neither tells a user
    anything, so they become "curl exited with 22" and "No such file or directory"."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    first = " ".join(str(exc.args[0]).split()) if exc.args else ""
    pipe = _PIPE_EXIT.search(first)
    if pipe:
        return f"{pipe[1]} exited with {pipe[2]}"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def is_url(root: str) -> bool:
    """True for `scheme://...` roots other than local `file://` paths."""
    return "://" in root and not root.startswith("file://")


def split_urls(root: str, split: str, info: dict[str, Any] | None = None, *, where: str | None = None) -> list[str]:
    """The shard URLs of one split, in index order; a clear error when the split is absent.

    `where` names the shards in that error (default `root`): for a brace pattern that
    selected none of the split's shards, the pattern the user typed says more than its root."""
    info = info if info is not None else read_info(root)
    entry = info["splits"].get(split)
    if not entry or not entry["filenames"]:
        have = ", ".join(sorted(info["splits"])) or "none"
        raise ValueError(f"{where or root}: no shards for split {split!r} (it has: {have}); "
                         "name one of those, or rebuild the shards with that split")
    return [_join(root, name) for name in entry["filenames"]]


def split_lengths(root: str, split: str, info: dict[str, Any] | None = None, *, where: str | None = None) -> dict[str, int]:
    """{shard URL: samples it holds} for one split, in index order, as `_info.json` records them."""
    info = info if info is not None else read_info(root)
    urls = split_urls(root, split, info, where=where)
    return dict(zip(urls, info["splits"][split]["shard_lengths"]))


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def info_summary(info: dict[str, Any]) -> dict[str, Any]:
    """A few lines of `_info.json` a checkpoint carries, so a report can say what a model
    was trained on without the shards at hand: where the videos came from, pairs per split
    and class, how many videos gave pairs, and the failure counts by reason."""
    return {
        "input": info.get("input"),
        "splits": {name: {"pairs": entry["num_samples"], **entry.get("class_counts", {})}
                   for name, entry in sorted(info.get("splits", {}).items())},
        "videos": info.get("videos"),
        "failures": info.get("failures"),
        "crossval": info.get("crossval"),
    }
