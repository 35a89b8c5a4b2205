"""`detect`: a verdict on whole videos with a trained checkpoint.

Each video is judged by `detection.verdict` (the pipeline's own crops, scored by the model,
against the checkpoint's decision threshold): FFmpeg, dlib and torch, the `detect` extra.
`--input` is listed as `build-shards` lists it (`pipeline.inputs`), without Beam unless it
names a remote URL. `--report` writes the evidence behind each verdict as HTML pages
(`reports.detect_report`), `--output` one CSV row per video as it is judged
(`detection.detect_batch`).
"""
from __future__ import annotations

import json

import click

from detection.detect_batch import ResultsCsv, VideoProgress, judge, list_inputs
from detection.detect_reference import EvidenceTap, judge_reference
from detection.reference import MIN_REFERENCE_KEYFRAMES, UNLIKE, UNLIKE_AT
from detection.verdict import FALLBACK_SOURCE, VideoVerdict, crop_options, decision_threshold
from detection.weak_model import model_warning
from pipeline.pairs import NO_RESIZE, RESIZE_FILTERS
from training.checkpoint import detector_from_checkpoint, load_checkpoint
from training.cli import one_line_errors
from training.device import resolve_device


def _table(v: VideoVerdict) -> str:
    if v.fake_probability is None:
        return f"{v.video}: {v.verdict} ({v.reason})" + (f"; {v.reference.line()}" if v.reference is not None else "")
    lines = [f"{v.video}: {v.verdict}: P(fake) {v.comparison()} (threshold) over {len(v.keyframes)} keyframe(s)"
             + (f", skipped {v.reason}" if v.failures else "")]
    if v.reference is not None:
        lines.append(f"  against its reference: {v.reference.line()}")
    lines += [f"  frame {k['frame_index']:6d}  t={k['pts_time']:8.2f}s  {k['frame_type']}  P(fake)={k['fake_probability']:.3f}"
              for k in v.keyframes]
    return "\n".join(lines)


@click.command("detect")
@click.argument("videos", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--input", "input_spec", default=None, metavar="DIR|GLOB|CSV",
              help="Also judge every video of a directory, glob or CSV manifest (a 'path' column; labels optional), "
                   "local or gs://, as build-shards lists them.")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False), help="best.pt or last.pt of a run.")
@click.option("--reference", "references", multiple=True, metavar="VIDEO|DIR|GLOB|CSV",
              help="Authentic footage of the suspects' source (channel, broadcast, camera, interview series); repeat for "
                   "more. Each suspect is also judged by how far its evidence lies from this footage's, in the "
                   f"footage's own spread: '{UNLIKE}' at {UNLIKE_AT:g} spreads or more. Needs {MIN_REFERENCE_KEYFRAMES} "
                   "reference keyframes.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per video instead of a table.")
@click.option("--report", type=click.Path(file_okay=False), default=None,
              help="Directory for a forensic report: index.html, one page per video with its frames, squares and noise traces.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="results.csv: video, verdict, p_fake, threshold, frames, reason; a row written as each video is judged.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="P(fake) at and above which a video is likely fake. Default: the checkpoint's (equal-error point "
                   "on its validation split), or 0.5 for a checkpoint without one.")
@click.option("--min-frames-per-video", type=click.IntRange(min=0), default=8, show_default=True,
              help="Add evenly spaced frames when a video has fewer I-frames than this.")
@click.option("--max-keyframes-per-video", type=click.IntRange(min=0), default=0, show_default=True, help="0 = all.")
@click.option("--face-scale", type=float, default=None, help="Default: what the training shards used.")
@click.option("--resize-filter", type=click.Choice([*sorted(RESIZE_FILTERS), NO_RESIZE]), default=None, help="Default: what the training shards used.")
@click.option("--device", default=None, help="torch device; default CUDA when present, else CPU.")
@one_line_errors
def detect(videos: tuple[str, ...], input_spec: str | None, references: tuple[str, ...], checkpoint: str, as_json: bool, report: str | None,
           output: str | None, threshold: float | None, min_frames_per_video: int, max_keyframes_per_video: int,
           face_scale: float | None, resize_filter: str | None, device: str | None) -> None:
    """Per video: a verdict (likely fake / likely real against a threshold), P(fake) (mean over keyframes) and per-keyframe scores."""
    if not videos and not input_spec:
        raise click.UsageError("name videos, or a folder or CSV with --input")
    inputs = list_inputs(videos, input_spec)
    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint)
    model, config = detector_from_checkpoint(ckpt, dev), ckpt["config"]
    cut = decision_threshold(ckpt, threshold)
    if cut.source == FALLBACK_SOURCE:
        click.echo(f"note: {checkpoint}: {cut.source}", err=True)
    warning = model_warning(ckpt)
    if warning:
        click.echo(f"note: {checkpoint}: {warning}", err=True)
    options = crop_options(config, min_frames=min_frames_per_video, max_keyframes=max_keyframes_per_video or None,
                           face_scale=face_scale, resize_filter=resize_filter)
    detector = options.detector()
    footage = None
    if references:
        footage = judge_reference(references, model, options, dev, detector, cut)
        click.echo(footage.summary(), err=True)
    pages = None
    if report:
        from reports.detect_report import Report

        pages = Report(report, checkpoint, ckpt, model, cut, dev, warning, footage.summary() if footage else None)
    progress = VideoProgress(len(inputs))
    with ResultsCsv(output) as rows, progress:
        for item in inputs:
            evidence = pages.video(item.name) if pages else None
            tap = EvidenceTap(evidence) if footage else evidence
            verdict = judge(item, model, options, dev, detector, cut, tap)
            if footage:
                verdict.reference = footage.compare(verdict, tap)
            if pages:
                pages.add(verdict, evidence)
            rows.write(verdict)
            progress.clear()
            click.echo(json.dumps({**verdict.to_json(), "model_warning": warning}) if as_json else _table(verdict))
            progress.done(verdict)
    if pages:
        click.echo(f"report: {pages.index}", err=True)
