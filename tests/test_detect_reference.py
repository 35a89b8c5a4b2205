"""`detect --reference` on videos FFmpeg encodes and cuts and dlib finds faces in: a fake
departs from its own real footage more than that footage's second half does, the report
shows the reference beside each suspect, and an unusable reference says why."""
import json
import os
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from detection.detect import detect
from detection.reference import (CONSISTENT, MIN_REFERENCE_KEYFRAMES, PRIOR_KEYFRAMES, PRIOR_SPREAD, UNLIKE, Reference,
                                 compare, departure)
from pipeline.keyframes import ffmpeg_exe
from tests.media import lavfi_video

FRAMES = ["--min-frames-per-video", "12"]


def _cut(path: str, out: str, *, start: float | None = None, length: float | None = None) -> str:
    """Part of a video by stream copy (no re-encoding, so both halves keep the source's noise)."""
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", *(["-ss", str(start)] if start is not None else []), "-i", path,
           *(["-t", str(length)] if length is not None else []), "-c", "copy", out]
    subprocess.run(cmd, check=True)
    return out


@pytest.fixture(scope="module")
def halves(demo_set, tmp_path_factory):
    """(first half of a real clip, its second half, the fake made from the whole clip):
    the demo's I-frame every 12 frames at 25 fps puts one at 0.48 s, where it is cut."""
    root = tmp_path_factory.mktemp("halves")
    fake = next(v for v in demo_set[1] if v.label == "fake" and "astronaut" in v.path)
    real = next(v.path for v in demo_set[1] if v.label == "real" and v.group == fake.group)
    return (_cut(real, str(root / "first.mp4"), length=0.48), _cut(real, str(root / "second.mp4"), start=0.48), fake.path)


def test_a_fake_departs_from_its_real_footage_more_than_that_footages_second_half(tiny_checkpoint, halves, tmp_path):
    first, second, fake = halves
    out = tmp_path / "report"
    res = CliRunner().invoke(detect, [second, fake, "--reference", first, "--checkpoint", tiny_checkpoint, "--json",
                                      "--report", str(out), *FRAMES])
    assert res.exit_code == 0, res.output
    real_half, swapped = [json.loads(line) for line in res.stdout.splitlines()]
    assert "reference:" in res.stderr and "unusable" not in res.stderr
    for judged in (real_half, swapped):
        assert judged["reference_keyframes"] >= MIN_REFERENCE_KEYFRAMES and judged["reference_videos"] == 1
        assert judged["reference_verdict"] in (UNLIKE, CONSISTENT) and judged["reference_reason"] == ""
    assert swapped["reference_departure"] > max(real_half["reference_departure"], 0.0)
    assert (real_half["reference_verdict"], swapped["reference_verdict"]) == (CONSISTENT, UNLIKE)
    index = (out / "index.html").read_text()
    assert "against the reference" in index and f"{swapped['reference_keyframes']} keyframe(s)" in index
    page = (out / "v0002.html").read_text()
    assert "Against its reference" in page and swapped["reference_verdict"] in page and "reference.png" in page
    assert os.path.getsize(out / "v0002" / "reference.png") > 1000
    table = CliRunner().invoke(detect, [fake, "--reference", first, "--checkpoint", tiny_checkpoint, *FRAMES])
    assert f"against its reference: {UNLIKE}: departure {swapped['reference_departure']:.2f} reference spreads" in table.stdout


def test_a_reference_without_faces_or_too_short_gives_a_line_and_no_verdict(tiny_checkpoint, halves, tmp_path):
    first, second, fake = halves
    pattern = lavfi_video(str(tmp_path / "pattern.mp4"), seconds=1.0)
    args = [second, "--checkpoint", tiny_checkpoint, "--json", *FRAMES]
    res = CliRunner().invoke(detect, [*args, "--reference", pattern])
    assert res.exit_code == 0, res.output
    judged = json.loads(res.stdout)
    assert judged["reference_departure"] is None and judged["reference_verdict"] is None
    why = "no face pair could be made in the reference footage"
    assert judged["reference_reason"] == why and why in res.stderr and "no reference verdicts" in res.stderr
    assert judged["fake_probability"] is not None  # the model's verdict stands
    short = CliRunner().invoke(detect, [second, "--checkpoint", tiny_checkpoint, "--json", "--reference", first,
                                        "--min-frames-per-video", "0"])
    judged = json.loads(short.stdout)
    assert judged["reference_departure"] is None and 0 < judged["reference_keyframes"] < MIN_REFERENCE_KEYFRAMES
    assert f"fewer than {MIN_REFERENCE_KEYFRAMES}" in judged["reference_reason"]
    nowhere = tmp_path / "nowhere"
    missing = CliRunner().invoke(detect, [*args, "--reference", str(nowhere)])
    assert missing.exit_code == 1 and f"Error: --reference {nowhere}: no files under" in missing.output
    plain = json.loads(CliRunner().invoke(detect, args).stdout)
    assert "reference_departure" not in plain  # without --reference, detect is as before


def test_departure_is_in_the_references_spread_shrunk_toward_the_prior():
    rng = np.random.default_rng(0)
    keyframes = rng.normal([1.0, 2.0, -1.0], PRIOR_SPREAD, size=(40, 3))
    reference = Reference(keyframes)
    smoother = keyframes[:10] - [3 * PRIOR_SPREAD[0], 0, 3 * PRIOR_SPREAD[0]]
    assert departure(reference, keyframes[:10]) < 1.0 < 2.0 < departure(reference, smoother)
    assert departure(reference, smoother, "mahalanobis") > 2.0 and departure(reference, smoother, "face-rank") > 2.0
    flat = Reference(np.repeat(keyframes[:1], MIN_REFERENCE_KEYFRAMES, axis=0))  # no spread of its own: the prior's share
    expected = np.sqrt(PRIOR_KEYFRAMES / (PRIOR_KEYFRAMES + MIN_REFERENCE_KEYFRAMES - 1)) * PRIOR_SPREAD
    assert np.allclose(flat.spread, expected)
    assert compare(Reference(keyframes[:3]), smoother).reason.startswith("the reference gives 3 keyframe(s)")
    assert compare(reference, np.zeros((0, 3))).reason == "the suspect gave no face pair"
