"""Beam transforms of the shard builder; the work itself lives in the pure modules.

Shards are deterministic: every pair's shard is decided from the sorted keys of its split
(round-robin, so each shard mixes videos), each shard is written sorted by key by one
worker to a temporary name and renamed, and `_info.json` / `failures.jsonl` are written
last, from sorted lists.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import asdict

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.inputs import VideoRecord
from pipeline.keyframes import ffmpeg_exe
from pipeline.pairs import ExtractOptions, Failure, FramePair, frame_pairs, to_sample
from shards.info import FAILURES_NAME, INFO_NAME, ShardRecord, build_info, dumps_info
from shards.schema import PairSample
from shards.writer import shard_name, write_shard

NS = "noisetrace"
FAILURES = "failures"
SUMMARY = "summary"


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local path for ffmpeg: the file itself, or a temp copy of a remote object."""
    if "://" not in path:
        yield path
        return
    if not FileSystems.exists(path):
        # Object stores raise their own error types for a missing object (GCS: NotFound,
        # not an OSError), which would fail the bundle instead of recording the video.
        raise FileNotFoundError(path)
    suffix = posixpath.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="noisetrace-")
    try:
        with os.fdopen(fd, "wb") as out, FileSystems.open(path) as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        yield tmp
    finally:
        os.unlink(tmp)


class ExtractPairsDoFn(beam.DoFn):
    """VideoRecord -> PairSample (main), Failure (`failures`), per-video summary (`summary`)."""

    def __init__(self, options: ExtractOptions) -> None:
        self.options = options
        self.detector = None

    def setup(self) -> None:
        # Heavy, unpicklable-in-general objects are made on the worker, never pickled.
        self.detector = self.options.detector()
        ffmpeg_exe()

    def _fail(self, failure: Failure):
        Metrics.counter(NS, f"failure_{failure.reason}").inc()
        return beam.pvalue.TaggedOutput(FAILURES, failure)

    def process(self, record: VideoRecord):
        Metrics.counter(NS, "videos").inc()
        keyframes = pairs = 0
        if record.reason:
            yield self._fail(Failure(record.video, record.reason, None, record.detail))
        else:
            meta = {k: getattr(record, k) for k in ("video", "dataset", "label", "split", "group")}
            try:
                with local_copy(record.path) as local:
                    if not os.path.isfile(local):
                        raise FileNotFoundError(record.path)
                    if os.path.getsize(local) == 0:
                        yield self._fail(Failure(record.video, "empty_file", None, "zero bytes"))
                        local = None
                    seen: set[str] = set()
                    for item in frame_pairs(local, record.video, self.detector, self.options) if local else ():
                        if isinstance(item, Failure):
                            if item.frame_index is not None:
                                keyframes += 1
                            yield self._fail(item)
                            continue
                        keyframes += 1
                        sample = to_sample(item, meta)
                        if sample.key in seen:  # two frames estimated at the same index (VFR)
                            continue
                        seen.add(sample.key)
                        pairs += 1
                        Metrics.counter(NS, "faces").inc()
                        Metrics.counter(NS, "pairs").inc()
                        yield sample
            except (FileNotFoundError, PermissionError, OSError) as e:
                reason = "missing_file" if isinstance(e, FileNotFoundError) else "unreadable"
                yield self._fail(Failure(record.video, reason, None, f"{type(e).__name__}: {e}"))
        Metrics.counter(NS, "keyframes").inc(keyframes)
        yield beam.pvalue.TaggedOutput(SUMMARY, {"video": record.video, "keyframes": keyframes, "pairs": pairs})


def assign_shards(split_keys: tuple[str, list[str]], shard_size: int, min_shards: int):
    """(split, keys) -> (key, (split, shard index)): round-robin over the sorted keys."""
    split, keys = split_keys
    keys = sorted(keys)
    n = max(math.ceil(len(keys) / shard_size), min(min_shards, len(keys)))
    for i, key in enumerate(keys):
        yield key, (split, i % n)


def _join_assignment(item):
    key, grouped = item
    (where,) = grouped["shard"]
    (sample,) = grouped["sample"]
    return where, sample


