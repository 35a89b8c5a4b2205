"""Remote paths end to end: the real pipeline reads videos, manifests and label files from
`testfs://` (an object-store-like Beam FileSystem, `tests/remotefs.py`) and writes shards,
`_info.json` and `failures.jsonl` there, in multi-process mode. A local-path assumption
anywhere (`os.path`, `open()`, directories that must exist) fails these tests."""
import hashlib
import io
import json
import os
import tarfile

import pytest
from apache_beam.io.filesystems import FileSystems
from click.testing import CliRunner

from pipeline.cli import build_shards
from pipeline.inputs import list_videos
from pipeline.run import run
from tests import remotefs
from tests.media import lavfi_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = ["--beam_plugins", remotefs.__name__]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The directory behind `testfs://`, visible to this process and to Beam's workers."""
    root = tmp_path_factory.mktemp("objects")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(remotefs.ROOT_ENV, str(root))
        mp.setenv("NOISETRACE_LOCK_SETTLE_S", "0.1")  # the output's lock marker (shards.lock): no need to wait here
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
        yield root


@pytest.fixture(scope="module")
def videos(store, copy_demo_set):
    copy_demo_set(store / "bucket" / "videos")
    lavfi_video(str(store / "bucket" / "videos" / "fake" / "no face.mp4"), seconds=0.5)
    return "testfs://bucket/videos"


def _read(url: str) -> bytes:
    with FileSystems.open(url) as f:
        return f.read()


def _write(url: str, data: bytes) -> None:
    with FileSystems.create(url) as f:
        f.write(data)


def _listing(prefix: str) -> dict[str, str]:
    (match,) = FileSystems.match([prefix + "/**"])
    return {m.path[len(prefix) + 1:]: hashlib.sha256(_read(m.path)).hexdigest() for m in match.metadata_list}


def _samples(tar_bytes: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return sorted({m.name.split(".", 1)[0] for m in tar.getmembers()})


def test_pipeline_reads_and_writes_through_the_remote_filesystem(videos, store, tmp_path, monkeypatch):
    out = "testfs://bucket/shards"
    _write(out + "/train/pairs-000099.tar", b"stale shard of an earlier, larger run")
    _write(out + "/val/.pairs-000000.tar.dead.tmp", b"partial write of a crashed worker")
    monkeypatch.chdir(tmp_path)  # a local-path write would land here

    result = run(["--input", videos, "--output", out, "--min-shards", "3", *PLUGIN])

    assert list(tmp_path.iterdir()) == []
    assert json.loads(_read(out + "/_info.json")) == result.info
    failures = [json.loads(line) for line in _read(out + "/failures.jsonl").decode().splitlines()]
    assert failures == result.failures and {f["reason"] for f in failures} == {"no_face"}
    listed = _listing(out)
    expected = {"_info.json", "failures.jsonl"}
    assert set(result.info["splits"]) == {"train", "val", "test"}
    for split, entry in result.info["splits"].items():
        assert len(entry["filenames"]) >= 3
        for name, length in zip(entry["filenames"], entry["shard_lengths"]):
            expected.add(name)
            assert len(_samples(_read(f"{out}/{name}"))) == length > 0
    assert set(listed) == expected  # stale shard and temp file gone, no temp left behind

    # The same videos read from the local disk give byte-identical shards.
    local = tmp_path / "local"
    run(["--input", str(store / "bucket" / "videos"), "--output", str(local), "--min-shards", "3"])
    assert {n: d for n, d in listed.items() if n.endswith(".tar")} == {
        os.path.relpath(os.path.join(d, f), local): hashlib.sha256((local / d / f).read_bytes()).hexdigest()
        for d, _, fs in os.walk(local) for f in fs if f.endswith(".tar")
    }


def test_cli_with_a_remote_manifest_records_missing_objects(videos, store, tmp_path, monkeypatch):
    manifest = _read(videos + "/manifest.csv").decode()
    manifest += "real/gone.mp4,real,,\ntestfs://bucket/elsewhere/gone too.mp4,fake,test,\n"
    _write(videos + "/remote-manifest.csv", manifest.encode())
    out = "testfs://bucket/from-manifest"
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(build_shards, ["--input", videos + "/remote-manifest.csv", "--output", out,
                                            "--max-keyframes-per-video", "1", "--min-shards", "1", *PLUGIN])
    assert res.exit_code == 0, res.output
    assert list(tmp_path.iterdir()) == []
    failures = [json.loads(line) for line in _read(out + "/failures.jsonl").decode().splitlines()]
    missing = {f["video"] for f in failures if f["reason"] == "missing_file"}
    assert missing == {"real/gone.mp4", "testfs://bucket/elsewhere/gone too.mp4"}
    info = json.loads(_read(out + "/_info.json"))
    assert info["input"] == videos + "/remote-manifest.csv"
    assert {name for split in info["splits"].values() for name in split["filenames"]} <= set(_listing(out))


def test_label_files_are_read_from_the_remote_filesystem(store):
    root = "testfs://bucket/datasets"
    for rel in ("celebdf/Celeb-real/id0_0000.mp4", "celebdf/YouTube-real/00170.mp4",
                "celebdf/Celeb-synthesis/id0_id1_0000.mp4", "dfdc/a.mp4", "dfdc/b.mp4",
                "ffpp/original_sequences/youtube/c23/videos/519.mp4",
                "ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"):
        _write(f"{root}/{rel}", b"")
    _write(f"{root}/celebdf/List_of_testing_videos.txt", b"1 YouTube-real/00170.mp4\n")
    _write(f"{root}/dfdc/metadata.json", json.dumps({"a.mp4": {"label": "REAL"},
                                                    "b.mp4": {"label": "FAKE", "original": "a.mp4"}}).encode())
    for split, pairs in (("test", [["519", "515"]]), ("train", []), ("val", [])):
        _write(f"{root}/ffpp/splits/{split}.json", json.dumps(pairs).encode())

    recs = {r.video: r for r in list_videos(root)}
    assert all(r.path == f"{root}/{v}" and r.reason is None for v, r in recs.items())
    assert recs["celebdf/YouTube-real/00170.mp4"].split == "test"
    assert recs["celebdf/Celeb-real/id0_0000.mp4"].split in ("train", "val")
    assert (recs["dfdc/b.mp4"].label, recs["dfdc/b.mp4"].group) == ("fake", recs["dfdc/a.mp4"].group)
    assert recs["ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"].split == "test"
    assert recs["ffpp/original_sequences/youtube/c23/videos/519.mp4"].split == "test"
    single = list_videos(f"{root}/dfdc/*.mp4")
    assert [r.video for r in single] == ["a.mp4", "b.mp4"]
