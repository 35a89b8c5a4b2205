"""Build the shards: `python -m pipeline.run --input ... --output ... [Beam options]`.

Locally the DirectRunner's own engine (the FnApiRunner) runs one worker thread per core in
this process; it is used directly because the DirectRunner would first try to fetch the
Prism runner binary, which fails offline. Threads, not processes: the work is FFmpeg (a
subprocess) and dlib's HOG, which releases the GIL, so two threads keep two cores busy,
and a build does not pay for starting, importing in and stopping a worker process per
core (1.7 s of a one-video build). `--direct_running_mode multi_processing` still gives
processes, and `--direct_num_workers` another number of workers. Any other `--runner`
(DataflowRunner, Flink, Spark, ...) is passed to Beam unchanged.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.dryrun import plan
from pipeline.graph import LOCAL_RUNNERS, build_pipeline
from pipeline.logs import configure_logs, quiet_out_of_space
from pipeline.options import BuildShardsOptions
from pipeline.progress import BuildProgress
from pipeline.transforms import kept_summary, remove_temp_files
from shards.info import FAILURES_NAME, INFO_NAME
from shards.lock import OutputBusy, output_lock
from shards.space import OutOfSpace, find_out_of_space

RERUN_BUILD = "run the same command again: it goes on from the videos done"


@dataclass(frozen=True)
class BuildResult:
    info: dict
    failures: list[dict]
    seconds: float

    @property
    def keyframes_per_s(self) -> float:
        return self.info.get("keyframes", 0) / self.seconds if self.seconds else 0.0


def run(argv: list[str]) -> BuildResult:
    """Run the whole build; returns what `_info.json` and `failures.jsonl` say. A local
    run shows its progress on stderr (`pipeline.progress`).

    The output is locked first (`shards.lock`: OutputBusy when another run holds it). A
    failed run leaves no temp file there; a full disk raises OutOfSpace saying what the
    run kept."""
    options = PipelineOptions(argv)
    output = options.view_as(BuildShardsOptions).output
    with output_lock(output, "build-shards"):
        return _run_locked(options, output)


def _run_locked(options: PipelineOptions, output: str) -> BuildResult:
    pipeline, videos = build_pipeline(options)
    local = options.view_as(StandardOptions).runner in LOCAL_RUNNERS
    with BuildProgress(output, videos) if local else contextlib.nullcontext() as progress:
        start = time.perf_counter()
        try:
            with quiet_out_of_space():
                pipeline.run().wait_until_finish()
        except Exception as exc:
            remove_temp_files(output)
            full = find_out_of_space(exc)
            if full is None:
                raise
            full.kept, full.rerun = kept_summary(output, videos), RERUN_BUILD
            raise full from None
        seconds = time.perf_counter() - start
        with FileSystems.open(FileSystems.join(output, INFO_NAME)) as f:
            info = json.load(f)
        if progress:
            pairs = sum(split["num_samples"] for split in info["splits"].values())
            progress.finish(info["videos"]["total"], pairs, info["keyframes"])
    with FileSystems.open(FileSystems.join(output, FAILURES_NAME)) as f:
        failures = [json.loads(line) for line in f.read().decode("utf-8").splitlines() if line]
    return BuildResult(info, failures, seconds)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    build = PipelineOptions(argv).view_as(BuildShardsOptions)
    configure_logs(build.verbose)
    if build.dry_run:
        print(plan(argv).summary())
        return
    try:
        result = run(argv)
    except (OutputBusy, OutOfSpace) as e:
        print(f"error: {e.line()}", file=sys.stderr)
        sys.exit(e.exit_code)
    print(json.dumps({"splits": {k: v["num_samples"] for k, v in result.info["splits"].items()},
                      "failures": result.info["failures"]}, indent=2))


if __name__ == "__main__":
    main()
