"""A bad-input corpus made by the test: every file gets pairs or a failure with a clear
reason, and the good videos beside the bad ones still give their pairs."""
import os
import shutil
import subprocess

import ffmpeg
import pytest

from pipeline.keyframes import ffmpeg_exe
from pipeline.run import run
from shards.info import split_urls
from shards.reader import iter_pairs
from tests.media import audio_only, lavfi_video


def _ffmpeg(stream) -> None:
    subprocess.run(stream.overwrite_output().global_args("-loglevel", "error").compile(cmd=ffmpeg_exe()), check=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, demo_set):
    demo = demo_set[1]
    face = next(v.path for v in demo if v.label == "real" and "astronaut" in v.path)
    root = tmp_path_factory.mktemp("corpus")
    real, fake = root / "real", root / "fake"
    real.mkdir()
    fake.mkdir()
    good = {}
    for name in ("plain face.mp4", "visage été ü.mp4", "it's $(rm -rf) `x`; a&b|c.mp4"):
        shutil.copy(face, real / name)
        good[f"real/{name}"] = True
    # stored sideways, with rotation metadata that turns it upright: faces only if honoured
    sideways = str(root / "sideways.mp4")
    _ffmpeg(ffmpeg.input(face).filter("transpose", 1).output(sideways, vcodec="libx264", g=12))
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-display_rotation", "90", "-i", sideways, "-c", "copy",
                    str(fake / "rotated.mp4")], check=True)
    os.remove(sideways)
    good["fake/rotated.mp4"] = True
    # variable frame rate: irregular timestamps
    _ffmpeg(ffmpeg.input(face).filter("setpts", "N/25/TB+0.013*sin(N)/TB").output(
        str(fake / "vfr.mp4"), vcodec="libx264", g=6, fps_mode="vfr"))
    good["fake/vfr.mp4"] = True
    data = open(face, "rb").read()
    (real / "truncated.mp4").write_bytes(data[: len(data) // 3])
    corrupt = bytearray(data)
    corrupt[len(data) // 3 : len(data) // 3 + 4096] = os.urandom(4096)
    (real / "corrupt middle.mp4").write_bytes(bytes(corrupt))
    (real / "empty.mp4").write_bytes(b"")
    (real / "text.mp4").write_text("hello")
    shutil.copy(os.path.join(os.path.dirname(ffmpeg.__file__), "..", "PIL", "__init__.py"), fake / "python.mp4")
    audio_only(str(fake / "audio.mp4"))
    lavfi_video(str(fake / "tiny.mp4"), size="16x16", seconds=0.5)
    lavfi_video(str(fake / "uhd.mp4"), size="3840x2160", seconds=0.2, gop=5)
    (fake / "folder.mp4").mkdir()  # a directory with a video's name
    os.mkfifo(real / "pipe.mp4")  # opening it for reading would wait forever for a writer
    # gone between listing and reading (a dangling link is listed, then fails to open), a link
    # loop that no one can read, and a file without read permission (root reads it anyway)
    os.symlink("deleted since.mp4", real / "vanished.mp4")
    os.symlink("loop.mp4", fake / "loop.mp4")
    shutil.copy(face, real / "locked.mp4")
    os.chmod(real / "locked.mp4", 0)
    return root, good


def test_every_bad_input_is_accounted_for_with_a_reason(corpus, tmp_path):
    root, good = corpus
    out = tmp_path / "out"
    result = run(["--input", str(root), "--output", str(out), "--min-shards", "1"])
    in_shards = {p["meta"]["video"] for s in result.info["splits"] for p in iter_pairs(split_urls(str(out), s))}
    reasons: dict[str, set] = {}
    for f in result.failures:
        reasons.setdefault(f["video"], set()).add(f["reason"])
    listed = {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}
    assert listed <= in_shards | set(reasons)
    assert set(good) <= in_shards  # bad neighbours cost the good videos nothing
    assert reasons["real/empty.mp4"] == {"empty_file"}
    assert reasons["real/text.mp4"] == {"decode_error"}
    assert reasons["fake/python.mp4"] == {"decode_error"}
    assert reasons["fake/audio.mp4"] == {"no_video_stream"}
    assert reasons["fake/tiny.mp4"] == {"no_face"}  # decodes; a 16x16 frame holds no face
    assert reasons["fake/uhd.mp4"] == {"no_face"}
    assert reasons["real/vanished.mp4"] == {"missing_file"}
    assert reasons["fake/loop.mp4"] == {"unreadable"}
    if os.geteuid() != 0:
        assert reasons["real/locked.mp4"] == {"unreadable"}
    assert "real/truncated.mp4" in reasons or "real/truncated.mp4" in in_shards
    assert "real/corrupt middle.mp4" in reasons or "real/corrupt middle.mp4" in in_shards
    assert reasons["real/pipe.mp4"] == {"not_a_file"} and reasons["fake/folder.mp4"] == {"not_a_file"}
    assert result.info["videos"]["total"] == len(listed) + 1  # os.walk lists no directory as a file


def test_frame_cap_applies_in_the_pipeline(corpus, tmp_path):
    root, _ = corpus
    result = run(["--input", str(root / "*" / "uhd.mp4"), "--output", str(tmp_path / "o"),
                  "--max-frame-pixels", str(1920 * 1080)])
    assert [f["reason"] for f in result.failures] == ["frame_too_large"]
