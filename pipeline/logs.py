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
"""
from __future__ import annotations

import logging

LOGGERS = ("apache_beam", "grpc")
HARNESS_LEVEL_OPTION = "default_sdk_harness_log_level"


def configure_logs(verbose: bool) -> None:
    """Set this process's Beam and gRPC loggers; with `verbose`, make sure INFO records
    reach stderr (Python's last-resort handler prints WARNING and above only)."""
    level = logging.INFO if verbose else logging.WARNING
    for name in LOGGERS:
        logging.getLogger(name).setLevel(level)
    if verbose:
        logging.basicConfig(level=logging.INFO)  # a no-op where the caller configured logging


def harness_log_level(verbose: bool) -> str:
    """The SDK workers' log level, as the `default_sdk_harness_log_level` option spells it."""
    return "INFO" if verbose else "ERROR"
