"""How much of Beam's and gRPC's own logging a build shows: WARNING and above, or, with
`--verbose`, INFO too.

The local runner's SDK workers are threads of the driver (`pipeline.run`), so their log
records are this process's own, under `apache_beam.runners.worker`, and the levels set here
cover them. With `--direct_running_mode multi_processing` they are separate processes: they
send their records to the driver, which logs each one again, as a one-line dump of the
protobuf ("Worker: ..."), and their level is set in the pipeline options the workers are
given (`default_sdk_harness_log_level`), so it reaches them.
Without `--verbose` the workers log ERROR (processes) or WARNING (threads) and above
only: what else they say at start-up ("Discarding unparseable args", "No
semi_persistent_directory found", "Creating insecure control channel", ...) is said by
every worker in every run and is about Beam's plumbing, not about the videos; a failing
DoFn still fails the run with its traceback.

A full disk is the exception: the run ends with one line that says where and how much
(`shards.space`), so while a build runs (`quiet_out_of_space`) the tracebacks the runner
and its in-process workers log and print for it, one per failed bundle and hundreds of
lines, are left out, at every level.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

from shards.space import mentions_out_of_space

LOGGERS = ("apache_beam", "grpc")
HARNESS_LEVEL_OPTION = "default_sdk_harness_log_level"
# where a failed bundle's traceback is logged: the DoFn runner, the SDK worker (threads),
# and the runner relaying a worker process's records
FAILURE_LOGGERS = ("apache_beam.runners.common", "apache_beam.runners.worker.sdk_worker",
                   "apache_beam.runners.portability.fn_api_runner.worker_handlers")


class _NoOutOfSpaceTracebacks(logging.Filter):
    """Drops the records of a bundle that failed on a full disk."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        return not mentions_out_of_space(text)


def configure_logs(verbose: bool) -> None:
    """Set this process's Beam and gRPC loggers; with `verbose`, make sure INFO records
    reach stderr (Python's last-resort handler prints WARNING and above only)."""
    level = logging.INFO if verbose else logging.WARNING
    for name in LOGGERS:
        logging.getLogger(name).setLevel(level)
    if verbose:
        logging.basicConfig(level=logging.INFO)  # a no-op where the caller configured logging


class _StderrWithoutOutOfSpace:
    """stderr, less the tracebacks Beam's SDK worker prints (not logs) for a failed bundle
    when the failure is a full disk; everything else passes, progress lines included."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._dropped = False  # print() writes its end="\n" on its own, after the text

    def write(self, text: str) -> int:
        dropped, self._dropped = self._dropped, False
        if (text.startswith("Traceback (most recent call last)") and mentions_out_of_space(text)) or (dropped and text == "\n"):
            self._dropped = text != "\n"
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def quiet_out_of_space() -> Iterator[None]:
    """Leave out a full disk's tracebacks (logged and printed) while the block runs."""
    drop = _NoOutOfSpaceTracebacks()
    loggers = [logging.getLogger(name) for name in FAILURE_LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    stderr, sys.stderr = sys.stderr, _StderrWithoutOutOfSpace(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stderr = stderr
        for logger in loggers:
            logger.removeFilter(drop)


def harness_log_level(verbose: bool) -> str:
    """The SDK workers' log level, as the `default_sdk_harness_log_level` option spells it."""
    return "INFO" if verbose else "ERROR"
