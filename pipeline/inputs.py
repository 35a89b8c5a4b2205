"""From `--input` (a directory, a glob or a CSV manifest) to labelled video records.

Runs once, on the driver: local paths through the OS, `gs://` and other URLs through
Beam's FileSystems (`pipeline.fetch.object_store`), so listing local videos needs no Beam
(`detect --input`). Labels and groups come from known dataset layouts (Celeb-DF,
FaceForensics++, DFDC, a generic `real/` / `fake/` folder) or from the manifest; a video
that cannot be labelled is kept as a record with a failure reason, never guessed and never
dropped.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from pipeline.fetch import NotAFile, object_store, require_regular
from pipeline.splits import GROUP, PAIR, VIDEO, assign_groups

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
CELEBDF_REAL = frozenset({"Celeb-real", "YouTube-real"})
CELEBDF_FAKE = frozenset({"Celeb-synthesis"})
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
DFDC_METADATA = "metadata.json"
SPLIT_NAMES = ("train", "val", "test")
DFD_FOLDERS = frozenset({"actors", "DeepFakeDetection"})
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")
_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """The `--input` itself (no such path, malformed manifest), or a combination of options,
    is unusable: stop the run."""


@dataclass(frozen=True)
class VideoRecord:
    """One input video. `reason` is set when it cannot be processed (e.g. `unlabelled`)."""

    path: str  # a local path or a URL
    video: str  # relative to the input root, '/'-separated: the id used in shards
    dataset: str
    label: str | None
    group: str | None
    split: str | None = None
    reason: str | None = None
    detail: str = ""
    method: str | None = None  # how a fake was made, where the layout says (FF++'s manipulated_sequences/<method>)

    def meta(self) -> dict:
        """What every pair of this video carries in its json; `method` only where known."""
        keys = ("video", "dataset", "label", "split", "group") + (("method",) if self.method else ())
        return {k: getattr(self, k) for k in keys}


def _stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]


def _read_text(path: str) -> str:
    """A manifest's or label file's text. A local one must be a regular file: a FIFO named
    `metadata.json` would block the driver's open() for ever."""
    if "://" in path:
        with object_store(path).open(path) as f:
            return io.TextIOWrapper(f, encoding="utf-8").read()
    try:
        require_regular(path)
    except NotAFile as e:
        raise InputError(f"{path}: {e}") from e
    with open(path, encoding="utf-8") as f:
        return f.read()


def _exists(path: str) -> bool:
    return object_store(path).exists(path) if "://" in path else os.path.exists(path)


def _match(pattern: str) -> list[str]:
    """Files matching a glob (`**` recursive). Local paths are listed with `glob`, because
    Beam's local match silently skips entries it cannot stat (a dangling symlink, a link
    loop): such a file must become a failure record, not vanish from the run."""
    if "://" in pattern:
        return sorted(m.path for m in object_store(pattern).match([pattern])[0].metadata_list)
    # lexists: glob gives "dir/**" back as "dir/" when dir does not exist. A directory
    # named like a video is kept, to be recorded as not_a_file rather than vanish.
    listed = (p.rstrip("/") for p in glob.glob(pattern, recursive=True, include_hidden=True))
    return sorted(p for p in listed if os.path.lexists(p) and (not os.path.isdir(p) or _is_video(p)))


@dataclass
class _SideFiles:
    """Label and split files found beside the videos, keyed by their directory."""

    celebdf_tests: dict[str, set[str]]  # dir -> test-list paths relative to it
    dfdc: dict[str, dict]  # dir -> metadata.json content
    ffpp_splits: dict[str, dict[str, tuple[str, str]]]  # dir -> video id -> (split, group)

    @classmethod
    def load(cls, files: Iterable[str]) -> "_SideFiles":
        side = cls({}, {}, {})
        for path in files:
            head, name = posixpath.split(path)
            if name == CELEBDF_TEST_LIST:
                lines = [ln.split() for ln in _read_text(path).splitlines() if ln.strip()]
                side.celebdf_tests[head] = {parts[-1] for parts in lines}
            elif name == DFDC_METADATA:
                side.dfdc[head] = json.loads(_read_text(path))
            elif posixpath.basename(head) == "splits" and name in {f"{s}.json" for s in SPLIT_NAMES}:
                root = posixpath.dirname(head)
                for pair in json.loads(_read_text(path)):
                    group = "ffpp:" + "_".join(sorted(pair))
                    for vid in pair:
                        side.ffpp_splits.setdefault(root, {})[vid] = (name[:-5], group)
        return side


