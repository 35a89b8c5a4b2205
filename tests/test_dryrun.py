"""`--dry-run`: the Dataflow job is built and serialised offline, without credentials, and
nothing runs or is written."""
import pytest
from apache_beam.internal import pickler
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from click.testing import CliRunner

from pipeline.cli import build_shards
from pipeline.dryrun import plan
from pipeline.transforms import ExtractPairsDoFn

IMAGE = "us-docker.pkg.dev/my-project/noisetrace/pipeline:0.1.0"
DATAFLOW = ["--runner", "DataflowRunner", "--project", "my-project", "--region", "us-central1",
            "--temp_location", "gs://my-bucket/tmp", "--sdk_container_image", IMAGE, "--experiments=use_runner_v2"]


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """Any attempt to authenticate fails at once instead of finding someone's login."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))


@pytest.fixture
def videos(tmp_path):
    """Listing reads no video content: empty files in a real/ fake/ layout are enough."""
    for rel in ("real/a.mp4", "real/b.mp4", "fake/c.mp4"):
        (tmp_path / "videos" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "videos" / rel).write_bytes(b"")
    return str(tmp_path / "videos")


def test_dataflow_job_is_built_offline_and_not_submitted(videos, no_credentials):
    res = CliRunner().invoke(build_shards, ["--input", videos, "--output", "gs://my-bucket/shards", "--dry-run",
                                            *DATAFLOW])
    assert res.exit_code == 0, res.output
    for text in ("DataflowRunner job beamapp-", "not submitted", "(3 videos)", f"worker image: {IMAGE}"):
        assert text in res.output


def test_dry_run_graph_carries_the_pickled_dofns_and_the_container(videos, no_credentials):
    result = plan(["--input", videos, "--output", "gs://my-bucket/shards", "--size", "32", "--dry-run", *DATAFLOW])
    assert result.job_name and result.videos == 3 and result.container_images == (IMAGE,)
    pardo = common_urns.primitives.PAR_DO.urn
    (extract,) = [t for t in result.graph.components.transforms.values()
                  if t.spec.urn == pardo and t.unique_name.endswith("ParDo(ExtractPairsDoFn)")]
    fn = pickler.loads(beam_runner_api_pb2.ParDoPayload.FromString(extract.spec.payload).do_fn.payload)[0]
    assert isinstance(fn, ExtractPairsDoFn) and fn.options.size == 32


def test_dry_run_validates_dataflow_options(videos, no_credentials):
    without_project = [a for a in DATAFLOW if a not in ("--project", "my-project")]
    with pytest.raises(ValueError, match="project"):
        plan(["--input", videos, "--output", "gs://my-bucket/shards", "--dry-run", *without_project])


def test_local_dry_run_writes_nothing(videos, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(build_shards, ["--input", videos, "--output", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "DirectRunner built, not submitted" in res.output and not out.exists()


@pytest.mark.parametrize("typo,meant", [("--min-frame-per-video", "--min-frames-per-video"), ("--temp_locaton", "--temp_location")])
def test_an_option_neither_build_shards_nor_beam_defines_is_refused(videos, tmp_path, typo, meant):
    """Beam would drop it and build without it; it is a usage error naming the real option,
    build-shards' own or Beam's, and nothing is built."""
    out = tmp_path / "out"
    res = CliRunner().invoke(build_shards, ["--input", videos, "--output", str(out), typo, "8"])
    assert res.exit_code == 2 and f"No such option '{typo}'. Did you mean '{meant}'?" in res.output, res.output
    assert not out.exists()


def test_a_stray_value_is_refused(videos, tmp_path):
    """`--save_main_session false` would read as the switch on, and `false` be dropped."""
    res = CliRunner().invoke(build_shards, ["--input", videos, "--output", str(tmp_path / "out"), "--save_main_session", "false"])
    assert res.exit_code == 2 and "Got unexpected extra argument (false)" in res.output, res.output
