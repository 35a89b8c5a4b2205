"""`build-shards`: the click front end of the Beam shard builder.

Its options are generated from `pipeline.options.OPTIONS`; anything it does not know
(`--runner`, `--project`, `--temp_location`, ...) goes to Beam unchanged when Beam's own
`PipelineOptions` define it, and is a usage error otherwise (`pipeline.beam_args`).
"""
from __future__ import annotations

import click

from pipeline.inputs import InputError
from pipeline.logs import configure_logs
from pipeline.options import OPTIONS
from shards.lock import OutputBusy
from shards.space import OutOfSpace, exit_error


def _click_option(opt) -> click.Option:
    kind = click.Choice(opt.choices) if opt.choices else click.IntRange(min=opt.min) if opt.min is not None else opt.type
    return click.Option(
        [opt.flag, opt.dest],
        type=kind,
        is_flag=opt.is_flag,
        default=opt.default,
        show_default=opt.default is not None and not opt.is_flag,
        required=opt.required,
        help=opt.help,
    )


def _summary(result) -> str:
    info = result.info
    lines = [f"shards: {info.get('input')} -> {len(info['splits'])} split(s)"]
    for name, split in sorted(info["splits"].items()):
        classes = ", ".join(f"{k} {v}" for k, v in sorted(split["class_counts"].items()))
        lines.append(f"  {name:5s} {split['num_samples']:7d} pairs in {len(split['filenames']):4d} shards ({classes})")
    videos = info["videos"]
    lines.append(f"videos: {videos['total']} in, {videos['with_pairs']} with pairs, {videos['without_pairs']} without")
    for reason, n in info["failures"].items():
        lines.append(f"  failure {reason}: {n}")
    lines.append(f"keyframes: {info['keyframes']} in {result.seconds:.1f} s = {result.keyframes_per_s:.1f} keyframes/s")
    return "\n".join(lines)


def _build_shards(beam_args: tuple[str, ...], **values) -> None:
    from pipeline.run import run  # Beam import deferred so `--help` stays fast

    argv = []
    for opt in OPTIONS:
        value = values[opt.dest]
        if opt.is_flag:
            argv += [opt.flag] if value else []
        elif value is not None:
            argv += [opt.flag, str(value)]
    argv += beam_args
    from pipeline.beam_args import refuse_unknown

    refuse_unknown(argv, click.get_current_context())
    configure_logs(values["verbose"])
    try:
        if values["dry_run"]:
            from pipeline.dryrun import plan

            click.echo(plan(argv).summary())
            return
        result = run(argv)
    except InputError as e:
        raise click.UsageError(str(e)) from None
    except (OutputBusy, OutOfSpace) as e:  # one line and an exit status of their own (docs/faults.md)
        raise exit_error(e.line(), e.exit_code) from None
    click.echo(_summary(result))
    videos = result.info["videos"]
    rate = videos["without_pairs"] / videos["total"] if videos["total"] else 0.0
    if rate > values["max_failure_rate"]:
        raise click.ClickException(
            f"{rate:.1%} of videos gave no pair, above --max-failure-rate {values['max_failure_rate']}; see failures.jsonl"
        )


build_shards = click.Command(
    "build-shards",
    callback=_build_shards,
    params=[_click_option(o) for o in OPTIONS]
    + [click.Argument(["beam_args"], nargs=-1, type=click.UNPROCESSED)],
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    help="Turn a folder, glob or CSV manifest of videos into train/val/test WebDataset shards of "
    "face/background pairs (OUT/<split>/pairs-NNNNNN.tar, OUT/_info.json, OUT/failures.jsonl). "
    "Unknown options (--runner DataflowRunner, --project, ...) are passed to Apache Beam.",
)
