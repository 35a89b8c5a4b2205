"""Videos the tests encode themselves with the real FFmpeg, with known GOP and frames."""
from __future__ import annotations

import subprocess

import ffmpeg
import numpy as np

from noisetrace.demo_media import _encode
from pipeline.keyframes import Keyframe, _command, _decode, ffmpeg_exe


def lavfi_video(path: str, *, size: str = "320x240", fps: int = 25, seconds: float = 2.0, gop: int = 10,
                rotation: int | None = None) -> str:
    """A libx264 test-pattern clip with an I-frame exactly every `gop` frames."""
    stream = ffmpeg.input(f"testsrc=size={size}:rate={fps}", f="lavfi", t=seconds).output(
        path, vcodec="libx264", g=gop, keyint_min=gop, sc_threshold=0, pix_fmt="yuv420p", bf=2
    )
    subprocess.run(stream.overwrite_output().global_args("-loglevel", "error").compile(cmd=ffmpeg_exe()), check=True)
    if rotation is not None:
        rotated = path + ".rot.mp4"
        cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", "-display_rotation", str(rotation), "-i", path, "-c", "copy", rotated]
        subprocess.run(cmd, check=True)
        subprocess.run(["mv", rotated, path], check=True)
    return path


def still_clip(path: str, image: np.ndarray, *, frames: int = 6, gop: int = 3) -> str:
    """`frames` copies of one RGB image, encoded as the demo videos are (libx264, an I-frame
    every `gop` frames): a clip whose every frame shows what the image does."""
    _encode([image] * frames, path, "25", gop)
    return path


def audio_only(path: str) -> str:
    stream = ffmpeg.input("sine=d=1", f="lavfi").output(path, acodec="aac")
    subprocess.run(stream.overwrite_output().global_args("-loglevel", "error").compile(cmd=ffmpeg_exe()), check=True)
    return path


def frames_at(path: str, pts: set[int]) -> dict[int, Keyframe]:
    """The frames with these pts, from a decode of every frame from the first with none
    skipped: the reference that faster extraction paths must match bit for bit."""
    args = _command(path, {}, [("showinfo", ())], None)
    return {kf.pts: kf for kf, _ in _decode(args, 120.0) if kf.pts in pts}
