"""When a long job writes a plain progress line: shared by `build-shards` and
`train-from-shards` (it lives here because both halves import `shards/`, and it needs
nothing).

On a terminal a progress display is redrawn in place with carriage returns. In a log file
(a batch job, CI, `nohup`) every redraw would become a line of its own, so there the jobs
write a plain line every `NOISETRACE_PROGRESS_S` seconds instead (default 30; 0: at every
update).
"""
from __future__ import annotations

import os
import sys
import time
from typing import TextIO

PROGRESS_ENV = "NOISETRACE_PROGRESS_S"
DEFAULT_EVERY_S = 30.0


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