def _label_from_layout(path: str, root: str, side: _SideFiles) -> VideoRecord:
    """Dataset, label, group and official split from where a file lies."""
    rel = posixpath.relpath(path, root) if root else path
    parts = rel.split("/")
    dirs, name, stem = parts[:-1], parts[-1], _stem(parts[-1])
    base = {"path": path, "video": rel}
    for i, d in enumerate(dirs):
        if d in CELEBDF_REAL or d in CELEBDF_FAKE:
            ds_root = posixpath.join(root, *dirs[:i])
            tests = side.celebdf_tests.get(ds_root.rstrip("/"))
            ident = stem.split("_")[0]
            group = f"celebdf:{ident}" if ident.startswith("id") else f"celebdf:{d}/{stem}"
            split = None
            if tests is not None:
                split = "test" if "/".join(parts[i:]) in tests else None
            label = "real" if d in CELEBDF_REAL else "fake"
            return VideoRecord(**base, dataset="celebdf", label=label, group=group, split=split)
        if d in ("original_sequences", "manipulated_sequences"):
            ds_root = posixpath.join(root, *dirs[:i])
            target = stem.split("_")[0]
            official = side.ffpp_splits.get(ds_root.rstrip("/"), {}).get(target)
            split, group = official if official else (None, f"ffpp:{target}")
            label = "real" if d == "original_sequences" else "fake"
            sub = dirs[i + 1] if i + 1 < len(dirs) else None
            # Google's DFD ships inside FF++'s layout but is its own dataset (other actors, other cameras)
            dataset = "dfd" if sub in DFD_FOLDERS else "ffpp"
            method = sub if label == "fake" else None
            return VideoRecord(**base, dataset=dataset, label=label, group=group, split=split, method=method)
    meta = side.dfdc.get(posixpath.dirname(path))
    if meta is not None:
        entry = meta.get(name)
        if entry is None or str(entry.get("label", "")).upper() not in ("REAL", "FAKE"):
            return VideoRecord(**base, dataset="dfdc", label=None, group=None, reason="unlabelled",
                               detail=f"not labelled in {DFDC_METADATA}")
        original = entry.get("original") or name
        return VideoRecord(**base, dataset="dfdc", label=entry["label"].lower(), group=f"dfdc:{_stem(original)}")
    for j in range(len(dirs) - 1, -1, -1):
        if dirs[j].lower() in ("real", "fake"):
            # the folder holding real/ and fake/ names the collection, so a dataset can be held out
            dataset = _SLUG.sub("-", dirs[j - 1]).strip("-").lower() if j > 0 else "generic"
            return VideoRecord(**base, dataset=dataset or "generic", label=dirs[j].lower(), group=f"generic:{stem}")
    return VideoRecord(**base, dataset="unknown", label=None, group=None, reason="unlabelled",
                       detail="no known layout (Celeb-DF, FaceForensics++, DFDC, real/ or fake/ folder)")


def _glob_root(pattern: str) -> str:
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if _GLOB_CHARS & set(part):
            return "/".join(parts[:i])
    return posixpath.dirname(pattern)


def _is_video(path: str) -> bool:
    return posixpath.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _records_from_listing(files: list[str], root: str) -> list[VideoRecord]:
    side = _SideFiles.load(files)
    return [_label_from_layout(f, root, side) for f in files if _is_video(f)]


_LABELS = {"real": "real", "fake": "fake", "0": "real", "1": "fake"}


