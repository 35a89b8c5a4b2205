"""The shard builder's pipeline, built but not run: the inputs listed on the driver, the
runner chosen (locally the FnApiRunner with one worker thread per core, see `pipeline.run`)
and the Beam graph. `pipeline.run` runs it; `pipeline.dryrun` serialises it and stops.
Both import this module and neither imports the other's internals.
"""
from __future__ import annotations

from importlib import metadata

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from pipeline.fetch import within
from pipeline.inputs import InputError, VideoRecord, list_videos
from pipeline.logs import HARNESS_LEVEL_OPTION, harness_log_level
from pipeline.options import BuildShardsOptions
from pipeline.splits import GROUP
from pipeline.transforms import BuildShards

LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")
VERSIONED = ("noisetrace", "apache-beam", "dlib-bin", "ffmpeg-python", "imageio-ffmpeg", "webdataset", "numpy", "pillow")


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


def list_inputs(input_spec: str, timeout_s: float, split_by: str = GROUP) -> list[VideoRecord]:
    """`list_videos` under `--list-timeout`: a listing or a manifest read that stalls (a hung
    mount, a bucket that stops answering) stops the build with an error naming the input,
    instead of hanging before any video is looked at. The worker-side steps have their own
    per-video limit (`pipeline.fetch`)."""
    try:
        return within(timeout_s, lambda: list_videos(input_spec, split_by=split_by), f"listing {input_spec}")
    except TimeoutError as e:
        raise InputError(f"{e}: is a mount or bucket stalled? Check the path, or give --list-timeout more seconds") from e


def build_pipeline(options: PipelineOptions) -> tuple[beam.Pipeline, int]:
    """The whole build as a pipeline for `options`' runner, not yet run; and the number
    of input videos (listed here, on the driver: their records are the pipeline's input)."""
    build = options.view_as(BuildShardsOptions)
    extract = build.extract_options()
    records = list_inputs(build.input, build.list_timeout, build.split_by)
    # --split-by recorded only when not the default, so a default build's index stays as it was
    split_by = {"split_by": build.split_by} if build.split_by != GROUP else {}
    extra = {
        "input": build.input,
        "label_convention": {"real": 0, "fake": 1},
        "size": extract.size,
        "options": {"shard_size": build.shard_size, "min_shards": build.min_shards, **split_by},
        "versions": _versions(),
    }
    pipeline = beam.Pipeline(runner=_runner(options), options=options)
    _ = pipeline | "Videos" >> beam.Create(records) | "Build" >> BuildShards(
        build.output, extract, build.shard_size, build.min_shards, extra, build.split_by
    )
    return pipeline, len(records)
