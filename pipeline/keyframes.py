"""Decode only the keyframes of a video with FFmpeg, as raw RGB through a pipe.

`-skip_frame nokey` makes the decoder drop P/B frames before decoding them, which is what
makes keyframe extraction cheap (`select='eq(pict_type,I)'` would still decode every
frame). Frames arrive as PPM (raw RGB with a size header) so rotated clips, whose output
size FFmpeg only decides after applying the rotation metadata, need no probing; the
`showinfo` filter reports each frame's pts and type on stderr. No temporary image files.
"""
from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import ffmpeg
import numpy as np

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_MAX_PIXELS = 40_000_000  # 8K UHD (7680x4320 = 33 M) passes; one RGB frame stays under 120 MB
_SHOWINFO_RE = re.compile(
    r"n:\s*(?P<n>\d+)\s+pts:\s*(?P<pts>-?\d+)\s+pts_time:(?P<pts_time>-?[\d.e+-]+).*?type:(?P<type>\w)"
)
_RATE_RE = re.compile(r"config in time_base: (\d+)/(\d+), frame_rate: (\d+)/(\d+)")
# FFmpeg's words for "no video stream": `-skip_frame:v` finding no video decoder to apply
# to is how an audio-only file shows up first.
_NO_VIDEO_MESSAGES = ("does not contain any stream", "matches no streams", "skip_frame:v (")
_TOO_LARGE_MESSAGE = "exceeds specified max pixel count"
_POINTER_RE = re.compile(r" @ 0x[0-9a-f]+")  # run-specific addresses in FFmpeg's log prefixes
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")


