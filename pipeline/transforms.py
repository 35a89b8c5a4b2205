"""Beam transforms of the shard builder; the work itself lives in the pure modules.

Pixels never pass through Beam's shuffles. Each video's pairs are written once, by the
worker that extracted them, to a spill file of their own (`OUTPUT/_spill/`); only keys
travel on: grouped per split, dealt round-robin over the sorted keys (so each shard mixes
videos), and each shard is then written by one worker, which copies its pairs' bytes out
of the spill files, sorted by key, to a temporary name and renames it. `_info.json` and
`failures.jsonl` are written last, from sorted lists, and the spill files are deleted,
with the note each video leaves there when it is done (what the driver's progress counts).
Until then a note also lets a rerun into the same output (after a kill or a full disk,
docs/faults.md) take its video as done instead of extracting it again.
So a run's memory grows with the number of keys (tens of bytes a pair), not with pixels,
also on the local runner, whose shuffles are held in memory; and shards are deterministic.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.fetch import NotAFile, fetched
from pipeline.inputs import VideoRecord
from pipeline.keyframes import ffmpeg_exe
from pipeline.pairs import ExtractOptions, Failure, frame_pairs, to_sample
from pipeline.splits import GROUP, PAIR, hashed_split
from shards.info import FAILURES_NAME, INFO_NAME, ShardRecord, build_info, dumps_info
from shards.raw import RawSample, read_members
from shards.schema import PairSample
from shards.space import is_out_of_space, out_of_space
from shards.writer import TarSample, shard_name, write_shard

NS = "noisetrace"
FAILURES = "failures"
SUMMARY = "summary"
SHARD = "shard"
SPILL_DIR = "_spill"
NOTE_SUFFIX = ".done.json"
RETRIED = ("timeout",)  # a video that failed so is extracted again by a rerun: the stall may be over

ShardEntry = tuple[str, str, str]  # (sample key, spill file, label)


@dataclass(frozen=True)
class VideoPairs:
    """One video's spilled pairs: the file that holds them and their keys."""

    video: str
    split: str
    label: str
    path: str
    keys: tuple[str, ...]


def _spilled(output: str, video: str, suffix: str) -> str:
    """A file of the video's under `_spill/`: named by a hash of its name, so a retried
    bundle or a rerun overwrites the same file instead of leaving a second copy."""
    return FileSystems.join(output, SPILL_DIR, hashlib.sha1(video.encode("utf-8")).hexdigest() + suffix)


def spill_path(output: str, video: str) -> str:
    """The file that holds the video's pairs, when it has any."""
    return _spilled(output, video, ".tar")


def note_path(output: str, video: str) -> str:
    """Every video's note, written when it is done (its keyframe and pair counts): what
    the driver counts to show progress while the runner itself says nothing."""
    return _spilled(output, video, NOTE_SUFFIX)


def write_atomically(path: str, samples: Iterable[TarSample]) -> int:
    """`write_shard` through Beam's FileSystems, so `gs://` and other remote outputs work."""
    return write_shard(path, samples, opener=FileSystems.create,
                       rename=lambda src, dst: FileSystems.rename([src], [dst]),
                       remove=lambda tmp: FileSystems.delete([tmp]))


def write_file(path: str, data: bytes) -> None:
    """A small file (a note, `_info.json`, `failures.jsonl`) through FileSystems, removed
    again when the write fails, so a full disk leaves no half of it; OutOfSpace then."""
    try:
        with FileSystems.create(path) as f:
            f.write(data)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            FileSystems.delete([path])
        if is_out_of_space(exc):
            raise out_of_space(exc, path, len(data)) from exc  # type: ignore[arg-type]
        raise


