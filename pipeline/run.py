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
from importlib import metadata

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from pipeline.fetch import within
from pipeline.inputs import InputError, VideoRecord, list_videos
from pipeline.logs import HARNESS_LEVEL_OPTION, configure_logs, harness_log_level, quiet_out_of_space
from pipeline.options import BuildShardsOptions
from pipeline.progress import BuildProgress
from pipeline.transforms import BuildShards, kept_summary, remove_temp_files
from shards.info import FAILURES_NAME, INFO_NAME
from shards.lock import OutputBusy, output_lock
from shards.space import OutOfSpace, find_out_of_space

LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")
RERUN_BUILD = "run the same command again: it goes on from the videos done"
VERSIONED = ("noisetrace", "apache-beam", "dlib-bin", "ffmpeg-python", "imageio-ffmpeg", "webdataset", "numpy", "pillow")


@dataclass(frozen=True)
class BuildResult:
    info: dict
    failures: list[dict]
    seconds: float

    @property
    def keyframes_per_s(self) -> float:
        return self.info.get("keyframes", 0) / self.seconds if self.seconds else 0.0


def _versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _runner(options: PipelineOptions):
    std = options.view_as(StandardOptions)
    if std.runner in LOCAL_RUNNERS:
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        from apache_beam.runners.portability.fn_api_runner.fn_runner import ExtendedProvisionInfo
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        direct = options.view_as(DirectOptions)
        given = options.get_all_options(drop_default=True)
        if "direct_running_mode" not in given:  # Beam's default, in_memory, uses one core only
            direct.direct_running_mode = "multi_threading"
            if "direct_num_workers" not in given:
                direct.direct_num_workers = 0  # 0 = one worker per core
        # A bare FnApiRunner gives worker processes (multi_processing) no pipeline options,
        # so they would not import `--beam_plugins` (filesystems for other schemes) nor configure
        # FileSystems from the options (e.g. S3 credentials): hand them over as the
        # portable runners do. Their log level travels the same way (`pipeline.logs`).
        handed = options.get_all_options(drop_default=True)
        handed.setdefault(HARNESS_LEVEL_OPTION, harness_log_level(options.view_as(BuildShardsOptions).verbose))
        encoded = JobServiceHandle.encode_pipeline_options(handed)
        provision = beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        return FnApiRunner(provision_info=ExtendedProvisionInfo(provision))
    return std.runner


def list_inputs(input_spec: str, timeout_s: float) -> list[VideoRecord]:
    """`list_videos` under `--list-timeout`: a listing or a manifest read that stalls (a hung
    mount, a bucket that stops answering) stops the build with an error naming the input,
    instead of hanging before any video is looked at. The worker-side steps have their own
    per-video limit (`pipeline.fetch`)."""
    try:
        return within(timeout_s, lambda: list_videos(input_spec), f"listing {input_spec}")
    except TimeoutError as e:
        raise InputError(f"{e}: is a mount or bucket stalled? Check the path, or give --list-timeout more seconds") from e


def build_pipeline(options: PipelineOptions) -> tuple[beam.Pipeline, int]:
    """The whole build as a pipeline for `options`' runner, not yet run; and the number
    of input videos (listed here, on the driver: their records are the pipeline's input)."""
    build = options.view_as(BuildShardsOptions)
    extract = build.extract_options()
    records = list_inputs(build.input, build.list_timeout)
    extra = {
        "input": build.input,
        "label_convention": {"real": 0, "fake": 1},
        "size": extract.size,
        "options": {"shard_size": build.shard_size, "min_shards": build.min_shards},
        "versions": _versions(),
    }
    pipeline = beam.Pipeline(runner=_runner(options), options=options)
    _ = pipeline | "Videos" >> beam.Create(records) | "Build" >> BuildShards(
        build.output, extract, build.shard_size, build.min_shards, extra
    )
    return pipeline, len(records)


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
        from pipeline.dryrun import plan  # dryrun builds on this module

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