class DecodeError(RuntimeError):
    """FFmpeg could not decode the file; `reason` is a failure code for failures.jsonl."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Keyframe:
    """One decoded frame: `index` is its estimated frame number in the stream
    (round(pts_time x frame rate)), `pts` is in the stream's time base."""

    index: int
    pts: int
    pts_time: float
    frame_type: str
    image: np.ndarray  # HxWx3 uint8 RGB, rotation applied


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The static FFmpeg that imageio-ffmpeg ships (FFmpeg 7+: `-fps_mode`, not `-vsync`)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _read_exact(stream, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_ppm(stream) -> np.ndarray | None:
    """Read one binary PPM (P6, maxval 255) from a pipe; None at end of stream."""
    header: list[bytes] = []
    token = b""
    while len(header) < 4:
        c = stream.read(1)
        if not c:
            if header or token:
                raise DecodeError("decode_error", "truncated frame header from ffmpeg")
            return None
        if c.isspace():
            if token:
                header.append(token)
                token = b""
        else:
            token += c
    if header[0] != b"P6" or header[3] != b"255":
        raise DecodeError("decode_error", f"unexpected frame header {header!r}")
    w, h = int(header[1]), int(header[2])
    data = _read_exact(stream, w * h * 3)
    if len(data) != w * h * 3:
        raise DecodeError("decode_error", "truncated frame data from ffmpeg")
    return np.frombuffer(data, np.uint8).reshape(h, w, 3)


class _StderrReader(threading.Thread):
    """Drains FFmpeg's stderr (so it can never block on a full pipe) and parses it."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.frames: queue.Queue = queue.Queue()
        self.frame_rate: float | None = None
        self.duration: float | None = None
        self.tail: list[str] = []

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if m := _SHOWINFO_RE.search(line):
                self.frames.put((int(m["pts"]), float(m["pts_time"]), m["type"]))
            elif m := _RATE_RE.search(line):
                num, den = int(m[3]), int(m[4])
                self.frame_rate = num / den if den else None
            elif m := _DURATION_RE.search(line):
                self.duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
            elif line and "showinfo" not in line:
                self.tail = (self.tail + [_POINTER_RE.sub("", line)])[-8:]
        self.frames.put(None)


def _decode(args: list[str], timeout_s: float) -> Iterator[tuple[Keyframe, _StderrReader]]:
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader = _StderrReader(proc.stderr)
    reader.start()
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        try:
            while (image := _read_ppm(proc.stdout)) is not None:
                info = reader.frames.get(timeout=timeout_s)
                if info is None:
                    raise DecodeError("decode_error", "frame without showinfo line")
                pts, pts_time, ftype = info
                rate = reader.frame_rate or 0.0
                yield Keyframe(round(pts_time * rate), pts, pts_time, ftype, image), reader
            returncode = proc.wait()
        except (DecodeError, queue.Empty) as e:
            if timer.is_alive():
                if isinstance(e, DecodeError):
                    raise
                raise DecodeError("decode_error", "ffmpeg sent a frame but no frame info") from None
            returncode = None  # the timer killed FFmpeg mid-frame
        reader.join(timeout=5)
        if not timer.is_alive():
            raise DecodeError("timeout", f"ffmpeg took longer than {timeout_s:g} s")
        if returncode != 0:
            detail = " | ".join(reader.tail[-3:]) or f"ffmpeg exit {returncode}"
            if any(s in detail for s in _NO_VIDEO_MESSAGES):
                raise DecodeError("no_video_stream", detail)
            if any(_TOO_LARGE_MESSAGE in line for line in reader.tail):
                raise DecodeError("frame_too_large", detail)
            raise DecodeError("decode_error", detail)
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _command(path: str, input_kwargs: dict, filters: list[tuple[str, tuple]], max_frames: int | None) -> list[str]:
    stream = ffmpeg.input(path, **input_kwargs)
    for name, fargs in filters:
        stream = stream.filter(name, *fargs)
    out_kwargs = {"format": "image2pipe", "vcodec": "ppm", "pix_fmt": "rgb24", "fps_mode": "passthrough"}
    if max_frames:
        out_kwargs["frames:v"] = max_frames
    stream = stream.output("pipe:", **out_kwargs).global_args("-nostdin", "-hide_banner", "-an", "-sn", "-dn")
    return stream.compile(cmd=ffmpeg_exe())


def read_keyframes(
    path: str,
    *,
    max_keyframes: int | None = None,
    min_frames: int = 0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[Keyframe]:
    """Yield the I-frames of a local video in order, then (if fewer than `min_frames`)
    `min_frames` evenly spaced frames of any type that are not I-frames already.

    Benchmark clips often carry only 1-4 I-frames in 10-30 s; the extra frames come from a
    second pass that decodes only the reference frames (see `_evenly_spaced`). FFmpeg refuses
    frames over `max_pixels` and is killed after `timeout_s`, so one hostile file can
    neither exhaust nor hang a worker. Raises `DecodeError` with a reason code; frames
    already yielded stay valid.
    """
    seen: set[int] = set()
    duration = None
    limits = {"max_pixels": max_pixels}
    args = _command(path, {**limits, "skip_frame:v": "nokey", "threads": 1}, [("showinfo", ())], max_keyframes)
    for frame, reader in _decode(args, timeout_s):
        seen.add(frame.pts)
        duration = reader.duration
        yield frame
    if not seen and min_frames <= 0:
        raise DecodeError("no_keyframes", "ffmpeg decoded no video frame")
    if len(seen) >= min_frames or (max_keyframes and len(seen) >= max_keyframes):
        return
    budget = (max_keyframes - len(seen)) if max_keyframes else None
    for frame in _evenly_spaced(path, min_frames, duration, timeout_s, limits):
        if frame.pts in seen:
            continue
        if budget is not None and budget <= 0:
            return
        budget = None if budget is None else budget - 1
        yield frame


def _evenly_spaced(path: str, n: int, duration: float | None, timeout_s: float, limits: dict) -> Iterator[Keyframe]:
    """`n` reference frames, the first at or after the middle of each of `n` equal slices.

    Only reference frames (I, P and referenced B) are decoded: `-skip_frame noref` drops
    the frames no other frame predicts from, which by definition changes no pixel of the
    frames kept, and on x264 clips (B-frames, b-pyramid) halves the decoding (measured on
    the labelled clips: 206 CPU-s decoding every frame, 110 CPU-s the reference frames,
    one thread). Skipping every B-frame (`bidir`) is not exact: on FF++ and DFD clips
    P-frames predict from referenced B-frames. Decoding still starts at the first frame:
    input seeking (`-ss`) decoded some FaceForensics++ clips with errors (frames not
    bit-exact), so it is not used, and FFmpeg stops at the last pick. One thread: the build runs one decoder per core already.
    """
    if not duration or duration <= 0:
        raise DecodeError("no_keyframes", "unknown duration: cannot space extra frames")
    step = duration / n
    expr = f"isnan(prev_selected_t)*gte(t,{step / 2:.6f})+gte(t-prev_selected_t,{step:.6f})"
    args = _command(path, {**limits, "skip_frame:v": "noref", "threads": 1}, [("select", (expr,)), ("showinfo", ())], n)
    for frame, _ in _decode(args, timeout_s):
        yield frame
