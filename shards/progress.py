"""When a long job writes a plain progress line, and what a job over videos shows in it:
shared by `build-shards`, `train-from-shards` and `detect` (it lives here because both
halves import `shards/`, and it needs nothing).

On a terminal a progress display is redrawn in place with carriage returns. In a log file
(a batch job, CI, `nohup`) every redraw would become a line of its own, so there the jobs
write a plain line every `NOISETRACE_PROGRESS_S` seconds instead (default 30; 0: at every
update).
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import TextIO

PROGRESS_ENV = "NOISETRACE_PROGRESS_S"
DEFAULT_EVERY_S = 30.0
BAR_WIDTH = 12


class ProgressLines:
    """Whether the stream is a terminal (`redraw`), and when a plain line is due if not."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.redraw = self.stream.isatty()
        self.every_s = float(os.environ.get(PROGRESS_ENV, DEFAULT_EVERY_S))
        self._last = time.monotonic()

    def due(self, updated: bool = True) -> bool:
        """True when a plain line should be written now: never on a terminal; else once
        `every_s` has passed since the last one, or, with `every_s` 0, at each update."""
        if self.redraw:
            return False
        now = time.monotonic()
        if (updated and self.every_s == 0) or (self.every_s > 0 and now - self._last >= self.every_s):
            self._last = now
            return True
        return False

    def show(self, text: str) -> None:
        """On a terminal, `text` redrawn in place (cut to the terminal's width, or it wraps
        and stacks); elsewhere, as a line of its own."""
        if self.redraw:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + text[:width] + "\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line, so what follows starts on a line of its own."""
        if self.redraw:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Tally:
    """What the finished videos add up to."""

    total: int
    videos: int = 0
    pairs: int = 0
    keyframes: int = 0

    def line(self, seconds: float, bar: bool, finished: bool = False) -> str:
        """One line, most telling first, so a narrow terminal cuts the least of it."""
        done = self.videos / self.total if self.total else 1.0
        head = f"videos {self.videos}/{self.total} {done:.0%}"
        if bar:
            filled = round(done * BAR_WIDTH)
            head += f" [{'#' * filled}{'.' * (BAR_WIDTH - filled)}]"
        rate = self.keyframes / seconds if seconds > 0 else 0.0
        if finished:
            state = "done"
        elif self.videos >= self.total:
            state = "writing shards"
        elif self.videos:
            state = f"ETA {clock(seconds * (self.total - self.videos) / self.videos)}"
        else:
            state = "ETA unknown"
        return f"{head} {self.pairs} pairs | {rate:.1f} keyframes/s | {state} | {clock(seconds)} elapsed"


def clock(seconds: float) -> str:
    """h:mm:ss"""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