def _records_from_manifest(manifest: str, labelled: bool = True) -> list[VideoRecord]:
    root = posixpath.dirname(manifest)
    reader = csv.DictReader(io.StringIO(_read_text(manifest)))
    columns = set(reader.fieldnames or [])
    needed = ("path", "label") if labelled else ("path",)
    if not set(needed) <= columns:
        raise InputError(f"{manifest}: needs columns '{','.join(needed)}' (optional 'split,group'); has {sorted(columns)}")
    records, seen = [], set()
    side = _SideFiles({}, {}, {})
    for line_no, row in enumerate(reader, start=2):
        raw = (row.get("path") or "").strip()
        if not raw:
            raise InputError(f"{manifest}:{line_no}: empty path")
        is_url = "://" in raw
        path = raw if is_url or raw.startswith("/") else posixpath.join(root, raw)
        inferred = _label_from_layout(path, root if path.startswith(root + "/") else "", side)
        label = _LABELS.get((row.get("label") or "").strip().lower())
        split = (row.get("split") or "").strip() or None
        group = (row.get("group") or "").strip() or inferred.group or f"manifest:{_stem(path)}"
        rec = replace(inferred, label=label, split=split, group=group, reason=None, detail="",
                      method=inferred.method if label == "fake" else None,
                      dataset=inferred.dataset if inferred.dataset != "unknown" else "manifest")
        if path in seen:
            rec = replace(rec, video=f"{rec.video}#line{line_no}", reason="duplicate",
                          detail=f"path listed again on line {line_no}")
        elif label is None:
            rec = replace(rec, reason="unlabelled", detail=f"line {line_no}: unknown label {row.get('label')!r}")
        elif split is not None and split not in SPLIT_NAMES:
            rec = replace(rec, reason="bad_split", detail=f"line {line_no}: unknown split {split!r}")
        seen.add(path)
        records.append(rec)
    return records


def list_videos(input_spec: str, labelled: bool = True, split_by: str = GROUP) -> list[VideoRecord]:
    """Every video named by `--input`, labelled and split (`assign_splits`), in a deterministic order.

    `labelled=False` lists the videos to judge (`detect --input`): a manifest needs only
    a `path` column and keeps its own row order, and nothing is split; a video's label and
    `unlabelled` reason are still filled in where they can be, and are the caller's to ignore."""
    spec = input_spec.rstrip("/") if input_spec not in ("/",) else input_spec
    if spec.lower().endswith(".csv"):
        if not _exists(spec):
            raise InputError(f"manifest not found: {spec}")
        records = _records_from_manifest(spec, labelled)
    elif _GLOB_CHARS & set(spec):
        records = _records_from_listing(_match(spec), _glob_root(spec))
    else:
        files = _match(spec + "/**")
        if not files:
            if _exists(spec) and _is_video(spec):
                files, spec = [spec], posixpath.dirname(spec)
            else:
                raise InputError(f"no files under {input_spec}")
        records = _records_from_listing(files, spec)
    if not records:
        raise InputError(f"no video files (by extension) in {input_spec}")
    if not labelled:
        return records
    return assign_splits(sorted(records, key=lambda r: r.video), split_by)


def assign_splits(records: list[VideoRecord], split_by: str = GROUP) -> list[VideoRecord]:
    """Fill in `split` where no official list gave one: 8:1:1 by group, or 8:1 train/val
    for a dataset whose official lists name only its test videos (Celeb-DF).

    `split_by` VIDEO cuts 8:1:1 by video instead, and PAIR leaves `split` empty, for each
    pair's key to decide (`pipeline.splits.hashed_split`); both override official lists
    and a manifest's `split` column, which split by group or identity: what they drop."""
    usable = [r for r in records if r.reason is None]
    if split_by in (VIDEO, PAIR):
        by_video = assign_groups(r.video for r in usable) if split_by == VIDEO else {}
        return [replace(r, split=by_video.get(r.video)) if r.reason is None else r for r in records]
    officially_tested = {r.dataset for r in usable if r.split == "test"}
    pending: dict[bool, list[str]] = {True: [], False: []}
    for r in usable:
        if r.split is None:
            pending[r.dataset in officially_tested].append(r.group)
    mapping = assign_groups(pending[False])
    mapping_tv = assign_groups(pending[True], names=("train", "val"), ratios=(8, 1))
    out = []
    for r in records:
        if r.reason is None and r.split is None:
            r = replace(r, split=(mapping_tv if r.dataset in officially_tested else mapping)[r.group])
        out.append(r)
    return out
