"""The shard builder's options, declared once for both Beam and the click CLI.

`BuildShardsOptions` is the `PipelineOptions` subclass Beam parses (so `python -m
pipeline.run ... --runner DataflowRunner` works); `build-shards` generates its click
options from the same table, so names, defaults and help never drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.inputs import InputError
from pipeline.pairs import NO_RESIZE, RESIZE_FILTERS, ExtractOptions
from pipeline.splits import GROUP, SPLIT_BY


@dataclass(frozen=True)
class Option:
    flag: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    required: bool = False
    min: int | None = None  # smallest value the CLI accepts

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def is_flag(self) -> bool:
        """A bool option is a switch: present means True, it takes no value."""
        return self.type is bool


OPTIONS: tuple[Option, ...] = (
    Option("--input", str, None, "Directory, glob or CSV manifest (path,label[,split,group]); local or gs://.", required=True),
    Option("--output", str, None, "Output directory (local or gs://): <split>/pairs-NNNNNN.tar, _info.json, failures.jsonl.", required=True),
    Option("--size", int, 64, "Side in pixels of the stored face and background squares."),
    Option("--face-scale", float, 1.3, "Face square side = max(box w, h) x this, as FaceForensics++ crops."),
    Option("--min-face-scale", float, 1.0, "When no same-size background square fits at --face-scale, shrink the face square's margin down to this scale before giving up (set it to --face-scale to never shrink)."),
    Option("--resize-filter", str, "area", f"Filter for resizing both squares to --size; '{NO_RESIZE}': keep the central --size patch of each square at native "
           "resolution (no resampling), and where no face-sized background square fits, take the furthest --size patch clear "
           "of the face square (the json's background_kind: square or patch).", (*RESIZE_FILTERS, NO_RESIZE)),
    Option("--max-keyframes-per-video", int, 0, "Use at most this many keyframes per video (the first ones); 0 = all."),
    Option("--min-frames-per-video", int, 0, "If a video has fewer I-frames than this, add this many evenly spaced reference frames (exact, not re-encoded)."),
    Option("--backgrounds", int, 0, "Each pair also carries up to this many more background squares of the face square's size, "
           "spread over the frame away from the face and each other: <key>.background1.png ... and the json's "
           "extra_background_boxes (fewer when the frame has no room; background.png stays the furthest square).", min=0),
    Option("--windows", int, 1, f"With --resize-filter {NO_RESIZE}: up to this many non-overlapping --size patches of each face "
           "square, nearest its centre first (window 0 = the central patch), each a pair with the patch at the same "
           "place in the background square (or the one background patch): up to this many pairs per keyframe "
           "(docs/shards.md).", min=1),
    Option("--split-by", str, GROUP, "How pairs are cut 8:1:1 into train/val/test: 'group' (a real video and the fakes made "
           "from it, or an identity, stay in one split; official lists kept), 'video' (by a hash of each video: LEAKS, a "
           "fake and its real source may straddle splits), 'pair' (by a hash of each pair, the paper's protocol: LEAKS, "
           "frames of one video straddle splits). 'video' and 'pair' override official lists.", SPLIT_BY),
    Option("--upsample", int, 0, "dlib upsampling steps (finds smaller faces, ~4x slower each)."),
    Option("--detect-max-side", int, 640, "Detect faces on a copy downscaled to this longest side (0 = full size); retried at full size when nothing is found."),
    Option("--cnn-model", str, None, "dlib CNN face detector model file (mmod_human_face_detector.dat) instead of HOG."),
    Option("--shard-size", int, 2000, "Pairs per shard (~25 KB each at 64 px: ~50 MB shards)."),
    Option("--min-shards", int, 16, "Each split gets at least this many shards (when it has that many pairs), so loader workers x GPUs all get data."),
    Option("--ffmpeg-timeout", float, 600.0, "Seconds one ffmpeg call, or reading the video file (stat, open, copy of a remote object), may take before the video is recorded as a timeout."),
    Option("--list-timeout", float, 600.0, "Seconds the driver may take listing --input and reading its manifest and label files (a stalled mount or bucket) before the build stops with an error."),
    Option("--max-frame-pixels", int, 40_000_000, "FFmpeg refuses frames larger than this many pixels (frame_too_large), bounding memory per worker."),
    Option("--max-failure-rate", float, 1.0, "Exit non-zero when more than this fraction of input videos gave no pair."),
    Option("--verbose", bool, False, "Show Beam's and gRPC's own INFO logs, the local SDK workers' included (default: their warnings and errors only)."),
    Option("--dry-run", bool, False, "List the inputs, build the pipeline and serialise it for --runner (with DataflowRunner: "
           "validate the options and build the job request), then stop: nothing runs, nothing is submitted or written."),
)


class BuildShardsOptions(PipelineOptions):
    """Beam pipeline options of the shard builder (see `OPTIONS`)."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        for opt in OPTIONS:
            kwargs: dict[str, Any] = {"dest": opt.dest, "default": opt.default, "help": opt.help}
            if opt.is_flag:
                kwargs["action"] = "store_true"
            else:
                kwargs["type"] = opt.type
            if opt.choices:
                kwargs["choices"] = opt.choices
            parser.add_argument(opt.flag, **kwargs)

    def extract_options(self) -> ExtractOptions:
        """The options of the pairs; a combination they refuse (--windows 2 with a resizing
        filter) is an InputError, which `build-shards` shows as a usage error."""
        try:
            return ExtractOptions(
                size=self.size,
                face_scale=self.face_scale,
                min_face_scale=self.min_face_scale,
                resize_filter=self.resize_filter,
                max_keyframes=self.max_keyframes_per_video or None,
                min_frames=self.min_frames_per_video,
                upsample=self.upsample,
                detect_max_side=self.detect_max_side,
                cnn_model=self.cnn_model,
                timeout_s=self.ffmpeg_timeout,
                max_pixels=self.max_frame_pixels,
                backgrounds=self.backgrounds,
                windows=self.windows,
            )
        except ValueError as e:
            raise InputError(str(e)) from None
