"""`--dry-run`: everything a run does before the first worker starts, then stop.

A Dataflow job that fails on submission (a bad option, a DoFn that does not pickle, a
coder Dataflow refuses) costs a round trip to the cloud and a worker start-up to find out.
The dry run lists the inputs, builds the pipeline and serialises it as the chosen runner
would: for DataflowRunner, Beam's own `TestOptions.dry_run` makes the runner validate the
options, apply its overrides, translate the graph (pickling every DoFn) and build the job
request, and return just before the request is sent; for any other runner, the portable
pipeline proto is built. No credentials are needed beyond reading the inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TestOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2

from pipeline.options import BuildShardsOptions
from pipeline.graph import build_pipeline


@dataclass(frozen=True)
class Plan:
    """What would run: the serialised graph and where it would go."""

    runner: str
    input: str
    output: str
    videos: int
    graph: beam_runner_api_pb2.Pipeline  # as the runner would receive it
    job_name: str | None  # set when the runner built a job request (Dataflow)

    @property
    def transforms(self) -> int:
        """Leaf transforms: the steps that would run."""
        return sum(1 for t in self.graph.components.transforms.values() if not t.subtransforms)

    @property
    def container_images(self) -> tuple[str, ...]:
        docker = common_urns.environments.DOCKER.urn
        return tuple(sorted({
            beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
            for env in self.graph.components.environments.values() if env.urn == docker
        }))

    def summary(self) -> str:
        job = f" job {self.job_name}" if self.job_name else ""
        lines = [
            f"dry run: {self.runner}{job} built, not submitted",
            f"  input:  {self.input} ({self.videos} videos)",
            f"  output: {self.output} (nothing written)",
            f"  graph:  {self.transforms} transforms, {self.graph.ByteSize()} bytes serialised",
        ]
        lines += [f"  worker image: {image}" for image in self.container_images]
        return "\n".join(lines)


def plan(argv: list[str]) -> Plan:
    """Build and serialise the shard builder's pipeline for `argv`'s runner; run nothing."""
    options = PipelineOptions(argv)
    options.view_as(TestOptions).dry_run = True  # DataflowRunner: return before submission
    pipeline, videos = build_pipeline(options)
    job_name = None
    if type(pipeline.runner).__name__ == "DataflowRunner":
        job = pipeline.run().job
        proto, job_name = job.proto_pipeline, job.proto.name
    else:
        proto = pipeline.to_runner_api()
    build = options.view_as(BuildShardsOptions)
    return Plan(
        runner=options.view_as(StandardOptions).runner or "DirectRunner",
        input=build.input,
        output=build.output,
        videos=videos,
        graph=proto,
        job_name=job_name,
    )
