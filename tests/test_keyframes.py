"""Keyframe extraction with the real FFmpeg on clips encoded with a known GOP."""
import os

import numpy as np
import pytest

from pipeline.keyframes import DecodeError, read_keyframes
from tests.media import audio_only, frames_at, lavfi_video


@pytest.mark.parametrize("fps,gop,seconds", [(25, 10, 2.0), (30, 30, 3.0), (24, 7, 1.5)])
def test_exact_iframes_and_pts(tmp_path, fps, gop, seconds):
    path = lavfi_video(str(tmp_path / "v.mp4"), fps=fps, gop=gop, seconds=seconds)
    frames = list(read_keyframes(path))
    n_frames = round(fps * seconds)
    want = list(range(0, n_frames, gop))
    assert [f.index for f in frames] == want
    assert all(f.frame_type == "I" for f in frames)
    assert [round(f.pts_time, 3) for f in frames] == [round(i / fps, 3) for i in want]
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    # pts are in the stream time base: proportional to the frame numbers
    ratios = {f.pts / f.index for f in frames if f.index}
    assert len(ratios) <= 1


def test_max_keyframes_and_min_frames(tmp_path):
    path = lavfi_video(str(tmp_path / "v.mp4"), fps=25, gop=25, seconds=4.0)  # 4 I-frames
    assert [f.index for f in read_keyframes(path, max_keyframes=2)] == [0, 25]
    frames = list(read_keyframes(path, min_frames=8))
    iframes = [f for f in frames if f.frame_type == "I"]
    extra = [f for f in frames if f.frame_type != "I"]
    assert [f.index for f in iframes] == [0, 25, 50, 75]
    assert len(extra) >= 6  # 8 evenly spaced targets, the ones on I-frames dropped
    gaps = np.diff(sorted(f.index for f in frames))
    assert gaps.min() >= 1 and gaps.max() <= 25
    assert len({f.pts for f in frames}) == len(frames)
    assert [f.index for f in read_keyframes(path, min_frames=2)] == [0, 25, 50, 75]


def assert_extra_frames_exact(path: str, min_frames: int) -> list:
    """The frames read_keyframes adds beyond the I-frames are, pixel for pixel and with
    the same pts and picture type, the frames a decode of every frame gives."""
    extra = [f for f in read_keyframes(path, min_frames=min_frames) if f.frame_type != "I"]
    reference = frames_at(path, {f.pts for f in extra})
    for f in extra:
        want = reference[f.pts]
        assert (f.frame_type, f.pts_time) == (want.frame_type, want.pts_time)
        assert np.array_equal(f.image, want.image), f"frame at pts {f.pts} differs from the full decode"
    return extra


def test_extra_frames_are_exact_reference_frames(tmp_path):
    # 2 I-frames in 4 s, B-frames between P-frames: the extra frames come from the
    # reference-frames-only pass and must still be exactly what a full decode gives.
    path = lavfi_video(str(tmp_path / "v.mp4"), fps=25, gop=50, seconds=4.0)
    extra = assert_extra_frames_exact(path, 8)
    assert len(extra) >= 6
    assert {f.frame_type for f in extra} <= {"P", "B"}


def test_rotation_metadata_is_applied(tmp_path):
    path = lavfi_video(str(tmp_path / "portrait.mp4"), size="320x240", rotation=90)
    frames = list(read_keyframes(path))
    assert frames and all(f.image.shape == (320, 240, 3) for f in frames)


def test_bad_files_raise_with_reason(tmp_path):
    text = tmp_path / "text.mp4"
    text.write_text("not a video at all")
    with pytest.raises(DecodeError) as e:
        list(read_keyframes(str(text)))
    assert e.value.reason == "decode_error"
    with pytest.raises(DecodeError) as e:
        list(read_keyframes(audio_only(str(tmp_path / "audio.mp4"))))
    assert e.value.reason == "no_video_stream"
    full = lavfi_video(str(tmp_path / "full.mp4"), size="640x480", gop=5, seconds=4.0)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(open(full, "rb").read()[: os.path.getsize(full) // 2])
    # a truncated mp4 may lose its index (error) or decode partially: never a hang, never a crash
    try:
        frames = list(read_keyframes(str(cut), timeout_s=30))
        assert len(frames) < len(list(read_keyframes(full)))
    except DecodeError as err:
        assert err.reason in ("decode_error", "no_keyframes")


def test_frame_size_cap_and_timeout(tmp_path):
    path = lavfi_video(str(tmp_path / "v.mp4"), size="320x240")
    with pytest.raises(DecodeError) as e:
        list(read_keyframes(path, max_pixels=320 * 240 - 1))
    assert e.value.reason == "frame_too_large"
    assert len(list(read_keyframes(path, max_pixels=320 * 240))) == 5
    big = lavfi_video(str(tmp_path / "big.mp4"), size="1920x1080", gop=1, seconds=4.0)
    with pytest.raises(DecodeError) as e:
        list(read_keyframes(big, timeout_s=0.05))
    assert e.value.reason == "timeout"