class ExtractPairsDoFn(beam.DoFn):
    """VideoRecord -> VideoPairs (main; its pairs spilled under `output`), Failure
    (`failures`), per-video summary (`summary`)."""

    def __init__(self, options: ExtractOptions, output: str, split_by: str = GROUP) -> None:
        self.options = options
        self.output = output
        self.split_by = split_by
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
        done = self._done(record)
        if done is not None:  # an earlier run into this output extracted it: go on from there
            failures = [Failure(**f) for f in done["failures"]]
            keys, keyframes = tuple(done["keys"]), done["keyframes"]
        else:
            failures, samples, keyframes = self._extract(record)
            keys = tuple(sorted(samples))
            if samples:  # failing to write our own output is not the video's fault: OutOfSpace fails the run
                write_atomically(spill_path(self.output, record.video), samples.values())
        for failure in failures:
            yield self._fail(failure)
        if keys:
            Metrics.counter(NS, "faces").inc(len(keys))
            Metrics.counter(NS, "pairs").inc(len(keys))
            by_split: dict[str, list[str]] = {}
            for key in keys:
                by_split.setdefault(self._split(record, key), []).append(key)
            for split, split_keys in sorted(by_split.items()):
                yield VideoPairs(record.video, split, record.label, spill_path(self.output, record.video), tuple(split_keys))
        Metrics.counter(NS, "keyframes").inc(keyframes)
        summary = {"video": record.video, "keyframes": keyframes, "pairs": len(keys)}
        note = {**summary, "keys": list(keys), "failures": [f.to_json() for f in failures], "made_by": self._made_by(record)}
        write_file(note_path(self.output, record.video), json.dumps(note).encode("utf-8"))  # last: the video is done
        yield beam.pvalue.TaggedOutput(SUMMARY, summary)

    def _split(self, record: VideoRecord, key: str) -> str:
        """A pair's split: its video's, or with `--split-by pair` its own, by its key."""
        return hashed_split(key) if self.split_by == PAIR else record.split

    def _made_by(self, record: VideoRecord) -> str:
        """What a video's spill file depends on: its record and the extraction options."""
        text = json.dumps({"record": asdict(record), "options": self.options.recorded()}, sort_keys=True, default=str)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def _done(self, record: VideoRecord) -> dict | None:
        """The note an earlier run into this output left for the video, when it was made
        from the same record and options and its spill file is there; else None."""
        path = note_path(self.output, record.video)
        try:
            if not FileSystems.exists(path):
                return None
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                note = json.loads(f.read())
        except Exception:  # unreadable: extract again (object stores raise their own error types)
            return None
        if not isinstance(note, dict) or note.get("made_by") != self._made_by(record) or "keys" not in note:
            return None
        if any(f["reason"] in RETRIED for f in note["failures"]):
            return None
        if note["keys"] and not FileSystems.exists(spill_path(self.output, record.video)):
            return None
        return note

    def _extract(self, record: VideoRecord) -> tuple[list[Failure], dict[str, PairSample], int]:
        """(failures, pairs by key, keyframes looked at) of one video."""
        failures: list[Failure] = []
        keyframes = 0
        samples: dict[str, PairSample] = {}
        if record.reason:
            return [Failure(record.video, record.reason, None, record.detail)], samples, keyframes
        meta = record.meta()
        try:
            with fetched(record.path, self.options.timeout_s) as (local, size):
                if size == 0:
                    failures.append(Failure(record.video, "empty_file", None, "zero bytes"))
                for item in frame_pairs(local, record.video, self.detector, self.options) if size else ():
                    if isinstance(item, Failure):
                        if item.frame_index is not None:
                            keyframes += 1
                        failures.append(item)
                        continue
                    if item.native is None or item.native.window == 0:  # a keyframe's windows count once
                        keyframes += 1
                    sample = to_sample(item, meta)
                    if self.split_by == PAIR:
                        sample = replace(sample, meta={**sample.meta, "split": self._split(record, sample.key)})
                    # two frames estimated at the same index (VFR) give one key: keep the first
                    samples.setdefault(sample.key, sample)
        except OSError as e:  # TimeoutError is one: a stat, open or copy that never returned
            if is_out_of_space(e):  # the local copy of a remote video: our disk, not the video
                raise
            reason = ("timeout" if isinstance(e, TimeoutError) else "missing_file" if isinstance(e, FileNotFoundError)
                      else "not_a_file" if isinstance(e, NotAFile) else "unreadable")
            failures.append(Failure(record.video, reason, None, f"{type(e).__name__}: {e}"))
        return failures, samples, keyframes


def assign_shards(split_videos: tuple[str, Iterable[VideoPairs]], shard_size: int, min_shards: int):
    """(split, its videos) -> ((split, shard index), entries): round-robin over the sorted keys."""
    split, videos = split_videos
    entries: list[ShardEntry] = sorted((key, v.path, v.label) for v in videos for key in v.keys)
    n = max(math.ceil(len(entries) / shard_size), min(min_shards, len(entries)))
    for index in range(n):
        yield (split, index), entries[index::n]


class WriteShardDoFn(beam.DoFn):
    """((split, index), entries) -> ShardRecord, after copying the entries' pairs out of
    their spill files into the shard, written atomically."""

    def __init__(self, output: str) -> None:
        self.output = output

    def process(self, item: tuple[tuple[str, int], list[ShardEntry]]):
        (split, index), entries = item
        keys_by_file: dict[str, list[str]] = {}
        for key, path, _ in entries:
            keys_by_file.setdefault(path, []).append(key)
        labels = {key: label for key, _, label in entries}
        samples = []
        for path, keys in sorted(keys_by_file.items()):
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                samples += [RawSample(k, members, labels[k]) for k, members in read_members(f, keys).items()]
        name = f"{split}/{shard_name(index)}"
        n = write_atomically(FileSystems.join(self.output, split, shard_name(index)), samples)
        Metrics.counter(NS, "shards").inc()
        yield ShardRecord(split, name, n, dict(Counter(s.label for s in samples)))