class WriteShardDoFn(beam.DoFn):
    """((split, index), samples) -> ShardRecord, after writing the shard atomically."""

    def __init__(self, output: str) -> None:
        self.output = output

    def process(self, item):
        (split, index), samples = item
        samples = list(samples)
        name = f"{split}/{shard_name(index)}"
        n = write_shard(
            FileSystems.join(self.output, split, shard_name(index)),
            samples,
            opener=FileSystems.create,
            rename=lambda src, dst: FileSystems.rename([src], [dst]),
        )
        counts: dict[str, int] = {}
        for s in samples:
            counts[s.meta["label"]] = counts.get(s.meta["label"], 0) + 1
        Metrics.counter(NS, "shards").inc()
        yield ShardRecord(split, name, n, counts)


def finalize(_, output: str, shards: list[ShardRecord], failures: list[Failure], summaries: list[dict], extra: dict) -> dict:
    """Write `_info.json` and `failures.jsonl`, and delete stale shards of earlier runs."""
    failures = sorted(failures, key=lambda f: (f.video, -1 if f.frame_index is None else f.frame_index, f.reason))
    by_reason: dict[str, int] = {}
    for f in failures:
        by_reason[f.reason] = by_reason.get(f.reason, 0) + 1
    with_pairs = sum(1 for s in summaries if s["pairs"])
    info = build_info(shards, {
        **extra,
        "failures": dict(sorted(by_reason.items())),
        "videos": {"total": len(summaries), "with_pairs": with_pairs, "without_pairs": len(summaries) - with_pairs},
        "keyframes": sum(s["keyframes"] for s in summaries),
    })
    with FileSystems.create(FileSystems.join(output, FAILURES_NAME)) as f:
        for rec in failures:
            f.write((json.dumps(rec.to_json(), sort_keys=True) + "\n").encode("utf-8"))
    keep = {FileSystems.join(output, r.filename) for r in shards}
    patterns = [FileSystems.join(output, "*", name) for name in ("pairs-*.tar", ".pairs-*.tmp")]
    stale = [m.path for r in FileSystems.match(patterns) for m in r.metadata_list if m.path not in keep]
    if stale:
        FileSystems.delete(stale)
    with FileSystems.create(FileSystems.join(output, INFO_NAME)) as f:
        f.write(dumps_info(info).encode("utf-8"))
    return info


class BuildShards(beam.PTransform):
    """VideoRecords -> shards, `_info.json` and `failures.jsonl` under `output`."""

    def __init__(self, output: str, options: ExtractOptions, shard_size: int, min_shards: int, extra: dict) -> None:
        super().__init__()
        self.output = output
        self.options = options
        self.shard_size = shard_size
        self.min_shards = min_shards
        self.extra = extra

    def expand(self, records):
        results = (
            records
            | "Spread" >> beam.Reshuffle()
            | "Extract" >> beam.ParDo(ExtractPairsDoFn(self.options)).with_outputs(FAILURES, SUMMARY, main="pairs")
        )
        pairs = results.pairs
        keyed = pairs | "ByKey" >> beam.Map(lambda s: (s.key, s))
        assignment = (
            pairs
            | "SplitKeys" >> beam.Map(lambda s: (s.meta["split"], s.key))
            | "GroupSplits" >> beam.GroupByKey()
            | "Assign" >> beam.FlatMap(assign_shards, self.shard_size, self.min_shards)
        )
        shards = (
            {"shard": assignment, "sample": keyed}
            | "Join" >> beam.CoGroupByKey()
            | "ToShard" >> beam.Map(_join_assignment)
            | "GroupShards" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(WriteShardDoFn(self.output))
        )
        as_list = beam.pvalue.AsSingleton
        return (
            records.pipeline
            | "Once" >> beam.Create([None])
            | "Finalize" >> beam.Map(
                finalize,
                self.output,
                as_list(shards | "ShardList" >> beam.combiners.ToList()),
                as_list(results[FAILURES] | "FailureList" >> beam.combiners.ToList()),
                as_list(results[SUMMARY] | "SummaryList" >> beam.combiners.ToList()),
                {**self.extra, "options": {**self.extra.get("options", {}), **asdict(self.options)}},
            )
        )
