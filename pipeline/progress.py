"""A local build's progress on stderr: videos done / total, pairs, keyframes/s, ETA.

The local runner says nothing until the whole pipeline has run (its counters are read at
the end), which on a 6,000-video set is hours of silence. So the driver counts what the
workers leave on disk: every video, done, writes a note with its keyframe and pair counts
beside the spill files (`transforms.note_path`); a driver thread lists and reads the new
ones while the pipeline runs. Notes left by an earlier, killed run into the same output
are told apart by their modification time, so they are not counted until rewritten.

On a terminal one line is redrawn in place; elsewhere plain lines are written, paced by
`shards.progress.ProgressLines`, plus one when the build starts and one when it ends.
"""
from __future__ import annotations

import json
import threading
import time
from typing import TextIO

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from pipeline.transforms import NOTE_SUFFIX, SPILL_DIR
from shards.progress import ProgressLines, Tally

POLL_S = 1.0
class BuildProgress:
    """Shows the progress of a build into `output` while the `with` block runs; call
    `finish` with the build's own totals before leaving it, so the last line is exact
    (the notes are deleted with the spill files before the driver could read the last)."""

    def __init__(self, output: str, total: int, stream: TextIO | None = None) -> None:
        self.lines = ProgressLines(stream)
        self.tally = Tally(total)
        self._pattern = FileSystems.join(output, SPILL_DIR, "*" + NOTE_SUFFIX)
        self._stale: dict[str, float] = {}  # an earlier run's notes -> their modification time
        self._counted: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="noisetrace progress", daemon=True)
        self._started = time.perf_counter()

    def __enter__(self) -> "BuildProgress":
        self._stale = self._notes()  # not counted until a worker rewrites them
        self._show()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.lines.close()

    def finish(self, videos: int, pairs: int, keyframes: int) -> None:
        """The last line, from the build's totals."""
        self._stop.set()
        self._thread.join()
        self.tally.videos, self.tally.pairs, self.tally.keyframes = videos, pairs, keyframes
        self._show(finished=True)

    def _notes(self) -> dict[str, float]:
        (match,) = FileSystems.match([self._pattern])
        return {m.path: m.last_updated_in_seconds for m in match.metadata_list}

    def _count_new(self) -> bool:
        """Add the notes written since the last look; whether there were any. A note is
        counted once, even when a retried bundle writes it again."""
        try:
            notes = self._notes()
        except BeamIOError:  # a listing that failed (an object store's hiccup): look again next time
            return False
        updated = False
        for path, mtime in notes.items():
            if path in self._counted or self._stale.get(path) == mtime:
                continue
            try:
                with FileSystems.open(path) as f:
                    note = json.loads(f.read())
            except (OSError, ValueError):
                continue  # still being written, or already deleted: looked at again next time
            self._counted.add(path)
            self.tally.videos += 1
            self.tally.pairs += note["pairs"]
            self.tally.keyframes += note["keyframes"]
            updated = True
        return updated

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            updated = self._count_new()
            if self.lines.redraw or self.lines.due(updated):
                self._show()

    def _show(self, finished: bool = False) -> None:
        self.lines.show(self.tally.line(time.perf_counter() - self._started, bar=self.lines.redraw, finished=finished))