def finalize(outcomes: list[tuple[str, object]], output: str, extra: dict) -> dict:
    """Write `_info.json` and `failures.jsonl`; delete the spill files and stale shards of earlier runs.

    `outcomes` are every shard record, failure and video summary of the run, each tagged
    with its kind (`SHARD`, `FAILURES`, `SUMMARY`): one list, so the run ends in one
    combine instead of three (each local combine is a runner stage, about 0.3 s)."""
    by_kind: dict[str, list] = {SHARD: [], FAILURES: [], SUMMARY: []}
    for kind, item in outcomes:
        by_kind[kind].append(item)
    shards: list[ShardRecord] = by_kind[SHARD]
    summaries: list[dict] = by_kind[SUMMARY]
    failures: list[Failure] = sorted(by_kind[FAILURES], key=lambda f: (f.video, -1 if f.frame_index is None else f.frame_index, f.reason))
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
    write_file(FileSystems.join(output, FAILURES_NAME),
               "".join(json.dumps(rec.to_json(), sort_keys=True) + "\n" for rec in failures).encode("utf-8"))
    keep = {FileSystems.join(output, r.filename) for r in shards}
    patterns = [FileSystems.join(output, "*", "pairs-*.tar"), *_temp_patterns(output), FileSystems.join(output, SPILL_DIR, "*")]
    stale = [m.path for m in _matching(patterns) if m.path not in keep]
    if stale:
        FileSystems.delete(stale)
    spill_dir = FileSystems.join(output, SPILL_DIR)
    if FileSystems.exists(spill_dir):  # a local directory; object stores have no empty folders
        FileSystems.delete([spill_dir])
    write_file(FileSystems.join(output, INFO_NAME), dumps_info(info).encode("utf-8"))
    return info


def _temp_patterns(output: str) -> list[str]:
    """Where a run's temp files lie: shards' and spill files' (`shards.writer.temp_path`)."""
    return [FileSystems.join(output, "*", ".pairs-*.tmp"), FileSystems.join(output, SPILL_DIR, ".*.tmp")]


def _matching(patterns: list[str]) -> list:
    return [m for r in FileSystems.match(patterns) for m in r.metadata_list]


def remove_temp_files(output: str) -> None:
    """Delete the temp files a failed run left in `output` (the run holds its lock, so
    none is another run's); what is whole (spill files, their notes, shards) stays."""
    temps = [m.path for m in _matching(_temp_patterns(output))]
    if temps:
        FileSystems.delete(temps)


def kept_summary(output: str, videos: int) -> str:
    """What a stopped build keeps in `output`: the videos done and their spill files."""
    spilled = _matching([FileSystems.join(output, SPILL_DIR, "*")])
    done = sum(m.path.endswith(NOTE_SUFFIX) for m in spilled)
    pairs = sum(m.path.endswith(".tar") for m in spilled)
    return f"{done} of {videos} videos done, their pairs in {pairs} spill files under {FileSystems.join(output, SPILL_DIR)}"


class BuildShards(beam.PTransform):
    """VideoRecords -> shards, `_info.json` and `failures.jsonl` under `output`."""

    def __init__(self, output: str, options: ExtractOptions, shard_size: int, min_shards: int, extra: dict,
                 split_by: str = GROUP) -> None:
        super().__init__()
        self.output = output
        self.options = options
        self.split_by = split_by
        self.shard_size = shard_size
        self.min_shards = min_shards
        self.extra = extra

    def expand(self, records):
        results = (
            records
            | "Spread" >> beam.Reshuffle()
            | "Extract" >> beam.ParDo(ExtractPairsDoFn(self.options, self.output, self.split_by)).with_outputs(FAILURES, SUMMARY, main="pairs")
        )
        shards = (
            results.pairs
            | "BySplit" >> beam.Map(lambda v: (v.split, v))
            | "GroupSplits" >> beam.GroupByKey()
            | "Assign" >> beam.FlatMap(assign_shards, self.shard_size, self.min_shards)
            | "SpreadShards" >> beam.Reshuffle()
            | "Write" >> beam.ParDo(WriteShardDoFn(self.output))
        )
        options = {**self.extra, "options": {**self.extra.get("options", {}), **self.options.recorded()}}
        tagged = [
            pcoll | f"Tag{kind.title()}" >> beam.Map(lambda item, kind: (kind, item), kind)
            for kind, pcoll in ((SHARD, shards), (FAILURES, results[FAILURES]), (SUMMARY, results[SUMMARY]))
        ]
        return (
            tagged
            | "Outcomes" >> beam.Flatten()
            | "AllOutcomes" >> beam.combiners.ToList()
            | "Finalize" >> beam.Map(finalize, self.output, options)
        )
