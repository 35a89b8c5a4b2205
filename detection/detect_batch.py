"""`detect` over many videos: what to judge, one video judged without ending the run,
results.csv written row by row, and the progress line `build-shards` shows.

A batch of clips from the field holds files that are truncated, empty or not video at
all; each becomes a row with its reason and the run goes on. Rows are flushed as they are
written, so a run stopped with Ctrl-C keeps every video judged so far.
"""
from __future__ import annotations

import contextlib
import csv
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from detection.verdict import Threshold, VideoVerdict, detect_video
from pipeline.pairs import ExtractOptions, Failure
from shards.info import is_url
from shards.progress import ProgressLines, Tally

CSV_COLUMNS = ("video", "verdict", "p_fake", "threshold", "frames", "reason")


@dataclass(frozen=True)
class Item:
    """One video to judge: what to open (a local path or a URL) and the name it is shown by."""

    path: str
    name: str


def list_inputs(videos: tuple[str, ...], input_spec: str | None) -> list[Item]:
    """The videos named on the command line, in that order, then those `--input` lists
    (`pipeline.inputs.list_videos`, labels optional: a folder in path order, a manifest in
    its row order), named relative to the folder or manifest."""
    items = [Item(v, v) for v in videos]
    if input_spec:
        try:
            from pipeline.inputs import list_videos
        except ImportError as e:  # a `detect`-only install has no Beam
            raise ValueError(f"--input lists videos as build-shards does, which needs {e.name}: "
                             "pip install 'noisetrace[pipeline]', or name the videos as arguments") from e
        items += [Item(r.path, r.video) for r in list_videos(input_spec, labelled=False)]
    return items


@contextlib.contextmanager
def _local(path: str, timeout_s: float) -> Iterator[str]:
    """A path ffmpeg can read: the file itself, or a temp copy of a remote object."""
    if not is_url(path):
        yield path
        return
    from pipeline.fetch import fetched

    with fetched(path, timeout_s) as (local, _):
        yield local


def judge(item: Item, model, options: ExtractOptions, device, detector, threshold: Threshold, evidence=None) -> VideoVerdict:
    """One video's verdict. A file that cannot be fetched, opened or decoded is an
    `unreadable` verdict with the reason, as is any other error inside one video (named by
    its type and message), so one bad file never ends a batch; `evidence` (the report's)
    sees each pair, and a frame of a video without one."""
    try:
        with _local(item.path, options.timeout_s) as local:
            verdict = detect_video(local, model, options, device, detector, video=item.name, threshold=threshold,
                                   on_pair=evidence.add if evidence is not None else None)
            if evidence is not None and not verdict.keyframes:
                evidence.first_frame(local, options)
            return verdict
    except Exception as e:  # noqa: BLE001 - the row says what it was; the batch goes on
        reason = "timeout" if isinstance(e, TimeoutError) else "missing_file" if isinstance(e, FileNotFoundError) else (
            "unreadable" if isinstance(e, OSError) else "error")
        detail = f"{type(e).__name__}: {e}"
        print(f"{item.name}: {reason}: {detail}", file=sys.stderr, flush=True)
        return VideoVerdict(item.name, None, failures=[Failure(item.name, reason, None, detail).to_json()], threshold=threshold)


class ResultsCsv:
    """`--output`: a header, then one row per video, flushed as it is written; nothing
    without a path."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._writer = None

    def __enter__(self) -> "ResultsCsv":
        if self.path:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._file = open(self.path, "w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            self._writer.writerow(CSV_COLUMNS)
            self._file.flush()
        return self

    def write(self, v: VideoVerdict) -> None:
        if self._writer is None:
            return
        p = "" if v.fake_probability is None else f"{v.fake_probability:.6f}"
        self._writer.writerow([v.video, v.verdict, p, f"{v.threshold.value:.6f}", len(v.keyframes), v.reason])
        self._file.flush()

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()


class VideoProgress:
    """build-shards' progress line over the videos judged (videos done / total, pairs,
    keyframes/s, ETA): redrawn on a terminal, plain lines in a log (`ProgressLines`);
    silent for a single video."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.lines = ProgressLines(stream)
        self.tally = Tally(total)
        self.quiet = total < 2
        self._started = time.perf_counter()

    def __enter__(self) -> "VideoProgress":
        self._started = time.perf_counter()
        self._show()
        return self

    def clear(self) -> None:
        """Wipe the redrawn line before a result is printed to the same terminal."""
        if self.lines.redraw and not self.quiet:
            self.lines.stream.write("\r\x1b[K")
            self.lines.stream.flush()

    def done(self, v: VideoVerdict) -> None:
        self.tally.videos += 1
        self.tally.pairs += len(v.keyframes)
        self.tally.keyframes += len(v.keyframes) + sum(1 for f in v.failures if "frame_index" in f)
        if self.tally.videos < self.tally.total and (self.lines.redraw or self.lines.due()):
            self._show()

    def __exit__(self, exc_type, *exc) -> None:
        self._show(finished=exc_type is None)
        if not self.quiet:
            self.lines.close()

    def _show(self, finished: bool = False) -> None:
        if not self.quiet:
            self.lines.show(self.tally.line(time.perf_counter() - self._started, bar=self.lines.redraw, finished=finished))
